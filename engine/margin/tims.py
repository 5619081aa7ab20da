"""OCC TIMS / FINRA Rule 4210(g) portfolio margin: worst loss over a price range (docs/methodology.md §6.4).

Source: docs/methodology.md §9 — Rule 4210(g) valuation points: the price range is divided into ten
equidistant points (five down, five up; ±15 % for equities: ±3, 6, 9, 12, 15 %; high-cap broad
index +6 %/−8 %, other broad index ±10 %), each position revalued at every point; the
requirement per underlying (class group) is the largest loss, but at least a minimum per option
contract of $0.375 × multiplier (long options: capped at their market value).  The minimum is
the figure docs/methodology.md §9 quotes; it has not been checked against the rule text here, so the UI should
not quote it as the rule's.

OCC's TIMS revalues at implied vol; this model adds a vol stress (our definition, docs/methodology.md §6.4):
every price point is evaluated with each option's vol shifted by ``vol_shocks`` (absolute vol points; default
−10 and +10 points, our choice).  Crypto contracts are 1 unit of underlying, so the per-contract
minimum is small: it matters for books of far out-of-the-money options.

    worst loss_u   = max(0, −min_{price, vol} P&L_u)
    requirement_u  = max(worst loss_u, Σ_options min_per_contract·multiplier·|q| (long: ≤ value))
    maintenance = requirement,  initial = initial_multiplier × requirement (1: Rule 4210 sets
    one portfolio margin requirement)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .core import GroupTerm, Kernel, ParamCheck, Universe, scenario_table, worst_loss
from .params import check_ranges, param


@dataclass(frozen=True)
class TimsParams:
    """Valuation range (fractions of spot), number of points, vol shocks and minimum."""

    down_range: float = param(0.15, unit="fraction of spot", lo=0.0, hi=0.99, lo_open=True,
                              description="the lowest valuation point (a fall of this much)")
    up_range: float = param(0.15, unit="fraction of spot", lo=0.0, hi=10.0, lo_open=True,
                            description="the highest valuation point")
    points: int = param(10, unit="count", lo=2, hi=100,
                        description="number of equidistant valuation points (even: half down, half up)")
    vol_shocks: tuple[float, ...] = param((-0.10, 0.10), unit="vol points as decimals (0.10 = +10 points)",
                                          lo=-2.0, hi=2.0, description="vol shifts applied at every price point")
    min_per_contract: float = param(0.375, unit="USD per option contract (× multiplier)", lo=0.0, hi=1e6,
                                    description="minimum per option; a long option's is capped at its value")
    initial_multiplier: float = param(1.0, unit="×", lo=1.0, hi=10.0,
                                      description="IM = multiplier × the requirement (MM)")

    def validate(self) -> None:
        c = ParamCheck("tims")
        check_ranges(self, c)
        c.require(isinstance(self.points, (int, np.integer)) and self.points % 2 == 0,
                  f"points must be an even integer from 2 to 100 (got {self.points!r})")
        c.require(len(self.vol_shocks) > 0, "vol_shocks is empty: give at least one (0 for none)")
        c.done()

    def spot_points(self) -> np.ndarray:
        """The equidistant valuation points: −down…−down/n, +up/n…+up (n = points/2)."""
        n = self.points // 2
        k = np.arange(1, n + 1) / n
        return np.concatenate([-self.down_range * k[::-1], self.up_range * k])


class TimsKernel(Kernel):
    """Linear features: P&L at every (price point, vol shock).  Group term: option minimum."""

    components = ("worst_loss", "option_minimum")

    def __init__(self, universe: Universe, params: TimsParams):
        self.params = params
        pts = params.spot_points()
        vols = np.asarray(params.vol_shocks, dtype=float)
        self.spots = np.repeat(pts, len(vols))
        self.vols = np.tile(vols, len(pts))
        self.labels = [f"spot {s * 100:+.4g}% vol {v * 100:+.4g} pts"
                       for s, v in zip(self.spots, self.vols, strict=True)]
        pnl = universe.scenario_pnl(self.spots, self.vols[:, None])
        opt = universe.is_option
        minimum = params.min_per_contract * universe.arrays.multiplier
        term = GroupTerm.per_instrument(universe, opt, np.minimum(minimum, universe.base), minimum)
        super().__init__(universe, pnl, (term,))

    def per_underlying(self, lin, grp, und):
        loss = worst_loss(lin)
        requirement = np.maximum(loss, grp[:, 0])
        return np.column_stack([self.params.initial_multiplier * requirement, requirement, loss, grp[:, 0]])

    def scenario_table(self, lin):
        return scenario_table(self.universe, self.labels, self.spots, np.sign(self.vols), self.vols,
                              np.ones(len(self.spots)), lin)


def prepare(universe: Universe, params: TimsParams) -> TimsKernel:
    return TimsKernel(universe, params)
