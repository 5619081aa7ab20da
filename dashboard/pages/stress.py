"""Stress page: the full-revaluation P&L grid over spot × vol × horizon (heatmap or 3-D surface),
P&L along spot for every horizon and at expiry, and the per-position attribution of any cell.
"""
from __future__ import annotations

import dash
from dash import Input, Output, Patch, State, callback, ctx, dcc, html, no_update

from .. import figures, ids, presentation
from ..components import KEEP, LIVE, busy, committed, frame_rows, grid, message, number_column, panel, user_action
from ..figures import risk as risk_figures
from ..format import usd
from ..report import context_of, csv_with_header
from ..stores import session as state
from .risk import reverse_stress_result

dash.register_page(__name__, path="/stress", name="Stress", order=2, title="Stress · Portfolio-margin risk")

STORES = (Input(ids.BOOK_STORE, "data"), Input(ids.MARKET_STORE, "data"), Input(ids.SETTINGS_STORE, "data"))
#: The grid controls keep the user's values across page visits (as the settings store does).

ATTRIBUTION_COLUMNS = [
    {"field": "instrument", "headerName": "Instrument", "flex": 2, "minWidth": 170},
    number_column("quantity", "Qty", ",.6~f", flex=1),
    number_column("scenario_pnl", "P&L (USD)", flex=1.3, sort="asc"),
    number_column("share", "Share", ".1%", flex=1),
]


def _controls():
    return panel(
        "Stress grid",
        html.Div([
            html.Div([html.Label("Spot shocks ± (% of spot)"),
                      dcc.Slider(id=ids.SPOT_RANGE, min=5, max=90, step=5, value=50, updatemode="mouseup",
                                 marks={v: f"{v} %" for v in (5, 25, 50, 75, 90)}, **KEEP)], className="control wide"),
            html.Div([html.Label("Spot steps"),
                      # No min/max: the browser would send an out-of-range number as empty, and
                      # the message could not say what the limit is.
                      dcc.Input(id=ids.SPOT_STEPS, type="number", value=41, step=1,
                                debounce=True, className="input", **KEEP)], className="control"),
            html.Div([html.Label("Vol shocks ± (vol points)"),
                      dcc.Slider(id=ids.VOL_RANGE, min=0, max=100, step=5, value=30, updatemode="mouseup",
                                 marks={v: str(v) for v in (0, 25, 50, 75, 100)}, **KEEP)], className="control wide"),
            html.Div([html.Label("Vol steps"),
                      dcc.Input(id=ids.VOL_STEPS, type="number", value=13, step=1,
                                debounce=True, className="input", **KEEP)], className="control"),
            html.Div([html.Label("Horizons (days)"),
                      dcc.Input(id=ids.HORIZONS, type="text", value="0, 1, 7, 30", debounce=True,
                                className="input", **KEEP)], className="control"),
            html.Div([html.Label("All cells"),
                      html.Button("Download CSV", id=ids.STRESS_DOWNLOAD_BUTTON,
                                  className="button secondary"),
                      dcc.Download(id=ids.STRESS_DOWNLOAD)], className="control"),
        ], className="controls"),
        html.Div(id=ids.SETTINGS_MESSAGE, **LIVE),
        how_to="Every position is fully repriced in every cell: spot × (1 + shock) for all underlyings "
               "at once, vol + shock points on every option, time moved forward by the horizon "
               "(options expiring inside it settle at intrinsic). Odd step counts include the "
               "no-shock point. A value outside the limits is refused with a message and the last "
               "good grid stays.",
        how_to_folded=True,  # the heatmap must start within a 1280×720 screen
    )


layout = html.Div([
    _controls(),
    html.Div([
        panel("Spot × vol P&L",
              html.Div([
                  html.Div([html.Label("Horizon"),
                            dcc.RadioItems(id=ids.HORIZON, options=[], value=0, inline=True, className="radio",
                                           **KEEP)]),
                  html.Div([html.Label("View"),
                            dcc.RadioItems(id=ids.VIEW, value="heatmap", inline=True, className="radio",
                                           options=[{"label": "Heatmap", "value": "heatmap"},
                                                    {"label": "3-D surface", "value": "surface"}], **KEEP)]),
                  html.Div([html.Label("Overlay"),
                            dcc.Checklist(id=ids.STRESS_BOUNDARY, value=[], inline=True, className="radio",
                                          options=[{"label": "liquidation boundary (today)", "value": "on"}],
                                          **KEEP)]),
              ], className="toolbar"),
              html.Div(id=ids.STRESS_MESSAGE),
              busy(dcc.Graph(id=ids.HEATMAP, config={"displaylogo": False,
                                                     "toImageButtonOptions": {"filename": "stress"}})),
              className="wide stress-map",
              how_to="Each cell is the book's P&L (USD) if spot moved by x % and every vol by y points, "
                     "after the chosen horizon. Red loses, blue gains, white is flat; the ring is "
                     "today, ✕ the worst cell. Click a cell to see which positions make its P&L. The "
                     "camera button saves a PNG."),
        panel("Scenario attribution",
              html.P(id=ids.ATTRIBUTION_TITLE, className="scenario"),
              busy(grid(ids.ATTRIBUTION_GRID, ATTRIBUTION_COLUMNS, height=440, filters=False,
                   getRowId="params.data.row")),
              how_to="The selected cell's P&L split by position, biggest losses first; the shares add "
                     "up to 100 %. Without a click it shows the worst cell of the horizon."),
    ], className="row stress-row"),
    panel("P&L vs spot",
          busy(dcc.Graph(id=ids.PAYOFF, config={"displaylogo": False})),
          how_to="P&L (USD) from today's marks as spot moves, vols unchanged, one line per horizon; "
                 "the dashed line is the last option expiry, where options pay their intrinsic value. "
                 "Diamonds mark breakevens, where a line crosses zero. The gap between lines is time "
                 "decay (theta) and the change in option value as expiry nears."),
], className="page")


def horizon_choices(settings: dict, current) -> tuple[list[dict], float]:
    """Radio options for the grid's horizons; keeps the current one when it is still there."""
    days = settings["horizons_days"]
    options = [{"label": f"{d:g} d" + (" (now)" if d == 0 else ""), "value": d} for d in days]
    return options, (current if current in days else days[0])


CONTROLS = (ids.SPOT_RANGE, ids.SPOT_STEPS, ids.VOL_RANGE, ids.VOL_STEPS, ids.HORIZONS)


def control_values(settings: dict) -> tuple:
    """The grid controls showing ``settings`` (spot range in %, vol range in vol points)."""
    return (round(settings["spot_range"] * 100, 6), settings["spot_steps"], round(settings["vol_range"] * 100, 6),
            settings["vol_steps"], ", ".join(f"{d:g}" for d in settings["horizons_days"]))


@callback(Output(ids.SETTINGS_STORE, "data"), Output(ids.SETTINGS_MESSAGE, "children"),
          Output(ids.HORIZON, "options"), Output(ids.HORIZON, "value"),
          *(Output(c, "value") for c in CONTROLS),
          *(Input(c, "value") for c in CONTROLS),
          State(ids.SETTINGS_STORE, "data"), State(ids.HORIZON, "value"),
          State(ids.BOOK_STORE, "data"), State(ids.MARKET_STORE, "data"))
def apply_settings(spot_range, spot_steps, vol_range, vol_steps, horizons, current, horizon, book, market):
    """Validate the grid controls into the settings store, and offer the accepted grid's horizons.
    A refused value is put back to the one in force, beside the message that says why.

    This also runs when the page is shown (the controls report their values): then the grid is
    unchanged, nothing is written and only the horizon choices are filled in.  The choices live
    here rather than in their own callback on the store because Dash skips a callback whose only
    input is a store that a callback of the newly shown page leaves unchanged.
    """
    outcome = state.settings_from_controls(spot_range, spot_steps, vol_range, vol_steps, horizons, book, market)
    accepted = current if outcome.data is None else outcome.data
    options, value = horizon_choices(accepted, horizon)
    keep = (no_update,) * len(CONTROLS)
    if outcome.data == current:
        return no_update, "", options, value, *keep
    reset = control_values(current) if outcome.data is None else keep
    return (*committed(outcome), options, value, *reset)


def clicked(click: dict | None) -> tuple[float, float] | None:
    """(spot %, vol points) of a heatmap or surface click."""
    if not click or not click.get("points"):
        return None
    point = click["points"][0]
    return float(point["x"]), float(point["y"])


def scenario_figure(book, market, settings, horizon, view, click, selection_only: bool = False,
                    pnl_scale: float | None = None, boundary=None):
    """The heatmap or surface of one horizon (and a status message).  A click alone only moves
    the selection box, sent as a ``Patch`` so the figure is not rebuilt.  ``pnl_scale``: the
    presenter's fixed colour scale (± USD), None to fit the data; ``boundary``: a reverse stress
    (``engine.crashes.ReverseStress``) whose equity = MM line is drawn on the heatmap."""
    analysis, error = state.try_analysis(book, market, settings)
    if analysis is None:
        return no_update, message([error])
    selected = clicked(click)
    if selection_only:
        if view == "surface" or selected is None:
            return no_update, no_update
        patch = Patch()
        patch["layout"]["shapes"] = figures.selection_shapes(analysis, *selected)
        return patch, no_update
    if view == "surface":
        return figures.stress_surface(analysis, horizon, pnl_scale), ""
    fig = figures.stress_heatmap(analysis, horizon, selected, pnl_scale)
    if boundary is None:
        return fig, ""
    note = ("" if boundary.most_likely is not None else
            "no liquidation within the plane: the boundary is outside the grid's spot × vol range")
    return risk_figures.with_boundary(fig, boundary), message(note=note) if note else ""


def boundary_for(overlay, view, book: dict, market: dict, settings: dict, acct: dict):
    """The reverse stress to draw when the overlay is on (heatmap only), else None; memoised
    with the Risk page's (same stores, same default factor model)."""
    return reverse_stress_result(book, market, settings, acct) if overlay and view != "surface" else None


@callback(Output(ids.HEATMAP, "figure"), Output(ids.STRESS_MESSAGE, "children"), *STORES,
          Input(ids.HORIZON, "value"), Input(ids.VIEW, "value"), Input(ids.HEATMAP, "clickData"),
          Input(ids.PRESENTER_STORE, "data"), Input(ids.STRESS_BOUNDARY, "value"), State(ids.ACCOUNT_STORE, "data"))
def render_scenarios(book, market, settings, horizon, view, click, presenter, overlay, acct):
    try:
        boundary = boundary_for(overlay, view, book, market, settings, acct)
    except ValueError as exc:
        return no_update, message([f"liquidation boundary: {exc}"])
    return scenario_figure(book, market, settings, horizon, view, click,
                           selection_only=ctx.triggered_id == ids.HEATMAP,
                           pnl_scale=presentation.fixed_scale(presenter), boundary=boundary)


@callback(Output(ids.PAYOFF, "figure"), *STORES)
def render_payoff(book, market, settings):
    analysis, _ = state.try_analysis(book, market, settings)
    return no_update if analysis is None else figures.pnl_vs_spot(analysis)


def attribution(book, market, settings, horizon, click):
    """(title, rows): per-position P&L of the clicked cell, or of the horizon's worst cell."""
    analysis, error = state.try_analysis(book, market, settings)
    if analysis is None:
        return error, no_update
    result = analysis.stress_result
    grid_ = result.grid
    h = result.cell(0.0, 0.0, horizon)[2]
    selected = clicked(click)
    if selected is None:
        s, v = divmod(int(result.pnl[:, :, h].argmin()), result.pnl.shape[1])
        how = "worst cell"
    else:
        s, v, _ = result.cell(selected[0] / 100.0, selected[1] / 100.0, horizon)
        how = "selected cell"
    spot, vol, days = grid_.spot_shocks[s], grid_.vol_shocks[v], grid_.horizons_days[h]
    pnl = result.position_pnl(spot, vol, days)
    total = float(result.pnl[s, v, h])
    frame = analysis.positions[["instrument", "quantity"]].assign(
        row=[str(k) for k in range(len(pnl))], scenario_pnl=pnl, share=pnl / total if total else float("nan"))
    scenario = f"spot {spot * 100:+.1f} %, vol {vol * 100:+.0f} pts, after {days:g} d".replace("-", "−")
    title = [f"{how.capitalize()}: {scenario} → book P&L ",
             html.B(usd(total), className="negative" if total < 0 else "")]
    return title, frame_rows(frame)


@callback(Output(ids.ATTRIBUTION_TITLE, "children"), Output(ids.ATTRIBUTION_GRID, "rowData"), *STORES,
          Input(ids.HORIZON, "value"), Input(ids.HEATMAP, "clickData"))
def render_attribution(book, market, settings, horizon, click):
    return attribution(book, market, settings, horizon, click)


@callback(Output(ids.STRESS_DOWNLOAD, "data"), Input(ids.STRESS_DOWNLOAD_BUTTON, "n_clicks"),
          State(ids.BOOK_STORE, "data"), State(ids.MARKET_STORE, "data"), State(ids.SETTINGS_STORE, "data"),
          State(ids.ACCOUNT_STORE, "data"), prevent_initial_call=True)
def download_stress(n_clicks, book, market, settings, acct):
    """The whole stress cube as tidy CSV under the report's context header (book, market time, app)."""
    user_action(n_clicks)
    analysis, _ = state.try_analysis(book, market, settings)
    if analysis is None:
        return no_update
    table = analysis.stress.rename(columns={"pnl": "pnl_usd"})
    return dcc.send_string(csv_with_header(table, context_of(book, market, acct)), "stress_grid.csv")
