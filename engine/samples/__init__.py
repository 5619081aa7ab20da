"""Demo market and books (data files beside this module) and a reproducible book generator.

The demo market is an illustrative snapshot shaped like a Deribit BTC/ETH surface, not market
data.  Each demo book is a CSV in ``books/`` so that users can download, edit and re-upload it.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np

from ..listing import listed_instruments
from ..market import Market, load_market
from ..portfolio import Book, Position, PositionsImport, read_positions


@dataclass(frozen=True)
class DemoBook:
    key: str
    title: str
    description: str


DEMO_BOOKS = {b.key: b for b in (
    DemoBook("desk_book", "Desk book (~200 positions)",
             "Mixed BTC/ETH options, futures and perps across all expiries: a realistic desk."),
    DemoBook("naked_short_strangle", "Naked short strangle",
             "Short OTM call and put: collects premium, unlimited loss on a large move either way."),
    DemoBook("short_iron_condor", "Short iron condor (hedged strangle)",
             "The same short strangle with long wings bought: loss is capped, so a portfolio "
             "margin model needs far less margin than for the naked strangle."),
    DemoBook("delta_hedged_long_straddle", "Delta-hedged long straddle",
             "Long ATM call and put with a perp hedge: long gamma and vega, flat delta."),
    DemoBook("covered_call", "Covered call",
             "Long BTC spot, short an OTM call against it: the call's upside risk is covered."),
    DemoBook("risk_reversal", "Risk reversal",
             "Long OTM call, short OTM put, partly delta-hedged with a short perp."),
    DemoBook("calendar_spread", "Calendar spreads with futures and a perp",
             "Short front-month, long back-month options on BTC and ETH plus a future/perp basis trade."),
)}
DEFAULT_BOOK = "desk_book"


def _data(name: str):
    return resources.files(__package__).joinpath(name)


def demo_market() -> Market:
    with _data("market.json").open("r", encoding="utf-8") as f:
        return load_market(f)


def demo_book(key: str = DEFAULT_BOOK) -> Book:
    if key not in DEMO_BOOKS:
        raise KeyError(f"unknown demo book {key!r}; choose one of {', '.join(DEMO_BOOKS)}")
    with _data(f"books/{key}.csv").open("rb") as f:
        result: PositionsImport = read_positions(f)
    if result.errors:  # shipped data must be clean; fail loudly if it is not
        raise ValueError(f"demo book {key}: {'; '.join(map(str, result.errors))}")
    return Book(result.book.positions, DEMO_BOOKS[key].title)


def random_book(n: int, seed: int = 0, market: Market | None = None, name: str = "") -> Book:
    """A reproducible book of ``n`` positions drawn from :func:`listed_instruments`:
    ~80 % options (more weight near the money), the rest futures and perps; quantities in
    contracts, sized so each position is worth roughly 0.5–20 BTC of notional."""
    market = market or demo_market()
    rng = np.random.default_rng(seed)
    listing = listed_instruments(market)
    options = [i for i in listing if i.kind == "option"]
    linear = [i for i in listing if i.kind != "option"]
    spot = {u: m.spot for u, m in market.underlyings.items()}
    strikes = np.array([i.strike for i in options], dtype=float)
    moneyness = np.abs(np.log(strikes / np.array([spot[i.underlying] for i in options])))
    p_opt = np.exp(-moneyness / 0.15)
    p_opt /= p_opt.sum()
    positions = []
    n_opt = int(round(n * 0.8))
    picks = list(rng.choice(len(options), size=n_opt, p=p_opt)) + \
        list(rng.integers(0, len(linear), size=n - n_opt) + len(options))
    for idx in picks:
        inst = options[idx] if idx < len(options) else linear[idx - len(options)]
        usd = rng.lognormal(np.log(200_000), 1.0)
        qty = float(np.round(usd / spot[inst.underlying], 1) or 0.1)
        qty *= rng.choice((-1.0, 1.0))
        entry = None if inst.kind == "option" else float(round(spot[inst.underlying] * (1 + rng.normal(0, 0.03)), 1))
        positions.append(Position(inst, qty, entry))
    return Book(tuple(positions), name or f"random {n} (seed {seed})")

