"""Exchange scale: the 1,000,000-account queue on one machine and on a 2-worker Dask LocalCluster.

Run: python -m pytest tests/benchmarks/bench_exchange_scale.py --benchmark-only -p no:cacheprovider -o addopts="" -s
Target (2-core machine): one machine < 2 s.  Each benchmark records how its time splits in
``extra_info`` (printed with -s): revaluation (the listing under the shocked market, once),
aggregation (sparse margining of the accounts), ranking (sort + frame), and for the cluster the
merge on the client and the transfer (scheduling, broadcast, results coming back).  The
population (~18.5 M holdings) is generated and scattered to the workers outside the timing.
"""
import os
import time
from pathlib import Path

import pytest

from engine.liquidation.queue import (
    PopulationParams,
    generate_population,
    margin_queue,
    merge_queue,
    partition_margins,
    queue_rows,
    revalue,
)
from engine.samples import demo_market

MARKET = demo_market()
SHOCK = -0.1
N_ACCOUNTS = 1_000_000


@pytest.fixture(scope="module")
def population():
    return generate_population(MARKET, PopulationParams(n_accounts=N_ACCOUNTS, positions=20.0, seed=1))


def _split_single(pop):
    t0 = time.perf_counter()
    rev = revalue(pop.instruments, MARKET.with_spot_shock(SHOCK))
    t1 = time.perf_counter()
    margins = partition_margins(rev, pop.quantities, pop.cash)
    t2 = time.perf_counter()
    merge_queue([queue_rows(pop.account_ids, margins)])
    t3 = time.perf_counter()
    return {"revaluation": t1 - t0, "aggregation": t2 - t1, "ranking": t3 - t2}


def test_queue_1m_single_machine(benchmark, population):
    result = benchmark.pedantic(margin_queue, args=(population, MARKET, SHOCK), rounds=5, iterations=1)
    assert len(result.accounts) == N_ACCOUNTS
    benchmark.extra_info.update(holdings=int(population.quantities.nnz), **_split_single(population))
    print("\nsingle machine split (s):", {k: round(v, 3) for k, v in benchmark.extra_info.items()})


@pytest.fixture(scope="module")
def cluster_population(population):
    distributed = pytest.importorskip("distributed")
    from engine.liquidation.distributed import scatter_population
    # Worker processes import this checkout's engine, not an installed one.
    root = str(Path(__file__).resolve().parents[2])
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        yield scatter_population(client, population, n_partitions=2)


def test_queue_1m_two_worker_cluster(benchmark, cluster_population):
    from engine.liquidation.distributed import cluster_queue
    result = benchmark.pedantic(cluster_queue, args=(cluster_population, MARKET, SHOCK), kwargs={"top": 10_000},
                                rounds=3, iterations=1)
    assert result.accounts == N_ACCOUNTS and len(result.queue.accounts) == 10_000
    benchmark.extra_info.update(result.timings)
    print("\ncluster split (s):", {k: round(v, 3) for k, v in result.timings.items()})
