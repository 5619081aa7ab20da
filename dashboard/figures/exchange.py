"""Exchange figures: the distribution of margin ratios in the queue, the accounts and notional
liquidatable across spot shocks, and the rounds of a liquidation cascade.  Pure functions of
``engine.liquidation.queue`` results; counts are accounts, amounts USD, shocks % of spot.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from engine.liquidation.distributed import ClusterQueue
from engine.liquidation.queue import RATIO_BIN_PCT, RATIO_CAP, CascadeResult, QueueResult, ratio_counts, ratio_edges

from ..format import shock_label
from .style import ACCENT, LOSS, MONEY_TICKS, MUTED, SPOT_SHOCK, color, styled


def ratio_bins(queue: QueueResult | ClusterQueue, bin_pct: float = RATIO_BIN_PCT) -> pd.DataFrame:
    """Accounts per margin-ratio bin (MM / equity, %): columns left (bin start, %), healthy,
    liquidatable.  Ratios above ``RATIO_CAP`` and accounts with no equity left fall in the last
    bin.  Binned here so that a 100,000-account queue sends a few dozen bars, not its ratios; a
    cluster queue comes binned by its workers (default bins)."""
    if isinstance(queue, ClusterQueue):
        if bin_pct != RATIO_BIN_PCT:
            raise ValueError(f"a cluster queue is binned by {RATIO_BIN_PCT:g} % only")
        counts = queue.ratio_counts
    else:
        counts = ratio_counts(queue.accounts["margin_ratio"].to_numpy(float),
                              queue.accounts["liquidatable"].to_numpy(bool), bin_pct)
    return pd.DataFrame({"left": ratio_edges(bin_pct)[:-1], "healthy": counts[0], "liquidatable": counts[1]})


def ratio_histogram(queue: QueueResult | ClusterQueue, bin_pct: float = RATIO_BIN_PCT) -> go.Figure:
    """Accounts per margin-ratio bin, liquidatable ones (ratio ≥ 100 %) in red."""
    bins = ratio_bins(queue, bin_pct)
    centre = bins["left"] + bin_pct / 2.0
    fig = go.Figure()
    for column, name, colour in (("healthy", "healthy", ACCENT), ("liquidatable", "liquidatable (equity < MM)", LOSS)):
        fig.add_bar(x=centre, y=bins[column], width=bin_pct * 0.95, name=name, marker_color=colour,
                    customdata=np.c_[bins["left"], bins["left"] + bin_pct],
                    hovertemplate="ratio %{customdata[0]:.0f}–%{customdata[1]:.0f} %<br>"
                                  "%{y:,} accounts<extra></extra>")
    fig.add_vline(x=100.0, line={"color": LOSS, "dash": "dash"}, annotation_text="MM = equity",
                  annotation_position="top right")
    fig.update_layout(barmode="stack", bargap=0)
    fig.update_xaxes(title=f"Margin ratio MM / equity (%; ≥ {RATIO_CAP * 100:.0f} % and no equity: last bar)",
                     ticksuffix=" %", range=[0, RATIO_CAP * 100.0 + bin_pct])
    fig.update_yaxes(title="Accounts (count)")
    liq = int(bins["liquidatable"].sum())
    shock, accounts = ((queue.queue.spot_shock, queue.accounts) if isinstance(queue, ClusterQueue)
                       else (queue.spot_shock, len(queue.accounts)))
    title = (f"Margin ratios at spot {shock_label(shock)}"
             f"<br><sup>{liq:,} of {accounts:,} accounts liquidatable</sup>")
    return styled(fig, title, height=400)


def shock_chart(sweep: pd.DataFrame, current_shock: float | None = None) -> go.Figure:
    """Accounts (bars, left axis) and notional (line, right axis) liquidatable at each spot
    shock; the shock currently applied marked."""
    x = sweep["spot_shock"] * 100.0
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(x=x, y=sweep["accounts"], name="accounts liquidatable", marker_color=LOSS, opacity=0.8,
                customdata=sweep["shortfall_usd"],
                hovertemplate="spot %{x:+.0f} %<br>%{y:,} accounts<br>shortfall %{customdata:$,.0f}<extra></extra>")
    fig.add_scatter(x=x, y=sweep["notional_usd"], mode="lines+markers", name="their notional",
                    line={"color": ACCENT, "width": 2.2}, secondary_y=True,
                    hovertemplate="spot %{x:+.0f} %<br>notional %{y:$,.0f}<extra></extra>")
    if current_shock is not None:
        fig.add_vline(x=current_shock * 100.0, line={"color": MUTED, "dash": "dot"},
                      annotation_text="applied shock", annotation_position="top left")
    fig.update_xaxes(title=SPOT_SHOCK, ticksuffix=" %")
    fig.update_yaxes(title="Accounts liquidatable (count)", rangemode="tozero", secondary_y=False)
    fig.update_yaxes(title="Notional liquidatable (USD)", **MONEY_TICKS, rangemode="tozero",
                     showgrid=False, secondary_y=True)
    return styled(fig, "Liquidatable accounts and notional vs spot shock", height=400)


def cascade_chart(result: CascadeResult, max_rounds: int | None = None) -> go.Figure:
    """Per round: the spot of each underlying (% from today) as liquidation flow pushes it, and
    the accounts liquidated so far (new ones stacked on the earlier ones).  A cascade cut off by
    ``max_rounds`` while it was still liquidating says so in the title."""
    rounds = result.rounds
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.1,
                        subplot_titles=["Spot after each round (% from today)",
                                        "Accounts liquidated (count, cumulative)"])
    for k, underlying in enumerate(result.final_shock):
        fig.add_scatter(x=rounds["round"], y=rounds[f"shock_{underlying}"] * 100.0, mode="lines+markers",
                        name=underlying, line={"color": color(k), "width": 2.2}, row=1, col=1,
                        hovertemplate=f"{underlying}<br>round %{{x}}: spot %{{y:+.2f}} %<extra></extra>")
    earlier = rounds["cumulative"] - rounds["new_liquidations"]
    fig.add_bar(x=rounds["round"], y=earlier, name="liquidated in earlier rounds", marker_color="#9aa5b1",
                row=2, col=1, hovertemplate="round %{x}: %{y:,} before<extra></extra>")
    fig.add_bar(x=rounds["round"], y=rounds["new_liquidations"], name="new this round", marker_color=LOSS,
                customdata=rounds["notional_usd"], row=2, col=1,
                hovertemplate="round %{x}: %{y:,} new, notional %{customdata:$,.0f}<extra></extra>")
    fig.update_layout(barmode="stack", margin={"l": 80, "r": 30, "t": 95, "b": 55},
                      legend={"orientation": "h", "yanchor": "bottom", "y": 1.05, "xanchor": "left", "x": 0})
    fig.update_yaxes(title="% of spot", ticksuffix=" %", row=1, col=1)
    fig.update_yaxes(title="Accounts (count)", rangemode="tozero", row=2, col=1)
    fig.update_xaxes(title="Cascade round (0 = the initial shock)", dtick=1 if len(rounds) <= 20 else None,
                     row=2, col=1)
    last = rounds.iloc[-1]
    moves = ", ".join(f"{u} {s * 100:+.1f} %" for u, s in result.final_shock.items()).replace("-", "−")
    later = int((rounds["new_liquidations"].iloc[1:] > 0).sum())
    cut = max_rounds is not None and len(rounds) > max_rounds and last["new_liquidations"] > 0
    ending = (f"stopped at the limit of {max_rounds} rounds while still liquidating: raise the limit to see "
              "where it ends" if cut else f"spot ends at {moves}")
    title = (f"Cascade: {int(last['cumulative']):,} accounts liquidated, {later} round(s) after the shock"
             f"<br><sup>{ending}; round 0 alone: {int(rounds['new_liquidations'].iloc[0]):,}</sup>")
    return styled(fig, title, height=520)

