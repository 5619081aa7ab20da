"""The Margin page's collateral editor: the account's collateral assets, its denomination and
two presets (docs/venues.md, the account).

Grid rows (one per asset, ``id`` its position)::

    {"id": "0", "asset": "BTC", "amount": 2.3, "price": "market", "im_haircut": 0.05,
     "mm_haircut": 0.25, "risk_cancelling": False, "confidence": 1.0}

``price`` "market" prices the asset at its underlying's spot (the asset is then tied to it: it
moves with spot in the liquidation search and, when ``risk_cancelling``, in the margin scenarios);
a number is a fixed USD price.  The transitions return ``state.Outcome`` like
``dashboard.stores.account``'s: a value the engine refuses names its row and field and the last good
account stays in the store.
"""
from __future__ import annotations

import re

from dash import Input, Output, State, callback, ctx, dcc, html, no_update

from engine.account import DENOMINATIONS, AccountError, load_account

from .. import ids
from ..stores import account
from ..stores import session as state
from .blocks import message, panel, user_action
from .grids import grid

#: The price cell of an asset priced from the market's spot of the same name.
MARKET_PRICE = "market"
NUMBER_FIELDS = {"amount": "amount", "im_haircut": "IM haircut", "mm_haircut": "MM haircut",
                 "confidence": "confidence"}
NEW_ROW = {"asset": "BTC", "amount": 0.0, "price": MARKET_PRICE, "im_haircut": 0.0, "mm_haircut": 0.0,
           "risk_cancelling": False, "confidence": 1.0}
PRESETS = {"usd": "USD only", "btc": "BTC collateral"}

_EDIT = {"editable": True, "cellClass": "cell-editable", "flex": 1}
COLUMNS = [
    {"field": "asset", "headerName": "Asset", "checkboxSelection": True, **_EDIT},
    {"field": "amount", "headerName": "Amount (units)", "cellDataType": False, **_EDIT},
    {"field": "price", "headerName": "Price (USD, or 'market': the spot)", "cellDataType": False, **_EDIT},
    {"field": "im_haircut", "headerName": "IM haircut (fraction)", "cellDataType": False, **_EDIT},
    {"field": "mm_haircut", "headerName": "MM haircut (fraction)", "cellDataType": False, **_EDIT},
    {"field": "risk_cancelling", "headerName": "Risk-cancelling (moves in the scenarios)",
     "cellDataType": "boolean", **_EDIT},
    {"field": "confidence", "headerName": "Oracle confidence (0–1)", "cellDataType": False, **_EDIT},
]


# ----------------------------------------------------------------------------- rows ↔ account


def grid_rows(acct: dict) -> list[dict]:
    """Rows of the editor for a store value (an old store has none)."""
    rows = []
    for k, c in enumerate(acct.get("assets") or []):
        rows.append({"id": str(k), "asset": c["asset"], "amount": c["amount"],
                     "price": c.get("price", MARKET_PRICE) if c.get("price") is not None else MARKET_PRICE,
                     "im_haircut": c.get("im_haircut", 0.0), "mm_haircut": c.get("mm_haircut", 0.0),
                     "risk_cancelling": bool(c.get("risk_cancelling", False)),
                     "confidence": c.get("confidence", 1.0)})
    return rows


def _number(row: int, name: str, value) -> float:
    try:
        return float(str(value).replace(",", "").strip())
    except ValueError:
        raise AccountError(f"collateral row {row}: {name} must be a number (got {value!r})") from None


def _flag(row: int, value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0", "", "none"):
        return False
    raise AccountError(f"collateral row {row}: risk-cancelling must be true or false (got {value!r})")


def asset_of_row(k: int, row: dict) -> dict:
    """The engine collateral JSON of grid row ``k`` (0-based); numbers are parsed here, ranges
    are the engine's."""
    n = k + 1
    asset = str(row.get("asset") or "").strip().upper()
    price = row.get("price")
    out = {"asset": asset, "amount": _number(n, "amount", row.get("amount"))}
    if price is None or str(price).strip().lower() in (MARKET_PRICE, ""):
        out["underlying"] = asset
    else:
        out["price"] = _number(n, "price", price)
    out.update({f: _number(n, NUMBER_FIELDS[f], row.get(f, 0.0 if f != "confidence" else 1.0))
                for f in ("im_haircut", "mm_haircut", "confidence")})
    out["risk_cancelling"] = _flag(n, row.get("risk_cancelling", False))
    return out


def _row_named(text: str) -> str:
    """The engine's ``collateral[k].field`` as the grid's ``collateral row k+1: field``."""
    return re.sub(r"collateral\[(\d+)\]\.?", lambda m: f"collateral row {int(m.group(1)) + 1}: ", text)


def set_account(acct: dict, book: dict, market: dict, assets: list[dict], denomination: str, cash: float,
                note: str) -> state.Outcome:
    """Commit the assets, denomination and cash if the engine accepts them on the current book."""
    try:
        engine = load_account({"cash": cash, "collateral": assets, "denomination": denomination})
    except AccountError as exc:
        return state.Outcome(None, (f"{_row_named(str(exc))} — the last good account is kept",))
    outcome = account.checked(account.with_engine_account(acct, engine), book, market, note)
    if outcome.data is None:
        return state.Outcome(None, tuple(f"{_row_named(p)}; the last good account is kept" for p in outcome.problems))
    return outcome


def set_rows(acct: dict, book: dict, market: dict, rows: list[dict], note: str) -> state.Outcome:
    try:
        assets = [asset_of_row(k, r) for k, r in enumerate(rows)]
    except AccountError as exc:
        return state.Outcome(None, (f"{exc} — the last good account is kept",))
    return set_account(acct, book, market, assets, acct.get("denomination", "USD"), acct["collateral"], note)


def edit_cells(acct: dict, book: dict, market: dict, changes: list[dict]) -> state.Outcome:
    """Apply grid edits (``cellValueChanged``: rowId = position, colId, value), all or nothing."""
    rows = grid_rows(acct)
    for change in changes:
        k = int(change["rowId"])
        if not 0 <= k < len(rows):
            return state.Outcome(None, (f"collateral row {k + 1}: no such row",))
        rows[k][change["colId"]] = state.edited_value(change)
    return set_rows(acct, book, market, rows, f"{len(changes)} collateral edit(s) applied")


def add_row(acct: dict, book: dict, market: dict) -> state.Outcome:
    return set_rows(acct, book, market, grid_rows(acct) + [dict(NEW_ROW)],
                    "collateral row added (0 BTC at the market price): edit it")


def delete_rows(acct: dict, book: dict, market: dict, selected) -> state.Outcome:
    doomed = {int(r["id"]) for r in selected or ()}
    if not doomed:
        return state.Outcome(None, ("select the collateral rows to delete first (tick their boxes)",))
    rows = [r for k, r in enumerate(grid_rows(acct)) if k not in doomed]
    return set_rows(acct, book, market, rows, f"deleted {len(doomed)} collateral row(s)")


def set_denomination(acct: dict, book: dict, market: dict, denomination: str) -> state.Outcome:
    if denomination == acct.get("denomination", "USD"):
        return state.Outcome(None)
    if denomination not in DENOMINATIONS:
        return state.Outcome(None, (f"denomination: {denomination!r} is not one of {', '.join(DENOMINATIONS)}",))
    if denomination != "USD" and denomination not in market.get("underlyings", {}):
        return state.Outcome(None, (f"denomination: the market has no {denomination} spot to convert at; "
                                    "the last good account is kept",))
    return set_account(acct, book, market, acct.get("assets") or [], denomination, acct["collateral"],
                       f"account denominated in {denomination}")


def apply_preset(acct: dict, book: dict, market: dict, name: str) -> state.Outcome:
    """"usd": the default USD cash, no assets.  "btc": a coin-margined BTC account holding the
    same USD value in BTC at today's spot, no cash, the BTC moving with spot in the margin
    scenarios (risk-cancelling): it falls with BTC, wrong-way against short BTC puts."""
    if name == "usd":
        return set_account(acct, book, market, [], "USD", account.DEFAULT_COLLATERAL,
                           f"preset {PRESETS[name]}: {account.DEFAULT_COLLATERAL:,.0f} USD cash")
    spot = (market.get("underlyings", {}).get("BTC") or {}).get("spot")
    if not spot:
        return state.Outcome(None, ("preset BTC collateral: the market has no BTC spot",))
    amount = round(account.DEFAULT_COLLATERAL / float(spot), 4)
    btc = {"asset": "BTC", "amount": amount, "underlying": "BTC", "im_haircut": 0.0, "mm_haircut": 0.0,
           "risk_cancelling": True, "confidence": 1.0}
    return set_account(acct, book, market, [btc], "BTC", 0.0,
                       f"preset {PRESETS[name]}: {amount:,.4f} BTC, denominated in BTC")


# ----------------------------------------------------------------------------- layout and callbacks


def collateral_panel() -> html.Section:
    return panel(
        "Collateral assets and denomination",
        html.Div([
            html.Div([html.Label("Denomination (results shown in)"),
                      dcc.RadioItems(id=ids.COLLATERAL_DENOMINATION, className="radio", inline=True,
                                     options=[{"label": d, "value": d} for d in DENOMINATIONS])],
                     className="control"),
            html.Div([html.Button("Preset: USD only", id=ids.COLLATERAL_PRESET_USD, className="button"),
                      html.Button("Preset: BTC collateral", id=ids.COLLATERAL_PRESET_BTC, className="button"),
                      html.Button("Add asset", id=ids.COLLATERAL_ADD, className="button"),
                      html.Button("Delete selected", id=ids.COLLATERAL_DELETE, className="button")],
                     className="button-row"),
        ], className="margin-controls"),
        grid(ids.COLLATERAL_GRID, COLUMNS, height=None, filters=False, getRowId="params.data.id",
             dashGridOptions={"rowSelection": "multiple", "suppressRowClickSelection": True,
                              "singleClickEdit": True, "stopEditingWhenCellsLoseFocus": True}),
        html.Div(id=ids.COLLATERAL_MESSAGE, **{"aria-live": "polite"}),
        how_to="The account holds the USD cash above plus these assets. Value = amount × price ('market': the "
               "underlying's spot, and the asset then moves with it wherever spot is shocked: BTC collateral "
               "falls with BTC, wrong-way against short BTC puts). Haircuts are fractions of value added to IM "
               "and MM; a risk-cancelling asset moves with spot inside the margin scenarios instead. A BTC or "
               "ETH denomination (Deribit's inverse books) shows equity, IM, MM and P&L in that coin with USD "
               "beside. 'BTC collateral' holds the default collateral's value in BTC (moving in the scenarios), "
               "denominated in BTC: against short BTC puts IM rises and liquidation comes nearer.",
    )


def show_rows(acct):
    return grid_rows(acct)


def change(trigger, changes, selected, denomination, acct: dict, book: dict, market: dict) -> state.Outcome:
    """The transition a control of the editor asks for."""
    if trigger == ids.COLLATERAL_GRID:
        return edit_cells(acct, book, market, changes)
    if trigger == ids.COLLATERAL_ADD:
        return add_row(acct, book, market)
    if trigger == ids.COLLATERAL_DELETE:
        return delete_rows(acct, book, market, selected)
    if trigger == ids.COLLATERAL_DENOMINATION:
        return set_denomination(acct, book, market, denomination)
    return apply_preset(acct, book, market, "usd" if trigger == ids.COLLATERAL_PRESET_USD else "btc")


def show_denomination(_, acct):
    """Fill the selector from the store once, when the page is shown (as ``pages.margin.show_account``)."""
    return acct.get("denomination", "USD")


def collateral_action(changes, add, delete, denomination, usd_preset, btc_preset, selected, acct, book, market):
    """(store, message, denomination shown) after the user used the editor; a refused change
    leaves the store as it was and the selector on the denomination in force."""
    trigger = ctx.triggered_id
    value = {ids.COLLATERAL_GRID: changes, ids.COLLATERAL_ADD: add, ids.COLLATERAL_DELETE: delete,
             ids.COLLATERAL_DENOMINATION: denomination, ids.COLLATERAL_PRESET_USD: usd_preset,
             ids.COLLATERAL_PRESET_BTC: btc_preset}.get(trigger)
    user_action(value)
    outcome = change(trigger, changes, selected, denomination, acct, book, market)
    data = no_update if outcome.data is None else outcome.data
    shown = (outcome.data or acct).get("denomination", "USD")
    return data, message(outcome.problems, outcome.note), no_update if shown == denomination else shown


def register_callbacks() -> None:
    """Register the editor's callbacks.  The Margin page calls it when Dash imports the page, so
    that every app built in the process (tests build several) gets them, as page modules do."""
    callback(Output(ids.COLLATERAL_GRID, "rowData"), Input(ids.ACCOUNT_STORE, "data"))(show_rows)
    callback(Output(ids.COLLATERAL_DENOMINATION, "value"), Input(ids.COLLATERAL_DENOMINATION, "id"),
             State(ids.ACCOUNT_STORE, "data"))(show_denomination)
    callback(Output(ids.ACCOUNT_STORE, "data", allow_duplicate=True), Output(ids.COLLATERAL_MESSAGE, "children"),
             Output(ids.COLLATERAL_DENOMINATION, "value", allow_duplicate=True),
             Input(ids.COLLATERAL_GRID, "cellValueChanged"), Input(ids.COLLATERAL_ADD, "n_clicks"),
             Input(ids.COLLATERAL_DELETE, "n_clicks"), Input(ids.COLLATERAL_DENOMINATION, "value"),
             Input(ids.COLLATERAL_PRESET_USD, "n_clicks"), Input(ids.COLLATERAL_PRESET_BTC, "n_clicks"),
             State(ids.COLLATERAL_GRID, "selectedRows"), State(ids.ACCOUNT_STORE, "data"),
             State(ids.BOOK_STORE, "data"), State(ids.MARKET_STORE, "data"),
             prevent_initial_call=True)(collateral_action)
