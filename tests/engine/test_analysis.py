"""analyze(): display units, aggregates, linear-instrument values, parity (engine/analysis.py,
docs/methodology.md §4, §6, §11).

Display Greeks are checked against finite differences of the USD value (a ±1 % spot move, a 1-vol-point
bump, a small shift of the horizon) and against Black-76 written out by hand; aggregates against the
position table's own sums; parity against e^{−rT}(F − K).
"""
import math

import numpy as np
import pytest

from engine import MarketError, analyze
from engine.analysis import Settings
from engine.instruments import parse_instrument
from engine.market import load_market
from engine.portfolio import Book, Position
from engine.samples import DEMO_BOOKS, demo_book, demo_market
from engine.scenarios import instrument_arrays, instrument_greeks, instrument_values

SPOT, CARRY, RATE = 100.0, 0.05, 0.02


def market(skew=0.0, curvature=0.0, sticky="moneyness", carry=CARRY, rate=RATE):
    return load_market({"valuation_time": "2026-01-01T08:00:00Z", "usd_rate": rate, "sticky": sticky,
                        "underlyings": {"BTC": {"spot": SPOT, "carry": carry, "smile": [
                            {"expiry": "2026-04-01", "atm_vol": 0.6, "skew": skew, "curvature": curvature}]}}})


OPTS = [("BTC-1APR26-110-C", 3.0), ("BTC-1APR26-90-P", -2.0), ("BTC-1FEB26-100-C", -1.5),
        ("BTC-1JUL26-95-P", 4.0)]


def book(rows):
    return Book(tuple(Position(parse_instrument(n), q, *rest) for n, q, *rest in rows))


def n_pdf(x):
    return math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def values(m, names, **shocks):
    return instrument_values(instrument_arrays([parse_instrument(n) for n in names], m), **shocks)


# --------------------------------------------------------------------------------------------
# Display units
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("m", [market(), market(skew=-0.1, curvature=0.3, sticky="strike")],
                         ids=["flat smile", "smile, sticky strike"])
def test_delta_and_delta_usd(m):
    """delta = ∂(USD value)/∂S in units of underlying (a central difference, vol of each strike
    unchanged); delta_usd = delta·S."""
    names = [n for n, _ in OPTS]
    q = np.array([q for _, q in OPTS])
    a = analyze(book(OPTS), m)
    eps = 1e-5
    fd = (values(m, names, spot_shock=eps) - values(m, names, spot_shock=-eps)) / (2 * eps * SPOT)
    np.testing.assert_allclose(a.positions["delta"], q * fd, rtol=1e-6)
    np.testing.assert_allclose(a.positions["delta_usd"], q * fd * SPOT, rtol=1e-6)


@pytest.mark.parametrize("m", [market(), market(skew=-0.1, curvature=0.3, sticky="strike")],
                         ids=["flat smile", "smile, sticky strike"])
def test_gamma_usd_1pct(m):
    """gamma_usd_1pct = Γ_S·S²/100: the change of delta_usd (re-marked at today's S, the usual
    dollar-gamma convention, so that a future has none) for a 1 % spot move. Checked against a
    ±1 % central difference of delta and against a fine difference of the value."""
    q = np.array([q for _, q in OPTS])
    a = analyze(book(OPTS), m)
    names = [n for n, _ in OPTS]
    # Delta (units, per contract) at S·(1 ± 1 %), the same smile anchoring as the stress grid.
    d = instrument_greeks(instrument_arrays([parse_instrument(n) for n in names], m),
                          np.array([[-0.01], [0.01]]))["delta"]
    np.testing.assert_allclose(a.positions["gamma_usd_1pct"], q * (d[1] - d[0]) / 2 * SPOT, rtol=2e-3)
    eps = 1e-3
    second = (values(m, names, spot_shock=eps) - 2 * values(m, names) + values(m, names, spot_shock=-eps))
    np.testing.assert_allclose(a.positions["gamma_usd_1pct"], q * second / eps**2 / 100, rtol=1e-5)


def test_vega_per_vol_point():
    """vega_per_vol_pt ≈ value change for a 1-vol-point bump (central: ±1 point, halved)."""
    m = market(skew=-0.1, curvature=0.3)
    names = [n for n, _ in OPTS]
    q = np.array([q for _, q in OPTS])
    a = analyze(book(OPTS), m)
    bump = (values(m, names, vol_shock=0.01) - values(m, names, vol_shock=-0.01)) / 2
    np.testing.assert_allclose(a.positions["vega_per_vol_pt"], q * bump, rtol=1e-4)


def test_theta_per_day_is_black_theta_over_365():
    """theta_per_day = [rV − e^{−rT}·F·n(d1)·σ/(2√T)]/365 per contract (F held fixed), by hand."""
    m = market()
    a = analyze(book(OPTS), m)
    for (name, q), got in zip(OPTS, a.positions["theta_per_day"], strict=True):
        inst = parse_instrument(name)
        T = m.year_fraction(inst.expiry)
        F, K, sig = SPOT * math.exp(CARRY * T), inst.strike, 0.6
        d1 = (math.log(F / K) + 0.5 * sig * sig * T) / (sig * math.sqrt(T))
        df = math.exp(-RATE * T)
        w = 1 if inst.is_call else -1
        N = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))  # noqa: E731
        V = df * w * (F * N(w * d1) - K * N(w * (d1 - sig * math.sqrt(T))))
        theta = RATE * V - df * F * n_pdf(d1) * sig / (2 * math.sqrt(T))
        assert got == pytest.approx(q * theta / 365, rel=1e-10)


def test_theta_per_day_is_value_decay_at_zero_carry():
    """With no carry and a flat smile the forward does not roll, so theta is the value's
    time derivative: central difference over ±0.01 day of horizon, per day."""
    m = market(carry=0.0)
    names = [n for n, _ in OPTS]
    q = np.array([q for _, q in OPTS])
    a = analyze(book(OPTS), m)
    h = 0.01 / 365
    fd = (values(m, names, horizon=h) - values(m, names, horizon=-h)) / (2 * h) / 365
    np.testing.assert_allclose(a.positions["theta_per_day"], q * fd, rtol=1e-6)


def test_mark_value_and_columns():
    """The columns of docs/methodology.md §11; mark is USD per contract; an option's value = quantity·mark."""
    a = analyze(book(OPTS), market())
    for col in ("instrument", "quantity", "mark", "value", "delta", "delta_usd", "gamma_usd_1pct",
                "vega_per_vol_pt", "theta_per_day"):
        assert col in a.positions.columns
    for key in ("value", "delta_usd", "gamma_usd_1pct", "vega_per_vol_pt", "theta_per_day"):
        assert a.totals[key] == pytest.approx(a.positions[key].sum(), rel=1e-12)
    np.testing.assert_allclose(a.positions["value"], a.positions["quantity"] * a.positions["mark"], rtol=1e-14)
    assert list(a.positions["instrument"]) == [n for n, _ in OPTS]


# --------------------------------------------------------------------------------------------
# Linear instruments
# --------------------------------------------------------------------------------------------


def test_futures_perps_spot_values():
    """Futures and perps count at unrealised P&L vs entry (0 without one); spot at its value."""
    m = market()
    T = 90 / 365
    F = SPOT * math.exp(CARRY * T)
    rows = [("BTC-1APR26", 5.0, 98.0), ("BTC-1APR26", -2.0), ("BTC-PERPETUAL", -3.0, 104.0),
            ("BTC-PERPETUAL", 1.0), ("BTC", 0.5, 90.0), ("BTC-USD", 2.0)]
    a = analyze(book(rows), m)
    p = a.positions
    np.testing.assert_allclose(p["mark"], [F, F, SPOT, SPOT, SPOT, SPOT], rtol=1e-13)
    np.testing.assert_allclose(p["value"], [5 * (F - 98), 0.0, -3 * (SPOT - 104), 0.0, 0.5 * SPOT, 2 * SPOT],
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(p["pnl"], [5 * (F - 98), np.nan, -3 * (SPOT - 104), np.nan, 0.5 * (SPOT - 90),
                                          np.nan], rtol=1e-12)
    assert a.totals["pnl"] == pytest.approx(5 * (F - 98) - 3 * (SPOT - 104) + 0.5 * (SPOT - 90), rel=1e-12)
    # Delta in units: a future moves e^{bT} per unit of spot, a perp or spot holding one for one.
    np.testing.assert_allclose(p["delta"], [5 * math.exp(CARRY * T), -2 * math.exp(CARRY * T), -3, 1, 0.5, 2],
                               rtol=1e-13)
    for col in ("gamma_usd_1pct", "vega_per_vol_pt", "theta_per_day"):
        assert (p[col] == 0).all()


def test_missing_underlying_raises():
    with pytest.raises(MarketError, match="ETH"):
        analyze(book([("ETH-PERPETUAL", 1.0)]), market())


def test_expired_position_warns_and_values_at_intrinsic():
    """A position past its expiry (no market check on import) is valued at intrinsic with a warning."""
    m = market()
    a = analyze(book([("BTC-25DEC25-90-C", 2.0)]), m)
    assert a.positions["value"].iloc[0] == pytest.approx(2 * (SPOT - 90), rel=1e-13)
    assert a.warnings and "expired" in a.warnings[0]


# --------------------------------------------------------------------------------------------
# Aggregates
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def desk():
    return analyze(demo_book("desk_book"), demo_market())


@pytest.mark.parametrize("col", ["value", "delta_usd", "gamma_usd_1pct", "vega_per_vol_pt", "theta_per_day",
                                 "notional_usd"])
def test_aggregates_sum_to_totals(desk, col):
    assert desk.by_underlying[col].sum() == pytest.approx(desk.totals[col], rel=1e-10, abs=1e-6)
    assert desk.by_expiry[col].sum() == pytest.approx(desk.totals[col], rel=1e-10, abs=1e-6)
    options = desk.positions[desk.positions["kind"] == "option"]
    assert desk.by_strike[col].sum() == pytest.approx(options[col].sum(), rel=1e-10, abs=1e-6)


def test_aggregate_keys_and_counts(desk):
    p = desk.positions
    assert desk.by_underlying["positions"].sum() == len(p) == desk.totals["positions"]
    assert set(desk.by_underlying["underlying"]) == set(p["underlying"])
    btc = desk.by_underlying.set_index("underlying").loc["BTC"]
    assert btc["delta_usd"] == pytest.approx(p.loc[p.underlying == "BTC", "delta_usd"].sum(), rel=1e-12)
    assert len(desk.by_expiry) == len(p.groupby(["underlying", "expiry"]))
    assert len(desk.by_strike) == len(p[p.kind == "option"].groupby(["underlying", "strike"]))


# --------------------------------------------------------------------------------------------
# Parity at the book level and the stress grid of analyze
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("K", [80000, 95000, 120000])
def test_book_level_put_call_parity(K):
    """Long call + short put + short future at entry K, same expiry, r = 0: C − P = F − K and the
    short future is worth −(F − K), so value, Greeks and every stress cell vanish."""
    m = demo_market()
    assert m.usd_rate == 0.0
    rows = [(f"BTC-26MAR27-{K}-C", 2.0), (f"BTC-26MAR27-{K}-P", -2.0), ("BTC-26MAR27", -2.0, float(K))]
    a = analyze(book(rows), m)
    T = m.expiry_years(parse_instrument("BTC-26MAR27").expiry_date)
    F = 95000 * math.exp(0.05 * T)
    assert a.positions["value"].iloc[:2].sum() == pytest.approx(2 * (F - K), rel=1e-10, abs=1e-6)
    assert a.totals["value"] == pytest.approx(0.0, abs=1e-6)
    for col in ("delta_usd", "gamma_usd_1pct", "vega_per_vol_pt", "theta_per_day"):
        assert a.totals[col] == pytest.approx(0.0, abs=1e-6), col
    assert np.abs(a.stress_result.pnl).max() < 1e-5 * K


def test_stress_frame_matches_revaluation(desk):
    """The tidy frame's cells equal Σ q·(value after shock − value) for a few cells."""
    arr = desk.arrays
    net = np.bincount(desk.position_instrument, weights=desk.quantities, minlength=len(arr))
    f = desk.stress
    assert len(f) == 41 * 13 * 4
    for s, v, h in ((-0.5, -0.3, 0.0), (0.25, 0.1, 7.0), (0.0, 0.0, 30.0), (0.1, -0.05, 1.0)):
        row = f[np.isclose(f.spot_shock, s) & np.isclose(f.vol_shock, v) & (f.horizon_days == h)]
        expected = (instrument_values(arr, s, v, h / 365) - instrument_values(arr)) @ net
        assert float(row.pnl.iloc[0]) == pytest.approx(expected, rel=1e-10, abs=1e-6)


def test_profile_at_zero_shock_equals_totals(desk):
    mid = desk.profile.iloc[len(desk.profile) // 2]
    assert mid["spot_shock"] == 0.0 and mid["pnl"] == pytest.approx(0.0, abs=1e-6)
    for col in ("delta_usd", "gamma_usd_1pct", "vega_per_vol_pt", "theta_per_day"):
        assert mid[col] == pytest.approx(desk.totals[col], rel=1e-10, abs=1e-8)


@pytest.mark.parametrize("kwargs", [dict(spot_range=1.0), dict(vol_range=-0.1), dict(spot_steps=1),
                                    dict(horizons_days=()), dict(horizons_days=(-1.0,))])
def test_settings_validation(kwargs):
    with pytest.raises(ValueError):
        Settings(**kwargs)


def test_empty_book():
    a = analyze(Book(), demo_market())
    assert a.totals["value"] == 0.0 and len(a.positions) == 0
    assert (a.stress["pnl"] == 0).all()


def test_all_demo_books_analyse():
    m = demo_market()
    for key in DEMO_BOOKS:
        a = analyze(demo_book(key), m)
        assert np.isfinite(a.stress_result.pnl).all(), key
        assert not a.warnings, key


def test_settings_as_a_dict_of_fields():
    """A plain dict (e.g. JSON) of Settings fields gives the same grid as Settings itself."""
    book, market = demo_book("covered_call"), demo_market()
    a = analyze(book, market, {"spot_steps": 21, "vol_steps": 5, "horizons_days": [0, 7]})
    b = analyze(book, market, Settings(spot_steps=21, vol_steps=5, horizons_days=(0.0, 7.0)))
    assert a.stress.shape == (21 * 5 * 2, 4)
    np.testing.assert_allclose(a.stress["pnl"], b.stress["pnl"])
    with pytest.raises(ValueError, match="spot_steps"):
        analyze(book, market, {"spot_steps": 1})


def test_options_beyond_the_last_smile_expiry_are_named_once():
    from engine import analyze
    from engine.instruments import parse_instrument
    from engine.portfolio import Book, Position
    from engine.samples import demo_market

    market = demo_market()  # BTC and ETH smiles end 2027-12-31
    late = ["BTC-31MAR28-100000-C", "BTC-31MAR28-90000-P", "ETH-31MAR28-3000-C"]
    book = Book(tuple(Position(parse_instrument(n), 1.0) for n in late + ["BTC-25DEC26-95000-C", "BTC-31MAR28"]))
    warnings = [w for w in analyze(book, market).warnings if "extrapolated" in w]
    assert len(warnings) == 1
    assert all(n in warnings[0] for n in late) and "3 option(s)" in warnings[0]
    assert "25DEC26" not in warnings[0] and "BTC-31MAR28," not in warnings[0] + ","  # the future needs no vol
    inside = Book((Position(parse_instrument("BTC-25DEC26-95000-C"), 1.0),))
    assert not any("extrapolated" in w for w in analyze(inside, market).warnings)
