"""Market page callbacks as plain functions, and the vol surface figures (dashboard/pages/market.py,
dashboard/figures/surface.py).  Expected values come from the fixture files and closed forms."""
import base64
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import requests
from components import text_of
from dash import no_update
from hypothesis import HealthCheck, given
from hypothesis import settings as fuzz_settings
from hypothesis import strategies as st

from dashboard.figures import surface
from dashboard.stores import session as state
from engine.market import load_market, market_to_dict, surface_arbitrage

FIXTURES = Path(__file__).parent.parent / "engine" / "fixtures" / "deribit"
VAL = "2026-01-01T08:00:00Z"


@pytest.fixture
def page(app_context):
    return sys.modules["dashboard.pages.market"]


@pytest.fixture
def stores(app_context):
    return state.default_stores()


def upload_of(path: Path) -> str:
    return "data:application/json;base64," + base64.b64encode(path.read_bytes()).decode()


def test_venue_files_set_forwards_marks_and_the_snapshot_time(page, stores):
    book, market, settings = stores
    files = [FIXTURES / "book_summary_option.json", FIXTURES / "book_summary_future.json"]
    data, note, quotes, reset = page.upload([upload_of(f) for f in files], [f.name for f in files],
                                            book, market, settings)
    assert reset is None and data is not no_update
    btc = data["underlyings"]["BTC"]
    assert btc["perp_mark"] == 80831.57 and btc["futures"]["2026-12-25"] == 81945.21
    assert btc["smile"][0]["forward"] == 80809.22
    assert "XRP" in data["underlyings"] and "ETH" in data["underlyings"]  # the book's ETH is kept
    assert data["valuation_time"].startswith("2026-09-20T21:25:18")
    assert len(quotes["quotes"]) == 12 and {f["form"] for f in quotes["fits"]} == {"points"}
    assert "book_summary_option.json + book_summary_future.json" in text_of(note)


def test_market_json_upload_replaces_the_market_and_a_bad_one_is_refused(page, stores, tmp_path):
    book, market, settings = stores
    good = dict(market, usd_rate=0.02)
    f = tmp_path / "m.json"
    f.write_text(json.dumps(good))
    data, note, _, _ = page.upload([upload_of(f)], ["m.json"], book, market, settings)
    assert data["usd_rate"] == 0.02 and "loaded the market m.json" in text_of(note)
    bad = json.loads(json.dumps(market))
    bad["underlyings"]["BTC"]["smile"][0]["expiry"] = "2026-12-25junk"
    f.write_text(json.dumps(bad))
    data, note, quotes, _ = page.upload([upload_of(f)], ["m.json"], book, market, settings)
    assert data is no_update and quotes is no_update
    assert "underlyings.BTC.smile[0].expiry" in text_of(note)


def test_garbage_upload_is_a_message_not_an_exception(page, stores):
    book, market, settings = stores
    data, note, _, _ = page.upload(["data:application/json;base64,//79"], ["x.json"], book, market, settings)
    assert data is no_update and "UTF-8" in text_of(note)


def test_download_round_trips(page, stores):
    _, market, _ = stores
    sent = page.download(1, market)
    assert load_market(sent["content"]) == load_market(market)


def test_no_network_gives_a_clear_message(page, stores):
    book, market, settings = stores

    def offline(*args, **kwargs):
        assert kwargs["timeout"] == 5.0
        raise requests.ConnectionError("network unreachable")

    outcome, quotes = page.fetch("BTC", book, market, settings, get=offline)
    assert outcome.data is None and quotes is None
    assert "could not reach Deribit within 5 s" in outcome.problems[0]


def test_live_fetch_parses_the_public_snapshot(page, stores):
    book, market, settings = stores
    replies = {"option": json.loads((FIXTURES / "book_summary_option.json").read_text()),
               "future": json.loads((FIXTURES / "book_summary_future.json").read_text())}

    class Reply:
        def __init__(self, body):
            self.body = body

        def raise_for_status(self):
            return None

        def json(self):
            return self.body

    outcome, quotes = page.fetch("BTC", book, market, settings,
                                 get=lambda url, params, timeout: Reply(replies[params["kind"]]))
    assert outcome.data["underlyings"]["BTC"]["perp_mark"] == 80831.57 and len(quotes["quotes"]) == 12


def test_moving_the_valuation_time_settles_into_cash_and_reprices(page, stores):
    book, market, settings = stores
    before = state.analysis(book, market, settings)
    new_book, new_market, note, settled = page.roll(1, "2026-12-26T00:00:00Z", book, market, settings)
    expired = [r for r in book["positions"] if r["instrument"].split("-")[1] in ("27NOV26", "4DEC26", "25DEC26")]
    assert len(settled) == len(expired) and len(new_book["positions"]) == len(book["positions"]) - len(expired)
    spot = {u: v["spot"] for u, v in market["underlyings"].items()}
    for row in settled:  # options: intrinsic value on spot; futures: spot against entry — by hand
        parts = row["instrument"].split("-")
        if len(parts) == 4:
            payoff = max((spot[parts[0]] - float(parts[2])) * (1 if parts[3] == "C" else -1), 0.0)
        else:
            payoff = spot[parts[0]] - row["entry_price"] if row["entry_price"] is not None else 0.0
        assert row["cash"] == pytest.approx(row["quantity"] * payoff)
    assert new_market["valuation_time"] == "2026-12-26T00:00:00Z"
    assert "settled" in text_of(note)
    after = state.analysis(new_book, new_market, settings)
    assert after.totals["value"] != before.totals["value"]


def test_bad_valuation_time_is_refused(page, stores):
    book, market, settings = stores
    data, new_market, note, _ = page.roll(1, "tomorrow", book, market, settings)
    assert data is no_update and new_market is no_update and "valuation_time" in text_of(note)


def test_add_sol_with_its_own_expiry_in_every_form(page, stores):
    book, market, settings = stores
    data, note = page.add_underlying_clicked(1, "sol", "180", "0.02", book, market, settings)
    assert data["underlyings"]["SOL"]["spot"] == 180.0
    for form, expiry in (("quadratic", "2027-01-29"), ("svi", "2027-02-26"), ("points", "2027-03-26")):
        data, note = page.add_expiry_clicked(1, "SOL", expiry, form, "0.8", book, data, settings)
        assert data is not no_update, text_of(note)
    m = load_market(data)
    for s in m.underlying("SOL").smile:  # a flat 80 % smile in each form
        T = m.expiry_years(s.expiry)
        assert float(m.vol("SOL", 180.0 * math.exp(0.3), T).item()) == pytest.approx(0.8, rel=1e-12)
    data2, note = page.add_underlying_clicked(1, "SOL", "1", "0", book, data, settings)
    assert data2 is no_update and "already" in text_of(note)


def test_smile_form_change_keeps_the_atm_vol_and_a_bad_rate_is_refused(page, stores):
    book, market, settings = stores
    data, note, rows = page.edit_slice_cells([{"rowId": "BTC|2026-12-25", "colId": "form", "value": "points"}],
                                             book, market, settings)
    s = next(s for s in data["underlyings"]["BTC"]["smile"] if s["expiry"] == "2026-12-25")
    assert "points" in s and rows is no_update
    m0, m1 = load_market(market), load_market(data)
    T = m0.expiry_years(m0.underlying("BTC").smile[2].expiry)
    F = float(m0.forward("BTC", T))
    assert float(m1.vol("BTC", F, T).item()) == pytest.approx(0.55, rel=1e-9)  # a sampled point is the forward
    data, note, rows = page.edit_slice_cells([{"rowId": "BTC|2026-12-25", "colId": "rate", "value": "abc"}],
                                             book, market, settings)
    assert data is no_update and "rate" in text_of(note) and rows[0]["underlying"] == "BTC"


def test_fit_svi_to_quotes_reports_quality_per_expiry(page, stores):
    book, market, settings = stores
    rows = []
    for k in np.linspace(-0.3, 0.3, 9):  # quotes of a flat 60 % smile at the 2026-12-25 expiry
        rows.append({"underlying": "BTC", "expiry": "2026-12-25", "strike": 97000 * math.exp(k),
                     "option_type": "C" if k >= 0 else "P", "forward": 97000.0, "rate": 0.0, "mark_iv": 0.6})
    data, note, quotes = page.fit_clicked(1, {"quotes": rows}, book, market, settings)
    fits = quotes["fits"]
    assert [(f["expiry"], f["form"], f["quotes"]) for f in fits] == [("2026-12-25", "svi", 9)]
    assert fits[0]["rmse_pts"] < 1e-3
    assert all("svi" in s for s in data["underlyings"]["BTC"]["smile"])
    m = load_market(data)
    T = m.expiry_years(m.underlying("BTC").smile[2].expiry)
    assert float(m.vol("BTC", 97000.0, T).item()) == pytest.approx(0.6, abs=1e-5)


def test_render_fills_grids_and_the_surface(page, stores):
    _, market, _ = stores
    out = page.render(market, None, "ETH")
    slices, fits, options, value = out.slice_rows, out.fit_rows, out.surface_options, out.surface_choice
    assert len(slices) == 14 and fits == [] and options == ["BTC", "ETH"] and value == "ETH"
    assert {r["form"] for r in slices} == {"quadratic"}
    assert "calendar arbitrage" in text_of(out.arbitrage)  # the demo's ETH smiles cross (see test below)
    assert out.surface.data[0].type == "surface"


# ------------------------------------------------------------------------------ figures


def svi_market():
    return load_market({"valuation_time": VAL, "underlyings": {"BTC": {"spot": 100.0, "carry": 0.0, "smile": [
        {"expiry": "2026-04-01", "forward": 101.0, "svi": {"a": 0.01, "b": 0.1, "rho": -0.3, "m": 0.0, "sigma": 0.1}},
        {"expiry": "2026-07-01", "forward": 103.0,
         "svi": {"a": 0.005, "b": 0.1, "rho": -0.3, "m": 0.0, "sigma": 0.1}}]}}})


def test_smile_figure_draws_the_formula_and_the_marks_with_bid_ask():
    m = svi_market()
    import pandas as pd
    quotes = pd.DataFrame({"expiry": ["2026-04-01"] * 2, "strike": [95.0, 110.0], "forward": [101.0] * 2,
                           "mark_iv": [0.30, 0.28], "bid_iv": [0.29, np.nan], "ask_iv": [0.32, 0.30]})
    fig = surface.smile_figure(m, "BTC", quotes)
    line = fig.data[0]
    k = np.asarray(line.x)
    w = 0.01 + 0.1 * (-0.3 * k + np.sqrt(k * k + 0.01))
    assert np.asarray(line.y) == pytest.approx(100 * np.sqrt(w / (90 / 365)), rel=1e-9)
    marks = fig.data[1]
    assert list(marks.y) == pytest.approx([30.0, 28.0])
    assert list(marks.error_y.array) == pytest.approx([2.0, 2.0])
    assert list(marks.error_y.arrayminus) == pytest.approx([1.0, 0.0])


def test_term_structure_and_forward_figures():
    m = svi_market()
    warnings = surface_arbitrage(m)
    assert [w.kind for w in warnings] == ["calendar"]  # a falls from 0.01 to 0.005
    term = surface.term_structure_figure(m, "BTC", warnings)
    assert list(term.data[0].y) == pytest.approx([100 * math.sqrt(0.02 / (90 / 365)),
                                                  100 * math.sqrt(0.015 / (181 / 365))])
    assert term.data[0].marker.color[1] == surface.ALARM
    fwd = surface.forwards_figure(m, "BTC")
    assert list(fwd.data[0].y) == pytest.approx([101.0, 103.0])
    assert list(fwd.data[2].y) == pytest.approx([100 * math.log(1.01) / (90 / 365), 100 * math.log(1.03) / (181 / 365)])


def test_surface_figure_matches_market_vol_at_the_slices():
    m = svi_market()
    fig = surface.surface_figure(m, "BTC")
    z, k, days = np.asarray(fig.data[0].z), np.asarray(fig.data[0].x), np.asarray(fig.data[0].y)
    assert days[0] == pytest.approx(90) and days[-1] == pytest.approx(181)
    w = 0.01 + 0.1 * (-0.3 * k + np.sqrt(k * k + 0.01))
    assert z[0] == pytest.approx(100 * np.sqrt(w / (90 / 365)), rel=1e-9)


def test_market_json_in_the_store_is_the_engine_format(stores):
    _, market, _ = stores
    assert market_to_dict(load_market(market)) == market


def test_positions_file_becomes_the_book_and_a_bad_one_is_refused(page, stores, tmp_path):
    book, market, settings = stores
    rows = [{"instrument_name": "BTC-25DEC26-100000-C", "kind": "option", "size": -1.5, "direction": "sell",
             "average_price_usd": 3000.0},
            {"instrument_name": "ETH-PERPETUAL", "kind": "future", "size": 6800, "size_currency": 2.0,
             "direction": "buy", "average_price": 3400.0}]
    f = tmp_path / "positions.json"
    f.write_text(json.dumps({"jsonrpc": "2.0", "result": rows}))
    data, note, reset = page.upload_positions(upload_of(f), "positions.json", book, market, settings)
    assert [(p["instrument"], p["quantity"], p["entry_price"]) for p in data["positions"]] == [
        ("BTC-25DEC26-100000-C", -1.5, 3000.0), ("ETH-PERPETUAL", 2.0, 3400.0)]
    rows[1].pop("size_currency")
    f.write_text(json.dumps(rows))
    data, note, _ = page.upload_positions(upload_of(f), "positions.json", book, market, settings)
    assert data is no_update and "row 2, size_currency: missing" in text_of(note)


def test_forward_edit_sets_the_expiry_forward_and_blank_clears_it(page, stores):
    book, market, settings = stores
    data, note, _ = page.edit_slice_cells([{"rowId": "ETH|2027-03-26", "colId": "forward", "value": "3500"}],
                                          book, market, settings)
    m = load_market(data)
    assert float(m.forward("ETH", m.expiry_years(m.underlying("ETH").smile[4].expiry))) == pytest.approx(3500.0)
    data, note, _ = page.edit_slice_cells([{"rowId": "ETH|2027-03-26", "colId": "forward", "value": ""}],
                                          book, data, settings)
    assert "forward" not in data["underlyings"]["ETH"]["smile"][4]
    data, note, _ = page.edit_slice_cells([{"rowId": "ETH|2027-03-26", "colId": "forward", "value": "-1"}],
                                          book, market, settings)
    assert data is no_update and "underlyings.ETH.smile[4].forward" in text_of(note)


@fuzz_settings(max_examples=60, deadline=5000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode)
       | st.recursive(st.none() | st.floats() | st.integers() | st.text(max_size=10),
                      lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=15), c, max_size=3),
                      max_leaves=15).map(lambda v: json.dumps(v).encode()))
def test_fuzz_uploads_never_raise(page, stores, raw):
    book, market, settings = stores
    contents = "data:application/json;base64," + base64.b64encode(raw).decode()
    data, note, quotes, _ = page.upload([contents], ["fuzz.json"], book, market, settings)
    assert data is no_update or load_market(data)
    data, note, _ = page.upload_positions(contents, "fuzz.json", book, market, settings)
    assert data is no_update or isinstance(data["positions"], list)
