"""Budgets on computations (engine/limits.py): each refuses past its limit with a message naming
the limit, and work within it runs as before.  The work counts are computed by hand here."""
import numpy as np
import pytest

from engine import analyze, limits
from engine.analysis import Settings
from engine.limits import BudgetError
from engine.liquidation.queue import (
    CascadeParams,
    PopulationParams,
    cascade,
    generate_population,
    liquidatable_vs_shock,
    margin_queue,
)
from engine.liquidation.replay import preset_path, replay
from engine.samples import demo_book


@pytest.fixture(scope="module")
def pop(market):
    return generate_population(market, PopulationParams(n_accounts=200, positions=5, seed=2))


def test_revaluation_count_by_hand():
    """41 × 13 × 4 cells + 81 profile points × (4 horizons + expiry curve + Greeks profile)."""
    assert Settings().revaluations(10) == 10 * (41 * 13 * 4 + 81 * 6)


def test_stress_budget_refuses_naming_the_limit(market):
    """The issue's case: 100 horizons on a 201 × 61 grid (1.2 M cells) for a 7-instrument book."""
    book = demo_book("desk_book")
    settings = Settings(spot_steps=201, vol_steps=61, horizons_days=tuple(float(h) for h in range(100)))
    assert settings.revaluations(len(book.instruments)) > limits.MAX_STRESS_REVALUATIONS
    with pytest.raises(BudgetError) as info:
        analyze(book, market, settings)
    assert "MAX_STRESS_REVALUATIONS = 25,000,000" in str(info.value)
    assert "horizons" in str(info.value)


def test_stress_budget_boundary(market, monkeypatch):
    book = demo_book("covered_call")
    settings = Settings(spot_steps=5, vol_steps=3, horizons_days=(0.0,), profile_steps=3)
    work = len(book.instruments) * (5 * 3 * 1 + 3 * 3)
    monkeypatch.setattr(limits, "MAX_STRESS_REVALUATIONS", work)
    assert analyze(book, market, settings).stress_result.pnl.shape == (5, 3, 1)
    monkeypatch.setattr(limits, "MAX_STRESS_REVALUATIONS", work - 1)
    with pytest.raises(BudgetError, match="MAX_STRESS_REVALUATIONS"):
        analyze(book, market, settings)


def test_replay_budget(market, monkeypatch):
    book = demo_book("covered_call")
    path = preset_path("crash_24h", steps=5)
    monkeypatch.setattr(limits, "MAX_REPLAY_REVALUATIONS", 5 * len(book) - 1)
    with pytest.raises(BudgetError, match="path points × positions .*MAX_REPLAY_REVALUATIONS"):
        replay(book, market, 1e6, path)
    monkeypatch.setattr(limits, "MAX_REPLAY_REVALUATIONS", 5 * len(book))
    assert len(replay(book, market, 1e6, path).path) == 5


def test_population_generator_budget():
    """1,000,000 accounts × 200 positions would be 200 M holdings (≈ 5 GB)."""
    with pytest.raises(BudgetError, match="MAX_ACCOUNT_POSITIONS"):
        PopulationParams(n_accounts=1_000_000, positions=200).validate()
    PopulationParams(n_accounts=1_000_000, positions=20).validate()


def test_exchange_budgets(market, pop, monkeypatch):
    nnz = pop.quantities.nnz
    monkeypatch.setattr(limits, "MAX_ACCOUNT_POSITIONS", nnz - 1)
    with pytest.raises(BudgetError, match="MAX_ACCOUNT_POSITIONS.*Dask"):
        margin_queue(pop, market)
    monkeypatch.setattr(limits, "MAX_ACCOUNT_POSITIONS", nnz)
    assert len(margin_queue(pop, market).accounts) == len(pop)
    monkeypatch.setattr(limits, "MAX_SWEEP_EVALUATIONS", 3 * nnz - 1)
    with pytest.raises(BudgetError, match="shock levels .*MAX_SWEEP_EVALUATIONS"):
        liquidatable_vs_shock(pop, market, [-0.1, 0.0, 0.1])
    with pytest.raises(BudgetError, match="cascade rounds .*MAX_SWEEP_EVALUATIONS"):
        cascade(pop, market, -0.2, cascade_params=CascadeParams(max_rounds=2))
    monkeypatch.setattr(limits, "MAX_SWEEP_EVALUATIONS", 3 * nnz)
    assert list(liquidatable_vs_shock(pop, market, [-0.1, 0.0, 0.1])["spot_shock"]) == [-0.1, 0.0, 0.1]
    assert np.isfinite(cascade(pop, market, -0.2, cascade_params=CascadeParams(max_rounds=2)).rounds["round"]).all()


def test_budget_error_is_a_value_error():
    """Callers that show ValueErrors to the user (the dashboard's forms) show these too."""
    assert issubclass(BudgetError, ValueError)
