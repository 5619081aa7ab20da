"""SVI, strike points, the fit and the static-arbitrage checks (engine/smile.py, engine/market.py, docs/market.md).

Reference values: the raw SVI formula evaluated by hand; Gatheral & Jacquier (2014),
"Arbitrage-free SVI volatility surfaces", Quantitative Finance 14(1) 59–71, Example 3.1 (Axel
Vogt's parameters a = −0.0410, b = 0.1331, m = 0.3586, ρ = 0.3060, σ = 0.4153 at T = 1, a slice
with butterfly arbitrage, negative density on a range of positive k); g is
also checked against a finite-difference density of undiscounted Black call prices.
"""
import math
from datetime import date

import numpy as np
import pytest

from engine.market import load_market, surface_arbitrage
from engine.pricing import black76_price
from engine.smile import SVI, SmileError, density_g, fit_svi, svi_derivatives

VOGT = SVI(a=-0.0410, b=0.1331, rho=0.3060, m=0.3586, sigma=0.4153)
VAL = "2026-01-01T08:00:00Z"


def vol1(m, K, T):
    return float(np.asarray(m.vol("BTC", K, T)).item())


def svi_by_hand(a, b, rho, m, sigma, k):
    return a + b * (rho * (k - m) + math.sqrt((k - m) ** 2 + sigma ** 2))


@pytest.mark.parametrize("k", [-1.0, -0.25, 0.0, 0.3586, 0.9, 1.5])
def test_svi_total_variance_and_vol_match_the_formula(k):
    w = svi_by_hand(-0.0410, 0.1331, 0.3060, 0.3586, 0.4153, k)
    assert float(VOGT.total_variance(k)) == pytest.approx(w, rel=1e-14)
    assert float(VOGT.vol(k, 1.0)) == pytest.approx(math.sqrt(w), rel=1e-14)
    assert float(VOGT.vol(k, 0.25)) == pytest.approx(math.sqrt(w / 0.25), rel=1e-14)


def test_svi_derivatives_match_finite_differences():
    k, h = np.linspace(-1, 1.5, 11), 1e-5
    _, w1, w2 = svi_derivatives(VOGT.as_array(), k)
    w = VOGT.total_variance
    assert w1 == pytest.approx((w(k + h) - w(k - h)) / (2 * h), rel=1e-6)
    assert w2 == pytest.approx((w(k + h) - 2 * w(k) + w(k - h)) / h ** 2, rel=1e-4)


def test_density_g_is_the_black_density_ratio():
    """g(k) = p(k)·√(2πw)·exp(d₋²/2) where p is the risk-neutral density ∂²C/∂K² (Breeden–
    Litzenberger) — checked on an arbitrage-free slice with a finite-difference density."""
    svi = SVI(0.04, 0.4, -0.4, 0.05, 0.1)  # Gatheral–Jacquier's arbitrage-free-looking set "A"
    F, T = 1.0, 1.0
    k = np.linspace(-0.4, 0.4, 9)
    K, dK = F * np.exp(k), 1e-4

    def call(strike):
        return black76_price(F, strike, T, svi.vol(np.log(strike / F), T), 0.0, True)

    density = (call(K + dK) - 2 * call(K) + call(K - dK)) / dK ** 2
    w, w1, w2 = svi_derivatives(svi.as_array(), k)
    d_minus = -k / np.sqrt(w) - np.sqrt(w) / 2
    expected = density * K * np.sqrt(2 * np.pi * w) * np.exp(d_minus ** 2 / 2)
    assert density_g(k, w, w1, w2) == pytest.approx(expected, rel=2e-3)


def one_slice_market(slice_extra, expiry="2027-01-01", spot=1.0):
    return load_market({"valuation_time": VAL, "underlyings": {"BTC": {
        "spot": spot, "carry": 0.0, "smile": [dict({"expiry": expiry}, **slice_extra)]}}})


def test_gatheral_jacquier_example_3_1_is_flagged_as_butterfly_arbitrage():
    m = one_slice_market({"svi": VOGT.__dict__}, expiry="2027-01-01")  # T = 1 year
    found = [w for w in surface_arbitrage(m) if w.kind == "butterfly"]
    assert len(found) == 1
    w = found[0]
    assert w.expiry == date(2027, 1, 1) and w.value < 0
    # The negative-density region lies at positive k; by the formula (hand evaluation of g) about (0.64, 1.26).
    assert 0.6 < w.k_from < w.k < w.k_to < 1.3
    assert "butterfly" in str(w) and "2027-01-01" in str(w)


def test_arbitrage_free_slice_is_not_flagged():
    m = one_slice_market({"svi": {"a": 0.04, "b": 0.4, "rho": -0.4, "m": 0.05, "sigma": 0.1}})
    assert surface_arbitrage(m) == ()


def test_calendar_arbitrage_is_flagged_with_both_expiries():
    """A later expiry with lower ATM total variance than an earlier one: w(0, T₂) < w(0, T₁)."""
    m = load_market({"valuation_time": VAL, "underlyings": {"ETH": {"spot": 1.0, "smile": [
        {"expiry": "2026-04-01", "svi": {"a": 0.05, "b": 0.1, "rho": 0.0, "m": 0.0, "sigma": 0.2}},
        {"expiry": "2026-07-01", "svi": {"a": 0.02, "b": 0.1, "rho": 0.0, "m": 0.0, "sigma": 0.2}}]}}})
    found = [w for w in surface_arbitrage(m) if w.kind == "calendar"]
    assert len(found) == 1
    w = found[0]
    assert (w.underlying, w.expiry, w.later) == ("ETH", date(2026, 4, 1), date(2026, 7, 1))
    # Same b, ρ, m, σ: the drop is a₂ − a₁ = −0.03 at every k.
    assert w.value == pytest.approx(-0.03, abs=1e-12)


def test_fit_recovers_known_parameters_from_noiseless_quotes():
    truth = SVI(a=0.02, b=0.12, rho=-0.35, m=0.03, sigma=0.15)
    F, T = 95000.0, 0.25
    K = F * np.exp(np.linspace(-0.6, 0.5, 35))
    vols = truth.vol(np.log(K / F), T)
    fit = fit_svi(K, vols, F, T)
    got = fit.params
    for name in ("a", "b", "rho", "m", "sigma"):
        assert getattr(got, name) == pytest.approx(getattr(truth, name), abs=1e-5), name
    assert fit.rmse_vol < 1e-7 and fit.butterfly_free and fit.quotes == 35


def test_fit_of_arbitrageable_quotes_removes_the_negative_density_inside_the_quotes():
    """Quotes sampled from Example 3.1: the constrained fit keeps g ≥ 0 over the quoted range."""
    k = np.linspace(-0.5, 1.4, 30)
    fit = fit_svi(np.exp(k), VOGT.vol(k, 1.0), 1.0, 1.0)
    w, w1, w2 = svi_derivatives(fit.params.as_array(), k)
    assert density_g(k, w, w1, w2).min() >= -1e-6
    assert fit.butterfly_free
    assert fit.rmse_vol < 0.02  # close to the quotes, not equal: they have arbitrage


def test_fit_needs_five_quotes():
    with pytest.raises(SmileError, match="5"):
        fit_svi([90, 100, 110, 120], [0.5, 0.45, 0.5, 0.55], 100.0, 0.5)
    with pytest.raises(SmileError, match="forward"):
        fit_svi(np.arange(1, 8) * 10.0, np.full(7, 0.5), -1.0, 0.5)


# -------------------------------------------------------------------- strike points


POINTS = [[80.0, 0.70], [100.0, 0.50], [130.0, 0.60]]


def test_strike_points_exact_at_the_points_and_flat_beyond():
    m = one_slice_market({"points": POINTS}, expiry="2026-04-01", spot=100.0)
    T = 90 / 365
    for K, v in POINTS:
        assert vol1(m, K, T) == pytest.approx(v, rel=1e-12)
    for K, v in [(40.0, 0.70), (70.0, 0.70), (150.0, 0.60), (1000.0, 0.60)]:
        assert vol1(m, K, T) == pytest.approx(v, rel=1e-12)


def test_strike_points_interpolate_variance_linearly_in_k():
    m = one_slice_market({"points": POINTS}, expiry="2026-04-01", spot=100.0)
    K = 90.0
    x = (math.log(90 / 80)) / (math.log(100 / 80))  # fraction of the way in k
    by_hand = math.sqrt(0.70 ** 2 + x * (0.50 ** 2 - 0.70 ** 2))
    assert vol1(m, K, 90 / 365) == pytest.approx(by_hand, rel=1e-12)


def test_total_variance_interpolation_between_svi_slices_at_constant_k():
    s1 = {"a": 0.01, "b": 0.1, "rho": -0.3, "m": 0.0, "sigma": 0.1}
    s2 = {"a": 0.03, "b": 0.12, "rho": -0.2, "m": 0.02, "sigma": 0.2}
    m = load_market({"valuation_time": VAL, "underlyings": {"BTC": {"spot": 100.0, "smile": [
        {"expiry": "2026-04-01", "svi": s1}, {"expiry": "2026-10-28", "svi": s2}]}}})
    t1, t2, t = 90 / 365, 300 / 365, 200 / 365
    k = 0.1
    w1, w2 = svi_by_hand(*s1.values(), k), svi_by_hand(*s2.values(), k)
    w = w1 + (t - t1) / (t2 - t1) * (w2 - w1)
    assert vol1(m, 100 * math.exp(k), t) == pytest.approx(math.sqrt(w / t), rel=1e-12)
