"""Smile slices in total variance: raw SVI, strike points, fitting and static-arbitrage checks (docs/market.md).

Raw SVI (Gatheral 2004; Gatheral & Jacquier 2014, "Arbitrage-free SVI volatility surfaces",
Quantitative Finance 14(1), §3.1): the total implied variance w = σ_BS²·T of one expiry at
log-moneyness k = ln(K/F) is

    w(k) = a + b·(ρ(k − m) + √((k − m)² + σ²)),   b ≥ 0, |ρ| < 1, σ > 0, a + bσ√(1−ρ²) ≥ 0.

Strike points: (strike, vol) pairs, the variance σ² interpolated linearly in k between points
(at one expiry that is linear in total variance) and held flat beyond the outermost points.

Static arbitrage (Gatheral & Jacquier 2014, §2): a slice is free of butterfly arbitrage iff its
risk-neutral density is non-negative, i.e.

    g(k) = (1 − k·w'/(2w))² − (w'²/4)·(1/w + 1/4) + w''/2 ≥ 0;

a surface is free of calendar arbitrage iff w(k, T) is non-decreasing in T at every fixed k.
The checks report where they fail; nothing is altered.

Fit: :func:`fit_svi` solves weighted least squares in total variance with the bounds above and
Roger Lee's wing bound b(1 + |ρ|) ≤ 2; if the unconstrained optimum has g < 0 inside the quoted
range it is refitted with a penalty on negative g there (so a slice is arbitrage-free wherever
the quotes allow it).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
from scipy.optimize import least_squares

#: Points of the k grid on which g(k) and the calendar condition are checked.
CHECK_POINTS = 161
#: Tolerance below zero before a check reports (numerical noise of a flat wing).
ARBITRAGE_TOL = 1e-9
_PENALTY = 100.0
#: The penalised fit aims slightly above g = 0 so the density stays ≥ 0 between grid points.
_G_MARGIN = 1e-3


class SmileError(ValueError):
    """Inputs a smile cannot be built or fitted from; the message names the field."""


@dataclass(frozen=True)
class SVI:
    """Raw SVI parameters of one expiry (total variance, k = ln(K/F)).

    Gatheral & Jacquier (2014) Example 3.1 (a slice with butterfly arbitrage): a = −0.0410,
    b = 0.1331, ρ = 0.3060, m = 0.3586, σ = 0.4153; by hand w(0) = a + b(−ρm + √(m² + σ²))
    = −0.0410 + 0.1331·(−0.10973 + 0.54869) = 0.017426:

    >>> round(float(SVI(-0.0410, 0.1331, 0.3060, 0.3586, 0.4153).total_variance(0.0)), 6)
    0.017426
    """

    a: float
    b: float
    rho: float
    m: float
    sigma: float

    def as_array(self) -> np.ndarray:
        return np.array([self.a, self.b, self.rho, self.m, self.sigma])

    def total_variance(self, k):
        return svi_total_variance(self.as_array(), k)

    def vol(self, k, T: float):
        """Implied vol √(w(k)/T) (decimal p.a.) for an expiry T years away."""
        return np.sqrt(np.maximum(self.total_variance(k), 0.0) / T)

    def min_variance(self) -> float:
        """min_k w(k) = a + bσ√(1 − ρ²)."""
        return self.a + self.b * self.sigma * np.sqrt(max(1.0 - self.rho * self.rho, 0.0))

    def problems(self) -> list[str]:
        """Violated parameter constraints, as ``field: reason`` texts (empty when valid)."""
        out = []
        if not self.b >= 0:
            out.append(f"b: must be ≥ 0 (got {self.b:g})")
        if not abs(self.rho) < 1:
            out.append(f"rho: must be in (−1, 1) (got {self.rho:g})")
        if not self.sigma > 0:
            out.append(f"sigma: must be > 0 (got {self.sigma:g})")
        if not out and self.min_variance() < 0:
            out.append(f"a: total variance a + bσ√(1−ρ²) = {self.min_variance():.3g} is negative")
        return out


def svi_total_variance(p, k):
    """w(k) for parameter rows ``p`` = (a, b, ρ, m, σ) broadcast against k."""
    a, b, rho, m, sigma = p
    d = k - m
    return a + b * (rho * d + np.sqrt(d * d + sigma * sigma))


def svi_derivatives(p, k):
    """(w, w', w'') of raw SVI at k."""
    a, b, rho, m, sigma = p
    d = k - m
    r = np.sqrt(d * d + sigma * sigma)
    return a + b * (rho * d + r), b * (rho + d / r), b * sigma * sigma / (r * r * r)


def density_g(k, w, w1, w2):
    """Gatheral–Jacquier g(k) from total variance and its first two k-derivatives (w > 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (1.0 - k * w1 / (2.0 * w)) ** 2 - 0.25 * w1 * w1 * (1.0 / w + 0.25) + 0.5 * w2


def points_variance(k, k_nodes, var_nodes):
    """σ² at k from strike points: linear in k between nodes, flat beyond (np.interp's ends)."""
    return np.interp(k, k_nodes, var_nodes)


# ----------------------------------------------------------------------------- fit


@dataclass(frozen=True)
class SVIFit:
    """A fitted slice and its quality: errors in vol (decimal) over the quotes used."""

    params: SVI
    rmse_vol: float
    max_error_vol: float
    quotes: int
    butterfly_free: bool


def _quotes(strikes, vols, forward, T, weights):
    K = np.asarray(strikes, dtype=float).ravel()
    v = np.asarray(vols, dtype=float).ravel()
    if K.shape != v.shape:
        raise SmileError(f"strikes and vols differ in length ({len(K)} vs {len(v)})")
    wts = np.ones_like(K) if weights is None else np.broadcast_to(np.asarray(weights, dtype=float), K.shape)
    if not (np.isfinite(forward) and forward > 0):
        raise SmileError(f"forward: must be > 0 (got {forward!r})")
    if not (np.isfinite(T) and T > 0):
        raise SmileError(f"T: must be > 0 years (got {T!r})")
    ok = np.isfinite(K) & np.isfinite(v) & (K > 0) & (v > 0) & np.isfinite(wts) & (wts > 0)
    if ok.sum() < 5:
        raise SmileError(f"vols: SVI has 5 parameters and needs ≥ 5 valid quotes (got {int(ok.sum())})")
    return np.log(K[ok] / forward), v[ok] * v[ok] * T, np.sqrt(wts[ok])


def _initial_guess(k, w):
    """Wing slopes from the outer quotes, vertex at the lowest quote."""
    order = np.argsort(k)
    k, w = k[order], w[order]
    j = int(np.argmin(w))
    span = max(k[-1] - k[0], 1e-3)
    s_left = (w[0] - w[j]) / (k[0] - k[j]) if j > 0 else -0.1 * w[j] / span
    s_right = (w[-1] - w[j]) / (k[-1] - k[j]) if j < len(k) - 1 else 0.1 * w[j] / span
    b = max((s_right - s_left) / 2.0, 1e-4)
    rho = float(np.clip((s_right + s_left) / (s_right - s_left + 1e-12), -0.9, 0.9))
    sigma = max(0.1 * span, 0.02)
    a = w[j] - b * sigma * np.sqrt(1.0 - rho * rho)
    return np.array([a, b, rho, k[j], sigma])


def fit_svi(strikes, vols, forward: float, T: float, weights=None) -> SVIFit:
    """Fit raw SVI to one expiry's quotes.

    strikes (USD) and vols (decimal p.a.) are arrays; forward in USD; T in years; weights
    (optional, e.g. vegas) multiply the squared total-variance errors.  Raises SmileError when
    fewer than 5 usable quotes remain.
    """
    k, w, sw = _quotes(strikes, vols, forward, T, weights)
    w_max = float(w.max())
    k_lo, k_hi = float(k.min()), float(k.max())
    span = max(k_hi - k_lo, 1e-3)
    lower = np.array([-w_max, 0.0, -0.999, k_lo - span, 1e-4])
    upper = np.array([w_max, 4.0, 0.999, k_hi + span, 4.0 * span + 1.0])
    scale = max(float(np.mean(w)), 1e-8)

    def resid(p):
        return sw * (svi_total_variance(p, k) - w) / scale

    def jac(p):
        _, b, rho, m, sigma = p
        d = k - m
        r = np.sqrt(d * d + sigma * sigma)
        cols = np.stack([np.ones_like(k), rho * d + r, b * d, -b * (rho + d / r), b * sigma / r], axis=1)
        return cols * (sw / scale)[:, None]

    # Unconstrained Levenberg–Marquardt (MINPACK) on u = (a, ln b, atanh ρ, m, ln σ): b > 0,
    # |ρ| < 1 and σ > 0 hold by construction, and it is several times faster than a bounded solver.
    x0 = np.clip(_initial_guess(k, w), lower + 1e-9, upper - 1e-9)
    u0 = np.array([x0[0], np.log(max(x0[1], 1e-4)), np.arctanh(np.clip(x0[2], -0.95, 0.95)), x0[3],
                   np.log(max(x0[4], 1e-3))])
    u = least_squares(lambda u: resid(_from_u(u)), u0, jac=lambda u: jac(_from_u(u)) * _du(u), method="lm",
                      x_scale="jac", ftol=1e-12, xtol=1e-12, gtol=1e-12, max_nfev=400).x
    p = np.clip(_from_u(u), lower, upper)
    grid = np.linspace(k_lo, k_hi, 121)
    penalty = _PENALTY
    while not _slice_ok(p, grid) and penalty <= 1e4 * _PENALTY:
        p = least_squares(_penalised(resid, grid, penalty), p, bounds=(lower, upper), method="trf",
                          x_scale="jac", max_nfev=600).x
        penalty *= 10.0
    params = SVI(*(float(x) for x in p))
    fitted = np.sqrt(np.maximum(svi_total_variance(p, k), 0.0) / T)
    err = fitted - np.sqrt(w / T)
    return SVIFit(params, float(np.sqrt(np.mean(err * err))), float(np.abs(err).max()), len(k),
                  _slice_ok(p, grid))


def _from_u(u):
    """(a, b, ρ, m, σ) from u; the exponents are capped so a wild trial step cannot overflow."""
    return np.array([u[0], np.exp(min(u[1], 5.0)), np.tanh(u[2]), u[3], np.exp(min(u[4], 5.0))])


def _du(u):
    """dp/du of :func:`_from_u`, as a row scaling the Jacobian's columns."""
    return np.array([1.0, np.exp(min(u[1], 5.0)), 1.0 - np.tanh(u[2]) ** 2, 1.0, np.exp(min(u[4], 5.0))])


def _penalised(resid, grid, penalty: float):
    """Residuals plus penalty terms for g < 0 on ``grid``, the Lee wing bound and w < 0."""
    def f(q):
        w, w1, w2 = svi_derivatives(q, grid)
        g = density_g(grid, np.maximum(w, 1e-12), w1, w2)
        wing = max(q[1] * (1.0 + abs(q[2])) - 2.0, 0.0)
        floor = min(q[0] + q[1] * q[4] * np.sqrt(1.0 - q[2] ** 2), 0.0)
        return np.concatenate([resid(q), penalty * np.minimum(g - _G_MARGIN, 0.0), [penalty * wing, penalty * floor]])

    return f


def _slice_ok(p, grid) -> bool:
    w, w1, w2 = svi_derivatives(p, grid)
    return bool(w.min() > 0 and density_g(grid, w, w1, w2).min() >= -ARBITRAGE_TOL
                and p[1] * (1.0 + abs(p[2])) <= 2.0 + 1e-12)


# ----------------------------------------------------------------------------- arbitrage checks


@dataclass(frozen=True)
class ArbitrageWarning:
    """One static-arbitrage failure: ``kind`` "butterfly" (g(k) < 0 at one expiry) or
    "calendar" (w falls from ``expiry`` to ``later``); ``k`` where it is worst, ``value`` the
    most negative g or total-variance drop there, ``k_from``/``k_to`` the failing range."""

    underlying: str
    kind: str
    expiry: date
    k: float
    value: float
    k_from: float
    k_to: float
    later: date | None = None

    def __str__(self) -> str:
        if self.kind == "butterfly":
            return (f"{self.underlying} {self.expiry}: butterfly arbitrage, density g(k) < 0 at k = {self.k:.3f} "
                    f"(g = {self.value:.4f}; failing points between k = {self.k_from:.3f} and {self.k_to:.3f})")
        return (f"{self.underlying} {self.expiry} → {self.later}: calendar arbitrage, total variance falls by "
                f"{-self.value:.5f} at k = {self.k:.3f} (failing points between k = {self.k_from:.3f} "
                f"and {self.k_to:.3f})")


def butterfly_check(underlying: str, expiry: date, k, w, w1, w2) -> ArbitrageWarning | None:
    """A warning where g(k) < 0 on the grid ``k`` (w and derivatives given), else None."""
    g = density_g(k, w, w1, w2)
    bad = ~(g >= -ARBITRAGE_TOL) | ~(w > 0)
    if not bad.any():
        return None
    g_bad = np.where(np.isfinite(g), g, -np.inf)
    j = int(np.argmin(np.where(bad, g_bad, np.inf)))
    where = k[bad]
    return ArbitrageWarning(underlying, "butterfly", expiry, float(k[j]), float(g_bad[j]),
                            float(where.min()), float(where.max()))


def calendar_check(underlying: str, expiry: date, later: date, k, w_near, w_far) -> ArbitrageWarning | None:
    """A warning where the later expiry's total variance is below the nearer one's at equal k."""
    drop = w_far - w_near
    bad = drop < -ARBITRAGE_TOL * np.maximum(1.0, np.abs(w_near))
    if not bad.any():
        return None
    j = int(np.argmin(np.where(bad, drop, np.inf)))
    where = k[bad]
    return ArbitrageWarning(underlying, "calendar", expiry, float(k[j]), float(drop[j]),
                            float(where.min()), float(where.max()), later)


def numeric_derivatives(k, w):
    """(w', w'') by central differences on a uniform grid (one-sided at the ends)."""
    h = k[1] - k[0]
    w1 = np.gradient(w, h)
    w2 = np.gradient(w1, h)
    return w1, w2
