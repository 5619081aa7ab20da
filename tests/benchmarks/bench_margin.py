"""Margin engine benchmarks: every model, and all five together, on random books.

Run: python -m pytest tests/benchmarks/bench_margin.py --benchmark-only -p no:cacheprovider -o addopts=""
Targets (2-core machine): all five models < 50 ms median for 500 positions, < 500 ms for 10,000
(``random_book(n, seed=1)``).  Each timed call vectorises the book, prepares the model(s) and
builds the full result, per-position attribution included.
"""
import pytest

from engine.margin import MODELS, compute, compute_all
from engine.samples import demo_market, random_book

MARKET = demo_market()
BOOKS = {n: random_book(n, seed=1, market=MARKET) for n in (500, 10_000)}


@pytest.mark.parametrize("n", [500, 10_000])
def test_all_five_models(benchmark, n):
    results = benchmark(compute_all, BOOKS[n], MARKET)
    assert set(results) == set(MODELS)


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("n", [500, 10_000])
def test_one_model(benchmark, n, model):
    result = benchmark(compute, BOOKS[n], MARKET, model)
    assert result.initial >= result.maintenance >= 0.0
