"""Exchange page: callback bodies and figures as plain functions, checked against the engine's
queue, shock sweep and cascade called directly on the same population."""
import base64
import sys

import numpy as np
import pytest
from components import text_of
from dash import no_update

from dashboard.figures.exchange import ratio_bins
from dashboard.stores import exchange as ex
from dashboard.stores import session as state
from dashboard.stores.account import default_account
from engine.liquidation.queue import CascadeParams, PopulationParams, cascade, generate_population, margin_queue

#: A small population keeps these tests fast; the page's logic does not depend on the size.
SMALL = dict(ex.DEFAULT_SETTINGS, n_accounts=1_500, seed=3, spot_shock=-0.15)


@pytest.fixture(scope="module")
def page(app_context):
    return sys.modules["dashboard.pages.exchange"]


@pytest.fixture(scope="module")
def world(app_context):
    """Market store value, default account, and the engine's population for ``SMALL``."""
    _, market, _ = state.default_stores()
    params = PopulationParams(n_accounts=SMALL["n_accounts"], seed=SMALL["seed"])
    pop = generate_population(state.market_of(market), params)
    return market, default_account(), pop



def liquidatable_card(cards) -> str:
    return next(c.children[1].children for c in cards if getattr(c.children[1], "id", None) == "ex-liquidatable")


def test_queue_table_is_the_engine_ranking(page, world):
    market, account, pop = world
    note, cards, rows, _ = page.queue_view("generated", SMALL, None, market, account)
    engine = margin_queue(pop, state.market_of(market), SMALL["spot_shock"]).accounts
    assert note == "" and len(rows) == SMALL["top_n"]
    assert [r["account"] for r in rows] == list(engine["account"].head(SMALL["top_n"]))
    assert [r["rank"] for r in rows] == list(range(1, SMALL["top_n"] + 1))
    assert liquidatable_card(cards) == f"{int(engine['liquidatable'].sum()):,}"
    # Most under water first: no equity left (empty ratio) on top, then falling ratios.
    ratios = [np.inf if r["margin_ratio"] is None else r["margin_ratio"] for r in rows]
    assert ratios == sorted(ratios, reverse=True)


def test_more_accounts_are_liquidatable_after_a_bigger_shock(page, world):
    market, account, _ = world
    counts = [int(liquidatable_card(page.queue_view("generated", dict(SMALL, spot_shock=s), None, market, account)[1])
                  .replace(",", "")) for s in (0.0, -0.15, -0.3)]
    assert counts[0] < counts[1] < counts[2]


def test_histogram_counts_every_account_once(page, world):
    market, account, pop = world
    _, _, _, histogram = page.queue_view("generated", SMALL, None, market, account)
    healthy, liquidatable = histogram.data
    queue = margin_queue(pop, state.market_of(market), SMALL["spot_shock"])
    assert sum(healthy.y) + sum(liquidatable.y) == len(pop)
    assert sum(liquidatable.y) == len(queue.liquidatable)
    bins = ratio_bins(queue)
    assert bins["left"].iloc[-1] == 300.0  # the overflow bar: ratios ≥ 300 % and no equity left
    no_equity = int((queue.accounts["equity"] <= 0).sum())
    assert no_equity > 0 and bins["liquidatable"].iloc[-1] >= no_equity


def test_shock_chart_counts_equal_the_queue_at_those_shocks(page, world):
    market, account, pop = world
    figure = page.sweep_view("generated", SMALL, None, market, account)
    bars, notional = figure.data[0], figure.data[1]
    assert list(bars.x) == pytest.approx([s * 100 for s in ex.SHOCK_GRID])
    for k in (0, 7, 10, 14, 20):  # −50 %, −15 %, 0, +20 %, +50 %
        queue = margin_queue(pop, state.market_of(market), ex.SHOCK_GRID[k])
        assert bars.y[k] == len(queue.liquidatable)
        assert notional.y[k] == pytest.approx(queue.liquidatable["notional_usd"].sum())


def test_default_cascade_visibly_cascades_and_is_the_engine_cascade(page, world):
    market, account, pop = world
    figure = page.cascade_view("generated", SMALL, None, market, account)
    result = cascade(pop, state.market_of(market), SMALL["spot_shock"],
                     cascade_params=CascadeParams(SMALL["impact_k"], SMALL["turnover"], SMALL["max_rounds"]))
    earlier, new = figure.data[-2], figure.data[-1]
    assert list(new.y) == list(result.rounds["new_liquidations"])
    assert earlier.y[-1] + new.y[-1] == len(result.liquidated)
    first_round = result.rounds["new_liquidations"].iloc[0]
    assert len(result.liquidated) > 1.1 * first_round  # later rounds add more than a tenth
    btc = next(t for t in figure.data if t.name == "BTC")
    assert btc.y[0] == pytest.approx(SMALL["spot_shock"] * 100) and btc.y[-1] < btc.y[0]


def test_settings_cap_the_population_and_refuse_bad_values(page):
    current = ex.DEFAULT_SETTINGS
    assert current["spot_shock"] == 0.0  # the page opens on the market as it is
    data, note, *controls = page.apply_settings(250_000, 0, -15, 100, 3, 0.2, 30, current)
    assert data["n_accounts"] == ex.MAX_ACCOUNTS and "capped at 100,000 accounts" in text_of(note)
    assert controls[0] == ex.MAX_ACCOUNTS and controls[2] == -15  # the box shows the value in force
    data, note, *controls = page.apply_settings(5_000, 0, -15, 100, 12, 0.2, 30, current)
    assert data is no_update and "impact k must be 0…10" in text_of(note)
    assert controls[4] == current["impact_k"] and controls[2] == 0  # refused: all back to the stored values
    data, note, *controls = page.apply_settings(5_000, 0.5, -15, 100, 3, 0.2, 30, current)
    assert data is no_update and "seed: enter a whole number" in text_of(note) and controls[1] == 0
    data, note, *controls = page.apply_settings(5_000, 0, -30, 100, 3, 0.2, 30, current)
    assert data == dict(current, spot_shock=-0.3) and controls == [no_update] * 7
    # Shown with the stored values (as when the page opens): nothing written, nothing said.
    assert page.apply_settings(5_000, 0, 0, 100, 3, 0.2, 30, current) == (no_update, "", *(no_update,) * 7)


def test_accounts_upload_reports_rows_and_uses_the_good_ones(page, world):
    market, account, _ = world
    text = ("account,collateral,instrument,quantity,entry_price\n"
            "alice,10000,BTC-PERPETUAL,-1,95000\n"
            "alice,,BTC-25DEC26-100000-C,2,\n"
            "bob,5000,NOPE-1,1,\n"
            "carol,4000,ETH-PERPETUAL,ten,\n"
            "dave,100,BTC-PERPETUAL,-3,90000\n")
    contents = "data:text/csv;base64," + base64.b64encode(text.encode()).decode()
    data, source, report, reset = page.upload_accounts(contents, "accounts.csv", market)
    assert source == "uploaded" and reset is None and data["accounts"] == 2
    shown = text_of(report)
    assert "2 problem(s)" in shown and "NOPE-1" in shown and "'ten' is not a number" in shown
    _, cards, rows, _ = page.queue_view("uploaded", dict(SMALL, spot_shock=0.0), data, market, account)
    assert {r["account"] for r in rows} == {"alice", "dave"}
    assert rows[0]["account"] == "dave"  # short 3 perps from 90,000 on 100 USD: no equity left at 95,000

    data, source, report, _ = page.upload_accounts(
        "data:text/csv;base64," + base64.b64encode(b"who,what\n1,2\n").decode(), "junk.csv", market)
    assert data is no_update and source is no_update and "expected account,collateral" in text_of(report)


def test_uploaded_source_without_a_file_says_so(page, world):
    market, account, _ = world
    note, cards, rows, _ = page.queue_view("uploaded", SMALL, None, market, account)
    assert "no accounts uploaded yet" in text_of(note) and rows is no_update
    assert page.sweep_view("uploaded", SMALL, None, market, account) is no_update
