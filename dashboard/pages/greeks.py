"""Greeks page: totals, then where they come from (underlying, expiry, strike), how they move
with spot, and the positions behind them: total → position, the way a risk manager reads a book.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import dash
from dash import Input, Output, Patch, State, callback, ctx, dcc, html, no_update

from .. import figures, ids
from ..components import RISK_COLUMNS, busy, frame_rows, grid, message, number_column, panel
from ..format import usd
from ..stores import session as state

dash.register_page(__name__, path="/greeks", name="Greeks", order=1, title="Greeks · Portfolio-margin risk")

STORES = (Input(ids.BOOK_STORE, "data"), Input(ids.MARKET_STORE, "data"), Input(ids.SETTINGS_STORE, "data"))

#: Summary cards: total, label, unit.
CARDS = (
    ("value", "Value", "USD: option premium, spot at market, futures and perps at unrealised P&L"),
    ("delta_usd", "Delta", "total in USD per 100 % spot move (delta × spot); per underlying in contracts "
                           "(units of the underlying) and USD"),
    ("gamma_usd_1pct", "Gamma", "USD change of $delta per 1 % spot move"),
    ("vega_per_vol_pt", "Vega", "USD per vol point"),
    ("theta_per_day", "Theta", "USD per calendar day"),
    ("pnl", "P&L vs entry", "USD, positions with an entry price"),
)

DRILL_COLUMNS = [
    {"field": "instrument", "headerName": "Instrument", "pinned": "left", "width": 215},
    {"field": "underlying", "headerName": "Underlying", "width": 115},
    number_column("strike", "Strike (USD)", ",.6~f"),
    {"field": "option_type", "headerName": "C/P", "width": 75},
    number_column("quantity", "Quantity", ",.6~f"),
    *RISK_COLUMNS,
    number_column("delta", "Delta (units)", ",.3f"),
    number_column("vol", "Vol (%)", ".1%"),
    number_column("days_to_expiry", "Days to expiry", ",.1f"),
]

layout = html.Div([
    html.Div(id=ids.GREEKS_MESSAGE),
    busy(html.Div(id=ids.GREEKS_CARDS, className="cards")),
    html.Div([
        panel("By underlying", busy(dcc.Graph(id=ids.BARS_UNDERLYING, config={"displaylogo": False})),
              how_to="Each panel is one Greek in its own unit, one bar per underlying. Click a bar to "
                     "list its positions in the drill-down below."),
        panel("By expiry", busy(dcc.Graph(id=ids.BARS_EXPIRY, config={"displaylogo": False})),
              how_to="The same Greeks split by expiry date (PERP and SPOT have none): short-dated "
                     "gamma and theta dominate near expiry, vega sits in the back months. Click a bar "
                     "to drill down."),
    ], className="row two"),
    html.Div([
        panel("Strike profile",
              dcc.Dropdown(id=ids.STRIKE_UNDERLYING, clearable=False, searchable=False, className="inline-dropdown"),
              busy(dcc.Graph(id=ids.STRIKE_PROFILE, config={"displaylogo": False})),
              how_to="Options only, summed per strike: where the book is long (blue) or short (red) "
                     "convexity and volatility relative to today's spot (dotted line). Short gamma "
                     "near spot is what hurts on a sudden move."),
        panel("Greeks vs spot", busy(dcc.Graph(id=ids.GREEKS_VS_SPOT, config={"displaylogo": False})),
              how_to="Every underlying moved by the same percentage, today, vols per the smile. The "
                     "slope of $delta is gamma: a $delta line falling left to right is a short-gamma "
                     "book that gets longer as spot falls."),
    ], className="row two"),
    panel("Positions",
          html.Div([html.Span("All positions.", id=ids.DRILL_NOTE, className="hint"),
                    html.Button("Show all positions", id=ids.DRILL_CLEAR, className="button secondary")],
                   className="toolbar"),
          busy(grid(ids.DRILL_GRID, DRILL_COLUMNS, height=460, getRowId="params.data.row")),
          how_to="One row per position, Greeks already multiplied by the quantity. Sort by any column "
                 "(e.g. Gamma, to find the largest short-gamma positions) or filter; the pinned bottom "
                 "row is the whole book's total."),
], className="page")


def delta_lines(by_underlying) -> list:
    """Per underlying, the delta in contracts (units of the underlying) and in USD: a USD total
    adds BTC and ETH exposure, which a desk hedges in coins, one underlying at a time."""
    return [html.Div([html.B(r.underlying), f" {r.delta:,.4g}".replace("-", "−"), f" · {usd(r.delta_usd)}"],
                     id=f"card-delta-{r.underlying}", className="card-detail")
            for r in by_underlying.itertuples()]


def cards(totals: dict, by_underlying=None) -> list:
    """One card per total: label, USD amount (red when negative), unit; the $delta card adds the
    delta of each underlying in contracts and USD."""
    out = []
    for key, label, unit in CARDS:
        extra = delta_lines(by_underlying) if key == "delta_usd" and by_underlying is not None else []
        out.append(html.Div([html.Div(label, className="card-label"),
                             html.Div(usd(totals[key]), id=f"card-{key}",
                                      className="card-value negative" if totals[key] < 0 else "card-value"),
                             *extra, html.Div(unit, className="card-unit")], className="card"))
    return out


class GreeksView(NamedTuple):
    """What :func:`render` fills, one field an output of :func:`render_greeks` (:data:`OUTPUTS`)."""

    message: Any
    cards: Any
    by_underlying: Any
    by_expiry: Any
    vs_spot: Any
    drill_rows: Any
    drill_options: Any
    strike_options: Any
    strike_choice: Any


OUTPUTS = GreeksView(
    Output(ids.GREEKS_MESSAGE, "children"), Output(ids.GREEKS_CARDS, "children"),
    Output(ids.BARS_UNDERLYING, "figure"), Output(ids.BARS_EXPIRY, "figure"), Output(ids.GREEKS_VS_SPOT, "figure"),
    Output(ids.DRILL_GRID, "rowData"), Output(ids.DRILL_GRID, "dashGridOptions"),
    Output(ids.STRIKE_UNDERLYING, "options"), Output(ids.STRIKE_UNDERLYING, "value"))


def render(book: dict, market: dict, settings: dict, underlying: str | None = None) -> GreeksView:
    """Cards, bars, Greeks vs spot, drill-down rows and the strike-profile choices of one state
    (keeping the chosen ``underlying`` while the book still holds it)."""
    analysis, error = state.try_analysis(book, market, settings)
    if analysis is None:
        return GreeksView(message([error]), *(no_update,) * 8)
    drill = frame_rows(analysis.positions.assign(row=[str(k) for k in range(len(analysis.positions))]))
    totals = dict(analysis.totals, row="total", instrument=f"Total ({len(drill)} positions)")
    options = list(analysis.by_underlying["underlying"])
    pinned = Patch()  # only this option changes: the rest of dashGridOptions stays as laid out
    pinned["pinnedBottomRowData"] = [totals]
    notes = message(analysis.warnings) if analysis.warnings else (
        message(note="The book is empty: add positions on the Book page.") if not drill else "")
    return GreeksView(notes, cards(analysis.totals, analysis.by_underlying), figures.by_underlying(analysis),
                      figures.by_expiry(analysis), figures.greeks_vs_spot(analysis), drill, pinned, options,
                      underlying if underlying in options else next(iter(options), None))


@callback(*OUTPUTS, *STORES,
          State(ids.STRIKE_UNDERLYING, "value"))
def render_greeks(book, market, settings, underlying):
    return render(book, market, settings, underlying)


@callback(Output(ids.STRIKE_PROFILE, "figure"), Input(ids.STRIKE_UNDERLYING, "value"), *STORES)
def render_strike_profile(underlying, book, market, settings):
    analysis, _ = state.try_analysis(book, market, settings)
    if analysis is None or underlying is None:
        return no_update
    return figures.strike_profile(analysis, underlying)


def drill_filter(point: dict | None, by_expiry: bool):
    """AG Grid filter model and note for a clicked bar (its ``customdata`` is the underlying)."""
    if not point:
        return None, "All positions."
    model = {"underlying": {"filterType": "text", "type": "equals", "filter": point["customdata"]}}
    if by_expiry:
        model["expiry"] = {"filterType": "text", "type": "equals", "filter": point["x"]}
        return model, f"Positions in {point['customdata']} expiring {point['x']}."
    return model, f"Positions in {point['customdata']}."


@callback(Output(ids.DRILL_GRID, "filterModel"), Output(ids.DRILL_NOTE, "children"),
          Input(ids.BARS_UNDERLYING, "clickData"), Input(ids.BARS_EXPIRY, "clickData"),
          Input(ids.DRILL_CLEAR, "n_clicks"), prevent_initial_call=True)
def drill_down(click_underlying, click_expiry, _):
    if ctx.triggered_id == ids.DRILL_CLEAR:
        return {}, "All positions."
    click = click_expiry if ctx.triggered_id == ids.BARS_EXPIRY else click_underlying
    model, note = drill_filter((click or {}).get("points", [None])[0], ctx.triggered_id == ids.BARS_EXPIRY)
    return model or {}, note
