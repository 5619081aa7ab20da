"""Execution cost of closing (or opening) a chunk of one instrument during a liquidation (docs/methodology.md §7).

Per contract traded, in USD:

    cost = half_spread + impact + fee
    impact = k · σ_daily · S · √(|chunk| / ADV) · w        (square-root law)
    fee    = rate · S · multiplier            (options: capped at the option's mark)

σ_daily = σ/√365 with σ the underlying's ATM vol of the nearest smile slice; ADV is the average
daily volume in contracts (derived from a USD figure per kind); ``w`` is 1 for linear
instruments and max(|Δ|, 0.1) for options — a dealer who takes the option prices the impact of
its delta hedge, with a floor for the vega and inventory risk of far out-of-the-money options.

Defaults (all editable per instrument): half-spread 2 bp of price for futures, perps and spot;
for options max(3 % of mark, 1 bp of spot) — liquidation happens in stressed, wide markets.
k = 1.0 (the square-root law's constant is of order one in the empirical literature).
ADV: perp $1.5 bn, dated future $200 m, option $20 m, spot $1 bn a day.  Fee rates are
Deribit-like liquidation fees from docs/methodology.md §7: futures/perps 0.5 %, options 0.2 % of the
underlying notional capped at the mark, spot 0.1 %.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ..scenarios import KIND_CODES, InstrumentArrays

_KINDS = ("option", "future", "perpetual", "spot")


@dataclass(frozen=True)
class CostParams:
    """Execution-cost parameters by instrument kind; ``overrides`` maps an instrument name to a
    dict with any of half_spread (USD per contract), k, adv (contracts/day), fee_rate."""

    spread_bps_linear: float = 2.0
    option_spread_of_mark: float = 0.03
    option_spread_min_bps: float = 1.0
    impact_k: float = 1.0
    adv_usd: dict = field(default_factory=lambda: {
        "option": 20e6, "future": 200e6, "perpetual": 1.5e9, "spot": 1e9})
    fee_rate: dict = field(default_factory=lambda: {
        "option": 0.002, "future": 0.005, "perpetual": 0.005, "spot": 0.001})
    overrides: dict = field(default_factory=dict)

    def validate(self) -> CostParams:
        bad = []
        if self.spread_bps_linear < 0 or self.option_spread_of_mark < 0 or self.option_spread_min_bps < 0:
            bad.append("spreads must be ≥ 0")
        if not 0 <= self.impact_k <= 10:
            bad.append("impact k must be between 0 and 10")
        if any(v <= 0 for v in self.adv_usd.values()):
            bad.append("ADV must be > 0")
        if any(not 0 <= v < 0.1 for v in self.fee_rate.values()):
            bad.append("fee rates must be in [0, 10 %)")
        if bad:
            raise ValueError("; ".join(bad))
        return self

    def with_override(self, instrument: str, **values) -> CostParams:
        merged = dict(self.overrides)
        merged[instrument] = {**merged.get(instrument, {}), **values}
        return replace(self, overrides=merged)


@dataclass(frozen=True)
class CostModel:
    """Per-instrument cost coefficients (arrays aligned with an InstrumentArrays)."""

    half_spread: np.ndarray   # USD per contract
    impact_coef: np.ndarray   # USD per contract per √contract: impact = coef·√|chunk|
    fee: np.ndarray           # USD per contract
    adv: np.ndarray           # contracts per day

    def trade_cost(self, index, quantity) -> np.ndarray:
        """USD cost of trading ``quantity[j]`` contracts (either sign) of instrument ``index[j]``."""
        size = np.abs(quantity)
        return size * (self.half_spread[index] + self.impact_coef[index] * np.sqrt(size) + self.fee[index])

    def frame(self, names) -> pd.DataFrame:
        return pd.DataFrame({"instrument": names, "half_spread": self.half_spread,
                             "impact_1_contract": self.impact_coef, "fee": self.fee, "adv": self.adv})


def impact_vols(market, underlyings) -> np.ndarray:
    """The σ of the square-root impact law for each underlying: its ATM vol at 30 days
    (decimal p.a.), read off the smile at the 30-day forward."""
    T = 30.0 / 365.0
    return np.array([float(np.ravel(market.vol(u, market.forward(u, T), T))[0]) for u in underlyings])


def cost_model(arr: InstrumentArrays, marks: np.ndarray, deltas: np.ndarray, atm_vols: np.ndarray,
               params: CostParams = CostParams()) -> CostModel:
    """Cost coefficients for each instrument of ``arr``.

    marks: USD per contract; deltas: spot delta per contract (units of underlying);
    atm_vols: the underlying's ATM vol for each instrument (decimal p.a.).
    """
    params.validate()
    kind_names = np.array(_KINDS, dtype=object)[arr.kind]
    S, m = arr.spot, arr.multiplier
    is_opt = arr.kind == KIND_CODES["option"]
    half_spread = np.where(is_opt,
                           np.maximum(params.option_spread_of_mark * np.abs(marks),
                                      params.option_spread_min_bps * 1e-4 * S * m),
                           params.spread_bps_linear * 1e-4 * np.abs(marks))
    adv = np.array([params.adv_usd[k] for k in kind_names]) / (S * m)
    weight = np.where(is_opt, np.maximum(np.abs(deltas) / m, 0.1), 1.0)
    sigma_daily = atm_vols / np.sqrt(365.0)
    k = np.full(len(arr), params.impact_k)
    fee_rate = np.array([params.fee_rate[k_] for k_ in kind_names])
    for name, o in params.overrides.items():  # a handful of instruments the user edited
        i = np.flatnonzero(arr.names == name)
        half_spread[i] = o.get("half_spread", half_spread[i])
        k[i] = o.get("k", k[i])
        adv[i] = o.get("adv", adv[i])
        fee_rate[i] = o.get("fee_rate", fee_rate[i])
    impact_coef = k * sigma_daily * S * m * weight / np.sqrt(adv)
    fee = fee_rate * S * m
    fee = np.where(is_opt, np.minimum(fee, np.abs(marks)), fee)
    return CostModel(half_spread, impact_coef, fee, adv)
