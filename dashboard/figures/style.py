"""Shared look of every figure: template, colours and the unit-bearing axis titles.

Units are part of the titles on purpose: a trainer reading a screenshot must be able to tell a
USD delta from a delta in coins, and vol points from percent of spot, without the legend.
"""
from __future__ import annotations

import plotly.graph_objects as go

FONT = "Inter, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
TEXT = "#1f2933"
GRID = "#e4e7eb"
ACCENT = "#1f6feb"

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


def shock_label(shock: float) -> str:
    """A spot shock (fraction) in % with a true minus sign, and no sign at zero: ``0 %``,
    ``+15 %``, ``−15 %``."""
    pct = round(shock * 100.0, 1)
    return "0 %" if pct == 0 else f"{pct:+.4g} %".replace("-", "−")


def color(k: int) -> str:
    return SERIES[k % len(SERIES)]


def usd(x: float) -> str:
    """``-1234.5`` -> ``'−$1,235'`` (true minus sign, whole dollars); NaN (unknown) -> ``'n/a'``."""
    if x != x:
        return "n/a"
    return ("−" if x < 0 else "") + f"${abs(x):,.0f}"


#: Symbols of the coins an account can be denominated in (engine.account.DENOMINATIONS).
COIN_SYMBOLS = {"BTC": "₿", "ETH": "Ξ"}


def usd_short(x: float) -> str:
    """``1_170_000`` -> ``'$1.17 M'``: three significant figures with k / M / B."""
    if x != x:
        return "n/a"
    size, suffix = abs(x), ""
    for scale, name in ((1e9, " B"), (1e6, " M"), (1e3, " k")):
        if size >= scale:
            size, suffix = size / scale, name
            break
    return ("−" if x < 0 else "") + f"${size:.3g}{suffix}"


def money(amount_usd: float, currency: str = "USD", spot: float = 1.0) -> str:
    """A USD amount in the account's ``currency`` (``spot``: USD per coin) with USD beside:
    ``'₿12.345 ($1.17 M)'``; a USD account shows :func:`usd`."""
    if currency == "USD":
        return usd(amount_usd)
    coin = amount_usd / spot
    return ("−" if coin < 0 else "") + f"{COIN_SYMBOLS.get(currency, currency + ' ')}{abs(coin):,.3f} " \
        f"({usd_short(amount_usd)})"
