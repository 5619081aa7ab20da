"""Exchange-wide liquidation queue and cascade (docs/methodology.md §7).

A population of accounts shares one instrument listing.  Holdings are a scipy.sparse
(accounts × instruments) matrix Q of signed contracts and a cash vector, so that

    equity_a = cash_a + Σ_i Q[a, i]·mark_i

(marks in USD per contract; for futures and perps the mark is the price and the entry price is
folded into cash, which gives the same equity as unrealised P&L vs entry).  Margin comes from a
margin model prepared once on the listing: every instrument is revalued once per scenario and
accounts are aggregated with sparse products (:func:`engine.margin.core.evaluate_accounts`), never
a loop over accounts.  Every step works on a block of accounts given the listing revalued once
(:func:`revalue`, :func:`partition_margins`, :func:`queue_rows`, :func:`cascade_step`), so
:mod:`engine.liquidation.distributed` runs the same steps on a Dask cluster.

Ranking: most under water first — highest margin ratio MM/equity (equity ≤ 0 ranks above any
ratio), then the largest notional — as dYdX orders its liquidations.

Cascade: after a spot shock, the liquidatable accounts are closed; their net delta per underlying
is sold (or bought) into the market, moving spot by the square-root impact

    ΔS/S = −sign(flow)·k·σ_daily·√(|flow| / ADV)

(flow in units of underlying, ADV units per day); everything is revalued at the new spot and the
next round closes the accounts that became liquidatable, until no new account is.  Closed accounts
leave the population (their book is taken over by the liquidation engine at mark).
"""
from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from ..instruments import Instrument
from ..limits import check_budget
from ..listing import listed_instruments
from ..margin import MarginModel, margin_model
from ..margin.account import margin_ratio
from ..margin.core import Kernel, Universe, evaluate_accounts
from ..market import Market
from ..portfolio import MAX_BYTES, Position, RowError, validate_record
from ..scenarios import instrument_arrays, instrument_greeks, instrument_values
from .costs import impact_vols


@dataclass(frozen=True)
class Population:
    """Accounts on a shared listing: ``account_ids`` (names, strings), ``quantities`` (accounts ×
    instruments, contracts, sparse CSR), ``cash`` (USD: collateral minus entry cost of linear
    positions), ``collateral`` (USD)."""

    account_ids: np.ndarray
    instruments: tuple[Instrument, ...]
    quantities: sparse.csr_matrix
    cash: np.ndarray
    collateral: np.ndarray

    def __len__(self) -> int:
        return len(self.account_ids)

    def subset(self, rows: np.ndarray) -> Population:
        return Population(self.account_ids[rows], self.instruments, self.quantities[rows],
                          self.cash[rows], self.collateral[rows])


@dataclass(frozen=True)
class PopulationParams:
    """Generator: ``n_accounts`` accounts of about ``positions`` positions each (Poisson), 70 %
    options; sizes log-normal around ``size_usd`` of notional per position; collateral set so
    that the starting margin ratio MM/equity is log-normal with median ``median_ratio`` and
    log-sd ``ratio_dispersion`` (some accounts start liquidatable, ratio ≥ 1)."""

    n_accounts: int = 2_000
    positions: float = 20.0
    seed: int = 0
    size_usd: float = 50_000.0
    option_share: float = 0.7
    median_ratio: float = 0.35
    ratio_dispersion: float = 0.6

    def validate(self) -> PopulationParams:
        bad = []
        if not 1 <= self.n_accounts <= 1_000_000:
            bad.append("number of accounts must be 1…1,000,000")
        if not 1 <= self.positions <= 200:
            bad.append("positions per account must be 1…200")
        check_budget("MAX_ACCOUNT_POSITIONS", int(self.n_accounts * self.positions),
                     "account positions (accounts × positions per account)",
                     "fewer accounts or positions per account, or run on a Dask cluster")
        if not 0 < self.median_ratio < 5 or self.ratio_dispersion < 0:
            bad.append("median margin ratio must be in (0, 5) and its dispersion ≥ 0")
        if not 0 <= self.option_share <= 1 or self.size_usd <= 0:
            bad.append("option share must be in [0, 1] and size > 0")
        if bad:
            raise ValueError("; ".join(bad))
        return self


def generate_population(market: Market, params: PopulationParams = PopulationParams(),
                        model: str | MarginModel = "risk_based", margin_params=None) -> Population:
    """A reproducible population (numpy default_rng(seed)) drawn around the demo listing."""
    params.validate()
    rng = np.random.default_rng(params.seed)
    listing = tuple(listed_instruments(market))
    arr = instrument_arrays(listing, market)
    is_opt = arr.kind == 0
    spot = arr.spot * arr.multiplier
    # Near-the-money options trade most: weight by moneyness.
    money = np.where(is_opt, np.abs(np.log(np.where(is_opt, arr.strike, 1.0) / arr.spot)), 0.0)
    w_opt = np.where(is_opt, np.exp(-money / 0.12), 0.0)
    w_lin = np.where(is_opt, 0.0, 1.0)
    n = params.n_accounts
    counts = np.maximum(rng.poisson(params.positions, n), 1)
    total = int(counts.sum())
    # Holdings in account order, built in place (a holding array is ~150 MB for 10⁶ accounts).
    linear_pick = rng.random(total) >= params.option_share
    cols = rng.choice(len(listing), total, p=w_opt / w_opt.sum())
    np.copyto(cols, rng.choice(len(listing), total, p=w_lin / w_lin.sum()), where=linear_pick)
    del linear_pick
    qty = rng.lognormal(np.log(params.size_usd), 1.0, total)
    qty /= spot[cols]
    qty *= rng.choice((-1.0, 1.0), total)
    np.round(qty, 1, out=qty)
    qty[qty == 0] = 0.1
    Q = sparse.csr_matrix((qty, cols, np.concatenate([[0], np.cumsum(counts)])), shape=(n, len(listing)))
    del qty, cols
    Q.sum_duplicates()
    Q.eliminate_zeros()
    marks = instrument_values(arr)
    # Linear positions entered a little away from today's price: unrealised P&L either way.
    entry = marks * (1.0 + rng.normal(0.0, 0.03, len(listing)))
    linear = (~is_opt).astype(float)
    entry_cost = Q @ (entry * linear)
    kernel = margin_model(model, margin_params).prepare(Universe(arr))
    mm = evaluate_accounts(kernel, Q)[:, 1]
    mtm = Q @ marks - entry_cost
    ratio = rng.lognormal(np.log(params.median_ratio), params.ratio_dispersion, n)
    equity = np.where(mm > 0, mm / ratio, params.size_usd * rng.uniform(0.2, 2.0, n))
    collateral = np.maximum(equity - mtm, 0.0)
    ids = np.array([f"A{k:06d}" for k in range(n)], dtype=object)
    return Population(ids, listing, Q, collateral - entry_cost, collateral)


ACCOUNT_COLUMNS = ("account", "collateral", "instrument", "quantity")


@dataclass(frozen=True)
class AccountRow:
    """One valid row of an accounts CSV: account id, position, collateral (USD; NaN when the
    row does not state it)."""

    account: str
    position: Position
    collateral: float


def _account_rows(text: str) -> tuple[list[dict] | None, list[RowError]]:
    """The CSV's rows as dicts with lower-case keys and stripped values (up to a row the csv
    module cannot read, reported), or a header error."""
    reader = csv.DictReader(io.StringIO(text))
    columns = {f.strip().lower() for f in (reader.fieldnames or [])}
    missing = sorted(set(ACCOUNT_COLUMNS) - columns)
    if missing:
        return None, [RowError(0, "header", "expected account,collateral,instrument,quantity"
                                            f"[,entry_price]; missing {', '.join(missing)}")]
    records: list[dict] = []
    try:
        for rec in reader:
            records.append({k.strip().lower(): (v or "").strip() for k, v in rec.items() if isinstance(k, str)})
    except csv.Error as exc:  # e.g. a stray carriage return: keep the rows read so far
        return records, [RowError(len(records) + 1, "row", f"not readable as CSV: {exc}")]
    return records, []


def _collateral(text: str, row: int, errors: list[RowError]) -> float:
    """Collateral in USD of one row: NaN when empty; a problem is appended to ``errors``."""
    if not text:
        return np.nan
    try:
        value = float(text)
    except ValueError:
        value = np.nan
    if not (np.isfinite(value) and value >= 0):
        errors.append(RowError(row, "collateral", f"{text!r} is not an amount of USD ≥ 0"))
    return value


def validate_account_row(record: dict, row: int, market: Market, errors: list[RowError]) -> AccountRow | None:
    """One CSV row as an :class:`AccountRow`, or None with its problems appended to ``errors``:
    the position is checked as a book row is (:func:`engine.portfolio.validate_record`: name,
    non-zero quantity, entry price, underlying with market data, not expired), the collateral
    as USD ≥ 0."""
    before = len(errors)
    position = validate_record(record, row, market, errors)
    collateral = _collateral(record.get("collateral", ""), row, errors)
    if position is None or len(errors) > before:
        return None
    return AccountRow(record.get("account") or f"row{row}", position, collateral)


def population_of(rows: list[AccountRow], market: Market) -> Population:
    """The population holding ``rows``: each account's collateral is the first one it states
    (0 if none); linear positions fold their entry cost (at today's mark without an entry
    price) into cash."""
    instruments = tuple(dict.fromkeys(r.position.instrument for r in rows))
    inst_pos = {inst: k for k, inst in enumerate(instruments)}
    ids = np.array(list(dict.fromkeys(r.account for r in rows)), dtype=object)
    acc_pos = {a: k for k, a in enumerate(ids)}
    arr = instrument_arrays(instruments, market)
    marks = instrument_values(arr)
    r_idx = np.array([acc_pos[r.account] for r in rows])
    c_idx = np.array([inst_pos[r.position.instrument] for r in rows])
    qty = np.array([r.position.quantity for r in rows])
    entry = np.array([np.nan if r.position.entry_price is None else r.position.entry_price for r in rows])
    linear = arr.kind[c_idx] != 0
    entry_cost = np.where(linear, qty * np.where(np.isnan(entry), marks[c_idx], entry), 0.0)
    colls = np.array([r.collateral for r in rows])
    given = np.isfinite(colls)
    collateral = np.zeros(len(ids))
    acc, first = np.unique(r_idx[given], return_index=True)  # an account's first stated collateral
    collateral[acc] = colls[given][first]
    Q = sparse.csr_matrix((qty, (r_idx, c_idx)), shape=(len(ids), len(instruments)))
    cash = collateral - np.bincount(r_idx, weights=entry_cost, minlength=len(ids))
    return Population(ids, instruments, Q, cash, collateral)


def read_accounts(source, market: Market) -> tuple[Population | None, list[RowError]]:
    """Accounts CSV: ``account,collateral,instrument,quantity[,entry_price]``, one position a
    row; an account's collateral (USD) is taken from its first row that states one.  Bad rows
    are reported with their 1-based row number and field and skipped."""
    raw = source if isinstance(source, (bytes, str)) else source.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        return None, [RowError(0, "file", f"file is larger than {MAX_BYTES / 1e6:g} MB")]
    text = raw.decode("utf-8-sig", errors="replace") if isinstance(raw, bytes) else raw
    records, errors = _account_rows(text)
    if records is None:
        return None, errors
    rows = [r for r in (validate_account_row(rec, k, market, errors) for k, rec in enumerate(records, start=1))
            if r is not None]
    if not rows:
        return None, errors or [RowError(0, "file", "no accounts")]
    return population_of(rows, market), errors


@dataclass(frozen=True)
class QueueResult:
    """Per-account margin under one spot shock, ranked (row 0 = first to liquidate).

    ``accounts``: account, equity, im, mm, margin_ratio, notional_usd, liquidatable, rank."""

    spot_shock: float
    accounts: pd.DataFrame

    @property
    def liquidatable(self) -> pd.DataFrame:
        return self.accounts[self.accounts["liquidatable"]]


@dataclass(frozen=True)
class Revaluation:
    """The listing revalued once under one market — all a block of accounts needs to be margined:
    the margin kernel, ``marks`` (USD per contract), ``notional`` (USD per contract: spot ×
    multiplier) and ``und_delta`` (instruments × underlyings: delta per contract in units of each
    underlying, for the cascade's flow)."""

    kernel: Kernel
    marks: np.ndarray
    notional: np.ndarray
    und_delta: np.ndarray


def revalue(instruments, market: Market, model: str | MarginModel = "risk_based", params=None) -> Revaluation:
    """Revalue ``instruments`` under ``market`` once for every account that holds them."""
    arr = instrument_arrays(instruments, market)
    kernel = margin_model(model, params).prepare(Universe(arr))
    onehot = (arr.und_index[:, None] == np.arange(len(arr.underlyings))).astype(float)
    delta = instrument_greeks(arr)["delta"]
    return Revaluation(kernel, instrument_values(arr), arr.spot * arr.multiplier, delta[:, None] * onehot)


def abs_product(quantities: sparse.csr_matrix, values: np.ndarray, chunk_rows: int = 100_000) -> np.ndarray:
    """|Q| @ ``values`` (rows of Q × columns of values), a block of rows at a time: |Q| is
    never held whole (for 10⁶ accounts it would be ~150 MB), and each row's sum is the same."""
    values = np.asarray(values, dtype=float)
    n = quantities.shape[0]
    out = np.empty((n,) + values.shape[1:])
    indptr = quantities.indptr
    for a in range(0, n, chunk_rows):
        b = min(a + chunk_rows, n)
        lo, hi = indptr[a], indptr[b]
        block = sparse.csr_matrix((np.abs(quantities.data[lo:hi]), quantities.indices[lo:hi], indptr[a:b + 1] - lo),
                                  shape=(b - a, quantities.shape[1]), copy=False)
        out[a:b] = block @ values
    return out


def partition_margins(rev: Revaluation, quantities: sparse.csr_matrix, cash: np.ndarray):
    """(equity, IM, MM, notional) of a block of accounts (rows of ``quantities``, USD).

    The step every partition of an exchange runs, on one machine or on a Dask worker; each
    account's figures depend on its own row only, so any partition gives the same numbers."""
    check_budget("MAX_ACCOUNT_POSITIONS", quantities.nnz, "account positions on one machine",
                 "fewer accounts, or run on a Dask cluster (PMDASH_DASK_SCHEDULER)")
    req = evaluate_accounts(rev.kernel, quantities)
    equity = cash + quantities @ rev.marks
    return equity, req[:, 0], req[:, 1], abs_product(quantities, rev.notional)


def account_margins(pop: Population, market: Market, model: str | MarginModel = "risk_based", params=None):
    """(equity, IM, MM, notional) arrays for every account of ``pop`` under ``market``."""
    return partition_margins(revalue(pop.instruments, market, model, params), pop.quantities, pop.cash)


def queue_order(ratio: np.ndarray, notional: np.ndarray, top: int | None = None) -> np.ndarray:
    """Row indices of the queue's first ``top`` accounts (all with None): margin ratio
    descending, then notional descending, then row order — ``np.lexsort((-notional, -ratio))``,
    a stable sort on two keys, without sorting the whole block on both.

    One unstable sort on the ratio orders every account; accounts tied on it (equity ≤ 0 ranks
    all at +inf) are then sorted among themselves on (ratio, notional, row) into the same
    places.  With ``top``, only the accounts whose ratio reaches the top-th largest (every tie
    of it included, so the cut keeps row order) are sorted.

    >>> queue_order(np.array([0.5, np.inf, 0.5, 2.0, np.inf]), np.array([1.0, 5.0, 3.0, 1.0, 5.0])).tolist()
    [1, 4, 3, 2, 0]
    """
    ratio, notional = np.asarray(ratio, dtype=float), np.asarray(notional, dtype=float)
    key = -ratio
    if top is not None and 0 < top < len(key):
        cut = np.partition(key, top - 1)[top - 1]
        if not np.isnan(cut):  # NaN ratios sort last: a NaN cut keeps every account in play
            rows = np.flatnonzero(key <= cut)
            return rows[queue_order(ratio[rows], notional[rows])][:top]
    order = np.argsort(key)
    k = key[order]
    tied = (k[1:] == k[:-1]) | (np.isnan(k[1:]) & np.isnan(k[:-1]))
    if tied.any():
        places = np.flatnonzero(np.r_[tied, False] | np.r_[False, tied])
        rows = order[places]
        order[places] = rows[np.lexsort((rows, -notional[rows], key[rows]))]
    return order[:top]


def queue_rows(ids: np.ndarray, margins, top: int | None = None) -> pd.DataFrame:
    """The ``top`` first accounts (all with None) of a block in queue order, unranked.

    Ties on ratio and notional keep their order in the block (:func:`queue_order`); blocks
    taken in population order and merged (:func:`merge_queue`) therefore give the single-machine
    order exactly."""
    equity, im, mm, notional = margins
    ratio = margin_ratio(equity, mm)
    order = queue_order(ratio, notional, top)
    # The ids become pandas strings before the permutation: validating them in row order is
    # several times faster than after it.
    return pd.DataFrame({"account": pd.array(ids, dtype="str")[order], "equity": equity[order], "im": im[order],
                         "mm": mm[order], "margin_ratio": ratio[order], "notional_usd": notional[order],
                         "liquidatable": equity[order] < mm[order]})


def merge_queue(blocks: list[pd.DataFrame], top: int | None = None) -> pd.DataFrame:
    """Top-k merge of :func:`queue_rows` blocks given in population order: the global queue's
    first ``top`` rows, ranked from 1 (a single block gets its ``rank`` column in place)."""
    frame = blocks[0]
    if len(blocks) > 1:
        frame = pd.concat(blocks, ignore_index=True)
        order = queue_order(frame["margin_ratio"].to_numpy(), frame["notional_usd"].to_numpy(), top)
        frame = frame.iloc[order].reset_index(drop=True)
    frame["rank"] = np.arange(1, len(frame) + 1)
    return frame


def margin_queue(pop: Population, market: Market, spot_shock=0.0, model: str | MarginModel = "risk_based",
                 params=None) -> QueueResult:
    """Margin-check every account at spot·(1 + spot_shock) and rank the queue."""
    margins = account_margins(pop, market.with_spot_shock(spot_shock), model, params)
    frame = queue_rows(pop.account_ids, margins)
    return QueueResult(float(np.mean(spot_shock)), merge_queue([frame]))


#: The margin-ratio histogram: bins of ``bin_pct`` % from 0 to RATIO_CAP; ratios above it, and
#: accounts with no equity left (ratio +inf), fall in the last bin.
RATIO_CAP = 3.0
RATIO_BIN_PCT = 5.0


def ratio_edges(bin_pct: float = RATIO_BIN_PCT) -> np.ndarray:
    """Bin edges (margin ratio MM / equity, %) of :func:`ratio_counts`."""
    return np.arange(0.0, RATIO_CAP * 100.0 + 2 * bin_pct, bin_pct)


def ratio_counts(ratio, liquidatable, bin_pct: float = RATIO_BIN_PCT) -> np.ndarray:
    """(2, bins) accounts per margin-ratio bin (:func:`ratio_edges`): healthy, liquidatable.
    Counts add up across blocks of accounts, so a cluster bins each partition on its worker.

    >>> ratio_counts([0.01, 0.7, 2.0, np.inf], [False, False, True, True], 50.0).tolist()
    [[1, 1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 0, 1]]
    """
    pct = np.minimum(np.asarray(ratio, dtype=float), RATIO_CAP) * 100.0
    liq = np.asarray(liquidatable, dtype=bool)
    edges = ratio_edges(bin_pct)
    return np.array([np.histogram(pct[~liq], edges)[0], np.histogram(pct[liq], edges)[0]])


def liquidatable_amounts(margins) -> tuple[np.ndarray, np.ndarray]:
    """Notional and shortfall MM − equity (USD) of each liquidatable account of a block."""
    equity, _, mm, notional = margins
    liq = equity < mm
    return notional[liq], (mm - equity)[liq]


def exact_sum(parts) -> float:
    """Correctly rounded Σ of the arrays in ``parts`` (math.fsum): the same total whichever way the
    accounts are partitioned, so a cluster and one machine report identical figures."""
    return math.fsum(np.concatenate([np.ravel(p) for p in parts])) if len(parts) else 0.0


def partition_sweep(rev: Revaluation, quantities: sparse.csr_matrix, cash: np.ndarray):
    """:func:`liquidatable_amounts` of a block of accounts under one revaluation."""
    return liquidatable_amounts(partition_margins(rev, quantities, cash))


def sweep_row(spot_shock: float, amounts: list[tuple[np.ndarray, np.ndarray]]) -> tuple:
    """(spot_shock, accounts, notional_usd, shortfall_usd) from the blocks' liquidatable amounts."""
    return (float(spot_shock), sum(len(n) for n, _ in amounts), exact_sum([n for n, _ in amounts]),
            exact_sum([s for _, s in amounts]))


SWEEP_COLUMNS = ["spot_shock", "accounts", "notional_usd", "shortfall_usd"]


def liquidatable_vs_shock(pop: Population, market: Market, shocks, model: str | MarginModel = "risk_based",
                          params=None) -> pd.DataFrame:
    """Number and notional of liquidatable accounts for each spot shock (fractions)."""
    shocks = np.asarray(shocks, dtype=float)
    model, params = margin_model(model, params), None  # validated once for every shock
    check_budget("MAX_SWEEP_EVALUATIONS", len(shocks) * pop.quantities.nnz, "shock levels × account positions",
                 "fewer shock levels or accounts, or run on a Dask cluster")
    rows = [sweep_row(s, [partition_sweep(revalue(pop.instruments, market.with_spot_shock(s), model, params),
                                          pop.quantities, pop.cash)])
            for s in shocks]  # one sparse evaluation per shock level
    return pd.DataFrame(rows, columns=SWEEP_COLUMNS)


@dataclass(frozen=True)
class CascadeParams:
    """Impact of liquidation flow on spot: k (square-root law constant); the daily volume of each
    underlying is ``turnover`` × the population's gross notional in it (so a bigger exchange
    also trades more); max_rounds bounds the cascade."""

    impact_k: float = 1.0
    turnover: float = 0.5
    max_rounds: int = 50

    def validate(self) -> CascadeParams:
        if not 0 <= self.impact_k <= 10 or self.turnover <= 0 or self.max_rounds < 1:
            raise ValueError("impact k must be 0…10, turnover > 0 and max rounds ≥ 1")
        return self


@dataclass(frozen=True)
class CascadeResult:
    """``rounds``: round, underlying spot shocks (cumulative, per underlying columns
    ``shock_<U>``), new and cumulative liquidations, notional closed, flow per underlying."""

    rounds: pd.DataFrame
    liquidated: np.ndarray  # account ids in the order they were closed
    final_shock: dict


def gross_units(quantities: sparse.csr_matrix, units: np.ndarray) -> np.ndarray:
    """Σ over accounts of |contracts| × ``units`` (instruments × underlyings): gross exposure in
    units of each underlying."""
    return abs_product(quantities, units).sum(axis=0)


def cascade_step(rev: Revaluation, quantities: sparse.csr_matrix, cash: np.ndarray, alive: np.ndarray):
    """One cascade round on a block: rows newly liquidatable among ``alive``, their notional (USD)
    and what closing each one unloads per underlying (contracts × delta, units; rows × underlyings)."""
    idx = np.flatnonzero(alive)
    equity, _, mm, notional = partition_margins(rev, quantities[idx], cash[idx])
    under = equity < mm
    new = idx[under]
    return new, notional[under], np.asarray(quantities[new] @ rev.und_delta)


#: One cascade round over the whole population: Revaluation → (account ids closed, their notional, their
#: deltas per underlying), as :func:`cascade_step` gives.  On one machine it is that step on the population; on
#: Dask, the partitions' steps concatenated (engine.liquidation.distributed).
RoundFn = Callable[[Revaluation], tuple[np.ndarray, np.ndarray, np.ndarray]]


def run_cascade(instruments, market: Market, spot_shock: float, gross: np.ndarray, round_fn: RoundFn,
                model: str | MarginModel = "risk_based", params=None,
                cascade_params: CascadeParams = CascadeParams()) -> CascadeResult:
    """The cascade loop (module doc) on any executor: ``gross`` is :func:`gross_units` of the
    population (for the volume), ``round_fn`` closes the accounts liquidatable under a revaluation.
    Flows and notionals are exact sums, so the result does not depend on how accounts are split."""
    cascade_params.validate()
    model, params = margin_model(model, params), None  # validated once for every round
    arr = instrument_arrays(instruments, market)
    unds = arr.underlyings
    atm = impact_vols(market, unds)  # the σ the liquidation cost model uses
    adv_units = np.maximum(cascade_params.turnover * gross, 1e-9)
    shock = np.full(len(unds), float(spot_shock))
    closed: list = []
    rows = []
    for rnd in range(cascade_params.max_rounds + 1):
        new, notional, unloaded = round_fn(revalue(instruments, market.with_spot_shock(shock), model, params))
        flow = -np.array([exact_sum([unloaded[:, k]]) for k in range(len(unds))])
        rows.append({"round": rnd, **{f"shock_{u}": shock[k] for k, u in enumerate(unds)},
                     "new_liquidations": len(new), "cumulative": len(closed) + len(new),
                     "notional_usd": exact_sum([notional]), **{f"flow_{u}": flow[k] for k, u in enumerate(unds)}})
        if not len(new):
            break
        closed.extend(new)
        move = np.sign(flow) * cascade_params.impact_k * atm / np.sqrt(365.0) * np.sqrt(np.abs(flow) / adv_units)
        shock = (1.0 + shock) * (1.0 + move) - 1.0
    return CascadeResult(pd.DataFrame(rows), np.array(closed, dtype=object),
                         {u: float(shock[k]) for k, u in enumerate(unds)})


def cascade_units(instruments, market: Market) -> np.ndarray:
    """Instruments × underlyings: units of each underlying one contract is (the multiplier)."""
    arr = instrument_arrays(instruments, market)
    return arr.multiplier[:, None] * (arr.und_index[:, None] == np.arange(len(arr.underlyings)))


def cascade(pop: Population, market: Market, spot_shock: float, model: str | MarginModel = "risk_based",
            params=None, cascade_params: CascadeParams = CascadeParams()) -> CascadeResult:
    """Shock spot, close the liquidatable accounts, move spot by their flow, repeat."""
    check_budget("MAX_SWEEP_EVALUATIONS", (cascade_params.max_rounds + 1) * pop.quantities.nnz,
                 "cascade rounds × account positions", "fewer rounds or accounts, or run on a Dask cluster")
    alive = np.ones(len(pop), dtype=bool)

    def round_fn(rev: Revaluation):
        new, notional, unloaded = cascade_step(rev, pop.quantities, pop.cash, alive)
        alive[new] = False
        return pop.account_ids[new], notional, unloaded

    gross = gross_units(pop.quantities, cascade_units(pop.instruments, market))
    return run_cascade(pop.instruments, market, spot_shock, gross, round_fn, model, params, cascade_params)
