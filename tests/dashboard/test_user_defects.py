"""Defects a new user met (issue 7), each checked as plain callback calls against the engine."""
from __future__ import annotations

import base64
import sys
from pathlib import Path

import numpy as np
import pytest
from components import text_of
from dash import no_update

from dashboard.components import health
from dashboard.figures import margin as margin_figures
from dashboard.format import usd
from dashboard.stores import account
from dashboard.stores import liquidation as liq
from dashboard.stores import session as state
from engine.margin import compute
from engine.samples import demo_book


@pytest.fixture(scope="module")
def pages(app_context):
    class Pages:
        book = sys.modules["dashboard.pages.book"]
        margin = sys.modules["dashboard.pages.margin"]
        liquidation = sys.modules["dashboard.pages.liquidation"]
        exchange = sys.modules["dashboard.pages.exchange"]
        stress = sys.modules["dashboard.pages.stress"]
        greeks = sys.modules["dashboard.pages.greeks"]

    return Pages


@pytest.fixture
def stores(app_context):
    book, market, settings = state.default_stores()
    return book, market, settings, account.default_account()


# ----------------------------------------------------------------------------- 5, 6, 7: one ratio, one set of levels


def test_margin_table_rows_carry_the_level_their_colour_rule_reads(pages, stores):
    book, market, _, acct = stores
    rows = pages.margin.render(book, market, acct).table_rows
    h = account.health(book, market, acct)
    standard = next(r for r in rows if r["model"] == "standard")
    mm = compute(state.book_of(book), state.market_of(market), "standard").maintenance
    assert standard["margin_ratio"] == pytest.approx(mm / h.equity)
    # Standard asks more MM than the equity: past 100 %, red (liquidatable), by hand.
    assert mm > h.equity and standard["level"] == "liquidatable"
    column = next(c for c in pages.margin.SIDE_BY_SIDE_COLUMNS if c["field"] == "margin_ratio")
    # dash-ag-grid evaluates the rules as JavaScript on ``params``; AG Grid's ``x`` shorthand is not defined there.
    assert column["cellClassRules"]["level-liquidatable"] == "params.data.level == 'liquidatable'"


def test_negative_equity_reads_as_such_on_every_page(pages, stores):
    _, market, settings, acct = stores
    book = state.book_data(demo_book("naked_short_strangle"))  # short options: the book's value is negative
    acct = dict(acct, collateral=0.0)
    h = account.health(book, market, acct)
    assert h.equity < 0 and h.margin_ratio == np.inf
    strip = text_of(health.health_items(book, market, acct))
    assert "∞ (equity ≤ 0)" in strip and "BANKRUPT" in strip and "120.0" not in strip
    gauge = margin_figures.ratio_gauge(h)
    assert gauge.data[0].mode == "gauge"  # no number: a pinned 120 % would contradict the ∞ of the title
    assert "∞" in gauge.layout.title.text and "∞" in gauge.layout.annotations[0].text
    rows = pages.margin.render(book, market, acct).table_rows
    assert all(r["margin_ratio"] is None and r["level"] == "bankrupt" for r in rows)
    cards = text_of(pages.liquidation.plan_view(book, market, acct, liq.DEFAULT_STRESS, liq.DEFAULT_PARAMS)[0])
    assert "Account now bankrupt" in cards and "∞ (equity ≤ 0)" in cards


def test_liquidation_status_and_health_strip_use_the_same_levels(pages, stores):
    book, market, _, acct = stores
    # Collateral for a ratio of 65 % (amber) by hand: equity = collateral + book value = MM / 0.65.
    first = account.health(book, market, acct)
    acct = dict(acct, collateral=first.maintenance / 0.65 - (first.equity - acct["collateral"]))
    h = account.health(book, market, acct)
    assert h.maintenance / h.equity == pytest.approx(0.65)
    strip = health.health_items(book, market, acct)
    assert "level-warning" in str(strip)
    cards = text_of(pages.liquidation.plan_view(book, market, acct, liq.DEFAULT_STRESS, liq.DEFAULT_PARAMS)[0])
    assert "Account now warning" in cards


# ----------------------------------------------------------------------------- 17: edits stay light


def test_no_book_edit_resends_the_instrument_suggestions(app_context, stores):
    """The ~600 listed names go out when a page is shown or the market changes, never on a book
    or account change (each time cost the browser ~0.6 s)."""
    from dashboard import ids

    heavy = {f"{ids.INSTRUMENT_LIST}.children", f"{ids.WHATIF_LIST}.children"}
    for output, spec in app_context.callback_map.items():
        triggers = {f"{i['id']}.{i['property']}" for i in spec["inputs"]}
        if triggers & {f"{ids.BOOK_STORE}.data", f"{ids.ACCOUNT_STORE}.data", f"{ids.SETTINGS_STORE}.data"}:
            assert not heavy & set(output.strip(".").split("..")), output
    _, market, _, _ = stores
    names = [o.value for o in sys.modules["dashboard.pages.book"].suggest_instruments(None, market)]
    assert len(names) > 500 and "BTC-PERPETUAL" in names


def test_header_figures_do_not_wait_for_the_liquidation_search(stores):
    """The strip's figures come from one margin run (no search for liquidation prices), and are
    the figures of the full health computation."""
    book, market, _, acct = stores
    for collateral in (2_000_000.0, 0.0):
        a = dict(acct, collateral=collateral)
        h = account.health(book, market, a)
        assert account.headline(book, market, a) == pytest.approx((h.equity, h.initial, h.maintenance), rel=1e-12)
    assert "liquidation" not in text_of(health.health_items(book, market, acct))
    assert "↓" in text_of(health.liquidation_items(book, market, acct))


# ----------------------------------------------------------------------------- 1, 3, 13, 14, 15: the book


def upload_payload(text: str) -> str:
    return "data:text/csv;base64," + base64.b64encode(text.encode()).decode()


def test_replacing_the_book_clears_the_ticks_and_a_delete_can_be_undone(pages, stores):
    book, market, settings, _ = stores
    data, note, undo, hidden = pages.book.delete_selected(1, [{"id": "2"}, {"id": "3"}], book, market, settings)
    assert len(data["positions"]) == 198 and "deleted 2" in text_of(note) and hidden is False
    restored, note, cleared, hidden = pages.book.undo_delete(1, undo, data)
    assert restored == book and cleared is None and hidden is True
    # After another change the undo would lose it: refused.
    later = pages.book.delete_selected(1, [{"id": "5"}], data, market, settings)[0]
    assert pages.book.undo_delete(1, undo, later)[0] is no_update
    # Loading, uploading or accepting a book clears the ticks (the new book reuses the row ids).
    for out in (pages.book.load_demo(1, "calendar_spread", market, settings),
                pages.book.upload(upload_payload("instrument,quantity\nBTC-PERPETUAL,1\n"), "a.csv", market, settings)):
        assert out[2] == [] and out[3] is None and out[4] is True


def test_header_only_csv_is_refused_and_the_book_stays(pages, stores):
    _, market, settings, _ = stores
    data, note, selected, *_, pending, _ = pages.book.upload(upload_payload("instrument,quantity,entry_price\n"),
                                                            "empty.csv", market, settings)
    assert data is no_update and selected is no_update
    report, hidden, _ = pages.book.render_upload_report(pending)
    assert "the file has no positions" in text_of(report) and hidden is True


def test_upload_errors_name_the_line_of_the_file(pages, stores):
    _, market, settings, _ = stores
    text = "instrument,quantity\nBTC-PERPETUAL,1\nBTC-PERPETUAL,2\nBTC-PERPETUAL,three\n"
    pending = pages.book.upload(upload_payload(text), "book.csv", market, settings)[5]
    report = text_of(pages.book.render_upload_report(pending)[0])
    assert "row 3 (line 4 of the file)" in report  # header = line 1, so data row 3 is line 4


def test_unknown_column_is_said_to_be_ignored(pages, stores):
    _, market, settings, _ = stores
    data, note, *_ = pages.book.upload(upload_payload("instrument,quantity,side\nBTC-PERPETUAL,1,sell\n"),
                                       "sides.csv", market, settings)
    assert data["positions"][0]["quantity"] == 1.0
    assert "'side' ignored" in text_of(note) and "msg-warning" in note.className


def test_extrapolated_expiry_is_named_in_the_header(stores):
    from dashboard import layout

    _, market, settings, _ = stores
    book = {"name": "late", "positions": [{"id": "1", "instrument": "BTC-31MAR28-100000-C", "quantity": 1.0,
                                           "entry_price": None}]}
    assert "BTC-31MAR28-100000-C" in text_of(layout.book_context(book, market, settings))


def test_add_clears_the_inputs_and_flashes_the_row_and_edits_mark_the_book(pages, stores):
    from dashboard import layout

    book, market, settings, _ = stores
    data, note, new_row, *inputs = pages.book.add_position(1, "BTC-PERPETUAL", "2", "", book, market, settings)
    assert new_row == data["positions"][-1]["id"] == "201" and inputs == ["", "", ""]
    assert data["edited"] is True and "(edited)" in text_of(layout.book_context(data, market, settings))
    assert "(edited)" not in text_of(layout.book_context(book, market, settings))
    refused = pages.book.add_position(1, "BTC-PERPETUAL", "lots", "", book, market, settings)
    assert refused[0] is no_update and refused[3:] == (no_update,) * 3  # the user fixes what was typed
    # The demo picker names the book in the store (after a reload too), not the default.
    loaded = pages.book.load_demo(1, "calendar_spread", market, settings)[0]
    assert pages.book.show_loaded_demo(None, loaded) == "calendar_spread"


# ----------------------------------------------------------------------------- 2: implausible market inputs


@pytest.mark.parametrize("grid, row, field, value, needle", [
    # 55 is past what the market file itself accepts (2,000 %): the engine's message says the unit.
    ("smile", "BTC|2", "atm_vol", "55", "atm_vol: 55 is above 20 (2000%) — vols are decimals (0.55 = 55 %)"),
    ("smile", "BTC|2", "atm_vol", "7", "ATM vol 7 would be 700 %"),
    ("underlyings", "BTC", "carry", "5", "BTC carry 5 would be 500 % a year"),
    ("global", "market", "usd_rate", "4", "USD rate 4 would be 400 % a year"),
    ("underlyings", "ETH", "spot", "340000", "ETH spot 340,000 is more than ×10 away from 3,400"),
    ("underlyings", "ETH", "spot", "30", "more than ×10"),
])
def test_implausible_market_inputs_are_refused_with_the_unit(pages, stores, grid, row, field, value, needle):
    book, market, settings, _ = stores
    data, note, *rows = pages.book.edit_market_table(grid, [{"rowId": row, "colId": field, "value": value}],
                                                     market, book, settings)
    assert data is no_update and needle in text_of(note) and "the market was not changed" in text_of(note)
    assert rows[0] != no_update  # the grids are re-sent: the refused cell goes back


def test_plausible_market_inputs_still_apply(pages, stores):
    book, market, settings, _ = stores
    for grid, row, field, value in (("smile", "BTC|2", "atm_vol", "0.9"), ("underlyings", "ETH", "spot", "6800"),
                                    ("underlyings", "BTC", "carry", "0.2")):
        data = pages.book.edit_market_table(grid, [{"rowId": row, "colId": field, "value": value}],
                                            market, book, settings)[0]
        assert data is not no_update


# ----------------------------------------------------------------------------- 4, 12: refused values and limits


def test_refused_collateral_goes_back_to_the_value_in_force(pages, stores):
    from dashboard import ids

    book, market, _, acct = stores
    data, note, box = pages.margin.change_account(ids.MARGIN_COLLATERAL, "lots", "risk_based", "deribit", acct,
                                                  book, market)
    assert data is no_update and "collateral must be a number" in text_of(note) and box == 2_000_000.0
    data, note, box = pages.margin.change_account(ids.MARGIN_COLLATERAL, "1,500,000", "risk_based", "deribit", acct,
                                                  book, market)
    assert data["collateral"] == 1_500_000.0 and box is no_update


def test_spot_steps_beyond_the_limit_says_the_limit_and_resets_the_box(pages, stores):
    book, market, settings, _ = stores
    data, note, _, _, *controls = pages.stress.apply_settings(50, 500, 30, 13, "0, 1, 7, 30", settings, 0.0,
                                                              book, market)
    assert data is no_update and "spot steps: at most 201 (got 500)" in text_of(note)
    assert "whole number" not in text_of(note)
    assert controls == [50, 41, 30, 13, "0, 1, 7, 30"]  # everything back to the grid in force
    note = pages.stress.apply_settings(50, 41, 30, 0, "0", settings, 0.0, book, market)[1]
    assert "vol steps: at least 1 (got 0)" in text_of(note)


# ----------------------------------------------------------------------------- 10: Exchange signals


@pytest.fixture(scope="module")
def small(app_context):
    from dashboard.stores import exchange as ex

    _, market, _ = state.default_stores()
    return market, account.default_account(), dict(ex.DEFAULT_SETTINGS, n_accounts=1_500, seed=3, spot_shock=-0.15)


def test_cascade_cut_by_the_round_limit_says_so(pages, small):
    from dashboard.stores import exchange as ex

    market, acct, settings = small
    full = ex.cascade_result("generated", settings, None, market, acct)
    ran = len(full.rounds) - 1  # rounds after the shock until nobody more is liquidated
    assert ran >= 2 and full.rounds["new_liquidations"].iloc[-1] == 0
    cut = dict(settings, max_rounds=1)
    title = pages.exchange.cascade_view("generated", cut, None, market, acct).layout.title.text
    assert "stopped at the limit of 1 rounds while still liquidating" in title
    title = pages.exchange.cascade_view("generated", settings, None, market, acct).layout.title.text
    assert "stopped" not in title and "spot ends at" in title


def test_no_shock_reads_0_and_money_axes_use_b_for_billions(pages, small):
    market, acct, settings = small
    _, cards, _, histogram = pages.exchange.queue_view("generated", dict(settings, spot_shock=0.0), None, market,
                                                       acct)
    assert "spot 0 %" in text_of(cards) and "+0" not in text_of(cards)
    assert "spot 0 %" in histogram.layout.title.text
    sweep = pages.exchange.sweep_view("generated", settings, None, market, acct)
    money = sweep.layout.yaxis2
    assert (money.exponentformat, money.tickprefix, money.tickformat) == ("B", "$", "")
    # No figure of any page formats money with d3's SI prefixes (G for billions).
    from pathlib import Path

    for path in Path("dashboard/figures").glob("*.py"):
        assert "~s" not in path.read_text(), path


# ----------------------------------------------------------------------------- 8: replay directions


def test_replay_offers_up_moves_says_which_way_threatens_and_shows_the_mirror(pages, stores):
    book, market, _, acct = stores
    h = account.health(book, market, acct)
    assert h.liquidation_shock_down is None and h.liquidation_shock_up > 0  # the desk book dies on a rise
    note, mirror_style = pages.liquidation.replay_direction(book, market, acct, "crash_24h")
    assert f"a rise of {100 * h.liquidation_shock_up:+.1f} %" in note and "goes up" in note
    assert mirror_style == {"display": "none"}
    assert pages.liquidation.replay_direction(book, market, acct, "upload")[1] is None
    choices = liq.path_choices()
    up = [k for k, label in choices.items() if "(spot up)" in label]
    assert "crash_24h:mirrored" in up and len(choices) == 2 * 3
    figure, _, _ = pages.liquidation.render_replay(1, book, market, acct, liq.DEFAULT_STRESS, liq.DEFAULT_PARAMS,
                                                   "crash_24h:mirrored", [], None)
    assert "0 liquidation point(s)" not in figure.layout.title.text and "(spot up)" in figure.layout.title.text
    # The mirror box flips only an uploaded path, and the chart says so.
    uploaded = {"filename": "p.csv", "hours": [0.0, 1.0], "spot_shock": [0.0, -0.1]}
    figure, _, _ = pages.liquidation.render_replay(1, book, market, acct, liq.DEFAULT_STRESS, liq.DEFAULT_PARAMS,
                                                   "upload", ["mirror"], uploaded)
    assert "p.csv, mirrored" in figure.layout.title.text and max(figure.data[0].y) > 0
    figure, _, _ = pages.liquidation.render_replay(1, book, market, acct, liq.DEFAULT_STRESS, liq.DEFAULT_PARAMS,
                                                   "crash_24h", ["mirror"], None)
    assert max(figure.data[0].y) <= 0  # a preset is never flipped by the box


# ----------------------------------------------------------------------------- 9: the plan table


def test_plan_table_merges_runs_of_one_instrument_and_keeps_the_detail(pages, stores):
    import pandas as pd

    steps = pd.DataFrame({"step": [1, 2, 3, 4, 5], "action": ["reduce", "reduce", "reduce", "hedge", "reduce"],
                          "instrument": ["A", "A", "A", "BTC-PERPETUAL", "A"],
                          "quantity": [6.9, 6.9, 2.0, -1.0, 1.0], "price": [10.0, 12.0, 20.0, 95_000.0, 9.0],
                          "cost": [7.0, 7.0, 2.0, 30.0, 1.0], "fee": [1.0, 1.0, 0.5, 3.0, 0.1],
                          "mm_after": [90.0, 80.0, 70.0, 60.0, 50.0], "equity_after": [9.0, 8.0, 7.0, 6.0, 5.0]})
    merged = liq.merged_steps(steps)
    assert list(merged["steps"]) == ["1–3", "4", "5"] and list(merged["trades"]) == [3, 1, 1]
    first = merged.iloc[0]
    assert first["quantity"] == pytest.approx(15.8) and first["cost"] == pytest.approx(16.0)
    assert first["price"] == pytest.approx((6.9 * 10 + 6.9 * 12 + 2.0 * 20) / 15.8)  # by hand
    assert (first["mm_after"], first["equity_after"]) == (70.0, 7.0)  # after the run's last step

    book, market, _, acct = stores
    push = {"mode": "push", "spot_shock": 0.0, "collateral": None}
    plan_rows = pages.liquidation.plan_view(book, market, acct, push, liq.DEFAULT_PARAMS)[2]
    every = pages.liquidation.plan_view(book, market, acct, push, liq.DEFAULT_PARAMS, detail=True)[2]
    assert sum(r["trades"] for r in plan_rows) == len(every) and len(plan_rows) < len(every)
    assert all(a["instrument"] != b["instrument"] or a["action"] != b["action"]
               for a, b in zip(plan_rows, plan_rows[1:], strict=False))
    summary = text_of(pages.liquidation.auction_view(book, market, acct, push, liq.DEFAULT_PARAMS)[0])
    assert "margin balance at start (MM′ = equity − MM" in summary


# ----------------------------------------------------------------------------- 16: delta in contracts and USD


def test_delta_card_shows_contracts_and_usd_per_underlying(pages, stores):
    book, market, settings, _ = stores
    out = pages.greeks.render(book, market, settings)
    delta_card = next(c for c in out.cards if "card-delta_usd" in str(c))
    text = " ".join(text_of(delta_card).split())
    positions = state.analysis(book, market, settings).positions
    for und, part in positions.groupby("underlying"):
        contracts = part["delta"].sum()
        spot = market["underlyings"][und]["spot"]
        # delta in units of the underlying × spot is the USD delta (linear contracts, multiplier 1).
        assert contracts * spot == pytest.approx(part["delta_usd"].sum(), rel=1e-9)
        assert f"{und} {contracts:,.4g} · {usd(part['delta_usd'].sum())}".replace("-", "−") in text
        assert usd(part["delta_usd"].sum()) in text


# ----------------------------------------------------------------------------- 18: progress and stale marking


def _walk(component, parent=None):
    yield component, parent
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if hasattr(child, "to_plotly_json"):
            yield from _walk(child, component)


def test_every_figure_and_result_grid_shows_progress_and_marks_itself_stale(pages):
    from dash import dcc
    from dash_ag_grid import AgGrid

    from dashboard.components import BUSY_AFTER_MS

    editors = {"margin-params-grid", "margin-scenario-grid", "collateral-grid"}
    for module in (pages.greeks, pages.stress, pages.margin, pages.liquidation, pages.exchange):
        outputs = [(c, p) for c, p in _walk(module.layout)
                   if isinstance(c, dcc.Graph) or (isinstance(c, AgGrid) and c.id not in editors)]
        assert outputs
        for component, parent in outputs:
            assert isinstance(parent, dcc.Loading), component.id
            assert parent.delay_show <= BUSY_AFTER_MS <= 500
            assert parent.overlay_style["visibility"] == "visible" and parent.overlay_style["opacity"] < 1
    css = (Path(__file__).parents[2] / "assets" / "style.css").read_text()
    assert '[data-dash-is-loading="true"]' in css and ".5s" in css


# ----------------------------------------------------------------------------- 19: layout of the figures


def test_surface_has_room_and_legends_leave_the_toolbar_corner_free(pages, stores, small):
    book, market, settings, _ = stores
    surface = pages.stress.scenario_figure(book, market, settings, 0.0, "surface", None)[0]
    scene = surface.layout.scene
    # Short titles (a 3-D scene neither wraps nor shortens them), few ticks, a box wider than tall.
    assert all(len(a.title.text) <= 22 and a.nticks <= 7 for a in (scene.xaxis, scene.yaxis, scene.zaxis))
    assert scene.aspectratio.x > scene.aspectratio.z and surface.layout.height >= 500
    market_, acct, ex_settings = small
    figures_ = [pages.exchange.queue_view("generated", ex_settings, None, market_, acct)[3],
                pages.exchange.sweep_view("generated", ex_settings, None, market_, acct),
                pages.exchange.cascade_view("generated", ex_settings, None, market_, acct)]
    for fig in figures_:
        # The toolbar sits at the top right: legends go left, and no title line is longer than
        # the half-width panel's room to the left of it.
        assert (fig.layout.legend.x, fig.layout.legend.xanchor) == (0, "left")
        assert all(len(line) <= 75 for line in fig.layout.title.text.replace("<sup>", "").split("<br>"))


def test_an_accepted_edit_answers_with_its_rows_and_the_account_figures(pages, stores):
    book, market, settings, acct = stores
    data, _, rows, transaction, shown, strip = pages.book.edit_cells(
        [{"rowId": "3", "colId": "quantity", "value": "10"}], book, market, settings, acct)
    assert rows is no_update and [r["id"] for r in transaction["update"]] == ["3"]
    assert text_of(strip) == text_of(health.health_items(data, market, acct))  # the header's own figures
    equity = account.headline(data, market, acct)[0]
    assert usd(equity) in text_of(strip) and equity != account.headline(book, market, acct)[0]


def test_accounts_upload_errors_name_the_line_too(pages, stores):
    _, market, _, _ = stores
    text = "account,collateral,instrument,quantity\nA,1000,BTC-PERPETUAL,1\nA,,BTC-PERPETUAL,x\n"
    _, _, report, _ = pages.exchange.upload_accounts(upload_payload(text), "accounts.csv", market)
    assert "row 2 (line 3 of the file)" in text_of(report)
