"""The exchange queue, sweep and cascade on a Dask LocalCluster give the single-machine results on
the same population (engine/liquidation/distributed.py, docs/methodology.md §7).

The reference is engine.liquidation.queue run on one machine; the cluster splits the accounts into
blocks of uneven sizes, so any dependence on the split would show.
"""
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")
from distributed import Client, LocalCluster  # noqa: E402

from engine.liquidation import distributed as dist  # noqa: E402
from engine.liquidation.queue import (  # noqa: E402
    CascadeParams,
    PopulationParams,
    cascade,
    generate_population,
    liquidatable_vs_shock,
    margin_queue,
)


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def pop(market):
    return generate_population(market, PopulationParams(n_accounts=800, positions=6, seed=21))


@pytest.fixture(scope="module")
def cpop(client, pop):
    return dist.scatter_population(client, pop, n_partitions=3)


def test_partitions_cover_the_population(cpop, pop):
    assert sum(cpop.sizes) == len(cpop) == len(pop) and len(cpop.sizes) == 3


@pytest.mark.parametrize("shock", [0.0, -0.2])
def test_queue_identical(market, pop, cpop, shock):
    local = margin_queue(pop, market, shock).accounts
    remote = dist.cluster_queue(cpop, market, shock, top=None)
    pd.testing.assert_frame_equal(remote.queue.accounts, local, check_exact=True)
    liq = local[local["liquidatable"]]
    assert remote.liquidatable == len(liq) and remote.accounts == len(pop)
    assert remote.notional_usd == pytest.approx(liq["notional_usd"].sum(), rel=1e-12)
    assert remote.shortfall_usd == pytest.approx((liq["mm"] - liq["equity"]).sum(), rel=1e-12)
    assert set(remote.timings) == {"revaluation", "aggregation", "ranking", "merge", "transfer", "total"}


def test_top_k_merge_is_the_head_of_the_full_queue(market, pop, cpop):
    """Each partition sends only its first k; the merge still gives the global first k."""
    local = margin_queue(pop, market, -0.1).accounts
    for k in (1, 7, 500):
        remote = dist.cluster_queue(cpop, market, -0.1, top=k).queue.accounts
        pd.testing.assert_frame_equal(remote, local.head(k), check_exact=True)


def test_ties_keep_population_order(market, client):
    """Accounts with identical books tie on ratio and notional: both paths keep row order."""
    base = generate_population(market, PopulationParams(n_accounts=5, positions=3, seed=4))
    rows = np.tile(np.arange(5), 4)  # 20 accounts, each book appearing 4 times
    from engine.liquidation.queue import Population
    twins = Population(np.array([f"T{k:02d}" for k in range(20)], dtype=object), base.instruments,
                       base.quantities[rows], base.cash[rows], base.collateral[rows])
    local = margin_queue(twins, market, -0.1).accounts
    remote = dist.cluster_queue(dist.scatter_population(client, twins, 3), market, -0.1, top=None).queue.accounts
    assert list(remote["account"]) == list(local["account"])


def test_sweep_identical(market, pop, cpop):
    shocks = [-0.3, -0.1, 0.0, 0.25]
    local = liquidatable_vs_shock(pop, market, shocks)
    remote = dist.cluster_sweep(cpop, market, shocks)
    pd.testing.assert_frame_equal(remote, local, check_exact=True)


def test_cascade_identical(market, pop, cpop):
    params = CascadeParams(impact_k=3.0, turnover=0.05)
    local = cascade(pop, market, -0.2, cascade_params=params)
    remote = dist.cluster_cascade(cpop, market, -0.2, cascade_params=params)
    assert len(local.rounds) > 2  # a real cascade, several rounds
    assert list(remote.liquidated) == list(local.liquidated)
    pd.testing.assert_frame_equal(remote.rounds, local.rounds, rtol=1e-12)
    assert remote.final_shock == pytest.approx(local.final_shock, rel=1e-12)


def test_generate_on_cluster(market, client):
    """Blocks are generated on the workers with their own seeds; ids are global and unique."""
    cpop = dist.generate_on_cluster(client, market, 2_001, PopulationParams(positions=5, seed=3), n_partitions=2)
    result = dist.cluster_queue(cpop, market, -0.1, top=50)
    assert result.accounts == 2_001 and len(result.queue.accounts) == 50
    parts = client.gather(list(cpop.parts))
    ids = np.concatenate([p.account_ids for p in parts])
    assert len(set(ids)) == 2_001 and ids[0] == "A00000000" and ids[-1] == "A00002000"


def test_connect_needs_an_address(monkeypatch):
    monkeypatch.delenv(dist.SCHEDULER_ENV, raising=False)
    assert dist.scheduler_address() is None
    with pytest.raises(RuntimeError, match=dist.SCHEDULER_ENV):
        dist.connect()
    monkeypatch.setenv(dist.SCHEDULER_ENV, " tcp://10.0.0.1:8786 ")
    assert dist.scheduler_address() == "tcp://10.0.0.1:8786"


def test_command_line_runs_on_the_configured_scheduler(client, monkeypatch, capsys):
    """One variable: the scheduler address; the population is generated on the workers."""
    monkeypatch.setenv(dist.SCHEDULER_ENV, client.scheduler.address)
    dist.main(["--accounts", "400", "--positions", "3", "--top", "3", "--shock", "-0.1"])
    out = capsys.readouterr().out
    assert "accounts 400" in out and "aggregation" in out and "A00000" in out
