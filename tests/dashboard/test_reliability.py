"""Issue 11, dashboard half: one computation per state, bounded cache, request size, distrusted stores."""
import contextvars
import sys
import threading
import time

import dash
import numpy as np
from components import text_of
from dash import dcc
from flask import Flask

from dashboard import guard, ids, memo
from dashboard.stores import exchange
from dashboard.stores import session as state
from dashboard.stores.account import default_account

MB = 2**20


def _app(config: dict) -> Flask:
    server = Flask(__name__)
    state.init_cache(server, config)
    return server


def test_concurrent_identical_requests_compute_once():
    """Eight threads ask for the same state at once: the engine runs once, all get its result."""
    server = _app(memo.cache_config({}))
    runs, results = [], []
    barrier = threading.Barrier(8)

    def compute():
        runs.append(1)
        time.sleep(0.2)  # long enough that every other thread arrives while it runs
        return {"value": 42}

    def request():
        with server.app_context():
            barrier.wait()
            results.append(state.memoise("test-once", ["same", 1], compute))

    threads = [threading.Thread(target=request) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(runs) == 1 and results == [{"value": 42}] * 8
    with server.app_context():  # and a later request is a cache hit
        assert state.memoise("test-once", ["same", 1], lambda: runs.append(1)) == {"value": 42}
    assert len(runs) == 1


def test_state_cache_is_bounded_in_bytes():
    """With PMDASH_CACHE_MAX_MB=4, forty distinct ½ MB results leave at most 4 MB cached."""
    server = _app(memo.cache_config({"PMDASH_CACHE_MAX_MB": "4"}))
    with server.app_context():
        for k in range(40):
            state.memoise("blob", [k], lambda: np.zeros(MB // 16))
        backend = state._cache.cache
        assert isinstance(backend, memo.ByteBoundedCache)
        assert 3 * MB <= backend.total_bytes <= 4 * MB
        # the most recent entry is kept, the first ones are gone
        calls = []
        state.memoise("blob", [39], lambda: calls.append(1))
        assert not calls


def _walk(component):
    yield component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if child is not None and not isinstance(child, (str, int, float)):
            yield from _walk(child)


def test_oversized_post_gets_413_and_the_app_keeps_serving(app_context):
    # A request leaves Dash's current-app context variable set: keep it out of the later tests.
    contextvars.copy_context().run(_oversized_post, app_context)


def _oversized_post(app_context):
    client = app_context.server.test_client()
    limit = app_context.server.config["MAX_CONTENT_LENGTH"]
    assert limit >= guard.UPLOAD_MAX_BYTES * 4 / 3  # the largest upload, base64-encoded, gets through
    huge = b"x" * (limit + 1)
    response = client.post("/_dash-update-component", data=huge, content_type="application/json")
    assert response.status_code == 413
    assert client.get("/_dash-layout").status_code == 200
    assert client.get("/").status_code == 200


def test_request_bound_from_the_environment():
    assert guard.max_request_bytes({"PMDASH_MAX_REQUEST_MB": "64"}) == 64 * MB
    # never below what the largest legitimate upload needs
    assert guard.max_request_bytes({"PMDASH_MAX_REQUEST_MB": "0.1"}) > guard.UPLOAD_MAX_BYTES * 4 / 3
    assert guard.max_request_bytes({"PMDASH_MAX_REQUEST_MB": "lots"}) == guard.DEFAULT_MAX_REQUEST_MB * MB


def test_every_upload_has_a_size_limit_named_in_its_text(app_context):
    uploads = []
    for page in dash.page_registry.values():
        layout = page["layout"]() if callable(page["layout"]) else page["layout"]
        uploads += [c for c in _walk(layout) if isinstance(c, dcc.Upload)]
    assert len(uploads) >= 8
    for upload in uploads:
        assert 0 < upload.max_size <= guard.UPLOAD_MAX_BYTES, upload.id
        shown = f"{upload.max_size / 1e6:g} MB"
        assert shown in text_of(upload.children) or upload.id == ids.EX_UPLOAD, upload.id  # Exchange: in the hint below


def test_exchange_background_views_report_three_steps_and_draw_the_same_figures(app_context):
    """The sweep and cascade views (the bodies of the background callbacks) tell the progress bar
    each step and return what they return without one."""
    page = sys.modules["dashboard.pages.exchange"]
    book, market, _ = state.default_stores()
    settings = dict(exchange.DEFAULT_SETTINGS, n_accounts=1_000, seed=5, spot_shock=-0.1)
    for view in (page.sweep_view, page.cascade_view):
        steps = []
        with_bar = view("generated", settings, None, market, default_account(), steps.append)
        assert steps == [1, 2, 3]
        assert with_bar.to_dict() == view("generated", settings, None, market, default_account()).to_dict()


def test_a_fresh_worker_is_set_up_before_its_first_request(monkeypatch):
    """Dash sets a server up in a hook of its first request, marking it done before doing it:
    under gunicorn's threads the other first requests read half-built registries and fail with
    500 (plotly/dash#3971; 4 such 500s in a load test).  The WSGI app is set up before serving."""
    from dash import _callback, html

    from dashboard.app import app as wsgi_app
    from dashboard.app import set_up_before_serving

    assert wsgi_app._got_first_request["setup_server"] and wsgi_app.registered_paths
    # A small app of its own (the suite's app and Dash's global registries stay untouched).
    for name, empty in (("GLOBAL_CALLBACK_MAP", {}), ("GLOBAL_CALLBACK_LIST", []), ("GLOBAL_INLINE_SCRIPTS", [])):
        monkeypatch.setattr(_callback, name, empty)
    app = dash.Dash(__name__)
    app.layout = html.Div([dcc.Input(id="x", value="1"), html.Div(id="y")])
    app.callback(dash.Output("y", "children"), dash.Input("x", "value"))(lambda v: v)
    assert not app._got_first_request["setup_server"] and not app.registered_paths
    set_up_before_serving(app)
    assert app._got_first_request["setup_server"] and app.registered_paths  # the component bundles
    results = []

    def first_requests():
        with app.server.test_client() as client:
            results.append((client.get("/_dash-dependencies").status_code, client.get("/_dash-layout").status_code))

    threads = [threading.Thread(target=first_requests) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [(200, 200)] * 16
