"""Term structure per expiry, futures and perp marks, vol shocks on every smile form, the time
roll (engine/market.py, engine/scenarios.py, docs/market.md).

Expected values are closed forms worked by hand: F = S·e^{y(T)} with y linear between nodes,
put–call parity C − P = e^{−rT}(F − K), Black-76 at a shifted vol, intrinsic values.
"""
import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from engine import analyze
from engine.instruments import parse_instrument
from engine.market import load_market, market_to_dict, save_market
from engine.portfolio import Book, Position
from engine.pricing import black76_price
from engine.samples import _data, demo_market
from engine.scenarios import ShockGrid, instrument_arrays, instrument_values, roll_book, stress_grid

VAL = "2026-01-01T08:00:00Z"
T1, T2 = 90 / 365, 181 / 365  # 2026-04-01 and 2026-07-01 at 08:00
SVI_1 = {"a": 0.01, "b": 0.1, "rho": -0.3, "m": 0.0, "sigma": 0.1}


def term_market(**btc):
    und = {"spot": 100.0, "carry": 0.02, "smile": [
        {"expiry": "2026-04-01", "forward": 101.0, "rate": 0.03, "atm_vol": 0.6, "skew": -0.1, "curvature": 0.2},
        {"expiry": "2026-07-01", "forward": 104.0, "rate": 0.05, "svi": SVI_1}]}
    und.update(btc)
    return load_market({"valuation_time": VAL, "usd_rate": 0.01, "underlyings": {"BTC": und}})


def test_forward_curve_hits_each_expiry_forward_and_is_log_linear_between():
    m = term_market()
    assert float(m.forward("BTC", T1)) == pytest.approx(101.0, rel=1e-14)
    assert float(m.forward("BTC", T2)) == pytest.approx(104.0, rel=1e-14)
    t = 0.5 * (T1 + T2)
    y = 0.5 * (math.log(1.01) + math.log(1.04))
    assert float(m.forward("BTC", t)) == pytest.approx(100 * math.exp(y), rel=1e-12)
    assert float(m.forward("BTC", T1 / 3)) == pytest.approx(100 * 1.01 ** (1 / 3), rel=1e-12)
    # Beyond the last node the carry (0.02) continues the curve.
    assert float(m.forward("BTC", 1.0)) == pytest.approx(104 * math.exp(0.02 * (1 - T2)), rel=1e-12)


def test_without_nodes_the_forward_is_spot_times_carry():
    m = load_market({"valuation_time": VAL, "underlyings": {"ETH": {"spot": 3000.0, "carry": 0.06, "smile": []}}})
    assert float(m.forward("ETH", 0.7)) == pytest.approx(3000 * math.exp(0.042), rel=1e-14)


def test_rate_curve_uses_each_expiry_rate_and_usd_rate_beyond():
    m = term_market()
    assert float(m.rate("BTC", T1)) == pytest.approx(0.03, rel=1e-12)
    assert float(m.rate("BTC", T2)) == pytest.approx(0.05, rel=1e-12)
    expected = (0.05 * T2 + 0.01 * (2.0 - T2)) / 2.0
    assert float(m.rate("BTC", 2.0)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("expiry, F, r, T", [("1APR26", 101.0, 0.03, T1), ("1JUL26", 104.0, 0.05, T2)])
def test_put_call_parity_per_expiry(expiry, F, r, T):
    m = term_market()
    K = 95.0
    insts = [parse_instrument(f"BTC-{expiry}-95-C"), parse_instrument(f"BTC-{expiry}-95-P")]
    call, put = instrument_values(instrument_arrays(insts, m))
    assert call - put == pytest.approx(math.exp(-r * T) * (F - K), rel=1e-12)


def test_option_value_is_black76_on_its_own_forward_rate_and_smile():
    m = term_market()
    K, k = 110.0, math.log(110 / 104.0)
    w = SVI_1["a"] + SVI_1["b"] * (SVI_1["rho"] * k + math.sqrt(k * k + SVI_1["sigma"] ** 2))
    expected = black76_price(104.0, K, T2, math.sqrt(w / T2), 0.05, True)
    value = instrument_values(instrument_arrays([parse_instrument("BTC-1JUL26-110-C")], m))[0]
    assert value == pytest.approx(float(expected), rel=1e-12)


def test_futures_marks_are_their_expiry_forward_and_win_over_slice_forwards():
    m = term_market(futures={"2026-04-01": 101.5, "2026-05-29": 102.5})
    arr = instrument_arrays([parse_instrument("BTC-1APR26"), parse_instrument("BTC-29MAY26"),
                             parse_instrument("BTC-1JUL26")], m)
    assert instrument_values(arr) == pytest.approx([101.5, 102.5, 104.0], rel=1e-12)
    # A spot shock moves every forward by the same factor (the basis in % is kept).
    assert instrument_values(arr, spot_shock=-0.2) == pytest.approx([81.2, 82.0, 83.2], rel=1e-12)


def test_perpetual_tracks_spot_unless_a_perp_mark_is_given():
    perp = [parse_instrument("BTC-PERPETUAL")]
    assert instrument_values(instrument_arrays(perp, term_market()))[0] == pytest.approx(100.0)
    arr = instrument_arrays(perp, term_market(perp_mark=100.3))
    assert instrument_values(arr)[0] == pytest.approx(100.3)
    assert instrument_values(arr, spot_shock=0.1)[0] == pytest.approx(110.33)


@pytest.mark.parametrize("smile", [
    {"atm_vol": 0.6, "skew": -0.1, "curvature": 0.2},
    {"svi": SVI_1},
    {"points": [[80, 0.7], [100, 0.5], [130, 0.6]]},
])
def test_vol_shock_is_a_parallel_shift_on_every_smile_form(smile):
    m = load_market({"valuation_time": VAL, "underlyings": {"BTC": {"spot": 100.0, "smile": [
        dict({"expiry": "2026-04-01"}, **smile)]}}})
    insts = [parse_instrument("BTC-1APR26-90-P"), parse_instrument("BTC-1APR26-115-C")]
    arr = instrument_arrays(insts, m)
    base_vol = arr.base_vol()
    shocked = instrument_values(arr, vol_shock=0.05)
    expected = black76_price(100.0, np.array([90.0, 115.0]), T1, base_vol + 0.05, 0.0, np.array([False, True]))
    assert shocked == pytest.approx(expected, rel=1e-12)


# ------------------------------------------------------------------------------ JSON


def test_old_market_json_loads_unchanged_and_round_trips():
    raw = json.loads(_data("market.json").read_text())
    m = demo_market()
    out = market_to_dict(m)
    for name, u in raw["underlyings"].items():
        assert out["underlyings"][name] == u  # no field added, none changed
    assert load_market(save_market(m)) == m


def test_new_fields_round_trip():
    m = term_market(futures={"2026-04-01": 101.5}, perp_mark=100.3)
    again = load_market(save_market(m))
    assert again == m
    u = again.underlying("BTC")
    assert u.perp_mark == 100.3 and u.futures[0][1] == 101.5
    assert [s.form for s in u.smile] == ["quadratic", "svi"]


# ------------------------------------------------------------------------------ time roll


def test_roll_pays_intrinsic_of_an_itm_call_into_cash_and_keeps_equity_continuous():
    m = term_market(carry=0.0)
    call = parse_instrument("BTC-1APR26-90-C")
    later = parse_instrument("BTC-1JUL26-100-P")
    book = Book((Position(call, 2.0, 8.0), Position(later, -1.0, 5.0)))
    roll = roll_book(book, m, datetime(2026, 4, 2, tzinfo=UTC))
    assert roll.cash == pytest.approx(2.0 * (100.0 - 90.0))  # intrinsic on spot 100
    assert roll.settled["pnl"].iloc[0] == pytest.approx(2.0 * (10.0 - 8.0))
    assert [p.name for p in roll.book.positions] == [later.name]
    assert roll.market.valuation_time == datetime(2026, 4, 2, tzinfo=UTC)
    assert [s.expiry.isoformat() for s in roll.market.underlying("BTC").smile] == ["2026-07-01"]
    # Just before expiry the call is worth (almost) what it pays just after.
    just_before = term_market(carry=0.0)
    just_before = just_before.rolled_to(datetime(2026, 4, 1, 7, 59, tzinfo=UTC))
    value = analyze(Book((Position(call, 2.0, 8.0),)), just_before).totals["value"]
    assert value == pytest.approx(roll.cash, rel=1e-4)


def test_roll_settles_a_future_at_spot_against_its_entry():
    m = term_market()
    fut = parse_instrument("BTC-1APR26")
    roll = roll_book(Book((Position(fut, -3.0, 97.0),)), m, datetime(2026, 5, 1, tzinfo=UTC))
    assert roll.cash == pytest.approx(-3.0 * (100.0 - 97.0))
    assert len(roll.book) == 0


def test_stress_horizon_past_expiry_uses_the_same_rule_as_the_roll():
    m = term_market(carry=0.0)
    call = parse_instrument("BTC-1APR26-90-C")
    arr = instrument_arrays([call], m)
    grid = ShockGrid.build(0.2, 3, 0.0, 1, (100.0,))
    res = stress_grid(arr, [0], [1.0], grid)
    base = instrument_values(arr)[0]
    for s, pnl in zip(grid.spot_shocks, res.pnl[:, 0, 0], strict=True):
        spot = 100 * (1 + s)
        roll = roll_book(Book((Position(call, 1.0),)), m.with_spot_shock(s), m.valuation_time + timedelta(days=100))
        assert pnl == pytest.approx(roll.cash - base, rel=1e-12, abs=1e-9)
        assert roll.cash == pytest.approx(max(spot - 90.0, 0.0))


def test_rolled_market_keeps_svi_vols_in_k():
    m = term_market()
    later = m.rolled_to(m.valuation_time + timedelta(days=30))
    k = np.array([-0.2, 0.0, 0.15])
    old = m.underlying("BTC").smile[1].svi
    new = later.underlying("BTC").smile[1].svi
    assert new.vol(k, T2 - 30 / 365) == pytest.approx(old.vol(k, T2), rel=1e-12)
