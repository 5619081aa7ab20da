"""The per-edit recompute's fast paths against the one-snapshot-at-a-time reference.

* a kernel prepared once on a stack of moved snapshots gives, copy by copy, what the kernel
  prepared on each moved snapshot alone gives (every model);
* ``account_health``'s liquidation moves (grid in one batched call + brentq) equal a plain
  outward grid scan + brentq over one full revaluation per evaluated move, to 1e-6 relative, on
  every demo book, and equity = MM there;
* the plans of all policies prepared once equal each policy's plan prepared alone.
"""
import pickle

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq

from engine.liquidation.plan import POLICIES, PlanParams, account_state, prepared_plan, prepared_plans
from engine.margin import MODELS, account_book, margin_model
from engine.margin.account import account_health, marked_values, position_mtm
from engine.margin.core import evaluate, evaluate_stacked
from engine.samples import DEMO_BOOKS, demo_book, demo_market, random_book

MARKET = demo_market()
SHOCKS = np.array([-0.4, -0.1, 0.0, 0.05, 0.3])


@pytest.mark.parametrize("model", list(MODELS))
def test_stacked_kernel_equals_each_moved_snapshot(model):
    ab = account_book(random_book(60, seed=4, market=MARKET), MARKET)
    m = margin_model(model)
    stacked = m.prepare(ab.mb.universe.stacked(SHOCKS))
    rows = evaluate_stacked(stacked, ab.mb.net, len(SHOCKS))
    for k, s in enumerate(SHOCKS):
        alone = evaluate(m.prepare(ab.mb.universe.shocked(s)), ab.mb.net)
        np.testing.assert_allclose(rows[k], alone, rtol=1e-12, atol=1e-6)


def _reference_gap(book, collateral, model):
    """equity − MM (USD) at a move s: the book revalued and the model prepared on that snapshot
    alone (USD cash collateral)."""
    ab = account_book(book, MARKET, collateral)
    m = margin_model(model)

    def gap(s):
        uni = ab.mb.universe.shocked(s)
        mm = evaluate(ab.kernel(m.spec, m.params, uni), ab.mb.net)[1]
        return collateral + float(position_mtm(ab.mb, marked_values(uni, ab.feeds, s)).sum()) - mm
    return gap


def _reference_crossing(gap, end, steps=20):
    prev = 0.0
    for s in np.linspace(0.0, end, steps + 1)[1:]:
        if gap(s) <= 0.0:
            return brentq(gap, prev, s, xtol=1e-12)
        prev = s
    return None


@pytest.mark.parametrize("key", list(DEMO_BOOKS))
def test_liquidation_moves_equal_the_one_snapshot_search(key):
    book = demo_book(key)
    zero = account_health(book, MARKET, 0.0)
    # Healthy with equity 1.3 × MM: close enough to liquidation for crossings on most books.
    collateral = 1.3 * zero.maintenance - zero.equity
    h = account_health(book, MARKET, collateral)
    assert not h.liquidatable
    gap = _reference_gap(book, collateral, "risk_based")
    for end, found in ((-0.5, h.liquidation_shock_down), (0.5, h.liquidation_shock_up)):
        expected = _reference_crossing(gap, end)
        if expected is None:
            assert found is None
            continue
        assert found == pytest.approx(expected, rel=1e-6)
        assert abs(gap(found)) < 1e-6 * h.maintenance  # equity = MM at the liquidation price


def test_a_demo_book_has_crossings_on_both_sides():
    """The comparison above is not vacuous: the short strangle liquidates both ways."""
    book = demo_book("naked_short_strangle")
    zero = account_health(book, MARKET, 0.0)
    h = account_health(book, MARKET, 1.3 * zero.maintenance - zero.equity)
    assert h.liquidation_shock_down is not None and h.liquidation_shock_up is not None


@pytest.mark.parametrize("fraction", [0.7, 1.5])
def test_plans_prepared_once_equal_each_plan_alone(fraction):
    book = random_book(30, seed=5, market=MARKET)
    health = account_health(book, MARKET, 0.0)
    state = account_state(book, MARKET, fraction * health.maintenance - health.equity)
    together = prepared_plans(state, MARKET, "risk_based", params=PlanParams(max_steps=40))
    for p in POLICIES:
        alone = prepared_plan(state, MARKET, "risk_based", params=PlanParams(max_steps=40), policy=p)
        assert together[p].status == alone.status and together[p].equity_after == alone.equity_after
        pd.testing.assert_frame_equal(together[p].steps, alone.steps)


def test_account_state_on_the_analysis_arrays_equals_its_own():
    from engine import analyze

    book = random_book(100, seed=6, market=MARKET)
    arrays = analyze(book, MARKET).arrays
    own, reused = account_state(book, MARKET, 1e5), account_state(book, MARKET, 1e5, arrays=arrays)
    assert reused.arrays is arrays  # the book holds every perpetual: the arrays were reused
    assert own.instruments == reused.instruments and own.cash == pytest.approx(reused.cash, rel=1e-12)
    np.testing.assert_array_equal(own.quantities, reused.quantities)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("short", [False, True])
@pytest.mark.parametrize("fraction", [1.05, 1.3, 2.0])
def test_liquidation_moves_on_random_books(seed, short, fraction):
    """Long- and short-gamma books, close to and far from liquidation: the coarse-first search
    finds what the plain grid scan finds."""
    from dataclasses import replace

    from engine.portfolio import Book

    book = random_book(40, seed=seed, market=MARKET)
    if short:
        book = Book(tuple(replace(p, quantity=-p.quantity) for p in book.positions), "short")
    zero = account_health(book, MARKET, 0.0)
    collateral = fraction * zero.maintenance - zero.equity
    h = account_health(book, MARKET, collateral)
    gap = _reference_gap(book, collateral, "risk_based")
    for end, found in ((-0.5, h.liquidation_shock_down), (0.5, h.liquidation_shock_up)):
        expected = _reference_crossing(gap, end)
        assert (found is None) == (expected is None)
        if expected is not None:
            assert found == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("steps", [1, 3, 7, 10])
def test_liquidation_moves_with_other_grid_sizes(steps):
    """A grid that is not a multiple of the coarse stride keeps its last point among the coarse ones."""
    book = demo_book("naked_short_strangle")
    zero = account_health(book, MARKET, 0.0)
    collateral = 1.3 * zero.maintenance - zero.equity
    h = account_health(book, MARKET, collateral, search_steps=steps)
    gap = _reference_gap(book, collateral, "risk_based")
    for end, found in ((-0.5, h.liquidation_shock_down), (0.5, h.liquidation_shock_up)):
        expected = _reference_crossing(gap, end, steps)
        assert (found is None) == (expected is None)
        if expected is not None:
            assert found == pytest.approx(expected, rel=1e-6)


def test_analysis_on_arrays_kept_from_before_a_quantity_edit_equals_a_fresh_one():
    """The dashboard keeps the vectorised instruments across edits of quantities: the analysis of
    the edited book on them is the analysis computed from scratch."""
    from dataclasses import replace

    from engine import analyze
    from engine.analysis import revalue
    from engine.market import STICKY_STRIKE
    from engine.portfolio import Book
    from engine.scenarios import instrument_arrays

    book = random_book(60, seed=4, market=MARKET)
    kept = instrument_arrays(book.instruments, MARKET)
    edited = Book(tuple(replace(p, quantity=p.quantity * (k % 3 - 1.5)) for k, p in enumerate(book.positions)))
    fresh, reused = analyze(edited, MARKET), analyze(edited, MARKET, arrays=kept)
    revalued = analyze(edited, MARKET, revaluation=revalue(book, MARKET, arrays=kept))
    assert reused.arrays is kept and revalued.arrays is kept
    for other in (reused, revalued):
        np.testing.assert_allclose(other.stress_result.pnl, fresh.stress_result.pnl, rtol=1e-12, atol=1e-6)
        pd.testing.assert_frame_equal(other.positions, fresh.positions)
        pd.testing.assert_frame_equal(other.payoff, fresh.payoff)
        pd.testing.assert_frame_equal(other.profile, fresh.profile)
        assert other.totals == fresh.totals and other.breakevens == fresh.breakevens
    with pytest.raises(ValueError, match="other settings"):
        analyze(edited, MARKET, {"spot_steps": 21}, revaluation=revalue(book, MARKET))
    smaller = Book(edited.positions[:-1])
    if smaller.instruments != edited.instruments:
        with pytest.raises(ValueError, match="rebuild"):
            analyze(smaller, MARKET, arrays=kept)
    with pytest.raises(ValueError, match="rebuild"):
        analyze(edited, MARKET, {"sticky": STICKY_STRIKE}, arrays=kept)


@pytest.mark.parametrize("account", [
    {"cash": 2e6},
    {"cash": 0.0, "denomination": "BTC", "collateral": [{"asset": "BTC", "amount": 60.0, "underlying": "BTC"}]},
])
def test_health_on_a_model_prepared_before_a_quantity_edit_equals_a_fresh_one(account):
    """The dashboard keeps the account's prepared model across edits of quantities: health and
    header figures on it equal those computed from scratch, liquidation prices included."""
    from dataclasses import replace

    from engine.account import load_account
    from engine.margin.account import account_model, account_requirement
    from engine.portfolio import Book

    book = demo_book("naked_short_strangle")
    prepared = account_model(book, MARKET, account, "risk_based")
    for factor in (1.0, 3.0, 8.0):
        if factor == 3.0:  # a shared cache (Redis, files) hands back a pickled copy
            prepared = pickle.loads(pickle.dumps(prepared))
        edited = Book(tuple(replace(p, quantity=p.quantity * factor) for p in book.positions))
        fresh = account_health(edited, MARKET, account, "risk_based")
        kept = account_health(edited, MARKET, account, "risk_based", prepared=prepared)
        for name in ("equity", "initial", "maintenance", "collateral"):
            assert getattr(kept, name) == pytest.approx(getattr(fresh, name), rel=1e-12)
        for side in ("liquidation_shock_down", "liquidation_shock_up"):
            a, b = getattr(kept, side), getattr(fresh, side)
            assert (a is None and b is None) or a == pytest.approx(b, rel=1e-9, abs=1e-12)
        assert account_requirement(edited, MARKET, account, "risk_based", prepared=prepared) == pytest.approx(
            (fresh.equity, fresh.initial, fresh.maintenance), rel=1e-12)
    assert any(getattr(account_health(Book(tuple(replace(p, quantity=p.quantity * 8.0) for p in book.positions)),
                                      MARKET, account, "risk_based", prepared=prepared), s) is not None
               for s in ("liquidation_shock_down", "liquidation_shock_up"))
    if not load_account(account).is_coin_margined:  # a USD account's stacks are prepared once, then reused
        calls = []
        prepared = account_model(book, MARKET, account, "risk_based").warmed()
        prepare = prepared._prepare
        prepared._prepare = lambda shocks: calls.append(len(shocks)) or prepare(shocks)
        account_health(book, MARKET, account, "risk_based", prepared=prepared)
        account_requirement(book, MARKET, account, "risk_based", prepared=prepared)
        assert 11 not in calls and 1 not in calls  # (the healthy book needs no single-move root search)
    with pytest.raises(ValueError, match="another account"):
        account_health(book, MARKET, {"cash": 1.0}, "risk_based", prepared=prepared)
    with pytest.raises(ValueError, match="another account"):
        account_health(book, MARKET, account, "span", prepared=prepared)
    with pytest.raises(ValueError, match="rebuild"):
        account_health(demo_book("covered_call"), MARKET, account, "risk_based", prepared=prepared)
