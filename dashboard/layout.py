"""The shell around every page, and the small building blocks the pages share.

Shell, top to bottom: the three stores (the only per-user state, see ``state``), the navbar
(one link per registered page, in ``order``), the header area, then Dash's page container.

The header area is a row of *strips*: each entry of :data:`HEADER_STRIPS` is a function returning
one component, and each strip's callbacks are registered in :func:`register_callbacks`.  A later
strip (account health, say) is one function appended there; no page changes.
"""
from __future__ import annotations

import math

import dash
import dash_ag_grid as dag
import pandas as pd
from dash import Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from . import account, guard, ids, presentation, state
from .figures.style import usd
from .lessons import player as lesson_player
from .workspaces import web as workspaces

# ----------------------------------------------------------------------------- building blocks


def panel(title: str, *children, how_to: str | None = None, className: str = "",
          how_to_folded: bool = False) -> html.Section:
    """A titled card; ``how_to`` is the short "how to read this" for trainers under the content
    (``how_to_folded``: behind a click, where the page needs the height)."""
    body = [html.H3(title, className="panel-title"), *children]
    if how_to and how_to_folded:
        body.append(html.Details([html.Summary("How to read this"), how_to], className="how-to"))
    elif how_to:
        body.append(html.P([html.Strong("How to read this: "), how_to], className="how-to"))
    return html.Section(body, className=f"panel {className}".strip())


def message(problems=(), note: str = "", warnings=()) -> html.Div | str:
    """Problems as a red list (each names its row or field), else a quiet green note, with any
    ``warnings`` (what was applied but deserves a look) as an amber list under it."""
    if problems:
        return html.Div([html.Ul([html.Li(p) for p in problems])], className="msg msg-error", role="alert")
    if warnings:
        return html.Div([html.Div(note), html.Ul([html.Li(w) for w in warnings])], className="msg msg-warning",
                        role="status")
    return html.Div(note, className="msg msg-ok") if note else ""


#: Work longer than this shows a spinner over the old figures, dimmed as stale (the CSS rule on
#: ``data-dash-is-loading`` dims any other output after the same delay).
BUSY_AFTER_MS = 500


def busy(child) -> dcc.Loading:
    """``child`` (a figure, a grid, cards) behind a spinner once a computation for it takes over
    :data:`BUSY_AFTER_MS`; the last figures stay visible, dimmed, so that nobody reads them as
    the current ones."""
    return dcc.Loading(child, type="circle", delay_show=BUSY_AFTER_MS, color="#1f6feb",
                       overlay_style={"visibility": "visible", "opacity": 0.4, "filter": "grayscale(0.6)"})


def user_action(trigger) -> None:
    """Stop a store-writing callback that was not triggered by the user.

    Dash honours ``prevent_initial_call`` only when a callback's outputs arrive in the layout with
    its inputs; a page's buttons and grids arrive with the page while the stores live in the
    shell, so their writers also run each time the page is shown, with an empty trigger
    (``n_clicks`` None, ``cellValueChanged`` None).  Without this they would, e.g., reload the
    demo book on every visit.
    """
    if not trigger:
        raise PreventUpdate


def _fmt(spec: str) -> dict:
    """AG Grid value formatter with a d3 format; empty cells stay empty."""
    return {"function": f"params.value == null ? '' : d3.format('{spec}')(params.value)"}


def number_column(field: str, header: str, spec: str = ",.0f", **extra) -> dict:
    return {"field": field, "headerName": header, "type": "rightAligned",
            "valueFormatter": _fmt(spec), "filter": "agNumberColumnFilter", **extra}


#: Mark, value, P&L and Greeks of a position, as the engine computes them (docs/methodology.md §4 units).
RISK_COLUMNS = [
    {"field": "kind", "headerName": "Kind", "width": 100},
    {"field": "expiry", "headerName": "Expiry", "width": 115},
    number_column("mark", "Mark (USD)", ",.2f"),
    number_column("value", "Value (USD)"),
    number_column("pnl", "P&L vs entry (USD)"),
    number_column("delta_usd", "$delta (USD)"),
    number_column("gamma_usd_1pct", "Gamma (USD/1 %)"),
    number_column("vega_per_vol_pt", "Vega (USD/vol pt)"),
    number_column("theta_per_day", "Theta (USD/day)"),
]


def grid(grid_id: str, column_defs: list[dict], height: int | None = 420, filters: bool = True,
         **props) -> dag.AgGrid:
    """An AG Grid with the house defaults: sortable, resizable columns with wrapped headers,
    compact rows, column filters unless ``filters=False`` (short tables); ``height=None`` sizes
    the grid to its rows."""
    options = {"animateRows": False, "rowHeight": 34, **props.pop("dashGridOptions", {})}
    if height is None:
        options["domLayout"] = "autoHeight"
    return dag.AgGrid(
        id=grid_id, columnDefs=column_defs, rowData=[],
        defaultColDef={"sortable": True, "resizable": True, "filter": filters, "minWidth": 80,
                       "suppressHeaderMenuButton": not filters, "wrapHeaderText": True,
                       "autoHeaderHeight": True},
        dashGridOptions=options, className="grid",
        style={"width": "100%"} if height is None else {"height": f"{height}px", "width": "100%"},
        **props)


def frame_rows(frame: pd.DataFrame) -> list[dict]:
    """JSON rows of a frame: NaN (no entry price, no strike) becomes an empty cell."""
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
            for row in frame.to_dict("records")]


# ----------------------------------------------------------------------------- shell


def navbar() -> html.Nav:
    pages = sorted(dash.page_registry.values(), key=lambda p: p["order"])
    links = [dcc.Link(p["name"], href=p["relative_path"], className="nav-link",
                      id={"type": ids.NAV_LINK, "index": p["relative_path"]}) for p in pages]
    return html.Nav([
        html.Div([html.Span("◧", className="brand-mark"), "Portfolio-margin risk"], className="brand"),
        html.Div(links, className="nav-links"),
        presentation.controls(),
    ], className="navbar")


def context_strip() -> html.Div:
    """Which book on which market: filled from the stores by :func:`book_context`."""
    return html.Div(id=ids.CONTEXT_STRIP, className="strip context-strip")


#: Header strips, left to right; see the module docstring.
HEADER_STRIPS = (context_strip, account.health_strip, workspaces.history_strip)


def shell() -> html.Div:
    book, market, settings = state.default_stores()
    return html.Div([
        # "callback-nav": a callback writing the path (the lesson player) changes page without a reload.
        dcc.Location(id=ids.URL, refresh="callback-nav"),
        dcc.Store(id=ids.BOOK_STORE, storage_type="session", data=book),
        dcc.Store(id=ids.MARKET_STORE, storage_type="session", data=market),
        dcc.Store(id=ids.SETTINGS_STORE, storage_type="session", data=settings),
        dcc.Store(id=ids.ACCOUNT_STORE, storage_type="session", data=account.default_account()),
        presentation.store(),
        *lesson_player.stores(),
        navbar(),
        html.Header([strip() for strip in HEADER_STRIPS], id=ids.HEADER, className="header"),
        guard.state_banner(),
        html.Main(dash.page_container, className="content"),
        lesson_player.player(),
    ], className="app")


def book_context(book: dict, market: dict, settings: dict):
    """Book name and size, valuation time, spots, the book's value, and engine warnings."""
    spots = " · ".join(f"{name} {u['spot']:,.6g}" for name, u in market["underlyings"].items())
    analysis, error = state.try_analysis(book, market, settings)
    items = [
        html.Span([html.B(book.get("name") or "unnamed book"), " (edited)" if book.get("edited") else "",
                   f" · {len(book['positions'])} positions"]),
        html.Span(f"valuation {market['valuation_time'].replace('T', ' ').replace('Z', ' UTC')}"),
        html.Span(f"spot {spots}"),
        html.Span(f"smile sticky {market['sticky']}"),
    ]
    if analysis is not None:
        items.append(html.Span(["value ", html.B(usd(analysis.totals["value"]))]))
        items += [html.Span(w, className="strip-warning") for w in analysis.warnings]
    if error:
        items.append(html.Span(error, className="strip-warning"))
    return items


def register_callbacks(app: dash.Dash) -> None:
    """Shell callbacks, bound to ``app`` (the page modules register their own with the pages)."""
    presentation.register_callbacks(app)
    lesson_player.register_callbacks(app)
    guard.register_callbacks(app)
    app.callback(Output(ids.CONTEXT_STRIP, "children"), Input(ids.BOOK_STORE, "data"),
                 Input(ids.MARKET_STORE, "data"), Input(ids.SETTINGS_STORE, "data"))(book_context)
    app.callback(Output(ids.HEALTH_STRIP, "children"), Input(ids.BOOK_STORE, "data"),
                 Input(ids.MARKET_STORE, "data"), Input(ids.ACCOUNT_STORE, "data"))(account.health_items)
    workspaces.register_callbacks(app)
    app.callback(Output(ids.HEALTH_LIQUIDATION, "children"), Input(ids.BOOK_STORE, "data"),
                 Input(ids.MARKET_STORE, "data"), Input(ids.ACCOUNT_STORE, "data"))(account.liquidation_items)
    # Highlighting the current page is view-only: done in the browser.
    app.clientside_callback(
        """(path, links) => links.map(l => 'nav-link' +
              (path === l.index || (l.index !== '/' && path.startsWith(l.index + '/')) ? ' active' : ''))""",
        Output({"type": ids.NAV_LINK, "index": dash.ALL}, "className"),
        Input(ids.URL, "pathname"), State({"type": ids.NAV_LINK, "index": dash.ALL}, "id"))
