"""Greeks figures: totals by underlying and by expiry, the strike profile and Greeks along spot.
Pure functions of an ``Analysis``; every panel names its unit.
"""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from engine import Analysis

from .style import GREEKS, MONEY_TICKS, SPOT_SHOCK, STRIKE, color, styled


def _panels() -> go.Figure:
    """2×2 panels, one per display Greek, sharing the x axis down each column."""
    return make_subplots(rows=2, cols=2, shared_xaxes=True, vertical_spacing=0.14,
                         horizontal_spacing=0.14,
                         subplot_titles=[f"{name} ({unit})" for _, name, unit in GREEKS])


#: Room above the panels' titles for the figure title and legend.
PANELS_LAYOUT = {"margin": {"l": 70, "r": 20, "t": 95, "b": 60},
                 "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.07, "xanchor": "right", "x": 1}}


def _cell(k: int) -> dict:
    return {"row": k // 2 + 1, "col": k % 2 + 1}


def greeks_bars(frame: pd.DataFrame, category: str, axis_title: str, title: str) -> go.Figure:
    """2×2 bar panels ($delta, gamma, vega, theta) of an aggregate frame, one colour per
    underlying, bars along ``category``; each bar's ``customdata`` is its underlying (for
    drill-down on click)."""
    fig = _panels()
    for u, (underlying, part) in enumerate(frame.groupby("underlying", sort=True)):
        for k, (column, _, unit) in enumerate(GREEKS):
            fig.add_bar(x=part[category], y=part[column], name=underlying, legendgroup=underlying,
                        customdata=[underlying] * len(part),
                        showlegend=k == 0, marker_color=color(u), **_cell(k),
                        hovertemplate=f"{underlying} %{{x}}<br>%{{y:$,.0f}} ({unit})<extra></extra>")
    for k, (_, _, unit) in enumerate(GREEKS):
        fig.update_xaxes(title=axis_title if k >= 2 else None, type="category", **_cell(k))
        fig.update_yaxes(title=unit.split(" ")[0], **MONEY_TICKS, **_cell(k))
    fig.update_layout(barmode="group")
    fig.update_annotations(font_size=12, yshift=6)  # panel titles clear of the top tick label
    return styled(fig, title, height=540, **PANELS_LAYOUT)


def by_underlying(analysis: Analysis) -> go.Figure:
    return greeks_bars(analysis.by_underlying, "underlying", "Underlying", "Greeks by underlying")


def by_expiry(analysis: Analysis) -> go.Figure:
    """By expiry date; perpetuals and spot holdings have no expiry and show as PERP and SPOT."""
    return greeks_bars(analysis.by_expiry, "expiry", "Expiry (PERP, SPOT: no expiry)",
                       "Greeks by expiry")


def strike_profile(analysis: Analysis, underlying: str) -> go.Figure:
    """Gamma and vega of the options on ``underlying`` by strike, with the spot marked:
    where the book's convexity sits relative to today's price."""
    part = analysis.by_strike[analysis.by_strike["underlying"] == underlying]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.12,
                        subplot_titles=[f"{name} ({unit})" for column, name, unit in GREEKS
                                        if column in ("gamma_usd_1pct", "vega_per_vol_pt")])
    for row, column in ((1, "gamma_usd_1pct"), (2, "vega_per_vol_pt")):
        values = part[column]
        fig.add_bar(x=part["strike"], y=values, row=row, col=1, showlegend=False,
                    marker_color=["#2166ac" if v >= 0 else "#b2182b" for v in values],
                    hovertemplate="strike %{x:$,.0f}<br>%{y:$,.0f}<extra></extra>")
        fig.update_yaxes(title="USD", **MONEY_TICKS, row=row, col=1)
    if underlying in analysis.market.underlyings:
        spot = analysis.market.spot(underlying)
        fig.add_vline(x=spot, line={"color": "#52606d", "dash": "dot"})
        fig.add_annotation(x=spot, y=0, xref="x", yref="paper", yanchor="bottom", xanchor="left",
                           text=f" spot {spot:,.6g}", showarrow=False, font={"color": "#52606d"})
    if part.empty:
        fig.add_annotation(text=f"no options on {underlying} in the book", showarrow=False,
                           xref="paper", yref="paper", x=0.5, y=0.5)
    fig.update_xaxes(title=STRIKE, tickformat="$,.0f", row=2, col=1)
    fig.update_annotations(font_size=12)
    return styled(fig, f"{underlying} strike profile: gamma and vega by strike", height=500)


def greeks_vs_spot(analysis: Analysis) -> go.Figure:
    """Book Greeks as every underlying moves by the same fraction (smile per the market's
    sticky rule): how the risk itself changes on a move."""
    profile = analysis.profile
    fig = _panels()
    for k, (column, name, unit) in enumerate(GREEKS):
        fig.add_scatter(x=profile["spot_shock"] * 100.0, y=profile[column], mode="lines", name=name,
                        line={"color": color(k), "width": 2.2}, showlegend=False, **_cell(k),
                        hovertemplate=f"spot %{{x:+.1f}} %<br>{name} %{{y:$,.0f}} ({unit})<extra></extra>")
        fig.add_vline(x=0, line={"color": "#9aa5b1", "dash": "dot"}, **_cell(k))
        fig.update_yaxes(title=unit.split(" ")[0], **MONEY_TICKS, **_cell(k))
        fig.update_xaxes(title=SPOT_SHOCK if k >= 2 else None, ticksuffix=" %", **_cell(k))
    fig.update_annotations(font_size=12, yshift=6)
    return styled(fig, "Greeks vs spot (vol per smile, today)", height=540, **PANELS_LAYOUT)
