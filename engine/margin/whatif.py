"""What-if trades and margin-minimising hedges (docs/methodology.md §6).

``what_if``: IM and MM of the book before and after adding trades (USD), evaluated with one
prepared model on the union of instruments.

``optimal_hedge``: for each underlying, the quantity h of one linear hedge instrument (default the
underlying's perpetual; a dated future may be given instead) that minimises the model's IM of
book + h·hedge.  IM(h) is evaluated for many h at once (one-instrument variations of the book,
:func:`~engine.margin.core.evaluate_changes`): a grid of ``grid_points`` values over ±B, B = 1.5
× the underlying's gross USD delta in hedge contracts (at least 1 contract), then
``scipy.optimize.minimize_scalar`` (bounded) between the grid neighbours of the best point — the
grid guards against the several local minima a worst-of-scenarios requirement can have.
Underlyings are optimised one after another, each on the book already carrying the previous
hedges (exact for models margining underlyings separately; a coordinate pass for SIMM with
cross-underlying correlation).  Quantities are continuous contracts; a hedge that lowers IM by
less than $0.01 is reported as 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

from ..instruments import FUTURE, PERPETUAL, Instrument, parse_instrument
from ..market import Market
from ..portfolio import Book, Position
from ..scenarios import InstrumentArrays, net_quantities
from . import MarginModel, margin_model
from .core import evaluate, evaluate_changes, margin_book


@dataclass(frozen=True)
class WhatIf:
    """Requirements before and after the trades (USD)."""

    model: str
    initial_before: float
    initial_after: float
    maintenance_before: float
    maintenance_after: float

    @property
    def initial_change(self) -> float:
        return self.initial_after - self.initial_before

    @property
    def maintenance_change(self) -> float:
        return self.maintenance_after - self.maintenance_before


@dataclass(frozen=True)
class Hedge:
    """Hedge of one underlying: contracts of ``instrument`` and the book's total IM (USD) just
    before and after adding it."""

    underlying: str
    instrument: str
    quantity: float
    initial_before: float
    initial_after: float


@dataclass(frozen=True)
class HedgePlan:
    """Hedges per underlying, total IM before and after all of them, and the trades to add."""

    model: str
    hedges: tuple[Hedge, ...]
    initial_before: float
    initial_after: float
    trades: tuple[Position, ...]


def what_if(book: Book, market: Market, trade_positions, model: str | MarginModel = "risk_based", params=None, *,
            arrays: InstrumentArrays | None = None) -> WhatIf:
    """IM/MM of ``book`` before and after adding ``trade_positions`` (Positions or a Book).

    ``model``: a name with its ``params`` or a resolved MarginModel; ``arrays`` (e.g.
    ``Analysis.arrays``) is reused when it holds the book's and the trades' instruments."""
    trades = tuple(trade_positions.positions if isinstance(trade_positions, Book) else trade_positions)
    resolved = margin_model(model, params)
    mb = margin_book(book.plus(*trades), market, _covering(arrays, trades))
    kernel = resolved.prepare(mb.universe)
    n = len(book)
    before = evaluate(kernel, net_quantities(mb.position_instrument[:n], mb.quantity[:n], mb.universe.n_instruments))
    after = evaluate(kernel, mb.net)
    return WhatIf(resolved.name, float(before[0]), float(after[0]), float(before[1]), float(after[1]))


def _covering(arrays: InstrumentArrays | None, extra) -> InstrumentArrays | None:
    """``arrays`` when it also holds the instruments of the positions ``extra`` (a trade or a
    hedge may be new to the book), else None: then the arrays are built for the enlarged book."""
    if arrays is None:
        return None
    held = set(arrays.instruments)
    return arrays if all(p.instrument in held for p in extra) else None


def _hedge_instruments(book: Book, instruments) -> dict[str, Instrument]:
    if instruments is None:
        return {u: parse_instrument(f"{u}-PERPETUAL") for u in book.underlyings}
    out: dict[str, Instrument] = {}
    for item in instruments:
        inst = item if isinstance(item, Instrument) else parse_instrument(item)
        if inst.kind not in (FUTURE, PERPETUAL):
            raise ValueError(f"{inst.name}: a hedge must be a perpetual or a dated future")
        if inst.underlying not in book.underlyings:
            raise ValueError(f"{inst.name}: the book holds nothing on {inst.underlying}")
        if inst.underlying in out:
            raise ValueError(f"two hedge instruments given for {inst.underlying}: "
                             f"{out[inst.underlying].name}, {inst.name}")
        out[inst.underlying] = inst
    return out


def optimal_hedge(book: Book, market: Market, model: str | MarginModel = "risk_based", params=None, instruments=None, *,
                  grid_points: int = 41, arrays: InstrumentArrays | None = None) -> HedgePlan:
    """Per underlying, the hedge quantity minimising IM (module docstring)."""
    if grid_points < 3:
        raise ValueError("grid_points must be at least 3")
    resolved = margin_model(model, params)
    chosen = _hedge_instruments(book, instruments)
    mb = margin_book(book, market, _covering(arrays, [Position(i, 1.0) for i in chosen.values()]),
                     extra_instruments=tuple(chosen.values()))
    kernel = resolved.prepare(mb.universe)
    uni = mb.universe
    index = {inst: k for k, inst in enumerate(mb.arrays.instruments)}
    net = mb.net.copy()
    start = float(evaluate(kernel, net)[0])
    hedges, trades = [], []
    for und, inst in chosen.items():
        j = index[inst]
        same = mb.arrays.und_index == mb.arrays.und_index[j]
        gross = np.abs(net[same] * uni.spot_delta[same]).sum()
        bound = max(1.5 * gross / abs(uni.spot_delta[j]), 1.0)
        grid = np.union1d(np.linspace(-bound, bound, grid_points), [0.0])
        im_grid = evaluate_changes(kernel, net, np.full(len(grid), j), grid)[:, 0]
        k = int(im_grid.argmin())

        def im_of(h, j=j):
            return float(evaluate_changes(kernel, net, np.array([j]), np.array([h]))[0, 0])

        best_h, best_im = grid[k], im_grid[k]
        lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
        if hi > lo:
            res = minimize_scalar(im_of, bounds=(lo, hi), method="bounded", options={"xatol": 1e-6 * bound})
            if res.fun < best_im:
                best_h, best_im = float(res.x), float(res.fun)
        before = float(evaluate(kernel, net)[0])
        if best_im > before - 0.01:
            best_h, best_im = 0.0, before
        net[j] += best_h
        hedges.append(Hedge(und, inst.name, float(best_h), before, float(best_im)))
        if best_h:
            trades.append(Position(inst, float(best_h)))
    return HedgePlan(resolved.name, tuple(hedges), start, float(evaluate(kernel, net)[0]), tuple(trades))
