"""Market snapshot: JSON format, forwards, the smile and its dynamics (engine/market.py, docs/methodology.md §3, §11).

Smile values are worked by hand from σ = max(0.01, atm + skew·x + curvature·x²), x = ln(K/F)/√T,
and from "σ²T linear in T at fixed x" between expiries; none is copied from the engine's output.
"""
import copy
import io
import json
import math
from datetime import UTC, datetime

import numpy as np
import pytest

from engine.instruments import parse_instrument
from engine.market import MarketError, load_market, save_market
from engine.pricing import black76_price
from engine.samples import demo_market
from engine.scenarios import instrument_arrays, instrument_values

VAL = "2026-01-01T08:00:00Z"


def vol1(m, K, T, F=None):
    """Market.vol for one strike and expiry, as a float."""
    return float(np.asarray(m.vol("BTC", K, T, F)).item())


def market_dict(smile, spot=100.0, carry=0.04, rate=0.0, sticky="moneyness"):
    return {"valuation_time": VAL, "usd_rate": rate, "sticky": sticky,
            "underlyings": {"BTC": {"spot": spot, "carry": carry, "smile": smile}}}


ONE_SLICE = [{"expiry": "2026-04-01", "atm_vol": 0.60, "skew": -0.10, "curvature": 0.30}]
T90 = 90 / 365  # 2026-01-01 08:00 → 2026-04-01 08:00 is 90 days


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------


def test_design_example_loads():
    """The JSON example of docs/methodology.md §11, field by field."""
    text = """{"valuation_time": "2026-11-24T08:00:00Z", "usd_rate": 0.0,
     "underlyings": {"BTC": {"spot": 95000.0, "carry": 0.05,
       "smile": [{"expiry": "2026-12-25", "atm_vol": 0.55, "skew": -0.10, "curvature": 0.20}]}}}"""
    m = load_market(text)
    assert m.valuation_time == datetime(2026, 11, 24, 8, tzinfo=UTC)
    assert m.usd_rate == 0.0 and m.sticky == "moneyness"
    btc = m.underlying("BTC")
    assert (btc.spot, btc.carry) == (95000.0, 0.05)
    s = btc.smile[0]
    assert (s.expiry.isoformat(), s.atm_vol, s.skew, s.curvature) == ("2026-12-25", 0.55, -0.10, 0.20)
    # 31 days to the 08:00 UTC expiry, ACT/365; F = S·e^{bT}.
    assert m.expiry_years(s.expiry) == pytest.approx(31 / 365, rel=1e-12)
    assert float(m.forward("BTC", 31 / 365)) == pytest.approx(95000 * math.exp(0.05 * 31 / 365), rel=1e-12)


def test_round_trip_demo_market(tmp_path):
    """save → load returns an equal market through text, a path and a file object."""
    m = demo_market()
    assert load_market(save_market(m)) == m
    path = tmp_path / "m.json"
    save_market(m, path)
    assert load_market(path) == m
    assert load_market(str(path)) == m
    buf = io.StringIO()
    save_market(m, buf)
    buf.seek(0)
    assert load_market(buf) == m
    assert load_market(io.BytesIO(save_market(m).encode())) == m
    assert load_market(json.loads(save_market(m))) == m


def test_round_trip_keeps_sticky_and_rate():
    d = market_dict(ONE_SLICE, rate=0.035, sticky="strike")
    m = load_market(d)
    again = load_market(save_market(m))
    assert again == m and again.sticky == "strike" and again.usd_rate == 0.035


def test_smile_sorted_by_expiry_and_names_upper_case():
    d = market_dict([{"expiry": "2026-06-01", "atm_vol": 0.5}, {"expiry": "2026-02-01", "atm_vol": 0.7}])
    d["underlyings"] = {"btc": d["underlyings"]["BTC"]}
    m = load_market(d)
    assert [s.expiry.isoformat() for s in m.underlying("BTC").smile] == ["2026-02-01", "2026-06-01"]
    assert m.underlying("BTC").smile[0].skew == 0.0  # skew and curvature default to 0


def _set(d, path, value):
    node = d
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return d


_DELETE = object()


@pytest.mark.parametrize("path,value,field", [
    (("underlyings", "BTC", "smile", 0, "atm_vol"), -0.2, "underlyings.BTC.smile[0].atm_vol"),
    (("underlyings", "BTC", "smile", 0, "atm_vol"), 0.0, "underlyings.BTC.smile[0].atm_vol"),
    (("underlyings", "BTC", "smile", 0, "atm_vol"), _DELETE, "underlyings.BTC.smile[0].atm_vol"),
    (("underlyings", "BTC", "smile", 0, "skew"), "steep", "underlyings.BTC.smile[0].skew"),
    (("underlyings", "BTC", "smile", 0, "curvature"), float("nan"), "underlyings.BTC.smile[0].curvature"),
    (("underlyings", "BTC", "smile", 0, "expiry"), "2026-13-01", "underlyings.BTC.smile[0].expiry"),
    (("underlyings", "BTC", "smile", 0), 0.55, "underlyings.BTC.smile[0]"),
    (("underlyings", "BTC", "smile"), {"expiry": "2026-04-01"}, "underlyings.BTC.smile"),
    (("underlyings", "BTC", "spot"), _DELETE, "underlyings.BTC.spot"),
    (("underlyings", "BTC", "spot"), -95000, "underlyings.BTC.spot"),
    (("underlyings", "BTC", "spot"), 0, "underlyings.BTC.spot"),
    (("underlyings", "BTC", "spot"), float("inf"), "underlyings.BTC.spot"),
    (("underlyings", "BTC", "carry"), "five", "underlyings.BTC.carry"),
    (("underlyings", "BTC"), [1, 2], "underlyings.BTC"),
    (("underlyings",), {}, "underlyings"),
    (("usd_rate",), None, "usd_rate"),
    (("valuation_time",), "yesterday", "valuation_time"),
    (("valuation_time",), _DELETE, "valuation_time"),
    (("sticky",), "delta", "sticky"),
])
def test_bad_fields_name_the_field(path, value, field):
    d = _set(copy.deepcopy(market_dict(ONE_SLICE)), path, value)
    with pytest.raises(MarketError) as info:
        load_market(d)
    assert str(info.value).startswith(field)


def test_duplicate_expiry_rejected():
    with pytest.raises(MarketError, match=r"underlyings\.BTC\.smile.*2026-04-01"):
        load_market(market_dict(ONE_SLICE + ONE_SLICE))


@pytest.mark.parametrize("text", ['{"valuation_time": ', "not json", "[1, 2", ""])
def test_malformed_json(text):
    with pytest.raises(MarketError, match="malformed"):
        load_market(io.StringIO(text))


def test_top_level_must_be_object():
    with pytest.raises(MarketError, match="object"):
        load_market(io.StringIO("[1, 2]"))


def test_unknown_underlying_and_missing_smile():
    m = load_market(market_dict([]))
    with pytest.raises(MarketError, match="ETH.*known: BTC"):
        m.spot("ETH")
    with pytest.raises(MarketError, match="smile"):
        m.vol("BTC", 100.0, 0.5)


# --------------------------------------------------------------------------------------------
# The smile formula, by hand
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("x,expected", [
    (0.0, 0.60),                       # ATM
    (0.2, 0.60 - 0.02 + 0.012),        # 0.592
    (-0.5, 0.60 + 0.05 + 0.075),       # 0.725: put wing
    (1.5, 0.60 - 0.15 + 0.675),        # 1.125: call wing
    (-2.0, 0.60 + 0.20 + 1.20),        # 2.0
])
def test_smile_formula_by_hand(x, expected):
    """σ = atm + skew·x + curvature·x² with atm 0.60, skew −0.10, curvature 0.30; K = F·e^{x√T}."""
    m = load_market(market_dict(ONE_SLICE))
    F = 100.0 * math.exp(0.04 * T90)
    K = F * math.exp(x * math.sqrt(T90))
    assert vol1(m, K, T90) == pytest.approx(expected, rel=1e-12)


def test_smile_floor():
    """A steep negative skew would give a negative vol at x = 1: 0.30 − 0.50 = −0.20 → 0.01 floor."""
    m = load_market(market_dict([{"expiry": "2026-04-01", "atm_vol": 0.30, "skew": -0.5}]))
    F = 100.0 * math.exp(0.04 * T90)
    K = F * math.exp(1.0 * math.sqrt(T90))
    assert vol1(m, K, T90) == pytest.approx(0.01, abs=1e-15)
    assert vol1(m, F * math.exp(0.4 * math.sqrt(T90)), T90) == pytest.approx(0.10, rel=1e-12)


TWO_SLICES = [
    {"expiry": "2026-01-31", "atm_vol": 0.80, "skew": -0.10, "curvature": 0.20},   # 30 days
    {"expiry": "2026-05-01", "atm_vol": 0.50, "skew": 0.00, "curvature": 0.10},    # 120 days
]


def _sigma1(x):
    return 0.80 - 0.10 * x + 0.20 * x * x


def _sigma2(x):
    return 0.50 + 0.10 * x * x


@pytest.mark.parametrize("days,x", [(60, 0.3), (45, -0.8), (100, 0.0), (75, 1.1)])
def test_total_variance_interpolation_by_hand(days, x):
    """Between the 30- and 120-day slices, σ²T is linear in T at the option's x:
    σ²(T)·T = σ₁²(x)·T₁ + w·(σ₂²(x)·T₂ − σ₁²(x)·T₁), w = (T − T₁)/(T₂ − T₁)."""
    m = load_market(market_dict(TWO_SLICES))
    T, T1, T2 = days / 365, 30 / 365, 120 / 365
    F = 100.0 * math.exp(0.04 * T)
    K = F * math.exp(x * math.sqrt(T))
    w = (T - T1) / (T2 - T1)
    total_var = _sigma1(x) ** 2 * T1 + w * (_sigma2(x) ** 2 * T2 - _sigma1(x) ** 2 * T1)
    assert vol1(m, K, T) == pytest.approx(math.sqrt(total_var / T), rel=1e-12)


def test_interpolation_hits_slices_exactly():
    m = load_market(market_dict(TWO_SLICES))
    for days, sig in ((30, _sigma1), (120, _sigma2)):
        T = days / 365
        F = 100.0 * math.exp(0.04 * T)
        assert vol1(m, F * math.exp(0.5 * math.sqrt(T)), T) == pytest.approx(sig(0.5), rel=1e-12)


@pytest.mark.parametrize("days,sig", [(10, _sigma1), (2, _sigma1), (200, _sigma2), (720, _sigma2)])
def test_flat_extrapolation_beyond_ends(days, sig):
    """Before the first or after the last expiry the nearest slice's smile applies at the option's x."""
    m = load_market(market_dict(TWO_SLICES))
    T = days / 365
    F = 100.0 * math.exp(0.04 * T)
    for x in (-0.6, 0.0, 0.7):
        K = F * math.exp(x * math.sqrt(T))
        assert vol1(m, K, T) == pytest.approx(sig(x), rel=1e-12)


def test_expired_slice_is_not_used_for_live_options():
    """Valuation after the first listed expiry: an option before the next slice takes the next
    (live) slice's smile by flat extrapolation, not the expired one's."""
    d = market_dict([{"expiry": "2025-12-25", "atm_vol": 2.0}, {"expiry": "2026-03-01", "atm_vol": 0.5}])
    m = load_market(d)
    np.testing.assert_allclose(m.vol("BTC", 100.0, np.array([10, 30, 59]) / 365), 0.5, rtol=1e-12)


def test_vol_vectorised_over_strikes_and_expiries():
    m = load_market(market_dict(TWO_SLICES))
    T = np.array([10, 60, 200]) / 365
    K = np.array([90.0, 100.0, 110.0])
    vec = m.vol("BTC", K, T)
    for k, t, v in zip(K, T, vec, strict=True):
        assert vol1(m, k, t) == pytest.approx(v, rel=1e-14)


# --------------------------------------------------------------------------------------------
# Smile dynamics under a spot shock
# --------------------------------------------------------------------------------------------


def _option_value_after_shock(sticky, K, shock):
    m = load_market(market_dict(ONE_SLICE, sticky=sticky))
    arr = instrument_arrays([parse_instrument(f"BTC-1APR26-{K}-C")], m)
    return float(instrument_values(arr, spot_shock=shock)[0])


F0 = 100.0 * math.exp(0.04 * T90)


def test_sticky_moneyness_keeps_atm_vol_at_shocked_forward():
    """Spot shocked so that the forward moves from F0 to K = 110: under sticky moneyness x = 0
    there, so σ = atm = 0.60 (and each other strike reads the smile on the shocked forward)."""
    m = load_market(market_dict(ONE_SLICE))
    assert vol1(m, 110.0, T90, F=110.0) == pytest.approx(0.60, rel=1e-12)
    shock = 110.0 / F0 - 1.0
    expected = float(black76_price(110.0, 110.0, T90, 0.60, 0.0, True))
    assert _option_value_after_shock("moneyness", 110, shock) == pytest.approx(expected, rel=1e-10)
    x = math.log(120.0 / 110.0) / math.sqrt(T90)
    expected = float(black76_price(110.0, 120.0, T90, 0.60 - 0.10 * x + 0.30 * x * x, 0.0, True))
    assert _option_value_after_shock("moneyness", 120, shock) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("K,shock", [(110, 110.0 / F0 - 1.0), (100, -0.15), (95, 0.2)])
def test_sticky_strike_keeps_each_strikes_vol(K, shock):
    """Under sticky strike the vol of strike K stays the one read on the unshocked forward F0."""
    x0 = math.log(K / F0) / math.sqrt(T90)
    sigma = 0.60 - 0.10 * x0 + 0.30 * x0 * x0
    expected = float(black76_price((1 + shock) * F0, K, T90, sigma, 0.0, True))
    assert _option_value_after_shock("strike", K, shock) == pytest.approx(expected, rel=1e-10)


def test_sticky_choice_matters_only_under_a_shock():
    K = 105
    assert _option_value_after_shock("strike", K, 0.0) == pytest.approx(
        _option_value_after_shock("moneyness", K, 0.0), rel=1e-14)
    assert _option_value_after_shock("strike", K, 0.1) != pytest.approx(
        _option_value_after_shock("moneyness", K, 0.1), rel=1e-6)
