"""Risk figures: VaR/ES table, P&L distribution with VaR and ES, component VaR, backtest, crash
replay, liquidation boundary on the spot × vol plane and the margin-explain waterfall.

Pure functions of the engine's results (``engine.var``, ``engine.crashes``).  Losses are shown
as negative P&L on the axes and VaR/ES as positive USD amounts in titles and tables.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from scipy import stats

from engine.crashes import EpisodeReplay, MarginExplain, ReverseStress
from engine.var import METHODS, Backtest, VarResult

from ..format import usd
from .style import LOSS, MONEY_TICKS, PNL, PNL_SCALE, SPOT_SHOCK, VOL_SHOCK, WARN, color, styled

#: Under the plot: the two-line titles of these figures leave no room above it.
LEGEND_BELOW = {"orientation": "h", "yanchor": "top", "y": -0.14, "xanchor": "left", "x": 0}


def _pct(c: float) -> str:
    return f"{100 * c:.3g} %"


def var_table(results: dict[str, VarResult], highlight: str | None = None) -> go.Figure:
    """One row per method and confidence: VaR, ES (USD, losses positive) and, for the sample
    methods, the standard error of the VaR estimate; ``highlight`` bolds one method."""
    rows = [(m, c, r.var[k], r.es[k], r.standard_error[k] if len(r.standard_error) else np.nan)
            for m, r in results.items() for k, c in enumerate(r.confidences)]
    bold = [("<b>%s</b>" if m == highlight else "%s") % METHODS.get(m, m) for m, *_ in rows]
    horizon = next(iter(results.values())).horizon_days if results else 1.0
    fig = go.Figure(go.Table(
        header={"values": ["Method", "Confidence", "VaR (USD)", "ES (USD)", "± SE of VaR (USD)"],
                "align": ["left", "right", "right", "right", "right"], "fill_color": "#f1f3f5"},
        cells={"values": [bold, [_pct(c) for _, c, *_ in rows], [usd(v) for _, _, v, _, _ in rows],
                          [usd(e) for *_, e, _ in rows], ["" if s != s else usd(s) for *_, s in rows]],
               "align": ["left", "right", "right", "right", "right"], "height": 26},
    ))
    return styled(fig, f"VaR and expected shortfall, {horizon:g}-day horizon", height=max(220, 90 + 27 * len(rows)),
                  margin={"l": 10, "r": 10, "t": 50, "b": 10})


def pnl_histogram(result: VarResult, confidence: float) -> go.Figure:
    """Distribution of the horizon P&L: the simulated or historical sample as a histogram, or
    the density the parametric method assumes (normal with its mean and standard deviation;
    the Cornish–Fisher quantiles are the marked lines); VaR and ES marked at −VaR and −ES."""
    k = result.confidence_index(confidence)
    var, es = float(result.var[k]), float(result.es[k])
    fig = go.Figure()
    if len(result.pnl):
        fig.add_trace(go.Histogram(x=result.pnl, nbinsx=80, name="scenarios", marker_color="#adb5bd",
                                   hovertemplate="P&L %{x:$,.0f}<br>%{y} scenarios<extra></extra>"))
        y_title = "Scenarios"
    else:
        mean, sd = result.moments.get("mean", 0.0), max(result.moments.get("std", 0.0), 1e-9)
        x = np.linspace(mean - 5 * sd, mean + 5 * sd, 301)
        fig.add_trace(go.Scatter(x=x, y=stats.norm.pdf(x, mean, sd), mode="lines", name="assumed density",
                                 line={"color": "#868e96"}, fill="tozeroy",
                                 hovertemplate="P&L %{x:$,.0f}<extra></extra>"))
        y_title = "Density (1/USD)"
    for value, label, dash in ((-var, f"VaR {usd(var)}", "solid"), (-es, f"ES {usd(es)}", "dash")):
        fig.add_vline(x=value, line={"color": LOSS, "dash": dash, "width": 2},
                      annotation={"text": label, "font": {"color": LOSS}}, annotation_position="top left")
    title = (f"{METHODS.get(result.method, result.method)}: P&L over {result.horizon_days:g} d"
             f"<br><sup>{_pct(result.confidences[k])} VaR {usd(var)}, ES {usd(es)}</sup>")
    return styled(fig, title, xaxis_title=PNL, yaxis_title=y_title, showlegend=False, bargap=0.02)


def component_bars(result: VarResult, confidence: float, top: int = 15) -> go.Figure:
    """Euler contributions to VaR: by underlying (left) and by position (right, the ``top``
    largest in size, the rest summed as "others"); the bars add up to the total VaR, a hedge's
    bar is negative."""
    by_pos = result.by_position(confidence)
    by_und = result.by_underlying(confidence)
    order = by_pos["component_var"].abs().sort_values(ascending=False).index
    shown = by_pos.loc[order[:top]]
    labels = [f"{r.instrument} #{r.position + 1}" for r in shown.itertuples()]
    values = list(shown["component_var"])
    if len(order) > top:
        labels.append(f"{len(order) - top} others")
        values.append(float(by_pos.loc[order[top:], "component_var"].sum()))
    fig = make_subplots(rows=1, cols=2, column_widths=[0.3, 0.7], horizontal_spacing=0.25,
                        subplot_titles=("by underlying", "by position"))
    fig.add_trace(go.Bar(x=by_und["component_var"], y=by_und["underlying"], orientation="h",
                         marker_color=[color(i) for i in range(len(by_und))],
                         hovertemplate="%{y}: %{x:$,.0f}<extra></extra>"), 1, 1)
    fig.add_trace(go.Bar(x=values[::-1], y=labels[::-1], orientation="h",
                         marker_color=[LOSS if v > 0 else "#2166ac" for v in values[::-1]],
                         hovertemplate="%{y}: %{x:$,.0f}<extra></extra>"), 1, 2)
    k = result.confidence_index(confidence)
    title = (f"Component VaR (Euler), {_pct(confidence)}: shares add up to {usd(result.var[k])}"
             f"<br><sup>red adds risk, blue hedges</sup>")
    fig = styled(fig, title, height=max(380, 120 + 22 * len(labels)), showlegend=False,
                 margin={"l": 70, "r": 30, "t": 95, "b": 60})
    fig.update_xaxes(title_text="USD of VaR", **MONEY_TICKS)
    return fig


def backtest_chart(bt: Backtest) -> go.Figure:
    """Daily book P&L under each realised move against the VaR forecast of the day before
    (−VaR line); exceptions (loss beyond VaR) marked; Kupiec and Christoffersen in the title."""
    f = bt.frame
    exc = f[f["exception"]]
    fig = go.Figure([
        go.Bar(x=f["date"], y=f["pnl"], name="P&L", marker_color="#adb5bd",
               hovertemplate="%{x|%Y-%m-%d}: %{y:$,.0f}<extra></extra>"),
        go.Scatter(x=f["date"], y=-f["var"], name=f"−VaR {_pct(bt.confidence)}", mode="lines",
                   line={"color": WARN, "width": 2}),
        go.Scatter(x=exc["date"], y=exc["pnl"], name="exceptions", mode="markers",
                   marker={"color": LOSS, "size": 10, "symbol": "x"}),
    ])
    c = bt.christoffersen
    title = (f"Backtest ({METHODS.get(bt.method, bt.method)}, {bt.window}-day window): "
             f"{bt.exceptions} exceptions, {bt.expected:.1f} expected"
             f"<br><sup>Kupiec LR {bt.kupiec_lr:.2f} (p {bt.kupiec_p:.2f}) · Christoffersen independence "
             f"LR {c.lr_ind:.2f} (p {c.p_ind:.2f}) · conditional coverage LR {c.lr_cc:.2f} (p {c.p_cc:.2f})</sup>")
    return styled(fig, title, yaxis_title=PNL, legend=LEGEND_BELOW,
                  margin={"l": 70, "r": 30, "t": 80, "b": 110})


def replay_chart(replay: EpisodeReplay) -> go.Figure:
    """Top: the episode's spot move (%) per underlying and ATM vol change (vol points); bottom:
    equity against MM (and IM) along the path with the margin ratio MM/equity (right axis; a
    ratio ≥ 100 % is liquidatable), the first liquidatable moment marked."""
    p = replay.path
    unds = [c[5:] for c in p.columns if c.startswith("spot_")]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.45, 0.55],
                        specs=[[{"secondary_y": True}], [{"secondary_y": True}]])
    for k, u in enumerate(unds):
        fig.add_trace(go.Scatter(x=p["hours"], y=100 * p[f"spot_{u}"], name=f"{u} spot %", mode="lines+markers",
                                 line={"color": color(k)}), 1, 1)
        fig.add_trace(go.Scatter(x=p["hours"], y=100 * p[f"vol_{u}"], name=f"{u} ATM vol Δ (pts)", mode="lines",
                                 line={"color": color(k), "dash": "dot"}), 1, 1, secondary_y=True)
    if (p["stable"] != 1.0).any():
        fig.add_trace(go.Scatter(x=p["hours"], y=100 * (p["stable"] - 1.0), name="stable coin %", mode="lines",
                                 line={"color": "#495057", "dash": "dash"}), 1, 1)
    fig.add_trace(go.Scatter(x=p["hours"], y=p["equity"], name="equity", mode="lines+markers",
                             line={"color": "#2166ac", "width": 2.5}), 2, 1)
    fig.add_trace(go.Scatter(x=p["hours"], y=p["mm"], name="MM", mode="lines", line={"color": LOSS, "width": 2}), 2, 1)
    fig.add_trace(go.Scatter(x=p["hours"], y=p["im"], name="IM", mode="lines", line={"color": WARN, "dash": "dash"}),
                  2, 1)
    ratio = np.where(np.isfinite(p["margin_ratio"]), 100 * p["margin_ratio"], None)
    fig.add_trace(go.Scatter(x=p["hours"], y=ratio, name="margin ratio MM/equity (%)", mode="lines",
                             line={"color": "#868e96", "dash": "dot"}), 2, 1, secondary_y=True)
    if replay.liquidation_hours is not None:
        fig.add_vline(x=replay.liquidation_hours, line={"color": LOSS, "width": 2, "dash": "dot"})
        fig.add_annotation(x=replay.liquidation_hours, y=1.0, xref="x", yref="paper", yanchor="bottom",
                           text=f"liquidatable at {replay.liquidation_hours:g} h", showarrow=False,
                           font={"color": LOSS})
        when = f"liquidatable after {replay.liquidation_hours:g} h"
    else:
        when = "never liquidatable on this path"
    title = (f"{replay.episode.title}: {when}<br><sup>worst P&L {usd(replay.worst_pnl)} · "
             f"margin model {replay.model}</sup>")
    fig = styled(fig, title, height=600, legend=LEGEND_BELOW, margin={"l": 70, "r": 70, "t": 80, "b": 130})
    fig.update_yaxes(title_text="Spot move (%)", row=1, col=1, secondary_y=False)
    fig.update_yaxes(title_text="ATM vol change (pts)", row=1, col=1, secondary_y=True, showgrid=False)
    fig.update_yaxes(title_text="USD", **MONEY_TICKS, row=2, col=1, secondary_y=False)
    fig.update_yaxes(title_text="Margin ratio (%)", row=2, col=1, secondary_y=True, showgrid=False)
    fig.update_xaxes(title_text="Hours from the episode's start", row=2, col=1)
    return fig


def boundary_traces(rs: ReverseStress) -> list[go.Scatter]:
    """The liquidation boundary (equity = MM) and the most likely breaking point as traces in
    the stress heatmap's coordinates (x spot shock %, y vol shock points): add them to any
    spot × vol figure, e.g. the Stress page's heatmap (:func:`with_boundary`)."""
    b = rs.boundary
    sides = [col for col in ("spot_down", "spot_up") if b[col].notna().any()]
    traces = [go.Scatter(x=100 * b[col], y=100 * b["vol_shock"], mode="lines", name="equity = MM",
                         line={"color": "#111", "width": 3}, showlegend=k == 0,
                         hovertemplate="boundary: spot %{x:+.1f} %, vol %{y:+.0f} pts<extra></extra>")
              for k, col in enumerate(sides)]
    if rs.most_likely is not None:
        m = rs.most_likely
        traces.append(go.Scatter(
            x=[100 * m["spot_shock"]], y=[100 * m["vol_shock"]], mode="markers+text", name="most likely break",
            marker={"symbol": "star", "size": 18, "color": "#ffd43b", "line": {"color": "#111", "width": 1.5}},
            text=[f"d = {m['distance']:.2f}σ, p ≈ {m['probability']:.2g}"], textposition="top center",
            hovertemplate="most likely break<br>spot %{x:+.1f} %, vol %{y:+.1f} pts<extra></extra>"))
    return traces


def with_boundary(fig: go.Figure, rs: ReverseStress) -> go.Figure:
    """``fig`` (a spot % × vol points figure) with :func:`boundary_traces` added."""
    for t in boundary_traces(rs):
        fig.add_trace(t)
    return fig


def boundary_heatmap(rs: ReverseStress) -> go.Figure:
    """Equity − MM (USD) over the common spot × vol plane; the black line is the liquidation
    boundary, the star the most likely breaking point under the VaR factor model."""
    fig = go.Figure(go.Heatmap(
        x=100 * rs.spot_shocks, y=100 * rs.vol_shocks, z=rs.gap.T, colorscale=PNL_SCALE, zmid=0.0,
        colorbar={"title": {"text": "Equity − MM (USD)", "side": "top"}, **MONEY_TICKS},
        hovertemplate="spot %{x:+.0f} %<br>vol %{y:+.0f} pts<br>equity − MM %{z:$,.0f}<extra></extra>"))
    with_boundary(fig, rs)
    m = rs.most_likely
    sub = ("the account cannot be liquidated inside this plane" if m is None else
           f"most likely break: spot {100 * m['spot_shock']:+.1f} %, vol {100 * m['vol_shock']:+.1f} pts, "
           f"{m['distance']:.2f} standard deviations, probability ≈ {m['probability']:.2g}")
    if rs.depeg_to_liquidate is not None and rs.depeg_to_liquidate <= 1.0:
        sub += f" · a stable-coin depeg of {100 * rs.depeg_to_liquidate:.1f} % alone liquidates"
    elif rs.depeg_to_liquidate is not None:
        sub += " · even a total loss of the stable coin alone does not liquidate"
    return styled(fig, f"Liquidation boundary<br><sup>{sub}</sup>", xaxis_title=SPOT_SHOCK, yaxis_title=VOL_SHOCK,
                  height=520, legend=LEGEND_BELOW, margin={"l": 70, "r": 30, "t": 80, "b": 120})


def explain_waterfall(ex: MarginExplain, top: int = 10, title: str = "") -> go.Figure:
    """IM before → the ``top`` largest per-position changes (the rest summed) → IM after; the
    axis is zoomed on the levels the bars reach so that small changes stay visible."""
    pos = ex.by_position
    shown = pos.iloc[:top]
    labels = list(shown["instrument"])
    values = list(shown["change"])
    if len(pos) > top:
        labels.append(f"{len(pos) - top} others")
        values.append(float(pos["change"].iloc[top:].sum()))
    fig = go.Figure(go.Waterfall(
        x=["IM before", *labels, "IM after"], y=[ex.initial_before, *values, ex.initial_after],
        measure=["absolute", *["relative"] * len(values), "total"],
        increasing={"marker": {"color": LOSS}}, decreasing={"marker": {"color": "#2166ac"}},
        totals={"marker": {"color": "#495057"}}, hovertemplate="%{x}: %{y:$,.0f}<extra></extra>"))
    levels = ex.initial_before + np.concatenate([[0.0], np.cumsum(values)])
    lo, hi = float(min(levels.min(), ex.initial_after)), float(max(levels.max(), ex.initial_after))
    pad = 0.15 * (hi - lo) if hi > lo else 0.05 * max(abs(hi), 1.0)
    fig.update_yaxes(range=[max(0.0, lo - pad), hi + pad])
    heading = title or f"Margin explain ({ex.model}): IM {usd(ex.initial_before)} → {usd(ex.initial_after)}"
    return styled(fig, f"{heading}<br><sup>change {usd(ex.change)} split by position (Euler shares)</sup>",
                  yaxis_title="Initial margin (USD)", showlegend=False)


__all__ = ["backtest_chart", "boundary_heatmap", "boundary_traces", "component_bars", "explain_waterfall",
           "pnl_histogram", "replay_chart", "var_table", "with_boundary"]
