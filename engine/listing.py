"""An exchange-like instrument listing generated from a market snapshot (docs/methodology.md §2).

The exchange-wide queue and the random books draw their instruments from it, and the dashboard
suggests its names: per underlying, the perpetual and, for every smile expiry still ahead, the
dated future and calls and puts on strikes spaced about 5 % of spot around the forward.
"""
from __future__ import annotations

import numpy as np

from .instruments import Instrument, future_name, option_name, parse_instrument
from .market import Market


def listed_instruments(market: Market, strikes_per_expiry: int = 21) -> list[Instrument]:
    """A Deribit-like listing: per underlying and smile expiry, a future and calls/puts on
    strikes spaced ~5 % of spot around the forward, plus the perpetual."""
    out = []
    for und, u in market.underlyings.items():
        out.append(parse_instrument(f"{und}-PERPETUAL"))
        step = _round_step(u.spot * 0.05)
        for s in u.smile:
            T = market.expiry_years(s.expiry)
            if T <= 0:
                continue
            out.append(parse_instrument(future_name(und, s.expiry)))
            centre = round(u.spot * np.exp(u.carry * T) / step) * step
            half = strikes_per_expiry // 2
            for k in range(-half, half + 1):
                strike = centre + k * step
                if strike > 0:
                    out += [parse_instrument(option_name(und, s.expiry, strike, c)) for c in (True, False)]
    return out


def _round_step(x: float) -> float:
    """Nice strike step: 1, 2 or 5 times a power of ten, near x."""
    p = 10 ** np.floor(np.log10(x))
    return float(min((1, 2, 5, 10), key=lambda m: abs(m * p - x)) * p)
