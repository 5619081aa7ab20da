"""The exchange queue, shock sweep and cascade on a Dask cluster (docs/methodology.md §7).

Set ``PMDASH_DASK_SCHEDULER`` to a scheduler address (``tcp://host:8786``) and install the
``dask`` extra (``pip install 'pmdash[dask]'``); :func:`connect` then returns a client.  Without
the variable nothing here is needed: :mod:`.queue` runs the same steps on one machine.  From the
shell (the population is generated on the workers, block by block)::

    PMDASH_DASK_SCHEDULER=tcp://host:8786 python -m engine.liquidation.distributed --accounts 10000000 --shock -0.1

The dashboard's Exchange page uses the same variable: a generated population above one
machine's cap is generated and margined here, up to ``engine.limits.MAX_CLUSTER_ACCOUNTS``
accounts if the workers' memory holds them (:func:`check_cluster_population`).  Measured on a
2-core machine shared with other work, 2 workers of one thread on loopback: 10,000,000 accounts
(~185 M holdings) are generated in ~50 s and queued in ~18–21 s, with ~3.9 GB on the workers at
the peak.

Layout (the same per-partition functions as :mod:`.queue`, so each account's figures are the
single-machine ones bit for bit):

* accounts are split into contiguous row blocks (partitions) that stay on the workers —
  scattered from a :class:`~.queue.Population` (:func:`scatter_population`) or generated on the
  workers themselves (:func:`generate_on_cluster`, for populations no machine could hold);
* for each market state the listing is revalued once on the client (:func:`.queue.revalue`: the
  margin kernel, marks, notionals, deltas) and broadcast to every worker;
* the queue: each worker margins its partition and ranks its own first ``top`` accounts; the
  client merges those into the global first ``top`` (:func:`.queue.merge_queue`: stable sorts,
  so ties keep the population's row order, as on one machine); the headline totals are exact sums;
* the sweep: one broadcast revaluation per shock level, liquidatable amounts summed exactly;
* the cascade: per round, each worker closes its liquidatable accounts (the closed rows of each
  partition are kept on the client and sent with the round) and returns what they unload; the
  client reduces the flow per underlying, moves spot and broadcasts the next revaluation.

Counts, rankings, account ids and all per-account figures equal the single-machine path;
notionals, shortfalls and flows are correctly rounded sums (``math.fsum``), equal as well; the
cascade's daily volume (a gross total computed once) is summed per partition and agrees with the
single-machine figure to rounding.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from ..limits import BudgetError, check_budget
from ..margin.account import margin_ratio
from ..market import Market
from ..samples import listed_instruments
from .queue import (
    SWEEP_COLUMNS,
    CascadeParams,
    CascadeResult,
    Population,
    PopulationParams,
    QueueResult,
    Revaluation,
    cascade_step,
    cascade_units,
    generate_population,
    gross_units,
    liquidatable_amounts,
    merge_queue,
    partition_margins,
    partition_sweep,
    queue_rows,
    ratio_counts,
    revalue,
    run_cascade,
    sweep_row,
)

SCHEDULER_ENV = "PMDASH_DASK_SCHEDULER"
#: Rows of the queue brought back to the client by default (the dashboard shows the first few).
DEFAULT_TOP = 10_000


def scheduler_address() -> str | None:
    """The configured scheduler address, or None (single machine)."""
    return os.environ.get(SCHEDULER_ENV, "").strip() or None


def connect(address: str | None = None):
    """A ``dask.distributed.Client`` on ``address`` (default: ``$PMDASH_DASK_SCHEDULER``)."""
    address = address or scheduler_address()
    if address is None:
        raise RuntimeError(f"no Dask scheduler: set {SCHEDULER_ENV}=tcp://host:8786")
    try:
        from distributed import Client
    except ImportError:
        raise RuntimeError("Dask is not installed: pip install 'pmdash[dask]'") from None
    return Client(address)


@dataclass(frozen=True)
class Partition:
    """A block of accounts: rows ``first_row`` … of the population."""

    account_ids: np.ndarray
    quantities: sparse.csr_matrix
    cash: np.ndarray
    first_row: int

    def __len__(self) -> int:
        return len(self.account_ids)


@dataclass(frozen=True)
class ClusterPopulation:
    """A population held by the workers: ``parts`` are futures of :class:`Partition`."""

    client: Any  # distributed.Client
    instruments: tuple
    parts: tuple
    sizes: tuple[int, ...]

    def __len__(self) -> int:
        return sum(self.sizes)


def _bounds(n: int, n_partitions: int) -> np.ndarray:
    return np.linspace(0, n, max(1, min(n_partitions, n)) + 1).round().astype(int)


def _n_partitions(client, n_partitions: int | None) -> int:
    return n_partitions or 2 * max(1, len(client.scheduler_info()["workers"]))


def scatter_population(client, pop: Population, n_partitions: int | None = None) -> ClusterPopulation:
    """Split ``pop`` into contiguous blocks (default two per worker) and place them on the workers."""
    edges = _bounds(len(pop), _n_partitions(client, n_partitions))
    parts = [Partition(pop.account_ids[a:b], pop.quantities[a:b], pop.cash[a:b], int(a))
             for a, b in zip(edges[:-1], edges[1:], strict=True)]
    futures = client.scatter(parts, hash=False)
    return ClusterPopulation(client, pop.instruments, tuple(futures), tuple(len(p) for p in parts))


def _generate_part(market: Market, params: PopulationParams, first_row: int, model: str, margin_params):
    pop = generate_population(market, params, model, margin_params)
    ids = np.array([f"A{first_row + k:08d}" for k in range(len(pop))], dtype=object)
    return Partition(ids, pop.quantities, pop.cash, first_row)


#: Bytes a generated population keeps on the workers: per holding (CSR value and column index) and
#: per account (id string, cash, row pointer), measured on a 10⁶-account population.
BYTES_PER_HOLDING = 12
BYTES_PER_ACCOUNT = 100
#: Generating a block of BLOCK_ACCOUNTS accounts needs ~1.3 GB while it runs (numpy temporaries).
BLOCK_ACCOUNTS = 1_000_000
BLOCK_WORKING_BYTES = 1_500_000_000


def check_cluster_population(client, n_accounts: int, params: PopulationParams) -> None:
    """Refuse a population the cluster cannot hold (:class:`~engine.limits.BudgetError`): more
    than ``MAX_CLUSTER_ACCOUNTS`` accounts, or more memory than the workers have — the
    partitions (:data:`BYTES_PER_HOLDING`, :data:`BYTES_PER_ACCOUNT`) plus one block being
    generated per worker thread, against the workers' memory limits."""
    check_budget("MAX_CLUSTER_ACCOUNTS", n_accounts, "accounts on the Dask cluster", "fewer accounts")
    replace(params, n_accounts=min(n_accounts, BLOCK_ACCOUNTS)).validate()  # each block is generated as this
    workers = client.scheduler_info()["workers"].values()
    limit = sum(w.get("memory_limit") or 0 for w in workers)
    threads = sum(w.get("nthreads", 1) for w in workers)
    need = n_accounts * (params.positions * BYTES_PER_HOLDING + BYTES_PER_ACCOUNT) + threads * BLOCK_WORKING_BYTES
    if limit and need > limit:
        raise BudgetError(f"{n_accounts:,} accounts need about {need / 1e9:.1f} GB on the cluster, whose workers "
                          f"have {limit / 1e9:.1f} GB: fewer accounts or positions, or more workers")


def generate_on_cluster(client, market: Market, n_accounts: int, params: PopulationParams | None = None,
                        n_partitions: int | None = None, model: str = "risk_based",
                        margin_params=None) -> ClusterPopulation:
    """``n_accounts`` accounts generated on the workers, block k with ``params`` and seed
    ``params.seed·100,003 + k`` (a different population from one generated on one machine);
    refused up front if the cluster cannot hold them (:func:`check_cluster_population`)."""
    params = params or PopulationParams()
    check_cluster_population(client, n_accounts, params)
    n_partitions = max(_n_partitions(client, n_partitions), math.ceil(n_accounts / BLOCK_ACCOUNTS))
    edges = _bounds(n_accounts, n_partitions)
    blocks = list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))
    futures = [client.submit(_generate_part, market, replace(params, n_accounts=b - a, seed=params.seed * 100_003 + k),
                             a, model, margin_params, pure=False)
               for k, (a, b) in enumerate(blocks)]
    return ClusterPopulation(client, tuple(listed_instruments(market)), tuple(futures), tuple(b - a for a, b in blocks))


@dataclass(frozen=True)
class ClusterQueue:
    """The first ``top`` rows of the queue (``queue``), exact totals over every account, and where
    the time went (seconds): ``revaluation`` on the client, ``aggregation`` (sparse margining) and
    ``ranking`` (summed over the partitions and divided by the workers: the compute each worker
    did), ``merge`` on the client, ``transfer`` (the rest of the wall time: scheduling, the
    broadcast, results coming back, and waiting on the slowest worker).  ``ratio_counts``: every
    account binned by margin ratio (:func:`.queue.ratio_counts`, default bins)."""

    queue: QueueResult
    accounts: int
    liquidatable: int
    notional_usd: float
    shortfall_usd: float
    timings: dict
    ratio_counts: np.ndarray


def _queue_part(part: Partition, rev: Revaluation, top: int | None):
    t0 = time.perf_counter()
    margins = partition_margins(rev, part.quantities, part.cash)
    t1 = time.perf_counter()
    frame = queue_rows(part.account_ids, margins, top)
    equity, _, mm, _ = margins
    counts = ratio_counts(margin_ratio(equity, mm), equity < mm)
    t2 = time.perf_counter()
    return frame, liquidatable_amounts(margins), (t1 - t0, t2 - t1), counts


def cluster_queue(cpop: ClusterPopulation, market: Market, spot_shock=0.0, model: str = "risk_based",
                  params=None, top: int | None = DEFAULT_TOP) -> ClusterQueue:
    """:func:`.queue.margin_queue` on the cluster: the first ``top`` accounts (None: all)."""
    start = time.perf_counter()
    rev = revalue(cpop.instruments, market.with_spot_shock(spot_shock), model, params)
    t_rev = time.perf_counter()
    client = cpop.client
    shared = client.scatter(rev, broadcast=True, hash=False)
    results = client.gather([client.submit(_queue_part, p, shared, top, pure=False) for p in cpop.parts])
    t_back = time.perf_counter()
    frame = merge_queue([r[0] for r in results], top)
    amounts = [r[1] for r in results]
    end = time.perf_counter()
    workers = max(1, len(client.scheduler_info()["workers"]))
    aggregation = sum(r[2][0] for r in results) / workers
    ranking = sum(r[2][1] for r in results) / workers
    timings = {"revaluation": t_rev - start, "aggregation": aggregation, "ranking": ranking,
               "merge": end - t_back, "transfer": max(t_back - t_rev - aggregation - ranking, 0.0),
               "total": end - start}
    _, accounts, notional, shortfall = sweep_row(0.0, amounts)
    return ClusterQueue(QueueResult(float(np.mean(spot_shock)), frame), len(cpop), accounts, notional,
                        shortfall, timings, sum(r[3] for r in results))


def cluster_sweep(cpop: ClusterPopulation, market: Market, shocks, model: str = "risk_based",
                  params=None) -> pd.DataFrame:
    """:func:`.queue.liquidatable_vs_shock` on the cluster (one broadcast revaluation per level)."""
    client = cpop.client
    pending = []
    for s in np.asarray(shocks, dtype=float):
        rev = revalue(cpop.instruments, market.with_spot_shock(s), model, params)
        shared = client.scatter(rev, broadcast=True, hash=False)
        pending.append((s, [client.submit(_sweep_part, p, shared, pure=False) for p in cpop.parts]))
    return pd.DataFrame([sweep_row(s, client.gather(futures)) for s, futures in pending], columns=SWEEP_COLUMNS)


def _sweep_part(part: Partition, rev: Revaluation):
    return partition_sweep(rev, part.quantities, part.cash)


def _gross_part(part: Partition, units: np.ndarray) -> np.ndarray:
    return gross_units(part.quantities, units)


def _cascade_part(part: Partition, rev: Revaluation, closed: np.ndarray):
    alive = np.ones(len(part), dtype=bool)
    alive[closed] = False
    new, notional, unloaded = cascade_step(rev, part.quantities, part.cash, alive)
    return new, part.account_ids[new], notional, unloaded


def cluster_cascade(cpop: ClusterPopulation, market: Market, spot_shock: float, model: str = "risk_based",
                    params=None, cascade_params: CascadeParams | None = None) -> CascadeResult:
    """:func:`.queue.cascade` on the cluster: the per-round flow reduced across partitions."""
    cascade_params = cascade_params or CascadeParams()
    client = cpop.client
    units = cascade_units(cpop.instruments, market)
    grosses = client.gather([client.submit(_gross_part, p, units, pure=False) for p in cpop.parts])
    gross = np.array([math.fsum(col) for col in np.array(grosses).T])
    closed = [np.zeros(0, dtype=int) for _ in cpop.parts]

    def round_fn(rev: Revaluation):
        shared = client.scatter(rev, broadcast=True, hash=False)
        results = client.gather([client.submit(_cascade_part, p, shared, closed[k], pure=False)
                                 for k, p in enumerate(cpop.parts)])
        for k, (new, *_rest) in enumerate(results):
            closed[k] = np.concatenate([closed[k], new])
        return (np.concatenate([r[1] for r in results]), np.concatenate([r[2] for r in results]),
                np.concatenate([r[3] for r in results]))

    return run_cascade(cpop.instruments, market, spot_shock, gross, round_fn, model, params, cascade_params)


def main(argv=None) -> None:
    """``PMDASH_DASK_SCHEDULER=tcp://host:8786 python -m engine.liquidation.distributed --accounts
    10000000 --shock -0.1``: generate the population on the cluster, print the queue's head, totals
    and timings."""
    import argparse

    from ..samples import demo_market

    ap = argparse.ArgumentParser(description="The exchange liquidation queue on a Dask cluster.")
    ap.add_argument("--accounts", type=int, default=10_000_000)
    ap.add_argument("--positions", type=float, default=20.0, help="mean positions per account")
    ap.add_argument("--shock", type=float, default=0.0, help="spot shock, a fraction (-0.1 = -10 %%)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--top", type=int, default=20)
    args = ap.parse_args(argv)
    market = demo_market()
    with connect() as client:
        cpop = generate_on_cluster(client, market, args.accounts,
                                   PopulationParams(positions=args.positions, seed=args.seed))
        result = cluster_queue(cpop, market, args.shock, top=args.top)
    print(result.queue.accounts.to_string(index=False))
    print(f"accounts {result.accounts:,}  liquidatable {result.liquidatable:,}  notional {result.notional_usd:,.0f} USD"
          f"  shortfall {result.shortfall_usd:,.0f} USD")
    print("seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in result.timings.items()))


if __name__ == "__main__":
    main()
