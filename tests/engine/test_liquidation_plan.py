"""Liquidation plan, execution costs and replay (docs/methodology.md §7).

Expected figures are worked by hand from the cost law and the standard-margin rates, or are
properties every plan must have (MM falls at every optimised step, equity falls by exactly the
costs paid, the optimised plan is no dearer than the naive orders on the demo books).
"""
import math

import numpy as np
import pandas as pd
import pytest

from engine.instruments import parse_instrument
from engine.liquidation.costs import CostParams, cost_model
from engine.liquidation.plan import (
    BANKRUPT,
    HEALTHY,
    POLICIES,
    PlanInputs,
    PlanParams,
    account_state,
    compare_plans,
    compare_policies,
    liquidation_plan,
    plan_liquidation,
)
from engine.liquidation.replay import PRESET_PATHS, preset_path, replay, validate_path
from engine.margin import compute, margin_model
from engine.margin.account import account_health
from engine.market import STICKY_MONEYNESS
from engine.portfolio import Book, Position
from engine.samples import DEMO_BOOKS, demo_book
from engine.scenarios import instrument_arrays, instrument_greeks, instrument_values


def _book(*rows):
    return Book(tuple(Position(parse_instrument(n), q, e) for n, q, e in rows))


def _atm_30d(market, und="BTC"):
    T = 30 / 365
    F = market.forward(und, T)
    return float(np.ravel(market.vol(und, F, T, F))[0])


def test_perp_cost_by_hand(market):
    """Perp: half-spread 2 bp of price, impact k·σ/√365·S·√(q/ADV), fee 0.5 % of notional."""
    arr = instrument_arrays([parse_instrument("BTC-PERPETUAL")], market)
    marks = instrument_values(arr)
    deltas = instrument_greeks(arr)["delta"]
    sigma = _atm_30d(market)
    costs = cost_model(arr, marks, deltas, np.array([sigma]), CostParams())
    S = 95_000.0
    adv = 1.5e9 / S
    per_contract_4 = 2e-4 * S + 1.0 * sigma / math.sqrt(365) * S * math.sqrt(4 / adv) + 0.005 * S
    assert costs.trade_cost(np.array([0]), np.array([-4.0]))[0] == pytest.approx(4 * per_contract_4, rel=1e-12)


def test_option_fee_capped_at_mark(market):
    """A far OTM option's fee is capped at its mark (docs/methodology.md §7)."""
    inst = parse_instrument("BTC-27NOV26-150000-C")
    arr = instrument_arrays([inst], market)
    marks = instrument_values(arr)
    costs = cost_model(arr, marks, instrument_greeks(arr)["delta"], np.array([0.55]), CostParams())
    assert marks[0] < 0.002 * 95_000
    assert costs.fee[0] == pytest.approx(marks[0])


def test_cost_overrides_and_validation(market):
    arr = instrument_arrays([parse_instrument("BTC-PERPETUAL")], market)
    marks = instrument_values(arr)
    p = CostParams().with_override("BTC-PERPETUAL", half_spread=0.0, fee_rate=0.0, k=0.0)
    costs = cost_model(arr, marks, np.ones(1), np.array([0.5]), p)
    assert costs.trade_cost(np.array([0]), np.array([3.0]))[0] == 0.0
    with pytest.raises(ValueError, match="impact k"):
        CostParams(impact_k=-1).validate()


def test_short_perp_plan_by_hand(market):
    """10 short perps, standard MM 1 % of notional = 9,500; collateral 9,000 (equity 9,000).

    Closing q contracts costs c(q) = q·(19 + σ_d·S·√(q/ADV) + 475) USD and lowers MM by 950·q.
    Step 1: closing one chunk (1 contract, best relief per cost) leaves equity 9,000 − c(1) ≈ 8,484
    under MM 8,550.  Step 2: the hedge chunk (10 % of the remaining delta, 0.9) already restores
    the account — MM 0.01·95,000·8.1 = 7,695 ≤ 9,000 − c(1) − c(0.9) — and costs less than a
    full 1-contract chunk, so the plan takes it.
    """
    book = _book(("BTC-PERPETUAL", -10.0, 95_000.0))
    S, sigma = 95_000.0, _atm_30d(market)

    def c(q):
        return q * (2e-4 * S + sigma / math.sqrt(365) * S * math.sqrt(q / (1.5e9 / S)) + 0.005 * S)

    assert 9_000.0 - c(1.0) < 8_550.0 and 9_000.0 - c(1.0) - c(0.9) >= 7_695.0
    plan = liquidation_plan(book, market, 9_000.0, model="standard")
    assert plan.mm_before == pytest.approx(9_500.0)
    assert plan.status == HEALTHY
    assert list(plan.steps["quantity"]) == pytest.approx([1.0, 0.9])
    assert plan.equity_after == pytest.approx(9_000.0 - c(1.0) - c(0.9))
    assert plan.mm_after == pytest.approx(7_695.0)
    # Buying back the short perp pays the mark plus the cost per contract.
    mark = 95_000.0
    assert list(plan.steps["price"]) == pytest.approx([mark + c(1.0), mark + c(0.9) / 0.9])


def test_healthy_account_needs_no_plan(market):
    book = demo_book("covered_call")
    plan = liquidation_plan(book, market, 1e7)
    assert plan.status == HEALTHY and plan.steps.empty and plan.total_cost == 0


def _under_water(book, market, fraction):
    """Collateral that puts equity at ``fraction`` of MM (risk-based, deribit preset)."""
    h = account_health(book, market, 0.0)
    return fraction * h.maintenance - h.equity


@pytest.mark.parametrize("key", ["desk_book", "naked_short_strangle", "calendar_spread", "risk_reversal"])
def test_plan_properties(market, key):
    book = demo_book(key)
    plan = liquidation_plan(book, market, _under_water(book, market, 0.6))
    steps = plan.steps.groupby("step").agg(mm=("mm_after", "last"), cost=("cost", "sum"),
                                           equity=("equity_after", "last"))
    mm_path = np.r_[plan.mm_before, steps["mm"].to_numpy()]
    assert (np.diff(mm_path) < 0).all(), "an optimised step raised MM"
    assert plan.status == HEALTHY and plan.equity_after >= plan.mm_after
    # Equity falls by exactly the execution costs (market held fixed).
    assert plan.equity_before - plan.equity_after == pytest.approx(plan.total_cost, rel=1e-9)
    assert (plan.steps["cost"] > 0).all()
    # Chunked reductions only touch positions the book had; the plan's own hedges are not churned.
    reduced = set(plan.steps.loc[plan.steps["action"] != "hedge", "instrument"])
    assert reduced <= {p.name for p in book.positions}
    # The independent margin engine agrees on the book that is left.
    state = account_state(book, market, 0.0)
    left = Book(tuple(Position(i, float(q), None) for i, q in zip(state.instruments, plan.quantities_after, strict=True)
                      if abs(q) > 1e-12))
    assert compute(left, market, "risk_based").maintenance == pytest.approx(plan.mm_after, rel=1e-9)


@pytest.mark.parametrize("key", list(DEMO_BOOKS))
@pytest.mark.parametrize("fraction", [0.6, 0.9])
def test_optimised_no_dearer_than_naive_orders_on_demo_books(market, key, fraction):
    book = demo_book(key)
    table = compare_policies(book, market, _under_water(book, market, fraction)).set_index("policy")
    assert table.loc["optimised", "status"] == HEALTHY
    for naive in ("largest_notional", "futures_first"):
        if table.loc[naive, "status"] == HEALTHY:
            assert table.loc["optimised", "cost"] <= table.loc[naive, "cost"] + 1e-6


def test_bankrupt_account_draws_insurance_fund(market):
    """Equity below zero: the deficit goes to the fund first, the rest is socialised."""
    book = demo_book("naked_short_strangle")
    h = account_health(book, market, 0.0)
    collateral = -h.equity - 50_000.0  # equity −50,000
    plan = liquidation_plan(book, market, collateral, params=PlanParams(insurance_fund=20_000.0))
    assert plan.status == BANKRUPT
    assert plan.deficit == pytest.approx(50_000.0)
    assert plan.insurance_fund_used == pytest.approx(20_000.0)
    assert plan.socialised_loss == pytest.approx(30_000.0)


def test_plan_params_validation():
    with pytest.raises(ValueError, match="chunk"):
        PlanParams(chunk=0).validate()
    with pytest.raises(ValueError, match="buffer"):
        PlanParams(buffer=-0.1).validate()


# ----------------------------------------------------------------------------- replay


def test_preset_paths_shapes():
    crash = preset_path("crash_24h")
    assert crash["spot_shock"].iloc[-1] == pytest.approx(-0.30) and crash["hours"].iloc[-1] == 24
    v = preset_path("v_shape")
    assert v["spot_shock"].min() == pytest.approx(-0.25) and v["spot_shock"].iloc[-1] == pytest.approx(-0.05)
    up = preset_path("grind_up")
    assert up["spot_shock"].iloc[-1] == pytest.approx(0.20) and up["hours"].iloc[-1] == 168
    assert set(PRESET_PATHS) == {"crash_24h", "v_shape", "grind_up"}


def test_bad_user_path_refused():
    with pytest.raises(ValueError, match="increase"):
        validate_path(pd.DataFrame({"hours": [0, 2, 1], "spot_shock": [0, 0, 0]}))
    with pytest.raises(ValueError, match="row 2"):
        validate_path(pd.DataFrame({"hours": [0, "x"], "spot_shock": [0, 0]}))
    with pytest.raises(ValueError, match="fraction"):
        validate_path(pd.DataFrame({"hours": [0, 1], "spot_shock": [0, -1.5]}))


def test_replay_without_trigger_matches_revaluation(market):
    """A well-collateralised long call never liquidates; its equity along the path is the
    option's Black-76 value at the moved spot and time (sticky moneyness smile)."""
    book = _book(("BTC-25DEC26-100000-C", 2.0, None))
    path = pd.DataFrame({"hours": [0.0, 12.0, 24.0], "spot_shock": [0.0, -0.1, 0.05]})
    result = replay(book, market, 50_000.0, path)
    assert not result.path["liquidated"].any()
    from dataclasses import replace
    from datetime import timedelta

    from engine.pricing import black76_price
    assert market.sticky == STICKY_MONEYNESS
    for (h, s), eq in zip(path.itertuples(index=False), result.path["equity"], strict=True):
        m = replace(market, valuation_time=market.valuation_time + timedelta(hours=h))
        T = m.expiry_years(parse_instrument("BTC-25DEC26-100000-C").expiry_date)
        F = 95_000 * (1 + s) * math.exp(0.05 * T)
        sigma = float(np.ravel(m.vol("BTC", 100_000.0, T, F))[0])
        assert eq == pytest.approx(50_000.0 + 2 * float(black76_price(F, 100_000.0, T, sigma, 0.0, True)), rel=1e-9)


def test_replay_crash_triggers_when_equity_falls_below_mm(market):
    book = demo_book("naked_short_strangle")
    h = account_health(book, market, 0.0)
    collateral = 1.5 * h.maintenance - h.equity  # healthy at the start
    result = replay(book, market, collateral, preset_path("crash_24h"))
    p = result.path
    assert not p["liquidated"].iloc[0]
    first = p.index[p["liquidated"]][0]
    assert first > 0
    # Before the trigger the account was above MM; after each plan it is back above MM.
    assert (p.loc[:first - 1, "equity"] >= p.loc[:first - 1, "mm"]).all()
    assert (p.loc[p["liquidated"], "equity"] >= p.loc[p["liquidated"], "mm"] - 1e-6).all()
    assert len(result.trades) == int(p["trades"].sum())
    assert result.trades["hours"].min() == p.loc[first, "hours"]


def test_plan_inputs_and_compare_plans(market):
    """PlanInputs: each underlying's perpetual is its hedge, equity is the account's; the
    comparison table is the same whether built from plans or by compare_policies."""
    book = demo_book("naked_short_strangle")
    state = account_state(book, market, 20_000.0)
    inputs = PlanInputs.prepare(state, market, margin_model("risk_based"))
    for u, k in enumerate(inputs.hedge_index):
        assert inputs.names[k] == f"{inputs.und_names[u]}-PERPETUAL"
    assert inputs.equity == pytest.approx(state.equity(inputs.marks))
    plans = {p: plan_liquidation(inputs, policy=p) for p in POLICIES}
    table = compare_plans(plans)
    assert table.equals(compare_policies(book, market, 20_000.0))
    assert table.set_index("policy").loc["optimised", "saved_by_optimised"] == 0.0
