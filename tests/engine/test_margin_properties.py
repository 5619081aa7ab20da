"""Properties every margin model must have, on every demo book."""
import numpy as np
import pytest
from scipy import sparse

from engine import analyze
from engine.instruments import parse_instrument as P  # noqa: N812 — short for the many names
from engine.listing import listed_instruments
from engine.margin import MODELS, compute, compute_all, default_params, summary
from engine.margin.core import Universe, evaluate_accounts
from engine.margin.span import SpanParams
from engine.margin.tims import TimsParams
from engine.portfolio import Book, Position
from engine.samples import DEMO_BOOKS, demo_book, demo_market, random_book
from engine.scenarios import instrument_arrays

MARKET = demo_market()


@pytest.fixture(scope="module")
def all_results():
    return {key: compute_all(demo_book(key), MARKET) for key in DEMO_BOOKS}


def test_im_at_least_mm_at_least_zero(all_results):
    for key, results in all_results.items():
        assert set(results) == set(MODELS)
        for name, r in results.items():
            assert r.initial >= r.maintenance - 1e-9 >= -1e-9, (key, name)


def test_scaled_attribution_sums_to_total(all_results):
    for key, results in all_results.items():
        for name, r in results.items():
            assert r.by_position["scaled"].sum() == pytest.approx(r.initial, rel=1e-9, abs=1e-6), (key, name)
            assert r.by_position["scaled_mm"].sum() == pytest.approx(r.maintenance, rel=1e-9, abs=1e-6)
            assert len(r.by_position) == len(demo_book(key))


@pytest.mark.parametrize("model", list(MODELS))
def test_marginal_attribution_equals_rerun_without_the_position(model):
    book = demo_book("calendar_spread")
    r = compute(book, MARKET, model)
    for k in range(len(book)):
        without = compute(book.without(k), MARKET, model)
        assert r.by_position["marginal"][k] == pytest.approx(r.initial - without.initial, rel=1e-9, abs=1e-6)
        assert r.by_position["marginal_mm"][k] == pytest.approx(r.maintenance - without.maintenance,
                                                                rel=1e-9, abs=1e-6)


def test_hedge_lowers_risk_based_im_and_standard_is_higher_for_hedged_books():
    naked = compute(demo_book("naked_short_strangle"), MARKET, "risk_based")
    condor = compute_all(demo_book("short_iron_condor"), MARKET)
    assert condor["risk_based"].initial < naked.initial
    for name in ("risk_based", "span", "tims", "greeks_based"):
        assert condor["standard"].initial >= condor[name].initial, name


def test_capital_efficiency():
    results = compute_all(demo_book("short_iron_condor"), MARKET)
    table = summary(results).set_index("model")
    assert table.loc["standard", "capital_efficiency"] == pytest.approx(1.0)
    for name in ("risk_based", "span", "tims", "greeks_based"):
        expected = results["standard"].initial / results[name].initial
        assert table.loc[name, "capital_efficiency"] == pytest.approx(expected)
        assert expected > 1.0


def test_reuses_analysis_arrays_and_presets():
    book = demo_book("risk_reversal")
    a = analyze(book, MARKET)
    for preset in MODELS["risk_based"].presets:
        params = default_params("risk_based", preset)
        assert compute(book, MARKET, "risk_based", params, arrays=a.arrays).initial == \
            pytest.approx(compute(book, MARKET, "risk_based", params).initial)


def test_by_underlying_and_scenario_frames():
    book = demo_book("calendar_spread")
    for name, r in compute_all(book, MARKET).items():
        assert list(r.by_underlying["underlying"]) == ["BTC", "ETH"]
        if name != "greeks_based":  # SIMM diversifies across underlyings only with γ ≠ 0; still additive at γ = 0
            assert r.by_underlying["initial"].sum() == pytest.approx(r.initial)
        if name in ("risk_based", "span", "tims"):
            assert set(r.binding_scenario) == {"BTC", "ETH"}
            assert r.scenario_pnl.groupby("underlying")["binding"].sum().tolist() == [1, 1]
        else:
            assert r.scenario_pnl.empty and r.binding_scenario == {}


def test_empty_book_and_bad_params():
    for r in compute_all(Book(), MARKET).values():
        assert r.initial == r.maintenance == 0.0 and r.by_position.empty
    with pytest.raises(ValueError, match="unknown margin model"):
        compute(Book(), MARKET, "portfolio")
    with pytest.raises(ValueError, match="points must be an even integer"):
        compute(demo_book("covered_call"), MARKET, "tims", TimsParams(points=7))
    with pytest.raises(ValueError, match="vol_shocks is empty"):
        TimsParams(vol_shocks=()).validate()
    with pytest.raises(ValueError, match="span takes SpanParams"):
        compute(Book(), MARKET, "span", TimsParams())
    with pytest.raises(ValueError, match="no presets"):
        default_params("span", "okx")
    assert default_params("span") == SpanParams()


@pytest.mark.parametrize("model", list(MODELS))
def test_accounts_path_matches_books(model):
    listing = listed_instruments(MARKET)
    universe = Universe(instrument_arrays(listing, MARKET))
    rng = np.random.default_rng(3)
    Q = sparse.random(4, len(listing), density=0.03, random_state=rng, format="csr")
    Q.data = np.round((Q.data - 0.5) * 30, 1)
    params = default_params(model)
    rows = evaluate_accounts(MODELS[model].prepare(universe, params), Q, chunk_rows=3)
    dense = Q.toarray()
    for a in range(4):
        book = Book(tuple(Position(listing[k], float(dense[a, k])) for k in np.flatnonzero(dense[a])))
        r = compute(book, MARKET, model, params)
        assert rows[a, 0] == pytest.approx(r.initial, rel=1e-9, abs=1e-6)
        assert rows[a, 1] == pytest.approx(r.maintenance, rel=1e-9, abs=1e-6)


def test_random_book_attribution_is_consistent():
    book = random_book(300, seed=1, market=MARKET)
    for name, r in compute_all(book, MARKET).items():
        assert r.by_position["scaled"].sum() == pytest.approx(r.initial, rel=1e-9)
        k = int(np.argmax(np.abs(r.by_position["marginal"])))
        assert r.initial - compute(book.without(k), MARKET, name).initial == \
            pytest.approx(r.by_position["marginal"][k], rel=1e-8, abs=1e-6)


def test_single_perp_book_is_linear_in_size():
    one = compute_all(Book((Position(P("ETH-PERPETUAL"), 1.0),)), MARKET)
    ten = compute_all(Book((Position(P("ETH-PERPETUAL"), 10.0),)), MARKET)
    for name in MODELS:
        assert ten[name].initial == pytest.approx(10 * one[name].initial), name
