"""Risk page: portfolio VaR / ES three ways with its drivers and a backtest; real crypto crashes
replayed on the book with the liquidation moment; the spot × vol move that breaks the account;
the margin change to a crash's most stressed point explained position by position (docs/var.md).

Per-user state beyond the shell's stores, in session ``dcc.Store`` on this page (JSON):

* ``RISK_HISTORY_STORE``: ``{"name": str, "csv": str}`` of an uploaded price history, or None
  for the shipped BTC/ETH demo history;
* ``RISK_CORR_STORE``: ``{"names": [factor names], "matrix": [[...]]}`` of an edited
  correlation, or None for ``engine.var.default_correlation``; used when the names match the
  book's factors;
* ``RISK_EPISODE_STORE``: a list of uploaded episodes (``CrashEpisode.to_dict()``).

The account (collateral, margin model and parameters) is the Margin page's ``ACCOUNT_STORE``,
read only.  Every engine call is memoised by content (``state.memoise``).
"""
from __future__ import annotations

import logging
from typing import Any

import dash
import numpy as np
from dash import Input, Output, State, callback, ctx, dcc, html, no_update

from engine.crashes import (
    episode_from_dict,
    load_library,
    margin_explain,
    read_episode_csv,
    replay_episode,
    reverse_stress,
    shocked_market,
)
from engine.margin import compute
from engine.var import (
    CONFIDENCES,
    DISTRIBUTIONS,
    METHODS,
    HistoryError,
    backtest,
    check_correlation,
    compute_var,
    default_correlation,
    demo_history,
    factor_names,
    history_factors,
    market_factors,
    read_history,
)

from .. import guard, ids
from ..components import KEEP, LIVE, committed, grid, message, panel, user_action
from ..figures import risk as figures
from ..figures.style import message_figure
from ..format import usd
from ..stores import session as state
from ..stores.account import collateral_usd, model_params

log = logging.getLogger(__name__)

dash.register_page(__name__, path="/risk", name="Risk", order=4, title="Risk · Portfolio-margin risk")

LIBRARY = load_library()
SAMPLE_METHODS = ("monte_carlo", "historical", "filtered_historical")
DEFAULTS: dict[str, Any] = {"method": "monte_carlo", "confidence": 0.99, "horizon": 1, "paths": 10_000,
                            "distribution": "normal", "nu": 5.0, "vol_source": "market"}


def _control(label, component):
    return html.Div([html.Label(label), component], className="control")


def _var_controls():
    return html.Div([
        _control("Method", dcc.Dropdown(id=ids.RISK_METHOD, value=DEFAULTS["method"], clearable=False,
                                        options=[{"label": v, "value": k} for k, v in METHODS.items()], **KEEP)),
        _control("Confidence", dcc.RadioItems(id=ids.RISK_CONFIDENCE, value=DEFAULTS["confidence"], inline=True,
                                              className="radio", **KEEP,
                                              options=[{"label": f"{100 * c:g} %", "value": c} for c in CONFIDENCES])),
        _control("Horizon (days)", dcc.Input(id=ids.RISK_HORIZON, type="number", value=DEFAULTS["horizon"], min=1,
                                             max=365, step=1, debounce=True, className="input", **KEEP)),
        _control("Monte Carlo paths", dcc.Input(id=ids.RISK_PATHS, type="number", value=DEFAULTS["paths"], min=100,
                                                max=100_000, step=100, debounce=True, className="input", **KEEP)),
        _control("Distribution", dcc.RadioItems(id=ids.RISK_DISTRIBUTION, value=DEFAULTS["distribution"], inline=True,
                                                className="radio", **KEEP,
                                                options=[{"label": "normal", "value": "normal"},
                                                         {"label": "Student-t", "value": "student_t"}])),
        _control("Student-t ν", dcc.Input(id=ids.RISK_NU, type="number", value=DEFAULTS["nu"], min=2.1, max=1000,
                                          step="any", debounce=True, className="input", **KEEP)),
        _control("Volatilities from", dcc.RadioItems(id=ids.RISK_VOL_SOURCE, value=DEFAULTS["vol_source"],
                                                     inline=True, className="radio", **KEEP,
                                                     options=[{"label": "market (ATM implied)", "value": "market"},
                                                              {"label": "history (EWMA)", "value": "history"}])),
    ], className="controls")


def _var_panel():
    return panel(
        "Value at risk and expected shortfall",
        _var_controls(),
        html.Div(id=ids.RISK_MESSAGE, **LIVE),
        dcc.Loading(dcc.Graph(id=ids.RISK_TABLE, config={"displaylogo": False}), type="dot", delay_show=400),
        html.Div([dcc.Graph(id=ids.RISK_HISTOGRAM, config={"displaylogo": False}),
                  dcc.Graph(id=ids.RISK_COMPONENTS, config={"displaylogo": False})], className="row two"),
        how_to="VaR is the loss the book should not exceed over the horizon with the chosen confidence; "
               "ES is the average loss beyond it. Parametric methods use the Greeks (delta; delta, gamma and "
               "vega with a Cornish–Fisher correction); Monte Carlo and historical simulation reprice every "
               "position in every scenario. The bars split VaR into the share of each position (they add "
               "up to the total; a hedge's share is negative).",
    )


def _inputs_panel():
    return panel(
        "Risk factors: correlation and history",
        html.Div([
            html.Div([
                html.H4("Correlation of the factors", className="subtitle"),
                grid(ids.RISK_CORR_GRID, [], height=None, filters=False),
                html.Button("Reset correlation", id=ids.RISK_CORR_RESET, className="button secondary"),
                html.Div(id=ids.RISK_CORR_MESSAGE, **LIVE),
            ], className="control wide"),
            html.Div([
                html.H4("Price history", className="subtitle"),
                dcc.Upload(id=ids.RISK_HISTORY_UPLOAD, className="dropzone", accept=".csv,text/csv",
                           max_size=guard.UPLOAD_MAX_BYTES,
                           children=html.Div(["Drop a history CSV (", html.Code("date,BTC,ETH[,BTC_vol]"), ") or ",
                                              html.A("choose one"), f" ({guard.size_text(guard.UPLOAD_MAX_BYTES)})"])),
                html.Button("Use the demo history", id=ids.RISK_HISTORY_RESET, className="button secondary"),
                html.Div(id=ids.RISK_HISTORY_MESSAGE, **LIVE),
            ], className="control wide"),
        ], className="row two"),
        how_to="Factors per underlying: its spot return and the change of its ATM implied vol (vol points). "
               "Edit a correlation and its mirror cell follows; a matrix that contradicts itself (not positive "
               "semi-definite) is refused with a message. The history drives historical simulation, the "
               "backtest and, if chosen, the volatilities; the demo is real BTC/ETH daily closes "
               "(June 2020 – June 2021, MIT licence), without a vol index, so vols stay flat in its scenarios.",
    )


def episode_choices(eps: dict) -> list[dict]:
    return [{"label": e.title, "value": k} for k, e in eps.items()]


def _crash_panel():
    return panel(
        "Historical crashes on this book",
        html.Div([
            _control("Episode", dcc.Dropdown(id=ids.RISK_EPISODE, value=next(iter(LIBRARY)), clearable=False,
                                             options=episode_choices(LIBRARY), **KEEP)),
            _control("Stable-coin collateral (USD face)", dcc.Input(id=ids.RISK_STABLE, type="number", value=0, min=0,
                                                                    debounce=True, className="input", **KEEP)),
            dcc.Upload(id=ids.RISK_EPISODE_UPLOAD, className="dropzone", accept=".csv,text/csv",
                       max_size=guard.UPLOAD_MAX_BYTES,
                       children=html.Div(["Add an episode CSV (", html.Code("hours,BTC,ETH[,BTC_vol,stable]"), ") or ",
                                          html.A("choose one"), f" ({guard.size_text(guard.UPLOAD_MAX_BYTES)})"])),
        ], className="toolbar"),
        html.Div(id=ids.RISK_EPISODE_MESSAGE, **LIVE),
        html.Div(id=ids.RISK_REPLAY_MESSAGE, **LIVE),
        dcc.Loading(dcc.Graph(id=ids.RISK_REPLAY, config={"displaylogo": False}), type="dot", delay_show=400),
        dcc.Graph(id=ids.RISK_EXPLAIN, config={"displaylogo": False}),
        html.Details([html.Summary("Sources of this episode"), html.Div(id=ids.RISK_EPISODE_SOURCES)]),
        how_to="Each point of the episode moves today's market: every spot by the episode's move, every smile by "
               "its ATM vol change (time is held at today, so only the market move counts). Equity is collateral "
               "plus mark-to-market (minus the stable coin's loss); MM and IM come from the margin model chosen on "
               "the Margin page. The dotted line marks the first moment equity falls under MM, and the message "
               "says what the liquidation plan would close then. The waterfall explains the IM change from now to "
               "the liquidation moment (or the episode's most stressed point), position by position.",
    )


def _boundary_panel():
    return panel(
        "How far from breaking: reverse stress",
        html.Div(id=ids.RISK_BOUNDARY_MESSAGE, **LIVE),
        dcc.Loading(dcc.Graph(id=ids.RISK_BOUNDARY, config={"displaylogo": False}), type="dot", delay_show=400),
        how_to="Colour: equity minus maintenance margin if every spot moved by x % and every vol by y points at "
               "once; red is liquidated. The black line is where equity = MM. The star is the most likely of those "
               "moves under the VaR factor model (smallest Mahalanobis distance, in standard deviations) and its "
               "probability ≈ Φ(−d). With stable-coin collateral, the title gives the depeg that alone liquidates.",
    )


def _backtest_panel():
    return panel(
        "Backtest on the history",
        dcc.Loading(dcc.Graph(id=ids.RISK_BACKTEST, config={"displaylogo": False}), type="dot", delay_show=400),
        how_to="Today's book held fixed and revalued under each day's real move; the line is the one-day VaR "
               "forecast from the previous window. Crosses are exceptions. Kupiec tests their number, "
               "Christoffersen whether they cluster (p < 0.05: the model is rejected).",
    )


layout = html.Div([
    dcc.Store(id=ids.RISK_HISTORY_STORE, storage_type="session"),
    dcc.Store(id=ids.RISK_CORR_STORE, storage_type="session"),
    dcc.Store(id=ids.RISK_EPISODE_STORE, storage_type="session", data=[]),
    _var_panel(),
    _inputs_panel(),
    _backtest_panel(),
    _crash_panel(),
    _boundary_panel(),
], className="page risk-page")


# ----------------------------------------------------------------------------- engine calls


def history_of(stored: dict | None):
    """The uploaded history, or the demo history (raises HistoryError on a bad upload)."""
    if not stored:
        return state.memoise("risk-demo-history", [], demo_history)
    return state.memoise("risk-history", stored, lambda: read_history(stored["csv"], stored.get("name", "")))


def correlation_of(stored: dict | None, names) -> np.ndarray:
    """The stored correlation when it is for these factors, else the default."""
    if stored and list(stored.get("names", [])) == list(names):
        return np.asarray(stored["matrix"], dtype=float)
    return default_correlation(len(names) // 2)


def factors_of(analysis, horizon: float, corr: dict | None, vol_source: str, history_store: dict | None):
    unds = analysis.arrays.underlyings
    correlation = correlation_of(corr, factor_names(unds))
    if vol_source == "history":
        return history_factors(history_of(history_store), unds, horizon, market=analysis.market,
                               correlation=correlation)
    return market_factors(analysis.market, unds, horizon, correlation=correlation)


def checked_controls(method, confidence, horizon, paths, distribution, nu) -> tuple[dict, list[str]]:
    """The controls as engine arguments, and the problems (each naming its control)."""
    problems = []
    if method not in METHODS:
        problems.append(f"method: choose one of {', '.join(METHODS.values())}")
    if confidence not in CONFIDENCES:
        problems.append("confidence: choose 95, 99 or 99.9 %")
    if horizon is None or not float(horizon).is_integer() or not 1 <= horizon <= 365:
        problems.append("horizon: a whole number of days from 1 to 365")
    if paths is None or not float(paths).is_integer() or not 100 <= paths <= 100_000:
        problems.append("paths: a whole number from 100 to 100,000")
    if distribution not in DISTRIBUTIONS:
        problems.append("distribution: normal or Student-t")
    if distribution == "student_t" and (nu is None or not 2 < nu <= 1000):
        problems.append("Student-t ν: a number above 2 (the variance is infinite at 2) and at most 1000")
    args = {"horizon": int(horizon or 1), "paths": int(paths or 100), "distribution": distribution,
            "nu": float(nu or 5.0)}
    return args, problems


def var_results(book, market, settings, corr, history_store, vol_source, args: dict) -> dict:
    """Every method at every confidence (memoised by content)."""
    def run():
        a = state.analysis(book, market, settings)
        f = factors_of(a, args["horizon"], corr, vol_source, history_store)
        history = history_of(history_store)
        return {m: compute_var(a, m, factors=f, history=history, horizon_days=args["horizon"], paths=args["paths"],
                               distribution=args["distribution"], nu=args["nu"]) for m in METHODS}
    return state.memoise("risk-var", [state.digest(book, market, settings), corr, history_store, vol_source, args],
                         run)


def var_view(book, market, settings, corr, history_store, method, confidence, horizon, paths, distribution, nu,
             vol_source):
    """(table, histogram, components, message); a refused control keeps the last good charts."""
    args, problems = checked_controls(method, confidence, horizon, paths, distribution, nu)
    if problems:
        return no_update, no_update, no_update, message(problems)
    try:
        results = var_results(book, market, settings, corr, history_store, vol_source, args)
    except (ValueError, HistoryError) as exc:
        return no_update, no_update, no_update, message([str(exc)])
    r = results[method]
    notes = list(r.notes)
    if method in SAMPLE_METHODS:
        notes.append(f"{len(r.pnl):,} scenarios")
    if distribution == "student_t" and method in ("delta_gamma", "historical", "filtered_historical"):
        notes.append("the Student-t choice applies to delta-normal and Monte Carlo; this method does not use it")
    return (figures.var_table(results, method), figures.pnl_histogram(r, confidence),
            figures.component_bars(r, confidence), message(note=" · ".join(notes)))


@callback(Output(ids.RISK_TABLE, "figure"), Output(ids.RISK_HISTOGRAM, "figure"), Output(ids.RISK_COMPONENTS, "figure"),
          Output(ids.RISK_MESSAGE, "children"),
          Input(ids.BOOK_STORE, "data"), Input(ids.MARKET_STORE, "data"), Input(ids.SETTINGS_STORE, "data"),
          Input(ids.RISK_CORR_STORE, "data"), Input(ids.RISK_HISTORY_STORE, "data"),
          Input(ids.RISK_METHOD, "value"), Input(ids.RISK_CONFIDENCE, "value"), Input(ids.RISK_HORIZON, "value"),
          Input(ids.RISK_PATHS, "value"), Input(ids.RISK_DISTRIBUTION, "value"), Input(ids.RISK_NU, "value"),
          Input(ids.RISK_VOL_SOURCE, "value"))
def render_var(*args):
    return var_view(*args)


# ----------------------------------------------------------------------------- backtest


def backtest_view(book, market, settings, history_store, method, confidence):
    method = method if method in ("historical", "filtered_historical") else "historical"

    def run():
        h = history_of(history_store)
        window = min(250, max(20, (len(h.prices) - 1) // 2))
        return backtest(state.analysis(book, market, settings), h, confidence, window, method)
    try:
        bt = state.memoise("risk-backtest", [state.digest(book, market, settings), history_store, method,
                                             confidence], run)
    except (ValueError, HistoryError) as exc:
        return message_figure(f"No backtest: {exc}")
    return figures.backtest_chart(bt)


@callback(Output(ids.RISK_BACKTEST, "figure"), Input(ids.BOOK_STORE, "data"), Input(ids.MARKET_STORE, "data"),
          Input(ids.SETTINGS_STORE, "data"), Input(ids.RISK_HISTORY_STORE, "data"), Input(ids.RISK_METHOD, "value"),
          Input(ids.RISK_CONFIDENCE, "value"))
def render_backtest(*args):
    return backtest_view(*args)


# ----------------------------------------------------------------------------- inputs


def _decoded(contents: str) -> str:
    try:
        return state.upload_bytes(contents).decode("utf-8-sig")
    except ValueError:  # UnicodeDecodeError is one
        raise ValueError("the file could not be read as UTF-8 text") from None


def history_upload(contents: str, filename: str, book: dict, market: dict, settings: dict) -> state.Outcome:
    """A history upload checked by the engine (and against the book's underlyings)."""
    try:
        text = _decoded(contents)
        h = read_history(text, filename or "uploaded history")
        a = state.analysis(book, market, settings)
        h.require(a.arrays.underlyings)
    except (ValueError, HistoryError) as exc:
        return state.Outcome(None, (f"{filename or 'the file'}: {exc} — the previous history stays",))
    return state.Outcome({"name": filename or "uploaded history", "csv": text}, (),
                         f"{filename}: {len(h.prices)} days, {h.prices.index[0].date()} – {h.prices.index[-1].date()}")


@callback(Output(ids.RISK_HISTORY_STORE, "data"), Output(ids.RISK_HISTORY_MESSAGE, "children"),
          Output(ids.RISK_HISTORY_UPLOAD, "contents"),
          Input(ids.RISK_HISTORY_UPLOAD, "contents"), Input(ids.RISK_HISTORY_RESET, "n_clicks"),
          State(ids.RISK_HISTORY_UPLOAD, "filename"), State(ids.BOOK_STORE, "data"), State(ids.MARKET_STORE, "data"),
          State(ids.SETTINGS_STORE, "data"), prevent_initial_call=True)
def change_history(contents, reset, filename, book, market, settings):
    if ctx.triggered_id == ids.RISK_HISTORY_RESET:
        user_action(reset)
        return None, message(note="using the demo history"), None
    user_action(contents)
    outcome = history_upload(contents, filename, book, market, settings)
    if outcome.data is None:
        return no_update, message(outcome.problems), None
    return outcome.data, message(note=outcome.note), None


def correlation_rows(names, matrix) -> tuple[list[dict], list[dict]]:
    """(columns, rows) of the correlation editor: one row per factor, the diagonal locked."""
    columns = [{"field": "factor", "headerName": "", "pinned": "left", "minWidth": 110}] + [
        {"field": str(k), "headerName": n, "editable": {"function": f"params.data.row !== {k}"},
         "type": "rightAligned", "valueFormatter": {"function": "d3.format('.2f')(params.value)"},
         "minWidth": 70, "flex": 1} for k, n in enumerate(names)]
    rows = [{"row": i, "factor": n, **{str(k): float(matrix[i][k]) for k in range(len(names))}}
            for i, n in enumerate(names)]
    return columns, rows


def edit_correlation(corr: dict | None, names, changes: list[dict]) -> state.Outcome:
    """Apply grid edits symmetrically; the engine validates the result (range, PSD)."""
    matrix = correlation_of(corr, names).copy()
    for change in changes or []:
        i, j = int(change["rowIndex"]), int(change["colId"])
        value = change.get("value", change.get("newValue"))
        try:
            x = float(value)
        except (TypeError, ValueError):
            return state.Outcome(None, (f"correlation {names[i]} / {names[j]}: {value!r} is not a number",))
        matrix[i, j] = matrix[j, i] = x
    try:
        check_correlation(matrix, list(names))
    except ValueError as exc:
        return state.Outcome(None, (f"{exc} — the correlation was not changed",))
    return state.Outcome({"names": list(names), "matrix": matrix.tolist()}, (), "correlation updated")


@callback(Output(ids.RISK_CORR_STORE, "data"), Output(ids.RISK_CORR_MESSAGE, "children"),
          Input(ids.RISK_CORR_GRID, "cellValueChanged"), Input(ids.RISK_CORR_RESET, "n_clicks"),
          State(ids.RISK_CORR_STORE, "data"), State(ids.BOOK_STORE, "data"), State(ids.MARKET_STORE, "data"),
          State(ids.SETTINGS_STORE, "data"), prevent_initial_call=True)
def change_correlation(changes, reset, corr, book, market, settings):
    if ctx.triggered_id == ids.RISK_CORR_RESET:
        user_action(reset)
        return None, message(note="default correlation")
    user_action(changes)
    names = factor_names(state.analysis(book, market, settings).arrays.underlyings)
    outcome = edit_correlation(corr, names, changes)
    return committed(outcome)


@callback(Output(ids.RISK_CORR_GRID, "columnDefs"), Output(ids.RISK_CORR_GRID, "rowData"),
          Input(ids.RISK_CORR_STORE, "data"), Input(ids.BOOK_STORE, "data"), Input(ids.MARKET_STORE, "data"),
          Input(ids.SETTINGS_STORE, "data"))
def show_correlation(corr, book, market, settings):
    analysis, _ = state.try_analysis(book, market, settings)
    if analysis is None:
        return no_update, no_update
    names = factor_names(analysis.arrays.underlyings)
    return correlation_rows(names, correlation_of(corr, names))


# ----------------------------------------------------------------------------- crashes


def episodes(user: list | None) -> dict:
    """The library and the user's episodes, by key."""
    out = dict(LIBRARY)
    for data in user or []:
        e = episode_from_dict(data)
        out[e.key] = e
    return out


def episode_upload(contents: str, filename: str, user: list | None) -> state.Outcome:
    name = (filename or "episode").rsplit(".", 1)[0]
    try:
        e = read_episode_csv(_decoded(contents), key=f"user:{name}", title=f"{name} (uploaded)")
    except ValueError as exc:
        return state.Outcome(None, (f"{filename or 'the file'}: {exc} — nothing was added",))
    kept = [d for d in (user or []) if d.get("key") != e.key]
    return state.Outcome(kept + [e.to_dict()], (), f"added {e.title}")


@callback(Output(ids.RISK_EPISODE_STORE, "data"), Output(ids.RISK_EPISODE, "value"),
          Output(ids.RISK_EPISODE_MESSAGE, "children"), Output(ids.RISK_EPISODE_UPLOAD, "contents"),
          Input(ids.RISK_EPISODE_UPLOAD, "contents"), State(ids.RISK_EPISODE_UPLOAD, "filename"),
          State(ids.RISK_EPISODE_STORE, "data"), prevent_initial_call=True)
def upload_episode(contents, filename, user):
    user_action(contents)
    outcome = episode_upload(contents, filename, user)
    if outcome.data is None:
        return no_update, no_update, message(outcome.problems), None
    return outcome.data, outcome.data[-1]["key"], message(note=outcome.note), None


@callback(Output(ids.RISK_EPISODE, "options"), Input(ids.RISK_EPISODE_STORE, "data"))
def episode_options(user):
    return episode_choices(episodes(user))


def sources_list(e) -> html.Div:
    items = [html.Li([s.get("figure", ""), " — ", html.A(s.get("title", s.get("url", "")), href=s.get("url"),
                                                          target="_blank", rel="noopener")]) for s in e.sources]
    missing = [html.Li(t) for t in e.not_found]
    return html.Div([html.P(e.summary), html.Ul(items),
                     *([html.P(html.Strong("Not found in a source:")), html.Ul(missing)] if missing else [])])


def explain_notes(ex) -> list[str]:
    """The explain's component and scenario view in words: the biggest component changes and
    the binding scenario per underlying now and then."""
    notes = []
    comp = ex.by_component.reindex(ex.by_component["change"].abs().sort_values(ascending=False).index)
    moved = [f"{r.component} {usd(r.change)}" for r in comp.itertuples() if abs(r.change) >= 0.5][:3]
    if moved:
        notes.append("IM components: " + ", ".join(moved))
    s = ex.by_scenario
    if len(s):
        for u, rows in s.groupby("underlying", sort=False):
            now = rows.loc[rows["binding_before"], "scenario"].tolist()
            then = rows.loc[rows["binding_after"], "scenario"].tolist()
            if now != then:
                before, after = ", ".join(map(str, now)) or "—", ", ".join(map(str, then)) or "—"
                notes.append(f"{u} binding scenario {before} → {after}")
    return notes


def stressed_point(replay) -> int:
    """Row of the replay the margin explain looks at: the liquidation moment, else the highest
    margin ratio after the start (the last point when the ratio never rises)."""
    p = replay.path
    if replay.liquidation_hours is not None:
        return int(p.index[p["liquidatable"]][0])
    later = p.iloc[1:] if len(p) > 1 else p
    return int(later["margin_ratio"].idxmax())


def replay_view(book, market, account, user, key, stable):
    """(replay figure, explain waterfall, message, sources)."""
    eps = episodes(user)
    if key not in eps:
        return message_figure("Choose an episode."), message_figure(""), "", ""
    e = eps[key]
    if stable is None or stable < 0:
        return no_update, no_update, message(["stable-coin collateral: a number ≥ 0 (USD)"]), sources_list(e)
    try:
        params = model_params(account)
        book_obj, market_obj = state.book_of(book), state.market_of(market)

        def run():
            r = replay_episode(book_obj, market_obj, e, collateral_usd(market, account), account["model"], params,
                               stable_collateral_usd=float(stable))
            unds = book_obj.underlyings
            row = r.path.loc[stressed_point(r)]
            moved = shocked_market(market_obj, unds, [row[f"spot_{u}"] for u in unds], [row[f"vol_{u}"] for u in unds])
            ex = margin_explain(compute(book_obj, market_obj, account["model"], params),
                                compute(book_obj, moved, account["model"], params))
            return r, ex, float(row["hours"])
        replay, ex, worst_hours = state.memoise("risk-replay", [book, market, account, e.to_dict(), stable], run)
    except ValueError as exc:
        return no_update, no_update, message([str(exc)]), sources_list(e)
    notes = list(replay.notes)
    if replay.plan is not None:
        p = replay.plan
        closes = p.steps.groupby("instrument")["quantity"].sum() if len(p.steps) else None
        what = ", ".join(f"{q:+.4g} {i}" for i, q in closes.items()) if closes is not None else "nothing"
        notes.append(f"liquidation plan at {replay.liquidation_hours:g} h ends {p.status}: trades {what}; "
                     f"cost {usd(p.total_cost)}, equity after {usd(p.equity_after)}")
    notes += explain_notes(ex)
    fig_ex = figures.explain_waterfall(ex, title=f"IM now → at the most stressed point ({worst_hours:g} h)")
    return figures.replay_chart(replay), fig_ex, message(note=" · ".join(notes)), sources_list(e)


@callback(Output(ids.RISK_REPLAY, "figure"), Output(ids.RISK_EXPLAIN, "figure"),
          Output(ids.RISK_REPLAY_MESSAGE, "children"), Output(ids.RISK_EPISODE_SOURCES, "children"),
          Input(ids.BOOK_STORE, "data"), Input(ids.MARKET_STORE, "data"), Input(ids.ACCOUNT_STORE, "data"),
          Input(ids.RISK_EPISODE_STORE, "data"), Input(ids.RISK_EPISODE, "value"), Input(ids.RISK_STABLE, "value"))
def render_replay(*args):
    return replay_view(*args)


# ----------------------------------------------------------------------------- reverse stress


def reverse_stress_result(book: dict, market: dict, settings: dict, account: dict, corr: dict | None = None,
                          history_store: dict | None = None, vol_source: str = "market", horizon: int = 1,
                          stable: float = 0.0):
    """``engine.crashes.reverse_stress`` of the stores (memoised): the VaR factors at ``horizon``
    days, the account's collateral and margin model.  The Stress page can draw its boundary on
    its heatmap with ``figures.risk.with_boundary(fig, reverse_stress_result(...))`` (the
    boundary is instantaneous: today's time, whatever the heatmap's horizon)."""
    def run():
        a = state.analysis(book, market, settings)
        f = factors_of(a, int(horizon), corr, vol_source, history_store)
        return reverse_stress(state.book_of(book), state.market_of(market), collateral_usd(market, account), f,
                              account["model"], model_params(account), stable_collateral_usd=float(stable),
                              arrays=a.arrays)
    return state.memoise("risk-reverse", [state.digest(book, market, settings), account, corr, history_store,
                                          vol_source, horizon, stable], run)


def boundary_view(book, market, settings, account, corr, history_store, vol_source, horizon, stable):
    """(figure, message) of the reverse stress under the VaR factor model at ``horizon``."""
    if horizon is None or not float(horizon).is_integer() or not 1 <= horizon <= 365 or stable is None or stable < 0:
        return no_update, message(["horizon and stable-coin collateral must be valid (see their controls)"])
    try:
        rs = reverse_stress_result(book, market, settings, account, corr, history_store, vol_source, int(horizon),
                                   float(stable))
    except (ValueError, HistoryError) as exc:
        return no_update, message([str(exc)])
    return figures.boundary_heatmap(rs), ""


@callback(Output(ids.RISK_BOUNDARY, "figure"), Output(ids.RISK_BOUNDARY_MESSAGE, "children"),
          Input(ids.BOOK_STORE, "data"), Input(ids.MARKET_STORE, "data"), Input(ids.SETTINGS_STORE, "data"),
          Input(ids.ACCOUNT_STORE, "data"), Input(ids.RISK_CORR_STORE, "data"), Input(ids.RISK_HISTORY_STORE, "data"),
          Input(ids.RISK_VOL_SOURCE, "value"), Input(ids.RISK_HORIZON, "value"), Input(ids.RISK_STABLE, "value"))
def render_boundary(*args):
    return boundary_view(*args)
