"""Report page: one click builds a PDF (or a self-contained HTML file) of the current state for a
desk to send — cover, Greeks, stress, margin models side by side, account health, VaR and crash
replays where computed, and a methodology appendix; every page stamped (``dashboard.report``).
"""
from __future__ import annotations

import logging
import math
import re

import dash
import pandas as pd
from dash import Input, Output, State, callback, ctx, dcc, html

from engine.crashes import load_library, replay_episode
from engine.margin import MODELS
from engine.var import var_summary

from .. import ids
from ..components import LIVE, message, panel, user_action
from ..figures import risk as risk_figures
from ..format import usd
from ..report import SECTIONS, ExtraSection, ReportData, ReportError, build, context_of
from ..stores import account
from ..stores import session as state
from .margin import side_by_side

log = logging.getLogger(__name__)

dash.register_page(__name__, path="/report", name="Report", order=9, title="Report · Portfolio-margin risk")

STORES = (State(ids.BOOK_STORE, "data"), State(ids.MARKET_STORE, "data"), State(ids.SETTINGS_STORE, "data"),
          State(ids.ACCOUNT_STORE, "data"))

layout = html.Div([
    panel(
        "Report of the current state",
        html.Div([
            html.Div([html.Label("Sections"),
                      dcc.Checklist(id=ids.REPORT_SECTIONS, value=list(SECTIONS), className="checklist",
                                    options=[{"label": title, "value": key} for key, title in SECTIONS.items()],
                                    persistence=True, persistence_type="session")], className="control wide"),
            html.Div([html.Label("Stress heatmap horizon (days)"),
                      dcc.Dropdown(id=ids.REPORT_HORIZON, clearable=False, className="dropdown")],
                     className="control"),
            html.Div([html.Label("Build"),
                      html.Div([html.Button("Download PDF", id=ids.REPORT_PDF, className="button"),
                                html.Button("Download HTML", id=ids.REPORT_HTML, className="button secondary")])],
                     className="control"),
        ], className="controls"),
        dcc.Loading(html.Div(id=ids.REPORT_MESSAGE, **LIVE), type="dot"),
        dcc.Download(id=ids.REPORT_DOWNLOAD),
        how_to="The report is built from exactly what the pages show now: the book, market, stress settings, "
               "margin model and collateral of this tab. Charts are the app's own; every PDF page carries the "
               "book, the market's valuation time and the app version. Building takes a few seconds.",
    ),
], className="page")


@callback(Output(ids.REPORT_HORIZON, "options"), Output(ids.REPORT_HORIZON, "value"),
          Input(ids.SETTINGS_STORE, "data"), State(ids.REPORT_HORIZON, "value"))
def horizons(settings: dict, current):
    days = settings["horizons_days"]
    return [{"label": f"{d:g}", "value": d} for d in days], current if current in days else days[0]


def _var_section(analysis) -> ExtraSection:
    table = var_summary(analysis).table  # market-implied factors, 1 day, the parametric and Monte Carlo methods
    shown = pd.DataFrame({"Method": table["method"].str.replace("_", " ").str.capitalize(),
                          "Confidence": [f"{100 * c:g} %" for c in table["confidence"]],
                          "Horizon (days)": [f"{h:g}" for h in table["horizon_days"]],
                          "VaR (USD)": [usd(v) for v in table["var"]], "ES (USD)": [usd(v) for v in table["es"]]})
    return ExtraSection("var", "Value at risk and expected shortfall (1 day)", shown,
                        note="Risk factors: each underlying's spot return and ATM-vol change, vols implied by the "
                             "market, the default correlation; Monte Carlo is 10,000 paths of full revaluation "
                             "(seed 7). Methods and sources: docs/var.md.")


def _crash_section(book: dict, market: dict, acct: dict) -> ExtraSection:
    model = acct["model"]
    collateral = account.collateral_usd(market, acct)
    replays = [replay_episode(state.book_of(book), state.market_of(market), episode, collateral, model,
                              account.model_params(acct, model), plan=False)
               for episode in load_library().values()]
    shown = pd.DataFrame([{
        "Episode": r.episode.title, "Start": r.episode.start[:10], "Worst P&L (USD)": usd(r.worst_pnl),
        "Peak margin ratio": "equity ≤ 0" if not math.isfinite(r.path["margin_ratio"].max())
        else f"{100 * r.path['margin_ratio'].max():.1f} %",
        "Liquidatable after": "never" if r.liquidation_hours is None else f"{r.liquidation_hours:g} h",
    } for r in replays])
    worst = min(replays, key=lambda r: r.worst_pnl)
    return ExtraSection("crashes", "Historical crash library replayed on the book", shown,
                        figures=(risk_figures.replay_chart(worst),),
                        note=f"Each episode's spot and ATM-vol path applied to today's book under the "
                             f"{MODELS[model].title} model; the chart is the episode that costs the book most.")


def report_data(book: dict, market: dict, settings: dict, acct: dict, horizon: float,
                sections=tuple(SECTIONS)) -> ReportData:
    """The engine results of the current state, from the same cache the pages use (the VaR and
    crash sections are computed only when chosen, and memoised like the pages' results)."""
    analysis = state.analysis(book, market, settings)
    health = account.health(book, market, acct)
    extras = ()
    if "risk" in sections:
        extras = state.memoise("report-risk", [book, market, settings, acct],
                               lambda: (_var_section(analysis), _crash_section(book, market, acct)))
    return ReportData(context_of(book, market, acct), analysis, float(horizon),
                      side_by_side(account.margins(book, market, acct), health), health, acct["model"], extras)


def _filename(book: dict, market: dict, ext: str) -> str:
    name = re.sub(r"[^A-Za-z0-9]+", "-", book.get("name") or "book").strip("-").lower() or "book"
    return f"pmdash-report-{name}-{market['valuation_time'][:10]}.{ext}"


def report_download(fmt: str, sections, horizon, book: dict, market: dict, settings: dict, acct: dict):
    """(file to send or no_update, message): the report in ``fmt`` ("pdf"/"html") of the state."""
    if not sections:
        return dash.no_update, message(["choose at least one section"])
    try:
        data = report_data(book, market, settings, acct, horizon if horizon is not None else 0.0, sections)
        content = build(data, sections, fmt)
    except ReportError as exc:
        return dash.no_update, message([str(exc)])
    except Exception as exc:  # the UI boundary: show it, keep serving
        log.exception("report failed")
        return dash.no_update, message([f"the report could not be built: {type(exc).__name__}: {exc}"])
    return (dcc.send_bytes(content, _filename(book, market, fmt)),
            message(note=f"{fmt.upper()} report built ({len(content) / 1e6:.1f} MB, {len(sections)} sections)"))


@callback(Output(ids.REPORT_DOWNLOAD, "data"), Output(ids.REPORT_MESSAGE, "children"),
          Input(ids.REPORT_PDF, "n_clicks"), Input(ids.REPORT_HTML, "n_clicks"),
          State(ids.REPORT_SECTIONS, "value"), State(ids.REPORT_HORIZON, "value"), *STORES,
          prevent_initial_call=True)
def download(pdf_clicks, html_clicks, sections, horizon, book, market, settings, acct):
    user_action(pdf_clicks or html_clicks)
    return report_download("html" if ctx.triggered_id == ids.REPORT_HTML else "pdf", sections, horizon,
                           book, market, settings, acct)
