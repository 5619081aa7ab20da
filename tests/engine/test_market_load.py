"""load_market on hostile input: every failure is a MarketError naming the field, never another
exception; limits on size; fuzzed with hypothesis (engine/market.py)."""
import copy
import io
import json
import time
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.instruments import parse_instrument
from engine.market import MAX_SLICES, Market, MarketError, load_market, save_market
from engine.scenarios import instrument_arrays, instrument_values

VAL = "2026-01-01T08:00:00Z"
GOOD = {"valuation_time": VAL, "usd_rate": 0.0, "underlyings": {"BTC": {"spot": 95000.0, "carry": 0.05, "smile": [
    {"expiry": "2026-04-01", "atm_vol": 0.6, "skew": -0.1, "curvature": 0.2},
    {"expiry": "2026-07-01", "svi": {"a": 0.02, "b": 0.1, "rho": -0.3, "m": 0.0, "sigma": 0.2}},
    {"expiry": "2026-10-01", "points": [[80000, 0.6], [95000, 0.5], [110000, 0.55]], "forward": 96000}]}}}


def error_of(source) -> str:
    with pytest.raises(MarketError) as info:
        load_market(source)
    return str(info.value)


def test_text_that_is_neither_json_nor_a_file_is_a_market_error():
    assert "malformed" in error_of("no such file.json")
    assert "malformed" in error_of("   ")


def test_a_path_that_cannot_be_read_is_a_market_error(tmp_path):
    assert "cannot read" in error_of(tmp_path / "missing.json")
    assert "cannot read" in error_of(tmp_path)  # a directory


def test_non_utf8_bytes_and_files_are_market_errors(tmp_path):
    assert "UTF-8" in error_of(b"\xff\xfe{}")
    f = tmp_path / "latin1.json"
    f.write_bytes('{"valuation_time": "é"}'.encode("latin-1"))
    assert "UTF-8" in error_of(f)
    assert "UTF-8" in error_of(io.BytesIO(b"\x80abc"))


def test_huge_numbers_and_deep_nesting_are_market_errors():
    d = copy.deepcopy(GOOD)
    d["underlyings"]["BTC"]["spot"] = 10 ** 400
    assert error_of(d).startswith("underlyings.BTC.spot")
    assert error_of(json.dumps(d)).startswith("underlyings.BTC.spot")
    assert "malformed" in error_of('{"a": ' + "9" * 5000 + "}")  # beyond Python's int digit limit
    assert "nested too deeply" in error_of('{"x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    deep: list = []
    for _ in range(50_000):
        deep = [deep]
    d["underlyings"]["BTC"]["spot"] = deep
    assert error_of(d).startswith("underlyings.BTC.spot")


def test_underlyings_differing_only_in_case_are_refused():
    d = copy.deepcopy(GOOD)
    d["underlyings"]["btc"] = copy.deepcopy(d["underlyings"]["BTC"])
    msg = error_of(d)
    assert msg.startswith("underlyings.btc") and "'BTC'" in msg


@pytest.mark.parametrize("name", ["", "BTC USD", "1INCH", "A" * 11, "ÄTH"])
def test_underlying_names_must_be_instrument_names(name):
    d = copy.deepcopy(GOOD)
    d["underlyings"] = {name: d["underlyings"]["BTC"]}
    assert "underlying name" in error_of(d)


@pytest.mark.parametrize("expiry", ["2026-04-01junk", "2026-04-01T08:00:00Z", "2026-4-1", 20260401, None])
def test_expiry_must_be_exactly_a_date(expiry):
    d = copy.deepcopy(GOOD)
    d["underlyings"]["BTC"]["smile"][0]["expiry"] = expiry
    assert error_of(d).startswith("underlyings.BTC.smile[0].expiry")


@pytest.mark.parametrize("path, value, field", [
    (("svi", "b"), -0.1, "underlyings.BTC.smile[1].svi.b"),
    (("svi", "rho"), 1.0, "underlyings.BTC.smile[1].svi.rho"),
    (("svi", "sigma"), 0.0, "underlyings.BTC.smile[1].svi.sigma"),
    (("svi", "a"), -1.0, "underlyings.BTC.smile[1].svi.a"),
    (("svi",), [1, 2], "underlyings.BTC.smile[1].svi"),
    (("forward",), -5, "underlyings.BTC.smile[1].forward"),
    (("rate",), "x", "underlyings.BTC.smile[1].rate"),
    (("atm_vol",), 0.5, "underlyings.BTC.smile[1]: one smile form"),
])
def test_bad_svi_and_term_fields_name_the_field(path, value, field):
    d = copy.deepcopy(GOOD)
    target = d["underlyings"]["BTC"]["smile"][1]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert error_of(d).startswith(field)


@pytest.mark.parametrize("points, field", [
    ([], "underlyings.BTC.smile[2].points"),
    ([[80000, 0.6], [80000, 0.5]], "underlyings.BTC.smile[2].points[1].strike"),
    ([[80000, -0.6]], "underlyings.BTC.smile[2].points[0].vol"),
    ([[80000]], "underlyings.BTC.smile[2].points[0]"),
])
def test_bad_points_name_the_point(points, field):
    d = copy.deepcopy(GOOD)
    d["underlyings"]["BTC"]["smile"][2]["points"] = points
    assert error_of(d).startswith(field)


def test_futures_and_perp_mark_fields():
    d = copy.deepcopy(GOOD)
    d["underlyings"]["BTC"]["futures"] = {"2026-04-01": "x"}
    assert error_of(d).startswith("underlyings.BTC.futures.2026-04-01")
    d["underlyings"]["BTC"]["futures"] = {"April": 1.0}
    assert error_of(d).startswith("underlyings.BTC.futures")
    d["underlyings"]["BTC"].pop("futures")
    d["underlyings"]["BTC"]["perp_mark"] = 0
    assert error_of(d).startswith("underlyings.BTC.perp_mark")


def test_unknown_fields_are_ignored_so_later_additions_load():
    d = copy.deepcopy(GOOD)
    d["underlyings"]["BTC"]["funding_rate"] = 12.5
    d["underlyings"]["BTC"]["smile"][0]["skew_confidence"] = 3.0
    d["venue"] = {"x": 1}
    assert load_market(d) == load_market(GOOD)


def test_duplicate_expiry_check_is_linear_and_slice_count_capped():
    d = copy.deepcopy(GOOD)
    d["underlyings"]["BTC"]["smile"] = [{"expiry": "2026-04-01", "atm_vol": 0.5}] * (MAX_SLICES + 1)
    assert error_of(d).startswith("underlyings.BTC.smile")
    days = [date(2026, 2, 1) + timedelta(days=i) for i in range(MAX_SLICES - 1)]
    d["underlyings"]["BTC"]["smile"] = [{"expiry": x.isoformat(), "atm_vol": 0.5} for x in days + days[-1:]]
    start = time.perf_counter()
    assert error_of(d).startswith(f"underlyings.BTC.smile[{MAX_SLICES - 1}].expiry: expiry {days[-1]} listed twice")
    assert time.perf_counter() - start < 1.0  # the O(n²) check took 15 s for 25,000 slices


def test_any_underlying_with_decimal_strikes_prices():
    """SOL and XRP with their own expiries and sub-dollar strikes, as the issue asks."""
    m = load_market({"valuation_time": VAL, "underlyings": {
        "SOL": {"spot": 180.0, "smile": [{"expiry": "2026-02-27", "atm_vol": 0.8}]},
        "XRP": {"spot": 0.62,
                "smile": [{"expiry": "2026-03-27", "points": [[0.5, 0.9], [0.625, 0.8], [0.75, 0.85]]}]}}})
    insts = [parse_instrument("SOL-27FEB26-185-C"), parse_instrument("XRP-27MAR26-0d625-C")]
    values = instrument_values(instrument_arrays(insts, m))
    assert values[0] > 0 and values[1] > 0
    assert float(m.vol("XRP", 0.625, m.expiry_years(insts[1].expiry_date)).item()) == pytest.approx(0.8)


# ------------------------------------------------------------------------------ fuzzing

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-10 ** 30, max_value=10 ** 30)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)

FIELDS = [("valuation_time",), ("usd_rate",), ("sticky",), ("underlyings",), ("underlyings", "BTC"),
          ("underlyings", "BTC", "spot"), ("underlyings", "BTC", "carry"), ("underlyings", "BTC", "smile"),
          ("underlyings", "BTC", "futures"), ("underlyings", "BTC", "perp_mark"),
          ("underlyings", "BTC", "smile", 0), ("underlyings", "BTC", "smile", 0, "expiry"),
          ("underlyings", "BTC", "smile", 0, "atm_vol"), ("underlyings", "BTC", "smile", 1, "svi"),
          ("underlyings", "BTC", "smile", 1, "svi", "rho"), ("underlyings", "BTC", "smile", 2, "points"),
          ("underlyings", "BTC", "smile", 2, "points", 0), ("underlyings", "BTC", "smile", 2, "forward")]


def _loads_or_market_error(source):
    try:
        assert isinstance(load_market(source), Market)
    except MarketError as e:
        assert str(e)


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FIELDS), json_values)
def test_fuzz_one_field_of_a_good_market(path, value):
    d = copy.deepcopy(GOOD)
    target = d
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    _loads_or_market_error(d)
    _loads_or_market_error(json.dumps(d, allow_nan=True))


@settings(max_examples=150, deadline=2000)
@given(json_values)
def test_fuzz_whole_documents(value):
    _loads_or_market_error(value if isinstance(value, dict) else json.dumps(value))


@settings(max_examples=150, deadline=2000)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_fuzz_raw_text_and_bytes(raw):
    _loads_or_market_error(raw)


@settings(max_examples=50, deadline=2000)
@given(st.floats(0.001, 5.0), st.floats(-0.99, 0.99), st.floats(-1, 1), st.floats(0.001, 2.0))
def test_fuzz_valid_svi_round_trips(b, rho, m, sigma):
    d = copy.deepcopy(GOOD)
    d["underlyings"]["BTC"]["smile"][1]["svi"] = {"a": 0.1, "b": b, "rho": rho, "m": m, "sigma": sigma}
    try:
        market = load_market(d)
    except MarketError as e:
        assert str(e).startswith("underlyings.BTC.smile[1].svi.a")  # only a negative floor is refused
        return
    assert load_market(save_market(market)) == market


def test_a_vol_typed_in_percent_is_refused():
    d = copy.deepcopy(GOOD)
    d["underlyings"]["BTC"]["smile"][0]["atm_vol"] = 55
    assert error_of(d).startswith("underlyings.BTC.smile[0].atm_vol") and "decimals" in error_of(d)
