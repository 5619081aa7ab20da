"""SPAN: McMillan's published risk arrays (docs/methodology.md §9) and the charges of engine.margin.span.

Expected figures are McMillan's (Options as a Strategic Investment, ch. 34) or derived by hand
below, never copied from the code's output.
"""
import numpy as np
import pytest

from engine.instruments import parse_instrument as P  # noqa: N812 — short for the many names
from engine.margin import compute
from engine.margin.span import SpanParams, scanning_risk, span_scenarios
from engine.portfolio import Book, Position
from engine.samples import demo_market

# Scan range $10,000; gain positive; scenarios 15–16 already at 35 % of a two-range move.
LONG_FUTURE = [0, 0, 3330, 3330, -3330, -3330, 6670, 6670, -6670, -6670, 10000, 10000, -10000, -10000, 7000, -7000]
LONG_CALL = [460, -610, 2640, 1730, -1270, -2340, 5210, 4540, -2540, -3430, 8060, 7640, -3380, -3990, 3130, -1500]
S, CARRY = 95000.0, 0.05


def test_mcmillan_long_call_requirement_3990():
    # worst scenario is 14 (price −1 range, vol down): −3,990
    assert scanning_risk(LONG_CALL) == pytest.approx(3990.0)


def test_mcmillan_covered_write_requirement_6620():
    # long future − call, scenario 13: −10,000 + 3,380 = −6,620 (old strategy-based margin $13,000)
    assert scanning_risk([LONG_FUTURE, LONG_CALL], [1, -1]) == pytest.approx(6620.0)
    assert scanning_risk(LONG_FUTURE) == pytest.approx(10000.0)


def test_scenarios_reproduce_the_long_future_array():
    # A future worth $100,000 with a 10 % scan range has McMillan's $10,000 range; its P&L is
    # price move × 100,000 (× 0.35 on the two-range extremes).
    spots, vols, weights, labels = span_scenarios(SpanParams(price_scan_range=0.10, vol_scan_range=0.04))
    array = spots * 100_000 * weights
    np.testing.assert_allclose(array, LONG_FUTURE, atol=4.0)  # McMillan rounds 3,333 to 3,330
    np.testing.assert_allclose(vols, [0.04, -0.04] * 7 + [0.0, 0.0])
    assert len(labels) == 16 and labels[13].startswith("14: price -1 range, vol down")


def test_long_perp_requirement_is_one_scan_range():
    # Linear: worst of the 16 is −1 range (15 % × 95,000 = 14,250); the extreme is 0.35 × 30 % < 15 %.
    r = compute(Book((Position(P("BTC-PERPETUAL"), 1.0),)), demo_market(), "span")
    assert r.components["scanning_risk"] == pytest.approx(14250.0)
    assert r.maintenance == pytest.approx(14250.0)
    assert r.initial == pytest.approx(1.1 * 14250.0)
    assert r.components["calendar_spread_charge"] == 0.0
    assert r.binding_scenario["BTC"].startswith("13: price -1 range")


def test_calendar_spread_charge():
    # Long 1 March future (delta e^{bT}, T = 122 days) against short 1 perp (delta 1):
    # spread $delta = min(95,000·e^{0.05·122/365}, 95,000) = 95,000 → 1 % = 950.
    book = Book((Position(P("BTC-26MAR27"), 1.0), Position(P("BTC-PERPETUAL"), -1.0)))
    r = compute(book, demo_market(), "span")
    assert r.components["calendar_spread_charge"] == pytest.approx(950.0)
    # scan: the position gains/loses only the carry on the move, 15 % × 95,000 × (e^{bT} − 1)
    carry_part = 0.15 * S * (np.exp(CARRY * 122 / 365) - 1.0)
    assert r.components["scanning_risk"] == pytest.approx(carry_part, rel=1e-9)
    assert r.maintenance == pytest.approx(carry_part + 950.0, rel=1e-9)


def test_short_option_minimum_and_net_option_value():
    # A far out-of-the-money short call: scan risk is tiny, the minimum 1 % × 95,000 per contract binds.
    book = Book((Position(P("BTC-27NOV26-200000-C"), -2.0),))
    r = compute(book, demo_market(), "span")
    assert r.components["short_option_minimum"] == pytest.approx(2 * 950.0)
    assert r.components["scanning_risk"] < 1900.0
    assert r.maintenance == pytest.approx(1900.0)
    assert r.details["net_option_value"] <= 0.0
    assert "net_option_value" not in r.components


def test_bad_params_refused():
    with pytest.raises(ValueError, match="price_scan_range"):
        SpanParams(price_scan_range=-0.1).validate()
    with pytest.raises(ValueError, match="extreme_multiple"):
        SpanParams(price_scan_range=0.6, extreme_multiple=2.0).validate()
