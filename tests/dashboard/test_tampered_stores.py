"""Every callback of the app, sent tampered stores as a browser could: a message, never a 500.

Each request goes through Dash's real dispatch (the Flask test client posting to
``/_dash-update-component``) with every non-store input at its layout value, so the check covers
the callbacks registered by every page module, whatever they are named.
"""
import base64
import contextvars
import copy
import json
import logging
import math

import dash
import pytest

from dashboard import guard, ids
from dashboard.stores import exchange
from dashboard.stores import session as state
from dashboard.stores.account import default_account


def _walk(component):
    yield component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if child is not None and not isinstance(child, (str, int, float)):
            yield from _walk(child)


class IsolatedClient:
    """A test client whose requests run in a copy of the context: a request leaves Dash's
    current-app context variable set, which would leak into the tests that build their own app."""

    def __init__(self, client):
        self.client = client

    def get(self, *args, **kwargs):
        return contextvars.copy_context().run(self.client.get, *args, **kwargs)

    def post(self, *args, **kwargs):
        return contextvars.copy_context().run(self.client.post, *args, **kwargs)


@pytest.fixture(scope="module")
def application(app_context):
    app = app_context  # the session's app: building another would clear the Dash state it uses
    client = IsolatedClient(app.server.test_client())
    client.get("/")  # Dash registers the page callbacks on the first request
    components = {}
    with app.server.app_context():
        layouts = [app.layout] + [p["layout"]() if callable(p["layout"]) else p["layout"]
                                  for p in dash.page_registry.values()]
    for layout in layouts:
        for c in _walk(layout):
            if isinstance(getattr(c, "id", None), str):
                components[c.id] = c
    return app, client, components


def _good_stores() -> dict:
    book, market, settings = state.default_stores()
    return {ids.BOOK_STORE: book, ids.MARKET_STORE: market, ids.SETTINGS_STORE: settings,
            ids.ACCOUNT_STORE: default_account(), ids.EX_SETTINGS_STORE: dict(exchange.DEFAULT_SETTINGS)}


def _variant(store: str, change) -> tuple[str, dict]:
    stores = _good_stores()
    stores[store] = change(copy.deepcopy(stores[store]))
    return store, stores


STATE = (ids.BOOK_STORE, ids.MARKET_STORE, ids.SETTINGS_STORE, ids.ACCOUNT_STORE)


def _many_positions(book):
    row = book["positions"][0]
    return dict(book, positions=[dict(row, id=str(k)) for k in range(200_000)])


def _many_slices(market):
    u = next(iter(market["underlyings"].values()))
    u["smile"] = [u["smile"][0]] * 25_000
    return market


def _nested(depth: int):
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


VARIANTS = {
    "positions as a dict": _variant(ids.BOOK_STORE, lambda b: dict(b, positions={"1": b["positions"][0]})),
    "200,000 positions": _variant(ids.BOOK_STORE, _many_positions),
    "NaN quantity": _variant(ids.BOOK_STORE, lambda b: dict(b, positions=[dict(b["positions"][0], quantity=math.nan)])),
    "25,000 smile slices": _variant(ids.MARKET_STORE, _many_slices),
    "nested junk market": _variant(ids.MARKET_STORE, lambda m: dict(m, underlyings={"BTC": _nested(200)})),
    "n_accounts 1,000,000": _variant(ids.EX_SETTINGS_STORE, lambda s: dict(s, n_accounts=1_000_000)),
    "strings for numbers": _variant(ids.SETTINGS_STORE, lambda s: dict(s, spot_steps="41", vol_range="0.3")),
    "collateral NaN": _variant(ids.ACCOUNT_STORE, lambda a: dict(a, collateral=math.nan)),
    "account as a list": _variant(ids.ACCOUNT_STORE, lambda a: [a]),
    # not tampering but states the UI once answered with a bare 500
    "underlying missing from the market": _variant(ids.MARKET_STORE, lambda m: dict(
        m, underlyings={k: v for k, v in m["underlyings"].items() if k != "BTC"})),
    "zero quantity": _variant(ids.BOOK_STORE, lambda b: dict(b, positions=[dict(b["positions"][0], quantity=0)])),
}


def _split(output: str) -> list[tuple[str, str]]:
    parts = output[2:-2].split("...") if output.startswith("..") else [output]
    return [tuple(p.split("@")[0].rsplit(".", 1)) for p in parts]


def _value(components, stores, spec):
    if spec["id"] in stores and spec["property"] == "data":
        return stores[spec["id"]]
    return getattr(components.get(spec["id"]), spec["property"], None)


def _request(callback, components, stores) -> dict:
    outputs = [{"id": i, "property": p} for i, p in _split(callback["output"])]
    inputs = [dict(s, value=_value(components, stores, s)) for s in callback["inputs"]]
    return {"output": callback["output"], "outputs": outputs if callback["output"].startswith("..") else outputs[0],
            "inputs": inputs, "state": [dict(s, value=_value(components, stores, s)) for s in callback["state"]],
            "changedPropIds": [f"{s['id']}.{s['property']}" for s in callback["inputs"]]}


def _server_callbacks(app, store: str):
    """Server callbacks without pattern-matching ids that read ``store``; background ones (the
    Exchange sweep and cascade) are left out: their views are tested as plain functions."""
    for callback in app._callback_list:
        specs = callback["inputs"] + callback["state"]
        if callback.get("clientside_function") or callback.get("background") or "{" in callback["output"] or any(
                s["id"].startswith("{") for s in specs):
            continue
        if any(s["id"] == store and s["property"] == "data" for s in specs):
            yield callback


@pytest.mark.parametrize("name", list(VARIANTS))
def test_tampered_store_gives_a_message_never_a_500(application, name, caplog):
    app, client, components = application
    store, stores = VARIANTS[name]
    callbacks = list(_server_callbacks(app, store))
    assert callbacks, f"no callback reads {store}"
    shown = 0
    with caplog.at_level(logging.ERROR):
        for callback in callbacks:
            body = json.dumps(_request(callback, components, stores), allow_nan=True)
            response = client.post("/_dash-update-component", data=body, content_type="application/json")
            assert response.status_code in (200, 204), (callback["output"], response.status_code)
            if response.status_code == 200 and "msg-error" in response.get_data(as_text=True):
                shown += 1
                # the stores the callback writes keep their last good value
                written = json.loads(response.get_data())["response"]
                assert not any(k in written for k in stores), callback["output"]
    assert shown >= 1, f"no callback showed the refusal of {name}"
    assert client.get("/_dash-layout").status_code == 200


def _as_upload(text: str) -> str:
    return "data:application/json;base64," + base64.b64encode(text.encode()).decode()


UPLOADS = {
    "huge integer": '[{"instrument": "BTC-PERPETUAL", "quantity": 1' + "0" * 5000 + "}]",
    "deep nesting": "[" * 100_000 + "]" * 100_000,
    "not JSON at all": "{" + "\x00" * 100,
}


@pytest.mark.parametrize("name", list(UPLOADS))
def test_every_upload_callback_answers_a_hostile_file(application, name):
    """Each upload callback (contents as its Input) gets the file: an answer, never a 500."""
    app, client, components = application
    stores = _good_stores()
    uploads = [c for c in app._callback_list if not c.get("clientside_function") and "{" not in c["output"]
               and any(s["property"] == "contents" for s in c["inputs"])]
    assert len(uploads) >= 8
    for callback in uploads:
        request = _request(callback, components, stores)
        for spec in request["inputs"]:
            if spec["property"] == "contents":
                spec["value"] = [_as_upload(UPLOADS[name])] if getattr(components[spec["id"]], "multiple", False) else \
                    _as_upload(UPLOADS[name])
        for spec in request["state"]:
            if spec["property"] == "filename":
                spec["value"] = ["upload.json"] if getattr(components[spec["id"]], "multiple", False) else "upload.json"
        response = client.post("/_dash-update-component", data=json.dumps(request),
                               content_type="application/json")
        assert response.status_code in (200, 204), (callback["output"], response.status_code)


def test_damaged_state_is_found_on_load_and_reset_to_the_demo(application):
    app, client, components = application
    good = _good_stores()
    assert guard.banner_view(*(good[s] for s in STATE)) == (True, "")
    for name in ("positions as a dict", "25,000 smile slices", "strings for numbers", "collateral NaN",
                 "zero quantity"):
        store, stores = VARIANTS[name]
        hidden, text = guard.banner_view(*(stores[s] for s in STATE))
        assert not hidden and "damaged" in text, name
    (reset,) = [c for c in app._callback_list if any(s["id"] == ids.STATE_RESET for s in c["inputs"])]
    request = _request(reset, components, {})
    request["inputs"][0]["value"] = 1
    written = json.loads(client.post("/_dash-update-component", data=json.dumps(request),
                                     content_type="application/json").get_data())["response"]
    assert written[ids.BOOK_STORE]["data"] == good[ids.BOOK_STORE]
    assert written[ids.ACCOUNT_STORE]["data"] == good[ids.ACCOUNT_STORE]
    assert written[ids.STATE_BANNER]["hidden"] is True
