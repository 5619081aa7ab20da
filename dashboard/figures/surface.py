"""Vol surface figures: smiles fitted vs marks, ATM term structure, forwards vs spot, 3-D surface.

Pure functions of an ``engine.market.Market``, one underlying, the imported quotes (a frame with
expiry, strike, forward, mark_iv, bid_iv, ask_iv — vols decimal — or None) and the
static-arbitrage warnings (``engine.smile.ArbitrageWarning``).  Vols are shown in percent,
moneyness as k = ln(K/F), time in days (ACT/365).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from engine.market import Market, slice_total_variance

from .style import ALARM, color, styled

K_TITLE = "Log-moneyness k = ln(K/F)"
VOL_TITLE = "Implied vol (%)"


def live_slices(market: Market, underlying: str):
    """(slice, T years) of the expiries still ahead of the valuation time."""
    return [(s, market.expiry_years(s.expiry)) for s in market.underlying(underlying).smile
            if market.expiry_years(s.expiry) > 0]


def _k_range(market: Market, underlying: str, quotes: pd.DataFrame | None) -> np.ndarray:
    if quotes is not None and len(quotes):
        k = np.log(quotes["strike"].to_numpy(float) / quotes["forward"].to_numpy(float))
        lo, hi = float(k.min()), float(k.max())
        pad = 0.1 * max(hi - lo, 0.1)
        return np.linspace(lo - pad, hi + pad, 121)
    slices = live_slices(market, underlying)
    longest = max((np.sqrt(max(float(slice_total_variance(market, underlying, s, np.zeros(1))[0]), 1e-8))
                   for s, _ in slices), default=0.5)
    return np.linspace(-2.0, 2.0, 121) * float(longest)


def _slice_vols(market: Market, underlying: str, s, T: float, k) -> np.ndarray:
    return 100.0 * np.sqrt(slice_total_variance(market, underlying, s, k) / max(T, 1 / 365))


def smile_figure(market: Market, underlying: str, quotes: pd.DataFrame | None = None,
                 warnings=()) -> go.Figure:
    """Each live expiry's smile (line) with the imported marks (dots) and their bid–ask range
    (error bars) where the file has them; the k of each butterfly warning marked in red."""
    fig = go.Figure()
    k = _k_range(market, underlying, quotes)
    bad = {w.expiry: w for w in warnings if w.kind == "butterfly" and w.underlying == underlying}
    for j, (s, T) in enumerate(live_slices(market, underlying)):
        name = f"{s.expiry} ({T * 365:.0f} d, {s.form})"
        fig.add_scatter(x=k, y=_slice_vols(market, underlying, s, T, k), mode="lines", name=name,
                        line={"color": color(j), "width": 2}, legendgroup=name)
        if quotes is not None and len(quotes):
            q = quotes[quotes["expiry"] == s.expiry.isoformat()]
            if len(q):
                kq = np.log(q["strike"].to_numpy(float) / q["forward"].to_numpy(float))
                mark = 100 * q["mark_iv"].to_numpy(float)
                err = {}
                if {"bid_iv", "ask_iv"} <= set(q.columns):
                    hi = np.nan_to_num(100 * q["ask_iv"].to_numpy(float) - mark, nan=0.0).clip(0)
                    lo = np.nan_to_num(mark - 100 * q["bid_iv"].to_numpy(float), nan=0.0).clip(0)
                    err = {"error_y": {"type": "data", "array": hi, "arrayminus": lo, "thickness": 1, "width": 2}}
                fig.add_scatter(x=kq, y=mark, mode="markers", name=f"{s.expiry} marks", legendgroup=name,
                                showlegend=False, marker={"color": color(j), "size": 6, "opacity": 0.8}, **err)
        if s.expiry in bad:
            w = bad[s.expiry]
            fig.add_scatter(x=[w.k], y=_slice_vols(market, underlying, s, T, np.array([w.k])), mode="markers",
                            name=f"{s.expiry}: butterfly arbitrage", marker={"color": ALARM, "size": 12,
                                                                              "symbol": "x"})
    return styled(fig, f"{underlying} smiles: fitted vs marks", xaxis_title=K_TITLE, yaxis_title=VOL_TITLE)


def term_structure_figure(market: Market, underlying: str, warnings=()) -> go.Figure:
    """ATM vol (k = 0) per expiry against days to expiry; expiries in a calendar warning red."""
    slices = live_slices(market, underlying)
    days = [T * 365 for _, T in slices]
    atm = [float(_slice_vols(market, underlying, s, T, np.zeros(1))[0]) for s, T in slices]
    flagged = {w.later for w in warnings if w.kind == "calendar" and w.underlying == underlying}
    colors = [ALARM if s.expiry in flagged else color(0) for s, _ in slices]
    fig = go.Figure(go.Scatter(x=days, y=atm, mode="lines+markers", name="ATM vol",
                               text=[str(s.expiry) for s, _ in slices], marker={"color": colors, "size": 9},
                               hovertemplate="%{text}: %{y:.2f} %<extra></extra>"))
    return styled(fig, f"{underlying} ATM term structure", xaxis_title="Days to expiry", yaxis_title=VOL_TITLE,
                  height=360)


def forwards_figure(market: Market, underlying: str) -> go.Figure:
    """Forward per expiry (and futures marks) against spot, with the implied carry
    ln(F/S)/T in % p.a. on the right axis."""
    u = market.underlying(underlying)
    slices = live_slices(market, underlying)
    expiries = sorted({s.expiry for s, _ in slices} | {d for d, _ in u.futures if market.expiry_years(d) > 0})
    T = np.array([market.expiry_years(d) for d in expiries])
    F = np.asarray(market.forward(underlying, T), dtype=float) if len(T) else np.zeros(0)
    carry = 100 * np.log(F / u.spot) / T if len(T) else np.zeros(0)
    days = T * 365
    fig = go.Figure()
    fig.add_scatter(x=days, y=F, mode="lines+markers", name="Forward (USD)", text=[str(d) for d in expiries],
                    marker={"color": color(0)}, hovertemplate="%{text}: %{y:,.6g} USD<extra></extra>")
    fig.add_scatter(x=[0, float(days.max()) if len(days) else 1.0], y=[u.spot, u.spot], mode="lines",
                    name="Spot (USD)", line={"color": "#495057", "dash": "dot"})
    fig.add_scatter(x=days, y=carry, mode="markers", name="Implied carry (% p.a.)", yaxis="y2",
                    marker={"color": color(1), "symbol": "diamond", "size": 8},
                    hovertemplate="%{y:.2f} % p.a.<extra></extra>")
    return styled(fig, f"{underlying} forwards vs spot", xaxis_title="Days to expiry", yaxis_title="USD",
                  yaxis2={"title": "Implied carry (% p.a.)", "overlaying": "y", "side": "right", "showgrid": False},
                  height=360)


def surface_figure(market: Market, underlying: str, quotes: pd.DataFrame | None = None) -> go.Figure:
    """Implied vol (%) over k and days to expiry: the slices, interpolated in total variance
    between them as the pricer does."""
    slices = live_slices(market, underlying)
    fig = go.Figure()
    if slices:
        k = _k_range(market, underlying, quotes)[::3]
        T = np.linspace(slices[0][1], slices[-1][1], 30) if len(slices) > 1 else np.array([slices[0][1]] * 2)
        F = np.asarray(market.forward(underlying, T), dtype=float)
        K = F[:, None] * np.exp(k)[None, :]
        vol = 100 * np.asarray(market.vol(underlying, K, np.broadcast_to(T[:, None], K.shape),
                                          np.broadcast_to(F[:, None], K.shape)))
        fig.add_surface(x=k, y=T * 365, z=vol, colorscale="Viridis", colorbar={"title": "Vol (%)"},
                        hovertemplate="k %{x:.3f}<br>%{y:.0f} d<br>%{z:.2f} %<extra></extra>")
    return styled(fig, f"{underlying} implied vol surface", height=520,
                  scene={"xaxis": {"title": "k = ln(K/F)"}, "yaxis": {"title": "Days"}, "zaxis": {"title": "Vol (%)"}})
