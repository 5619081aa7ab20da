"""Black-76 prices and Greeks (engine/pricing.py, docs/methodology.md §4).

Expected values come from put–call parity, central finite differences of ``black76_price``,
QuantLib's ``BlackCalculator`` (an independent C++ implementation) and Hull's textbook example;
none is copied from the engine's output.
"""
import contextlib
import dataclasses
import itertools
import math

import numpy as np
import pytest

from engine.pricing import Greeks, black76_greeks, black76_price

# A grid of (F, K, T, σ, r) crossing moneyness, maturity, vol and rate; every point priced as call and put.
F_GRID = (60.0, 90.0, 100.0, 111.0, 170.0)
K_GRID = (100.0,)
T_GRID = (0.02, 0.25, 1.0, 3.0)
SIG_GRID = (0.1, 0.55, 1.2)
R_GRID = (0.0, 0.05, -0.01)


def grid():
    """Flattened broadcast arrays (F, K, T, σ, r, is_call) over the whole grid."""
    rows = list(itertools.product(F_GRID, K_GRID, T_GRID, SIG_GRID, R_GRID, (True, False)))
    return tuple(np.array(col) for col in zip(*rows, strict=True))


def norm_cdf(x):
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


# --------------------------------------------------------------------------------------------
# Price: textbook value, parity, QuantLib
# --------------------------------------------------------------------------------------------


def test_hull_black76_example():
    """Hull, *Options, Futures and Other Derivatives*, Black's model: F = K = 20, T = 4 months,
    σ = 25 %, r = 9 % → put = 1.12 (d1 = 0.07216, d2 = −0.07216, e^{−rT} = 0.97045)."""
    p = black76_price(20.0, 20.0, 4 / 12, 0.25, 0.09, False)
    assert float(p) == pytest.approx(1.12, abs=0.005)
    d1 = 0.5 * 0.25 * math.sqrt(4 / 12)
    by_hand = math.exp(-0.09 * 4 / 12) * 20.0 * (norm_cdf(d1) - norm_cdf(-d1))
    assert float(p) == pytest.approx(by_hand, rel=1e-12)


def test_put_call_parity_grid():
    """C − P = e^{−rT}(F − K) at every grid point, for the vectorised price and the Greeks' price."""
    F, K, T, sig, r, _ = grid()
    forward_value = np.exp(-r * T) * (F - K)
    c = black76_price(F, K, T, sig, r, True)
    p = black76_price(F, K, T, sig, r, False)
    np.testing.assert_allclose(c - p, forward_value, rtol=1e-10, atol=1e-10)
    gc, gp = black76_greeks(F, K, T, sig, r, True), black76_greeks(F, K, T, sig, r, False)
    np.testing.assert_allclose(gc.price - gp.price, forward_value, rtol=1e-10, atol=1e-10)
    # Differentiating parity: Δc − Δp = e^{−rT}; Γ, vega, vanna, volga are equal for call and put.
    np.testing.assert_allclose(gc.delta - gp.delta, np.exp(-r * T), rtol=1e-12)
    for name in ("gamma", "vega", "vanna", "volga"):
        np.testing.assert_allclose(getattr(gc, name), getattr(gp, name), rtol=1e-10, atol=1e-12)


def test_greeks_price_matches_black76_price():
    F, K, T, sig, r, call = grid()
    np.testing.assert_allclose(black76_greeks(F, K, T, sig, r, call).price,
                               black76_price(F, K, T, sig, r, call), rtol=1e-12, atol=1e-12)


def test_price_against_closed_form_by_hand():
    """Black-76 written out with math.erf, point by point."""
    for F, K, T, sig, r, call in zip(*grid(), strict=True):
        s = sig * math.sqrt(T)
        d1 = (math.log(F / K) + 0.5 * s * s) / s
        d2 = d1 - s
        w = 1.0 if call else -1.0
        expected = math.exp(-r * T) * w * (F * norm_cdf(w * d1) - K * norm_cdf(w * d2))
        assert float(black76_price(F, K, T, sig, r, call)) == pytest.approx(expected, rel=1e-10, abs=1e-12)


ql = None
with contextlib.suppress(ImportError):  # the Hull and finite-difference checks above and below still run
    import QuantLib as ql  # noqa: F811, N813

needs_quantlib = pytest.mark.skipif(ql is None, reason="QuantLib not installed (pip install .[test])")

QL_CASES = [
    (20.0, 20.0, 4 / 12, 0.25, 0.09, False),
    (120.0, 100.0, 0.7, 0.4, 0.03, True),
    (80.0, 100.0, 2.0, 0.6, 0.0, False),
    (95000.0, 110000.0, 31 / 365, 0.55, 0.0, True),
    (3400.0, 2600.0, 9 / 365, 0.7, 0.02, False),
    (0.625, 0.7, 0.5, 0.9, 0.045, True),
]


@needs_quantlib
@pytest.mark.parametrize("F,K,T,sig,r,call", QL_CASES)
def test_against_quantlib_black_calculator(F, K, T, sig, r, call):
    """QuantLib ``BlackCalculator(payoff, F, σ√T, e^{−rT})``: value, deltaForward, gammaForward,
    vega(T), theta(F, T) and vanna(F, T) are our raw units (with spot = F there is no carry term).
    QuantLib's rho(T) holds *spot* fixed, so its forward S·e^{rT} moves with r:
    rho_QL = ∂V/∂r|_F + T·F·∂V/∂F."""
    payoff = ql.PlainVanillaPayoff(ql.Option.Call if call else ql.Option.Put, K)
    calc = ql.BlackCalculator(payoff, F, sig * math.sqrt(T), math.exp(-r * T))
    g = black76_greeks(F, K, T, sig, r, call)
    assert float(black76_price(F, K, T, sig, r, call)) == pytest.approx(calc.value(), rel=1e-10)
    assert float(g.delta) == pytest.approx(calc.deltaForward(), rel=1e-10)
    assert float(g.gamma) == pytest.approx(calc.gammaForward(), rel=1e-10)
    assert float(g.vega) == pytest.approx(calc.vega(T), rel=1e-10)
    assert float(g.theta) == pytest.approx(calc.theta(F, T), rel=1e-10)
    assert float(g.vanna) == pytest.approx(calc.vanna(F, T), rel=1e-9)
    assert float(g.rho + T * F * g.delta) == pytest.approx(calc.rho(T), rel=1e-10)


# --------------------------------------------------------------------------------------------
# Greeks against central finite differences of black76_price
# --------------------------------------------------------------------------------------------


def V(F, K, T, sig, r, call):  # noqa: N802 — V, the option value, as in the formulas
    return black76_price(F, K, T, sig, r, call)


@pytest.fixture(scope="module")
def pts():
    return grid()


@pytest.fixture(scope="module")
def greeks(pts):
    return black76_greeks(*pts)


def f_step(F, T, sig, rel):
    """A forward step scaled to the width of the distribution, F·σ√T."""
    return rel * F * sig * np.sqrt(T)


def fd_close(actual, expected, scale, rtol=2e-5):
    """Compare to a finite difference with a tolerance relative to the value or to a scale."""
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * np.max(np.abs(scale)) * 1e-2)


def test_delta_fd(pts, greeks):
    """delta = ∂V/∂F."""
    F, K, T, s, r, c = pts
    h = f_step(F, T, s, 1e-4)
    fd = (V(F + h, K, T, s, r, c) - V(F - h, K, T, s, r, c)) / (2 * h)
    fd_close(greeks.delta, fd, 1.0)


def test_gamma_fd(pts, greeks):
    """gamma = ∂²V/∂F²."""
    F, K, T, s, r, c = pts
    h = f_step(F, T, s, 1e-3)
    fd = (V(F + h, K, T, s, r, c) - 2 * V(F, K, T, s, r, c) + V(F - h, K, T, s, r, c)) / h**2
    fd_close(greeks.gamma, fd, greeks.gamma, rtol=1e-4)


def test_vega_fd(pts, greeks):
    """vega = ∂V/∂σ per 1.00 of vol."""
    F, K, T, s, r, c = pts
    h = 1e-5
    fd = (V(F, K, T, s + h, r, c) - V(F, K, T, s - h, r, c)) / (2 * h)
    fd_close(greeks.vega, fd, greeks.vega)


def test_theta_fd_calendar_time(pts, greeks):
    """theta = ∂V/∂t per year with F fixed; calendar time t runs against time to expiry T."""
    F, K, T, s, r, c = pts
    h = 1e-5 * T
    fd = (V(F, K, T - h, s, r, c) - V(F, K, T + h, s, r, c)) / (2 * h)
    fd_close(greeks.theta, fd, greeks.theta, rtol=1e-4)


def test_theta_negative_for_long_option_at_zero_rate(pts, greeks):
    """With r = 0 a long option only loses time value as calendar time passes."""
    F, K, T, s, r, c = pts
    assert np.all(greeks.theta[r == 0] < 0)


def test_rho_fd(pts, greeks):
    """rho = ∂V/∂r with F fixed (= −T·V for Black-76)."""
    F, K, T, s, r, c = pts
    h = 1e-6
    fd = (V(F, K, T, s, r + h, c) - V(F, K, T, s, r - h, c)) / (2 * h)
    fd_close(greeks.rho, fd, greeks.rho)


def test_vanna_fd(pts, greeks):
    """vanna = ∂²V/∂F∂σ, four-point cross difference."""
    F, K, T, s, r, c = pts
    hf, hs = f_step(F, T, s, 1e-3), 1e-3 * s
    fd = (V(F + hf, K, T, s + hs, r, c) - V(F + hf, K, T, s - hs, r, c)
          - V(F - hf, K, T, s + hs, r, c) + V(F - hf, K, T, s - hs, r, c)) / (4 * hf * hs)
    fd_close(greeks.vanna, fd, greeks.vanna, rtol=1e-4)


def test_volga_fd(pts, greeks):
    """volga = ∂²V/∂σ²."""
    F, K, T, s, r, c = pts
    h = 1e-4
    fd = (V(F, K, T, s + h, r, c) - 2 * V(F, K, T, s, r, c) + V(F, K, T, s - h, r, c)) / h**2
    fd_close(greeks.volga, fd, greeks.vega, rtol=1e-4)


def test_charm_fd(pts, greeks):
    """charm = ∂delta/∂t = −∂²V/∂F∂T (calendar time, F fixed), four-point cross difference."""
    F, K, T, s, r, c = pts
    hf, ht = f_step(F, T, s, 1e-3), 1e-4 * T
    fd = -(V(F + hf, K, T + ht, s, r, c) - V(F + hf, K, T - ht, s, r, c)
           - V(F - hf, K, T + ht, s, r, c) + V(F - hf, K, T - ht, s, r, c)) / (4 * hf * ht)
    fd_close(greeks.charm, fd, greeks.charm, rtol=1e-4)


def test_reference_delta_vega_closed_form():
    """F = K = 100, T = 1, σ = 0.2, r = 0: d1 = 0.1, call delta = N(0.1) = 0.539828,
    vega = 100·n(0.1) = 39.6953 (standard normal tables)."""
    g = black76_greeks(100.0, 100.0, 1.0, 0.2, 0.0, True)
    assert float(g.delta) == pytest.approx(0.539828, abs=1e-6)
    assert float(g.vega) == pytest.approx(39.6953, abs=1e-4)
    assert float(g.gamma) == pytest.approx(math.exp(-0.005) / math.sqrt(2 * math.pi) / 20.0, rel=1e-12)


# --------------------------------------------------------------------------------------------
# Limits and degenerate inputs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("F,K,call,intrinsic,delta", [
    (110.0, 100.0, True, 10.0, 1.0),
    (90.0, 100.0, True, 0.0, 0.0),
    (90.0, 100.0, False, 10.0, -1.0),
    (110.0, 100.0, False, 0.0, 0.0),
])
def test_short_expiry_limit(F, K, call, intrinsic, delta):
    """As T → 0 the price tends to intrinsic and delta to 0 / ±1 (σ = 80 %, 1 second left)."""
    T = 1.0 / (365 * 24 * 3600)
    assert float(black76_price(F, K, T, 0.8, 0.0, call)) == pytest.approx(intrinsic, abs=1e-9)
    assert float(black76_greeks(F, K, T, 0.8, 0.0, call).delta) == pytest.approx(delta, abs=1e-9)


@pytest.mark.parametrize("T,sig", [(0.0, 0.5), (-0.1, 0.5), (0.5, 0.0), (0.0, 0.0), (0.5, -0.2)])
@pytest.mark.parametrize("F,call,intrinsic,delta", [
    (110.0, True, 10.0, 1.0), (90.0, True, 0.0, 0.0), (90.0, False, 10.0, -1.0),
    (110.0, False, 0.0, 0.0), (100.0, True, 0.0, 0.0), (100.0, False, 0.0, 0.0),
])
def test_expired_or_zero_vol(T, sig, F, call, intrinsic, delta):
    """T ≤ 0 or σ = 0: value = e^{−rT}·intrinsic (T floored at 0), Greeks 0 except delta (0/±1,
    at the money counted out of the money; times e^{−rT} while T > 0), all finite."""
    r = 0.04
    df = math.exp(-r * max(T, 0.0))
    assert float(black76_price(F, 100.0, T, sig, r, call)) == pytest.approx(df * intrinsic, abs=1e-12)
    g = black76_greeks(F, 100.0, T, sig, r, call)
    assert float(g.price) == pytest.approx(df * intrinsic, abs=1e-12)
    assert float(g.delta) == pytest.approx(df * delta, abs=1e-12)
    for name in ("gamma", "vega", "vanna", "volga", "charm"):
        assert float(getattr(g, name)) == 0.0, name
    # The only time/rate dependence left is discounting: theta = r·V, rho = −T·V.
    assert float(g.theta) == pytest.approx(r * df * intrinsic, abs=1e-12)
    assert float(g.rho) == pytest.approx(-max(T, 0.0) * df * intrinsic, abs=1e-12)


def test_vol_increases_price_towards_discounted_forward():
    """Call value rises with σ from discounted intrinsic towards e^{−rT}·F (σ → ∞)."""
    sig = np.array([0.01, 0.1, 0.5, 1.0, 3.0, 20.0])
    c = black76_price(100.0, 100.0, 1.0, sig, 0.02, True)
    assert np.all(np.diff(c) > 0)
    assert c[-1] == pytest.approx(100.0 * math.exp(-0.02), rel=1e-6)


# --------------------------------------------------------------------------------------------
# Broadcasting and numerical robustness
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shapes", [
    ((3, 1), (1, 4), (), (), (), ()),
    ((), (), (5,), (2, 1), (), (5,)),
    ((1,), (), (), (), (), (2,)),            # is_call alone sets the output shape
    ((2, 1), (), (), (), (), (3,)),
    ((4, 1, 1), (1, 3, 1), (1, 1, 2), (), (2,), (4, 3, 2)),
])
def test_broadcasting_shapes(shapes):
    """Output shape is numpy's broadcast of the six inputs, and each cell equals the scalar price."""
    rng = np.random.default_rng(7)
    lo_hi = ((50, 150), (60, 140), (0.05, 2.0), (0.1, 1.0), (0.0, 0.05))
    args = [rng.uniform(lo, hi, size=shp) for (lo, hi), shp in zip(lo_hi, shapes[:5], strict=True)]
    args.append(rng.random(shapes[5]) < 0.5)
    expected_shape = np.broadcast_shapes(*shapes)
    price = black76_price(*args)
    g = black76_greeks(*args)
    assert np.shape(price) == expected_shape
    for f in dataclasses.fields(Greeks):
        assert np.shape(getattr(g, f.name)) == expected_shape, f.name
    full = np.broadcast_arrays(*args)
    for idx in np.ndindex(*expected_shape):
        scalar = black76_price(*(a[idx] for a in full))
        assert price[idx] == pytest.approx(float(scalar), rel=1e-12, abs=1e-12)


def test_extreme_moneyness_no_nan():
    """Deep ITM/OTM (F/K from 1e-8 to 1e8), tiny and huge T and σ: finite prices within the
    no-arbitrage bounds and finite Greeks."""
    F = np.array([1e-6, 1e-2, 1.0, 1e2, 1e6])[:, None, None, None]
    T = np.array([1e-9, 1e-4, 1.0, 30.0])[None, :, None, None]
    sig = np.array([1e-4, 0.5, 10.0])[None, None, :, None]
    call = np.array([True, False])[None, None, None, :]
    K, r = 1.0, 0.03
    price = black76_price(F, K, T, sig, r, call)
    g = black76_greeks(F, K, T, sig, r, call)
    for f in dataclasses.fields(Greeks):
        assert np.all(np.isfinite(getattr(g, f.name))), f.name
    assert np.all(np.isfinite(price))
    df = np.exp(-r * T)
    lower = df * np.maximum(np.where(call, F - K, K - F), 0.0)
    upper = df * np.where(call, F, K)
    assert np.all(price >= lower - 1e-12 * (1 + upper))
    assert np.all(price <= upper * (1 + 1e-12))
    assert np.all(g.gamma >= 0) and np.all(g.vega >= 0)
