"""Account health, liquidation prices (checked by revaluing at them), what-if and hedges."""
import numpy as np
import pytest

from engine import analyze
from engine.instruments import parse_instrument as P  # noqa: N812 — short for the many names
from engine.margin import compute
from engine.margin.account import account_health
from engine.margin.whatif import optimal_hedge, what_if
from engine.portfolio import Book, Position
from engine.samples import demo_book, demo_market

MARKET = demo_market()


def _shifted(market, shock):
    """The snapshot with every spot moved by ``shock`` (fraction)."""
    for und, u in market.underlyings.items():
        market = market.replace_underlying(und, spot=u.spot * (1.0 + shock))
    return market


def test_health_figures_follow_the_definitions():
    book = demo_book("risk_reversal")
    h = account_health(book, MARKET, 50_000.0, "risk_based")
    r = compute(book, MARKET, "risk_based")
    equity = 50_000.0 + analyze(book, MARKET).positions["value"].sum()
    assert h.equity == pytest.approx(equity)
    assert (h.initial, h.maintenance) == pytest.approx((r.initial, r.maintenance))
    assert h.margin_ratio == pytest.approx(r.maintenance / equity)
    assert h.available == pytest.approx(equity - r.initial)
    assert h.liquidatable == (equity < r.maintenance)


@pytest.mark.parametrize("key,collateral,model", [
    ("naked_short_strangle", 250_000.0, "risk_based"),
    ("naked_short_strangle", 150_000.0, "span"),
    ("risk_reversal", 60_000.0, "risk_based"),
    ("risk_reversal", 60_000.0, "greeks_based"),
    ("naked_short_strangle", 100_000.0, "tims"),
    ("covered_call", -700_000.0, "standard"),  # collateral borrowed against the spot holding
])
def test_liquidation_price_gives_equity_equal_to_mm(key, collateral, model):
    book = demo_book(key)
    h = account_health(book, MARKET, collateral, model)
    assert not h.liquidatable
    found = [s for s in (h.liquidation_shock_down, h.liquidation_shock_up) if s is not None]
    assert found, "expected at least one liquidation price within ±50 %"
    for shock in found:
        at = account_health(book, _shifted(MARKET, shock), collateral, model)
        assert at.equity == pytest.approx(at.maintenance, rel=1e-6, abs=1e-3)
        # just inside the liquidation price the account is still healthy
        inside = account_health(book, _shifted(MARKET, shock * 0.98), collateral, model)
        assert inside.equity > inside.maintenance
    if h.liquidation_shock_down is not None:
        assert h.liquidation_shock_down < 0
        assert h.liquidation_price_down["BTC"] == pytest.approx(95000.0 * (1 + h.liquidation_shock_down))
        assert h.distance_down_pct == pytest.approx(-100 * h.liquidation_shock_down)
        assert h.distance_down_price["BTC"] == pytest.approx(-95000.0 * h.liquidation_shock_down)


def test_no_liquidation_price_within_range_and_already_liquidatable():
    book = demo_book("delta_hedged_long_straddle")
    rich = account_health(book, MARKET, 10_000_000.0, "risk_based", search_range=0.3)
    assert rich.liquidation_shock_down is None and rich.liquidation_shock_up is None
    assert rich.liquidation_price_down is None and rich.distance_up_pct is None
    poor = account_health(demo_book("naked_short_strangle"), MARKET, 0.0, "risk_based")
    assert poor.liquidatable and poor.liquidation_shock_down == poor.liquidation_shock_up == 0.0
    with pytest.raises(ValueError, match="search_range"):
        account_health(book, MARKET, 1.0, search_range=1.5)


def test_what_if_buying_the_wings_gives_the_condor():
    wings = [Position(P("BTC-25DEC26-125000-C"), 10.0), Position(P("BTC-25DEC26-65000-P"), 10.0)]
    w = what_if(demo_book("naked_short_strangle"), MARKET, wings, "risk_based")
    assert w.initial_before == pytest.approx(compute(demo_book("naked_short_strangle"), MARKET, "risk_based").initial)
    assert w.initial_after == pytest.approx(compute(demo_book("short_iron_condor"), MARKET, "risk_based").initial)
    assert w.initial_change < 0 and w.maintenance_change < 0


@pytest.mark.parametrize("model", ["risk_based", "span", "greeks_based"])
def test_optimal_hedge_is_a_local_minimum(model):
    book = demo_book("risk_reversal")
    plan = optimal_hedge(book, MARKET, model)
    (hedge,) = plan.hedges
    assert hedge.instrument == "BTC-PERPETUAL" and hedge.underlying == "BTC"
    assert plan.initial_after <= plan.initial_before
    assert plan.initial_after == pytest.approx(what_if(book, MARKET, plan.trades, model).initial_after)
    for step in (-0.05, 0.05):
        moved = [Position(P("BTC-PERPETUAL"), hedge.quantity + step)]
        assert what_if(book, MARKET, moved, model).initial_after >= plan.initial_after - 1e-6


def test_optimal_hedge_with_a_future_and_bad_instruments():
    book = demo_book("desk_book")
    plan = optimal_hedge(book, MARKET, "risk_based", instruments=["BTC-26MAR27", "ETH-PERPETUAL"])
    assert [h.instrument for h in plan.hedges] == ["BTC-26MAR27", "ETH-PERPETUAL"]
    assert plan.initial_after < plan.initial_before
    assert np.isclose(plan.hedges[0].initial_before, plan.initial_before)
    with pytest.raises(ValueError, match="perpetual or a dated future"):
        optimal_hedge(book, MARKET, instruments=["BTC-25DEC26-95000-C"])
    with pytest.raises(ValueError, match="holds nothing on SOL"):
        optimal_hedge(book, MARKET, instruments=["SOL-PERPETUAL"])
    with pytest.raises(ValueError, match="two hedge instruments"):
        optimal_hedge(book, MARKET, instruments=["BTC-PERPETUAL", "BTC-26MAR27"])


def test_hedge_of_a_flat_book_is_zero():
    book = Book((Position(P("BTC-25DEC26-110000-C"), 0.0),))
    assert optimal_hedge(book, MARKET).hedges[0].quantity == 0.0


# ----------------------------------------------------------------------------- one ratio, one set of levels


def test_margin_ratio_is_mm_over_equity_and_infinite_without_equity():
    from engine.margin.account import margin_ratio

    assert margin_ratio(400_000.0, 100_000.0) == pytest.approx(0.25)
    assert margin_ratio(0.0, 100_000.0) == np.inf
    assert margin_ratio(-5.0, 0.0) == np.inf  # no equity left reads as such, even with nothing required
    out = margin_ratio(np.array([100.0, 50.0, -1.0]), np.array([80.0, 60.0, 10.0]))
    np.testing.assert_allclose(out, [0.8, 1.2, np.inf])


@pytest.mark.parametrize("equity,mm,level", [
    (100.0, 49.9, "healthy"), (100.0, 50.0, "warning"), (100.0, 79.9, "warning"), (100.0, 80.0, "danger"),
    (100.0, 100.0, "danger"),  # equity = MM: on the line, not yet below it
    (100.0, 100.1, "liquidatable"), (0.0, 10.0, "bankrupt"), (-50.0, 0.0, "bankrupt"),
])
def test_health_levels_at_their_boundaries(equity, mm, level):
    from engine.margin.account import health_status

    assert health_status(equity, mm) == level


def test_health_status_is_vectorised_and_agrees_with_account_health():
    from engine.margin.account import health_status

    levels = health_status(np.array([100.0, 100.0, -1.0]), np.array([10.0, 90.0, 5.0]))
    assert list(levels) == ["healthy", "danger", "bankrupt"]
    h = account_health(demo_book("risk_reversal"), MARKET, 1.0, "risk_based")  # almost no collateral
    assert health_status(h.equity, h.maintenance) == ("bankrupt" if h.equity <= 0 else "liquidatable")
    assert h.margin_ratio == (np.inf if h.equity <= 0 else pytest.approx(h.maintenance / h.equity))
