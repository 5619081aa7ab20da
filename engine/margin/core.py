"""Shared machinery of the margin models (docs/methodology.md §6): the book as arrays, and requirement
evaluation for one book, for many one-instrument variations of it, or for many accounts.

A model is prepared once on a set of instruments (a :class:`Universe`) as a :class:`Kernel`.  Its
requirement depends on the net contracts q per instrument only through per-underlying aggregates:

* linear aggregates   a_u = Σ_{i∈u} q_i·L[i, :]      (scenario P&L, deltas by expiry, vegas …)
* group aggregates    g_u = Σ_{γ∈u} up_γ·x_γ⁺ + down_γ·x_γ⁻,   x_γ = Σ_{i∈γ} q_i·c_i
  (piecewise-linear terms: per-contract charges on long or short quantity, naked shorts netted
  per strike, gross delta …; x⁺ = max(x, 0), x⁻ = max(−x, 0))

``Kernel.per_underlying`` maps one underlying's aggregates to component columns and
``Kernel.combine`` maps a (books × underlyings × components) array to requirements.  Because the
aggregates are linear or group-separable in q, one kernel evaluates

* a book                                     :func:`evaluate`
* k one-instrument variations of a book       :func:`evaluate_changes` — "the book without
  position p" (instrument i(p), change −q_p) or "the book plus h of a hedge".  A variation moves
  one instrument j by c, so only its underlying's aggregates change, a_u + c·L[j] and one group's
  x_γ + c·c_j: a (k × features) array operation, not a re-run per variation.
* many accounts on a shared instrument universe, from a scipy.sparse (accounts × instruments)
  quantity matrix                             :func:`evaluate_accounts`

All figures are USD; quantities are contracts; spot shocks are fractions of spot.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields, replace
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import sparse

from ..instruments import FUTURE, OPTION, PERPETUAL, SPOT
from ..market import STICKY_STRIKE, VOL_FLOOR, Market
from ..portfolio import Book
from ..pricing import black76_greeks
from ..scenarios import (
    DAYS_PER_YEAR,
    KIND_CODES,
    InstrumentArrays,
    instrument_arrays,
    instrument_values,
    net_quantities,
    revaluation_pool,
)

SECONDS_PER_YEAR = DAYS_PER_YEAR * 86400.0
OPTION_CODE, FUTURE_CODE = KIND_CODES[OPTION], KIND_CODES[FUTURE]
PERPETUAL_CODE, SPOT_CODE = KIND_CODES[PERPETUAL], KIND_CODES[SPOT]


# ----------------------------------------------------------------------------- instruments


@dataclass(frozen=True)
class Universe:
    """Instruments vectorised against one snapshot, with what every margin model needs.

    Per instrument (per contract, USD unless stated): ``base`` value at the snapshot,
    ``fwd_delta`` ∂V/∂F in units of underlying (futures, perps and spot: the multiplier),
    ``spot_delta`` = fwd_delta·∂F/∂S, ``vega`` ∂V/∂σ per 1.00 of vol, ``vol`` the option's smile
    vol (NaN for linear instruments), ``bucket`` its expiry bucket (perpetuals and spot share the
    T = 0 bucket; ``bucket_T`` years per bucket).  Per underlying: ``und_spot``.  ``copies``: the
    number of copies of one instrument set side by side (:meth:`stacked`).
    """

    arrays: InstrumentArrays
    copies: int = 1

    @property
    def n_instruments(self) -> int:
        return len(self.arrays)

    @property
    def n_underlyings(self) -> int:
        return len(self.arrays.underlyings)

    @cached_property
    def base(self) -> np.ndarray:
        return instrument_values(self.arrays)

    @cached_property
    def und_spot(self) -> np.ndarray:
        out = np.zeros(self.n_underlyings)
        out[self.arrays.und_index] = self.arrays.spot
        return out

    @cached_property
    def is_option(self) -> np.ndarray:
        return self.arrays.kind == OPTION_CODE

    @cached_property
    def notional(self) -> np.ndarray:
        """Underlying notional of one contract at spot (USD)."""
        return self.arrays.spot * self.arrays.multiplier

    @cached_property
    def _expiry(self):
        arr = self.arrays
        n = len(arr) // self.copies  # the copies of a stack share their expiries: one copy's suffice
        dated = (arr.kind[:n] == OPTION_CODE) | (arr.kind[:n] == FUTURE_CODE)
        seconds = np.round(np.where(dated, np.maximum(arr.T[:n], 0.0), 0.0) * SECONDS_PER_YEAR)
        keys, bucket = np.unique(seconds, return_inverse=True)
        return np.tile(bucket.astype(int), self.copies), keys / SECONDS_PER_YEAR

    @property
    def bucket(self) -> np.ndarray:
        return self._expiry[0]

    @property
    def bucket_T(self) -> np.ndarray:  # noqa: N802 — T, time to expiry, as in the formulas
        return self._expiry[1]

    @property
    def n_buckets(self) -> int:
        return len(self.bucket_T)

    @cached_property
    def _greeks(self):
        arr = self.arrays
        n = len(arr)
        fwd_delta, vega, vol = arr.multiplier.copy(), np.zeros(n), np.full(n, np.nan)
        o = arr.option_index
        growth = np.exp(arr.carry * np.maximum(arr.T, 0.0))
        if len(o):
            sigma = np.maximum(arr.base_vol(), VOL_FLOOR)
            g = black76_greeks(arr.forward()[o], arr.strike[o], arr.T[o], sigma, arr.rate, arr.is_call[o])
            fwd_delta[o] = g.delta * arr.multiplier[o]
            vega[o] = g.vega * arr.multiplier[o]
            vol[o] = sigma
        linear_spot = (arr.kind == PERPETUAL_CODE) | (arr.kind == SPOT_CODE)
        return fwd_delta, np.where(linear_spot, fwd_delta, fwd_delta * growth), vega, vol

    @property
    def fwd_delta(self) -> np.ndarray:
        return self._greeks[0]

    @property
    def spot_delta(self) -> np.ndarray:
        return self._greeks[1]

    @property
    def vega(self) -> np.ndarray:
        return self._greeks[2]

    @property
    def vol(self) -> np.ndarray:
        return self._greeks[3]

    @cached_property
    def strike_arrays(self) -> InstrumentArrays:
        """The arrays with sticky-strike smile dynamics (each option keeps its current vol)."""
        return replace(self.arrays, sticky=STICKY_STRIKE)

    def scenario_pnl(self, spot_shocks, vol_shocks=0.0) -> np.ndarray:
        """P&L per contract (USD), shape (instruments, scenarios), of instantaneous scenarios.

        ``spot_shocks`` (S,) fractions applied to every underlying (the forward moves with spot);
        ``vol_shocks`` absolute vol points added to each option's current vol, a scalar or
        (S, 1) or (S, instruments).  Margin scenarios are sticky-strike, as exchanges revalue
        their risk arrays: the shock moves the price and the vol level, not the smile.
        """
        s = np.asarray(spot_shocks, dtype=float)[:, None]
        return (instrument_values(self.strike_arrays, s, vol_shocks) - self.base).T

    def by_bucket(self, values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """(instruments, buckets) matrix with ``values`` in each instrument's expiry column."""
        out = np.zeros((self.n_instruments, self.n_buckets))
        rows = np.arange(self.n_instruments) if mask is None else np.flatnonzero(mask)
        out[rows, self.bucket[rows]] = np.asarray(values, dtype=float)[rows]
        return out

    def shocked(self, spot_shock: float) -> Universe:
        """The same instruments with every spot moved by ``spot_shock`` (fraction); the smile
        keeps its moneyness parametrisation, so it moves with the forward (sticky moneyness)."""
        return Universe(replace(self.arrays, spot=self.arrays.spot * (1.0 + spot_shock)), self.copies)

    def stacked(self, spot_shocks) -> Universe:
        """K copies of these instruments side by side, copy k with every spot moved by
        ``spot_shocks[k]`` as in :meth:`shocked`.  Each copy's underlyings are underlyings of
        their own (indices ``k·U + u``, names repeated), so a kernel prepared once on the stack
        evaluates the book at K moved snapshots: its per-underlying rows reshaped to (K, U, C)
        are each copy's own (:func:`evaluate_stacked`)."""
        shocks = np.asarray(spot_shocks, dtype=float)
        if self.copies != 1:
            raise ValueError("a stacked universe is not stacked again")
        arr, k = self.arrays, len(shocks)
        n, n_opt = len(arr), len(arr.option_index)

        def tile(a):
            return np.tile(a, (1,) * (a.ndim - 1) + (k,))

        smile = replace(arr.smile, **{f.name: tile(getattr(arr.smile, f.name)) for f in fields(arr.smile)
                                      if isinstance(getattr(arr.smile, f.name), np.ndarray) and n_opt
                                      and getattr(arr.smile, f.name).shape[-1] == n_opt})
        return Universe(replace(
            arr, instruments=arr.instruments * k, underlyings=arr.underlyings * k,
            und_index=(arr.und_index[None, :] + len(arr.underlyings) * np.arange(k)[:, None]).ravel(),
            kind=tile(arr.kind), spot=(arr.spot[None, :] * (1.0 + shocks[:, None])).ravel(), carry=tile(arr.carry),
            strike=tile(arr.strike), is_call=tile(arr.is_call), T=tile(arr.T), multiplier=tile(arr.multiplier),
            option_index=(arr.option_index[None, :] + n * np.arange(k)[:, None]).ravel(), smile=smile,
            option_rate=None if arr.option_rate is None else tile(arr.option_rate)), k)


@dataclass(frozen=True)
class MarginBook:
    """A book on a :class:`Universe`: instrument index, signed contracts and entry price
    (USD per contract, NaN when not given) of every position."""

    universe: Universe
    position_instrument: np.ndarray
    quantity: np.ndarray
    entry_price: np.ndarray

    def __len__(self) -> int:
        return len(self.quantity)

    @property
    def arrays(self) -> InstrumentArrays:
        return self.universe.arrays

    @cached_property
    def net(self) -> np.ndarray:
        """Net contracts per instrument."""
        return net_quantities(self.position_instrument, self.quantity, self.universe.n_instruments)


def margin_book(book: Book, market: Market, arrays: InstrumentArrays | None = None,
                extra_instruments=()) -> MarginBook:
    """Vectorise ``book`` (plus ``extra_instruments`` held at zero, e.g. candidate hedges).

    ``arrays`` (e.g. ``Analysis.arrays``) is reused when given; it must contain every instrument
    of the book and of ``extra_instruments``.
    """
    wanted = tuple(dict.fromkeys(book.instruments + tuple(extra_instruments)))
    if arrays is None:
        arrays = instrument_arrays(wanted, market)
    index = {inst: k for k, inst in enumerate(arrays.instruments)}
    missing = [i.name for i in wanted if i not in index]
    if missing:
        raise ValueError(f"arrays do not contain {', '.join(missing[:5])}: rebuild them for this book")
    if arrays.instruments[:len(book.instruments)] == book.instruments:  # e.g. Analysis.arrays: no lookup
        pos = book.instrument_index
    else:
        pos = np.fromiter((index[p.instrument] for p in book.positions), dtype=int, count=len(book))
    q = np.fromiter((p.quantity for p in book.positions), dtype=float, count=len(book))
    entry = np.fromiter((np.nan if p.entry_price is None else p.entry_price for p in book.positions),
                        dtype=float, count=len(book))
    return MarginBook(Universe(arrays), pos, q, entry)


# ----------------------------------------------------------------------------- kernels


@dataclass(frozen=True)
class GroupTerm:
    """Σ over groups of up·x⁺ + down·x⁻ with x = Σ_{i∈group} q_i·coef_i (USD).

    ``group`` (instruments,) group id, −1 for instruments outside the term; ``up``/``down``
    USD per unit of x, per group; ``group_und`` the underlying of each group (a group never
    spans underlyings).
    """

    group: np.ndarray
    coef: np.ndarray
    up: np.ndarray
    down: np.ndarray
    group_und: np.ndarray

    @classmethod
    def per_instrument(cls, universe: Universe, mask, up, down, coef=None) -> GroupTerm:
        """One group per instrument in ``mask``; ``up``/``down``/``coef`` per instrument."""
        n = universe.n_instruments
        rows = np.flatnonzero(np.broadcast_to(mask, (n,)))
        group = np.full(n, -1)
        group[rows] = np.arange(len(rows))
        coef = np.ones(n) if coef is None else np.broadcast_to(np.asarray(coef, dtype=float), (n,)).copy()
        up, down = (np.broadcast_to(np.asarray(a, dtype=float), (n,))[rows] for a in (up, down))
        return cls(group, coef, up, down, universe.arrays.und_index[rows])

    @property
    def n_groups(self) -> int:
        return len(self.up)

    def value(self, g: np.ndarray, x: np.ndarray) -> np.ndarray:
        return self.up[g] * np.maximum(x, 0.0) + self.down[g] * np.maximum(-x, 0.0)

    def exposures(self, net: np.ndarray) -> np.ndarray:
        """x per group for net quantities ``net``."""
        inside = self.group >= 0
        return np.bincount(self.group[inside], weights=(net * self.coef)[inside], minlength=self.n_groups)

    @cached_property
    def one_instrument_per_group(self) -> bool:
        """Every group holds a single instrument (x is then q scaled per instrument)."""
        inside = self.group[self.group >= 0]
        return len(np.unique(inside)) == len(inside)

    def matrix(self) -> sparse.csr_matrix:
        """(instruments × groups) sparse map with x = q @ matrix."""
        rows = np.flatnonzero(self.group >= 0)
        return sparse.csr_matrix((self.coef[rows], (rows, self.group[rows])),
                                 shape=(len(self.group), self.n_groups))


class Kernel(ABC):
    """A margin model prepared on a :class:`Universe` (see the module docstring).

    Subclasses set ``linear`` (instruments × features), ``groups`` and ``components`` (names of
    the columns that ``combine`` returns after initial and maintenance) and implement
    ``per_underlying``.  ``additive`` kernels return the final columns (initial, maintenance,
    components) from ``per_underlying`` and sum them over underlyings; the others override
    ``combine``.  ``info`` names components shown beside the requirement but not part of it.
    """

    components: tuple[str, ...] = ()
    info: tuple[str, ...] = ()
    additive = True

    def __init__(self, universe: Universe, linear: np.ndarray, groups: tuple[GroupTerm, ...] = ()):
        self.universe = universe
        self.und_index = universe.arrays.und_index
        self.n_und = universe.n_underlyings
        self.linear = np.asarray(linear, dtype=float)
        self.groups = tuple(groups)

    @abstractmethod
    def per_underlying(self, lin: np.ndarray, grp: np.ndarray, und: np.ndarray) -> np.ndarray:
        """Component columns (n, C) from linear (n, F) and group (n, G) aggregates of n
        underlying-portfolios; ``und`` (n,) is the underlying index of each row."""

    def combine(self, comp: np.ndarray) -> np.ndarray:
        """(m, U, C) per-underlying components -> (m, 2 + len(components)): initial,
        maintenance, components.  Additive kernels: the sum over underlyings."""
        return comp.sum(axis=1)

    def scenario_table(self, lin: np.ndarray):
        """(scenario P&L frame, binding scenario per underlying) of the book whose
        per-underlying linear aggregates are ``lin``; models without a grid return none."""
        return empty_scenario_frame(), {}

    # -- evaluation -------------------------------------------------------------------------

    def aggregates(self, net: np.ndarray):
        """Per-underlying linear (U, F) and group (U, G) aggregates, and each term's x."""
        onehot = np.zeros((self.n_und, len(net)))
        onehot[self.und_index, np.arange(len(net))] = net
        lin = onehot @ self.linear
        grp, xs = self.group_aggregates(net)
        return lin, grp, xs

    def group_aggregates(self, net: np.ndarray):
        """Per-underlying group aggregates (U, G) and each term's x."""
        xs = [t.exposures(net) for t in self.groups]
        grp = np.zeros((self.n_und, len(self.groups)))
        for k, (t, x) in enumerate(zip(self.groups, xs, strict=True)):
            grp[:, k] = np.bincount(t.group_und, weights=t.value(np.arange(t.n_groups), x),
                                    minlength=self.n_und)
        return grp, xs


def evaluate(kernel: Kernel, net: np.ndarray) -> np.ndarray:
    """Requirement row (2 + C,): initial, maintenance, components, for net quantities ``net``."""
    if kernel.n_und == 0:
        return np.zeros(2 + len(kernel.components))
    lin, grp, _ = kernel.aggregates(net)
    comp = kernel.per_underlying(lin, grp, np.arange(kernel.n_und))
    return kernel.combine(comp[None])[0]


def evaluate_stacked(kernel: Kernel, net: np.ndarray, copies: int) -> np.ndarray:
    """Requirement rows (copies, 2 + C) of the book ``net`` (net contracts per instrument of one
    copy) in each copy of a kernel prepared on a :meth:`Universe.stacked` universe."""
    width = 2 + len(kernel.components)
    if kernel.n_und == 0:
        return np.zeros((copies, width))
    n, n_und = len(net), kernel.n_und // copies
    # The linear aggregates copy by copy: the stack's (instruments × underlyings) map is block
    # diagonal, one block per copy, the same in every copy.
    onehot = np.zeros((n_und, n))
    onehot[kernel.und_index[:n], np.arange(n)] = net
    lin = np.matmul(onehot, kernel.linear.reshape(copies, n, -1)).reshape(kernel.n_und, -1)
    grp, _ = kernel.group_aggregates(np.tile(net, copies))
    comp = kernel.per_underlying(lin, grp, np.arange(kernel.n_und))
    return kernel.combine(comp.reshape(copies, n_und, -1))


def evaluate_changes(kernel: Kernel, net: np.ndarray, instrument: np.ndarray, change: np.ndarray) -> np.ndarray:
    """Requirement rows (k, 2 + C) of the k books net + change[k]·e_{instrument[k]}."""
    instrument = np.asarray(instrument, dtype=int)
    change = np.asarray(change, dtype=float)
    k = len(instrument)
    if kernel.n_und == 0 or k == 0:
        return np.zeros((k, 2 + len(kernel.components)))
    lin_u, grp_u, xs = kernel.aggregates(net)
    u = kernel.und_index[instrument]
    lin = lin_u[u] + change[:, None] * kernel.linear[instrument]
    grp = grp_u[u]
    for t_idx, (term, x) in enumerate(zip(kernel.groups, xs, strict=True)):
        g = term.group[instrument]
        hit = np.flatnonzero(g >= 0)
        g_hit = g[hit]
        x_new = x[g_hit] + change[hit] * term.coef[instrument[hit]]
        grp[hit, t_idx] += term.value(g_hit, x_new) - term.value(g_hit, x[g_hit])
    rows = kernel.per_underlying(lin, grp, u)
    base = kernel.per_underlying(lin_u, grp_u, np.arange(kernel.n_und))
    if kernel.additive:
        return base.sum(axis=0)[None] - base[u] + rows
    full = np.repeat(base[None], k, axis=0)
    full[np.arange(k), u] = rows
    return kernel.combine(full)


def _signed_parts(q: sparse.csr_matrix) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """(q⁺, q⁻) = (max(q, 0), max(−q, 0)) sharing q's index arrays (explicit zeros are harmless in
    the products they enter)."""
    def part(data: np.ndarray) -> sparse.csr_matrix:
        return sparse.csr_matrix((data, q.indices, q.indptr), shape=q.shape, copy=False)

    return part(np.maximum(q.data, 0.0)), part(np.maximum(-q.data, 0.0))


def _single_instrument_maps(kernel: Kernel, terms: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(instruments × terms) maps A, B of the group terms with one instrument per group: with
    x = q·c, up·x⁺ + down·x⁻ = q⁺·A + q⁻·B where A = up·c⁺ + down·c⁻ and B = up·c⁻ + down·c⁺."""
    n = len(kernel.und_index)
    A, B = np.zeros((n, len(terms))), np.zeros((n, len(terms)))
    for j, k in enumerate(terms):
        t = kernel.groups[k]
        inside = np.flatnonzero(t.group >= 0)
        g, c = t.group[inside], t.coef[inside]
        c_pos, c_neg = np.maximum(c, 0.0), np.maximum(-c, 0.0)
        A[inside, j] = t.up[g] * c_pos + t.down[g] * c_neg
        B[inside, j] = t.up[g] * c_neg + t.down[g] * c_pos
    return A, B


def evaluate_accounts(kernel: Kernel, quantities, chunk_rows: int = 25_000) -> np.ndarray:
    """Requirement rows (A, 2 + C) of A accounts holding ``quantities`` (A × instruments,
    scipy.sparse or dense, signed contracts) of the kernel's instruments.

    Per underlying u and chunk of accounts: linear aggregates are the sparse-dense product
    Q·(L masked to u's instruments); group terms with one instrument per group are two more
    sparse-dense products Q⁺·A + Q⁻·B (:func:`_single_instrument_maps`); the other group terms
    are x = Q·M (sparse), then up·x⁺ + down·x⁻ summed into each group's underlying.  No account
    ever nets across underlyings; how the per-underlying components combine is the kernel's
    ``combine``.  Memory per chunk is about chunk_rows × (features + components) × underlyings
    floats.
    """
    Q = sparse.csr_matrix(quantities, dtype=float)
    n_acc, n_inst = Q.shape
    if n_inst != len(kernel.und_index):
        raise ValueError(f"quantities has {n_inst} columns for {len(kernel.und_index)} instruments")
    width = 2 + len(kernel.components)
    if kernel.n_und == 0:
        return np.zeros((n_acc, width))
    single = [k for k, t in enumerate(kernel.groups) if t.n_groups and t.one_instrument_per_group]
    netted = [k for k, t in enumerate(kernel.groups) if t.n_groups and not t.one_instrument_per_group]
    A, B = _single_instrument_maps(kernel, single)
    # Each underlying's features see only its own instruments: a contiguous block of columns is
    # sliced out of Q (a product over that block's entries only), otherwise the features are
    # masked to zero outside it (a product over every entry).
    blocks = []
    for u in range(kernel.n_und):
        cols = np.flatnonzero(kernel.und_index == u)
        if len(cols) and cols[-1] - cols[0] + 1 == len(cols):
            block = slice(cols[0], cols[-1] + 1)
            blocks.append((block, kernel.linear[block], A[block], B[block]))
        else:
            mine = (kernel.und_index == u)[:, None]
            blocks.append((slice(None), kernel.linear * mine, A * mine, B * mine))
    term_maps = []
    for k in netted:
        t = kernel.groups[k]
        to_und = sparse.csr_matrix((np.ones(t.n_groups), (np.arange(t.n_groups), t.group_und)),
                                   shape=(t.n_groups, kernel.n_und))
        term_maps.append((k, t.matrix(), (sparse.diags(t.up) @ to_und).toarray(),
                          (sparse.diags(t.down) @ to_und).toarray()))
    out = np.empty((n_acc, width))

    def evaluate_chunk(start: int) -> None:
        q = Q[start:start + chunk_rows]
        grp_all = np.zeros((q.shape[0], kernel.n_und, len(kernel.groups)))
        for k, m, up, down in term_maps:
            x = q @ m
            pos, neg = _signed_parts(x)
            grp_all[:, :, k] = pos @ up + neg @ down
        comp = []
        for u, (cols, lin, a, b) in enumerate(blocks):
            q_u = q[:, cols]
            if single:
                pos, neg = _signed_parts(q_u)
                grp_all[:, u, single] = pos @ a + neg @ b
            comp.append(kernel.per_underlying(np.asarray(q_u @ lin), grp_all[:, u, :], np.full(q.shape[0], u)))
        out[start:start + q.shape[0]] = kernel.combine(np.stack(comp, axis=1))

    starts = range(0, n_acc, chunk_rows)
    if len(starts) == 1:
        evaluate_chunk(0)
    else:  # scipy's sparse products and numpy's reductions release the GIL: chunks run on the cores
        with revaluation_pool() as pool:
            list(pool.map(evaluate_chunk, starts))
    return out


# ----------------------------------------------------------------------------- scenarios


SCENARIO_COLUMNS = ("underlying", "scenario", "spot_shock", "vol_direction", "vol_shock", "weight",
                    "pnl", "weighted_pnl", "binding")


def empty_scenario_frame() -> pd.DataFrame:
    return pd.DataFrame({c: [] for c in SCENARIO_COLUMNS})


def scenario_table(universe: Universe, labels, spot_shocks, vol_direction, vol_shock, weights,
                   weighted_pnl: np.ndarray):
    """Tidy frame of a scenario model's grid per underlying, and the binding scenario of each.

    ``weighted_pnl`` (U, S) is the per-underlying book P&L with scenario weights applied; the
    binding scenario is the worst weighted one (ties: the first listed).
    """
    n_und, n_s = weighted_pnl.shape
    w = np.asarray(weights, dtype=float)
    worst = weighted_pnl.argmin(axis=1)
    binding = np.zeros((n_und, n_s), dtype=bool)
    binding[np.arange(n_und), worst] = True
    unds = universe.arrays.underlyings
    frame = pd.DataFrame({
        "underlying": np.repeat(np.asarray(unds, dtype=object), n_s),
        "scenario": np.tile(np.asarray(labels, dtype=object), n_und),
        "spot_shock": np.tile(np.asarray(spot_shocks, dtype=float), n_und),
        "vol_direction": np.tile(np.asarray(vol_direction, dtype=float), n_und),
        "vol_shock": np.tile(np.asarray(vol_shock, dtype=float), n_und),
        "weight": np.tile(w, n_und),
        # A weight of 0 (a switched-off scenario) shows a P&L of 0.
        "pnl": np.divide(weighted_pnl, w, out=np.zeros_like(weighted_pnl), where=w != 0).ravel(),
        "weighted_pnl": weighted_pnl.ravel(),
        "binding": binding.ravel(),
    })
    return frame, {u: labels[worst[k]] for k, u in enumerate(unds)}


def worst_loss(weighted_pnl: np.ndarray) -> np.ndarray:
    """max(0, −min over the last axis): the worst weighted scenario loss (USD, ≥ 0)."""
    return np.maximum(-weighted_pnl.min(axis=-1), 0.0) if weighted_pnl.shape[-1] else \
        np.zeros(weighted_pnl.shape[:-1])


# ----------------------------------------------------------------------------- parameters


class ParamCheck:
    """Collects parameter problems and raises one ValueError naming them all."""

    def __init__(self, model: str):
        self.model = model
        self.problems: list[str] = []

    def range(self, name: str, value, lo: float, hi: float, *, open_lo: bool = False):
        # Text that happens to parse ("0.5") is refused too: it would fail later, in the maths.
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            self.problems.append(f"{name} must be a number (got {value!r})")
            return
        try:
            x = float(value)
        except OverflowError:  # an integer beyond float range
            self.problems.append(f"{name} must be in {'(' if open_lo else '['}{lo:g}, {hi:g}] (got a number of "
                                 f"{len(str(abs(int(value))))} digits)")
            return
        if not (np.isfinite(x) and (x > lo if open_lo else x >= lo) and x <= hi):
            self.problems.append(f"{name} must be in {'(' if open_lo else '['}{lo:g}, {hi:g}] (got {x:g})")

    def require(self, ok: bool, message: str):
        if not ok:
            self.problems.append(message)

    def done(self):
        if self.problems:
            raise ValueError(f"{self.model} parameters: " + "; ".join(self.problems))
