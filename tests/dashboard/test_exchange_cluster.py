"""Exchange page on a Dask cluster: with only ``PMDASH_DASK_SCHEDULER`` set, a generated population
above one machine's cap is generated and margined on the cluster (dashboard/stores/exchange.py), and
the page shows what the one-machine engine gives on the same population (its blocks, rebuilt
here and margined with engine.liquidation.queue)."""
import sys

import numpy as np
import pytest
from components import text_of
from scipy import sparse

pytest.importorskip("distributed")
from distributed import LocalCluster  # noqa: E402

from dashboard.stores import exchange as ex  # noqa: E402
from dashboard.stores import session as state  # noqa: E402
from dashboard.stores.account import default_account  # noqa: E402
from engine.limits import BudgetError  # noqa: E402
from engine.liquidation import distributed as dist  # noqa: E402
from engine.liquidation.queue import (  # noqa: E402
    Population,
    PopulationParams,
    cascade,
    generate_population,
    liquidatable_vs_shock,
    margin_queue,
)

#: The one-machine cap is lowered so that a small population goes to the cluster.
CAP = 500
SETTINGS = dict(ex.DEFAULT_SETTINGS, n_accounts=1_300, seed=5, spot_shock=-0.15, top_n=40)


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as c:
        yield c


@pytest.fixture
def configured(cluster, monkeypatch):
    """The one variable set to the cluster's scheduler; the page's cluster state reset."""
    monkeypatch.setenv(dist.SCHEDULER_ENV, cluster.scheduler_address)
    monkeypatch.setattr(ex, "MAX_ACCOUNTS", CAP)
    monkeypatch.setattr(ex, "_cluster", {})
    yield
    client = ex._cluster.get("client")
    if client is not None:
        client.close()


@pytest.fixture(scope="module")
def page(app_context):
    return sys.modules["dashboard.pages.exchange"]


def _same_population(market, settings, sizes) -> Population:
    """The cluster's population rebuilt on one machine: block k generated with seed·100,003 + k."""
    blocks, first = [], 0
    for k, size in enumerate(sizes):
        pop = generate_population(market, PopulationParams(n_accounts=size, seed=settings["seed"] * 100_003 + k))
        blocks.append((np.array([f"A{first + j:08d}" for j in range(size)], dtype=object), pop))
        first += size
    return Population(np.concatenate([ids for ids, _ in blocks]), blocks[0][1].instruments,
                      sparse.vstack([p.quantities for _, p in blocks], format="csr"),
                      np.concatenate([p.cash for _, p in blocks]), np.concatenate([p.collateral for _, p in blocks]))


def test_scheduler_raises_the_cap_to_ten_million(configured, monkeypatch):
    assert ex.max_accounts() == 10_000_000
    outcome = ex.settings_from_controls(10_000_000, 0, -10, 100, 3, 0.2, 30)
    assert outcome.data["n_accounts"] == 10_000_000 and not outcome.problems
    outcome = ex.settings_from_controls(25_000_000, 0, -10, 100, 3, 0.2, 30)
    assert outcome.data["n_accounts"] == 10_000_000 and "capped at 10,000,000" in outcome.problems[0]
    monkeypatch.delenv(dist.SCHEDULER_ENV)
    assert ex.max_accounts() == CAP and ex.settings_from_controls(10_000_000, 0, -10, 100, 3, 0.2, 30).data[
        "n_accounts"] == CAP


def test_queue_view_runs_on_the_cluster_and_equals_one_machine(configured, page):
    _, market, _ = state.default_stores()
    account = default_account()
    note, cards, rows, histogram = page.queue_view("generated", SETTINGS, None, market, account)
    cpop = ex._cluster["population"]
    assert note == "" and isinstance(cpop, dist.ClusterPopulation) and len(cpop) == SETTINGS["n_accounts"]
    market_obj = state.market_of(market)
    pop = _same_population(market_obj, SETTINGS, cpop.sizes)
    local = margin_queue(pop, market_obj, SETTINGS["spot_shock"]).accounts
    assert [r["account"] for r in rows] == list(local["account"].head(SETTINGS["top_n"]))
    assert [r["equity"] for r in rows] == list(local["equity"].head(SETTINGS["top_n"]))
    n_liq = int(local["liquidatable"].sum())
    assert f"{n_liq:,}" in text_of(cards) and f"{len(local):,}" in text_of(cards)
    healthy, liquidatable = histogram.data
    assert sum(healthy.y) + sum(liquidatable.y) == len(local) and sum(liquidatable.y) == n_liq
    # The sweep and the cascade run on the same cluster population.
    sweep = ex.sweep("generated", SETTINGS, None, market, account)
    expected = liquidatable_vs_shock(pop, market_obj, ex.SHOCK_GRID)
    assert list(sweep["accounts"]) == list(expected["accounts"])
    result = ex.cascade_result("generated", SETTINGS, None, market, account)
    assert list(result.liquidated) == list(cascade(pop, market_obj, SETTINGS["spot_shock"],
                                                   cascade_params=ex.cascade_params(SETTINGS)).liquidated)
    assert ex._cluster["population"] is cpop  # generated once for the three views


def test_a_population_within_the_cap_stays_on_this_machine(configured, page):
    _, market, _ = state.default_stores()
    small = dict(SETTINGS, n_accounts=CAP)
    page.queue_view("generated", small, None, market, default_account())
    assert ex._cluster == {}


class _TwoWorkers:
    """A client whose scheduler reports two workers of 2 GB, one thread each."""

    @staticmethod
    def scheduler_info():
        return {"workers": {w: {"memory_limit": 2_000_000_000, "nthreads": 1} for w in ("a", "b")}}


def test_cluster_refuses_what_it_cannot_hold():
    with pytest.raises(BudgetError, match="MAX_CLUSTER_ACCOUNTS"):
        dist.check_cluster_population(_TwoWorkers(), 10_000_001, PopulationParams())
    # 4 GB: two 1.5 GB blocks being generated, and 20 × 12 + 100 = 340 bytes per account:
    # 2,000,000 accounts take 0.68 GB (fits), 3,000,000 take 1.02 GB (does not).
    dist.check_cluster_population(_TwoWorkers(), 2_000_000, PopulationParams())
    with pytest.raises(BudgetError, match="4.0 GB on the cluster, whose workers have 4.0 GB"):
        dist.check_cluster_population(_TwoWorkers(), 3_000_000, PopulationParams())


def test_unreachable_scheduler_is_a_message(monkeypatch, page):
    monkeypatch.setenv(dist.SCHEDULER_ENV, "tcp://127.0.0.1:9")
    monkeypatch.setattr(ex, "MAX_ACCOUNTS", CAP)
    monkeypatch.setattr(ex, "_cluster", {})
    monkeypatch.setattr(dist, "connect", lambda: (_ for _ in ()).throw(OSError("Timed out trying to connect")))
    _, market, _ = state.default_stores()
    note, *_ = page.queue_view("generated", dict(SETTINGS, seed=99), None, market, default_account())
    assert "not reachable" in text_of(note) and "Timed out" in text_of(note)
