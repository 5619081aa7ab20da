"""Portfolio VaR / ES: values checked by hand, against each other and against textbook figures."""
import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import analyze
from engine.instruments import parse_instrument
from engine.market import SmileSlice, UnderlyingMarket
from engine.portfolio import Book, Position
from engine.samples import demo_book, demo_market
from engine.var import (
    METHODS,
    HistoryError,
    RiskFactors,
    atm_vol,
    backtest,
    check_correlation,
    christoffersen,
    compute_var,
    default_correlation,
    delta_gamma_var,
    delta_normal_var,
    demo_history,
    ewma_vol,
    historical_scenarios,
    historical_var,
    kupiec_pof,
    market_factors,
    monte_carlo_var,
    read_history,
    sample_var,
)

MARKET = demo_market()
N = NormalDist()


def _book(*positions):
    return Book(tuple(Position(parse_instrument(name), q, entry) for name, q, entry in positions), "test")


# ----------------------------------------------------------------------------- parametric


@pytest.mark.parametrize("horizon", [1.0, 10.0])
@pytest.mark.parametrize("quantity", [2.0, -3.5])
def test_delta_normal_of_one_perp_is_z_sigma_root_h_delta(horizon, quantity):
    """VaR = z·σ·√(h/365)·|Δ|, Δ = q·S (a perp's $delta), σ the 30-day ATM vol; ES = φ(z)/(1−c)·σ·√h·|Δ|."""
    a = analyze(_book(("BTC-PERPETUAL", quantity, 90_000.0)), MARKET)
    sigma = atm_vol(MARKET, "BTC", 30.0)
    delta_usd = quantity * MARKET.spot("BTC")
    r = delta_normal_var(a, market_factors(MARKET, ("BTC",), horizon))
    for k, c in enumerate(r.confidences):
        z = N.inv_cdf(c)
        scale = sigma * math.sqrt(horizon / 365.0) * abs(delta_usd)
        assert r.var[k] == pytest.approx(z * scale, rel=1e-10)
        assert r.es[k] == pytest.approx(N.pdf(z) / (1 - c) * scale, rel=1e-10)


def test_delta_normal_hand_figure():
    """One BTC perp at 95,000 USD, σ = 50 %, 1 day, 99 %: 2.3263·0.5·√(1/365)·95,000 = 5,783.9 USD."""
    a = analyze(_book(("BTC-PERPETUAL", 1.0, None)), MARKET)
    f = RiskFactors(("BTC",), np.array([0.5 * math.sqrt(1 / 365), 0.0]), np.eye(2), 1.0)
    assert delta_normal_var(a, f, (0.99,)).var[0] == pytest.approx(5_783.9, abs=0.05)


def test_delta_normal_student_t_quantile_is_scaled_to_unit_variance():
    """t_ν quantile × √((ν−2)/ν): at ν = 4, 99 %, t = 3.7469 → 2.6495 standard deviations."""
    a = analyze(_book(("BTC-PERPETUAL", 1.0, None)), MARKET)
    f = RiskFactors(("BTC",), np.array([0.01, 0.0]), np.eye(2), 1.0)
    r = delta_normal_var(a, f, (0.99,), distribution="student_t", nu=4.0)
    assert r.var[0] == pytest.approx(3.746947 * math.sqrt(0.5) * 0.01 * MARKET.spot("BTC"), rel=1e-5)


def test_monte_carlo_converges_to_delta_normal_on_a_linear_book():
    """Perps are linear in spot: the MC quantile is an estimate of the delta-normal VaR, within
    three of its own standard errors (binomial order-statistic interval)."""
    book = _book(("BTC-PERPETUAL", 10.0, 94_000.0), ("ETH-PERPETUAL", -150.0, 3_300.0))
    a = analyze(book, MARKET)
    f = market_factors(MARKET, a.arrays.underlyings, 1.0)
    dn = delta_normal_var(a, f)
    mc = monte_carlo_var(a, f, paths=40_000, seed=11)
    assert np.all(mc.standard_error > 0)
    assert np.all(np.abs(mc.var - dn.var) < 3 * mc.standard_error)
    assert mc.standard_error[1] < 0.05 * dn.var[1]  # the test has power: the SE is a few % of VaR


def _flat_market():
    """The demo market with flat smiles (skew and curvature 0): the Greeks' sticky-strike
    expansion and the kernel's smile dynamics then agree."""
    unds = {u: UnderlyingMarket(m.spot, m.carry, tuple(SmileSlice(s.expiry, s.atm_vol) for s in m.smile))
            for u, m in MARKET.underlyings.items()}
    return MARKET.__class__(MARKET.valuation_time, unds, MARKET.usd_rate, MARKET.sticky)


STRADDLE = (("BTC-25DEC26-95000-C", -10.0, None), ("BTC-25DEC26-95000-P", -10.0, None))


@pytest.mark.parametrize("confidence", [0.95, 0.99])
def test_delta_gamma_cornish_fisher_matches_monte_carlo_on_a_short_straddle(confidence):
    """A short one-month ATM straddle (gamma, vega, vanna, volga, theta) over one day: the
    Cornish–Fisher VaR and ES agree with full-revaluation Monte Carlo (200,000 paths) within
    8 % — our stated tolerance: about 3 % comes from the quadratic expansion (full vs quadratic
    P&L) and about 2 % from the four-moment quantile (next test)."""
    market = _flat_market()
    a = analyze(_book(*STRADDLE), market)
    f = market_factors(market, ("BTC",), 1.0)
    dg = delta_gamma_var(a, f, (confidence,))
    mc = monte_carlo_var(a, f, (confidence,), paths=200_000, seed=3)
    assert dg.moments["skew"] < -0.1  # a skewed P&L: the Cornish–Fisher terms matter
    assert dg.var[0] == pytest.approx(mc.var[0], rel=0.08)
    assert dg.es[0] == pytest.approx(mc.es[0], rel=0.08)


@pytest.mark.parametrize("confidence", [0.95, 0.99])
def test_cornish_fisher_matches_the_sampled_quadratic_pnl(confidence):
    """Sampling θ·h + aᵀx + ½xᵀGx itself isolates the Cornish–Fisher step: within 3 %."""
    from engine.var import draw_factors, exposures
    market = _flat_market()
    a = analyze(_book(*STRADDLE), market)
    f = market_factors(market, ("BTC",), 1.0)
    ex = exposures(a)
    x = draw_factors(f, 400_000, seed=5)
    quad = ex.theta.sum() + x @ ex.first.sum(axis=0) + 0.5 * np.einsum("pi,ij,pj->p", x, ex.second(), x)
    v, e, _ = sample_var(quad, confidence)
    dg = delta_gamma_var(a, f, (confidence,))
    assert dg.var[0] == pytest.approx(v, rel=0.03)
    assert dg.es[0] == pytest.approx(e, rel=0.03)


def test_quadratic_moments_of_a_pure_gamma_book_are_chi_square():
    """P&L = ½·G·x², x ~ N(0, σ²): mean ½Gσ², variance ½G²σ⁴, skew √8, excess kurtosis 12."""
    from engine.var import quadratic_moments
    k1, k2, skew, kurt = quadratic_moments(np.zeros(1), np.array([[-4.0]]), np.array([[0.09]]))
    assert (float(k1), float(k2)) == pytest.approx((-0.18, 0.5 * 16 * 0.0081))
    assert (float(skew), float(kurt)) == pytest.approx((-math.sqrt(8), 12.0))


# ----------------------------------------------------------------------------- all methods


@pytest.fixture(scope="module")
def desk():
    return analyze(demo_book(), MARKET)


@pytest.fixture(scope="module")
def all_results(desk):
    history = demo_history()
    f = market_factors(MARKET, desk.arrays.underlyings, 1.0)
    return {m: compute_var(desk, m, factors=f, history=history, paths=5_000) for m in METHODS}


def test_es_is_at_least_var_and_both_grow_with_confidence(all_results):
    for m, r in all_results.items():
        assert np.all(r.es >= r.var - 1e-9), m
        assert np.all(np.diff(r.var) >= 0) and np.all(np.diff(r.es) >= 0), m


def test_euler_shares_sum_to_the_totals(all_results):
    for m, r in all_results.items():
        assert r.component_var.sum(axis=1) == pytest.approx(r.var, rel=1e-9), m
        assert r.component_es.sum(axis=1) == pytest.approx(r.es, rel=1e-9), m
        by_und = r.by_underlying(0.99)
        assert by_und["component_var"].sum() == pytest.approx(r.var[1], rel=1e-9), m


def test_delta_normal_component_of_a_hedge_is_negative():
    """A short perp against a long perp of the same size: each carries half the (zero) VaR of a
    flat book; with a smaller short the short's share is negative (it reduces risk)."""
    a = analyze(_book(("BTC-PERPETUAL", 10.0, None), ("BTC-PERPETUAL", -4.0, None)), MARKET)
    r = delta_normal_var(a, market_factors(MARKET, ("BTC",), 1.0), (0.99,))
    assert r.component_var[0, 1] < 0 < r.component_var[0, 0]
    assert r.component_var[0] == pytest.approx(np.array([10.0, -4.0]) / 6.0 * r.var[0])


# ----------------------------------------------------------------------------- historical


def test_historical_var_of_a_perp_is_the_hand_quantile_of_price_moves():
    history = demo_history()
    a = analyze(_book(("BTC-PERPETUAL", 2.0, None)), MARKET)
    r = historical_var(a, history, (0.95, 0.99))
    closes = history.prices["BTC"].to_numpy()
    pnl = np.sort(2.0 * MARKET.spot("BTC") * (closes[1:] / closes[:-1] - 1.0))
    n = len(pnl)
    for k, c in enumerate((0.95, 0.99)):
        tail = math.ceil(n * (1 - c))
        assert r.var[k] == pytest.approx(-pnl[tail - 1])
        assert r.es[k] == pytest.approx(-pnl[:tail].mean())


def test_ten_day_historical_moves_overlap():
    history = demo_history()
    spot, vol, dates = history.moves(("BTC", "ETH"), 10)
    p = history.prices.to_numpy()
    assert spot[5] == pytest.approx(p[15] / p[5] - 1.0)
    assert len(spot) == len(p) - 10 and not vol.any() and dates[0] == history.prices.index[10]


def test_ewma_recursion_by_hand():
    r = np.array([[0.02], [-0.01], [0.03]])
    sig = ewma_vol(r, 0.9, seed_days=2)
    v0 = (0.02 ** 2 + 0.01 ** 2) / 2
    v1 = 0.9 * v0 + 0.1 * 0.02 ** 2
    v2 = 0.9 * v1 + 0.1 * 0.01 ** 2
    v3 = 0.9 * v2 + 0.1 * 0.03 ** 2
    assert sig[:, 0] == pytest.approx(np.sqrt([v0, v1, v2, v3]))


def test_filtered_scenarios_rescale_by_todays_vol():
    history = demo_history()
    spot, _, _ = historical_scenarios(history, ("BTC",), 1, filtered=True, lam=0.94)
    r = np.diff(np.log(history.prices["BTC"].to_numpy()))
    sig = ewma_vol(r[:, None], 0.94)[:, 0]
    assert spot[:, 0] == pytest.approx(np.expm1(r / sig[:-1] * sig[-1]))


def test_sample_var_definition():
    pnl = np.array([5.0, -10.0, 3.0, -2.0, -7.0, 1.0, 0.0, 4.0, -1.0, 2.0])
    assert sample_var(pnl, 0.8) == (7.0, 8.5, 2)  # k = ⌈10·0.2⌉ = 2: worst two −10, −7


# ----------------------------------------------------------------------------- backtest


#: Jorion, *Value at Risk* (3rd ed., 2007), Table 6-3 "Model backtesting, 95 % nonrejection test
#: confidence regions" (after Kupiec 1995): exceptions N accepted, lower < N < upper.
JORION_REGIONS = [
    (0.01, 510, 1, 11), (0.01, 1000, 4, 17),
    (0.025, 255, 2, 12), (0.025, 510, 6, 21), (0.025, 1000, 15, 36),
    (0.05, 255, 6, 21), (0.05, 510, 16, 36), (0.05, 1000, 37, 65),
    (0.075, 255, 11, 28), (0.075, 510, 27, 51), (0.075, 1000, 59, 92),
    (0.10, 255, 16, 36), (0.10, 510, 38, 65), (0.10, 1000, 81, 120),
]


@pytest.mark.parametrize("p,T,lower,upper", JORION_REGIONS)
def test_kupiec_reproduces_jorions_nonrejection_regions(p, T, lower, upper):
    critical = 3.841459  # χ²(1) at 95 %
    assert kupiec_pof(T, lower, p)[0] > critical
    assert kupiec_pof(T, lower + 1, p)[0] < critical
    assert kupiec_pof(T, upper - 1, p)[0] < critical
    assert kupiec_pof(T, upper, p)[0] > critical


def test_kupiec_at_99_percent_over_255_days_rejects_seven():
    """Jorion Table 6-3: at p = 1 %, T = 255 the model is accepted for N < 7."""
    assert kupiec_pof(255, 6, 0.01)[0] < 3.841459 < kupiec_pof(255, 7, 0.01)[0]


def test_christoffersen_clustering_example():
    """q4quant exercise "Christoffersen independence — a clustering counter-example": T = 250,
    α = 4 %, exceptions on days {40, 41, 42, 100, 101, 200…204}.  Kupiec gives LR = 0 (10 = αT)
    while the transitions, counted by hand, are n01 = 3 (cluster starts), n11 = 7, n10 = 3,
    n00 = 249 − 13 = 236; LR_ind from the formula with those counts rejects independence."""
    e = np.zeros(250, dtype=int)
    e[[40, 41, 42, 100, 101, 200, 201, 202, 203, 204]] = 1
    n00, n01, n10, n11 = 236, 3, 3, 7
    pi, pi01, pi11 = 10 / 249, 3 / 239, 7 / 10
    lr_hand = -2 * ((n00 + n10) * math.log(1 - pi) + (n01 + n11) * math.log(pi)) \
        + 2 * (n00 * math.log(1 - pi01) + n01 * math.log(pi01) + n10 * math.log(1 - pi11) + n11 * math.log(pi11))
    res = christoffersen(e, 0.04)
    assert (res.n00, res.n01, res.n10, res.n11) == (n00, n01, n10, n11)
    assert res.lr_ind == pytest.approx(lr_hand)
    assert res.lr_ind > 3.841459 and res.p_ind < 0.05
    assert kupiec_pof(250, 10, 0.04)[0] == pytest.approx(0.0, abs=1e-12)
    assert res.lr_cc == pytest.approx(res.lr_ind)


def test_backtest_counts_exceptions_against_the_previous_window(desk):
    history = demo_history()
    bt = backtest(desk, history, 0.95, window=100)
    f = bt.frame
    assert bt.exceptions == int((f["pnl"] < -f["var"]).sum())
    assert len(f) == len(history.prices) - 1 - 100
    # The first forecast is the sample VaR of the first 100 days' book P&L under realised moves.
    spot, vol, _ = history.moves(desk.arrays.underlyings, 1)
    first_window = historical_var(desk, _history_slice(history, 0, 101), (0.95,))
    assert f["var"].iloc[0] == pytest.approx(first_window.var[0])
    assert bt.kupiec_lr == pytest.approx(kupiec_pof(len(f), bt.exceptions, 0.05)[0])


def _history_slice(history, start, stop):
    from engine.var import PriceHistory
    return PriceHistory(history.prices.iloc[start:stop], history.vols.iloc[start:stop], "slice")


# ----------------------------------------------------------------------------- inputs


def test_correlation_problems_name_the_entry():
    c = default_correlation(2)
    bad = c.copy()
    bad[0, 1] = 0.5
    with pytest.raises(ValueError, match="BTC spot / ETH spot"):
        check_correlation(bad, ["BTC spot", "ETH spot", "BTC vol", "ETH vol"])
    bad = c.copy()
    bad[0, 1] = bad[1, 0] = -0.9
    bad[0, 2] = bad[2, 0] = 0.9
    bad[1, 2] = bad[2, 1] = 0.9
    with pytest.raises(ValueError, match="positive semi-definite"):
        check_correlation(bad)


def test_history_errors_name_the_row_and_column():
    with pytest.raises(HistoryError, match="row 2, column BTC"):
        read_history("date,BTC\n2024-01-01,100\n2024-01-02,abc\n")
    with pytest.raises(HistoryError, match="row 2: date"):
        read_history("date,BTC\n2024-01-01,100\nyesterday,101\n")
    text = "date,BTC,BTC_vol\n" + "\n".join(f"2024-01-{d:02d},{100 + d},{50 + d}" for d in range(1, 31))
    h = read_history(text)
    assert h.vols["BTC"].iloc[0] == pytest.approx(0.51)  # percent read as a decimal
    a = analyze(_book(("ETH-PERPETUAL", 1.0, None)), MARKET)
    with pytest.raises(HistoryError, match="no column ETH"):
        historical_var(a, h)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("date,BTC_vol0123456789.-\n ")), max_size=300))
def test_read_history_fuzz_raises_only_history_errors(text):
    try:
        h = read_history(text)
    except HistoryError:
        return
    assert len(h.prices) >= 30 and (h.prices.to_numpy() > 0).all()


def test_bad_method_and_parameters_are_refused(desk):
    with pytest.raises(ValueError, match="unknown VaR method"):
        compute_var(desk, "magic")
    with pytest.raises(ValueError, match="needs a price history"):
        compute_var(desk, "historical")
    f = market_factors(MARKET, desk.arrays.underlyings, 1.0)
    with pytest.raises(ValueError, match="degrees of freedom"):
        monte_carlo_var(desk, f, distribution="student_t", nu=2.0)
    with pytest.raises(ValueError, match="paths"):
        monte_carlo_var(desk, f, paths=10)
    with pytest.raises(ValueError, match="horizon"):
        market_factors(MARKET, ("BTC",), 0.0)


def test_result_table_and_frames(all_results):
    t = pd.concat([r.table() for r in all_results.values()])
    assert set(t["method"]) == set(METHODS) and len(t) == 3 * len(METHODS)
    assert np.isnan(all_results["delta_normal"].table()["standard_error"]).all()
    assert (all_results["monte_carlo"].table()["standard_error"] > 0).all()
