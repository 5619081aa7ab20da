"""Store formats, transitions and the memoised engine call (dashboard/stores/session.py)."""
import base64

import pytest

from dashboard.stores import session as state
from engine.samples import demo_book


@pytest.fixture
def stores():
    return state.default_stores()


def upload_payload(text: str) -> str:
    return "data:text/csv;base64," + base64.b64encode(text.encode()).decode()


def test_book_round_trips_through_the_store(stores):
    book, _, _ = stores
    assert [r["id"] for r in book["positions"][:3]] == ["1", "2", "3"]
    assert state.book_of(book).to_records() == demo_book("desk_book").to_records()
    assert state.settings_data(state.settings_of(stores[2])) == stores[2]


def test_digest_is_content_based_and_ignores_row_ids(stores):
    book, market, settings = stores
    renumbered = dict(book, positions=[dict(r, id=str(100 + k)) for k, r in enumerate(book["positions"])])
    assert state.digest(book, market, settings) == state.digest(renumbered, market, settings)
    changed = dict(book, positions=[dict(book["positions"][0], quantity=1.0)] + book["positions"][1:])
    assert state.digest(book, market, settings) != state.digest(changed, market, settings)


def test_analysis_is_memoised_in_the_app_cache(app_context, stores):
    first = state.analysis(*stores)
    key = "analysis:" + state.digest(*stores)
    assert state._cache.get(key) is not None
    assert state.analysis(*stores).totals == first.totals


def test_try_analysis_reports_instead_of_raising(stores):
    book, market, settings = stores
    broken = dict(market, underlyings={"SOL": {"spot": 150.0, "carry": 0.0, "smile": []}})
    analysis, error = state.try_analysis(book, broken, settings)
    assert analysis is None and "BTC" in error


def test_quantity_edit_is_applied(stores):
    book, market, settings = stores
    outcome = state.edit_positions(book, market, settings, [{"rowId": "2", "colId": "quantity", "value": "12.5"}])
    assert not outcome.problems
    assert outcome.data["positions"][1] == dict(book["positions"][1], quantity=12.5)
    assert outcome.data["positions"][0] == book["positions"][0]


@pytest.mark.parametrize("field, value, words", [
    ("quantity", "abc", ["row 3", "quantity", "not a number"]),
    ("quantity", "0", ["row 3", "quantity", "non-zero"]),
    ("instrument", "FOO-BAR-BAZ", ["row 3", "instrument", "not a valid instrument"]),
    ("instrument", "SOL-PERPETUAL", ["row 3", "instrument", "no market data for SOL"]),
    ("instrument", "BTC-1NOV26-90000-C", ["row 3", "instrument", "expired"]),
    ("entry_price", "-5", ["row 3", "entry_price", "negative"]),
])
def test_bad_edit_names_row_and_field_and_keeps_the_book(stores, field, value, words):
    book, market, settings = stores
    outcome = state.edit_positions(book, market, settings, [{"rowId": "3", "colId": field, "value": value}])
    assert outcome.data is None
    text = " ".join(outcome.problems)
    assert all(w in text for w in words), text
    assert "BTC-31DEC27-90000-C" in text  # the row's instrument, to find it in a sorted grid


def test_good_edits_of_a_batch_apply_and_bad_ones_are_reported(stores):
    book, market, settings = stores
    outcome = state.edit_positions(book, market, settings, [
        {"rowId": "1", "colId": "quantity", "value": "-3"},
        {"rowId": "2", "colId": "quantity", "value": "lots"},
    ])
    assert outcome.data["positions"][0]["quantity"] == -3.0
    assert outcome.data["positions"][1] == book["positions"][1]
    assert len(outcome.problems) == 1 and "row 2" in outcome.problems[0]


def test_add_and_delete_positions(stores):
    book, market, settings = stores
    added = state.add_position(book, market, settings, "eth-perpetual", "-2", "")
    assert added.data["positions"][-1] == {"id": "201", "instrument": "ETH-PERPETUAL", "quantity": -2.0,
                                           "entry_price": None}
    refused = state.add_position(book, market, settings, "", "x", None)
    assert refused.data is None and any("instrument" in p for p in refused.problems)
    deleted = state.delete_positions(added.data, market, settings, ["1", "201"])
    assert len(deleted.data["positions"]) == 199 and deleted.data["positions"][0]["id"] == "2"
    assert state.delete_positions(book, market, settings, []).data is None


def test_upload_with_bad_rows_reports_each_and_keeps_the_valid_ones(stores):
    _, market, _ = stores
    text = ("instrument,quantity,entry_price\n"
            "BTC-25DEC26-95000-C,-5,6000\n"
            "BTC-25DEC26-95000-C,many,6000\n"
            "NOPE,1,\n")
    result = state.read_upload(upload_payload(text), "my book.csv", market)
    assert [(e.row, e.field) for e in result.errors] == [(2, "quantity"), (3, "instrument")]
    assert len(result.book) == 1 and result.book.name == "my book"


def test_unreadable_upload_is_a_file_error(stores):
    _, market, _ = stores
    result = state.read_upload("data:application/octet-stream;base64," + base64.b64encode(b"\xff\xfe\x00").decode(),
                               "book.xlsx", market)
    assert result.errors[0].row == 0 and "UTF-8" in result.errors[0].message


def test_market_edit_validates_with_the_engine_message(stores):
    book, market, settings = stores
    ok = state.edit_market(market, book, settings, "underlyings",
                           [{"rowId": "BTC", "colId": "spot", "value": "100000"}])
    assert ok.data["underlyings"]["BTC"]["spot"] == 100000.0
    bad = state.edit_market(market, book, settings, "smile", [{"rowId": "ETH|2", "colId": "atm_vol", "value": "0"}])
    assert bad.data is None and "underlyings.ETH.smile[2].atm_vol" in bad.problems[0]
    sticky = state.edit_market(market, book, settings, "global",
                               [{"rowId": "market", "colId": "sticky", "value": "strike"}])
    assert sticky.data["sticky"] == "strike"
    assert state.edit_market(market, book, settings, "global",
                             [{"rowId": "market", "colId": "usd_rate", "value": "five"}]).data is None


def test_market_rows_map_back_to_the_store(stores):
    _, market, _ = stores
    global_rows, underlyings, smile = state.market_rows(market)
    assert global_rows[0]["sticky"] == "moneyness"
    assert [u["id"] for u in underlyings] == ["BTC", "ETH"]
    assert smile[9]["id"] == "ETH|2"
    assert smile[9]["atm_vol"] == market["underlyings"]["ETH"]["smile"][2]["atm_vol"]


def test_settings_from_controls(stores):
    book, market, _ = stores
    ok = state.settings_from_controls(20, 9, 10, 5, "30, 0;7 7", book, market)
    assert ok.data == {"spot_range": 0.2, "spot_steps": 9, "vol_range": 0.1, "vol_steps": 5,
                       "horizons_days": [0.0, 7.0, 30.0]}
    assert "horizons: 'soon'" in state.settings_from_controls(20, 9, 10, 5, "1, soon", book, market).problems[0]
    problems = state.settings_from_controls(20, 500, 10, 5, "0", book, market).problems
    assert any("spot steps: at most 201" in p for p in problems)
    missing = state.settings_from_controls(20, None, 10, 5, "0", book, market)
    assert missing.problems == ("spot steps: enter a whole number from 2 to 201",)
    assert state.settings_from_controls(20, 9, 10, 5, "", book, market).data is None
