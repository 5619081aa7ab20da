"""What the server accepts from the browser: request and upload sizes, and re-checked stores.

* Request size: Flask's ``MAX_CONTENT_LENGTH`` (:func:`max_request_bytes`, ``PMDASH_MAX_REQUEST_MB``,
  default 32 MB) refuses a larger POST with 413 before it is buffered; every ``dcc.Upload`` also
  carries ``max_size`` so the browser does not send a file above its page's limit
  (:data:`UPLOAD_MAX_BYTES` unless the page has a smaller one).  The default request bound holds the
  largest legitimate upload (5 MB, base64 → 6.7 MB) with the stores a callback sends next to it.
* Stores: the browser's ``dcc.Store`` values come back with every request and can be anything.
  :func:`check_book`, :func:`check_market`, :func:`check_settings` and :func:`check_account` check
  their shape and size before any work (the shared accessors ``state.book_of``/``market_of``/
  ``settings_of`` and the account functions call them); the fields are then validated by the same
  readers the inputs use.  A refused store raises :class:`StoreError` naming the store and field.
* Errors: :func:`on_callback_error` (the app's ``on_error``) logs the traceback and shows the
  message in the callback's first ``children`` output, every other output unchanged (the last
  good state stays); :func:`store_problems` finds a corrupt stored state when a tab opens, and the
  shell offers to reset it to the demo.
"""
from __future__ import annotations

import logging
import math
import os
from typing import TypeGuard

from dash import Input, Output, State, callback_context, html, no_update

from engine import market as engine_market
from engine import portfolio
from engine.analysis import SPOT_STEPS_RANGE, VOL_STEPS_RANGE
from engine.margin import MODELS

from . import ids

log = logging.getLogger(__name__)

#: Largest file any upload reads (the positions and market readers' own bound, bytes).
UPLOAD_MAX_BYTES = max(portfolio.MAX_BYTES, engine_market.MAX_BYTES)
DEFAULT_MAX_REQUEST_MB = 32


def max_request_bytes(environ=None) -> int:
    """Flask ``MAX_CONTENT_LENGTH``: ``PMDASH_MAX_REQUEST_MB`` MB (default 32), never less than
    what the largest upload needs (base64 makes 4 bytes of 3)."""
    env = os.environ if environ is None else environ
    try:
        mb = float(env.get("PMDASH_MAX_REQUEST_MB", DEFAULT_MAX_REQUEST_MB))
    except ValueError:
        mb = DEFAULT_MAX_REQUEST_MB
    return max(int(mb * 2**20), UPLOAD_MAX_BYTES * 4 // 3 + 2**20)


def size_text(limit: int) -> str:
    """``"up to 5 MB"``: the limit as the upload hints show it."""
    return f"up to {limit / 1e6:g} MB"


# ----------------------------------------------------------------------------- stores

#: Most stress horizons a settings store may list.
MAX_HORIZONS = 50
BOOK_FIELDS = ("instrument", "quantity", "entry_price")
SETTINGS_FIELDS = ("spot_range", "spot_steps", "vol_range", "vol_steps", "horizons_days")


class StoreError(ValueError):
    """A browser store the server refuses (tampered, corrupt or too large); names store and field."""


def _refuse(store: str, field: str, what: str):
    raise StoreError(f"{store} store, {field}: {what} — the stored state is damaged; reset it to the demo "
                     "(banner at the top) or load a saved session")


def is_number(value) -> TypeGuard[float]:
    """A finite int or float, not a bool: a numeric control or store field that holds a usable number."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _object(store: str, data) -> dict:
    if not isinstance(data, dict):
        _refuse(store, "value", f"expected an object, got {type(data).__name__}")
    return data


def check_book(data) -> dict:
    """``data`` if it has the ``BOOK_STORE`` shape (a list of at most ``portfolio.MAX_ROWS``
    position objects); the rows are validated by ``positions_from_records`` as uploads are."""
    positions = _object("book", data).get("positions")
    if not isinstance(positions, list):
        _refuse("book", "positions", f"expected a list, got {type(positions).__name__}")
    if len(positions) > portfolio.MAX_ROWS:
        _refuse("book", "positions", f"{len(positions):,} positions, at most {portfolio.MAX_ROWS:,}")
    for k, row in enumerate(positions, start=1):
        if not isinstance(row, dict) or any(f not in row for f in BOOK_FIELDS):
            _refuse("book", f"positions[{k}]", "expected an object with " + ", ".join(BOOK_FIELDS))
    if not isinstance(data.get("name", ""), str):
        _refuse("book", "name", "expected text")
    return data


def check_market(data) -> dict:
    """``data`` if its size is within the market reader's bounds (underlyings, smile slices);
    ``market_from_dict`` validates the rest."""
    underlyings = _object("market", data).get("underlyings")
    if not isinstance(underlyings, dict):
        _refuse("market", "underlyings", f"expected an object, got {type(underlyings).__name__}")
    if len(underlyings) > engine_market.MAX_UNDERLYINGS:
        _refuse("market", "underlyings", f"{len(underlyings):,} underlyings, at most {engine_market.MAX_UNDERLYINGS}")
    for name, u in underlyings.items():
        smile = u.get("smile") if isinstance(u, dict) else None
        if not isinstance(smile, list):
            _refuse("market", f"underlyings.{name}.smile", "expected a list of expiries")
        if len(smile) > engine_market.MAX_SLICES:
            _refuse("market", f"underlyings.{name}.smile",
                    f"{len(smile):,} expiries, at most {engine_market.MAX_SLICES}")
    return data


def check_settings(data) -> dict:
    """``data`` if every ``SETTINGS_STORE`` field is a number of the right kind within the ranges
    the Stress page's controls accept (``engine.Settings`` checks them again)."""
    _object("settings", data)
    for field in SETTINGS_FIELDS:
        if field not in data:
            _refuse("settings", field, "missing")
    for field, bounds in (("spot_steps", SPOT_STEPS_RANGE), ("vol_steps", VOL_STEPS_RANGE)):
        value = data[field]
        if not (is_number(value) and float(value).is_integer() and bounds[0] <= value <= bounds[1]):
            _refuse("settings", field, f"expected a whole number {bounds[0]}…{bounds[1]}, got {value!r:.40}")
    for field in ("spot_range", "vol_range"):
        if not is_number(data[field]):
            _refuse("settings", field, f"expected a number, got {data[field]!r:.40}")
    horizons = data["horizons_days"]
    if not (isinstance(horizons, list) and 0 < len(horizons) <= MAX_HORIZONS and all(map(is_number, horizons))):
        _refuse("settings", "horizons_days", f"expected 1…{MAX_HORIZONS} numbers of days")
    return data


def check_account(data) -> dict:
    """``data`` if collateral is a finite amount ≥ 0, the model a known one and the params an
    object per model (each is validated by ``params_from_dict`` when used)."""
    _object("account", data)
    if not (is_number(data.get("collateral")) and data["collateral"] >= 0):
        _refuse("account", "collateral", f"expected USD, 0 or more, got {data.get('collateral')!r:.40}")
    if data.get("model") not in MODELS:
        _refuse("account", "model", f"unknown margin model {data.get('model')!r:.40}")
    params = data.get("params", {})
    if not isinstance(params, dict) or any(k not in MODELS or not isinstance(v, dict) for k, v in params.items()):
        _refuse("account", "params", "expected an object of parameters per margin model")
    return data


def store_problems(book, market, settings, account) -> list[str]:
    """What is wrong with a stored state (empty when nothing): shapes, sizes, and whether the
    engine reads the book, market and settings."""
    from .stores import session as state  # the store modules import this module

    problems = []
    for check, data in ((check_book, book), (check_market, market), (check_settings, settings),
                        (check_account, account)):
        try:
            check(data)
        except StoreError as exc:
            problems.append(str(exc))
    if not problems:
        try:
            state.book_of(book), state.market_of(market), state.settings_of(settings)
        except Exception as exc:  # any refusal of the stored state is reported, not raised
            problems.append(f"{type(exc).__name__}: {exc}")
    return problems


# ----------------------------------------------------------------------------- callback errors


def error_message(exc: BaseException) -> html.Div:
    """What a page shows where its content would be when a callback failed."""
    kind = "" if isinstance(exc, StoreError) else f"{type(exc).__name__}: "
    return html.Div([html.B("This could not be computed: "), f"{kind}{exc}".strip()[:2000],
                     " — the last good state is kept."], className="msg msg-error", role="alert")


def on_callback_error(exc: Exception):
    """The app's ``on_error``: log the traceback; the message goes to the first ``children``
    output, every other output is left as it was (stores keep their last good value)."""
    log.error("callback failed: %s", callback_context.triggered_id, exc_info=exc)
    outputs = callback_context.outputs_list
    single = isinstance(outputs, dict)
    outputs = [outputs] if single else outputs
    shown, values = False, []
    for output in outputs:
        if isinstance(output, dict) and output.get("property") == "children" and not shown:
            values.append(error_message(exc))
            shown = True
        else:
            values.append([no_update] * len(output) if isinstance(output, list) else no_update)
    return values[0] if single else values


# ----------------------------------------------------------------------------- damaged state on load


def state_banner() -> html.Div:
    """Hidden until :func:`register_callbacks` finds the tab's stored state damaged."""
    return html.Div([html.Span(id=ids.STATE_BANNER_TEXT),
                     html.Button("Reset to the demo", id=ids.STATE_RESET, className="button")],
                    id=ids.STATE_BANNER, hidden=True, className="msg msg-error", role="alert")


def banner_view(book, market, settings, account) -> tuple[bool, str]:
    """(hidden, text) of the banner for the stored state."""
    problems = store_problems(book, market, settings, account)
    if not problems:
        return True, ""
    shown = "; ".join(problems[:3])[:1000]
    return False, f"The state kept in this tab is damaged and was not used ({shown}). "


def register_callbacks(app) -> None:
    """Check the stored state when a page opens; the button resets it to the demo."""
    from .stores import account  # the store modules import this module
    from .stores import session as state

    stores = (ids.BOOK_STORE, ids.MARKET_STORE, ids.SETTINGS_STORE, ids.ACCOUNT_STORE)
    app.callback(Output(ids.STATE_BANNER, "hidden"), Output(ids.STATE_BANNER_TEXT, "children"),
                 Input(ids.URL, "pathname"), *(State(s, "data") for s in stores))(
        lambda _, *values: banner_view(*values))

    @app.callback(*(Output(s, "data", allow_duplicate=True) for s in stores),
                  Output(ids.STATE_BANNER, "hidden", allow_duplicate=True),
                  Input(ids.STATE_RESET, "n_clicks"), prevent_initial_call=True)
    def reset(_):
        return *state.default_stores(), account.default_account(), True
