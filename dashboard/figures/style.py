"""Shared look of every figure: template, colours and the unit-bearing axis titles.

Units are part of the titles on purpose: a trainer reading a screenshot must be able to tell a
USD delta from a delta in coins, and vol points from percent of spot, without the legend.
"""
from __future__ import annotations

import textwrap

import plotly.graph_objects as go

FONT = "Inter, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
TEXT = "#1f2933"
GRID = "#e4e7eb"
ACCENT = "#1f6feb"
#: Losses, shortfalls and bankrupt accounts.
LOSS = "#b2182b"
#: Maintenance-margin lines and warnings.
WARN = "#e8590c"
#: Arbitrage and other alarms.
ALARM = "#c92a2a"
#: Secondary text and reference lines.
MUTED = "#52606d"

#: Losses red, gains blue, white at exactly zero (colour-blind safe, prints in grey scale).
#: Spelled out because plotly.js's built-in "RdBu" puts blue at the low end.
PNL_SCALE = [[0.0, "#b2182b"], [0.25, "#ef8a62"], [0.5, "#f7f7f7"], [0.75, "#67a9cf"], [1.0, "#2166ac"]]

#: One colour per underlying / horizon, stable across figures.
SERIES = ("#1f6feb", "#e8590c", "#2b8a3e", "#862e9c", "#c2255c", "#5c940d", "#0b7285", "#495057")

#: Axis and colour-bar ticks in USD: $1.5k, $2.3M, $1.48B (plotly's "B" exponent format: SI
#: prefixes, but B for billions, as a desk reads them; d3's SI format would print G).
MONEY_TICKS = {"tickprefix": "$", "exponentformat": "B", "tickformat": ""}
SPOT_SHOCK = "Spot shock (% of spot)"
VOL_SHOCK = "Vol shock (vol points)"
PNL = "P&L (USD)"
STRIKE = "Strike (USD)"

#: Display Greeks with their units (docs/methodology.md §4: delta in USD, gamma per 1 % move, vega per vol
#: point, theta per calendar day).
GREEKS = (
    ("delta_usd", "$delta", "USD"),
    ("gamma_usd_1pct", "Gamma", "USD of $delta per 1 % spot move"),
    ("vega_per_vol_pt", "Vega", "USD per vol point"),
    ("theta_per_day", "Theta", "USD per day"),
)


def styled(fig: go.Figure, title: str = "", height: int = 420, **layout) -> go.Figure:
    """Apply the house style (``layout`` overrides it); ``uirevision`` keeps zoom and the 3-D
    camera across data updates."""
    fig.update_layout({
        "template": "plotly_white",
        # The title hangs from the top, the legend sits under it on the left, just above the
        # plot: neither meets the chart toolbar at the top right, nor each other.
        "title": {"text": title, "x": 0.01, "xanchor": "left", "y": 1.0 - 12.0 / height, "yref": "container",
                  "yanchor": "top", "font": {"size": 15}},
        "font": {"family": FONT, "size": 12, "color": TEXT},
        "height": height,
        "margin": {"l": 70, "r": 30, "t": (95 if "<br>" in title else 70) if title else 30, "b": 60},
        "hoverlabel": {"font": {"family": FONT}},
        # Legend on the left, under the title: the chart toolbar sits at the top right.
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0},
        "uirevision": "keep",
        **layout,
    })
    fig.update_xaxes(gridcolor=GRID, zerolinecolor="#9aa5b1", automargin=True)
    fig.update_yaxes(gridcolor=GRID, zerolinecolor="#9aa5b1", automargin=True)
    return fig


def color(k: int) -> str:
    return SERIES[k % len(SERIES)]


def message_figure(text: str, height: int = 320) -> go.Figure:
    """An empty figure that says why there is nothing to draw (yet); long text is wrapped, which
    plotly does not do for annotations."""
    fig = go.Figure()
    fig.add_annotation(text="<br>".join(textwrap.wrap(text, 90)), x=0.5, y=0.5, xref="paper", yref="paper",
                       showarrow=False, font={"size": 14, "color": MUTED})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return styled(fig, height=height)
