"""Liquidation engine benchmarks.

Run: python -m pytest tests/benchmarks/bench_liquidation.py --benchmark-only -p no:cacheprovider -o addopts=""
Targets (2-core machine): the exchange queue — 100,000 accounts of ~20 positions margin-checked
with the risk-based model and ranked — in < 5 s; a liquidation plan for a 200-position book in
< 1 s.  The population is generated once outside the timing; the queue timing includes revaluing
the listing under every scenario, the sparse aggregation and the ranking.
"""
import pytest

from engine.liquidation.plan import liquidation_plan
from engine.liquidation.queue import PopulationParams, generate_population, margin_queue
from engine.margin.account import account_health
from engine.samples import demo_market, random_book

MARKET = demo_market()


@pytest.fixture(scope="module")
def population():
    return generate_population(MARKET, PopulationParams(n_accounts=100_000, positions=20.0, seed=1))


@pytest.mark.parametrize("shock", [0.0, -0.15])
def test_queue_100k_accounts(benchmark, population, shock):
    result = benchmark.pedantic(margin_queue, args=(population, MARKET, shock), rounds=5, iterations=1)
    assert len(result.accounts) == 100_000


@pytest.mark.parametrize("fraction", [0.9, 0.5])
def test_plan_200_positions(benchmark, fraction):
    """Equity at ``fraction`` of MM: 0.9 needs a short plan, 0.5 a long one."""
    book = random_book(200, seed=3, market=MARKET)
    health = account_health(book, MARKET, 0.0)
    collateral = fraction * health.maintenance - health.equity
    plan = benchmark.pedantic(liquidation_plan, args=(book, MARKET, collateral), rounds=5, iterations=1)
    assert plan.status == "healthy"
