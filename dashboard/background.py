"""Where long Exchange computations run: Dash background callbacks and their manager.

The shock sweep and the cascade of a large population take seconds; as background callbacks they
run outside the request (the page stays responsive), show their progress and can be cancelled.

* Off by default (plain callbacks, no progress bar): jobs forked from a multi-threaded server
  process were seen to hang in a browser test (a lock or BLAS thread pool held across the fork).
* ``PMDASH_BACKGROUND=1``: ``dash.DiskcacheManager`` over an embedded ``diskcache`` directory
  (``PMDASH_BACKGROUND_DIR``, default ``pmdash-background`` under the system temp directory): each
  job runs in a process of the web server's machine.
* ``PMDASH_CELERY_BROKER`` (e.g. the Redis URL, ``redis://host:6379/1``): ``dash.CeleryManager``;
  jobs then run in Celery workers (``celery -A dashboard.background:celery_app worker``), on any
  machine that reaches the broker.
"""
from __future__ import annotations

import functools
import os
import tempfile

import dash


def celery_app(broker: str):
    """A Celery app whose broker and result backend are ``broker``."""
    from celery import Celery  # only needed when Celery is configured

    return Celery("dashboard.background", broker=broker, backend=broker)


def enabled() -> bool:
    """Whether the long Exchange computations run as background callbacks."""
    return bool(os.environ.get("PMDASH_CELERY_BROKER", "").strip()) or os.environ.get("PMDASH_BACKGROUND") == "1"


@functools.cache
def manager():
    """The background-callback manager of this process (see the module docstring)."""
    if broker := os.environ.get("PMDASH_CELERY_BROKER", "").strip():
        return dash.CeleryManager(celery_app(broker))
    import diskcache

    folder = os.environ.get("PMDASH_BACKGROUND_DIR") or os.path.join(tempfile.gettempdir(), "pmdash-background")
    return dash.DiskcacheManager(diskcache.Cache(folder))
