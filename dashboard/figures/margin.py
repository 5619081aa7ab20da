"""Margin figures: the margin-ratio gauge, all models side by side, the selected model's scenario
matrix, its initial margin built up from its components, and the attribution by position.

Pure functions of ``engine.margin`` results (``MarginResult``, ``summary`` frames,
``AccountHealth``); every axis names its unit (USD, % of spot, vol points).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from engine.margin import MODELS, MarginResult
from engine.margin.account import RATIO_DANGER, RATIO_WARNING, AccountHealth, health_status

from ..format import COIN_SYMBOLS, NO_EQUITY, money, ratio_text, usd
from .style import MONEY_TICKS, PNL_SCALE, SPOT_SHOCK, message_figure, styled

# ----------------------------------------------------------------------------- margin ratio

#: Colours of the engine's health levels (``engine.margin.account.HEALTH_LEVELS``).
LEVEL_COLOURS = {"healthy": "#2b8a3e", "warning": "#e8a317", "danger": "#c92a2a", "liquidatable": "#c92a2a",
                 "bankrupt": "#a4161a"}
#: The gauge's scale ends here: a ratio beyond it is shown pinned at the end.
GAUGE_MAX = 1.2
def ratio_gauge(health: AccountHealth) -> go.Figure:
    """Gauge of the margin ratio (%), coloured by the engine's health level, the liquidation line
    at 100 %.  With no equity left there is no number to show: the gauge reads ∞ instead."""
    level = health_status(health.equity, health.maintenance)
    infinite = math.isinf(health.margin_ratio)
    steps = [(0.0, RATIO_WARNING, "#e6f4ea"), (RATIO_WARNING, RATIO_DANGER, "#fdf1d6"),
             (RATIO_DANGER, GAUGE_MAX, "#fbe1e1")]
    fig = go.Figure(go.Indicator(
        mode="gauge" if infinite else "gauge+number", value=min(health.margin_ratio, GAUGE_MAX) * 100.0,
        number={"suffix": " %", "valueformat": ".1f", "font": {"color": LEVEL_COLOURS[level]}},
        gauge={"axis": {"range": [0, GAUGE_MAX * 100], "ticksuffix": " %",
                        "tickvals": [0, RATIO_WARNING * 100, RATIO_DANGER * 100, 100, GAUGE_MAX * 100]},
               "bar": {"color": LEVEL_COLOURS[level], "thickness": 0.35},
               "steps": [{"range": [a * 100, b * 100], "color": c} for a, b, c in steps],
               "threshold": {"value": 100, "thickness": 0.9, "line": {"color": "#111", "width": 3}}},
    ))
    if infinite:
        fig.add_annotation(text=f"<b>{NO_EQUITY}</b>", x=0.5, y=0.1, xref="paper", yref="paper", showarrow=False,
                           font={"size": 22, "color": LEVEL_COLOURS[level]})
    over = " (off the scale)" if GAUGE_MAX < health.margin_ratio < math.inf else ""
    title = f"Margin ratio = MM ÷ equity: {ratio_text(health.margin_ratio)}{over} · {level}"
    if health.currency != "USD":
        title += (f"<br><sup>equity {money(health.equity, health.currency, health.currency_spot)} · "
                  f"MM {money(health.maintenance, health.currency, health.currency_spot)}</sup>")
    return styled(fig, title, height=250, margin={"l": 30, "r": 30, "t": 60, "b": 10})


# ----------------------------------------------------------------------------- side by side

REQUIREMENT = "Requirement (USD)"


def model_label(model: str, params=None) -> str:
    """Short model name; the risk-based one with its preset (``ModelSpec.label``)."""
    return MODELS[model].label(params) if model in MODELS else model


def model_bars(table: pd.DataFrame, equity: float, currency: str = "USD") -> go.Figure:
    """IM and MM of every model (``table``: label, initial, maintenance, capital_efficiency),
    grouped, with capital efficiency above the IM bars and the account's equity as a line; amounts
    in ``currency`` (a coin-margined account's coin)."""
    unit = "$" if currency == "USD" else COIN_SYMBOLS.get(currency, currency)
    amount = ",.0f" if currency == "USD" else ",.4f"
    efficiency = [f"×{e:,.2f}" if np.isfinite(e) else "" for e in table["capital_efficiency"].astype(float)]
    fig = go.Figure([
        go.Bar(x=table["label"], y=table["initial"], name="Initial margin (IM)", marker_color="#1f6feb",
               text=efficiency, textposition="outside", cliponaxis=False,
               hovertemplate=f"%{{x}}<br>IM {unit}%{{y:{amount}}}<br>capital efficiency %{{text}}<extra></extra>"),
        go.Bar(x=table["label"], y=table["maintenance"], name="Maintenance margin (MM)", marker_color="#9ec5fe",
               hovertemplate=f"%{{x}}<br>MM {unit}%{{y:{amount}}}<extra></extra>"),
    ])
    fig.add_hline(y=equity, line={"color": "#495057", "dash": "dash", "width": 1.5},
                  annotation_text=f"equity {usd(equity) if currency == 'USD' else f'{unit}{equity:,.4f}'}",
                  annotation_position="top left")
    fig.update_layout(barmode="group", bargap=0.25)
    fig.update_xaxes(title="Margin model")
    if currency == "USD":
        fig.update_yaxes(title=REQUIREMENT, **MONEY_TICKS, rangemode="tozero")
    else:
        fig.update_yaxes(title=f"Requirement ({currency})", rangemode="tozero")
    return styled(fig, "IM and MM per model on the same book<br><sup>×: capital efficiency = "
                       "standard IM ÷ model IM</sup>", height=400)


# ----------------------------------------------------------------------------- scenario matrix

VOL_WORDS = {1: "vol up", 0: "vol unchanged", -1: "vol down"}


def spot_label(shock: float) -> str:
    return "0 %" if shock == 0 else f"{shock * 100:+.4g} %".replace("-", "−")


def vol_label(direction: float, shock: float) -> str:
    """Direction words for a per-option vol rule (risk-based), vol points for a fixed shift."""
    if math.isnan(shock):
        return VOL_WORDS[int(direction)]
    return f"{shock * 100:+.4g} vol pts".replace("-", "−")


def scenario_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """The scenario frame with the heatmap's ``x``/``y`` category labels, ordered by spot shock
    and vol shock."""
    out = frame.assign(x=[spot_label(s) for s in frame["spot_shock"]],
                       y=[vol_label(d, v) for d, v in zip(frame["vol_direction"], frame["vol_shock"], strict=True)],
                       vol_order=np.where(frame["vol_shock"].isna(), frame["vol_direction"], frame["vol_shock"]))
    return out.sort_values(["spot_shock", "vol_order"], kind="stable")


def _amount_in(currency: str):
    """Formatter of amounts in ``currency``: USD as :func:`usd`, a coin-margined result's coin
    with four decimals (``₿1.4167``)."""
    if currency == "USD":
        return usd
    symbol = COIN_SYMBOLS.get(currency, currency)
    return lambda x: ("−" if x < 0 else "") + f"{symbol}{abs(x):,.4f}"


def scenario_heatmap(result: MarginResult) -> go.Figure:
    """One heatmap row per underlying: x spot shock (% of spot), y vol shock, colour the weighted
    scenario P&L (USD; red loses).  A black box marks each underlying's binding scenario (its
    worst weighted P&L, which sets the scenario loss).  When two scenarios share a cell the worst
    is shown, so the box always sits on a visible cell."""
    amount = _amount_in(result.currency)
    frame = result.scenario_pnl
    if frame.empty:
        spec = MODELS.get(result.model)
        return message_figure(spec.no_grid if spec and spec.no_grid else "The book is empty: no scenario to show.",
                              height=240)
    cells = scenario_cells(frame)
    xs = list(dict.fromkeys(cells["x"]))
    ys = list(dict.fromkeys(cells.sort_values("vol_order", kind="stable")["y"]))
    underlyings = list(dict.fromkeys(cells["underlying"]))
    fig = make_subplots(rows=len(underlyings), cols=1, shared_xaxes=True, vertical_spacing=0.12 / len(underlyings),
                        subplot_titles=[f"{u}: binding {result.binding_scenario[u]}" for u in underlyings])
    limit = float(np.abs(cells["weighted_pnl"]).max()) or 1.0
    for row, und in enumerate(underlyings, start=1):
        part = cells[cells["underlying"] == und]
        z = np.full((len(ys), len(xs)), np.nan)
        text = np.full((len(ys), len(xs)), "", dtype=object)
        # Best first, so the worst of scenarios sharing a cell is written last and shown.
        for r in part.sort_values("weighted_pnl", ascending=False).itertuples():
            i, j = ys.index(r.y), xs.index(r.x)
            z[i, j] = r.weighted_pnl
            text[i, j] = (f"{r.scenario}<br>P&L {amount(r.pnl)} × weight {r.weight:.4g}"
                          f"<br>weighted {amount(r.weighted_pnl)}")
        fig.add_trace(go.Heatmap(x=xs, y=ys, z=z, text=text, coloraxis="coloraxis", xgap=2, ygap=2,
                                 hovertemplate=f"{und}<br>%{{text}}<extra></extra>"), row=row, col=1)
        bind = part[part["binding"]].iloc[0]
        fig.add_trace(go.Scatter(
            x=[bind["x"]], y=[bind["y"]], mode="markers", name=f"binding {und}", showlegend=False,
            customdata=[bind["scenario"]],
            marker={"symbol": "square-open", "size": 26, "color": "#111", "line": {"width": 3}},
            hovertemplate=f"binding scenario ({und}): %{{customdata}}<br>weighted P&L "
                          f"{amount(bind['weighted_pnl'])}<extra></extra>"), row=row, col=1)
        # Fixed ranges: the cells fill the plot, the marker does not pad it.
        fig.update_yaxes(title="Vol shock", type="category", categoryarray=ys, range=[-0.5, len(ys) - 0.5],
                         showgrid=False, row=row, col=1)
        fig.update_xaxes(type="category", categoryarray=xs, range=[-0.5, len(xs) - 0.5], showgrid=False,
                         row=row, col=1)
    fig.update_xaxes(title=SPOT_SHOCK, row=len(underlyings), col=1)
    coin = result.currency != "USD"
    fig.update_layout(coloraxis={"colorscale": PNL_SCALE, "cmin": -limit, "cmax": limit,
                                 "colorbar": {"title": {"text": f"Weighted P&L ({result.currency})", "side": "right"},
                                              **({} if coin else MONEY_TICKS)}})
    units = ("vol up/down: each option's vol moved by the model's vol rule"
             if frame["vol_shock"].isna().all() else "vol shifts in vol points")
    return styled(fig, f"Scenario P&L × weight, {model_label(result.model, result.params)}"
                       f"<br><sup>□ binding scenario; {units}</sup>",
                  height=140 + 190 * len(underlyings))


# ----------------------------------------------------------------------------- waterfall


def im_waterfall(result: MarginResult) -> go.Figure:
    """Waterfall from the model's components to its IM (USD), the steps the engine builds it up
    with (``MarginResult.waterfall``); zero steps are left out."""
    coin = result.currency != "USD"
    smallest = 5e-7 if coin else 0.005
    amount = _amount_in(result.currency)

    steps = [(k, v) for k, v in result.waterfall if abs(v) >= smallest]
    labels = [k for k, _ in steps] + ["initial margin"]
    values = [v for _, v in steps] + [result.initial]
    fig = go.Figure(go.Waterfall(
        x=labels, y=values, measure=["relative"] * len(steps) + ["total"],
        text=[amount(v) for v in values], textposition="outside", cliponaxis=False,
        connector={"line": {"color": "#9aa5b1", "width": 1}},
        increasing={"marker": {"color": "#e8590c"}}, decreasing={"marker": {"color": "#2b8a3e"}},
        totals={"marker": {"color": "#1f6feb"}},
        hovertemplate="%{x}<br>%{y:,.4f}<extra></extra>" if coin else "%{x}<br>%{y:$,.0f}<extra></extra>",
    ))
    fig.update_xaxes(title="Component")
    if coin:
        fig.update_yaxes(title=f"Requirement ({result.currency})", rangemode="tozero")
    else:
        fig.update_yaxes(title=REQUIREMENT, **MONEY_TICKS, rangemode="tozero")
    return styled(fig, f"Initial margin, {model_label(result.model, result.params)}: {amount(result.initial)}",
                  height=400, showlegend=False)


# ----------------------------------------------------------------------------- attribution

BASES = {
    "marginal": ("Marginal IM (USD): IM of the book − IM without the position", "marginal"),
    "scaled": ("Scaled IM (USD): marginal × IM ÷ Σ marginal, sums to IM", "scaled"),
}


def top_positions(by_position: pd.DataFrame, column: str, top: int, underlying: str | None = None) -> pd.DataFrame:
    """The ``top`` positions by |``column``| (optionally of one underlying), largest first, and
    the rest summed into one "other" row; columns label, value, positions."""
    part = by_position if underlying is None else by_position[by_position["underlying"] == underlying]
    order = part.reindex(part[column].abs().sort_values(ascending=False, kind="stable").index)
    head, rest = order.iloc[:top], order.iloc[top:]
    frame = pd.DataFrame({
        "label": [f"{r.instrument} × {r.quantity:,.6g} (row {r.position + 1})" for r in head.itertuples()],
        "value": head[column].to_numpy(dtype=float),
        "positions": 1,
    })
    if len(rest):
        frame.loc[len(frame)] = [f"other {len(rest)} positions", float(rest[column].sum()), len(rest)]
    return frame


def attribution_bars(result: MarginResult, basis: str = "marginal", top: int = 15,
                     underlying: str | None = None) -> go.Figure:
    """Horizontal bars of each position's share of the IM: red adds margin, green reduces it
    (a hedge).  The subtitle gives Σ marginal against IM (a hedged book's marginals can sum to
    far less than IM) and says how the scaled figures are made."""
    axis_title, column = BASES[basis]
    by_position = result.by_position
    if by_position.empty:
        return message_figure("The book is empty: nothing to attribute.", height=240)
    frame = top_positions(by_position, column, top, underlying).iloc[::-1]
    fig = go.Figure(go.Bar(
        x=frame["value"], y=frame["label"], orientation="h",
        marker_color=np.where(frame["value"] >= 0, "#c92a2a", "#2b8a3e"),
        customdata=frame["positions"],
        hovertemplate="%{y}<br>%{x:$,.0f} (%{customdata} position(s))<extra></extra>",
    ))
    total = float(by_position["marginal"].sum())
    # The engine's rule (engine.margin.result), said in words.
    factor = "scaled = Euler share q·∂IM/∂q, summing to IM"
    scope = f"{underlying} positions" if underlying else "all positions"
    fig.update_xaxes(title=axis_title, **MONEY_TICKS)
    fig.update_yaxes(title=None, automargin=True)
    return styled(fig, f"IM by position, top {top} of {scope}"
                       f"<br><sup>IM {usd(result.initial)}; Σ marginal {usd(total)}; {factor}</sup>",
                  height=max(360, 120 + 26 * len(frame)), margin={"l": 20, "r": 30, "t": 80, "b": 60})
