"""Deribit standard margin by hand (docs/methodology.md §6.1), and the futures vector of docs/methodology.md §9."""
import math

import numpy as np
import pytest

from engine.instruments import parse_instrument as P  # noqa: N812 — short for the many names
from engine.margin import compute
from engine.margin.standard import StandardParams
from engine.market import market_from_dict
from engine.portfolio import Book, Position
from engine.pricing import black76_price
from engine.samples import demo_market

S, CARRY = 95000.0, 0.05


def _value(K, days, is_call, market):
    T = days / 365.0
    F = S * math.exp(CARRY * T)
    return float(black76_price(F, K, T, float(market.vol("BTC", K, T)[0]), 0.0, is_call))


def test_short_otm_call_and_itm_put_by_hand():
    market = demo_market()
    call, put = _value(110000.0, 31, True, market), _value(100000.0, 31, False, market)
    book = Book((Position(P("BTC-25DEC26-110000-C"), -10.0), Position(P("BTC-25DEC26-100000-P"), -2.0)))
    r = compute(book, market, "standard")
    # call: OTM 15,000 → max(0.15 − 15,000/95,000, 0.10) = 0.10 → 9,500 + mark;  put ITM: OTM 0 → 0.15·S
    im = 10 * (0.10 * S + call) + 2 * (0.15 * S + put)
    mm = 10 * (0.075 * S + call) + 2 * (0.075 * S + put)
    assert r.initial == pytest.approx(im, rel=1e-12)
    assert r.maintenance == pytest.approx(mm, rel=1e-12)
    assert r.components == pytest.approx({"short_options": im, "futures_perps": 0.0})
    # per position, exact and additive
    np.testing.assert_allclose(r.by_position["marginal"], [10 * (0.10 * S + call), 2 * (0.15 * S + put)])
    np.testing.assert_allclose(r.by_position["scaled"], r.by_position["marginal"])


def test_long_options_futures_and_netting():
    market = demo_market()
    T = 122 / 365.0
    F = S * math.exp(CARRY * T)
    book = Book((
        Position(P("BTC-25DEC26-110000-C"), 5.0),           # long option: nothing beyond the premium
        Position(P("BTC-26MAR27"), 2.0),                     # 2 % / 1 % of notional at the forward
        Position(P("BTC-PERPETUAL"), -1.0),                  # at spot
        Position(P("BTC-25DEC26-90000-P"), 1.0),             # +1 and −1 of the same instrument net to 0
        Position(P("BTC-25DEC26-90000-P"), -1.0),
        Position(P("BTC"), 3.0),                             # long spot: an asset, no requirement
    ))
    r = compute(book, market, "standard")
    assert r.initial == pytest.approx(0.02 * (2 * F + S), rel=1e-12)
    assert r.maintenance == pytest.approx(0.01 * (2 * F + S), rel=1e-12)
    assert r.components["short_options"] == 0.0


def test_bad_params_refused():
    with pytest.raises(ValueError, match="option_mm_rate must not exceed"):
        StandardParams(option_mm_rate=0.2).validate()
    with pytest.raises(ValueError, match="future_im_rate"):
        StandardParams(future_im_rate=-0.02).validate()
    with pytest.raises(ValueError, match="future_im_rate"):
        StandardParams(future_im_rate=11.0).validate()


def test_long_future_against_published_futures_vector():
    """10 long ETH futures, index 2243.3, basis 0.08, 20 days → forward 2253.2; P&L −3380 …
    3380 for spot −15 … +15 % step 3 % (the forward moves with spot).  TIMS uses exactly
    those ten points (docs/methodology.md §9, 'a Deribit-style wiki')."""
    market = market_from_dict({
        "valuation_time": "2024-01-10T08:00:00Z",
        "underlyings": {"ETH": {"spot": 2243.3, "carry": 0.08,
                                "smile": [{"expiry": "2024-01-30", "atm_vol": 0.5}]}}})
    book = Book((Position(P("ETH-30JAN24"), 10.0),))
    assert float(market.forward("ETH", 20 / 365)) == pytest.approx(2253.2, abs=0.05)
    r = compute(book, market, "tims")
    frame = r.scenario_pnl[r.scenario_pnl["vol_shock"] > 0].sort_values("spot_shock")
    np.testing.assert_allclose(frame["spot_shock"], [-0.15, -0.12, -0.09, -0.06, -0.03, 0.03, 0.06, 0.09, 0.12, 0.15])
    published = [-3380, -2704, -2028, -1352, -676, 676, 1352, 2028, 2704, 3380]
    np.testing.assert_allclose(frame["pnl"], published, atol=0.5)
    assert r.maintenance == pytest.approx(3380.0, abs=0.5)
