"""Deribit standard margin: per instrument, no netting between instruments (docs/methodology.md §6.1).

Source: Deribit "Standard margin" (linear/USDC options and futures), as summarised in docs/methodology.md §6.
Per unit of underlying, S the index (spot) price, ``mark`` the option's value:

    short option   IM = max(0.15 − OTM/S, 0.10)·S + mark      MM = 0.075·S + mark
                   OTM = max(K − S, 0) for a call, max(S − K, 0) for a put
    long option    none beyond the premium paid (0)
    future / perp  IM = 2 % and MM = 1 % of the notional at its mark (the forward for a future)

Deribit's futures rates grow with position size; the flat 2 %/1 % is the base tier.  Positions in
the same instrument are netted first (Deribit margins the net position).  Spot holdings carry no
requirement when long and the futures rates when short.  The requirement is Σ over instruments of
up·q⁺ + down·q⁻ per contract, so attribution is exact and additive.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .core import FUTURE_CODE, PERPETUAL_CODE, GroupTerm, Kernel, ParamCheck, Universe
from .params import check_ranges, param


@dataclass(frozen=True)
class StandardParams:
    """Deribit standard-margin rates (fractions of the underlying price or notional)."""

    option_im_rate: float = param(0.15, unit="fraction of spot", lo=0.0, hi=10.0,
                                  description="short option IM = max(rate − OTM ÷ spot, floor) × spot + mark")
    option_im_floor: float = param(0.10, unit="fraction of spot", lo=0.0, hi=10.0,
                                   description="the least a short option's IM charges besides its mark")
    option_mm_rate: float = param(0.075, unit="fraction of spot", lo=0.0, hi=10.0,
                                  description="short option MM = rate × spot + mark")
    future_im_rate: float = param(0.02, unit="fraction of notional", lo=0.0, hi=10.0,
                                  description="IM of a future or perp")
    future_mm_rate: float = param(0.01, unit="fraction of notional", lo=0.0, hi=10.0,
                                  description="MM of a future or perp")

    def validate(self) -> None:
        c = ParamCheck("standard")
        check_ranges(self, c)
        if not c.problems:  # the cross-field rules compare numbers
            c.require(self.option_mm_rate <= self.option_im_floor,
                      "option_mm_rate must not exceed option_im_floor (IM ≥ MM)")
            c.require(self.future_mm_rate <= self.future_im_rate, "future_mm_rate must not exceed future_im_rate")
        c.done()


class StandardKernel(Kernel):
    components = ("short_options", "futures_perps")

    def __init__(self, universe: Universe, params: StandardParams):
        arr = universe.arrays
        S, mult, value = arr.spot, arr.multiplier, universe.base
        opt = universe.is_option
        otm = np.where(arr.is_call, np.maximum(arr.strike - S, 0.0), np.maximum(S - arr.strike, 0.0))
        short_im = np.maximum(params.option_im_rate - otm / S, params.option_im_floor) * S * mult + value
        short_mm = params.option_mm_rate * S * mult + value
        dated = (arr.kind == FUTURE_CODE) | (arr.kind == PERPETUAL_CODE)
        linear = ~opt
        long_linear = np.where(dated, 1.0, 0.0)  # long spot is an asset, not a margined position
        im_rate, mm_rate = params.future_im_rate * value, params.future_mm_rate * value
        groups = (
            GroupTerm.per_instrument(universe, opt, 0.0, np.where(opt, short_im, 0.0)),
            GroupTerm.per_instrument(universe, linear, long_linear * im_rate, im_rate),
            GroupTerm.per_instrument(universe, opt, 0.0, np.where(opt, short_mm, 0.0)),
            GroupTerm.per_instrument(universe, linear, long_linear * mm_rate, mm_rate),
        )
        super().__init__(universe, np.zeros((universe.n_instruments, 0)), groups)

    def per_underlying(self, lin, grp, und):
        return np.column_stack([grp[:, 0] + grp[:, 1], grp[:, 2] + grp[:, 3], grp[:, 0], grp[:, 1]])


def prepare(universe: Universe, params: StandardParams) -> StandardKernel:
    return StandardKernel(universe, params)
