"""Exchange page: a population of accounts under a spot shock — who is liquidated first, how
many are under water at each shock, and how liquidations feed on themselves (docs/methodology.md §7).

The stores, their transitions and the memoised engine calls are in :mod:`dashboard.stores.exchange`.
"""
from __future__ import annotations

import dash
from dash import Input, Output, State, callback, clientside_callback, dcc, html, no_update

from .. import background, ids
from ..components import (
    KEEP,
    LIVE,
    busy,
    committed,
    error_table,
    frame_rows,
    grid,
    message,
    number_column,
    panel,
    user_action,
)
from ..figures import exchange as figures
from ..format import NO_EQUITY, shock_label, usd
from ..jobs import STEPS, cascade_job, cascade_view, sweep_job, sweep_view
from ..stores import exchange as ex

dash.register_page(__name__, path="/exchange", name="Exchange", order=6, title="Exchange · Portfolio-margin risk")

SOURCE = (Input(ids.EX_SOURCE, "value"), Input(ids.EX_SETTINGS_STORE, "data"), Input(ids.EX_UPLOAD_STORE, "data"),
          Input(ids.MARKET_STORE, "data"), Input(ids.ACCOUNT_STORE, "data"))
#: Controls keep the user's values across page visits, as the settings store does.
DEFAULTS = ex.DEFAULT_SETTINGS

QUEUE_COLUMNS = [
    number_column("rank", "Rank", ",.0f", flex=0.7, minWidth=90, pinned="left"),
    {"field": "account", "headerName": "Account", "flex": 1, "filter": "agTextColumnFilter"},
    # An empty ratio is an account with no equity left (an infinite ratio).
    number_column("margin_ratio", "Margin ratio MM/equity", ".1%", flex=1, valueFormatter={
        "function": f"params.value == null ? '{NO_EQUITY}' : d3.format('.1%')(params.value)"}),
    number_column("equity", "Equity (USD)", flex=1),
    number_column("mm", "MM (USD)", flex=1),
    number_column("im", "IM (USD)", flex=1),
    number_column("notional_usd", "Notional (USD)", flex=1),
    {"field": "liquidatable", "headerName": "Liquidatable", "flex": 0.8},
]


def _number_input(label: str, control_id: str, value, **props):
    return html.Div([html.Label(label, htmlFor=control_id),
                     dcc.Input(id=control_id, type="number", value=value, debounce=True, className="input",
                               **props, **KEEP)], className="control")


def _controls():
    return panel(
        "Population and shock",
        html.Div([
            html.Div([html.Label("Accounts"),
                      dcc.RadioItems(id=ids.EX_SOURCE, value="generated", className="radio",
                                     options=[{"label": "generated population", "value": "generated"},
                                              {"label": "uploaded CSV", "value": "uploaded"}])],
                     className="control"),
            _number_input(f"Population size (≤ {ex.max_accounts():,})", ids.EX_ACCOUNTS, DEFAULTS["n_accounts"],
                          min=1, step=1),
            _number_input("Seed", ids.EX_SEED, DEFAULTS["seed"], step=1),
            html.Div([html.Label("Spot shock, all underlyings (% of spot)"),
                      dcc.Slider(id=ids.EX_SHOCK, min=-50, max=50, step=1, value=DEFAULTS["spot_shock"] * 100,
                                 updatemode="mouseup", tooltip={"placement": "bottom"},
                                 marks={v: f"{v:+d} %" if v else "0" for v in range(-50, 51, 25)}, **KEEP)],
                     className="control wide"),
            _number_input("Queue rows shown (top N)", ids.EX_TOP_N, DEFAULTS["top_n"], min=1, max=ex.MAX_TOP_N, step=1),
            _number_input("Cascade impact k", ids.EX_IMPACT_K, DEFAULTS["impact_k"], min=0, max=10, step="any"),
            _number_input("Daily turnover (× open notional)", ids.EX_TURNOVER, DEFAULTS["turnover"], min=0,
                          step="any"),
            _number_input("Max cascade rounds", ids.EX_ROUNDS, DEFAULTS["max_rounds"], min=1, step=1),
        ], className="ex-controls"),
        html.Div(id=ids.EX_SETTINGS_MESSAGE, **LIVE),
        dcc.Upload(id=ids.EX_UPLOAD, className="dropzone", accept=".csv,text/csv", max_size=ex.MAX_UPLOAD_BYTES,
                   children=html.Div(["Drop an accounts CSV here, or ", html.A("choose one")])),
        html.P(["Header ", html.Code("account,collateral,instrument,quantity[,entry_price]"),
                "; one position a row, an account's collateral (USD) on its first row. Rows with errors are "
                f"listed and skipped; up to {ex.MAX_UPLOAD_BYTES / 1e6:g} MB."], className="hint"),
        html.Div(id=ids.EX_UPLOAD_REPORT),
        how_to="The generated population is drawn reproducibly from the seed around the listed instruments, "
               "its collateral set so that starting margin ratios spread around 35 % (a few accounts start "
               "under water). Every account is margined with the model chosen on the Margin page, at every "
               "spot × (1 + shock). The cascade moves spot by the square-root impact of the liquidated "
               "accounts' delta: k × daily vol × √(flow / daily volume), daily volume = turnover × the open "
               "notional of the population.",
    )


def progress_row(bar_id: str, cancel_id: str) -> html.Div:
    """Progress bar and Cancel button of one background computation (hidden when the
    computations run in the request, :func:`background.enabled`)."""
    return html.Div([html.Progress(id=bar_id, value="0", max=str(STEPS)),
                     html.Button("Cancel", id=cancel_id, className="button secondary", disabled=True)],
                    className="toolbar ex-progress", hidden=not background.enabled())


#: Browser side: the page's progress bar and Cancel button show the job state of the shell's store.
SHOW_JOB = """(state) => [state === null || state === undefined ? '0' : String(state),
                        state === null || state === undefined]"""


def long_callback(output: Output, job_store: str, bar_id: str, cancel_id: str, view, job) -> None:
    """``view`` as the callback of :data:`SOURCE` into ``output``; when background callbacks are
    on, ``job`` (the same view taking ``set_progress`` first) as a background job instead: its
    progress and running state go to ``job_store`` in the shell (see
    :data:`dashboard.background.JOB_STORES`), shown by this bar and button; the button, or going
    to another page, cancels it."""
    if not background.enabled():
        callback(output, *SOURCE)(view)
        return
    callback(output, *SOURCE, background=True, manager=background.manager(),
             progress=[Output(job_store, "data")], progress_default=[None],
             running=[(Output(job_store, "data"), 0, None)],
             cancel=[Input(cancel_id, "n_clicks"), Input(ids.URL, "pathname")])(job)
    clientside_callback(SHOW_JOB, Output(bar_id, "value"), Output(cancel_id, "disabled"), Input(job_store, "data"))


layout = html.Div([
    dcc.Store(id=ids.EX_SETTINGS_STORE, storage_type="session", data=DEFAULTS),
    dcc.Store(id=ids.EX_UPLOAD_STORE, storage_type="session"),
    _controls(),
    html.Div(id=ids.EX_MESSAGE),
    busy(html.Div(id=ids.EX_SUMMARY, className="cards ex-cards")),
    panel("Liquidation queue",
          busy(grid(ids.EX_QUEUE_GRID, QUEUE_COLUMNS, height=360, getRowId="params.data.account")),
          how_to="The first N accounts in the order the exchange liquidates them: highest margin ratio "
                 "(MM ÷ equity) first, accounts with no equity left at the top, ties by the larger "
                 "notional (as dYdX does). Click a header to sort differently; Rank keeps the queue order."),
    html.Div([
        panel("Margin ratios",
              busy(dcc.Graph(id=ids.EX_HISTOGRAM, config={"displaylogo": False})),
              how_to="How close the whole population is to liquidation: every account falls in one bar by "
                     "its margin ratio; red bars are past 100 % (equity below MM). A shock shifts the mass "
                     "to the right; a fat cluster just under 100 % is the next wave."),
        panel("Liquidatable vs spot shock",
              progress_row(ids.EX_SWEEP_PROGRESS, ids.EX_SWEEP_CANCEL),
              busy(dcc.Graph(id=ids.EX_SHOCK_CHART, config={"displaylogo": False})),
              how_to="Each bar re-margins every account at that shock: the number of accounts under MM, and "
                     "(line) their notional. The population holds calls and puts, long and short, so both "
                     "directions hurt someone; the dotted line is the shock applied above."),
    ], className="row two"),
    panel("Cascade",
          progress_row(ids.EX_CASCADE_PROGRESS, ids.EX_CASCADE_CANCEL),
          busy(dcc.Graph(id=ids.EX_CASCADE, config={"displaylogo": False})),
          how_to="Round 0 is the shock itself. The exchange then unloads the liquidated accounts' delta, "
                 "which moves spot further (top), which puts more accounts under water (bottom, red: new "
                 "in that round), until a round liquidates nobody or the round limit is reached."),
], className="page")


# ----------------------------------------------------------------------------- writers


CONTROLS = (ids.EX_ACCOUNTS, ids.EX_SEED, ids.EX_SHOCK, ids.EX_TOP_N, ids.EX_IMPACT_K, ids.EX_TURNOVER, ids.EX_ROUNDS)


def control_values(settings: dict) -> tuple:
    """The controls showing ``settings`` (the shock in % of spot)."""
    return (settings["n_accounts"], settings["seed"], round(settings["spot_shock"] * 100, 6), settings["top_n"],
            settings["impact_k"], settings["turnover"], settings["max_rounds"])


@callback(Output(ids.EX_SETTINGS_STORE, "data"), Output(ids.EX_SETTINGS_MESSAGE, "children"),
          *(Output(c, "value") for c in CONTROLS), *(Input(c, "value") for c in CONTROLS),
          State(ids.EX_SETTINGS_STORE, "data"))
def apply_settings(n_accounts, seed, shock, top_n, impact_k, turnover, rounds, current):
    """Validated controls into the store; a refused or capped value goes back to the value in
    force, beside the message that says why.  This also runs when the page is shown (with the
    controls' persisted values): an unchanged value writes and says nothing."""
    outcome = ex.settings_from_controls(n_accounts, seed, shock, top_n, impact_k, turnover, rounds)
    in_force = current if outcome.data is None else outcome.data
    controls = control_values(in_force) if outcome.problems else (no_update,) * len(CONTROLS)
    return (*committed(outcome, current), *controls)


def upload_report(filename: str, errors: list[dict], accepted: dict | None):
    """Per-row errors of an accounts upload (and what was kept)."""
    if not errors:
        return message(note=f"{filename}: {accepted['accounts']:,} accounts loaded")
    kept = (f"{accepted['accounts']:,} accounts loaded from the good rows" if accepted
            else "nothing was loaded; the last good accounts stay")
    return html.Div([
        html.P([html.B(filename), f": {len(errors)} problem(s); {kept}."]),
        *error_table(errors, csv=True),
    ], className="msg msg-error upload-report", role="alert")


@callback(Output(ids.EX_UPLOAD_STORE, "data"), Output(ids.EX_SOURCE, "value"), Output(ids.EX_UPLOAD_REPORT, "children"),
          Output(ids.EX_UPLOAD, "contents"), Input(ids.EX_UPLOAD, "contents"), State(ids.EX_UPLOAD, "filename"),
          State(ids.MARKET_STORE, "data"), prevent_initial_call=True)
def upload_accounts(contents, filename, market):
    """A file with at least one good account replaces the uploaded population and is selected;
    ``contents`` is reset so that the same file can be dropped again after fixing it."""
    user_action(contents)
    data, errors = ex.read_upload(contents, filename, market)
    report = upload_report(filename, errors, data)
    if data is None:
        return no_update, no_update, report, None
    return data, "uploaded", report, None


# ----------------------------------------------------------------------------- views


def _card(label: str, value: str, unit: str, value_id: str | None = None) -> html.Div:
    return html.Div([html.Div(label, className="card-label"),
                     html.Div(value, className="card-value", id=value_id) if value_id else
                     html.Div(value, className="card-value"),
                     html.Div(unit, className="card-unit")], className="card")


def queue_view(source: str, settings: dict, upload: dict | None, market: dict, account: dict):
    """(message, summary cards, top-N queue rows, histogram) of one state."""
    try:
        result = ex.queue(source, settings, upload, market, account)
    except ValueError as exc:
        return message([str(exc)]), no_update, no_update, no_update
    numbers = ex.summary(result)
    shock = shock_label(settings["spot_shock"])
    cards = [
        _card("Accounts", f"{numbers['accounts']:,}", f"{source} · margined with {account['model']}"),
        _card("Liquidatable", f"{numbers['liquidatable']:,}", f"equity < MM at spot {shock}", ids.EX_LIQUIDATABLE),
        _card("Their notional", usd(numbers["notional_usd"]), "USD, underlying notional of their positions"),
        _card("Their shortfall", usd(numbers["shortfall_usd"]),
              "USD, Σ (MM − equity): what liquidation must recover"),
    ]
    rows = frame_rows(ex.top_rows(result, settings["top_n"]))
    return "", cards, rows, figures.ratio_histogram(result)


@callback(Output(ids.EX_MESSAGE, "children"), Output(ids.EX_SUMMARY, "children"), Output(ids.EX_QUEUE_GRID, "rowData"),
          Output(ids.EX_HISTOGRAM, "figure"), *SOURCE)
def render_queue(source, settings, upload, market, account):
    return queue_view(source, settings, upload, market, account)


# The sweep and the cascade: their bodies are in dashboard.jobs, which a job process imports.
long_callback(Output(ids.EX_SHOCK_CHART, "figure"), ids.EX_SWEEP_JOB, ids.EX_SWEEP_PROGRESS, ids.EX_SWEEP_CANCEL,
              sweep_view, sweep_job)
long_callback(Output(ids.EX_CASCADE, "figure"), ids.EX_CASCADE_JOB, ids.EX_CASCADE_PROGRESS, ids.EX_CASCADE_CANCEL,
              cascade_view, cascade_job)
