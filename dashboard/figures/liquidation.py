"""Liquidation figures: the plan as an equity waterfall against MM, the replay along a spot path,
the Almgren–Chriss schedule and its efficient frontier, and the Dutch auction.  Pure functions
of engine results (``engine.liquidation``); amounts in USD, times in the unit each axis names.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from engine.liquidation import AuctionResult, EfficientFrontier, ExecutionSchedule
from engine.liquidation.plan import LiquidationPlan
from engine.liquidation.replay import ReplayResult

from ..format import usd
from .style import ACCENT, LOSS, MONEY_TICKS, MUTED, WARN, styled

USD = "USD"
RATIO_COLOR = "#862e9c"
#: Room for a subplot title above each panel and the legend above the figure title.
PANELS_LAYOUT = {"margin": {"l": 80, "r": 30, "t": 95, "b": 55},
                 "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.04, "xanchor": "right", "x": 1}}
#: Half-width charts: a two-line title fills the top, so the legend goes under the x axis.
BOTTOM_LEGEND = {"margin": {"l": 70, "r": 20, "t": 70, "b": 40},
                 "legend": {"orientation": "h", "yanchor": "top", "y": -0.2, "xanchor": "left", "x": 0}}


# ----------------------------------------------------------------------------- plan


def plan_by_step(plan: LiquidationPlan) -> pd.DataFrame:
    """One row per plan step (a slice trades several instruments in one step): cost and fees
    summed, IM/MM/equity after the step, and a short description of what was traded."""
    steps = plan.steps
    if steps.empty:
        return pd.DataFrame(columns=["step", "cost", "fee", "im_after", "mm_after", "equity_after", "what"])
    what = steps.apply(lambda r: f"{r['action']}: {r['instrument']} {r['quantity']:+,.4g}", axis=1)
    grouped = steps.assign(what=what).groupby("step", sort=True)
    return pd.DataFrame({
        "cost": grouped["cost"].sum(), "fee": grouped["fee"].sum(),
        "im_after": grouped["im_after"].last(), "mm_after": grouped["mm_after"].last(),
        "equity_after": grouped["equity_after"].last(),
        "what": grouped["what"].apply(lambda w: "<br>".join(w.iloc[:6]) + (
            f"<br>… {len(w) - 6} more trades" if len(w) > 6 else "")),
    }).reset_index()


def plan_waterfall(plan: LiquidationPlan, buffer: float = 0.0) -> go.Figure:
    """Equity as a waterfall — today's equity, minus each step's execution cost, down to the
    equity after the plan (the last bar) — with the maintenance margin after each step as a step
    line and, when ``buffer`` > 0, the plan's target MM·(1 + buffer)."""
    by_step = plan_by_step(plan)
    x = ["now"] + [str(s) for s in by_step["step"]] + ["after"]
    fig = go.Figure(go.Waterfall(
        x=x, y=[plan.equity_before, *(-by_step["cost"]), 0.0],
        measure=["absolute"] + ["relative"] * len(by_step) + ["total"],
        name="equity", connector={"line": {"color": "#9aa5b1", "width": 1}},
        decreasing={"marker": {"color": LOSS}}, increasing={"marker": {"color": ACCENT}},
        totals={"marker": {"color": ACCENT}},
        customdata=["before the plan", *by_step["what"], f"after the plan: {plan.status}"],
        hovertemplate="step %{x}<br>equity %{y:$,.0f}<br>%{customdata}<extra></extra>",
    ))
    mm = [plan.mm_before, *by_step["mm_after"], plan.mm_after]
    fig.add_scatter(x=x, y=mm, mode="lines", name="maintenance margin (MM)", line_shape="hv",
                    line={"color": WARN, "width": 2.5},
                    hovertemplate="step %{x}<br>MM %{y:$,.0f}<extra></extra>")
    if buffer > 0:
        fig.add_scatter(x=x, y=np.asarray(mm) * (1.0 + buffer), mode="lines", line_shape="hv",
                        name=f"target MM × {1 + buffer:g}", line={"color": WARN, "dash": "dot"},
                        hovertemplate="target %{y:$,.0f}<extra></extra>")
    values = np.array([plan.equity_before, plan.equity_after, *mm, *by_step["equity_after"]])
    lo, hi = float(values.min()), float(values.max())
    span = hi - lo
    # Costs are small next to equity: zoom onto the band where equity and MM meet, unless it
    # already reaches zero (then the full bars say more).
    if lo > 0 and span > 0:
        fig.update_yaxes(range=[max(0.0, lo - 0.35 * span), hi + 0.15 * span])
    fig.update_xaxes(title="Plan step", type="category")
    fig.update_yaxes(title=f"Equity and MM ({USD})", **MONEY_TICKS)
    title = (f"Liquidation plan: {len(by_step)} step(s), cost {usd(plan.total_cost)}, ends {plan.status}"
             f"<br><sup>equity {usd(plan.equity_before)} → {usd(plan.equity_after)} · "
             f"MM {usd(plan.mm_before)} → {usd(plan.mm_after)}</sup>")
    return styled(fig, title, height=430)


# ----------------------------------------------------------------------------- replay


def replay_triggers(result: ReplayResult) -> pd.DataFrame:
    """The points of the path where a plan ran: hours, spot_shock, margin_ratio, equity, trades,
    cost and ``closed`` (what the plan traded there, for the hover)."""
    path = result.path
    hit = path[path["liquidated"]]
    trades = result.trades

    def closed(hours: float) -> str:
        at = trades[trades["hours"] == hours]
        lines = [f"{r.action}: {r.instrument} {r.quantity:+,.4g}" for r in at.head(8).itertuples()]
        return "<br>".join(lines) + (f"<br>… {len(at) - 8} more" if len(at) > 8 else "")

    return hit.assign(closed=[closed(h) for h in hit["hours"]])


def _finite(values) -> np.ndarray:
    """Infinite margin ratios (equity ≤ 0) are gaps in a line, not points at infinity."""
    v = np.asarray(values, dtype=float)
    return np.where(np.isfinite(v), v, np.nan)


def replay_chart(result: ReplayResult, path_label: str = "") -> go.Figure:
    """Three panels along the path's hours: the spot shock, the margin ratio MM/equity with the
    liquidation line at 100 % and a marker at every point where a plan ran (hover: what it
    closed), and equity against MM."""
    path = result.path
    hit = replay_triggers(result)
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        row_heights=[0.25, 0.4, 0.35],
                        subplot_titles=["Spot shock (% of today's spot)", "Margin ratio MM / equity (%)",
                                        "Equity and maintenance margin (USD)"])
    fig.add_scatter(x=path["hours"], y=path["spot_shock"] * 100.0, mode="lines", name="spot shock",
                    line={"color": MUTED, "width": 2}, showlegend=False, row=1, col=1,
                    hovertemplate="%{x:,.1f} h<br>spot %{y:+.1f} %<extra></extra>")
    fig.add_scatter(x=path["hours"], y=_finite(path["margin_ratio"]) * 100.0, mode="lines", name="margin ratio",
                    line={"color": RATIO_COLOR, "width": 2.2}, showlegend=False, row=2, col=1,
                    hovertemplate="%{x:,.1f} h<br>ratio %{y:.1f} %<extra></extra>")
    fig.add_hline(y=100.0, line={"color": LOSS, "dash": "dash", "width": 1.2}, row=2, col=1)
    fig.add_scatter(x=hit["hours"], y=_finite(hit["margin_ratio"]) * 100.0, mode="markers",
                    name="liquidation ran (ratio after it)",
                    customdata=np.c_[hit["trades"], hit["cost"], hit["closed"]],
                    marker={"symbol": "x", "size": 11, "color": LOSS, "line": {"width": 1}}, row=2, col=1,
                    hovertemplate="%{x:,.1f} h: %{customdata[0]} trade(s), cost %{customdata[1]:$,.0f}"
                                  "<br>%{customdata[2]}<extra></extra>")
    fig.add_scatter(x=path["hours"], y=path["equity"], mode="lines", name="equity",
                    line={"color": ACCENT, "width": 2.2}, row=3, col=1,
                    hovertemplate="%{x:,.1f} h<br>equity %{y:$,.0f}<extra></extra>")
    fig.add_scatter(x=path["hours"], y=path["mm"], mode="lines", name="MM",
                    line={"color": WARN, "width": 2}, row=3, col=1,
                    hovertemplate="%{x:,.1f} h<br>MM %{y:$,.0f}<extra></extra>")
    fig.update_yaxes(ticksuffix=" %", title="%", row=1, col=1)
    fig.update_yaxes(ticksuffix=" %", title="%", rangemode="tozero", row=2, col=1)
    fig.update_yaxes(**MONEY_TICKS, title=USD, row=3, col=1)
    fig.update_xaxes(title="Hours from now", row=3, col=1)
    title = (f"Replay: {int(path['liquidated'].sum())} liquidation point(s), "
             f"{len(result.trades)} trade(s), ends {result.status} with equity {usd(result.final_equity)}"
             + (f"<br><sup>path: {path_label}</sup>" if path_label else ""))
    return styled(fig, title, height=620, **PANELS_LAYOUT)


# ----------------------------------------------------------------------------- execution schedule


def schedule_chart(schedule: ExecutionSchedule, instrument: str) -> go.Figure:
    """Holdings left after each interval: the Almgren–Chriss trajectory against the straight
    line (TWAP), with the contracts traded per interval as bars."""
    t = schedule.times
    fig = go.Figure()
    fig.add_bar(x=(t[:-1] + t[1:]) / 2.0, y=np.abs(schedule.trades), width=schedule.tau * 0.8,
                name="traded in the interval (optimal)", marker_color="#c5d5ea",
                hovertemplate="%{x:.2f} d: %{y:,.4g} contracts<extra></extra>")
    fig.add_scatter(x=t, y=np.abs(schedule.holdings), mode="lines+markers", name="optimal holdings",
                    line={"color": ACCENT, "width": 2.5},
                    hovertemplate="%{x:.2f} d: %{y:,.4g} left<extra></extra>")
    fig.add_scatter(x=t, y=np.abs(schedule.linear_holdings), mode="lines", name="straight line (TWAP)",
                    line={"color": MUTED, "dash": "dash"},
                    hovertemplate="%{x:.2f} d: %{y:,.4g} left<extra></extra>")
    fig.update_xaxes(title="Time (days)")
    fig.update_yaxes(title="Position left (contracts)", rangemode="tozero")
    title = (f"Closing {instrument}: κ = {schedule.kappa:.3g} /day, κT = {schedule.kappa * t[-1]:.3g}"
             f"<br><sup>optimal: E {usd(schedule.expected_cost)} ± {usd(schedule.std)} · "
             f"TWAP: E {usd(schedule.linear_expected_cost)} ± {usd(schedule.linear_std)}</sup>")
    return styled(fig, title, height=430, **BOTTOM_LEGEND)


def frontier_chart(frontier: EfficientFrontier, schedule: ExecutionSchedule) -> go.Figure:
    """Expected cost against its standard deviation over risk aversions λ; the chosen λ and the
    straight line (λ = 0) marked."""
    fig = go.Figure()
    fig.add_scatter(x=frontier.std, y=frontier.expected_cost, mode="lines", name="efficient frontier",
                    line={"color": ACCENT, "width": 2.5}, customdata=frontier.lam,
                    hovertemplate="λ %{customdata:.3g} /USD<br>sd %{x:$,.0f}<br>E %{y:$,.0f}<extra></extra>")
    fig.add_scatter(x=[schedule.linear_std], y=[schedule.linear_expected_cost], mode="markers",
                    name="straight line (λ = 0)", marker={"symbol": "square", "size": 11, "color": MUTED},
                    hovertemplate="TWAP<br>sd %{x:$,.0f}<br>E %{y:$,.0f}<extra></extra>")
    fig.add_scatter(x=[schedule.std], y=[schedule.expected_cost], mode="markers",
                    name=f"chosen λ = {schedule.lam:.3g}", marker={"symbol": "star", "size": 15, "color": WARN},
                    hovertemplate="chosen<br>sd %{x:$,.0f}<br>E %{y:$,.0f}<extra></extra>")
    fig.update_xaxes(title="Standard deviation of the cost (USD)", **MONEY_TICKS)
    fig.update_yaxes(title="Expected cost (USD)", **MONEY_TICKS)
    title = "Efficient frontier<br><sup>trading faster costs more on average but is less uncertain</sup>"
    return styled(fig, title, height=430, **BOTTOM_LEGEND)


# ----------------------------------------------------------------------------- auction


def _cumulative(times: np.ndarray, amounts: np.ndarray, end: float) -> tuple[np.ndarray, np.ndarray]:
    """A step line from 0 at t = 0 through the running total of ``amounts`` at ``times``, held
    to ``end``."""
    total = np.r_[0.0, np.cumsum(amounts)]
    return np.r_[0.0, times, end], np.r_[total, total[-1]]


def auction_chart(result: AuctionResult, insurance_fund: float) -> go.Figure:
    """Three panels in minutes since the auction started: the price of the whole book (negative:
    the insurance fund pays the bidder) with each fill, the share of the book sold, and the
    fund's cumulative payout against the fund."""
    path = result.path_frame
    fills = result.fills_frame
    minutes = path["t"] / 60.0
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.45, 0.3, 0.25],
                        subplot_titles=["Price of the whole book (USD)", "Book sold (% of the original)",
                                        "Insurance-fund payout (USD)"])
    fig.add_scatter(x=minutes, y=path["price"], mode="lines", name="auction price", customdata=path["phase"],
                    line={"color": ACCENT, "width": 2.2}, row=1, col=1,
                    hovertemplate="%{x:,.1f} min (%{customdata})<br>price %{y:$,.0f}<extra></extra>")
    if not fills.empty:
        fig.add_scatter(x=fills["time"] / 60.0, y=fills["price"], mode="markers", name="fills",
                        customdata=np.c_[fills["bidder"], fills["fraction_of_original"] * 100.0,
                                         fills["cash_paid"], fills["fund_payout"]],
                        marker={"size": 8 + 30 * np.sqrt(fills["fraction_of_original"]), "color": WARN,
                                "line": {"color": "#fff", "width": 1}}, row=1, col=1,
                        hovertemplate="bidder %{customdata[0]} at %{x:,.1f} min<br>takes %{customdata[1]:.1f} % "
                                      "of the book<br>pays %{customdata[2]:$,.0f}, fund pays "
                                      "%{customdata[3]:$,.0f}<extra></extra>")
    end = float(minutes.iloc[-1])
    fill_minutes = fills["time"].to_numpy(float) / 60.0
    times, sold = _cumulative(fill_minutes, fills["fraction_of_original"].to_numpy(float) * 100.0, end)
    _, paid = _cumulative(fill_minutes, fills["fund_payout"].to_numpy(float), end)
    fig.add_scatter(x=times, y=sold, mode="lines", line_shape="hv", name="book sold",
                    line={"color": "#2b8a3e", "width": 2.2}, showlegend=False, row=2, col=1,
                    hovertemplate="%{x:,.1f} min: %{y:.1f} % sold<extra></extra>")
    fig.add_scatter(x=times, y=paid, mode="lines", line_shape="hv", name="fund payout",
                    line={"color": LOSS, "width": 2.2}, showlegend=False, row=3, col=1,
                    hovertemplate="%{x:,.1f} min: fund paid %{y:$,.0f}<extra></extra>")
    if np.isfinite(insurance_fund):
        fig.add_hline(y=insurance_fund, line={"color": MUTED, "dash": "dash"}, row=3, col=1,
                      annotation_text=f"insurance fund {usd(insurance_fund)}", annotation_position="top left")
    for boundary, label in ((result.params.fast_seconds, "end of fast phase"),
                            (result.insolvent_start, "insolvent phase")):
        if np.isfinite(boundary) and 0 < boundary / 60.0 <= end:
            fig.add_vline(x=boundary / 60.0, line={"color": "#9aa5b1", "dash": "dot"})
            fig.add_annotation(x=boundary / 60.0, y=1.0, yref="y domain", text=label, showarrow=False,
                               xanchor="left", font={"size": 11, "color": MUTED}, row=1, col=1)
    fig.update_yaxes(**MONEY_TICKS, title=USD, row=1, col=1)
    fig.update_yaxes(ticksuffix=" %", title="%", range=[0, 105], row=2, col=1)
    # Up to the fund at least: an untouched fund reads as a flat line far below its level.
    top = max(float(paid.max()), insurance_fund if np.isfinite(insurance_fund) else 0.0, 1.0) * 1.1
    fig.update_yaxes(**MONEY_TICKS, title=USD, range=[0, top], row=3, col=1)
    fig.update_xaxes(title="Minutes since the auction started", row=3, col=1)
    title = (f"Dutch auction: {result.outcome.replace('_', ' ')}, {len(fills)} fill(s), "
             f"{(1 - result.fraction_left) * 100:.1f} % of the book sold, fund paid {usd(result.fund_payout)}")
    return styled(fig, title, height=600, **PANELS_LAYOUT)
