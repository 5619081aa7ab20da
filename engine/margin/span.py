"""CME SPAN: 16-scenario risk arrays, calendar spread charge, short option minimum (docs/methodology.md §6.3).

Source: CME SPAN methodology as summarised in docs/methodology.md §9 and McMillan, *Options as a Strategic
Investment*, ch. 34 (scan range $10,000: long call requirement $3,990, covered write $6,620 —
``tests/engine/test_margin_span.py`` checks :func:`scanning_risk` on those arrays).

Risk array, per underlying, R = price scan range (fraction of spot), V = vol scan range
(absolute vol points); every forward moves with spot; each option keeps its vol plus the shock:

    1–2    price 0,          vol +V, −V
    3–14   price +⅓, −⅓, +⅔, −⅔, +1, −1 of R, each with vol +V then −V
    15–16  price ±(extreme_multiple·R), vol 0, loss counted at extreme_cover (35 %)

    scanning risk   = max(0, −min_s Σ_i q_i·w_s·P&L_i,s)
    spread charge   = spread_charge_rate · min(Σ_e Δ$_e⁺, Σ_e Δ$_e⁻)
    requirement     = max(scanning risk + spread charge, short option minimum)
    maintenance     = requirement,  initial = initial_multiplier × requirement

Intra-commodity (calendar) spread charge: SPAN's scan treats all expiries of an underlying as
perfectly correlated, so a spread between expiries looks riskless; the charge counts the
delta (USD at spot, options at their delta) that offsets across expiry tiers — Δ$_e net per
expiry, perpetuals and spot in the T = 0 tier — and charges a rate on it, as SPAN charges per
spread formed between tiers.  Short option minimum: short_option_minimum × spot × multiplier
per net short option contract.  Net option value (Σ q·V over options, long +, short −) is shown
beside the requirement (``details``), not deducted.

Defaults: the 16-scenario structure, the 35 % cover and the ×2 extreme move (McMillan's array)
are SPAN's published design; CME publishes scan ranges, spread rates and minimums per product
in its daily risk-parameter files — the defaults here (15 % price, 10 vol points, 1 % spread
rate, 1 % short option minimum, initial 110 % of maintenance) are illustrative for BTC/ETH.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .core import GroupTerm, Kernel, ParamCheck, Universe, scenario_table, worst_loss
from .params import check_ranges, param

_PRICE_THIRDS = (0, 0, 1, 1, -1, -1, 2, 2, -2, -2, 3, 3, -3, -3)
_VOL_SIGN = (1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 0, 0)


@dataclass(frozen=True)
class SpanParams:
    """Scan ranges and charges (see the module docstring for units)."""

    price_scan_range: float = param(0.15, unit="fraction of spot", lo=0.0, hi=0.9, lo_open=True,
                                    description="the price scan range R")
    vol_scan_range: float = param(0.10, unit="vol points as a decimal (0.10 = 10 points)", lo=0.0, hi=2.0,
                                  description="the vol scan range V")
    extreme_multiple: float = param(2.0, unit="× R", lo=1.0, hi=10.0,
                                    description="the price move of the two extreme scenarios")
    extreme_cover: float = param(0.35, unit="fraction", lo=0.0, hi=1.0, lo_open=True,
                                 description="share of the extreme scenarios' loss that counts (SPAN: 35 %)")
    spread_charge_rate: float = param(0.01, unit="fraction of USD delta", lo=0.0, hi=1.0,
                                      description="charge on the delta that offsets between expiries")
    short_option_minimum: float = param(0.01, unit="fraction of spot", lo=0.0, hi=1.0,
                                        description="minimum per net short option contract")
    initial_multiplier: float = param(1.1, unit="×", lo=1.0, hi=10.0,
                                      description="IM = multiplier × the requirement (MM)")

    def validate(self) -> None:
        c = ParamCheck("span")
        check_ranges(self, c)
        if not c.problems:  # the cross-field rule compares numbers
            c.require(self.extreme_multiple * self.price_scan_range < 1.0,
                      "extreme_multiple × price_scan_range must be below 1 (a −100 % move has no price)")
        c.done()


def span_scenarios(params: SpanParams):
    """(spot shocks, vol shocks, weights, labels) of the 16 SPAN scenarios, in SPAN order."""
    R, V, X = params.price_scan_range, params.vol_scan_range, params.extreme_multiple
    price = np.array([t / 3.0 for t in _PRICE_THIRDS] + [X, -X])
    vol_sign = np.array(_VOL_SIGN, dtype=float)
    weights = np.array([1.0] * 14 + [params.extreme_cover] * 2)
    frac = {0: "0", 1: "+1/3", -1: "-1/3", 2: "+2/3", -2: "-2/3", 3: "+1", -3: "-1"}
    labels = [f"{k + 1}: price {frac[t]} range, vol {'up' if s > 0 else 'down'}"
              for k, (t, s) in enumerate(zip(_PRICE_THIRDS, _VOL_SIGN[:14], strict=True))]
    labels += [f"15: price +{X:g} ranges ×{params.extreme_cover:g}",
               f"16: price -{X:g} ranges ×{params.extreme_cover:g}"]
    return price * R, vol_sign * V, weights, labels


def scanning_risk(risk_arrays, quantities=None) -> float:
    """Scanning risk (USD ≥ 0) of SPAN risk arrays: the worst scenario of their sum.

    ``risk_arrays``: (16,) or (positions, 16) P&L per position in SPAN order, gain positive,
    the extreme scenarios already at their cover fraction (as published arrays are);
    ``quantities``: optional multiplier per row (−1 for a short).
    """
    a = np.atleast_2d(np.asarray(risk_arrays, dtype=float))
    q = np.ones(len(a)) if quantities is None else np.asarray(quantities, dtype=float)
    return float(worst_loss(q @ a))


class SpanKernel(Kernel):
    """Linear features: weighted risk array (16), delta USD by expiry tier (E), option value (1).
    Group term: short option minimum per option contract."""

    components = ("scanning_risk", "calendar_spread_charge", "short_option_minimum", "net_option_value")
    info = ("net_option_value",)

    def __init__(self, universe: Universe, params: SpanParams):
        self.params = params
        self.spots, self.vols, self.weights, self.labels = span_scenarios(params)
        pnl = universe.scenario_pnl(self.spots, self.vols[:, None])
        opt = universe.is_option
        E = universe.n_buckets
        self.sl_tiers = slice(16, 16 + E)
        linear = np.hstack([pnl * self.weights, universe.by_bucket(universe.spot_delta * universe.arrays.spot),
                            np.where(opt, universe.base, 0.0)[:, None]])
        som = params.short_option_minimum * universe.notional
        super().__init__(universe, linear, (GroupTerm.per_instrument(universe, opt, 0.0, som),))

    def per_underlying(self, lin, grp, und):
        p = self.params
        scan = worst_loss(lin[:, :16])
        tiers = lin[:, self.sl_tiers]
        offset = np.minimum(np.maximum(tiers, 0.0).sum(axis=1), np.maximum(-tiers, 0.0).sum(axis=1))
        spread = p.spread_charge_rate * offset
        som = grp[:, 0]
        requirement = np.maximum(scan + spread, som)
        return np.column_stack([p.initial_multiplier * requirement, requirement, scan, spread, som, lin[:, -1]])

    def scenario_table(self, lin):
        return scenario_table(self.universe, self.labels, self.spots, np.sign(self.vols), self.vols,
                              self.weights, lin[:, :16])


def prepare(universe: Universe, params: SpanParams) -> SpanKernel:
    return SpanKernel(universe, params)
