"""Liquidation page: callback bodies and figures as plain functions, checked against the engine
called directly (plan, policies, replay, schedule, auction) on the demo desk book."""
import base64
import sys

import numpy as np
import pandas as pd
import pytest
from components import text_of
from dash import no_update

from dashboard.components import frame_rows
from dashboard.stores import liquidation as liq
from dashboard.stores import session as state
from dashboard.stores.account import default_account, health
from engine.instruments import parse_instrument
from engine.liquidation import simulate_auction
from engine.liquidation.plan import account_state, compare_policies, prepared_plan
from engine.liquidation.replay import preset_path, replay
from engine.margin.account import account_health, health_status
from engine.margin.core import Universe
from engine.portfolio import Book, Position
from engine.scenarios import instrument_arrays

PUSH = {"mode": "push", "spot_shock": 0.0, "collateral": None}


@pytest.fixture(scope="module")
def page(app_context):
    return sys.modules["dashboard.pages.liquidation"]


@pytest.fixture(scope="module")
def desk(app_context):
    """Book and market store values, the default account and parameters."""
    book, market, _ = state.default_stores()
    return book, market, default_account(), liq.DEFAULT_PARAMS



def engine_plan(book, market, collateral, shock, policy="optimised"):
    """The engine's plan, called directly: cash at today's market, plan at spot × (1 + shock)."""
    book_obj, today = state.book_of(book), state.market_of(market)
    at = today.with_spot_shock(shock)
    return prepared_plan(account_state(book_obj, today, collateral), at, policy=policy), at


def test_push_goes_past_the_liquidation_price_and_the_plan_table_is_the_engine_plan(page, desk):
    book, market, account, params = desk
    h = account_health(state.book_of(book), state.market_of(market), account["collateral"])
    nearest = min((s for s in (h.liquidation_shock_down, h.liquidation_shock_up) if s is not None), key=abs)
    sc = liq.scenario(book, market, account, PUSH)
    assert sc.spot_shock == pytest.approx(nearest + np.sign(nearest) * liq.PUSH_BEYOND)
    assert sc.collateral == account["collateral"]

    cards, _, rows, _, note = page.plan_view(book, market, account, PUSH, params, detail=True)
    plan, at = engine_plan(book, market, account["collateral"], sc.spot_shock)
    assert [{k: r[k] for k in plan.steps.columns} for r in rows] == frame_rows(plan.steps) and len(rows) > 0
    assert f"Account now {health_status(h.equity, h.maintenance)}" in text_of(cards)
    assert "Under the scenario liquidatable" in text_of(cards)
    assert f"{plan.steps['step'].nunique()} step(s)" in text_of(note)

    # A buy pays the mark plus its cost per contract, a sale receives the mark less it.
    arr = instrument_arrays(account_state(state.book_of(book), state.market_of(market), 0.0).instruments, at)
    marks = dict(zip(arr.names, Universe(arr).base, strict=True))
    steps = plan.steps
    expected = steps["instrument"].map(marks) + np.sign(steps["quantity"]) * steps["cost"] / steps["quantity"].abs()
    assert np.allclose(steps["price"], expected)


def test_waterfall_ends_at_the_plan_equity_and_mm(page, desk):
    book, market, account, params = desk
    _, figure, _, _, _ = page.plan_view(book, market, account, PUSH, params)
    plan, _ = engine_plan(book, market, account["collateral"], liq.scenario(book, market, account, PUSH).spot_shock)
    equity, mm = figure.data[0], figure.data[1]
    assert equity.measure[0] == "absolute" and equity.measure[-1] == "total" and equity.x[-1] == "after"
    assert equity.y[0] == pytest.approx(plan.equity_before)
    assert equity.y[0] + sum(equity.y[1:-1]) == pytest.approx(plan.equity_after)  # the total bar
    assert len(equity.x) == plan.steps["step"].nunique() + 2
    assert mm.y[0] == pytest.approx(plan.mm_before) and mm.y[-1] == pytest.approx(plan.mm_after)


def test_policies_match_compare_policies_when_only_the_collateral_is_stressed(page, desk):
    book, market, account, params = desk
    stress = liq.stress_from_controls("custom", 0, 500_000).data
    _, _, _, rows, _ = page.plan_view(book, market, account, stress, params)
    expected = compare_policies(state.book_of(book), state.market_of(market), 500_000.0)
    assert pd.DataFrame(rows).equals(expected)
    assert rows[0]["policy"] == "optimised" and all(r["saved_by_optimised"] >= 0 for r in rows)


def test_healthy_account_has_nothing_to_liquidate(page, desk):
    book, market, account, params = desk
    cards, _, rows, _, note = page.plan_view(book, market, account, liq.DEFAULT_STRESS, params)
    assert rows == [] and "Nothing to liquidate" in text_of(note)
    summary, _, fills = page.auction_view(book, market, account, liq.DEFAULT_STRESS, params)
    assert "No auction" in text_of(summary) and fills == []


def test_push_cuts_collateral_when_no_liquidation_price_is_within_reach(page, desk):
    """A small short far-OTM call with ample collateral: no liquidation move within ±50 %, so
    'push' cuts the collateral until equity is 90 % of MM."""
    _, market, account, params = desk
    book = state.book_data(Book((Position(parse_instrument("BTC-25DEC26-150000-C"), -1.0),)))
    rich = dict(account, collateral=1_000_000.0)
    h = health(book, market, rich)
    assert h.liquidation_shock_down is None and h.liquidation_shock_up is None
    sc = liq.scenario(book, market, rich, PUSH)
    assert sc.spot_shock == 0.0 and "collateral cut" in sc.description
    plans = liq.plans(book, market, rich, PUSH, params)[1]
    assert plans["optimised"].equity_before == pytest.approx(liq.PUSH_EQUITY * h.maintenance)


def test_bad_parameter_is_refused_with_the_engine_message_and_nothing_changes(page, desk):
    book, market, account, params = desk
    shown = {f.name: f.shown_default for f in liq.FIELDS}
    names = list(shown)
    ids_ = [{"type": "liq-param", "name": n} for n in names]
    before = page.plan_view(book, market, account, PUSH, params)

    data, note = page.apply_params([dict(shown, **{"cost.impact_k": 20})[n] for n in names], "test", ids_, params)
    assert data is no_update and "impact k must be between 0 and 10" in text_of(note)
    data, note = page.apply_params([dict(shown, **{"plan.chunk": 0})[n] for n in names], "test", ids_, params)
    assert data is no_update and "chunk must be in (0, 1]" in text_of(note)
    data, note = page.apply_params([dict(shown, **{"bidders.n": None})[n] for n in names], "test", ids_, params)
    assert data is no_update and "Bidders: enter a whole number" in text_of(note)
    # Shown with its defaults (as when the page opens): nothing written, nothing said.
    assert page.apply_params([shown[n] for n in names], "test", ids_, params) == (no_update, "")
    shown_bad_auction = dict(shown, **{"auction.fast_cutoff": 120})
    data, note = page.apply_params([shown_bad_auction[n] for n in names], "custom", ids_, params)
    assert data is no_update and "need 0 <= fast_cutoff <= start <= 1" in text_of(note)
    # The store did not change, so every view shows what it showed before.
    after = page.plan_view(book, market, account, PUSH, params)
    assert after[2] == before[2] and after[1] == before[1]


def test_good_parameters_are_applied(page, desk):
    book, market, account, params = desk
    shown = {f.name: f.shown_default for f in liq.FIELDS}
    names = list(shown)
    ids_ = [{"type": "liq-param", "name": n} for n in names]
    data, note = page.apply_params([dict(shown, **{"cost.impact_k": 3})[n] for n in names], "mainnet", ids_, params)
    assert data["cost"]["impact_k"] == 3 and data["auction"]["fast_cutoff"] == 0.70 and "applied" in text_of(note)
    dearer = liq.plans(book, market, account, PUSH, data)[1]["optimised"]
    cheaper = liq.plans(book, market, account, PUSH, params)[1]["optimised"]
    assert dearer.total_cost > cheaper.total_cost


def test_stress_controls(page):
    data, note = page.apply_stress("custom", -20, None, liq.DEFAULT_STRESS)
    assert data == {"mode": "custom", "spot_shock": -0.2, "collateral": None}
    data, note = page.apply_stress("custom", -20, -5, liq.DEFAULT_STRESS)
    assert data is no_update and "collateral: enter USD ≥ 0" in text_of(note)
    assert page.apply_stress("none", 0, None, liq.DEFAULT_STRESS) == (no_update, "")


def test_replay_markers_sit_at_the_liquidated_points(page, desk):
    book, market, account, params = desk
    figure, rows, note = page.render_replay(1, book, market, account, liq.DEFAULT_STRESS, params,
                                            "crash_24h" + liq.MIRRORED, [], None)
    path = preset_path("crash_24h").assign(spot_shock=lambda p: -p["spot_shock"])
    result = replay(state.book_of(book), state.market_of(market), account["collateral"], path)
    hit = result.path[result.path["liquidated"]]
    assert len(hit) > 0 and note == ""
    markers = next(t for t in figure.data if t.name.startswith("liquidation ran"))
    assert np.allclose(markers.x, hit["hours"]) and np.allclose(markers.y, hit["margin_ratio"] * 100.0)
    assert len(rows) == len(result.trades)
    assert page.render_replay(None, book, market, account, liq.DEFAULT_STRESS, params,
                              "crash_24h", [], None)[1] == []  # before the first run: nothing


def _upload(text: str) -> str:
    return "data:text/csv;base64," + base64.b64encode(text.encode()).decode()


def test_uploaded_path_is_checked_by_the_engine(page, desk):
    book, market, account, params = desk
    data, choice, note, reset = page.upload_path(_upload("hours,spot_shock\n0,0\n2,-0.5\n4,-0.6\n"), "crash.csv")
    assert choice == "upload" and reset is None and data["spot_shock"] == [0.0, -0.5, -0.6]
    figure, _, message = page.replay_view(book, market, account, liq.DEFAULT_STRESS, params, "upload", False, data)
    assert message == "" and list(figure.data[0].x) == [0.0, 2.0, 4.0]

    data, choice, note, _ = page.upload_path(_upload("hours,spot_shock\n0,0\n2,-0.5\n1,-0.6\n"), "bad.csv")
    assert data is no_update and choice is no_update
    assert "bad.csv: hours must start at ≥ 0 and increase row by row" in text_of(note)
    _, _, message = page.replay_view(book, market, account, liq.DEFAULT_STRESS, params, "upload", False, None)
    assert "upload a path CSV first" in text_of(message)


def test_schedule_closes_the_largest_position(page, desk):
    book, market, account, params = desk
    options, trajectory, frontier, note = page.schedule_view(book, market, account, liq.DEFAULT_STRESS, params,
                                                             None, 1.0, 24, 1e-5)
    largest = options[0]["value"]
    inputs = liq.schedule_inputs(book, market, account, liq.DEFAULT_STRESS, params, largest, 1.0)
    optimal = next(t for t in trajectory.data if t.name == "optimal holdings")
    assert optimal.y[0] == pytest.approx(inputs.X) and optimal.y[-1] == 0.0 and len(optimal.y) == 25
    assert largest in trajectory.layout.title.text
    chosen = next(t for t in frontier.data if t.name.startswith("chosen"))
    curve = frontier.data[0]
    assert min(curve.x) <= chosen.x[0] <= max(curve.x)  # the chosen λ lies within the frontier's span
    # Faster is dearer: along the frontier the expected cost falls as its spread grows.
    order = np.argsort(curve.x)
    assert np.all(np.diff(np.asarray(curve.y)[order]) <= 1e-6)


def test_schedule_refuses_bad_inputs_and_keeps_the_last_chart(page, desk):
    book, market, account, params = desk
    _, trajectory, frontier, note = page.schedule_view(book, market, account, liq.DEFAULT_STRESS, params,
                                                       None, 1.0, 2.5, 1e-5)
    assert trajectory is no_update and frontier is no_update and "intervals N: enter a whole number" in text_of(note)
    _, trajectory, _, note = page.schedule_view(book, market, account, liq.DEFAULT_STRESS, params, None, 0, 24, 1e-5)
    assert trajectory is no_update and "horizon T" in text_of(note)


def test_auction_is_the_engine_auction_of_the_stressed_account(page, desk):
    book, market, account, params = desk
    summary, figure, fills = page.auction_view(book, market, account, PUSH, params)
    plan, _ = engine_plan(book, market, account["collateral"], liq.scenario(book, market, account, PUSH).spot_shock)
    settings = liq.settings_of(params)
    result = simulate_auction(plan.equity_before, plan.equity_before - plan.mm_before, settings.auction,
                              settings.bidders, insurance_fund=settings.plan.insurance_fund)
    assert [f["bidder"] for f in fills] == [f.bidder for f in result.fills] and len(fills) > 0
    assert result.outcome.replace("_", " ") in text_of(summary)
    price = next(t for t in figure.data if t.name == "auction price")
    assert price.y[0] == pytest.approx(settings.auction.start * plan.equity_before)
    sold = figure.data[2]
    assert sold.y[-1] == pytest.approx((1 - result.fraction_left) * 100.0)


def test_bankrupt_account_is_auctioned_with_the_insurance_fund(page, desk):
    book, market, account, params = desk
    stress = liq.stress_from_controls("custom", 60, None).data  # the desk book is short the upside
    cards, _, _, _, note = page.plan_view(book, market, account, stress, params)
    plan = liq.plans(book, market, account, stress, params)[1]["optimised"]
    assert plan.status == "bankrupt" and "Bankrupt: deficit" in text_of(note)
    summary, figure, fills = page.auction_view(book, market, account, stress, params)
    assert all(f["phase"] == "insolvent" for f in fills) and sum(f["fund_payout"] for f in fills) > 0
    assert "fund payout" in text_of(summary)
