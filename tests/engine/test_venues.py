"""Deribit importers (engine/venues/deribit.py) on captured responses (tests/engine/fixtures/deribit,
Apache-2.0, see its README) and on rows built in the documented format.

Expected values are read from the fixture files by hand (the numbers quoted below) or computed
independently (Black-76 at the venue's own mark_iv must reproduce its mark_price).
"""
import json
import math
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.instruments import parse_instrument
from engine.market import load_market, save_market
from engine.pricing import black76_price
from engine.smile import SVI
from engine.venues import VenueError, book_from_positions, market_from_book_summary, response_rows

FIXTURES = Path(__file__).parent / "fixtures" / "deribit"
OPTIONS = FIXTURES / "book_summary_option.json"
FUTURES = FIXTURES / "book_summary_future.json"
POSITIONS = FIXTURES / "get_positions.json"


def test_response_rows_with_and_without_the_jsonrpc_wrapper():
    wrapped = json.loads(FUTURES.read_text())
    assert len(response_rows(FUTURES)) == 13
    assert response_rows(wrapped["result"]) == response_rows(FUTURES.read_text())
    assert response_rows(json.dumps(wrapped["result"]).encode()) == wrapped["result"]


@pytest.mark.parametrize("source, match", [
    ({"jsonrpc": "2.0", "error": {"code": 13009, "message": "unauthorized"}}, "unauthorized"),
    ("<html>502 Bad Gateway</html>", "malformed"),
    (b"\xff\xfe", "UTF-8"),
    ({"result": 5}, "list of rows"),
])
def test_unusable_files_raise_venue_error(source, match):
    with pytest.raises(VenueError, match=match):
        response_rows(source)


def test_future_fixture_gives_marks_perp_spot_and_time():
    vm = market_from_book_summary(futures=FUTURES)
    m, btc = vm.market, vm.market.underlying("BTC")
    assert m.valuation_time == datetime.fromtimestamp(1789939036004 / 1000, tz=UTC)
    assert btc.spot == 80815.88  # estimated_delivery_price (the index) of every row
    assert btc.perp_mark == 80831.57
    marks = dict(btc.futures)
    assert marks[date(2026, 12, 25)] == 81945.21 and marks[date(2027, 6, 25)] == 83945.35 and len(marks) == 12
    # The future's value in the engine is its mark; the carry beyond the last is its implied carry.
    T = m.expiry_years(date(2027, 6, 25))
    assert float(m.forward("BTC", T)) == pytest.approx(83945.35, rel=1e-12)
    assert btc.carry == pytest.approx(math.log(83945.35 / 80815.88) / T, rel=1e-12)
    assert vm.errors == ()


def test_option_fixture_forwards_vols_and_prices():
    vm = market_from_book_summary(OPTIONS)
    m = vm.market
    assert set(m.underlyings) == {"BTC", "XRP"}  # XRP_USDC linear options map to XRP
    btc, xrp = m.underlying("BTC"), m.underlying("XRP")
    assert btc.smile[0].forward == 80809.22  # median underlying_price of the expiry's rows
    assert xrp.smile[0].forward == 1.3992
    assert btc.spot == pytest.approx(80808.14) and xrp.spot == 1.3987
    T = m.expiry_years(date(2026, 9, 21))
    # Three strikes per expiry: too few for SVI, the marks become strike points (mark_iv / 100).
    assert [f.form for f in vm.fits] == ["points", "points"]
    assert float(m.vol("BTC", 69000.0, T).item()) == pytest.approx(0.6157)
    assert float(m.vol("XRP", 1.3, T).item()) == pytest.approx(1.1473)
    # Units check: Black-76 on underlying_price at mark_iv reproduces mark_price (coin × forward for
    # the inverse BTC options, USDC for XRP_USDC) within one price tick (get_instruments: BTC 0.0005
    # above 0.005 BTC and 0.0001 below, XRP_USDC 0.0005).
    q = vm.quotes
    for _, row in q.iterrows():
        raw = next(r for r in response_rows(OPTIONS) if r["instrument_name"].replace("_USDC", "")
                   == row["instrument"].replace("1D", "1d"))
        fwd, iv = raw["underlying_price"], raw["mark_iv"] / 100
        Tq = (parse_instrument(row["instrument"]).expiry - datetime.fromtimestamp(
            raw["creation_timestamp"] / 1000, tz=UTC)).total_seconds() / (365 * 86400)
        usd = float(black76_price(fwd, row["strike"], Tq, iv, 0.0, row["option_type"] == "C"))
        coin_price = raw["mark_price"]
        tick = (0.0005 if coin_price > 0.005 else 0.0001) * fwd if row["underlying"] == "BTC" else 0.0005
        assert row["mark_usd"] == pytest.approx(usd, abs=tick), row["instrument"]


def test_options_and_futures_together_use_the_futures_mark_as_that_expiry_forward():
    vm = market_from_book_summary(OPTIONS, FUTURES)
    m = vm.market
    T = m.expiry_years(date(2026, 9, 21))
    assert float(m.forward("BTC", T)) == pytest.approx(80815.99, rel=1e-12)  # BTC-21SEP26 mark
    assert m.valuation_time == datetime.fromtimestamp(1789939518462 / 1000, tz=UTC)  # latest row
    assert load_market(save_market(m)) == m


def synthetic_rows(truth: dict, spot=60000.0, ts=1767254400000):
    """Rows in the documented kind=option format built from known SVI slices and forwards
    (valuation 2026-01-01T08:00Z)."""
    rows = []
    for expiry, (fwd, svi) in truth.items():
        T = (datetime.combine(expiry, datetime.min.time(), UTC).replace(hour=8)
             - datetime.fromtimestamp(ts / 1000, UTC)).total_seconds() / (365 * 86400)
        for K in np.round(fwd * np.exp(np.linspace(-0.5, 0.4, 36)), -2):
            iv = float(svi.vol(math.log(K / fwd), T))
            for cp in "CP":
                name = f"BTC-{expiry.day}{expiry.strftime('%b').upper()}{expiry.year % 100}-{int(K)}-{cp}"
                price = float(black76_price(fwd, K, T, iv, 0.0, cp == "C")) / fwd
                rows.append({"instrument_name": name, "mark_iv": round(iv * 100, 8), "underlying_price": fwd,
                             "mark_price": price, "interest_rate": 0.0, "estimated_delivery_price": spot,
                             "creation_timestamp": ts, "bid_price": price * 0.97, "ask_price": price * 1.03})
    return rows


def test_a_chain_in_the_documented_format_is_fitted_per_expiry():
    truth = {date(2026, 1, 30): (60300.0, SVI(0.004, 0.03, -0.3, 0.01, 0.08)),
             date(2026, 3, 27): (61000.0, SVI(0.015, 0.06, -0.25, 0.02, 0.12)),
             date(2026, 6, 26): (62100.0, SVI(0.035, 0.09, -0.2, 0.03, 0.18))}
    vm = market_from_book_summary({"jsonrpc": "2.0", "id": 1, "result": synthetic_rows(truth)})
    m = vm.market
    assert [f.form for f in vm.fits] == ["svi"] * 3
    for s, (expiry, (fwd, svi)) in zip(m.underlying("BTC").smile, truth.items(), strict=True):
        assert s.expiry == expiry and s.forward == fwd
        # Strikes are rounded to 100 and vols to 1e-8: the fitted curve matches the quotes closely.
        k = np.linspace(-0.4, 0.3, 8)
        assert s.svi.vol(k, m.expiry_years(expiry)) == pytest.approx(svi.vol(k, m.expiry_years(expiry)), abs=1e-6)
    assert all(f.rmse_vol < 1e-6 and f.butterfly_free for f in vm.fits)
    # Bid/ask vols from the coin prices: the bid vol below the mark vol, the ask above; an
    # in-the-money bid at 97 % of the mark is below intrinsic value and has no implied vol.
    q = vm.quotes
    otm = np.where(q["option_type"] == "C", q["strike"] > q["forward"], q["strike"] < q["forward"])
    assert ((q["bid_iv"] < q["mark_iv"]) & (q["mark_iv"] < q["ask_iv"]))[otm].all()
    assert q["bid_iv"][~otm].isna().sum() > 0
    assert not [n for n in vm.notes if "arbitrage" in n]


def test_bad_option_rows_are_reported_by_row_and_field_and_good_rows_kept():
    rows = response_rows(OPTIONS)
    rows[1] = dict(rows[1], mark_iv=None)
    rows[2] = dict(rows[2], underlying_price="n/a")
    rows[3] = dict(rows[3], instrument_name="BTC-31FEB26-70000-C")
    rows[4] = dict(rows[4], creation_timestamp=-1)
    vm = market_from_book_summary(rows)
    got = {(e.row, e.field) for e in vm.errors}
    assert got == {(2, "mark_iv"), (3, "underlying_price"), (4, "instrument_name"), (5, "creation_timestamp")}
    assert "missing" in str(next(e for e in vm.errors if e.row == 2))
    assert len(vm.quotes) == len(rows) - 4


def test_no_usable_row_is_a_venue_error():
    with pytest.raises(VenueError, match="no usable"):
        market_from_book_summary([{"instrument_name": "nonsense"}])


def test_positions_docs_example_uses_size_currency_for_an_inverse_perpetual():
    result = book_from_positions(POSITIONS)
    assert result.errors == []
    (p,) = result.book.positions
    assert p.name == "BTC-PERPETUAL"
    assert p.quantity == 0.006687487  # size_currency (coin); size 50 is USD
    assert p.entry_price == 7440.18


def test_positions_signs_options_and_row_errors():
    market = market_from_book_summary(OPTIONS, FUTURES).market
    rows = [
        {"instrument_name": "BTC-21SEP26-70000-P", "kind": "option", "size": -2.0, "direction": "sell",
         "average_price": 0.001, "average_price_usd": 80.8},
        {"instrument_name": "XRP_USDC-21SEP26-1d3-C", "kind": "option", "size": 1000, "direction": "buy",
         "average_price": 0.09},
        {"instrument_name": "BTC-25DEC26", "kind": "future", "size": 10000, "direction": "sell"},
        {"instrument_name": "BTC-25DEC26", "kind": "future_combo", "size": 1},
        {"instrument_name": "BTC-20SEP26-70000-C", "kind": "option", "size": 1.0, "direction": "buy"},
        {"instrument_name": "BTC-PERPETUAL", "kind": "future", "size": 0, "size_currency": 0, "direction": "zero"},
    ]
    result = book_from_positions({"jsonrpc": "2.0", "result": rows}, market)
    got = {p.name: (p.quantity, p.entry_price) for p in result.book.positions}
    assert got == {"BTC-21SEP26-70000-P": (-2.0, 80.8), "XRP-21SEP26-1d3-C": (1000.0, 0.09)}
    errors = {(e.row, e.field) for e in result.errors}
    assert errors == {(3, "size_currency"), (4, "kind"), (5, "instrument")}
    assert "expired" in str(next(e for e in result.errors if e.row == 5))


def test_positions_file_that_is_not_json_is_one_file_error():
    result = book_from_positions(b"not json")
    assert len(result.book) == 0 and result.errors[0].row == 0


# ------------------------------------------------------------------------------ fuzzing

row_values = st.none() | st.booleans() | st.integers(-10 ** 20, 10 ** 20) | st.floats() | st.text(max_size=12)
FIELDS = ["instrument_name", "mark_iv", "underlying_price", "creation_timestamp", "interest_rate", "mark_price",
          "bid_price", "ask_price", "estimated_delivery_price"]


@settings(max_examples=100, deadline=3000)
@given(st.lists(st.tuples(st.integers(0, 11), st.sampled_from(FIELDS), row_values), max_size=6),
       st.sampled_from(["jsonrpc", "bare", "text"]))
def test_fuzz_book_summary_rows(mutations, form):
    """Any mutation of the fixture rows: a VenueMarket whose every skipped row is reported, or a VenueError."""
    rows = response_rows(OPTIONS)
    for k, key, value in mutations:
        rows[k] = dict(rows[k], **{key: value})
    source = {"jsonrpc": "2.0", "result": rows} if form == "jsonrpc" else rows
    if form == "text":
        source = json.dumps(rows)
    try:
        vm = market_from_book_summary(source)
    except VenueError:
        return
    assert len(vm.quotes) + len({e.row for e in vm.errors}) == len(rows)


@settings(max_examples=100, deadline=3000)
@given(st.lists(st.dictionaries(st.sampled_from(["instrument_name", "kind", "size", "size_currency", "direction",
                                                 "average_price", "average_price_usd"]), row_values, max_size=7),
                max_size=5))
def test_fuzz_positions(rows):
    result = book_from_positions({"result": rows})
    assert len(result.book) <= len(rows)
    assert all(e.row >= 1 for e in result.errors)
