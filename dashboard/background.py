"""Where long Exchange computations run: Dash background callbacks and their manager.

The shock sweep and the cascade of a large population take seconds; as background callbacks they
run outside the request (the page stays responsive), show their progress and can be cancelled.

* By default: :class:`ForkserverDiskcacheManager`, Dash's ``DiskcacheManager`` over an embedded
  ``diskcache`` directory (``PMDASH_BACKGROUND_DIR``, default ``background`` in the data directory,
  ``PMDASH_DATA_DIR``, so that every gunicorn worker of one install polls the same jobs): each job
  runs in a process of the web server's machine.
* ``PMDASH_BACKGROUND=0``: no background jobs; the computations run in the request (no progress
  bar, no Cancel).
* ``PMDASH_CELERY_BROKER`` (e.g. the Redis URL, ``redis://host:6379/1``): ``dash.CeleryManager``;
  jobs then run in Celery workers (``celery -A dashboard.worker worker``, :mod:`dashboard.worker`),
  on any machine that reaches the broker (``pip install -e .[celery]``).

Why a forkserver: Dash starts each job with ``multiprocess.Process``, by default a ``fork()`` of
the web server, which serves requests on several threads.  The child gets a copy of every lock and
of every "being computed" mark those threads held at that instant, but not the threads that would
release them: a job forked while a request thread computed the population it needs waited forever
for that computation (:class:`dashboard.memo.SingleFlight`).  Here jobs are forked from a
forkserver, a single-threaded process that serves no request and has imported the job bodies
(:mod:`dashboard.jobs`) once.  A job is a daemon of its server: stopped, not awaited, when the
server exits.  As with any ``multiprocessing`` start method but fork, a job imports the main
module of the server: a script that starts the server must do so under
``if __name__ == "__main__":`` (``python -m dashboard`` and gunicorn do).
"""
from __future__ import annotations

import functools
import os

import dash
from dash import dcc

from . import ids

#: Modules the forkserver imports once, so that a job starts in milliseconds: the job bodies.
PRELOAD = ["dashboard.jobs"]


#: The shell's store of each background computation: its state, None idle, 0 started, k after
#: step k.  Dash writes a job's progress and running state into these, not into the page: the
#: page mirrors them (dashboard.pages.exchange), and a job that ends after the user went to
#: another page updates a store that is still there (Dash's renderer reports an error for a
#: progress or running component no longer in the layout, plotly/dash#2680).
JOB_STORES = (ids.EX_SWEEP_JOB, ids.EX_CASCADE_JOB)


def stores() -> list[dcc.Store]:
    """The :data:`JOB_STORES` of the shell (in memory: a reload forgets them with the jobs)."""
    return [dcc.Store(id=store_id, data=None) for store_id in JOB_STORES]


def celery_app(broker: str):
    """A Celery app whose broker and result backend are ``broker``."""
    from celery import Celery  # only needed when Celery is configured

    return Celery("dashboard.background", broker=broker, backend=broker)


def broker() -> str:
    """``PMDASH_CELERY_BROKER``, or "" when jobs do not go to Celery."""
    return os.environ.get("PMDASH_CELERY_BROKER", "").strip()


def enabled() -> bool:
    """Whether the long Exchange computations run as background callbacks (unless
    ``PMDASH_BACKGROUND=0``)."""
    return bool(broker()) or os.environ.get("PMDASH_BACKGROUND") != "0"


@functools.cache
def job_context():
    """The ``multiprocess`` context jobs start from: forkserver, with :data:`PRELOAD` imported."""
    import multiprocess

    context = multiprocess.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


class ForkserverDiskcacheManager(dash.DiskcacheManager):
    """``dash.DiskcacheManager`` whose jobs are forked from the forkserver of
    :func:`job_context`, never from the multi-threaded web server (see the module docstring)."""

    def call_job_fn(self, key, job_fn, args, context):
        process = job_context().Process(target=job_fn, args=(key, self._make_progress_key(key), args, context),
                                        daemon=True)
        process.start()
        return process.pid


def background_dir() -> str:
    """``PMDASH_BACKGROUND_DIR``, else ``background`` in the data directory (``PMDASH_DATA_DIR``)."""
    from .workspaces.store import data_dir

    return os.environ.get("PMDASH_BACKGROUND_DIR") or str(data_dir() / "background")


@functools.cache
def manager():
    """The background-callback manager of this process (see the module docstring)."""
    if url := broker():
        return dash.CeleryManager(celery_app(url))
    import diskcache
    from multiprocess import forkserver

    job_context()
    forkserver.ensure_running()  # started now (it imports the job bodies meanwhile), not by the first job
    return ForkserverDiskcacheManager(diskcache.Cache(background_dir()))
