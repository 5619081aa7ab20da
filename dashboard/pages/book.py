"""Book page: the positions (edit, add, delete, demo books, CSV upload and download) and the
market they are priced on (spots, carry, USD rate, smile dynamics, smile table).

Every change goes through a ``state`` transition that validates it with the engine; only an
accepted change reaches the stores, so all pages recompute from it, and a refused one is reported
here (naming the row and field) while the last good book and market stay in place.
"""
from __future__ import annotations

import re
from typing import Any

import dash
from dash import Input, Output, State, callback, clientside_callback, ctx, dcc, html, no_update

from engine.listing import listed_instruments
from engine.market import market_to_dict
from engine.portfolio import write_positions
from engine.samples import DEFAULT_BOOK, DEMO_BOOKS, demo_book, demo_market

from .. import guard, ids
from ..components import (
    LIVE,
    RISK_COLUMNS,
    committed,
    error_table,
    frame_rows,
    grid,
    health,
    message,
    number_column,
    panel,
    user_action,
)
from ..stores import session as state

dash.register_page(__name__, path="/", redirect_from=["/book"], name="Book", order=0,
                   title="Book · Portfolio-margin risk")

STORES = (State(ids.BOOK_STORE, "data"), State(ids.MARKET_STORE, "data"), State(ids.SETTINGS_STORE, "data"))
#: Editable cells take free text, validated by the engine: AG Grid's number editor would turn
#: "abc" into an empty value before we could say what was wrong with it.
EDITABLE: dict[str, Any] = {"editable": True, "cellClass": "cell-editable", "cellDataType": False}

BOOK_COLUMNS = [
    {"field": "instrument", "headerName": "Instrument", "pinned": "left", "width": 215,
     "filter": "agTextColumnFilter", **EDITABLE},
    number_column("quantity", "Quantity (contracts)", ",.6~f", width=120, **EDITABLE),
    number_column("entry_price", "Entry price (USD)", ",.2f", width=120, **EDITABLE),
    *RISK_COLUMNS,
]
MARKET_GLOBAL_COLUMNS = [
    {"field": "valuation_time", "headerName": "Valuation time (UTC, read-only)", "flex": 1},
    number_column("usd_rate", "USD rate (0.05 = 5 %)", ",.4~f", flex=1, **EDITABLE),
    {"field": "sticky", "headerName": "Smile under a spot shock", "flex": 1,
     "cellEditor": "agSelectCellEditor", "cellEditorParams": {"values": ["moneyness", "strike"]},
     **EDITABLE},
]
UNDERLYING_COLUMNS = [
    {"field": "underlying", "headerName": "Underlying", "flex": 1},
    number_column("spot", "Spot (USD)", ",.6~f", flex=1, **EDITABLE),
    number_column("carry", "Carry b (0.05 = 5 % p.a.)", ",.4~f", flex=1, **EDITABLE),
]
SMILE_COLUMNS = [
    {"field": "underlying", "headerName": "Underlying", "width": 120},
    {"field": "expiry", "headerName": "Expiry (YYYY-MM-DD)", "flex": 1, **EDITABLE},
    number_column("atm_vol", "ATM vol (0.55 = 55 %)", ",.4~f", flex=1, **EDITABLE),
    number_column("skew", "Skew", ",.4~f", flex=1, **EDITABLE),
    number_column("curvature", "Curvature", ",.4~f", flex=1, **EDITABLE),
]


def _book_panel():
    return panel(
        "Book",
        html.Div([
            html.Div([
                html.Label("Demo book", htmlFor=ids.DEMO_PICKER),
                dcc.Dropdown(id=ids.DEMO_PICKER, value=DEFAULT_BOOK, clearable=False, searchable=False,
                             options=[{"label": b.title, "value": key} for key, b in DEMO_BOOKS.items()]),
                html.P(id=ids.DEMO_DESCRIPTION, className="hint"),
                html.Button("Load demo book", id=ids.DEMO_LOAD, className="button"),
            ], className="book-source"),
            html.Div([
                html.Label("Upload positions"),
                dcc.Upload(id=ids.UPLOAD, className="dropzone", max_size=guard.UPLOAD_MAX_BYTES,
                           accept=".csv,.json,.txt,text/csv,application/json",
                           children=html.Div(["Drop a CSV or JSON file here, or ", html.A("choose one"),
                                               f" ({guard.size_text(guard.UPLOAD_MAX_BYTES)})"])),
                html.P(["CSV header ", html.Code("instrument,quantity[,entry_price]"),
                        "; quantities signed (+ long, − short), prices in USD per contract."], className="hint"),
            ], className="book-source"),
            html.Div([
                html.Label("Download"),
                html.Button("Download book as CSV", id=ids.BOOK_DOWNLOAD_BUTTON, className="button secondary"),
                dcc.Download(id=ids.BOOK_DOWNLOAD),
                html.P("The file re-uploads as it is: edit it in a spreadsheet and drop it back.",
                       className="hint"),
            ], className="book-source"),
        ], className="book-sources"),
        dcc.Store(id=ids.UPLOAD_PENDING, storage_type="memory"),
        dcc.Store(id=ids.BOOK_GRID_SHOWN, storage_type="memory"),
        html.Div(id=ids.UPLOAD_REPORT),
        html.Div([
            html.Button(id=ids.UPLOAD_ACCEPT, className="button"),
            html.Button("Keep the current book", id=ids.UPLOAD_DISCARD, className="button secondary"),
        ], id=ids.UPLOAD_ACTIONS, className="actions", hidden=True),
    )


def _positions_panel():
    return panel(
        "Positions",
        html.Div([
            dcc.Input(id=ids.ADD_INSTRUMENT, placeholder="instrument, e.g. BTC-25DEC26-100000-C",
                      list=ids.INSTRUMENT_LIST, debounce=True, className="input wide"),
            html.Datalist(id=ids.INSTRUMENT_LIST),
            dcc.Input(id=ids.ADD_QUANTITY, placeholder="quantity (− short)", type="text", className="input"),
            dcc.Input(id=ids.ADD_ENTRY, placeholder="entry price USD (optional)", type="text", className="input"),
            html.Button("Add position", id=ids.ADD_BUTTON, className="button"),
            html.Button("Delete selected", id=ids.DELETE_BUTTON, className="button danger"),
            html.Button("Undo delete", id=ids.UNDO_BUTTON, className="button secondary", hidden=True),
        ], className="toolbar"),
        dcc.Store(id=ids.UNDO_STORE, storage_type="memory"),
        dcc.Store(id=ids.NEW_ROW, storage_type="memory"),
        html.Div(id=ids.BOOK_MESSAGE, **LIVE),
        grid(ids.BOOK_GRID, BOOK_COLUMNS, height=480, getRowId="params.data.id",
             dashGridOptions={"rowSelection": {"mode": "multiRow", "enableClickSelection": False},
                              "stopEditingWhenCellsLoseFocus": True, "singleClickEdit": False}),
        how_to="Yellow cells are editable: double-click one (or start typing), change it, press Enter. "
               "A new position is added at the bottom (the grid scrolls to it); a delete can be undone. "
               "Every accepted edit reprices the whole book and every page; a refused edit is named "
               "above (row and field) and the cell goes back to its last good value. Mark, value and "
               "Greeks are per position, in USD, from the engine; value is premium for options and "
               "spot, unrealised P&L for futures and perps; P&L vs entry is empty without an entry price.",
    )


def _market_panel():
    return panel(
        "Market",
        html.Div([
            grid(ids.MARKET_GLOBAL_GRID, MARKET_GLOBAL_COLUMNS, height=None, filters=False,
                 getRowId="params.data.id"),
            grid(ids.UNDERLYING_GRID, UNDERLYING_COLUMNS, height=None, filters=False, getRowId="params.data.id"),
        ], className="market-top"),
        grid(ids.SMILE_GRID, SMILE_COLUMNS, height=None, filters=False, getRowId="params.data.id"),
        html.Div([html.Button("Reset to the demo market", id=ids.MARKET_RESET, className="button secondary")],
                 className="actions"),
        html.Div(id=ids.MARKET_MESSAGE, **LIVE),
        how_to="The smile of each expiry is σ = atm_vol + skew·x + curvature·x², x = ln(K/F)/√T, "
               "floored at 1 vol point and interpolated in total variance between expiries. Vols are "
               "decimals (0.55 = 55 %). 'Smile under a spot shock': moneyness moves the smile with "
               "spot, strike keeps each strike's vol. A value the engine refuses (a zero or negative "
               "vol, a non-number) is reported with its field and not applied; so is one no market holds "
               "(a vol above 500 %, a carry or rate beyond ±100 %, a spot moved more than ×10), which is "
               "almost always a percentage typed as a number (55 for 0.55).",
    )


layout = html.Div([_book_panel(), _positions_panel(), _market_panel()], className="page")


# ----------------------------------------------------------------------------- positions


@callback(Output(ids.DEMO_DESCRIPTION, "children"), Input(ids.DEMO_PICKER, "value"))
def describe_demo(key):
    return DEMO_BOOKS[key].description if key in DEMO_BOOKS else ""


@callback(Output(ids.DEMO_PICKER, "value"), Input(ids.DEMO_PICKER, "id"), State(ids.BOOK_STORE, "data"))
def show_loaded_demo(_, book):
    """When the page is shown (e.g. after a reload), the picker names the demo book in the store."""
    return book.get("demo") if book.get("demo") in DEMO_BOOKS else DEFAULT_BOOK


def book_rows(book: dict, market: dict, settings: dict) -> list[dict]:
    """Grid rows: the stored positions with the engine's marks, values and Greeks beside them."""
    analysis, _ = state.try_analysis(book, market, settings)
    if analysis is None:
        return book["positions"]
    risk = frame_rows(analysis.positions[[c["field"] for c in RISK_COLUMNS]])
    return [dict(row, **extra) for row, extra in zip(book["positions"], risk, strict=True)]


@callback(Output(ids.BOOK_GRID, "rowData"), Output(ids.MARKET_GLOBAL_GRID, "rowData"),
          Output(ids.UNDERLYING_GRID, "rowData"), Output(ids.SMILE_GRID, "rowData"),
          Input(ids.BOOK_STORE, "data"), Input(ids.MARKET_STORE, "data"), Input(ids.SETTINGS_STORE, "data"),
          State(ids.BOOK_GRID_SHOWN, "data"))
def render(book, market, settings, shown=None):
    """Everything on the page that mirrors the stores: positions with their marks and Greeks and
    the market grids.  Nothing is sent when the grids already show this state (``shown``, the
    digest :func:`edit_cells` leaves after updating the edited rows in place).

    One callback on purpose: the writers below also run (and stop) when the page is shown, and
    Dash then skips a callback whose only inputs are stores they write.
    """
    if shown is not None and shown == state.digest(book, market, settings):
        return (no_update,) * 4
    return (book_rows(book, market, settings), *state.market_rows(market))


def instrument_options(market: dict) -> list:
    """The listed instruments of the market as ``<option>``s of the add-position box."""
    return [html.Option(value=i.name) for i in listed_instruments(state.market_of(market))]


@callback(Output(ids.INSTRUMENT_LIST, "children"), Input(ids.INSTRUMENT_LIST, "id"), Input(ids.MARKET_STORE, "data"))
def suggest_instruments(_, market):
    """Suggestions, sent when the page is shown and when the market changes, never on a book
    edit: the ~600 options cost the browser's renderer about half a second each time."""
    return instrument_options(market)


@callback(Output(ids.BOOK_STORE, "data", allow_duplicate=True),
          Output(ids.BOOK_MESSAGE, "children", allow_duplicate=True),
          Output(ids.BOOK_GRID, "rowData", allow_duplicate=True),
          Output(ids.BOOK_GRID, "rowTransaction"), Output(ids.BOOK_GRID_SHOWN, "data"),
          Output(ids.HEALTH_STRIP, "children", allow_duplicate=True),
          Input(ids.BOOK_GRID, "cellValueChanged"), *STORES, State(ids.ACCOUNT_STORE, "data"),
          prevent_initial_call=True)
def edit_cells(changes, book, market, settings, acct=None):
    """Grid edits.  ``rowData`` cannot trigger callbacks and is not needed: each change carries
    its row id, applied to the stored book.  An accepted edit answers at once with what the user
    looks at next: the edited rows, updated in place (a row's Greeks depend on that row alone),
    and the header's account figures.  It leaves the digest of the new state for :func:`render`,
    which then sends nothing (re-sending all rows would cost the browser a hundred milliseconds
    per edit); the header's own callbacks still run on the new store and find it cached.  When
    nothing was accepted the store does not change, so the rows are re-sent to put the refused
    cell back to its last good value."""
    user_action(changes)
    outcome = state.edit_positions(book, market, settings, changes)
    data, note = committed(outcome)
    if outcome.data is None:
        return data, note, book_rows(book, market, settings), no_update, no_update, no_update
    edited = {str(c.get("rowId")) for c in changes}
    rows = [r for r in book_rows(outcome.data, market, settings) if r["id"] in edited]
    strip = no_update if acct is None else health.health_items(outcome.data, market, acct)
    return (data, note, no_update, {"update": rows, "async": False}, state.digest(outcome.data, market, settings),
            strip)


@callback(Output(ids.BOOK_STORE, "data", allow_duplicate=True),
          Output(ids.BOOK_MESSAGE, "children", allow_duplicate=True),
          Output(ids.NEW_ROW, "data"), Output(ids.ADD_INSTRUMENT, "value"), Output(ids.ADD_QUANTITY, "value"),
          Output(ids.ADD_ENTRY, "value"),
          Input(ids.ADD_BUTTON, "n_clicks"),
          State(ids.ADD_INSTRUMENT, "value"), State(ids.ADD_QUANTITY, "value"), State(ids.ADD_ENTRY, "value"),
          *STORES, prevent_initial_call=True)
def add_position(n_clicks, instrument, quantity, entry_price, book, market, settings):
    """A new row at the bottom; once accepted the inputs are cleared and :data:`FLASH_NEW_ROW`
    scrolls the grid to the row and flashes it.  A refused one keeps the inputs to fix them."""
    user_action(n_clicks)
    outcome = state.add_position(book, market, settings, instrument, quantity, entry_price)
    data, note = committed(outcome)
    if outcome.data is None:
        return data, note, no_update, no_update, no_update, no_update
    return data, note, outcome.data["positions"][-1]["id"], "", "", ""


#: Scroll the book grid to the row just added and flash it; the row arrives with the next render,
#: so this waits for it (up to ~3 s).
FLASH_NEW_ROW = """(rowId, gridId) => {
    if (!rowId) return window.dash_clientside.no_update;
    let tries = 0;
    const go = () => {
        const api = dash_ag_grid.getApi(gridId), node = api && api.getRowNode(rowId);
        if (!node) { if (tries++ < 60) setTimeout(go, 50); return; }
        api.ensureNodeVisible(node, 'bottom');
        api.flashCells({rowNodes: [node]});
    };
    go();
    return window.dash_clientside.no_update;
}"""
clientside_callback(FLASH_NEW_ROW, Output(ids.NEW_ROW, "data", allow_duplicate=True), Input(ids.NEW_ROW, "data"),
                    State(ids.BOOK_GRID, "id"), prevent_initial_call=True)


@callback(Output(ids.BOOK_STORE, "data", allow_duplicate=True),
          Output(ids.BOOK_MESSAGE, "children", allow_duplicate=True),
          Output(ids.UNDO_STORE, "data"), Output(ids.UNDO_BUTTON, "hidden"),
          Input(ids.DELETE_BUTTON, "n_clicks"), State(ids.BOOK_GRID, "selectedRows"),
          *STORES, prevent_initial_call=True)
def delete_selected(n_clicks, selected, book, market, settings):
    """Delete the ticked rows; the book before is kept so that the delete can be undone."""
    user_action(n_clicks)
    outcome = state.delete_positions(book, market, settings, [r["id"] for r in selected or []])
    data, note = committed(outcome)
    if outcome.data is None:
        return data, note, no_update, no_update
    return data, note, {"before": book, "after": outcome.data}, False


@callback(Output(ids.BOOK_STORE, "data", allow_duplicate=True),
          Output(ids.BOOK_MESSAGE, "children", allow_duplicate=True),
          Output(ids.UNDO_STORE, "data", allow_duplicate=True), Output(ids.UNDO_BUTTON, "hidden", allow_duplicate=True),
          Input(ids.UNDO_BUTTON, "n_clicks"), State(ids.UNDO_STORE, "data"), State(ids.BOOK_STORE, "data"),
          prevent_initial_call=True)
def undo_delete(n_clicks, undo, book):
    """Put the deleted rows back, unless the book changed since (then that change would be lost)."""
    user_action(n_clicks and undo)
    if book != undo["after"]:
        return no_update, message(["the book changed since the delete: nothing was undone"]), None, True
    return undo["before"], message(note="delete undone"), None, True


def replaced(outcome: state.Outcome):
    """(store, message, selected rows, undo, undo hidden) of a transition that replaces the whole
    book: the grid's ticks and the undo belong to the old book and are cleared with it (the new
    book reuses the row ids 1…N, so a tick left behind would select a row never chosen)."""
    data, note = committed(outcome)
    if outcome.data is None:
        return data, note, no_update, no_update, no_update
    return data, note, [], None, True


#: Outputs of every callback that replaces the whole book (see :func:`replaced`).
REPLACE_OUTPUTS = (Output(ids.BOOK_STORE, "data", allow_duplicate=True),
                   Output(ids.BOOK_MESSAGE, "children", allow_duplicate=True),
                   Output(ids.BOOK_GRID, "selectedRows", allow_duplicate=True),
                   Output(ids.UNDO_STORE, "data", allow_duplicate=True),
                   Output(ids.UNDO_BUTTON, "hidden", allow_duplicate=True))


@callback(*REPLACE_OUTPUTS, Input(ids.DEMO_LOAD, "n_clicks"), State(ids.DEMO_PICKER, "value"),
          State(ids.MARKET_STORE, "data"), State(ids.SETTINGS_STORE, "data"), prevent_initial_call=True)
def load_demo(n_clicks, key, market, settings):
    user_action(n_clicks)
    book = demo_book(key)
    outcome = state.replace_book(book, market, settings, f"loaded the demo book '{book.name}'")
    if outcome.data is not None:
        outcome = state.Outcome(dict(outcome.data, demo=key), outcome.problems, outcome.note)
    return replaced(outcome)


@callback(Output(ids.BOOK_DOWNLOAD, "data"), Input(ids.BOOK_DOWNLOAD_BUTTON, "n_clicks"),
          State(ids.BOOK_STORE, "data"), prevent_initial_call=True)
def download_book(n_clicks, book):
    user_action(n_clicks)
    slug = re.sub(r"[^A-Za-z0-9]+", "_", book.get("name") or "book").strip("_").lower() or "book"
    return dcc.send_string(write_positions(state.book_of(book)), f"{slug}.csv")


# ----------------------------------------------------------------------------- upload


@callback(*REPLACE_OUTPUTS, Output(ids.UPLOAD_PENDING, "data"), Output(ids.UPLOAD, "contents"),
          Input(ids.UPLOAD, "contents"), State(ids.UPLOAD, "filename"),
          State(ids.MARKET_STORE, "data"), State(ids.SETTINGS_STORE, "data"), prevent_initial_call=True)
def upload(contents, filename, market, settings):
    """A clean file replaces the book at once (what it held but was not read, e.g. an unknown
    column, is said).  A file with bad rows, or without any position, never does: its errors are
    listed and its valid rows wait in ``UPLOAD_PENDING`` until the user chooses to load them.
    ``contents`` is reset so that the same file can be dropped again after fixing it."""
    user_action(contents)
    result = state.read_upload(contents, filename, market)
    if not result.errors:
        outcome = state.replace_book(result.book, market, settings,
                                     f"loaded {len(result.book)} positions from {filename}")
        data, note, *rest = replaced(outcome)
        if outcome.data is not None and result.warnings:
            note = message(note=outcome.note, warnings=result.warnings)
        return data, note, *rest, None, None
    pending = dict(state.book_data(result.book), filename=filename, csv=state.upload_is_csv(contents, filename),
                   warnings=list(result.warnings),
                   errors=[{"row": e.row, "field": e.field, "message": e.message} for e in result.errors])
    return no_update, "", no_update, no_update, no_update, pending, None


@callback(Output(ids.UPLOAD_REPORT, "children"), Output(ids.UPLOAD_ACTIONS, "hidden"),
          Output(ids.UPLOAD_ACCEPT, "children"), Input(ids.UPLOAD_PENDING, "data"))
def render_upload_report(pending):
    """Per-row error table of a refused upload, and the offer to load its valid rows."""
    if not pending:
        return None, True, ""
    errors, good = pending["errors"], len(pending["positions"])
    report = html.Div([
        html.P([html.B(pending["filename"] or "upload"),
                f": {len(errors)} problem(s), {good} valid row(s). The current book is unchanged."]),
        *error_table(errors, pending.get("csv", True)), *[html.P(w) for w in pending.get("warnings", [])],
    ], className="msg msg-error upload-report", role="alert")
    return report, good == 0, f"Load the {good} valid row{'s' if good != 1 else ''} (replace the book)"


@callback(*REPLACE_OUTPUTS, Output(ids.UPLOAD_PENDING, "data", allow_duplicate=True),
          Input(ids.UPLOAD_ACCEPT, "n_clicks"), State(ids.UPLOAD_PENDING, "data"),
          State(ids.MARKET_STORE, "data"), State(ids.SETTINGS_STORE, "data"), prevent_initial_call=True)
def accept_upload(n_clicks, pending, market, settings):
    user_action(n_clicks and pending)
    book = state.book_of(pending)
    return *replaced(state.replace_book(
        book, market, settings,
        f"loaded {len(book)} valid rows of {pending['filename']}, {len(pending['errors'])} problem(s) skipped")), None


@callback(Output(ids.UPLOAD_PENDING, "data", allow_duplicate=True),
          Input(ids.UPLOAD_DISCARD, "n_clicks"), prevent_initial_call=True)
def discard_upload(n_clicks):
    user_action(n_clicks)
    return None


# ----------------------------------------------------------------------------- market


MARKET_TABLES = {ids.MARKET_GLOBAL_GRID: "global", ids.UNDERLYING_GRID: "underlyings", ids.SMILE_GRID: "smile"}


def edit_market_table(table: str, changes, market, book, settings):
    """(store, message, rows of the three grids): rows are re-sent only when the edit was refused,
    to put the refused cell back."""
    outcome = state.edit_market(market, book, settings, table, changes)
    data, note = committed(outcome)
    rows = state.market_rows(market) if outcome.data is None else (no_update,) * 3
    return (data, note, *rows)


@callback(Output(ids.MARKET_STORE, "data", allow_duplicate=True),
          Output(ids.MARKET_MESSAGE, "children", allow_duplicate=True),
          Output(ids.MARKET_GLOBAL_GRID, "rowData", allow_duplicate=True),
          Output(ids.UNDERLYING_GRID, "rowData", allow_duplicate=True),
          Output(ids.SMILE_GRID, "rowData", allow_duplicate=True),
          *(Input(grid_id, "cellValueChanged") for grid_id in MARKET_TABLES),
          State(ids.MARKET_STORE, "data"), State(ids.BOOK_STORE, "data"), State(ids.SETTINGS_STORE, "data"),
          prevent_initial_call=True)
def edit_market(global_changes, underlying_changes, smile_changes, market, book, settings):
    changes = {ids.MARKET_GLOBAL_GRID: global_changes, ids.UNDERLYING_GRID: underlying_changes,
               ids.SMILE_GRID: smile_changes}.get(ctx.triggered_id)
    user_action(changes)
    return edit_market_table(MARKET_TABLES[ctx.triggered_id], changes, market, book, settings)


@callback(Output(ids.MARKET_STORE, "data", allow_duplicate=True),
          Output(ids.MARKET_MESSAGE, "children", allow_duplicate=True),
          Input(ids.MARKET_RESET, "n_clicks"), State(ids.BOOK_STORE, "data"), State(ids.SETTINGS_STORE, "data"),
          prevent_initial_call=True)
def reset_market(n_clicks, book, settings):
    user_action(n_clicks)
    data = market_to_dict(demo_market())
    return committed(state.checked(data, book, data, settings, "market reset to the demo snapshot"))
