"""Black-76 pricing and Greeks on the forward (docs/methodology.md §4).

    d1 = [ln(F/K) + σ²T/2] / (σ√T),   d2 = d1 − σ√T
    call = e^{−rT} [F·N(d1) − K·N(d2)],   put = e^{−rT} [K·N(−d2) − F·N(−d1)]

Units: F, K in USD per unit of underlying; T in years (ACT/365); σ decimal per annum; r decimal per
annum (continuous).  All functions broadcast their arguments with numpy; ``is_call`` is boolean.

Expired or degenerate inputs (T ≤ 0 or σ·√T = 0) value at discounted intrinsic; their Greeks are 0
except delta, which is 0 or ±1 by moneyness (at the money counts as out of the money).

``N`` is ``scipy.special.ndtr`` — the same function ``scipy.stats.norm.cdf`` calls, without its
per-call argument checking, which dominates on the million-element stress grids.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


def _pdf(x):
    return _INV_SQRT_2PI * np.exp(-0.5 * x * x)


@dataclass(frozen=True)
class Greeks:
    """Raw Black-76 sensitivities per unit of underlying (the display layer rescales).

    delta = ∂V/∂F, gamma = ∂²V/∂F², vega = ∂V/∂σ (per 1.00 of vol), theta = ∂V/∂t (per year,
    calendar, F held fixed; negative for a long option), rho = ∂V/∂r, vanna = ∂²V/∂F∂σ,
    volga = ∂²V/∂σ², charm = ∂delta/∂t (per year).
    """

    price: np.ndarray
    delta: np.ndarray
    gamma: np.ndarray
    vega: np.ndarray
    theta: np.ndarray
    rho: np.ndarray
    vanna: np.ndarray
    volga: np.ndarray
    charm: np.ndarray


def _prepare(F, K, T, sigma, r, is_call):
    F, K, T, sigma, r = (np.asarray(a, dtype=float) for a in (F, K, T, sigma, r))
    is_call = np.asarray(is_call, dtype=bool)
    F, K, T, sigma, r, is_call = np.broadcast_arrays(F, K, T, sigma, r, is_call)
    Tp = np.maximum(T, 0.0)
    sig_sqrt_t = np.maximum(sigma, 0.0) * np.sqrt(Tp)
    live = sig_sqrt_t > 0.0
    # Dummy 1.0 where dead keeps the formulas finite; those cells are overwritten below.
    s = np.where(live, sig_sqrt_t, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = np.where(live, (np.log(F / K) + 0.5 * s * s) / s, 0.0)
    d2 = d1 - s
    df = np.exp(-r * Tp)
    sign = np.where(is_call, 1.0, -1.0)
    return F, K, Tp, sigma, r, sign, live, s, d1, d2, df


def black76_price(F, K, T, sigma, r, is_call):
    """Black-76 option value in USD per unit of underlying.

    Reference (Hull, *Options, Futures and Other Derivatives*, Black's model example):
    F = 20, K = 20, T = 4/12, σ = 0.25, r = 0.09 → put 1.1166.

    >>> round(float(black76_price(20.0, 20.0, 4 / 12, 0.25, 0.09, False)), 4)
    1.1166
    >>> float(black76_price(110.0, 100.0, 0.0, 0.5, 0.0, True))  # expired: intrinsic
    10.0
    """
    # Broadcast lazily: only terms involving σ take the full scenario shape, and puts come by
    # parity (P = C − D·(F − K)), so each cell costs two normal CDFs and a few multiplies.  The
    # full-shape arrays are this function's own, so they are updated in place: on stress grids
    # the time goes into passes over memory, not into arithmetic.
    F, K, T, sigma, r = (np.asarray(a, dtype=float) for a in (F, K, T, sigma, r))
    Tp = np.maximum(T, 0.0)
    s = np.maximum(sigma, 0.0) * np.sqrt(Tp)
    live = s > 0.0
    all_live = bool(live.all())
    if not all_live:
        s = np.where(live, s, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = np.divide(np.log(F / K), s, out=np.empty(np.broadcast_shapes(F.shape, K.shape, s.shape)))
    d1 += 0.5 * s
    d2 = np.subtract(d1, s, out=np.empty_like(d1))
    value = ndtr(d1, out=d1)
    value *= F
    n2 = ndtr(d2, out=d2)
    n2 *= K
    value -= n2
    forward_minus_strike = F - K
    if not all_live:
        value = np.where(live, value, np.maximum(forward_minus_strike, 0.0))
    # Not in place: is_call may broadcast the result to a larger shape than the other inputs.
    value = value - np.where(is_call, 0.0, forward_minus_strike)
    if not np.any(r):
        return value
    discount = np.exp(-r * Tp)
    if np.broadcast_shapes(value.shape, discount.shape) != value.shape:
        return value * discount
    value *= discount
    return value


def black76_greeks(F, K, T, sigma, r, is_call) -> Greeks:
    """All Black-76 Greeks in raw units (see :class:`Greeks`).

    Formulas (discount factor D = e^{−rT}, n = standard normal density, ± for call/put):
      delta = ±D·N(±d1);  gamma = D·n(d1)/(Fσ√T);  vega = D·F·n(d1)·√T;
      theta = rV − D·F·n(d1)·σ/(2√T);  rho = −T·V;  vanna = −D·n(d1)·d2/σ;
      volga = vega·d1·d2/σ;  charm = ∂delta/∂t = r·delta + D·n(d1)·d2/(2T)  (F fixed).

    Reference: F = K = 100, T = 1, σ = 0.2, r = 0 → call delta = N(0.1) = 0.5398,
    vega = 100·n(0.1) = 39.695.

    >>> g = black76_greeks(100.0, 100.0, 1.0, 0.2, 0.0, True)
    >>> round(float(g.delta), 4), round(float(g.vega), 3)
    (0.5398, 39.695)
    """
    F, K, Tp, sigma, r, sign, live, s, d1, d2, df = _prepare(F, K, T, sigma, r, is_call)
    nd1 = _pdf(d1)
    price_live = sign * (F * ndtr(sign * d1) - K * ndtr(sign * d2))
    intrinsic = np.maximum(sign * (F - K), 0.0)
    price = df * np.where(live, price_live, intrinsic)

    sig = np.where(live, sigma, 1.0)
    sqrt_t = np.where(live, np.sqrt(Tp), 1.0)
    t_safe = np.where(live, Tp, 1.0)
    zero = np.zeros_like(price)

    delta_live = sign * df * ndtr(sign * d1)
    itm = sign * (F - K) > 0.0
    delta = np.where(live, delta_live, np.where(itm, sign * df, 0.0))
    gamma = np.where(live, df * nd1 / (F * s), zero)
    vega = np.where(live, df * F * nd1 * sqrt_t, zero)
    theta = np.where(live, r * price - df * F * nd1 * sig / (2.0 * sqrt_t), r * price)
    rho = -Tp * price
    vanna = np.where(live, -df * nd1 * d2 / sig, zero)
    volga = np.where(live, vega * d1 * d2 / sig, zero)
    charm = np.where(live, r * delta + df * nd1 * d2 / (2.0 * t_safe), zero)
    return Greeks(price, delta, gamma, vega, theta, rho, vanna, volga, charm)
