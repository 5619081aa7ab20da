"""Background jobs of the Exchange page (dashboard/background.py, dashboard/jobs.py) without a
browser: which configuration registers what, a real job run through the forkserver, the hang it
fixes, and jobs sharing a results cache that several processes share."""
from __future__ import annotations

import base64
import contextvars
import sys
import threading
import time
import uuid

import dash
import flask
import numpy as np
import plotly.graph_objects as go
import psutil
import pytest
from dash._callback import GLOBAL_CALLBACK_LIST
from dash.background_callback.managers import BaseBackgroundCallbackManager
from multiprocess.forkserver import _forkserver

from dashboard import background, ids, jobs
from dashboard.stores import exchange as ex
from dashboard.stores import session as state
from dashboard.stores.account import default_account
from tests.conftest import clear_dash_state, new_app

LONG = (ids.EX_SHOCK_CHART, ids.EX_CASCADE)


def _settings(n: int = 1_500) -> dict:
    return dict(ex.DEFAULT_SETTINGS, n_accounts=n, seed=3, spot_shock=-0.05)


def _args(settings: dict) -> list:
    _, market, _ = state.default_stores()
    return ["generated", settings, None, market, default_account()]


def _expected_bars(settings: dict) -> list[int]:
    """The sweep the engine gives for ``settings``, computed here in the test process."""
    return [int(v) for v in ex.sweep(*_args(settings))["accounts"]]


def _bars(figure: go.Figure) -> list[int]:
    """The bars of a sweep figure; a pickled figure (a job's result) keeps arrays as base64."""
    y = figure.data[0].y
    if isinstance(y, dict):
        y = np.frombuffer(base64.b64decode(y["bdata"]), dtype=y["dtype"])
    return [int(v) for v in y]


def _run_job(job, args, timeout: float = 90):
    """Start ``job`` as the page's manager does and wait for what it stores: (result, progress
    values seen)."""
    manager = background.manager()
    key = f"test-{uuid.uuid4().hex}"
    manager.call_job_fn(key, manager.make_job_fn(job, True), args, {"args": {}})
    seen, end = [], time.monotonic() + timeout
    while manager.handle.get(key) is None:
        assert time.monotonic() < end, f"the job stored nothing in {timeout} s"
        if (progress := manager.handle.get(f"{key}-progress")) and progress not in seen:
            seen.append(progress)
        time.sleep(0.05)
    result = manager.handle.pop(key)
    manager.clear_cache_entry(f"{key}-progress")
    return result, seen


def _live_jobs() -> list[psutil.Process]:
    if _forkserver._forkserver_pid is None:
        return []
    server = psutil.Process(_forkserver._forkserver_pid)
    return [p for p in server.children() if p.status() != psutil.STATUS_ZOMBIE]


@pytest.fixture
def fresh_app():
    """Builds a new app under the environment the test set; forgets it afterwards."""
    yield new_app
    clear_dash_state()


def _long_callbacks() -> dict[str, dict]:
    """The sweep and cascade callbacks the page registered (``dash.callback``: Dash's list)."""
    return {c["output"].split(".")[0]: c for c in GLOBAL_CALLBACK_LIST if c["output"].split(".")[0] in LONG}


def test_by_default_the_sweep_and_cascade_are_background_jobs_with_bar_and_cancel(fresh_app, monkeypatch):
    monkeypatch.delenv("PMDASH_BACKGROUND", raising=False)
    monkeypatch.delenv("PMDASH_CELERY_BROKER", raising=False)
    fresh_app()
    long = _long_callbacks()
    assert set(long) == set(LONG)
    assert all(c.get("background") for c in long.values())
    assert isinstance(background.manager(), background.ForkserverDiskcacheManager)
    page = sys.modules["dashboard.pages.exchange"]
    assert page.progress_row(ids.EX_SWEEP_PROGRESS, ids.EX_SWEEP_CANCEL).hidden is False


def test_background_0_runs_them_in_the_request_without_bar(fresh_app, monkeypatch):
    monkeypatch.setenv("PMDASH_BACKGROUND", "0")
    monkeypatch.delenv("PMDASH_CELERY_BROKER", raising=False)
    fresh_app()
    long = _long_callbacks()
    assert set(long) == set(LONG)
    assert not any(c.get("background") for c in long.values())
    page = sys.modules["dashboard.pages.exchange"]
    assert page.progress_row(ids.EX_SWEEP_PROGRESS, ids.EX_SWEEP_CANCEL).hidden is True


# Dash hands a new manager every job registered in this process so far, then the app registers its own.
@pytest.mark.filterwarnings("ignore:Task name .* is already registered")
def test_with_a_celery_broker_the_jobs_are_celery_tasks(fresh_app, monkeypatch):
    pytest.importorskip("celery")
    monkeypatch.setenv("PMDASH_CELERY_BROKER", "redis://127.0.0.1:9/0")  # not contacted by this test
    background.manager.cache_clear()
    try:
        fresh_app()
        assert all(c.get("background") for c in _long_callbacks().values())
        manager = background.manager()
        assert isinstance(manager, dash.CeleryManager)
        tasks = {name for name in manager.handle.tasks if name.startswith("background_callback_")}
        assert len(tasks) == len(LONG)
    finally:
        # Later apps of this process register their jobs with every manager Dash knows: not this one.
        BaseBackgroundCallbackManager.managers.remove(background.manager())
        background.manager.cache_clear()


def test_the_diskcache_lives_in_the_data_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("PMDASH_BACKGROUND_DIR", raising=False)
    monkeypatch.setenv("PMDASH_DATA_DIR", str(tmp_path))
    assert background.background_dir() == str(tmp_path / "background")
    monkeypatch.setenv("PMDASH_BACKGROUND_DIR", str(tmp_path / "elsewhere"))
    assert background.background_dir() == str(tmp_path / "elsewhere")


def test_a_job_draws_the_engine_sweep_and_reports_its_steps():
    settings = _settings()
    figure, seen = _run_job(jobs.sweep_job, _args(settings))
    assert isinstance(figure, go.Figure)
    assert _bars(figure) == _expected_bars(settings)
    steps = [value for (value,) in seen]  # what the bar would have shown, in order
    assert steps and steps == sorted(steps) and set(steps) <= {1, 2, 3}
    end = time.monotonic() + 10
    while _live_jobs():
        assert time.monotonic() < end, "the job process outlived its job"
        time.sleep(0.1)


def test_a_job_started_while_a_request_computes_its_population_still_ends(app_context, monkeypatch):
    """The hang of forked jobs: a request thread is generating the population (its "being
    computed" mark is set) when the job starts.  A forked copy of the server waited forever for
    a computation no thread of its own would finish; a job from the forkserver computes."""
    settings = _settings(1_200)
    computing, release = threading.Event(), threading.Event()
    generate = ex.generate_population

    def slow_generate(*args, **kwargs):
        computing.set()
        release.wait(120)
        return generate(*args, **kwargs)

    monkeypatch.setattr(ex, "generate_population", slow_generate)

    def request():
        with app_context.server.app_context():
            ex.population(*_args(settings))

    thread = threading.Thread(target=request)
    thread.start()
    try:
        assert computing.wait(30)
        figure, _ = _run_job(jobs.sweep_job, _args(settings), timeout=60)
    finally:
        release.set()
        thread.join(60)
    monkeypatch.undo()
    assert _bars(figure) == _expected_bars(settings)


def test_jobs_fill_a_results_cache_the_processes_share(monkeypatch, tmp_path):
    """With ``PMDASH_CACHE_DIR`` a job (no app of its own) stores its sweep where the server
    finds it: the server then reads it without computing."""
    monkeypatch.delenv("PMDASH_REDIS_URL", raising=False)
    monkeypatch.setenv("PMDASH_CACHE_DIR", str(tmp_path))
    jobs.shared_results_app.cache_clear()
    settings = _settings(800)
    try:
        figure = contextvars.Context().run(jobs.sweep_job, None, *_args(settings))  # no app, as in a job
    finally:
        jobs.shared_results_app.cache_clear()

    server = flask.Flask("server")
    state.init_cache(server, state.cache_config())

    def not_again(*_args, **_kwargs):
        raise AssertionError("computed again: the job's result was not in the shared cache")

    monkeypatch.setattr(ex, "liquidatable_vs_shock", not_again)
    with server.app_context():
        cached = ex.sweep(*_args(settings))
    assert [int(v) for v in cached["accounts"]] == _bars(figure)


def test_an_in_process_cache_is_not_shared_with_jobs(monkeypatch):
    monkeypatch.delenv("PMDASH_REDIS_URL", raising=False)
    monkeypatch.delenv("PMDASH_CACHE_DIR", raising=False)
    jobs.shared_results_app.cache_clear()
    try:
        assert jobs.shared_results_app() is None
    finally:
        jobs.shared_results_app.cache_clear()
