"""The revaluation kernel and stress grid (engine/scenarios.py, docs/methodology.md §5, §9).

References: a direct Python loop of black76_price over the grid cells with the smile worked out
by hand (full revaluation by an independent path), the published futures vector of docs/methodology.md §9,
intrinsic value at expiry, and straddle breakevens K ± premium.
"""
import itertools
import math

import numpy as np
import pytest

from engine import analyze
from engine.analysis import Settings
from engine.instruments import parse_instrument
from engine.market import load_market
from engine.portfolio import Book, Position
from engine.pricing import black76_price
from engine.samples import demo_market, random_book
from engine.scenarios import (
    DEFAULT_GRID,
    ShockGrid,
    breakevens,
    instrument_arrays,
    instrument_values,
    net_quantities,
    stress_grid,
)

VAL_ISO = "2026-01-01T08:00:00Z"
SPOT, CARRY, RATE = 100.0, 0.03, 0.02
ATM, SKEW, CURV = 0.60, -0.10, 0.30  # one slice: every option reads it at its own x (flat extrapolation)


def one_slice_market(sticky="moneyness"):
    return load_market({"valuation_time": VAL_ISO, "usd_rate": RATE, "sticky": sticky, "underlyings": {
        "BTC": {"spot": SPOT, "carry": CARRY,
                "smile": [{"expiry": "2026-04-01", "atm_vol": ATM, "skew": SKEW, "curvature": CURV}]}}})


# (name, quantity, days to expiry from 2026-01-01 08:00, strike, is_call)
OPTIONS = [
    ("BTC-1APR26-110-C", 3.0, 90, 110.0, True),
    ("BTC-1APR26-90-P", -2.0, 90, 90.0, False),
    ("BTC-6JAN26-100-C", 5.0, 5, 100.0, True),      # expires inside the 7- and 30-day horizons
    ("BTC-6JAN26-97d5-P", -4.0, 5, 97.5, False),
    ("BTC-1JUL26-120-C", -1.0, 181, 120.0, True),
    ("BTC-1APR26-110-C", 1.5, 90, 110.0, True),     # a second position in the same instrument
]


def ref_value(days, K, call, s=0.0, v=0.0, h_days=0.0, relative=False):
    """One option's USD value after shocks, by hand: forward rolls to T − h, smile read at
    x = ln(K/F)/√max(T, 1 day) on the shocked forward (sticky moneyness; |x| clamped at 3 as the
    market module documents), vol shock added, expiry inside the horizon → intrinsic."""
    T = (days - h_days) / 365
    S = SPOT * (1 + s)
    if T <= 0:
        return max(S - K, 0.0) if call else max(K - S, 0.0)
    F = S * math.exp(CARRY * T)
    x = min(max(math.log(K / F) / math.sqrt(max(T, 1 / 365)), -3.0), 3.0)
    sig = max(0.01, ATM + SKEW * x + CURV * x * x)
    sig = sig * (1 + v) if relative else sig + v
    return float(black76_price(F, K, T, max(sig, 0.01), RATE, call))


def options_book():
    return Book(tuple(Position(parse_instrument(n), q) for n, q, *_ in OPTIONS))


SMALL_GRID = ShockGrid(np.array([-0.2, -0.05, 0.0, 0.15]), np.array([-0.1, 0.0, 0.25]),
                       np.array([0.0, 1.0, 7.0, 30.0]))


def run_grid(book, market, grid):
    arr = instrument_arrays(book.instruments, market)
    index = {inst: k for k, inst in enumerate(book.instruments)}
    pos_inst = np.array([index[p.instrument] for p in book])
    return stress_grid(arr, pos_inst, np.array([p.quantity for p in book]), grid)


def test_stress_grid_matches_direct_loop():
    """Σ q·[V(S(1+s), σ+v, T−h) − V(S, σ, T)] cell by cell, by a plain loop."""
    res = run_grid(options_book(), one_slice_market(), SMALL_GRID)
    g = SMALL_GRID
    for (i, s), (j, v), (k, h) in itertools.product(enumerate(g.spot_shocks), enumerate(g.vol_shocks),
                                                    enumerate(g.horizons_days)):
        expected = sum(q * (ref_value(d, K, c, s, v, h) - ref_value(d, K, c)) for _, q, d, K, c in OPTIONS)
        assert res.pnl[i, j, k] == pytest.approx(expected, rel=1e-10, abs=1e-9), (s, v, h)


def test_base_cell_is_zero():
    res = run_grid(options_book(), one_slice_market(), SMALL_GRID)
    assert res.pnl[2, 1, 0] == 0.0


def test_option_expiring_inside_horizon_settles_at_intrinsic():
    """5-day call K = 100 at a 7-day horizon: worth max(S(1+s) − 100, 0), whatever the vol shock."""
    book = Book((Position(parse_instrument("BTC-6JAN26-100-C"), 2.0),))
    res = run_grid(book, one_slice_market(), SMALL_GRID)
    v0 = ref_value(5, 100.0, True)
    for i, s in enumerate(SMALL_GRID.spot_shocks):
        expected = 2.0 * (max(SPOT * (1 + s) - 100.0, 0.0) - v0)
        np.testing.assert_allclose(res.pnl[i, :, 2], expected, rtol=1e-12)
        np.testing.assert_allclose(res.pnl[i, :, 3], expected, rtol=1e-12)


def test_relative_vs_absolute_vol_shock():
    """Absolute: σ + v; relative: σ·(1 + v) (docs/methodology.md §1); a −100 % relative shock floors at 1 vol pt."""
    m = one_slice_market()
    arr = instrument_arrays([parse_instrument(n) for n, *_ in OPTIONS[:5]], m)
    for v in (-0.5, 0.3):
        for relative in (False, True):
            got = instrument_values(arr, 0.05, v, 1 / 365, vol_relative=relative)
            want = [ref_value(d, K, c, 0.05, v, 1.0, relative) for _, _, d, K, c in OPTIONS[:5]]
            np.testing.assert_allclose(got, want, rtol=1e-11)
    floored = instrument_values(arr, 0.0, -1.0, vol_relative=True)
    want = [float(black76_price(SPOT * math.exp(CARRY * d / 365), K, d / 365, 0.01, RATE, c))
            for _, _, d, K, c in OPTIONS[:5]]
    np.testing.assert_allclose(floored, want, rtol=1e-11)


def test_contributions_sum_to_total():
    book = options_book().plus(Position(parse_instrument("BTC-PERPETUAL"), -1.7),
                               Position(parse_instrument("BTC-1APR26"), 0.8))
    res = run_grid(book, one_slice_market(), SMALL_GRID)
    for s, v, h in itertools.product(SMALL_GRID.spot_shocks, SMALL_GRID.vol_shocks, SMALL_GRID.horizons_days):
        contrib = res.position_pnl(s, v, h)
        assert contrib.shape == (len(book),)
        i, j, k = res.cell(s, v, h)
        assert contrib.sum() == pytest.approx(res.pnl[i, j, k], rel=1e-12, abs=1e-9)
    # The two positions in BTC-1APR26-110-C split their instrument's P&L by quantity (3 : 1.5).
    c = res.position_pnl(0.15, 0.0, 7)
    assert c[0] == pytest.approx(2.0 * c[5], rel=1e-12)


# --------------------------------------------------------------------------------------------
# Linear instruments
# --------------------------------------------------------------------------------------------


def test_futures_vector_design_9():
    """docs/methodology.md §9 (a Deribit-style wiki): 10 long ETH futures, index 2243.3, basis 0.08, 20 days →
    forward 2253.2; P&L for spot −15…+15 % step 3 %, forward moving with spot:
    10·2253.2·s = −3380, −2704, −2028, −1352, −676, 0, 676, 1352, 2028, 2704, 3380 (rounded)."""
    m = load_market({"valuation_time": "2026-01-01T08:00:00Z", "underlyings": {
        "ETH": {"spot": 2243.3, "carry": 0.08, "smile": []}}})
    fut = parse_instrument("ETH-21JAN26")
    arr = instrument_arrays([fut], m)
    assert float(arr.forward()[0]) == pytest.approx(2253.2, abs=0.05)
    shocks = np.round(np.arange(-0.15, 0.1501, 0.03), 10)
    grid = ShockGrid(shocks, np.array([0.0]), np.array([0.0]))
    res = run_grid(Book((Position(fut, 10.0),)), m, grid)
    published = [-3380, -2704, -2028, -1352, -676, 0, 676, 1352, 2028, 2704, 3380]
    np.testing.assert_allclose(res.pnl[:, 0, 0], published, atol=0.5)
    # The same numbers through analyze() and its tidy frame.
    a = analyze(Book((Position(fut, 10.0),)), m, Settings(spot_range=0.15, spot_steps=11, vol_steps=1,
                                                          horizons_days=(0.0,)))
    np.testing.assert_allclose(a.stress["pnl"].to_numpy(), published, atol=0.5)


def test_future_rolls_down_the_forward_over_the_horizon():
    """After h days a future is worth S(1+s)·e^{b(T−h)}: at T − h ≤ 0 it has converged to spot."""
    m = one_slice_market()
    arr = instrument_arrays([parse_instrument("BTC-6JAN26")], m)
    for s, h in ((0.0, 1.0), (-0.1, 3.0), (0.2, 7.0), (0.05, 30.0)):
        got = float(instrument_values(arr, s, 0.3, h / 365)[0])
        assert got == pytest.approx(SPOT * (1 + s) * math.exp(CARRY * max(5 - h, 0) / 365), rel=1e-13)


@pytest.mark.parametrize("name", ["BTC-PERPETUAL", "BTC", "BTC-USD"])
def test_perps_and_spot_track_spot(name):
    """P&L = q·S·s for every vol shock and horizon (no carry, no expiry)."""
    book = Book((Position(parse_instrument(name), -3.0),))
    res = run_grid(book, one_slice_market(), SMALL_GRID)
    expected = -3.0 * SPOT * SMALL_GRID.spot_shocks
    for j, k in itertools.product(range(3), range(4)):
        np.testing.assert_allclose(res.pnl[:, j, k], expected, rtol=1e-13, atol=1e-12)


def test_multiplier_scales_value():
    m = one_slice_market()
    one = instrument_values(instrument_arrays([parse_instrument("BTC-1APR26-110-C")], m), 0.1, 0.05)
    tenth = instrument_values(instrument_arrays([parse_instrument("BTC-1APR26-110-C", 0.1)], m), 0.1, 0.05)
    assert float(tenth[0]) == pytest.approx(0.1 * float(one[0]), rel=1e-14)


# --------------------------------------------------------------------------------------------
# Grid, tidy frame and the parallel path
# --------------------------------------------------------------------------------------------


def test_default_grid_axes():
    """docs/methodology.md §5: spot −50…+50 % in 41 steps, vol −30…+30 points in 13 steps, 0/1/7/30 days."""
    g = DEFAULT_GRID
    assert g.shape == (41, 13, 4)
    np.testing.assert_allclose(g.spot_shocks, np.arange(-20, 21) * 0.025, atol=1e-12)
    np.testing.assert_allclose(g.vol_shocks, np.arange(-6, 7) * 0.05, atol=1e-12)
    assert list(g.horizons_days) == [0, 1, 7, 30]
    assert 0.0 in g.spot_shocks and 0.0 in g.vol_shocks


def test_tidy_frame_layout():
    res = run_grid(options_book(), one_slice_market(), SMALL_GRID)
    f = res.to_frame()
    assert list(f.columns) == ["spot_shock", "vol_shock", "horizon_days", "pnl"]
    assert len(f) == 4 * 3 * 4
    row = f[(f.spot_shock == 0.15) & (f.vol_shock == 0.25) & (f.horizon_days == 7)]
    assert float(row.pnl.iloc[0]) == pytest.approx(res.pnl[3, 2, 2], rel=1e-14)


def test_parallel_split_matches_one_shot_revaluation():
    """A grid large enough to be split over threads equals revaluing the whole grid at once."""
    market = demo_market()
    book = random_book(300, seed=3, market=market)
    arr = instrument_arrays(book.instruments, market)
    index = {inst: k for k, inst in enumerate(book.instruments)}
    pos = np.array([index[p.instrument] for p in book])
    q = np.array([p.quantity for p in book])
    res = stress_grid(arr, pos, q)
    g = DEFAULT_GRID
    whole = instrument_values(arr, g.spot_shocks[:, None, None, None], g.vol_shocks[None, :, None, None],
                              (g.horizons_days / 365)[None, None, :, None]) - instrument_values(arr)
    np.testing.assert_allclose(res.pnl, whole @ net_quantities(pos, q, len(arr)), rtol=1e-10, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Breakevens
# --------------------------------------------------------------------------------------------


def test_breakevens_piecewise_linear():
    x = np.array([-2.0, -1.0, 0.0, 1.0, 2.0, 3.0])
    y = np.array([3.0, 1.0, -1.0, -1.0, 0.0, 2.0])
    # Crossing between −1 and 0 at −0.5; touching zero exactly at 2.
    np.testing.assert_allclose(breakevens(x, y), [-0.5, 2.0])
    assert len(breakevens(x, np.ones(6))) == 0


def test_straddle_expiry_breakevens_at_strike_plus_minus_premium():
    """Long 95000 straddle: at expiry P&L = |S_T − K| − (C₀ + P₀), zero at S_T = K ± premium.
    The premium is the book's current value (r = 0 in the demo market)."""
    market = demo_market()
    book = Book((Position(parse_instrument("BTC-29JAN27-95000-C"), 1.0),
                 Position(parse_instrument("BTC-29JAN27-95000-P"), 1.0)))
    a = analyze(book, market)
    premium = a.totals["value"]
    T = market.expiry_years(parse_instrument("BTC-29JAN27").expiry_date)
    F = 95000 * math.exp(0.05 * T)
    sig = float(np.asarray(market.vol("BTC", 95000.0, T)).item())
    assert premium == pytest.approx(float(black76_price(F, 95000, T, sig, 0, True)
                                          + black76_price(F, 95000, T, sig, 0, False)), rel=1e-12)
    label = next(k for k in a.breakevens if k.startswith("expiry"))
    assert label == "expiry (66 d)"  # 2026-11-24 → 2027-01-29
    expected = [(95000 - premium) / 95000 - 1, (95000 + premium) / 95000 - 1]
    np.testing.assert_allclose(a.breakevens[label], expected, atol=1e-9)
    curve = a.payoff[a.payoff.horizon == label]
    S_T = 95000 * (1 + curve.spot_shock.to_numpy())
    np.testing.assert_allclose(curve.pnl, np.abs(S_T - 95000) - premium, rtol=1e-10, atol=1e-6)


def test_breakevens_need_a_sign_change():
    """Touching zero and turning back (a short straddle at no move) is no breakeven; a flat zero
    curve has none; an exact zero between − and + is one, at that point (or mid zero run)."""
    x = np.linspace(-2, 2, 5)
    assert len(breakevens(x, np.array([-4.0, -1.0, 0.0, -1.0, -4.0]))) == 0
    assert len(breakevens(x, np.zeros(5))) == 0
    np.testing.assert_allclose(breakevens(x, np.array([-2.0, -1.0, 0.0, 1.0, 2.0])), [0.0])
    np.testing.assert_allclose(breakevens(x, np.array([-2.0, 0.0, 0.0, 0.0, 2.0])), [0.0])
