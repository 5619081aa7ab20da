"""SIMM-style sensitivity margin: delta + vega + curvature (docs/methodology.md §6.5, §9).

Source: ISDA SIMM methodology (aggregation formulas as given in docs/methodology.md §9), equity risk class.
Crypto has no SIMM bucket: each underlying is its own bucket, risk factors inside a bucket are
the expiries (perpetuals and spot at T = 0), and the parameters default to SIMM's equity values:
delta risk weight 33 % (equity residual bucket, 10-day horizon, docs/methodology.md §9); vega risk weight
0.45 and historical volatility ratio 0.60 (SIMM v2.6 equity, non-index buckets); correlation 1
between the expiries of one underlying (SIMM has one equity spot factor per underlying and sums
vega over vol tenors); 0 between underlyings (SIMM's residual bucket does not diversify against
other buckets, and residual names have zero correlation with each other).  All are editable.

Sensitivities per contract (USD): delta s = Δ·S (spot delta × spot; SIMM's "1 % move × 100");
vega VR = HVR·∂V/∂σ·σ_SIMM and curvature CVR = −SF(t)·∂V/∂σ·σ_SIMM, with
σ_SIMM = RW_delta·√(365/14)/Φ⁻¹(0.99) (SIMM's equity vol convention) and
SF(t) = 0.5·min(1, 14 days / t).  CVR's sign: SIMM's formula charges positive CVR at
Φ⁻¹(0.995)² and all-negative CVR at 0, i.e. positive CVR is a short-gamma exposure; the margin a
holder posts covers its own short options, so CVR is minus SIMM's collector-side value.

    WS_k = RW·s_k;  K_b = √(Σ_k WS_k² + Σ_{k≠l} ρ·WS_k·WS_l);  S_b = max(min(Σ_k WS_k, K_b), −K_b)
    Delta (and vega) margin = √(Σ_b K_b² + Σ_{b≠c} γ·S_b·S_c)
    Curvature: K_b, S_b as above on CVR with ρ²;  θ = min(ΣCVR / Σ|CVR|, 0);
    λ = (Φ⁻¹(0.995)² − 1)(1 + θ) − θ;  margin = max(ΣCVR + λ·√(Σ_b K_b² + Σ_{b≠c} γ²·S_b·S_c), 0)
    IM = delta + vega + curvature margin;  MM = mm_ratio × IM (SIMM defines IM only)

Check (docs/methodology.md §9): one CVR of +100 → 100 + 5.634896601·100 = 663.49; one of −100 → 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from .core import Kernel, ParamCheck, Universe
from .params import check_ranges, param

#: Φ⁻¹(0.995)² = 6.634896601021214 (docs/methodology.md §9).
PHI_995_SQ = float(norm.ppf(0.995) ** 2)
PHI_99 = float(norm.ppf(0.99))


@dataclass(frozen=True)
class SimmParams:
    """Risk weights, correlations and the curvature scaling horizon (module docstring)."""

    delta_risk_weight: float = param(0.33, unit="fraction", lo=0.0, hi=10.0,
                                     description="delta risk weight (SIMM equity residual, 10-day: 0.33)")
    vega_risk_weight: float = param(0.45, unit="fraction", lo=0.0, hi=10.0,
                                    description="vega risk weight (SIMM equity: 0.45)")
    historical_volatility_ratio: float = param(0.60, unit="ratio", lo=0.0, hi=10.0,
                                               description="SIMM HVR scaling the vega charge (0.60)")
    delta_correlation: float = param(1.0, unit="correlation", lo=-1.0, hi=1.0,
                                     description="between expiries of one underlying, delta")
    vega_correlation: float = param(1.0, unit="correlation", lo=-1.0, hi=1.0,
                                    description="between expiries of one underlying, vega (squared for curvature)")
    cross_bucket_correlation: float = param(0.0, unit="correlation", lo=-1.0, hi=1.0,
                                            description="between underlyings")
    curvature_days: float = param(14.0, unit="days", lo=0.0, hi=3650.0, lo_open=True,
                                  description="curvature scaling SF(t) = 0.5 × min(1, days ÷ t)")
    mm_ratio: float = param(1.0, unit="fraction of IM", lo=0.0, hi=1.0,
                            description="MM = ratio × IM (SIMM defines IM only)")

    def validate(self) -> None:
        c = ParamCheck("greeks_based")
        check_ranges(self, c)
        c.done()

    @property
    def simm_vol(self) -> float:
        """σ_SIMM = RW·√(365/14)/Φ⁻¹(0.99)."""
        return self.delta_risk_weight * np.sqrt(365.0 / 14.0) / PHI_99


def bucket_k(sum_sq, total, rho):
    """K_b = √((1 − ρ)·Σ WS² + ρ·(Σ WS)²) (uniform ρ between factors) and S_b = clip(Σ WS, ±K_b)."""
    K = np.sqrt(np.maximum((1.0 - rho) * sum_sq + rho * total * total, 0.0))
    return K, np.clip(total, -K, K)


def across_buckets(K, S, gamma):
    """√(Σ_b K_b² + γ·Σ_{b≠c} S_b·S_c) over the last axis (uniform γ)."""
    s = S.sum(axis=-1)
    return np.sqrt(np.maximum((K * K).sum(axis=-1) + gamma * (s * s - (S * S).sum(axis=-1)), 0.0))


def curvature_from_buckets(sum_cvr, sum_abs, K, S, gamma):
    """Curvature margin from per-bucket ΣCVR, Σ|CVR|, K_b, S_b (arrays, buckets on the last axis)."""
    total, total_abs = sum_cvr.sum(axis=-1), sum_abs.sum(axis=-1)
    theta = np.minimum(np.divide(total, total_abs, out=np.zeros_like(total), where=total_abs > 0), 0.0)
    lam = (PHI_995_SQ - 1.0) * (1.0 + theta) - theta
    return np.maximum(total + lam * across_buckets(K, S, gamma * gamma), 0.0)


def _bucket_sums(values, bucket):
    values = np.asarray(values, dtype=float)
    bucket = np.zeros(len(values), dtype=int) if bucket is None else np.unique(bucket, return_inverse=True)[1].ravel()
    n = bucket.max() + 1 if len(bucket) else 0
    return (np.bincount(bucket, values, n), np.bincount(bucket, values * values, n),
            np.bincount(bucket, np.abs(values), n))


def delta_margin(weighted_sensitivities, bucket=None, rho: float = 1.0, gamma: float = 0.0) -> float:
    """SIMM delta (or vega) margin of weighted sensitivities WS_k; ``bucket`` labels each factor
    (default: one bucket); ρ between factors of a bucket, γ between buckets."""
    total, sum_sq, _ = _bucket_sums(weighted_sensitivities, bucket)
    K, S = bucket_k(sum_sq, total, rho)
    return float(across_buckets(K, S, gamma))


def curvature_margin(cvr, bucket=None, rho: float = 1.0, gamma: float = 0.0) -> float:
    """SIMM curvature margin of curvature exposures CVR_k (ρ and γ are squared inside)."""
    total, sum_sq, sum_abs = _bucket_sums(cvr, bucket)
    K, S = bucket_k(sum_sq, total, rho * rho)
    return float(curvature_from_buckets(total, sum_abs, K, S, gamma))


class SimmKernel(Kernel):
    """Linear features: delta WS, vega WS and CVR by expiry (3 × E columns)."""

    components = ("delta_margin", "vega_margin", "curvature_margin")
    additive = False

    def __init__(self, universe: Universe, params: SimmParams):
        self.params = params
        arr = universe.arrays
        sigma = params.simm_vol
        t_days = np.maximum(arr.T, 0.0) * 365.0
        sf = 0.5 * np.minimum(1.0, params.curvature_days / np.maximum(t_days, 1e-9))
        self.E = universe.n_buckets
        linear = np.hstack([
            universe.by_bucket(params.delta_risk_weight * universe.spot_delta * arr.spot),
            universe.by_bucket(params.vega_risk_weight * params.historical_volatility_ratio * universe.vega * sigma),
            universe.by_bucket(-sf * universe.vega * sigma),
        ])
        super().__init__(universe, linear, ())

    def per_underlying(self, lin, grp, und):
        p, E = self.params, self.E
        ws_d, ws_v, cvr = lin[:, :E], lin[:, E:2 * E], lin[:, 2 * E:]
        K_d, S_d = bucket_k((ws_d * ws_d).sum(axis=1), ws_d.sum(axis=1), p.delta_correlation)
        K_v, S_v = bucket_k((ws_v * ws_v).sum(axis=1), ws_v.sum(axis=1), p.vega_correlation)
        total = cvr.sum(axis=1)
        K_c, S_c = bucket_k((cvr * cvr).sum(axis=1), total, p.vega_correlation ** 2)
        return np.column_stack([K_d, S_d, K_v, S_v, K_c, S_c, total, np.abs(cvr).sum(axis=1)])

    def combine(self, comp):
        p = self.params
        K_d, S_d, K_v, S_v, K_c, S_c, total, total_abs = np.moveaxis(comp, -1, 0)
        delta = across_buckets(K_d, S_d, p.cross_bucket_correlation)
        vega = across_buckets(K_v, S_v, p.cross_bucket_correlation)
        curvature = curvature_from_buckets(total, total_abs, K_c, S_c, p.cross_bucket_correlation)
        im = delta + vega + curvature
        return np.column_stack([im, p.mm_ratio * im, delta, vega, curvature])


def prepare(universe: Universe, params: SimmParams) -> SimmKernel:
    return SimmKernel(universe, params)
