"""Callback bodies called as plain functions: what the user does, what the pages then show."""
import base64
import io

import numpy as np
import pandas as pd
import pytest
from components import text_of
from dash import Patch, no_update
from dash.exceptions import PreventUpdate

from dashboard import layout
from dashboard.format import usd
from dashboard.stores import account
from dashboard.stores import session as state


@pytest.fixture
def stores(app_context):
    return state.default_stores()


def card_texts(cards) -> dict:
    return {card.children[1].id: card.children[1].children for card in cards}



def test_quantity_edit_recomputes_the_greeks_and_the_stress_grid(pages, stores):
    book, market, settings = stores
    before = pages.greeks.render(book, market, settings)
    before_rows = pages.book.render(book, market, settings)[0]
    heat_before = pages.stress.scenario_figure(book, market, settings, 7, "heatmap", None)[0]

    new_book, note, rows, transaction, shown, _ = pages.book.edit_cells(
        [{"rowId": "1", "colId": "quantity", "value": "100", "oldValue": -7.7}], book, market, settings)
    assert "1 edit(s) applied" in text_of(note) and rows is no_update
    assert new_book["positions"][0]["quantity"] == 100.0
    # Only the edited row goes to the grid, with its new Greeks; the full render then sends nothing.
    (updated,) = transaction["update"]
    assert updated["id"] == "1" and updated["delta_usd"] == pytest.approx(
        100.0 / -7.7 * before_rows[0]["delta_usd"], rel=1e-9)
    assert pages.book.render(new_book, market, settings, shown) == (no_update,) * 4

    after = pages.greeks.render(new_book, market, settings)
    assert card_texts(after.cards)["card-delta_usd"] != card_texts(before.cards)["card-delta_usd"]
    heat_after = pages.stress.scenario_figure(new_book, market, settings, 7, "heatmap", None)[0]
    assert not np.allclose(heat_after.data[0].z, heat_before.data[0].z)
    grid_rows = pages.book.render(new_book, market, settings)[0]
    assert grid_rows[0]["quantity"] == 100.0 and grid_rows[0]["delta_usd"] == pytest.approx(
        state.analysis(new_book, market, settings).positions["delta_usd"][0])


def test_bad_edit_reports_row_and_field_and_reverts_the_cell(pages, stores):
    book, market, settings = stores
    data, note, rows, _, _, _ = pages.book.edit_cells(
        [{"rowId": "4", "colId": "quantity", "value": "ten", "oldValue": -2.2}], book, market, settings)
    assert data is no_update
    assert "row 4 (BTC-26MAR27-130000-P), quantity: 'ten' is not a number" in text_of(note)
    assert rows[3]["quantity"] == -2.2  # the grid gets the last good book back


def test_writers_do_nothing_when_the_page_is_merely_shown(pages, stores):
    book, market, settings = stores
    with pytest.raises(PreventUpdate):
        pages.book.edit_cells(None, book, market, settings)
    with pytest.raises(PreventUpdate):
        pages.book.load_demo(None, "covered_call", market, settings)
    with pytest.raises(PreventUpdate):
        pages.book.reset_market(None, book, settings)


def test_bad_csv_upload_lists_errors_and_keeps_the_book(pages, stores):
    book, market, settings = stores
    csv = "instrument,quantity,entry_price\nBTC-PERPETUAL,2,95000\nBTC-PERPETUAL,two,95000\n"
    contents = "data:text/csv;base64," + base64.b64encode(csv.encode()).decode()
    data, note, _, _, _, pending, reset = pages.book.upload(contents, "desk.csv", market, settings)
    assert data is no_update and reset is None
    assert pending["errors"] == [{"row": 2, "field": "quantity", "message": "'two' is not a number"}]
    report, hidden, label = pages.book.render_upload_report(pending)
    assert "row" in text_of(report).lower() and "'two' is not a number" in text_of(report)
    assert "The current book is unchanged" in text_of(report)
    assert hidden is False and label == "Load the 1 valid row (replace the book)"

    loaded, note, _, _, _, cleared = pages.book.accept_upload(1, pending, market, settings)
    assert [p["instrument"] for p in loaded["positions"]] == ["BTC-PERPETUAL"] and cleared is None
    assert "1 problem(s) skipped" in text_of(note)


def test_clean_upload_replaces_the_book(pages, stores):
    _, market, settings = stores
    contents = "data:text/csv;base64," + base64.b64encode(b"instrument,quantity\nETH-PERPETUAL,-3\n").decode()
    data, note, _, _, _, pending, _ = pages.book.upload(contents, "hedge.csv", market, settings)
    assert data["name"] == "hedge" and len(data["positions"]) == 1 and pending is None


def test_download_book_round_trips(pages, stores):
    book, _, _ = stores
    sent = pages.book.download_book(1, book)
    assert sent["filename"] == "desk_book_200_positions.csv"
    assert sent["content"].splitlines()[1] == "BTC-25DEC26-95000-C,-7.7,6303.2"


def test_market_edit_refused_names_the_field_and_resends_the_rows(pages, stores):
    book, market, settings = stores
    data, note, *rows = pages.book.edit_market_table(
        "smile", [{"rowId": "BTC|0", "colId": "atm_vol", "value": "-0.2"}], market, book, settings)
    assert data is no_update and "underlyings.BTC.smile[0].atm_vol: must be > 0" in text_of(note)
    assert rows[2][0]["atm_vol"] == 0.58


def test_greeks_page_cards_and_drill_down(pages, stores):
    view = pages.greeks.render(*stores, "ETH")
    texts, drill, pinned = card_texts(view.cards), view.drill_rows, view.drill_options
    options, chosen = view.strike_options, view.strike_choice
    totals = state.analysis(*stores).totals
    assert texts["card-theta_per_day"] == usd(totals["theta_per_day"])
    assert len(drill) == 200 and options == ["BTC", "ETH"] and chosen == "ETH"
    assert isinstance(pinned, Patch)
    model, note = pages.greeks.drill_filter({"x": "2026-12-25", "customdata": "BTC"}, by_expiry=True)
    assert model["underlying"]["filter"] == "BTC" and model["expiry"]["filter"] == "2026-12-25"
    assert "expiring 2026-12-25" in note


def test_stress_settings_refused_keep_the_grid(pages, stores):
    book, market, settings = stores
    data, note, options, value, *_ = pages.stress.apply_settings(50, 41, 30, 13, "0, 1, tomorrow", settings, 7.0,
                                                                  book, market)
    assert data is no_update and "horizons: 'tomorrow'" in text_of(note)
    assert [o["value"] for o in options] == [0.0, 1.0, 7.0, 30.0] and value == 7.0
    data, note, options, value, *_ = pages.stress.apply_settings(40, 17, 20, 5, "0, 14", settings, 7.0, book, market)
    assert data["horizons_days"] == [0.0, 14.0] and value == 0.0
    unchanged = pages.stress.apply_settings(50, 41, 30, 13, "0, 1, 7, 30", settings, 1.0, book, market)
    assert unchanged[:2] == (no_update, "")


def test_click_moves_the_selection_with_a_patch_and_attributes_the_cell(pages, stores):
    click = {"points": [{"x": -20.0, "y": 10.0, "z": 0.0}]}
    patch, _ = pages.stress.scenario_figure(*stores, 7, "heatmap", click, selection_only=True)
    assert isinstance(patch, Patch)
    title, rows = pages.stress.attribution(*stores, 7, click)
    result = state.analysis(*stores).stress_result
    s, v, h = result.cell(-0.20, 0.10, 7)
    assert sum(r["scenario_pnl"] for r in rows) == pytest.approx(result.pnl[s, v, h])
    assert sum(r["share"] for r in rows) == pytest.approx(1.0)
    assert "spot −20.0 %, vol +10 pts, after 7 d" in text_of(title)


def test_attribution_defaults_to_the_worst_cell(pages, stores):
    title, rows = pages.stress.attribution(*stores, 0, None)
    worst = state.analysis(*stores).stress_result.pnl[:, :, 0].min()
    assert sum(r["scenario_pnl"] for r in rows) == pytest.approx(worst)
    assert text_of(title).startswith("Worst cell")


def test_stress_csv_has_every_cell_under_the_context_header(pages, stores):
    sent = pages.stress.download_stress(1, *stores, account.default_account())
    comments = [line for line in sent["content"].splitlines() if line.startswith("#")]
    assert any("book: Desk book" in line for line in comments)
    assert any("market valuation time: 2026-11-24 08:00:00 UTC" in line for line in comments)
    assert any(line.startswith("# pmdash ") for line in comments)
    frame = pd.read_csv(io.StringIO(sent["content"]), comment="#")
    assert list(frame.columns) == ["spot_shock", "vol_shock", "horizon_days", "pnl_usd"]
    assert len(frame) == 41 * 13 * 4


def test_header_strip_names_book_and_market(stores):
    text = text_of(layout.book_context(*stores))
    assert "200 positions" in text and "BTC 95,000" in text and "valuation 2026-11-24 08:00:00 UTC" in text


def test_stress_heatmap_overlays_the_liquidation_boundary_on_request(pages, stores):
    """The overlay is the account's equity = MM line from the reverse stress: at each drawn point
    (spot %, vol points) a fresh margin check of the moved market gives equity ≈ MM."""
    from engine.crashes import shocked_market
    from engine.margin.account import account_health

    book, market, settings = stores
    acct = account.default_account()
    boundary = pages.stress.boundary_for(["on"], "heatmap", book, market, settings, acct)
    assert pages.stress.boundary_for([], "heatmap", book, market, settings, acct) is None
    fig, _ = pages.stress.scenario_figure(book, market, settings, 0, "heatmap", None, boundary=boundary)
    lines = [t for t in fig.data if t.type == "scatter" and t.mode == "lines"]
    assert lines, "no boundary drawn"
    b, m = state.book_of(book), state.market_of(market)
    x, y = next((xs, ys) for t in lines for xs, ys in zip(t.x, t.y, strict=True) if xs == xs and ys == ys)
    moved = shocked_market(m, b.underlyings, x / 100.0, y / 100.0)
    h = account_health(b, moved, acct["collateral"], acct["model"])
    assert h.equity == pytest.approx(h.maintenance, rel=0.02)
    plain, _ = pages.stress.scenario_figure(book, market, settings, 0, "heatmap", None)
    assert len(plain.data) < len(fig.data)
