"""Stress figures: the spot × vol P&L grid at one horizon (heatmap or 3-D surface) and the P&L
along spot for every horizon and at expiry, with breakevens.  Pure functions of an ``Analysis``.

All P&L is full revaluation (docs/methodology.md §5) measured from today's marks, so the no-shock cell at
horizon 0 is exactly 0.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from engine import Analysis

from ..format import usd
from .style import MONEY_TICKS, PNL, PNL_SCALE, SPOT_SHOCK, VOL_SHOCK, color, styled


def horizon_index(analysis: Analysis, horizon_days: float) -> int:
    """Index of the grid horizon nearest ``horizon_days``."""
    return analysis.stress_result.cell(0.0, 0.0, horizon_days)[2]


def grid_slice(analysis: Analysis, horizon_days: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(spot shocks in %, vol shocks in vol points, P&L[vol, spot] in USD, the horizon used)."""
    result = analysis.stress_result
    h = horizon_index(analysis, horizon_days)
    grid = result.grid
    return (grid.spot_shocks * 100.0, grid.vol_shocks * 100.0, result.pnl[:, :, h].T,
            float(grid.horizons_days[h]))


def _title(horizon: float, z: np.ndarray) -> str:
    return (f"P&L after {horizon:g} day{'s' if horizon != 1 else ''}, spot × vol shock"
            f"<br><sup>worst cell {usd(z.min())}, best {usd(z.max())}</sup>")


def _half_steps(axis: np.ndarray) -> float:
    return (axis[1] - axis[0]) / 2 if len(axis) > 1 else 1.0


def selection_shapes(analysis: Analysis, spot_pct: float, vol_pts: float) -> list[dict]:
    """A box around the grid cell nearest (spot %, vol points): the scenario being attributed."""
    grid = analysis.stress_result.grid
    s, v, _ = analysis.stress_result.cell(spot_pct / 100.0, vol_pts / 100.0, 0.0)
    x, y = grid.spot_shocks * 100.0, grid.vol_shocks * 100.0
    dx, dy = _half_steps(x), _half_steps(y)
    return [{"type": "rect", "xref": "x", "yref": "y", "x0": x[s] - dx, "x1": x[s] + dx,
             "y0": y[v] - dy, "y1": y[v] + dy, "line": {"color": "#111", "width": 2.5}}]


def colour_range(pnl_scale: float | None, prefix: str) -> dict:
    """Colour-axis bounds: diverging at 0 and fitted to the data, or fixed at ±``pnl_scale`` USD so
    the same P&L gets the same colour on every book (presenter mode); ``prefix`` is "z" or "c"."""
    if pnl_scale:
        return {f"{prefix}min": -pnl_scale, f"{prefix}max": pnl_scale}
    return {f"{prefix}mid": 0.0}


def stress_heatmap(analysis: Analysis, horizon_days: float,
                   selected: tuple[float, float] | None = None, pnl_scale: float | None = None) -> go.Figure:
    """Heatmap of book P&L: x spot shock (%), y vol shock (vol points), colour P&L (USD) on a
    scale diverging at 0 (or fixed at ±``pnl_scale``).  Marks today's point and the worst cell;
    ``selected`` (spot %, vol points) draws a box around the clicked scenario."""
    x, y, z, horizon = grid_slice(analysis, horizon_days)
    fig = go.Figure(go.Heatmap(
        x=x, y=y, z=z, colorscale=PNL_SCALE, **colour_range(pnl_scale, "z"),
        colorbar={"title": {"text": PNL, "side": "top"}, **MONEY_TICKS},
        hovertemplate="spot %{x:+.1f} %<br>vol %{y:+.0f} pts<br>P&L %{z:$,.0f}<extra></extra>",
    ))
    v, s = np.unravel_index(np.argmin(z), z.shape)
    fig.add_scatter(x=[x[s]], y=[y[v]], mode="markers", name="worst cell", hoverinfo="skip",
                    marker={"symbol": "x-thin", "size": 12, "line": {"width": 2.5, "color": "#111"}},
                    showlegend=False)
    fig.add_scatter(x=[0.0], y=[0.0], mode="markers", name="today", hoverinfo="skip", showlegend=False,
                    marker={"symbol": "circle-open", "size": 11, "color": "#111", "line": {"width": 2}})
    if selected is not None:
        fig.update_layout(shapes=selection_shapes(analysis, *selected))
    dx, dy = _half_steps(x), _half_steps(y)
    # Fixed ranges: the cells fill the plot, markers on the edge cells do not pad it.
    fig.update_xaxes(title=SPOT_SHOCK, ticksuffix=" %", range=[x[0] - dx, x[-1] + dx], showgrid=False,
                     zeroline=False)
    fig.update_yaxes(title=VOL_SHOCK, range=[y[0] - dy, y[-1] + dy], showgrid=False, zeroline=False)
    return styled(fig, _title(horizon, z), height=440, margin={"l": 70, "r": 30, "t": 56, "b": 50})


def stress_surface(analysis: Analysis, horizon_days: float, pnl_scale: float | None = None) -> go.Figure:
    """The same grid as a 3-D surface (drag to rotate; the camera survives data updates)."""
    x, y, z, horizon = grid_slice(analysis, horizon_days)
    fig = go.Figure(go.Surface(
        x=x, y=y, z=z, colorscale=PNL_SCALE, **colour_range(pnl_scale, "c"),
        colorbar={"title": {"text": PNL, "side": "top"}, "len": 0.75, "thickness": 14, **MONEY_TICKS},
        hovertemplate="spot %{x:+.1f} %<br>vol %{y:+.0f} pts<br>P&L %{z:$,.0f}<extra></extra>",
    ))
    # Short axis titles, few ticks and a wide, low box seen from further away: in a 3-D scene
    # plotly neither wraps titles nor thins ticks, so the long 2-D titles were clipped.
    fig.update_scenes(
        xaxis={"title": {"text": "Spot shock (%)"}, "ticksuffix": " %", "nticks": 7},
        yaxis={"title": {"text": "Vol shock (vol points)"}, "nticks": 7},
        zaxis={"title": {"text": "P&L (USD)"}, "nticks": 6, **MONEY_TICKS},
        aspectmode="manual", aspectratio={"x": 1.35, "y": 1.0, "z": 0.7},
        camera={"eye": {"x": 1.35, "y": -1.65, "z": 0.95}})
    return styled(fig, _title(horizon, z), height=520, margin={"l": 0, "r": 0, "t": 60, "b": 0})


def pnl_vs_spot(analysis: Analysis) -> go.Figure:
    """Book P&L (USD) along the spot shock at unchanged vol, one line per horizon plus the line at
    the last option expiry (dashed); breakevens (where a line crosses 0) are marked."""
    payoff = analysis.payoff
    fig = go.Figure()
    for k, (label, curve) in enumerate(payoff.groupby("horizon", sort=False)):
        at_expiry = label.startswith("expiry")
        fig.add_scatter(x=curve["spot_shock"] * 100.0, y=curve["pnl"], mode="lines", name=label,
                        legendgroup=label, line={"color": color(k), "width": 2.2,
                                                 "dash": "dash" if at_expiry else "solid"},
                        hovertemplate=f"{label}<br>spot %{{x:+.1f}} %<br>P&L %{{y:$,.0f}}<extra></extra>")
        shocks = np.asarray(analysis.breakevens.get(label, []), dtype=float) * 100.0
        if len(shocks):
            fig.add_scatter(x=shocks, y=np.zeros(len(shocks)), mode="markers", name=f"breakeven {label}",
                            legendgroup=label, showlegend=False,
                            marker={"symbol": "diamond", "size": 10, "color": color(k),
                                    "line": {"color": "#fff", "width": 1}},
                            hovertemplate=f"breakeven ({label}): spot %{{x:+.2f}} %<extra></extra>")
    fig.add_hline(y=0, line={"color": "#52606d", "width": 1})
    fig.update_xaxes(title=SPOT_SHOCK, ticksuffix=" %")
    fig.update_yaxes(title=PNL, **MONEY_TICKS)
    return styled(fig, "P&L vs spot per horizon (vol unchanged), breakevens ◆", height=440)
