"""The bodies of the Exchange page's long computations (the shock sweep and the cascade).

They are callbacks of the page (:mod:`dashboard.pages.exchange` registers them), kept here because
a background job process runs them by name: it imports this module, which needs no app, and
never a page module (a page registers itself with the app when imported).  Each view reports its
progress as ``progress(step)``: 1 started, 2 computed, 3 drawn (:data:`STEPS`).

A job process has no request and no app: when the server's results cache is shared between
processes (``PMDASH_REDIS_URL`` or ``PMDASH_CACHE_DIR``, :func:`dashboard.memo.cache_config`) a job
reads and fills it like a request would (the population the queue view just built, a state asked
for before); with the in-process cache it computes afresh.
"""
from __future__ import annotations

import functools

import flask
from dash import no_update

from .figures import exchange as figures
from .stores import exchange as ex
from .stores import session as state

#: flask-caching backends that several processes share.
SHARED_CACHES = ("RedisCache", "FileSystemCache")

#: Steps a background computation reports: started, computed, then drawn.
STEPS = 3


def _step(progress, k: int) -> None:
    if progress is not None:
        progress(k)


@functools.cache
def shared_results_app() -> flask.Flask | None:
    """A bare Flask app on the server's results cache when that cache is shared between
    processes; None when it is in-process (a job's own copy would be thrown away with it)."""
    config = state.cache_config()
    if config["CACHE_TYPE"] not in SHARED_CACHES:
        return None
    app = flask.Flask(__name__)
    state.init_cache(app, config)
    return app


def _computed(compute):
    """``compute()``, in the shared results cache's app when called outside any app (a job)."""
    app = None if flask.has_app_context() else shared_results_app()
    if app is None:
        return compute()
    with app.app_context():
        return compute()


def _staged(progress, compute, draw):
    """``draw(compute())`` with ``progress(step)`` told at each of its three steps; no
    update when nothing is uploaded yet (the queue view says so)."""
    try:
        _step(progress, 1)
        result = _computed(compute)
        _step(progress, 2)
        figure = draw(result)
        _step(progress, 3)
        return figure
    except ValueError:
        return no_update


def sweep_view(source: str, settings: dict, upload: dict | None, market: dict, account: dict, progress=None):
    """The shock-sweep figure; ``progress(step)`` is told each step when given."""
    return _staged(progress, lambda: ex.sweep(source, settings, upload, market, account),
                   lambda result: figures.shock_chart(result, settings["spot_shock"]))


def cascade_view(source: str, settings: dict, upload: dict | None, market: dict, account: dict, progress=None):
    """The cascade figure; ``progress(step)`` is told each step when given."""
    return _staged(progress, lambda: ex.cascade_result(source, settings, upload, market, account),
                   lambda result: figures.cascade_chart(result, settings["max_rounds"]))


def sweep_job(set_progress, source, settings, upload, market, account):
    """:func:`sweep_view` as a background callback (Dash passes ``set_progress`` first)."""
    return sweep_view(source, settings, upload, market, account, set_progress)


def cascade_job(set_progress, source, settings, upload, market, account):
    """:func:`cascade_view` as a background callback (Dash passes ``set_progress`` first)."""
    return cascade_view(source, settings, upload, market, account, set_progress)
