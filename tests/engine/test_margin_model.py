"""A resolved MarginModel is accepted wherever the engine takes ``(model name, params)``, with the
same result, and the ``arrays`` of an analysis can be reused."""
import pytest

from engine.analysis import analyze
from engine.instruments import parse_instrument
from engine.liquidation import compare_policies, liquidation_plan, preset_path, replay
from engine.liquidation.queue import PopulationParams, generate_population, margin_queue
from engine.margin import compute_all, margin_model
from engine.margin.account import account_health
from engine.margin.span import SpanParams
from engine.margin.whatif import optimal_hedge, what_if
from engine.portfolio import Position
from engine.samples import demo_book

PARAMS = SpanParams(price_scan_range=0.2)


@pytest.fixture(scope="module")
def book():
    return demo_book("short_iron_condor")


def test_margin_functions(book, market):
    m = margin_model("span", PARAMS)
    assert account_health(book, market, 5e4, m) == account_health(book, market, 5e4, "span", PARAMS)
    trade = [Position(parse_instrument("BTC-PERPETUAL"), 1.0)]
    assert what_if(book, market, trade, m) == what_if(book, market, trade, "span", PARAMS)
    assert optimal_hedge(book, market, m) == optimal_hedge(book, market, "span", PARAMS)
    assert compute_all(book, market, [m])["span"].initial == compute_all(book, market, ["span"], {"span": PARAMS})[
        "span"].initial


def test_liquidation_functions(book, market):
    m = margin_model("span", PARAMS)
    stressed = market.with_spot_shock(-0.1)
    assert liquidation_plan(book, stressed, 2e4, m).steps.equals(
        liquidation_plan(book, stressed, 2e4, "span", PARAMS).steps)
    assert compare_policies(book, stressed, 2e4, m).equals(compare_policies(book, stressed, 2e4, "span", PARAMS))
    path = preset_path("crash_24h", steps=5)
    assert replay(book, market, 2e4, path, m).path.equals(replay(book, market, 2e4, path, "span", PARAMS).path)
    pop = generate_population(market, PopulationParams(n_accounts=40, positions=4, seed=2))
    assert margin_queue(pop, market, -0.1, m).accounts.equals(margin_queue(pop, market, -0.1, "span", PARAMS).accounts)


def test_analysis_arrays_reused(book, market):
    """Margin, health and what-if on the analysis' own arrays equal those built afresh (a trade in an
    instrument the arrays lack falls back to fresh arrays)."""
    arrays = analyze(book, market).arrays
    assert compute_all(book, market, arrays=arrays)["risk_based"].initial == compute_all(book, market)[
        "risk_based"].initial
    assert account_health(book, market, 5e4, arrays=arrays) == account_health(book, market, 5e4)
    new = [Position(parse_instrument("ETH-PERPETUAL"), -3.0)]
    assert what_if(book, market, new, arrays=arrays) == what_if(book, market, new)
