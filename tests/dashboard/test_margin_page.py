"""Margin page and account-health strip as plain functions: figures, transitions and callback
bodies checked against ``engine.margin`` without a browser."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from components import text_of
from dash import no_update
from dash.exceptions import PreventUpdate

from dashboard import ids
from dashboard.components import health
from dashboard.figures import margin as figures
from dashboard.format import usd
from dashboard.stores import account
from dashboard.stores import session as state
from engine.instruments import parse_instrument
from engine.margin import MODELS, compute, default_params
from engine.margin.account import account_health, health_status
from engine.margin.span import SpanParams
from engine.margin.whatif import what_if
from engine.portfolio import Position
from engine.samples import demo_book


@pytest.fixture(scope="module")
def page(app_context):
    return sys.modules["dashboard.pages.margin"]


@pytest.fixture
def stores(app_context):
    book, market, settings = state.default_stores()
    return book, market, settings, account.default_account()


def engine_of(book, market):
    return state.book_of(book), state.market_of(market)


def param_edit(page, acct, book, market, name, value):
    change = [{"rowId": name, "colId": "value", "value": value}]
    return page.edit_params(ids.PARAMS_GRID, change, None, acct, book, market)


# ----------------------------------------------------------------------------- side by side


def test_side_by_side_rows_equal_the_engine(page, stores):
    book, market, _, acct = stores
    acct = account.with_params(acct, "span", SpanParams(price_scan_range=0.2))
    rows = page.side_by_side(account.margins(book, market, acct), account.health(book, market, acct))
    b, m = engine_of(book, market)
    equity = account_health(b, m, acct["collateral"]).equity
    standard = compute(b, m, "standard").initial
    assert [r["model"] for r in rows] == list(MODELS)
    for row in rows:
        params = SpanParams(price_scan_range=0.2) if row["model"] == "span" else None
        expected = compute(b, m, row["model"], params)
        assert row["initial"] == pytest.approx(expected.initial, rel=1e-12)
        assert row["maintenance"] == pytest.approx(expected.maintenance, rel=1e-12)
        assert row["margin_ratio"] == pytest.approx(expected.maintenance / equity, rel=1e-12)
        assert row["available"] == pytest.approx(equity - expected.initial, rel=1e-12)
        assert row["capital_efficiency"] == pytest.approx(standard / expected.initial, rel=1e-12)
        assert row["selected"] == (row["model"] == "risk_based")


def test_render_fills_every_output_and_the_bars_match_the_table(page, stores):
    book, market, _, acct = stores
    out = page.render(book, market, acct)
    assert len(out) == len(page.OUTPUTS) == 11 and no_update not in out
    rows, bars = out.table_rows, out.bars
    assert list(bars.data[0].y) == pytest.approx([r["initial"] for r in rows])
    assert list(bars.data[1].y) == pytest.approx([r["maintenance"] for r in rows])
    assert bars.layout.yaxis.title.text == figures.REQUIREMENT
    assert out.scenario_editor_hidden is False  # the risk-based scenario editor is shown for the risk-based model


# ----------------------------------------------------------------------------- figures


@pytest.mark.parametrize("model", ["risk_based", "span", "tims"])
def test_binding_marker_sits_on_the_binding_scenario(stores, model):
    book, market, _, acct = stores
    result = account.margins(book, market, acct)[model]
    fig = figures.scenario_heatmap(result)
    heatmaps = [t for t in fig.data if t.type == "heatmap"]
    markers = [t for t in fig.data if t.type == "scatter"]
    assert len(markers) == len(result.binding_scenario) == len(heatmaps)
    for heat, marker in zip(heatmaps, markers, strict=True):
        und = marker.name.removeprefix("binding ")
        assert marker.customdata[0] == result.binding_scenario[und]
        frame = result.scenario_pnl[result.scenario_pnl["underlying"] == und]
        z = np.asarray(heat.z, dtype=float)
        cell = z[list(heat.y).index(marker.y[0]), list(heat.x).index(marker.x[0])]
        assert cell == pytest.approx(frame["weighted_pnl"].min())
        assert cell == pytest.approx(np.nanmin(z))
    axes = fig.layout.to_plotly_json()
    titles = {axes[k].get("title", {}).get("text") for k in axes if k.startswith(("xaxis", "yaxis"))}
    assert {"Spot shock (% of spot)", "Vol shock"} <= titles


def test_models_without_a_grid_say_so(stores):
    book, market, _, acct = stores
    results = account.margins(book, market, acct)
    for model in ("standard", "greeks_based"):
        fig = figures.scenario_heatmap(results[model])
        assert not fig.data and "no scenarios" in fig.layout.annotations[0].text


@pytest.mark.parametrize("key", ["desk_book", "naked_short_strangle", "short_iron_condor", "covered_call",
                                 "calendar_spread", "delta_hedged_long_straddle"])
def test_waterfall_ends_at_im(app_context, key):
    book = state.book_data(demo_book(key))
    market = state.default_stores()[1]
    for model, result in account.margins(book, market, account.default_account()).items():
        fig = figures.im_waterfall(result)
        trace = fig.data[0]
        assert trace.measure[-1] == "total" and trace.y[-1] == pytest.approx(result.initial)
        assert sum(trace.y[:-1]) == pytest.approx(result.initial, rel=1e-9, abs=1e-6), model
        assert not any(label.startswith("other") for label in trace.x), model
        assert fig.layout.yaxis.title.text == figures.REQUIREMENT


def test_waterfall_counts_a_binding_floor_only_above_the_loss(app_context):
    """A short option minimum of 50 % of spot binds the strangle: its step is only the excess."""
    book, market, _ = state.default_stores()
    book = state.book_data(demo_book("naked_short_strangle"))
    acct = account.with_params(account.default_account(), "span", SpanParams(short_option_minimum=0.5))
    result = account.margins(book, market, acct)["span"]
    steps = dict(result.waterfall)
    requirement = result.initial / result.params.initial_multiplier
    assert result.components["short_option_minimum"] > result.components["scanning_risk"]
    assert steps["short option minimum (above the scan)"] == pytest.approx(
        requirement - result.components["scanning_risk"] - result.components["calendar_spread_charge"])


def test_attribution_top_positions_group_the_rest(stores, page):
    book, market, _, acct = stores
    result = account.margins(book, market, acct)["risk_based"]
    top = figures.top_positions(result.by_position, "marginal", 10)
    assert len(top) == 11 and top["label"].iloc[-1] == f"other {len(book['positions']) - 10} positions"
    assert top["value"].sum() == pytest.approx(result.by_position["marginal"].sum())
    assert list(top["value"].abs().iloc[:10]) == sorted(top["value"].abs().iloc[:10], reverse=True)
    fig, options, chosen = page.attribution(book, market, acct, "scaled", 5, "ETH")
    assert chosen == "ETH" and [o["value"] for o in options] == ["all", "BTC", "ETH"]
    eth = result.by_position[result.by_position["underlying"] == "ETH"]
    assert sum(fig.data[0].x) == pytest.approx(eth["scaled"].sum())
    assert "USD" in fig.layout.xaxis.title.text
    # The subtitle states the engine's scaling rule, and the scaled shares add up to IM.
    assert "Euler share" in figures.attribution_bars(result).layout.title.text
    assert result.by_position["scaled"].sum() == pytest.approx(result.initial)
    condor = account.margins(state.book_data(demo_book("short_iron_condor")), market, acct)["risk_based"]
    assert condor.by_position["marginal"].sum() < 0
    # The short leg on the binding scenario's side carries the largest share, the long wing that
    # hedges it a negative one, and the shares still add up to IM.
    shares = condor.by_position.set_index("instrument")["scaled"]
    rise = condor.binding_scenario["BTC"].startswith("spot +")
    short_leg, wing = (("BTC-25DEC26-110000-C", "BTC-25DEC26-125000-C") if rise
                       else ("BTC-25DEC26-80000-P", "BTC-25DEC26-65000-P"))
    assert shares.idxmax() == short_leg and shares[wing] < 0
    assert shares.sum() == pytest.approx(condor.initial)


@pytest.mark.parametrize("equity, mm, level", [(100.0, 0.0, "healthy"), (100.0, 49.99, "healthy"),
                                              (100.0, 50.0, "warning"), (100.0, 79.99, "warning"),
                                              (100.0, 80.0, "danger"), (100.0, 150.0, "liquidatable"),
                                              (-1.0, 10.0, "bankrupt")])
def test_gauge_colour_thresholds(equity, mm, level):
    h = type("H", (), {"equity": equity, "maintenance": mm})
    assert health_status(h.equity, h.maintenance) == level
    assert f"gauge-fill {level}" == health.gauge(mm / equity if equity > 0 else np.inf, level).children[0].className


def test_gauge_figure_uses_the_level_colour(stores):
    book, market, _, acct = stores
    health = account.health(book, market, dict(acct, collateral=500_000.0))
    fig = figures.ratio_gauge(health)
    assert health.margin_ratio > figures.GAUGE_MAX
    assert fig.data[0].value == pytest.approx(figures.GAUGE_MAX * 100)
    assert fig.data[0].gauge.bar.color == figures.LEVEL_COLOURS["liquidatable"]


# ----------------------------------------------------------------------------- parameters


@pytest.mark.parametrize("model, name, value, expected", [
    ("span", "price_scan_range", "-0.1", "price_scan_range must be in (0, 0.9]"),
    ("risk_based", "margin.im_factor", "-1", "margin.im_factor must be in"),
    ("risk_based", "vol_shock.vol_range_up", "abc", "vol_shock.vol_range_up must be a number"),
    ("tims", "vol_shocks", "[]", "vol_shocks is empty"),
    ("tims", "vol_shocks", "0.1", "vol_shocks must be a list"),
    ("greeks_based", "delta_risk_weight", None, "delta_risk_weight must be a number"),
])
def test_bad_parameter_is_refused_and_nothing_is_stored(page, stores, model, name, value, expected):
    book, market, _, acct = stores
    acct = dict(acct, model=model)
    data, note, params, scenarios = param_edit(page, acct, book, market, name, value)
    assert data is no_update
    assert expected in str(note)
    # The grids are re-sent from the unchanged account, putting the bad cell back.
    assert [r["value"] for r in params] == [r["value"] for r in account.param_rows(acct, model)]
    assert scenarios == account.scenario_rows(acct)


def test_an_empty_scenario_list_is_refused(page, stores):
    book, market, _, acct = stores
    every = [r["id"] for r in account.scenario_rows(acct)]
    data, note, _, _ = page.edit_params(ids.SCENARIO_DELETE, 1, [{"id": i} for i in every], acct, book, market)
    assert data is no_update and "scenario list is empty" in str(note)


def test_a_good_parameter_is_stored_and_recomputed(page, stores):
    book, market, _, acct = stores
    acct = dict(acct, model="span")
    data, note, params, _ = param_edit(page, acct, book, market, "price_scan_range", "0.2")
    assert params is no_update and "price_scan_range = 0.2" in str(note)
    assert data["params"]["span"]["price_scan_range"] == 0.2
    b, m = engine_of(book, market)
    assert account.margins(book, market, data)["span"].initial == pytest.approx(
        compute(b, m, "span", SpanParams(price_scan_range=0.2)).initial)
    changed = {r["id"] for r in account.param_rows(data, "span") if r["value"] != r["default"]}
    assert changed == {"price_scan_range"}


def test_integer_and_list_parameters_keep_their_types(page, stores):
    book, market, _, acct = stores
    acct = dict(acct, model="tims")
    data, *_ = param_edit(page, acct, book, market, "points", "6")
    data, *_ = param_edit(page, data, book, market, "vol_shocks", "[-0.2, 0, 0.2]")
    params = account.model_params(data, "tims")
    assert params.points == 6 and params.vol_shocks == (-0.2, 0.0, 0.2)


def test_scenario_edits_add_and_delete(page, stores):
    book, market, _, acct = stores
    data, *_ = page.edit_params(ids.SCENARIO_GRID, [{"rowId": "0", "colId": "spot", "value": "-0.2"},
                                                    {"rowId": "0", "colId": "vol", "value": "down"}],
                                None, acct, book, market)
    first = account.model_params(data, "risk_based").scenarios[0]
    assert (first.spot, first.vol) == (-0.2, "down")
    data, *_ = page.edit_params(ids.SCENARIO_ADD, 1, None, data, book, market)
    assert len(account.scenario_rows(data)) == len(account.scenario_rows(acct)) + 1
    data, *_ = page.edit_params(ids.SCENARIO_DELETE, 1, [{"id": "0"}], data, book, market)
    assert len(account.scenario_rows(data)) == len(account.scenario_rows(acct))
    refused, note, *_ = page.edit_params(ids.SCENARIO_GRID, [{"rowId": "1", "colId": "weight", "value": "x"}],
                                         None, data, book, market)
    assert refused is no_update and "scenario 2 weight must be a number" in str(note)


def test_presets_and_reset_to_published_defaults(page, stores):
    book, market, _, acct = stores
    data, _, _ = page.change_account(ids.MARGIN_PRESET, None, None, "okx", acct, book, market)
    assert account.preset(data) == "okx"
    b, m = engine_of(book, market)
    okx = compute(b, m, "risk_based", default_params("risk_based", "okx")).initial
    assert account.margins(book, market, data)["risk_based"].initial == pytest.approx(okx)
    edited, *_ = param_edit(page, data, book, market, "margin.im_factor", "2")
    reset, note, *_ = page.edit_params(ids.PARAMS_RESET, 1, None, edited, book, market)
    assert "published defaults restored" in str(note)
    assert account.model_params(reset, "risk_based") == default_params("risk_based", "okx")
    back, _, _ = page.change_account(ids.MARGIN_PRESET, None, None, "deribit", reset, book, market)
    again, *_ = page.edit_params(ids.PARAMS_RESET, 1, None, back, book, market)
    assert again["params"] == {}


def test_account_controls_show_the_store_and_validate_collateral(page, stores):
    book, market, _, acct = stores
    acct = dict(acct, collateral=1_234.0, model="tims")
    assert page.account_controls(acct) == (1_234.0, "tims", "deribit")
    with pytest.raises(PreventUpdate):  # the page is being shown: controls still empty
        page.change_account(ids.MARGIN_COLLATERAL, None, None, None, acct, book, market)
    for bad in (-1, "", "abc", "nan"):
        data, note, _ = page.change_account(ids.MARGIN_COLLATERAL, bad, "tims", "deribit", acct, book, market)
        assert data is no_update and "collateral must be a number" in str(note)
    assert page.change_account(ids.MARGIN_COLLATERAL, 1_234.0, "tims", "deribit", acct, book, market)[0] is no_update
    data, note, _ = page.change_account(ids.MARGIN_COLLATERAL, "500,000", "tims", "deribit", acct, book, market)
    assert data["collateral"] == 5e5 and "$500,000" in str(note)
    data, _, _ = page.change_account(ids.MARGIN_MODEL, 5e5, "span", "deribit", acct, book, market)
    assert data["model"] == "span"


# ----------------------------------------------------------------------------- what-if and hedge


def test_what_if_matches_the_engine_and_refuses_bad_trades(page, stores):
    book, market, _, acct = stores
    result, problems = account.trial_trade(book, market, acct, "BTC-PERPETUAL", "-5")
    b, m = engine_of(book, market)
    expected = what_if(b, m, [Position(parse_instrument("BTC-PERPETUAL"), -5.0)], "risk_based")
    assert not problems and result == expected
    view = page.what_if_view(1, "BTC-PERPETUAL", "-5", book, market, acct)
    assert "Initial margin" in str(view)
    _, problems = account.trial_trade(book, market, acct, "BTC-1JAN20-1-C", "0")
    assert any("expired" in p for p in problems) and any("quantity is 0" in p for p in problems)


def test_hedge_added_to_the_book_lowers_im(page, stores):
    book, market, settings, acct = stores
    before = account.margins(book, market, acct)["risk_based"].initial
    table, disabled = page.hedge_view(1, book, market, acct)
    assert disabled is False and "BTC-PERPETUAL" in str(table)
    outcome = account.add_hedge(book, market, settings, acct)
    assert outcome.data is not None and "IM" in outcome.note
    added = outcome.data["positions"][len(book["positions"]):]
    assert {p["instrument"] for p in added} == {"BTC-PERPETUAL", "ETH-PERPETUAL"}
    after = account.margins(outcome.data, market, acct)["risk_based"].initial
    assert after < 0.6 * before
    assert after == pytest.approx(account.hedge(book, market, acct).initial_after)
    # Hedged again, nothing is left to add.
    assert account.hedge(outcome.data, market, acct).initial_after == pytest.approx(after, rel=1e-3)


# ----------------------------------------------------------------------------- health strip and lessons


def test_health_strip_shows_the_selected_model_with_units(stores):
    book, market, _, acct = stores
    text = " ".join(text_of([health.health_items(book, market, acct),
                             health.liquidation_items(book, market, acct)]).split())
    h = account.health(book, market, acct)
    for needle in ("Risk-based (deribit)", f"equity {usd(h.equity)}", f"IM {usd(h.initial)}",
                   f"MM {usd(h.maintenance)}", f"{h.margin_ratio * 100:.1f} %",
                   "liquidation ↓ none within ±50 %", f"↑ +{h.distance_up_pct:.1f} %",
                   f"BTC {usd(h.liquidation_price_up['BTC'])} (+{usd(h.distance_up_price['BTC'])})"):
        assert needle in text, needle
    low = text_of(health.health_items(book, market, dict(acct, collateral=0.0)))
    assert "LIQUIDATABLE" in low


def test_demo_lessons_hold(stores):
    """The page's explanations: wings do not change standard IM but cut the risk-based one; a
    delta-hedged long straddle needs more under a risk-based model than standard margin."""
    _, market, _, acct = stores
    rows = {r["book"]: r for r in account.examples(market, acct)}
    strangle, condor = rows["Naked short strangle"], rows["Short iron condor (hedged strangle)"]
    straddle = rows["Delta-hedged long straddle"]
    assert condor["standard"] == pytest.approx(strangle["standard"])
    assert condor["model"] < 0.3 * strangle["model"]
    assert straddle["model"] > straddle["standard"]
