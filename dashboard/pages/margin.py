"""Margin page: the account (collateral, model, preset), every margin model side by side on the
same book, the selected model's scenario matrix, components and attribution by position, its
parameters, a what-if trade and the margin-minimising hedge.

Total → component → underlying → position, the way a risk manager drills into a requirement.
Account changes go through ``dashboard.stores.account``'s transitions: a value the engine refuses is
reported here and never stored, so every figure keeps its last good result.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import dash
import pandas as pd
from dash import Input, Output, State, callback, ctx, dcc, html, no_update

from engine.listing import listed_instruments
from engine.margin import MODELS, summary
from engine.margin.account import HEALTH_LEVELS, RATIO_DANGER, RATIO_WARNING, health_status, margin_ratio
from engine.margin.params import describe
from engine.margin.risk_based import preset_info

from .. import ids
from ..components import KEEP, LIVE, busy, collateral, committed, grid, message, number_column, panel, user_action
from ..figures import margin as figures
from ..format import COIN_SYMBOLS, NO_EQUITY, usd
from ..stores import account
from ..stores import session as state

dash.register_page(__name__, path="/margin", name="Margin", order=3, title="Margin · Portfolio-margin risk")
collateral.register_callbacks()

STORES = (Input(ids.BOOK_STORE, "data"), Input(ids.MARKET_STORE, "data"), Input(ids.ACCOUNT_STORE, "data"))
STORE_STATES = (State(ids.ACCOUNT_STORE, "data"), State(ids.BOOK_STORE, "data"), State(ids.MARKET_STORE, "data"))
#: View-only controls keep the user's choice across page visits.
DEFAULT_TOP = 15
GRAPH: dict[str, Any] = {"displaylogo": False}

#: Five rows: no column filters.
_SHORT: dict[str, Any] = {"filter": False, "flex": 1}
#: Amounts in the account's currency (row's ``currency``, ``spot`` USD per coin) with USD beside.
_MONEY: dict[str, Any] = {"valueFormatter": {"function": (
    "params.value == null ? '' : params.data.currency == 'USD' ? d3.format(',.0f')(params.value) : "
    "params.data.symbol + d3.format(',.4f')(params.value) + ' ($' + d3.format('.3s')(params.value * params.data.spot)"
    ".replace('G', 'B') + ')'")}}
SIDE_BY_SIDE_COLUMNS = [
    {"field": "label", "headerName": "Model", "flex": 1.3, "minWidth": 160},
    number_column("initial", "IM (account currency)", **_SHORT, **_MONEY),
    number_column("maintenance", "MM (account currency)", **_SHORT, **_MONEY),
    # The level is the engine's (health_status), carried by the row; no equity left is an empty
    # (infinite) ratio, shown as such.
    number_column("margin_ratio", "Margin ratio (MM ÷ equity)", ".1%", **_SHORT, valueFormatter={
        "function": f"params.value == null ? '{NO_EQUITY}' : d3.format('.1%')(params.value)"},
        cellClassRules={f"level-{level}": f"params.data.level == '{level}'" for level in HEALTH_LEVELS}),
    number_column("available", "Available (equity − IM, account currency)", **_SHORT, **_MONEY),
    number_column("capital_efficiency", "Capital efficiency (standard IM ÷ IM)", ",.2f", **_SHORT),
    {"field": "binding", "headerName": "Binding scenario per underlying", "flex": 2.4, "minWidth": 240,
     "wrapText": True, "autoHeight": True},
]

#: What each parameter means, with its unit and range (the engine's parameter metadata).
PARAM_HELP = {i.name: f"{i.unit}: {i.description}; range {i.range_text}"
              for spec in MODELS.values() for i in describe(spec.params_type)}

PARAM_COLUMNS = [
    {"field": "id", "headerName": "Parameter", "flex": 1.2, "minWidth": 180},
    {"field": "value", "headerName": "Value (edit)", "flex": 1, "editable": True, "cellDataType": False,
     "cellClass": "cell-editable", "cellClassRules": {"param-changed": "params.value !== params.data.default"}},
    {"field": "default", "headerName": "Published default", "flex": 1, "cellDataType": False},
    {"field": "help", "headerName": "Meaning and unit", "flex": 3, "wrapText": True, "autoHeight": True},
]
SCENARIO_COLUMNS = [
    {"field": "spot", "headerName": "Spot shock (fraction: −0.16 = −16 %)", "flex": 1, "editable": True,
     "cellDataType": False, "cellClass": "cell-editable"},
    {"field": "vol", "headerName": "Vol (up / none / down)", "flex": 1, "editable": True,
     "cellEditor": "agSelectCellEditor", "cellEditorParams": {"values": ["up", "none", "down"]},
     "cellClass": "cell-editable"},
    {"field": "weight", "headerName": "Weight (× P&L)", "flex": 1, "editable": True, "cellDataType": False,
     "cellClass": "cell-editable"},
]


# ----------------------------------------------------------------------------- layout


def _account_panel():
    return panel(
        "Account and margin model",
        html.Div([
            html.Div([
                html.Div([html.Label("Collateral (USD cash)", htmlFor=ids.MARGIN_COLLATERAL),
                          dcc.Input(id=ids.MARGIN_COLLATERAL, type="text", inputMode="decimal", debounce=True,
                                    className="input")], className="control"),
                html.Div([html.Label("Margin model"),
                          dcc.RadioItems(id=ids.MARGIN_MODEL, className="radio stacked",
                                         options=[{"label": s.title, "value": m} for m, s in MODELS.items()])],
                         className="control"),
                html.Div([html.Label("Risk-based preset (published exchange parameters)"),
                          dcc.RadioItems(id=ids.MARGIN_PRESET, className="radio stacked",
                                         options=[{"label": f"{p}: {preset_info(p)['title']}", "value": p}
                                                  for p in MODELS["risk_based"].presets])], className="control"),
            ], className="margin-controls"),
            busy(dcc.Graph(id=ids.MARGIN_GAUGE, config=GRAPH)),
        ], className="margin-account"),
        html.Div(id=ids.MARGIN_ACCOUNT_MESSAGE, **LIVE),
        how_to=f"Equity = collateral + the book's mark-to-market. The selected model sets IM, MM and the "
               f"health strip at the top of every page. Margin ratio = MM ÷ equity: green below "
               f"{RATIO_WARNING * 100:g} %, amber from {RATIO_WARNING * 100:g} %, red from "
               f"{RATIO_DANGER * 100:g} % (our early-warning levels); the black line at 100 % is "
               f"where equity = MM and the account can be liquidated. Distance to liquidation is the "
               f"move of every underlying by the same % at which equity = MM, with the model's MM "
               f"recomputed at the moved prices. Choosing a preset loads its published parameters.",
    )


def _table_panel():
    return panel(
        "All models on this book",
        busy(grid(ids.MARGIN_TABLE, SIDE_BY_SIDE_COLUMNS, height=None, filters=False, getRowId="params.data.model",
             rowClassRules={"selected-model": "params.data.selected"})),
        how_to="One row per model, the selected one highlighted, each with its own parameters. Margin ratio "
               "and available use the account's equity, which is the same under every model. Capital "
               "efficiency above 1 means the model asks less than standard margin. The binding scenario is "
               "the one whose (weighted) loss sets the scenario part of IM.")


def _bars_row():
    return html.Div([
        panel("IM and MM per model", busy(dcc.Graph(id=ids.MARGIN_BARS, config=GRAPH)),
              how_to="Dark bars IM, light bars MM, USD; the dashed line is the account's equity: a model "
                     "whose MM bar reaches it would liquidate the account."),
        panel("From components to IM", busy(dcc.Graph(id=ids.MARGIN_WATERFALL, config=GRAPH)),
              how_to="The selected model's formula step by step, USD: the worst scenario loss, then the "
                     "contingencies added to it, floors and minimums only by how much they raise the "
                     "requirement, then factors; the last bar is IM. Zero steps are left out."),
    ], className="row two")


def _scenario_panel():
    return panel(
        "Scenario matrix of the selected model",
        busy(dcc.Graph(id=ids.MARGIN_SCENARIOS, config=GRAPH)),
        how_to="Each cell is the book's P&L (USD) in one scenario of the model, times the scenario's weight, "
               "one row of cells per underlying. Red loses. The box marks the binding cell: the worst "
               "weighted loss, which the model charges. Tail scenarios (e.g. +500 %) carry small weights "
               "(Deribit: 0.16 ÷ |move|), so a far move can still bind a book of short calls.")


def _attribution_panel():
    return panel(
        "Attribution by position",
        html.Div([
            html.Div([html.Label("Measure"),
                      dcc.RadioItems(id=ids.MARGIN_ATTRIBUTION_BASIS, value="marginal", inline=True, className="radio",
                                     options=[{"label": "Marginal", "value": "marginal"},
                                              {"label": "Scaled to IM", "value": "scaled"}], **KEEP)]),
            html.Div([html.Label("Largest (count)", htmlFor=ids.MARGIN_ATTRIBUTION_TOP),
                      dcc.Input(id=ids.MARGIN_ATTRIBUTION_TOP, type="number", min=1, max=100, step=1,
                                value=DEFAULT_TOP, debounce=True, className="input narrow", **KEEP)]),
            html.Div([html.Label("Underlying"),
                      dcc.RadioItems(id=ids.MARGIN_ATTRIBUTION_UNDERLYING, value="all", inline=True,
                                     className="radio", options=[{"label": "All", "value": "all"}])]),
        ], className="toolbar"),
        busy(dcc.Graph(id=ids.MARGIN_ATTRIBUTION, config=GRAPH)),
        how_to="Marginal: how much IM falls if the position alone is closed (negative: the position "
               "hedges the rest, closing it raises IM). Marginals of a hedged book need not add up to "
               "IM; 'scaled' multiplies them by IM ÷ Σ marginal so that they do, which exaggerates "
               "every bar when Σ marginal is small (the factor is in the subtitle). The rest of the "
               "positions are grouped in one bar.",
    )


def _trade_column():
    return html.Div([
        panel("What-if trade",
              html.Div([
                  dcc.Input(id=ids.WHATIF_INSTRUMENT, placeholder="instrument, e.g. BTC-PERPETUAL",
                            list=ids.WHATIF_LIST, debounce=True, className="input wide"),
                  html.Datalist(id=ids.WHATIF_LIST),
                  dcc.Input(id=ids.WHATIF_QUANTITY, placeholder="quantity (− sells)", type="text",
                            debounce=True, className="input"),
                  html.Button("Compute", id=ids.WHATIF_BUTTON, className="button"),
              ], className="toolbar"),
              html.Div(id=ids.WHATIF_RESULT, **LIVE),
              how_to="IM and MM of the book before and after the trade under the selected model, without "
                     "changing the book. A trade that offsets the binding scenario lowers IM even though "
                     "it adds a position."),
        panel("Margin-minimising hedge",
              html.Div([html.Button("Find the hedge", id=ids.HEDGE_BUTTON, className="button"),
                        html.Button("Add the hedge to the book", id=ids.HEDGE_ADD, className="button secondary",
                                    disabled=True)], className="toolbar"),
              html.Div(id=ids.HEDGE_RESULT, **LIVE),
              html.Div(id=ids.HEDGE_MESSAGE, **LIVE),
              how_to="For each underlying, the perpetual quantity (contracts, + buys) that makes the "
                     "selected model's IM smallest. Adding it writes the trades to the book like any new "
                     "row, so every page recomputes; the hedge then found is (close to) nothing."),
    ], className="stack")


def _params_panel():
    return panel(
        "Parameters of the selected model",
        html.P(id=ids.PARAMS_SOURCE, className="hint"),
        grid(ids.PARAMS_GRID, PARAM_COLUMNS, height=None, filters=False, getRowId="params.data.id",
             dashGridOptions={"stopEditingWhenCellsLoseFocus": True}),
        html.Div([
            html.H4("Scenarios (risk-based)", className="subtitle"),
            html.Div([html.Button("Add scenario", id=ids.SCENARIO_ADD, className="button secondary"),
                      html.Button("Delete selected", id=ids.SCENARIO_DELETE, className="button danger")],
                     className="actions"),
            grid(ids.SCENARIO_GRID, SCENARIO_COLUMNS, height=360, filters=False, getRowId="params.data.id",
                 dashGridOptions={"rowSelection": {"mode": "multiRow", "enableClickSelection": False},
                                  "stopEditingWhenCellsLoseFocus": True}),
        ], id=ids.SCENARIO_SECTION),
        html.Div([html.Button("Reset to published defaults", id=ids.PARAMS_RESET, className="button secondary")],
                 className="actions"),
        html.Div(id=ids.PARAMS_MESSAGE, **LIVE),
        how_to="Yellow cells are editable (double-click, type, Enter); a value that differs from the "
               "published default is bold. Every accepted edit recomputes every figure and the health "
               "strip. A value the engine refuses (a negative range, a factor above 10, an empty "
               "scenario list, a non-number) is reported above and not applied: the last good result "
               "stays. Lists are written like [-0.1, 0.1].",
    )


def _explain_panel():
    return panel(
        "How to read this page",
        html.Div([
            html.Div([
                html.H4("Hedged versus naked", className="subtitle"),
                html.P("Standard margin charges every short option on its own and gives nothing for the "
                       "long options next to it, so the short iron condor (a short strangle with long "
                       "wings) needs exactly the naked strangle's standard IM. A portfolio model "
                       "revalues the whole book in each scenario: beyond the wings the long options gain "
                       "what the short ones lose, the worst loss is capped at the distance between the "
                       "strikes, and IM falls to a fraction."),
                html.H4("Long options under a risk-based model", className="subtitle"),
                html.P("Standard margin asks nothing beyond the premium for a long option: the premium is "
                       "all it can lose. A portfolio model counts the options' value as equity and "
                       "margins what that value can lose in its scenarios (a vol drop, a move against the hedge), so "
                       "a delta-hedged long straddle needs more than its perp's standard margin: capital "
                       "efficiency below 1."),
                html.H4("Reading a requirement", className="subtitle"),
                html.P("Start from IM in the table, see which step of the waterfall makes it, which "
                       "underlying's scenario binds in the matrix, and which positions drive it in the "
                       "attribution; the what-if box and the hedge show how to bring it down."),
            ], className="explain-text"),
            html.Div([html.H4("The demo books on this market", className="subtitle"),
                      html.Div(id=ids.MARGIN_EXAMPLES)], className="explain-examples"),
        ], className="explain"),
    )


layout = html.Div([
    _account_panel(),
    collateral.collateral_panel(),
    html.Div(id=ids.MARGIN_MESSAGE),
    _table_panel(),
    _bars_row(),
    _scenario_panel(),
    html.Div([_attribution_panel(), _trade_column()], className="row two"),
    _params_panel(),
    _explain_panel(),
], className="page margin-page")


# ----------------------------------------------------------------------------- account controls


def account_controls(acct: dict) -> tuple:
    """(collateral, model, preset) shown for the stored account."""
    return acct["collateral"], acct["model"], account.preset(acct)


@callback(Output(ids.MARGIN_COLLATERAL, "value"), Output(ids.MARGIN_MODEL, "value"),
          Output(ids.MARGIN_PRESET, "value"), Input(ids.MARGIN_COLLATERAL, "id"), State(ids.ACCOUNT_STORE, "data"))
def show_account(_, acct):
    """Fill the controls from the store once, when the page is shown.  The store is a State: as
    an Input it would close a loop with :func:`change_account`, which Dash refuses."""
    return account_controls(acct)


def change_account(trigger, collateral, model, preset, acct: dict, book: dict, market: dict):
    """(store, message) after the user changed a control.  Dash also runs this when the page is
    shown (its output is a shell store, see ``components.user_action``), with the controls still at
    their empty layout values: those are ignored, :func:`show_account` fills them from the store
    and the values it sets equal the store, so they change nothing."""
    value = {ids.MARGIN_COLLATERAL: collateral, ids.MARGIN_MODEL: model, ids.MARGIN_PRESET: preset}.get(trigger)
    user_action(value is not None)
    if trigger == ids.MARGIN_COLLATERAL:
        outcome = account.set_collateral(acct, book, market, collateral)
    elif trigger == ids.MARGIN_MODEL:
        outcome = account.select_model(acct, book, market, model)
    else:
        outcome = account.select_preset(acct, book, market, preset)
    # A refused value does not stay in its box: the one in force goes back, beside the message.
    refused = outcome.data is None and outcome.problems
    return (*committed(outcome), acct["collateral"] if refused and trigger == ids.MARGIN_COLLATERAL else no_update)


@callback(Output(ids.ACCOUNT_STORE, "data", allow_duplicate=True), Output(ids.MARGIN_ACCOUNT_MESSAGE, "children"),
          Output(ids.MARGIN_COLLATERAL, "value", allow_duplicate=True),
          Input(ids.MARGIN_COLLATERAL, "value"), Input(ids.MARGIN_MODEL, "value"), Input(ids.MARGIN_PRESET, "value"),
          *STORE_STATES, prevent_initial_call=True)
def account_change(collateral, model, preset, acct, book, market):
    return change_account(ctx.triggered_id, collateral, model, preset, acct, book, market)


# ----------------------------------------------------------------------------- results


def side_by_side(results: dict, health) -> list[dict]:
    """Rows of the side-by-side table: every model's IM, MM, ratio and available on the account's
    equity (the same for every model), capital efficiency and binding scenarios."""
    table = summary(results)
    rows = []
    # results are in the account's currency (coin-margined: coin); so is equity here
    equity = health.in_currency(health.equity)
    coin = {"currency": health.currency, "spot": health.currency_spot,
            "symbol": COIN_SYMBOLS.get(health.currency, "")}
    for r in table.itertuples():
        result = results[r.model]
        rows.append({**coin,
            "model": r.model, "label": figures.model_label(r.model, result.params),
            "initial": r.initial, "maintenance": r.maintenance,
            "margin_ratio": None if equity <= 0 else margin_ratio(equity, r.maintenance),
            "level": health_status(equity, r.maintenance),
            "available": equity - r.initial,
            "capital_efficiency": None if math.isnan(r.capital_efficiency) else r.capital_efficiency,
            "binding": "; ".join(f"{u}: {s}" for u, s in result.binding_scenario.items()) or "—",
            "selected": r.model == health.model,
        })
    return rows


def examples_table(rows: list[dict], model: str) -> html.Table:
    head = ["Demo book", "Standard IM (USD)", f"{MODELS[model].short_name} IM (USD)", "Capital efficiency"]
    body = [html.Tr([html.Td(r["book"]), html.Td(usd(r["standard"])), html.Td(usd(r["model"])),
                     html.Td(f"×{r['standard'] / r['model']:,.2f}" if r["model"] > 0 else "—")]) for r in rows]
    return html.Table([html.Thead(html.Tr([html.Th(h) for h in head])), html.Tbody(body)], className="margin-table")


class MarginView(NamedTuple):
    """What :func:`render` fills, one field an output of :func:`render_margin` (:data:`OUTPUTS`)."""

    message: Any
    gauge: Any
    table_rows: Any
    bars: Any
    scenarios: Any
    waterfall: Any
    params_source: Any
    params_rows: Any
    scenario_editor_hidden: Any
    scenario_rows: Any
    examples: Any


OUTPUTS = MarginView(
    Output(ids.MARGIN_MESSAGE, "children"), Output(ids.MARGIN_GAUGE, "figure"), Output(ids.MARGIN_TABLE, "rowData"),
    Output(ids.MARGIN_BARS, "figure"), Output(ids.MARGIN_SCENARIOS, "figure"), Output(ids.MARGIN_WATERFALL, "figure"),
    Output(ids.PARAMS_SOURCE, "children"), Output(ids.PARAMS_GRID, "rowData"), Output(ids.SCENARIO_SECTION, "hidden"),
    Output(ids.SCENARIO_GRID, "rowData"), Output(ids.MARGIN_EXAMPLES, "children"))


def render(book: dict, market: dict, acct: dict) -> MarginView:
    """Everything on the page that mirrors the stores: message, gauge, side-by-side rows and bars,
    scenario matrix, waterfall, parameter editor and the examples.

    One callback on purpose: the page's store writers also run (and stop) when it is shown, and
    Dash then skips a callback whose only inputs are stores they write.
    """
    try:
        results = account.margins(book, market, acct)
        health = account.health(book, market, acct)
    except Exception as exc:  # the UI boundary: keep the last good figures, say why
        return MarginView(message([f"margin could not be computed: {exc}"]), *(no_update,) * 10)
    model = acct["model"]
    result = results[model]
    rows = side_by_side(results, health)
    if model == "risk_based":
        info = preset_info(account.preset(acct))
        source = f"{info['title']}. Source: {info['source']} Notes: {info['notes']}"
    else:
        source = MODELS[model].source
    bars = figures.model_bars(pd.DataFrame(rows), health.in_currency(health.equity), health.currency)
    return MarginView("" if book["positions"] else message(note="The book is empty: add positions on the Book page."),
                      figures.ratio_gauge(health), rows, bars,
                      figures.scenario_heatmap(result), figures.im_waterfall(result),
                      source, param_grid_rows(acct, model), model != "risk_based", account.scenario_rows(acct),
                      examples_table(account.examples(market, acct), model))


@callback(*OUTPUTS, *STORES)
def render_margin(book, market, acct):
    return render(book, market, acct)


@callback(Output(ids.WHATIF_LIST, "children"), Input(ids.WHATIF_LIST, "id"), Input(ids.MARKET_STORE, "data"))
def suggest_instruments(_, market):
    """The listed instruments for the what-if box: sent when the page is shown and when the
    market changes, not on every book or account change (see the Book page)."""
    return [html.Option(value=i.name) for i in listed_instruments(state.market_of(market))]


def attribution(book: dict, market: dict, acct: dict, basis: str, top, underlying: str):
    """(figure, underlying choices, chosen underlying) of the selected model's attribution."""
    result = account.margins(book, market, acct)[acct["model"]]
    unds = list(result.by_underlying["underlying"])
    options = [{"label": "All", "value": "all"}] + [{"label": u, "value": u} for u in unds]
    chosen = underlying if underlying in unds else "all"
    count = int(top) if top and top >= 1 else DEFAULT_TOP
    return (figures.attribution_bars(result, basis, count, None if chosen == "all" else chosen), options, chosen)


@callback(Output(ids.MARGIN_ATTRIBUTION, "figure"), Output(ids.MARGIN_ATTRIBUTION_UNDERLYING, "options"),
          Output(ids.MARGIN_ATTRIBUTION_UNDERLYING, "value"), *STORES,
          Input(ids.MARGIN_ATTRIBUTION_BASIS, "value"), Input(ids.MARGIN_ATTRIBUTION_TOP, "value"),
          Input(ids.MARGIN_ATTRIBUTION_UNDERLYING, "value"))
def render_attribution(book, market, acct, basis, top, underlying):
    return attribution(book, market, acct, basis, top, underlying)


# ----------------------------------------------------------------------------- parameters


def param_grid_rows(acct: dict, model: str) -> list[dict]:
    return [dict(r, help=PARAM_HELP.get(r["id"], "")) for r in account.param_rows(acct, model)]


def edit_params(trigger, payload, selected, acct: dict, book: dict, market: dict):
    """(store, message, parameter rows, scenario rows) of a parameter-editor action.  A refused
    edit re-sends both grids from the unchanged account, putting the bad cell back."""
    model = acct["model"]
    if trigger == ids.PARAMS_GRID:
        outcome = account.set_params(acct, book, market, model, payload)
    elif trigger == ids.SCENARIO_GRID:
        outcome = account.edit_scenarios(acct, book, market, payload)
    elif trigger == ids.SCENARIO_ADD:
        outcome = account.add_scenario(acct, book, market)
    elif trigger == ids.SCENARIO_DELETE:
        outcome = account.delete_scenarios(acct, book, market, [r["id"] for r in selected or []])
    else:
        outcome = account.reset_params(acct, book, market, model)
    data, note = committed(outcome)
    if outcome.data is not None:
        return data, note, no_update, no_update
    return data, note, param_grid_rows(acct, model), account.scenario_rows(acct)


@callback(Output(ids.ACCOUNT_STORE, "data", allow_duplicate=True),
          Output(ids.PARAMS_MESSAGE, "children"),
          Output(ids.PARAMS_GRID, "rowData", allow_duplicate=True),
          Output(ids.SCENARIO_GRID, "rowData", allow_duplicate=True),
          Input(ids.PARAMS_GRID, "cellValueChanged"), Input(ids.SCENARIO_GRID, "cellValueChanged"),
          Input(ids.SCENARIO_ADD, "n_clicks"), Input(ids.SCENARIO_DELETE, "n_clicks"),
          Input(ids.PARAMS_RESET, "n_clicks"), State(ids.SCENARIO_GRID, "selectedRows"), *STORE_STATES,
          prevent_initial_call=True)
def parameter_action(param_changes, scenario_changes, add, delete, reset, selected, acct, book, market):
    payload = {ids.PARAMS_GRID: param_changes, ids.SCENARIO_GRID: scenario_changes, ids.SCENARIO_ADD: add,
               ids.SCENARIO_DELETE: delete, ids.PARAMS_RESET: reset}[ctx.triggered_id]
    user_action(payload)
    return edit_params(ctx.triggered_id, payload, selected, acct, book, market)


# ----------------------------------------------------------------------------- what-if and hedge


def _before_after(rows) -> html.Table:
    """A small table of (label, before, after) in USD with the change."""
    return html.Table([
        html.Thead(html.Tr([html.Th(""), html.Th("Before (USD)"), html.Th("After (USD)"), html.Th("Change (USD)")])),
        html.Tbody([html.Tr([html.Td(label), html.Td(usd(a)), html.Td(usd(b)),
                             html.Td(usd(b - a), className="negative" if b > a else "positive")])
                    for label, a, b in rows]),
    ], className="margin-table")


def what_if_view(n_clicks, instrument, quantity, book: dict, market: dict, acct: dict):
    """IM/MM before and after the trade for the selected model (kept up to date once asked)."""
    if not n_clicks:
        return html.P("Enter an instrument and a quantity, then Compute.", className="hint")
    result, problems = account.trial_trade(book, market, acct, instrument, quantity)
    if result is None:
        return message(problems)
    return html.Div([
        html.P(f"{instrument} × {quantity} under {MODELS[result.model].title}:", className="hint"),
        _before_after([("Initial margin", result.initial_before, result.initial_after),
                       ("Maintenance margin", result.maintenance_before, result.maintenance_after)]),
    ])


@callback(Output(ids.WHATIF_RESULT, "children"), Input(ids.WHATIF_BUTTON, "n_clicks"), *STORES,
          State(ids.WHATIF_INSTRUMENT, "value"), State(ids.WHATIF_QUANTITY, "value"))
def render_what_if(n_clicks, book, market, acct, instrument, quantity):
    return what_if_view(n_clicks, instrument, quantity, book, market, acct)


def hedge_view(n_clicks, book: dict, market: dict, acct: dict):
    """(hedge table, add button disabled) for the selected model, kept up to date once asked."""
    if not n_clicks:
        return html.P("Find the perpetual hedge that minimises IM under the selected model.", className="hint"), True
    plan = account.hedge(book, market, acct)
    if not plan.hedges:
        return html.P("The book is empty: nothing to hedge.", className="hint"), True
    table = html.Table([
        html.Thead(html.Tr([html.Th(h) for h in ("Underlying", "Hedge", "Contracts (+ buy)", "IM before (USD)",
                                                 "IM after (USD)")])),
        html.Tbody([html.Tr([html.Td(h.underlying), html.Td(h.instrument), html.Td(f"{h.quantity:,.4f}"),
                             html.Td(usd(h.initial_before)), html.Td(usd(h.initial_after))]) for h in plan.hedges]),
    ], className="margin-table")
    total = _before_after([("Initial margin, whole book", plan.initial_before, plan.initial_after)])
    none = [] if plan.trades else [html.P("No perpetual trade lowers IM: the book is already hedged for this "
                                          "model.", className="hint")]
    return html.Div([table, total, *none]), not plan.trades


@callback(Output(ids.HEDGE_RESULT, "children"), Output(ids.HEDGE_ADD, "disabled"),
          Input(ids.HEDGE_BUTTON, "n_clicks"), *STORES)
def render_hedge(n_clicks, book, market, acct):
    return hedge_view(n_clicks, book, market, acct)


@callback(Output(ids.BOOK_STORE, "data", allow_duplicate=True), Output(ids.HEDGE_MESSAGE, "children"),
          Input(ids.HEDGE_ADD, "n_clicks"), State(ids.BOOK_STORE, "data"), State(ids.MARKET_STORE, "data"),
          State(ids.SETTINGS_STORE, "data"), State(ids.ACCOUNT_STORE, "data"), prevent_initial_call=True)
def add_hedge(n_clicks, book, market, settings, acct):
    user_action(n_clicks)
    return committed(account.add_hedge(book, market, settings, acct))
