"""Almgren–Chriss optimal execution schedule for a large close-out (docs/methodology.md §7).

Source: R. Almgren and N. Chriss, "Optimal execution of portfolio transactions", Journal of Risk
3(2), 2000 — the discrete-time model of their sections 2–3 (linear impact, arithmetic random walk).

Liquidate X shares (contracts) over [0, T] in N equal intervals of length τ = T/N, holding x_k at
t_k = kτ (x_0 = X, x_N = 0) and selling n_k = x_{k−1} − x_k in interval k. Parameters and units
(the time unit is whatever T is in — the paper's example uses days):

    X      shares (signed: a negative X is a buy programme; the model is symmetric)
    σ      price volatility, USD per share per √(time unit)
    η      temporary impact, USD per share per (share per time unit)
    γ      permanent impact, USD per share per share
    ε      fixed cost per share traded (half-spread + fee), USD per share, default 0
    λ      risk aversion, 1/USD (λ = 0: risk neutral → straight line, TWAP)

Optimal trajectory for the mean–variance objective E + λV:

    η̃ = η − γτ/2,   κ̃² = λσ²/η̃,   cosh(κτ) = 1 + κ̃²τ²/2,
    x_k = X · sinh(κ(T − t_k)) / sinh(κT)

Cost of a trajectory (implementation shortfall, USD) and its variance (USD²):

    E[x] = ½γX² + ε Σ|n_k| + (η̃/τ) Σ n_k²,      V[x] = σ² Σ_{k=1..N} τ x_k²

Inputs for closing one position (:func:`schedule_inputs`, time unit days), from the liquidation
cost model (:mod:`.costs`) at the market the position is closed at:

    σ = |Δ|·S·σ_ATM/√365        the contract's daily price volatility to first order (Δ its spot
                                delta per contract, σ_ATM the cost model's 30-day ATM vol)
    η = c/√(X/T)                the square-root impact c·√v (c USD per contract per √contract)
                                linearised at the average rate v = X/T, so that trading at that
                                rate costs what the cost model says: η·v = c·√v
    γ = 2·h/(0.1·ADV)           Almgren and Chriss's rule of thumb: trading 10 % of a day's
                                volume moves the price permanently by one bid–ask spread (2h)
    ε = h + fee                 half-spread h plus the fee, USD per contract

Numerics: κ is computed as (2/τ)·asinh(κ̃τ/2) — an exact rewrite of the cosh relation
(cosh(κτ) − 1 = 2 sinh²(κτ/2)) that keeps full precision as λ → 0; the sinh ratio is evaluated as
e^{a−b}·expm1(−2a)/expm1(−2b) so that large κT cannot overflow; κ = 0 (λ = 0) takes the linear
branch directly, never dividing by zero.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..instruments import Instrument, parse_instrument
from ..margin.core import Universe
from ..scenarios import instrument_arrays
from .costs import CostParams, cost_model, impact_vols

__all__ = [
    "ExecutionSchedule",
    "EfficientFrontier",
    "ScheduleInputs",
    "almgren_chriss_schedule",
    "efficient_frontier",
    "schedule_inputs",
]


@dataclass(frozen=True)
class ExecutionSchedule:
    """One Almgren–Chriss trajectory and its linear (TWAP, λ = 0) comparison.

    times: t_k = kτ, k = 0..N (time units of T). holdings: x_k, shares, x_0 = X, x_N = 0.
    trades: n_k = x_{k−1} − x_k, k = 1..N, shares sold in interval k. kappa: κ, 1/time unit;
    kappa_tilde: κ̃, 1/time unit; eta_tilde: η̃; tau: τ. expected_cost: E[x], USD;
    variance: V[x], USD². The ``linear_*`` fields are the same quantities for the straight line
    x_k = X(1 − k/N).
    """

    times: np.ndarray
    holdings: np.ndarray
    trades: np.ndarray
    kappa: float
    kappa_tilde: float
    eta_tilde: float
    tau: float
    lam: float
    expected_cost: float
    variance: float
    linear_holdings: np.ndarray
    linear_trades: np.ndarray
    linear_expected_cost: float
    linear_variance: float

    @property
    def std(self) -> float:
        """Standard deviation of the cost, USD."""
        return float(np.sqrt(self.variance))

    @property
    def linear_std(self) -> float:
        """Standard deviation of the linear trajectory's cost, USD."""
        return float(np.sqrt(self.linear_variance))

    @property
    def utility(self) -> float:
        """The minimised objective E + λV, USD."""
        return self.expected_cost + self.lam * self.variance


@dataclass(frozen=True)
class EfficientFrontier:
    """Optimal (E, V) pairs over a range of λ, sorted by increasing λ.

    lam: λ, 1/USD, shape (L,). kappa: κ, 1/time unit, (L,). expected_cost: E, USD, (L,).
    variance: V, USD², (L,). holdings: x_k per λ, shares, (L, N+1). times: t_k, (N+1,).
    Along the frontier E is non-decreasing and V non-increasing in λ.
    """

    lam: np.ndarray
    kappa: np.ndarray
    expected_cost: np.ndarray
    variance: np.ndarray
    holdings: np.ndarray
    times: np.ndarray

    @property
    def std(self) -> np.ndarray:
        """Standard deviation of the cost, USD, (L,)."""
        return np.sqrt(self.variance)


def _validate(X, sigma, eta, gamma, T, N) -> tuple[float, float]:
    """Check the scalar model inputs; return (τ, η̃)."""
    if not (isinstance(N, (int, np.integer)) and N >= 1):
        raise ValueError(f"N must be an integer >= 1, got {N!r}")
    for name, v in (("X", X), ("sigma", sigma), ("eta", eta), ("gamma", gamma), ("T", T)):
        if not np.isfinite(v):
            raise ValueError(f"{name} must be finite, got {v!r}")
    if T <= 0:
        raise ValueError(f"T must be > 0, got {T!r}")
    if sigma < 0 or gamma < 0:
        raise ValueError("sigma and gamma must be >= 0")
    tau = T / N
    eta_tilde = eta - 0.5 * gamma * tau
    # The model needs η̃ > 0 (the paper's condition on τ being small enough); otherwise the
    # quadratic cost is not convex and the "optimal" trajectory is meaningless.
    if eta_tilde <= 0:
        raise ValueError(f"eta - gamma*tau/2 must be > 0 (got {eta_tilde!r}); use a smaller T/N")
    return tau, eta_tilde


def _kappa(lams: np.ndarray, sigma: float, eta_tilde: float, tau: float):
    """κ̃ and κ for an array of λ, both 1/time unit."""
    kappa_tilde = np.sqrt(lams * sigma**2 / eta_tilde)
    # cosh(κτ) = 1 + κ̃²τ²/2  ⇔  sinh(κτ/2) = κ̃τ/2; asinh keeps precision for tiny κ̃.
    kappa = (2.0 / tau) * np.arcsinh(0.5 * kappa_tilde * tau)
    return kappa_tilde, kappa


def _holdings(X: float, kappa: np.ndarray, times: np.ndarray, T: float) -> np.ndarray:
    """x_k for each κ: shape (L, N+1). κ = 0 rows are the straight line."""
    k = kappa[:, None]
    pos = k > 0
    k_safe = np.where(pos, k, 1.0)  # placeholder for κ = 0 rows, replaced below
    a = k_safe * (T - times[None, :])
    b = k_safe * T
    # sinh(a)/sinh(b) = e^{a−b} (1 − e^{−2a}) / (1 − e^{−2b}) for a, b ≥ 0: no overflow.
    ratio = np.exp(a - b) * np.expm1(-2.0 * a) / np.expm1(-2.0 * b)
    linear = (T - times[None, :]) / T
    x = X * np.where(pos, ratio, linear)
    x[:, -1] = 0.0  # exact: sinh(0) = 0 and the line ends at 0
    x[:, 0] = X
    return x


def _cost_and_variance(x: np.ndarray, X, sigma, gamma, eta_tilde, tau, epsilon):
    """E[x] (USD) and V[x] (USD²) for trajectories x of shape (L, N+1)."""
    n = x[:, :-1] - x[:, 1:]
    E = 0.5 * gamma * X**2 + epsilon * np.abs(n).sum(axis=1) + (eta_tilde / tau) * (n**2).sum(axis=1)
    V = sigma**2 * tau * (x[:, 1:] ** 2).sum(axis=1)
    return E, V


def almgren_chriss_schedule(
    X: float,
    sigma: float,
    eta: float,
    gamma: float,
    T: float,
    N: int,
    lam: float,
    epsilon: float = 0.0,
) -> ExecutionSchedule:
    """Optimal discrete liquidation trajectory of X shares over T in N steps at risk aversion λ.

    Units as in the module docstring (σ USD/share/√time, η USD·time/share², γ USD/share², λ 1/USD,
    ε USD/share; time in the unit of T). Returns holdings x_k, trades n_k, κ, E[x] (USD), V[x]
    (USD²) and the same for the linear trajectory. λ = 0 gives the linear trajectory exactly.

    Paper example (X = 10⁶, σ = 0.95, η = 2.5e-6, γ = 2.5e-7, T = 5, N = 5, λ = 1e-6):

    >>> s = almgren_chriss_schedule(1e6, 0.95, 2.5e-6, 2.5e-7, 5.0, 5, 1e-6)
    >>> round(s.kappa, 3), [round(v) for v in s.holdings]
    (0.607, [1000000, 541956, 289854, 147897, 62142, 0])
    """
    if not (np.isfinite(lam) and lam >= 0):
        raise ValueError(f"lam must be finite and >= 0, got {lam!r}")
    if not (np.isfinite(epsilon) and epsilon >= 0):
        raise ValueError(f"epsilon must be finite and >= 0, got {epsilon!r}")
    tau, eta_tilde = _validate(X, sigma, eta, gamma, T, N)
    times = tau * np.arange(N + 1)
    lams = np.array([float(lam), 0.0])  # row 0: optimal, row 1: linear comparison
    kappa_tilde, kappa = _kappa(lams, sigma, eta_tilde, tau)
    x = _holdings(float(X), kappa, times, T)
    E, V = _cost_and_variance(x, X, sigma, gamma, eta_tilde, tau, epsilon)
    trades = x[:, :-1] - x[:, 1:]
    return ExecutionSchedule(
        times=times,
        holdings=x[0],
        trades=trades[0],
        kappa=float(kappa[0]),
        kappa_tilde=float(kappa_tilde[0]),
        eta_tilde=float(eta_tilde),
        tau=float(tau),
        lam=float(lam),
        expected_cost=float(E[0]),
        variance=float(V[0]),
        linear_holdings=x[1],
        linear_trades=trades[1],
        linear_expected_cost=float(E[1]),
        linear_variance=float(V[1]),
    )


def efficient_frontier(
    X: float,
    sigma: float,
    eta: float,
    gamma: float,
    T: float,
    N: int,
    lams=None,
    epsilon: float = 0.0,
) -> EfficientFrontier:
    """Optimal (E, V) over many risk aversions λ at once (vectorised over λ).

    ``lams``: array of λ ≥ 0 (1/USD); it is sorted ascending. Default: λ = 0 plus 60 values whose
    κT is log-spaced from 0.01 to 20 — a range that spans "nearly TWAP" to "sell almost all at
    once" whatever the scale of the problem (λ = κ̃²η̃/σ² with κ̃ = (2/τ)·sinh(κτ/2), the
    inverse of the κ relation). Other parameters as in ``almgren_chriss_schedule``.
    """
    if not (np.isfinite(epsilon) and epsilon >= 0):
        raise ValueError(f"epsilon must be finite and >= 0, got {epsilon!r}")
    tau, eta_tilde = _validate(X, sigma, eta, gamma, T, N)
    if lams is None:
        kT = np.concatenate([[0.0], np.logspace(-2.0, np.log10(20.0), 60)])
        kt = (2.0 / tau) * np.sinh(0.5 * (kT / T) * tau)
        lams = kt**2 * eta_tilde / sigma**2 if sigma > 0 else np.zeros(1)
    lams = np.sort(np.atleast_1d(np.asarray(lams, dtype=float)))
    if not np.all(np.isfinite(lams)) or np.any(lams < 0):
        raise ValueError("lams must be finite and >= 0")
    times = tau * np.arange(N + 1)
    _, kappa = _kappa(lams, sigma, eta_tilde, tau)
    x = _holdings(float(X), kappa, times, T)
    E, V = _cost_and_variance(x, X, sigma, gamma, eta_tilde, tau, epsilon)
    return EfficientFrontier(lam=lams, kappa=kappa, expected_cost=E, variance=V, holdings=x, times=times)


@dataclass(frozen=True)
class ScheduleInputs:
    """Almgren–Chriss inputs for closing one position (time unit: days; module docstring)."""

    instrument: str
    X: float  # contracts
    sigma: float  # USD per contract per √day
    eta: float  # USD per contract per (contract/day)
    gamma: float  # USD per contract per contract
    epsilon: float  # USD per contract


def schedule_inputs(instrument: Instrument | str, quantity: float, market, days: float,
                    cost_params: CostParams | None = None) -> ScheduleInputs:
    """σ, η, γ, ε (module docstring) for closing ``quantity`` contracts of ``instrument`` over
    ``days`` at ``market``, from the liquidation cost model with ``cost_params``.

    BTC perpetual at spot 95,000 USD: ε = 2 bp half-spread (19) + 0.5 % fee (475) per contract:

    >>> from engine.samples import demo_market
    >>> schedule_inputs("BTC-PERPETUAL", 100.0, demo_market(), 1.0).epsilon
    494.0
    """
    inst = instrument if isinstance(instrument, Instrument) else parse_instrument(instrument)
    X = abs(float(quantity))
    if not (np.isfinite(X) and X > 0 and np.isfinite(days) and days > 0):
        raise ValueError(f"need a non-zero quantity and days > 0 (got {quantity!r}, {days!r})")
    arr = instrument_arrays((inst,), market)
    uni = Universe(arr)
    atm = impact_vols(market, arr.underlyings)[arr.und_index]
    costs = cost_model(arr, uni.base, uni.spot_delta, atm, cost_params or CostParams())
    half_spread = float(costs.half_spread[0])
    return ScheduleInputs(inst.name, X,
                          sigma=abs(float(uni.spot_delta[0])) * float(arr.spot[0]) * float(atm[0]) / math.sqrt(365.0),
                          eta=float(costs.impact_coef[0]) / math.sqrt(X / days),
                          gamma=2.0 * half_spread / (0.1 * float(costs.adv[0])),
                          epsilon=half_spread + float(costs.fee[0]))
