"""The account's collateral assets and denomination on the Margin page: editor transitions, old
stores, coin-margined figures (USD ÷ spot) and wrong-way BTC collateral, checked against the engine."""
from __future__ import annotations

import sys
from dataclasses import replace

import pytest
from components import text_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard.components import collateral, health
from dashboard.format import money
from dashboard.stores import account
from dashboard.stores import session as state
from engine.account import Account
from engine.instruments import parse_instrument
from engine.margin import compute
from engine.margin.account import account_health
from engine.portfolio import Book, Position

SHORT_PUT = Book((Position(parse_instrument("BTC-25DEC26-90000-P"), -10.0),), name="short put")


@pytest.fixture(scope="module")
def page(app_context):
    return sys.modules["dashboard.pages.margin"]


@pytest.fixture
def stores(app_context):
    book, market, _ = state.default_stores()
    return state.book_data(SHORT_PUT), market, account.default_account()


def spot(market: dict, name: str = "BTC") -> float:
    return market["underlyings"][name]["spot"]


def edit(acct, book, market, col, value, row=0):
    return collateral.edit_cells(acct, book, market, [{"rowId": str(row), "colId": col, "value": value}])


# ----------------------------------------------------------------------------- store format


def test_old_store_loads_as_a_usd_cash_account(stores):
    book, market, _ = stores
    old = {"collateral": 750_000.0, "model": "risk_based", "params": {}}  # the store before collateral assets
    assert account.engine_account(old) == Account(cash=750_000.0)
    assert collateral.grid_rows(old) == []
    h = account.health(book, market, old)
    direct = account_health(SHORT_PUT, state.market_of(market), 750_000.0, "risk_based")
    assert (h.equity, h.initial, h.maintenance, h.currency) == (direct.equity, direct.initial, direct.maintenance,
                                                                 "USD")


def test_store_round_trips_the_engine_account(stores):
    book, market, acct = stores
    outcome = collateral.apply_preset(acct, book, market, "btc")
    engine = account.engine_account(outcome.data)
    assert account.engine_account(account.with_engine_account(acct, engine)) == engine


# ----------------------------------------------------------------------------- editor transitions


def test_add_edit_and_delete_a_collateral_row(stores):
    book, market, acct = stores
    added = collateral.add_row(acct, book, market).data
    assert collateral.grid_rows(added)[0]["asset"] == "BTC" and added["assets"][0]["amount"] == 0.0
    edited = edit(added, book, market, "amount", "3.5").data
    assert edited["assets"][0] == {"asset": "BTC", "amount": 3.5, "underlying": "BTC", "im_haircut": 0.0,
                                   "mm_haircut": 0.0, "risk_cancelling": False, "confidence": 1.0}
    priced = edit(edited, book, market, "price", "1.0").data
    assert priced["assets"][0]["price"] == 1.0 and "underlying" not in priced["assets"][0]
    # 3.5 units at a fixed 1 USD and 2,000,000 cash: collateral 2,000,003.5
    assert account.health(book, market, priced).collateral == pytest.approx(2_000_003.5)
    assert collateral.delete_rows(priced, book, market, []).data is None
    assert collateral.delete_rows(priced, book, market, [{"id": "0"}]).data["assets"] == []


@pytest.mark.parametrize("col, value, words", [
    ("amount", "lots", "collateral row 1: amount must be a number"),
    ("amount", "-2", "collateral row 1: amount"),
    ("im_haircut", "2", "collateral row 1: im_haircut"),
    ("confidence", "1.5", "collateral row 1: confidence"),
    ("risk_cancelling", "maybe", "collateral row 1: risk-cancelling"),
    ("asset", "DOGE", "collateral row 1: underlying"),
])
def test_bad_cell_is_refused_naming_row_and_field_and_the_account_is_kept(stores, col, value, words):
    book, market, acct = stores
    good = edit(collateral.add_row(acct, book, market).data, book, market, "amount", 2).data
    outcome = edit(good, book, market, col, value)
    assert outcome.data is None
    assert words in outcome.problems[0] and "kept" in outcome.problems[0]


def test_fixed_price_asset_cannot_cancel_risk(stores):
    book, market, acct = stores
    good = edit(collateral.add_row(acct, book, market).data, book, market, "price", 1.0).data
    outcome = edit(good, book, market, "risk_cancelling", True)
    assert outcome.data is None and "collateral row 1: risk_cancelling" in outcome.problems[0]


def test_denomination_changes_and_refusals(stores):
    book, market, acct = stores
    assert collateral.set_denomination(acct, book, market, "BTC").data["denomination"] == "BTC"
    assert collateral.set_denomination(acct, book, market, "USD").data is None  # unchanged: nothing to do
    assert "DOGE" in collateral.set_denomination(acct, book, market, "DOGE").problems[0]
    no_eth = dict(market, underlyings={"BTC": market["underlyings"]["BTC"]})
    assert "no ETH spot" in collateral.set_denomination(acct, book, no_eth, "ETH").problems[0]


def test_presets(stores):
    book, market, acct = stores
    btc = collateral.apply_preset(acct, book, market, "btc").data
    # the default 2,000,000 USD of collateral held in BTC at today's spot (4 decimals)
    assert btc["collateral"] == 0.0 and btc["denomination"] == "BTC"
    assert btc["assets"][0]["amount"] == round(2_000_000.0 / spot(market), 4)
    assert btc["assets"][0]["risk_cancelling"] is True
    usd = collateral.apply_preset(btc, book, market, "usd").data
    assert (usd["collateral"], usd["assets"], usd["denomination"]) == (2_000_000.0, [], "USD")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(col=st.sampled_from([c["field"] for c in collateral.COLUMNS]),
       value=st.one_of(st.none(), st.booleans(), st.floats(allow_nan=True), st.text(max_size=8)))
def test_any_cell_value_is_applied_or_refused_with_a_message(stores, col, value):
    book, market, acct = stores
    good = collateral.add_row(acct, book, market).data
    outcome = edit(good, book, market, col, value)
    if outcome.data is None:
        assert outcome.problems and "collateral row 1" in outcome.problems[0]
    else:
        account.engine_account(outcome.data)  # what was stored loads back


# ----------------------------------------------------------------------------- coin-margined figures


def test_coin_margined_figures_are_usd_over_spot(page, stores):
    book, market, acct = stores
    btc = collateral.apply_preset(acct, book, market, "btc").data
    s = spot(market)
    m = state.market_of(market)
    # Equity: the same account in USD, straight from the engine, divided by spot by hand.
    h_usd = account_health(SHORT_PUT, m, replace(account.engine_account(btc), denomination="USD"), "risk_based")
    # Requirements: the engine's coin-margined result (scenario losses in coin at the shocked spot).
    r_coin = compute(SHORT_PUT, m, "risk_based", account=account.engine_account(btc))
    assert r_coin.currency == "BTC"
    rows = page.side_by_side(account.margins(book, market, btc), account.health(book, market, btc))
    row = next(r for r in rows if r["model"] == "risk_based")
    assert row["currency"] == "BTC" and row["spot"] == s
    assert row["initial"] == pytest.approx(r_coin.initial, rel=1e-12)
    assert row["available"] == pytest.approx(h_usd.equity / s - r_coin.initial, rel=1e-9)
    strip = text_of(health.health_items(book, market, btc))
    equity, im, mm = (f"₿{x:,.3f}" for x in (h_usd.equity / s, r_coin.initial, r_coin.maintenance))
    assert strip.index(equity) < strip.index(im) < strip.index(mm)
    assert f"{equity} (${h_usd.equity / 1e6:.3g} M)" in strip
    assert "₿" not in text_of(health.health_items(book, market, acct))
    coin_result = account.margins(book, market, btc)["risk_based"]
    waterfall = page.figures.im_waterfall(coin_result)
    assert waterfall.layout.yaxis.title.text == "Requirement (BTC)"
    assert waterfall.layout.title.text.endswith(f"₿{r_coin.initial:,.4f}")
    heatmap = page.figures.scenario_heatmap(coin_result)
    assert heatmap.layout.coloraxis.colorbar.title.text == "Weighted P&L (BTC)"
    # the gauge carries the coin too
    assert f"₿{h_usd.equity / s:,.3f}" in page.figures.ratio_gauge(account.health(book, market, btc)).layout.title.text


def test_money_shows_the_coin_with_usd_beside():
    # 1,170,000 / 95,000 = 12.3157… BTC
    assert money(1_170_000.0, "BTC", 95_000.0) == "₿12.316 ($1.17 M)"
    assert money(-2_500.0, "ETH", 2_000.0) == "−Ξ1.250 (−$2.5 k)"
    assert money(1_234.4) == "$1,234"


# ----------------------------------------------------------------------------- wrong-way


def test_btc_collateral_against_a_short_put_raises_im_and_brings_liquidation_nearer(page, stores):
    book, market, acct = stores
    s = spot(market)

    def selected_im(a):
        rows = page.side_by_side(account.margins(book, market, a), account.health(book, market, a))
        row = next(r for r in rows if r["selected"])
        return row["initial"] * row["spot"]  # USD

    # 300,000 USD of collateral, as cash or as BTC: both liquidate within the ±50 % searched
    acct = account.set_collateral(acct, book, market, 300_000).data
    amount = round(300_000 / s, 4)
    row = {"asset": "BTC", "amount": amount, "underlying": "BTC", "risk_cancelling": True}
    btc = collateral.set_account(acct, book, market, [row], "BTC", 0.0, "").data
    btc_usd = collateral.set_denomination(btc, book, market, "USD").data
    usd_im = selected_im(acct)
    # USD-denominated: the binding −16 % scenario also takes 16 % off the BTC collateral, so IM rises
    # by 0.16 × amount × S (the same account's figure in tests/engine/test_account_collateral.py).
    assert selected_im(btc_usd) == pytest.approx(usd_im + 0.16 * amount * s, rel=1e-9)
    # Coin-margined (the preset): still above the cash account's IM.
    assert selected_im(btc) > usd_im
    usd_down = account.health(book, market, acct).distance_down_pct
    for a in (btc, btc_usd):
        down = account.health(book, market, a).distance_down_pct
        assert usd_down is not None and down is not None and down < usd_down


# ----------------------------------------------------------------------------- workspaces and lessons


def test_workspace_payload_keeps_the_account_and_refuses_a_bad_asset(stores):
    from dashboard.workspaces import payload

    book, market, acct = stores
    doc = payload.default_payload()
    btc = collateral.apply_preset(doc["account"], doc["book"], doc["market"], "btc").data
    checked = payload.check(dict(doc, account=btc))
    assert checked["account"]["assets"] == btc["assets"] and checked["account"]["denomination"] == "BTC"
    old = payload.check(dict(doc, account={"collateral": 5e5, "model": "span", "params": {}}))
    assert account.engine_account(old["account"]) == Account(cash=5e5)
    bad = dict(btc, assets=[dict(btc["assets"][0], mm_haircut=3)])
    with pytest.raises(payload.PayloadError, match=r"account\.collateral\[0\]\.mm_haircut"):
        payload.check(dict(doc, account=bad))


def test_lesson_step_sets_and_captures_collateral_assets(stores):
    from dashboard import lessons

    book, market, acct = stores
    btc = collateral.apply_preset(acct, book, market, "btc").data
    step = lessons.capture("BTC collateral", "/margin", book, market, state.default_stores()[2], btc)
    assert step["account"]["assets"] == btc["assets"] and step["account"]["denomination"] == "BTC"
    lesson = {"title": "t", "steps": [step]}
    resolved = lessons.step_state(lessons.parse(lesson), 0).account
    assert account.engine_account(resolved) == account.engine_account(btc)
    bad = dict(step, account=dict(step["account"], assets=[{"asset": "BTC", "amount": "x", "underlying": "BTC"}]))
    with pytest.raises(lessons.LessonError, match=r"steps\[0\]\.account\.collateral\[0\]\.amount"):
        lessons.step_state(lessons.parse({"title": "t", "steps": [bad]}), 0)


# ----------------------------------------------------------------------------- Liquidation page and report


def test_liquidation_cards_and_report_show_the_coin(stores):
    from dashboard import report
    from dashboard.stores import liquidation as liq

    liq_page = sys.modules["dashboard.pages.liquidation"]
    book, market, acct = stores
    btc = collateral.apply_preset(acct, book, market, "btc").data
    s = spot(market)
    h = account.health(book, market, btc)
    cards = text_of(liq_page.plan_view(book, market, btc, liq.DEFAULT_STRESS, liq.DEFAULT_PARAMS)[0])
    assert f"equity ₿{h.equity / s:,.3f}" in cards and f"MM ₿{h.maintenance / s:,.3f}" in cards
    table = report._health_table(h)
    assert table.iloc[0, 1].startswith(f"₿{h.equity / s:,.3f} (")
    # the report's context counts the BTC at today's spot: amount × S (no cash)
    assert report.context_of(book, market, btc).collateral_usd == pytest.approx(btc["assets"][0]["amount"] * s)
