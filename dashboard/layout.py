"""The shell around every page (the building blocks pages share are in :mod:`dashboard.components`).

Shell, top to bottom: the three stores (the only per-user state, see :mod:`dashboard.stores`), the
state of the background computations (:func:`dashboard.background.stores`), the navbar
(one link per registered page, in ``order``), the header area, then Dash's page container.

The header area is a row of *strips*: each entry of :data:`HEADER_STRIPS` is a function returning
one component, and each strip's callbacks are registered in :func:`register_callbacks`.  A later
strip (account health, say) is one function appended there; no page changes.
"""
from __future__ import annotations

import dash
from dash import Input, Output, State, dcc, html

from . import background, guard, ids, presentation
from .components import health
from .format import usd
from .lessons import player as lesson_player
from .stores import account
from .stores import session as state
from .workspaces import web as workspaces

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
HEADER_STRIPS = (context_strip, health.health_strip, workspaces.history_strip)


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
        *background.stores(),
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
                 Input(ids.MARKET_STORE, "data"), Input(ids.ACCOUNT_STORE, "data"))(health.health_items)
    workspaces.register_callbacks(app)
    app.callback(Output(ids.HEALTH_LIQUIDATION, "children"), Input(ids.BOOK_STORE, "data"),
                 Input(ids.MARKET_STORE, "data"), Input(ids.ACCOUNT_STORE, "data"))(health.liquidation_items)
    # Highlighting the current page is view-only: done in the browser.
    app.clientside_callback(
        """(path, links) => links.map(l => 'nav-link' +
              (path === l.index || (l.index !== '/' && path.startsWith(l.index + '/')) ? ' active' : ''))""",
        Output({"type": ids.NAV_LINK, "index": dash.ALL}, "className"),
        Input(ids.URL, "pathname"), State({"type": ids.NAV_LINK, "index": dash.ALL}, "id"))
