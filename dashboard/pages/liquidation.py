"""Liquidation page: how the current book + account would be liquidated (docs/methodology.md §7).

Status and liquidation prices, the optimised plan against the naive orders, a replay along a
spot path, the Almgren–Chriss schedule for closing a large position, and a Derive-style Dutch
auction of the account.  The account is the Margin page's (``ACCOUNT_STORE``), read here only;
the page's own stores, their transitions and the memoised engine calls are in
:mod:`dashboard.stores.liquidation`.
"""
from __future__ import annotations

import dash
from dash import ALL, Input, Output, State, callback, dcc, html, no_update

from engine.liquidation.plan import LiquidationPlan
from engine.liquidation.replay import PRESET_PATHS
from engine.margin.account import RATIO_DANGER, RATIO_WARNING, health_status, margin_ratio

from .. import guard, ids
from ..components import KEEP, LIVE, busy, committed, frame_rows, grid, message, number_column, panel, user_action
from ..figures import liquidation as figures
from ..figures.style import message_figure
from ..format import money, ratio_text, usd
from ..stores import liquidation as liq
from ..stores.account import health

dash.register_page(__name__, path="/liquidation", name="Liquidation", order=5,
                   title="Liquidation · Portfolio-margin risk")

STORES = (Input(ids.BOOK_STORE, "data"), Input(ids.MARKET_STORE, "data"), Input(ids.ACCOUNT_STORE, "data"),
          Input(ids.LIQ_STRESS_STORE, "data"), Input(ids.LIQ_PARAMS_STORE, "data"))
#: Controls keep the user's values across page visits, as the stores they feed do.

# ----------------------------------------------------------------------------- layout

PLAN_COLUMNS = [
    {"field": "steps", "headerName": "Step(s)", "flex": 0.6, "type": "rightAligned"},
    number_column("trades", "Trades", ",.0f", flex=0.5),
    {"field": "action", "headerName": "Action", "flex": 1.4, "minWidth": 150},
    {"field": "instrument", "headerName": "Instrument", "flex": 1.6, "minWidth": 180},
    number_column("quantity", "Traded (contracts)", ",.4~f", flex=1),
    number_column("price", "Price after costs (USD; average of a run)", ",.2f", flex=1),
    number_column("cost", "Cost (USD)", ",.0f", flex=1),
    number_column("fee", "of which fee (USD)", ",.0f", flex=1),
    number_column("mm_after", "MM after (USD)", flex=1),
    number_column("equity_after", "Equity after (USD)", flex=1),
]
COMPARE_COLUMNS = [
    {"field": "policy", "headerName": "Policy", "flex": 1.2},
    {"field": "status", "headerName": "Ends", "flex": 1},
    number_column("steps", "Trades", ",.0f", flex=0.8),
    number_column("cost", "Cost (USD)", flex=1),
    number_column("fees", "of which fees (USD)", flex=1),
    number_column("equity_after", "Equity after (USD)", flex=1),
    number_column("mm_after", "MM after (USD)", flex=1),
    number_column("saved_by_optimised", "Saved by optimised (USD)", flex=1.2),
]
REPLAY_COLUMNS = [
    number_column("hours", "Hours", ",.1f", flex=0.7),
    number_column("spot_shock", "Spot shock", "+.1%", flex=0.8),
    {"field": "action", "headerName": "Action", "flex": 1.4, "minWidth": 150},
    {"field": "instrument", "headerName": "Instrument", "flex": 1.6, "minWidth": 180},
    number_column("quantity", "Traded (contracts)", ",.4~f", flex=1),
    number_column("price", "Price after costs (USD)", ",.2f", flex=1),
    number_column("cost", "Cost (USD)", ",.0f", flex=1),
]
FILL_COLUMNS = [
    number_column("minutes", "Minute", ",.1f", flex=1),
    number_column("bidder", "Bidder", ",.0f", flex=1),
    {"field": "phase", "headerName": "Phase", "flex": 1},
    number_column("discount", "Discount (of MtM)", ".1%", flex=1),
    number_column("fraction_of_original", "Book taken", ".1%", flex=1),
    number_column("cash_paid", "Bidder pays (USD)", flex=1),
    number_column("fund_payout", "Fund pays (USD)", flex=1),
]


def _param_input(f: liq.Field):
    pid = {"type": ids.LIQ_PARAM, "name": f.name}
    if f.choices:
        control = dcc.RadioItems(id=pid, value=f.shown_default, inline=True, className="radio",
                                 options=[{"label": label, "value": v} for label, v in f.choices], **KEEP)
    else:
        control = dcc.Input(id=pid, type="number", value=f.shown_default, debounce=True,
                            step=1 if f.whole else "any", className="input", **KEEP)
    return html.Div([html.Label(f.label), control], className="control")


def _params_panel():
    groups = []
    for section, title in liq.SECTIONS.items():
        children = [html.Legend(title)]
        if section == "auction":
            children.append(dcc.RadioItems(
                id=ids.LIQ_AUCTION_PRESET, value="test", className="radio", **KEEP,
                options=[{"label": "Derive test", "value": "test"}, {"label": "Derive mainnet", "value": "mainnet"},
                         {"label": "custom (below)", "value": "custom"}]))
        children += [_param_input(f) for f in liq.FIELDS if f.section == section]
        groups.append(html.Fieldset(children, className="liq-fieldset"))
    return panel(
        "Parameters",
        html.Details([html.Summary("Execution costs, plan, auction and bidders (click to edit)"),
                      html.Div(groups, className="liq-params")], className="liq-details"),
        html.Div(id=ids.LIQ_PARAMS_MESSAGE, **LIVE),
        how_to="Cost per contract = half-spread + impact + fee, impact = k·σ_daily·S·√(chunk/ADV) "
               "(options: weighted by |delta|, at least 0.1). The plan reduces positions by 'chunk' "
               "of their size (or hedges with the perpetual) until equity ≥ MM × (1 + buffer). "
               "The auction presets are Derive's published test and mainnet values. A refused value "
               "is named above and nothing changes: every chart keeps its last good result.",
    )


def _stress_panel():
    return panel(
        "Account and stress",
        html.Div([
            html.Div([html.Label("Scenario"),
                      dcc.RadioItems(id=ids.LIQ_STRESS_MODE, value="none", className="radio liq-modes",
                                     options=[{"label": v, "value": k} for k, v in liq.STRESS_MODES.items()], **KEEP)],
                     className="control"),
            html.Div([html.Label("Spot shock, all underlyings (% of spot; custom)"),
                      dcc.Slider(id=ids.LIQ_SHOCK, min=-60, max=60, step=1, value=0, updatemode="mouseup",
                                 marks={v: f"{v:+d} %" if v else "0" for v in range(-60, 61, 20)},
                                 tooltip={"placement": "bottom"}, **KEEP)], className="control wide"),
            html.Div([html.Label("Collateral override (USD; custom, empty = the account's)"),
                      dcc.Input(id=ids.LIQ_COLLATERAL, type="number", min=0, debounce=True,
                                placeholder="account's collateral", className="input", **KEEP)],
                     className="control"),
        ], className="liq-stress-controls"),
        html.Div(id=ids.LIQ_STRESS_MESSAGE, **LIVE),
        busy(html.Div(id=ids.LIQ_STATUS)),
        how_to="'Account now' is the book with the collateral and margin model chosen on the Margin page. "
               "The scenario is where everything below is computed: 'push' moves every spot a further "
               f"{liq.PUSH_BEYOND * 100:.0f} % of spot past the nearer liquidation price (or, with none within "
               f"reach, cuts the collateral until equity is {liq.PUSH_EQUITY * 100:.0f} % of MM); 'custom' applies "
               "your spot shock and collateral. The shock is a market move: futures and options are revalued "
               "there, cash and entry prices stay. Status, as in the health strip: healthy below a margin ratio "
               f"(MM ÷ equity) of {RATIO_WARNING * 100:.0f} %, warning from {RATIO_WARNING * 100:.0f} %, danger from "
               f"{RATIO_DANGER * 100:.0f} %, liquidatable when equity < MM, bankrupt when equity ≤ 0.",
    )


def _replay_panel():
    options = [{"label": label, "value": key} for key, label in liq.path_choices().items()]
    return panel(
        "Replay along a spot path",
        html.P(id=ids.LIQ_DIRECTION, className="hint"),
        html.Div([
            html.Div([html.Label("Path"),
                      dcc.RadioItems(id=ids.LIQ_PATH, value=next(iter(PRESET_PATHS)), className="radio",
                                     options=options + [{"label": "uploaded CSV", "value": "upload"}])],
                     className="control"),
            # Only for the uploaded path (each preset has its mirror above): hidden otherwise, so
            # that it never silently flips a path the user did not mean to flip.
            dcc.Checklist(id=ids.LIQ_MIRROR, value=[], className="radio",
                          options=[{"label": "mirror the uploaded path (spot shocks negated)", "value": "mirror"}]),
            dcc.Upload(id=ids.LIQ_PATH_UPLOAD, className="dropzone liq-dropzone", accept=".csv,text/csv",
                       max_size=guard.UPLOAD_MAX_BYTES,
                       children=html.Div(["Drop a path CSV (", html.Code("hours,spot_shock"), ") or ",
                                          html.A("choose one"), f" ({guard.size_text(guard.UPLOAD_MAX_BYTES)})"])),
            html.Button("Run replay", id=ids.LIQ_REPLAY_RUN, className="button"),
        ], className="toolbar"),
        html.Div(id=ids.LIQ_PATH_MESSAGE, **LIVE),
        busy(dcc.Graph(id=ids.LIQ_REPLAY, config={"displaylogo": False})),
        busy(grid(ids.LIQ_REPLAY_GRID, REPLAY_COLUMNS, height=260)),
        how_to="The account (with the scenario's collateral; the path replaces its spot shock) walks "
               "the path: spot moves for every underlying, time passes (options decay and expire), and "
               "whenever equity falls below MM the plan runs at that market. ✕ marks those points (the "
               "ratio after the plan; hover to see what was closed); the table lists every trade. "
               "A CSV path has the columns hours (from 0, increasing) and spot_shock (−0.2 = −20 %).",
    )


def _schedule_panel():
    return panel(
        "Execution schedule for a large close-out (Almgren–Chriss)",
        html.Div([
            html.Div([html.Label("Position"),
                      dcc.Dropdown(id=ids.LIQ_SCHEDULE_INSTRUMENT, placeholder="the largest position",
                                   className="liq-dropdown")], className="control"),
            html.Div([html.Label("Horizon T (days)"),
                      dcc.Input(id=ids.LIQ_SCHEDULE_DAYS, type="number", value=1.0, min=0, step="any",
                                debounce=True, className="input", **KEEP)], className="control"),
            html.Div([html.Label("Intervals N"),
                      dcc.Input(id=ids.LIQ_SCHEDULE_STEPS, type="number", value=24, min=1, step=1,
                                debounce=True, className="input", **KEEP)], className="control"),
            html.Div([html.Label("Risk aversion λ (1/USD)"),
                      dcc.Input(id=ids.LIQ_SCHEDULE_LAMBDA, type="number", value=1e-5, min=0, step="any",
                                debounce=True, className="input", **KEEP)], className="control"),
        ], className="toolbar"),
        html.Div(id=ids.LIQ_SCHEDULE_MESSAGE, **LIVE),
        html.Div([busy(dcc.Graph(id=ids.LIQ_SCHEDULE, config={"displaylogo": False})),
                  busy(dcc.Graph(id=ids.LIQ_FRONTIER, config={"displaylogo": False}))], className="row two"),
        how_to="Selling a big position fast costs impact; selling it slowly leaves it exposed to the "
               "market. The optimal trajectory (blue) trades that off at risk aversion λ: the higher λ, "
               "the more is sold early. Inputs at the scenario's market, from the cost model: σ = "
               "|delta|·S·σ_ATM/√365 (USD per contract per √day), temporary impact η = the square-root "
               "impact linearised at the average rate X/T, ε = half-spread + fee, permanent impact γ by "
               "Almgren–Chriss's rule of thumb (10 % of a day's volume moves the price by one spread).",
    )


def _auction_panel():
    return panel(
        "Dutch auction of the account (Derive)",
        busy(html.Div(id=ids.LIQ_AUCTION_SUMMARY, className="liq-summary")),
        busy(dcc.Graph(id=ids.LIQ_AUCTION, config={"displaylogo": False})),
        busy(grid(ids.LIQ_AUCTION_GRID, FILL_COLUMNS, height=None, filters=False)),
        how_to="Instead of trading the book piece by piece, the exchange auctions it: the price offered "
               "for the whole book starts at 'start' × MtM and falls; each bidder steps in when the "
               "discount reaches its reservation and buys at most the fraction that restores the buffer "
               "margin. A book worth less than nothing (MtM < 0) goes to the insolvent phase: the "
               "insurance fund pays bidders to take it; what the fund cannot pay is socialised.",
    )


layout = html.Div([
    dcc.Store(id=ids.LIQ_STRESS_STORE, storage_type="session", data=liq.DEFAULT_STRESS),
    dcc.Store(id=ids.LIQ_PARAMS_STORE, storage_type="session", data=liq.DEFAULT_PARAMS),
    dcc.Store(id=ids.LIQ_PATH_STORE, storage_type="session"),
    _stress_panel(),
    _params_panel(),
    panel("Liquidation plan",
          html.Div(id=ids.LIQ_PLAN_MESSAGE),
          busy(dcc.Graph(id=ids.LIQ_WATERFALL, config={"displaylogo": False})),
          dcc.Checklist(id=ids.LIQ_PLAN_DETAIL, value=[], className="radio", **KEEP,
                        options=[{"label": "show every trade (one row per step)", "value": "detail"}]),
          busy(grid(ids.LIQ_PLAN_GRID, PLAN_COLUMNS, height=300)),
          how_to="Bars: equity, starting from the scenario's equity; each red step is what that trade cost "
                 "(half-spread, impact and fee), the last bar is the equity left. Orange: maintenance "
                 "margin after each step. The plan takes, at each step, the trade with the most MM "
                 "relief per dollar of cost: a chunk of one position, of all positions of a kind, or a "
                 "perpetual hedge of the net delta. It stops when equity ≥ target, or at bankruptcy. "
                 "The table merges consecutive trades of one instrument into one row (Trades counts them); "
                 "tick 'show every trade' for one row per step."),
    panel("Optimised plan vs naive orders",
          busy(grid(ids.LIQ_COMPARE_GRID, COMPARE_COLUMNS, height=None, filters=False)),
          how_to="The same account liquidated three ways: the optimised plan above, closing the largest "
                 "notional first, and futures/perps first (as Deribit's engine does). 'Saved' is the "
                 "extra cost of each naive order: money the account keeps with the optimised plan."),
    _replay_panel(),
    _schedule_panel(),
    _auction_panel(),
], className="page")


# ----------------------------------------------------------------------------- writers


@callback(Output(ids.LIQ_STRESS_STORE, "data"), Output(ids.LIQ_STRESS_MESSAGE, "children"),
          Input(ids.LIQ_STRESS_MODE, "value"), Input(ids.LIQ_SHOCK, "value"), Input(ids.LIQ_COLLATERAL, "value"),
          State(ids.LIQ_STRESS_STORE, "data"))
def apply_stress(mode, shock, collateral, current):
    return committed(liq.stress_from_controls(mode, shock, collateral), current)


@callback(Output(ids.LIQ_PARAMS_STORE, "data"), Output(ids.LIQ_PARAMS_MESSAGE, "children"),
          Input({"type": ids.LIQ_PARAM, "name": ALL}, "value"), Input(ids.LIQ_AUCTION_PRESET, "value"),
          State({"type": ids.LIQ_PARAM, "name": ALL}, "id"), State(ids.LIQ_PARAMS_STORE, "data"))
def apply_params(values, preset, control_ids, current):
    shown = {cid["name"]: value for cid, value in zip(control_ids, values, strict=True)}
    return committed(liq.params_from_controls(shown, preset), current)


# ----------------------------------------------------------------------------- plan


def _card(label: str, status: str, lines: list) -> html.Div:
    return html.Div([html.Div(label, className="card-label"),
                     html.Div(status, className=f"card-value liq-status liq-{status.replace(' ', '-')}"),
                     *[html.Div(line, className="card-unit") for line in lines]], className="card liq-card")


def _account_lines(equity: float, im: float, mm: float, currency: str = "USD", spot: float = 1.0) -> list[str]:
    """USD amounts; a coin-margined account (``currency``, ``spot`` USD per coin) in its coin, USD beside."""
    return [f"equity {money(equity, currency, spot)} · IM {money(im, currency, spot)} · MM {money(mm, currency, spot)}",
            f"margin ratio MM/equity {ratio_text(margin_ratio(equity, mm))}"]


def _prices(h) -> html.Table:
    """Per underlying: spot and the liquidation prices below and above it, with the move."""
    def side(prices, shock):
        if prices is None:
            return {u: f"none within ±{h.search_range * 100:.0f} %" for u in h.spot}
        return {u: f"{p:,.6g} ({liq.pct(shock)})" for u, p in prices.items()}

    down = side(h.liquidation_price_down, h.liquidation_shock_down)
    up = side(h.liquidation_price_up, h.liquidation_shock_up)
    return html.Table([
        html.Thead(html.Tr([html.Th("Underlying"), html.Th("Spot (USD)"), html.Th("Liquidation below (USD)"),
                            html.Th("Liquidation above (USD)")])),
        html.Tbody([html.Tr([html.Td(u), html.Td(f"{s:,.6g}"), html.Td(down[u]), html.Td(up[u])])
                    for u, s in h.spot.items()]),
    ], className="liq-prices")


def plan_note(plan: LiquidationPlan):
    """What the plan did, in one sentence (red unless it ends healthy)."""
    if plan.status == "healthy":
        if plan.steps.empty:
            return message(note="Nothing to liquidate: equity is above MM under this scenario. Choose 'push' "
                                "or 'custom' above to put the account under water.")
        return message(note=f"The plan restores the account in {plan.steps['step'].nunique()} step(s) "
                            f"for {usd(plan.total_cost)}.")
    if plan.status == "bankrupt":
        socialised = f", {usd(plan.socialised_loss)} is socialised (auto-deleveraging)" if plan.socialised_loss else ""
        return message([f"Bankrupt: deficit {usd(plan.deficit)}; the insurance fund covers "
                        f"{usd(plan.insurance_fund_used)}{socialised}."])
    return message(["The plan is stuck: no trade lowers MM any more (or the step limit was reached); "
                    f"equity {usd(plan.equity_after)} against MM {usd(plan.mm_after)}."])


def plan_view(book: dict, market: dict, account: dict, stress: dict, params: dict, detail: bool = False):
    """(status cards, waterfall, plan rows, comparison rows, message) of one state; the plan rows
    merge consecutive trades of one instrument unless ``detail``."""
    h = health(book, market, account)
    sc, plans = liq.plans(book, market, account, stress, params)
    best = plans["optimised"]
    cards = html.Div([
        _card("Account now", health_status(h.equity, h.maintenance),
              _account_lines(h.equity, h.initial, h.maintenance, h.currency, h.currency_spot)
              + [f"model {account['model']}, collateral {money(h.collateral, h.currency, h.currency_spot)}"]),
        _card("Under the scenario", health_status(best.equity_before, best.mm_before),
              _account_lines(best.equity_before, best.im_before, best.mm_before, h.currency,
                             h.currency_spot * (1.0 + sc.spot_shock)) + [sc.description]),
        html.Div([html.Div("Liquidation prices (equity = MM, every spot moved alike)", className="card-label"),
                  _prices(h)], className="card liq-card liq-prices-card"),
    ], className="liq-cards")
    steps = best.steps.assign(steps=best.steps["step"].astype(str), trades=1) if detail else \
        liq.merged_steps(best.steps)
    return (cards, figures.plan_waterfall(best, liq.settings_of(params).plan.buffer), frame_rows(steps),
            frame_rows(liq.comparison(plans)), plan_note(best))


@callback(Output(ids.LIQ_STATUS, "children"), Output(ids.LIQ_WATERFALL, "figure"),
          Output(ids.LIQ_PLAN_GRID, "rowData"), Output(ids.LIQ_COMPARE_GRID, "rowData"),
          Output(ids.LIQ_PLAN_MESSAGE, "children"), *STORES, Input(ids.LIQ_PLAN_DETAIL, "value"))
def render_plan(book, market, account, stress, params, detail):
    return plan_view(book, market, account, stress, params, "detail" in (detail or []))


# ----------------------------------------------------------------------------- replay


@callback(Output(ids.LIQ_PATH_STORE, "data"), Output(ids.LIQ_PATH, "value"),
          Output(ids.LIQ_PATH_MESSAGE, "children", allow_duplicate=True), Output(ids.LIQ_PATH_UPLOAD, "contents"),
          Input(ids.LIQ_PATH_UPLOAD, "contents"), State(ids.LIQ_PATH_UPLOAD, "filename"), prevent_initial_call=True)
def upload_path(contents, filename):
    """A good file becomes the selected path; a bad one is reported and the last good one stays.
    ``contents`` is reset so that the same file can be dropped again after fixing it."""
    user_action(contents)
    outcome = liq.read_path(contents, filename)
    if outcome.data is None:
        return no_update, no_update, message(outcome.problems), None
    return outcome.data, "upload", message(note=outcome.note), None


def replay_view(book: dict, market: dict, account: dict, stress: dict, params: dict, path_key: str,
                mirror: bool, uploaded: dict | None):
    """(figure, trade rows, message) of a replay; a refused path keeps the last good chart."""
    mirror = mirror and path_key == "upload"
    try:
        result = liq.replay_result(book, market, account, stress, params, liq.replay_path(path_key, mirror, uploaded))
    except ValueError as exc:  # no upload yet, or a (mirrored) path outside the engine's range
        return no_update, no_update, message([str(exc)])
    trades = result.trades[[c["field"] for c in REPLAY_COLUMNS]]
    return figures.replay_chart(result, liq.path_label(path_key, mirror, uploaded)), frame_rows(trades), ""


@callback(Output(ids.LIQ_DIRECTION, "children"), Output(ids.LIQ_MIRROR, "style"), Input(ids.BOOK_STORE, "data"),
          Input(ids.MARKET_STORE, "data"), Input(ids.ACCOUNT_STORE, "data"), Input(ids.LIQ_PATH, "value"))
def replay_direction(book, market, account, path_key):
    """Which way spot must go to liquidate this account; the mirror box only for an upload."""
    return liq.threat_note(health(book, market, account)), None if path_key == "upload" else {"display": "none"}


@callback(Output(ids.LIQ_REPLAY, "figure"), Output(ids.LIQ_REPLAY_GRID, "rowData"),
          Output(ids.LIQ_PATH_MESSAGE, "children"), Input(ids.LIQ_REPLAY_RUN, "n_clicks"), *STORES,
          State(ids.LIQ_PATH, "value"), State(ids.LIQ_MIRROR, "value"), State(ids.LIQ_PATH_STORE, "data"))
def render_replay(n_clicks, book, market, account, stress, params, path_key, mirror, uploaded):
    """Runs on the button, then follows the account and parameters while the page is open."""
    if not n_clicks:
        return message_figure("Choose a path and press Run replay."), [], ""
    return replay_view(book, market, account, stress, params, path_key, "mirror" in (mirror or []), uploaded)


# ----------------------------------------------------------------------------- schedule


def schedule_view(book: dict, market: dict, account: dict, stress: dict, params: dict, instrument, days, steps, lam):
    """(position choices, trajectory, frontier, message); without a choice, or when the chosen
    instrument left the book, the largest position is the one closed."""
    sizes = liq.positions_by_size(book, market, account, stress)
    options = [{"label": f"{name} ({usd(n)} notional)", "value": name} for name, n in sizes]
    problems = liq.schedule_problems(days, steps, lam) if sizes else ["the book has no positions to close"]
    if problems:
        return options, no_update, no_update, message(problems)
    names = [name for name, _ in sizes]
    inputs = liq.schedule_inputs(book, market, account, stress, params, instrument if instrument in names else names[0],
                                 float(days))
    try:
        trajectory, frontier = liq.schedule(inputs, days, steps, lam)
    except ValueError as exc:
        return options, no_update, no_update, message([f"{exc} — the last good schedule stays"])
    used = (f"X = {inputs.X:,.4g} contracts, σ = {inputs.sigma:,.4g} USD/√day, η = {inputs.eta:,.4g} "
            f"USD·day/contract², γ = {inputs.gamma:,.4g} USD/contract², ε = {inputs.epsilon:,.4g} USD/contract")
    return (options, figures.schedule_chart(trajectory, inputs.instrument),
            figures.frontier_chart(frontier, trajectory), html.P(used, className="hint"))


@callback(Output(ids.LIQ_SCHEDULE_INSTRUMENT, "options"), Output(ids.LIQ_SCHEDULE, "figure"),
          Output(ids.LIQ_FRONTIER, "figure"), Output(ids.LIQ_SCHEDULE_MESSAGE, "children"), *STORES,
          Input(ids.LIQ_SCHEDULE_INSTRUMENT, "value"), Input(ids.LIQ_SCHEDULE_DAYS, "value"),
          Input(ids.LIQ_SCHEDULE_STEPS, "value"), Input(ids.LIQ_SCHEDULE_LAMBDA, "value"))
def render_schedule(book, market, account, stress, params, instrument, days, steps, lam):
    return schedule_view(book, market, account, stress, params, instrument, days, steps, lam)


# ----------------------------------------------------------------------------- auction


def auction_view(book: dict, market: dict, account: dict, stress: dict, params: dict):
    """(summary, figure, fill rows) of the auction of the account under the scenario."""
    _, plans = liq.plans(book, market, account, stress, params)
    best = plans["optimised"]
    result = liq.auction(best, params)
    if result is None:
        return (message(note="No auction: equity is above MM under this scenario."),
                message_figure("Stress the account above to see it auctioned."), [])
    facts = [("outcome", result.outcome.replace("_", " ")), ("MtM at start", usd(best.equity_before)),
             ("margin balance at start (MM′ = equity − MM; below 0: the shortfall the auction must cover)",
              usd(best.equity_before - best.mm_before)),
             ("book sold", f"{(1 - result.fraction_left) * 100:.1f} %"),
             ("cash from bidders", usd(result.cash_received)),
             ("fund payout", usd(result.fund_payout)), ("socialised (beyond the fund)", usd(result.fund_shortfall))]
    summary = html.Div([html.Span([f"{label} ", html.B(value)]) for label, value in facts], className="liq-facts")
    fills = result.fills_frame.assign(minutes=lambda f: f["time"] / 60.0)
    fund = liq.settings_of(params).plan.insurance_fund
    return summary, figures.auction_chart(result, fund), frame_rows(fills[[c["field"] for c in FILL_COLUMNS]])


@callback(Output(ids.LIQ_AUCTION_SUMMARY, "children"), Output(ids.LIQ_AUCTION, "figure"),
          Output(ids.LIQ_AUCTION_GRID, "rowData"), *STORES)
def render_auction(book, market, account, stress, params):
    return auction_view(book, market, account, stress, params)
