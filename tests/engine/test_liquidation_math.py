"""Pure-math liquidation tests: Almgren–Chriss schedule, Derive Dutch auction, Drift amounts.

Expected values are derived by hand below (or are the published figures of docs/methodology.md §9), never
copied from the code's output.
"""
import math

import numpy as np
import pytest

from engine.liquidation import (
    DERIVE_MAINNET,
    DERIVE_TEST,
    AuctionParams,
    BidderPopulation,
    almgren_chriss_schedule,
    auction_discount,
    bidder_population,
    buffer_margin,
    efficient_frontier,
    insolvent_payout,
    liquidation_amount,
    max_fraction,
    simulate_auction,
    time_at_discount,
)
from engine.liquidation.auction import _Auction, _price_path

# --------------------------------------------------------------------------------------------
# Almgren–Chriss (paper's example, section 4 of Almgren & Chriss 2000)
# --------------------------------------------------------------------------------------------
AC = dict(X=1e6, sigma=0.95, eta=2.5e-6, gamma=2.5e-7, T=5.0, N=5)
PAPER_HOLDINGS = [1_000_000, 541_956, 289_854, 147_897, 62_142, 0]


def test_ac_paper_example_kappa_and_holdings():
    s = almgren_chriss_schedule(**AC, lam=1e-6)
    # τ = 1 day; η̃ = 2.5e-6 − 2.5e-7·1/2 = 2.375e-6; κ̃² = 1e-6 · 0.95² / 2.375e-6 = 0.38;
    # cosh(κ·1) = 1 + 0.38/2 = 1.19  →  κ = acosh(1.19) ≈ 0.6071 per day.
    assert s.tau == pytest.approx(1.0)
    assert s.eta_tilde == pytest.approx(2.375e-6, rel=1e-12)
    assert s.kappa_tilde**2 == pytest.approx(0.38, rel=1e-12)
    assert s.kappa == pytest.approx(math.acosh(1.19), rel=1e-12)
    assert s.kappa == pytest.approx(0.607, abs=5e-4)
    np.testing.assert_allclose(s.holdings, PAPER_HOLDINGS, atol=1.0)
    np.testing.assert_allclose(s.times, [0, 1, 2, 3, 4, 5])
    # trades are the differences of holdings and sell the whole position
    np.testing.assert_allclose(s.trades, -np.diff(PAPER_HOLDINGS), atol=2.0)
    assert s.trades.sum() == pytest.approx(1e6)


def test_ac_cost_and_variance_from_published_holdings():
    s = almgren_chriss_schedule(**AC, lam=1e-6)
    x = np.array(PAPER_HOLDINGS, dtype=float)
    n = -np.diff(x)
    # E = ½γX² + (η̃/τ)Σn² with ε = 0; V = σ²τΣ_{k≥1} x_k² (τ = 1)
    E = 0.5 * 2.5e-7 * 1e12 + 2.375e-6 * (n**2).sum()
    V = 0.95**2 * (x[1:] ** 2).sum()
    assert s.expected_cost == pytest.approx(E, rel=1e-5)
    assert s.variance == pytest.approx(V, rel=1e-5)


def test_ac_linear_comparison_closed_form():
    s = almgren_chriss_schedule(**AC, lam=1e-6, epsilon=0.0625)
    X, T, N = 1e6, 5.0, 5
    np.testing.assert_allclose(s.linear_holdings, [1e6, 8e5, 6e5, 4e5, 2e5, 0.0])
    # TWAP: E = ½γX² + εX + η̃X²/T = 125,000 + 62,500 + 2.375e-6·1e12/5 = 662,500
    assert s.linear_expected_cost == pytest.approx(662_500.0, rel=1e-12)
    # V = ⅓σ²X²T(1 − 1/N)(1 − 1/2N) = ⅓·0.9025·1e12·5·0.8·0.9 = 1.083e12
    assert s.linear_variance == pytest.approx(0.95**2 * X**2 * T * (1 - 1 / N) * (1 - 0.5 / N) / 3)
    assert s.linear_variance == pytest.approx(1.083e12, rel=1e-12)
    # the optimal trajectory trades more expected cost for less variance
    assert s.expected_cost > s.linear_expected_cost
    assert s.variance < s.linear_variance


def test_ac_is_optimal_against_perturbations():
    lam = 1e-6
    s = almgren_chriss_schedule(**AC, lam=lam)
    rng = np.random.default_rng(7)

    def utility(x):
        n = -np.diff(x)
        E = 0.5 * 2.5e-7 * 1e12 + 2.375e-6 * (n**2).sum()
        V = 0.95**2 * (x[1:] ** 2).sum()
        return E + lam * V

    u0 = utility(s.holdings)
    assert s.utility == pytest.approx(u0, rel=1e-12)
    for _ in range(200):
        x = s.holdings.copy()
        x[1:-1] += rng.normal(0.0, 5_000.0, size=4)
        assert utility(x) > u0


def test_ac_lambda_zero_is_the_straight_line():
    s = almgren_chriss_schedule(**AC, lam=0.0)
    assert s.kappa == 0.0
    np.testing.assert_allclose(s.holdings, [1e6, 8e5, 6e5, 4e5, 2e5, 0.0], rtol=0, atol=1e-9)
    assert s.expected_cost == pytest.approx(600_000.0)
    # λ → 0 approaches the line continuously (no 0/0)
    tiny = almgren_chriss_schedule(**AC, lam=1e-20)
    assert np.all(np.isfinite(tiny.holdings))
    np.testing.assert_allclose(tiny.holdings, s.holdings, atol=1e-3)


def test_ac_huge_risk_aversion_does_not_overflow():
    s = almgren_chriss_schedule(**AC, lam=1e6)
    assert np.all(np.isfinite(s.holdings))
    assert s.holdings[0] == 1e6 and s.holdings[-1] == 0.0
    assert s.holdings[1] < 1.0  # sells essentially everything in the first interval


def test_ac_rejects_bad_inputs():
    with pytest.raises(ValueError):
        almgren_chriss_schedule(**AC, lam=-1.0)
    with pytest.raises(ValueError):  # η̃ = 1e-7 − 1e-6·5/2 < 0
        almgren_chriss_schedule(1e6, 0.95, 1e-7, 1e-6, 5.0, 1, 1e-6)


def test_ac_frontier_monotone_and_consistent():
    f = efficient_frontier(**AC)
    assert f.lam[0] == 0.0
    assert np.all(np.diff(f.lam) > 0)
    assert np.all(np.diff(f.expected_cost) >= -1e-6)
    assert np.all(np.diff(f.variance) <= 1e-6)
    lin = almgren_chriss_schedule(**AC, lam=0.0)
    assert f.expected_cost[0] == pytest.approx(lin.expected_cost)
    assert f.variance[0] == pytest.approx(lin.variance)
    # default λ range spans κT from 0 to 20
    assert f.kappa[-1] * 5.0 == pytest.approx(20.0)
    # explicit λ array (unsorted in, sorted out) agrees with the single schedule
    g = efficient_frontier(**AC, lams=[1e-5, 1e-6, 0.0])
    np.testing.assert_allclose(g.lam, [0.0, 1e-6, 1e-5])
    s = almgren_chriss_schedule(**AC, lam=1e-6)
    assert g.expected_cost[1] == pytest.approx(s.expected_cost)
    assert g.variance[1] == pytest.approx(s.variance)
    np.testing.assert_allclose(g.holdings[1], s.holdings)


# --------------------------------------------------------------------------------------------
# Derive Dutch auction
# --------------------------------------------------------------------------------------------
def test_derive_params():
    p = DERIVE_TEST
    assert (p.start, p.fast_cutoff, p.fast_seconds, p.slow_seconds, p.insolvent_seconds, p.buffer) == (
        1.0, 0.8, 600.0, 7200.0, 3600.0, 0.10)
    m = DERIVE_MAINNET
    assert (m.start, m.fast_cutoff, m.fast_seconds, m.slow_seconds, m.insolvent_seconds, m.buffer) == (
        0.95, 0.70, 900.0, 43200.0, 3600.0, 0.15)
    with pytest.raises(ValueError):
        AuctionParams(start=0.7, fast_cutoff=0.8)


def test_discount_schedule_hand_values():
    # fast: 1.0 → 0.8 over 600 s, i.e. −0.2/600 per s; slow: 0.8 → 0 over 7200 s
    t = np.array([0.0, 300.0, 600.0, 600.0 + 3600.0, 7800.0, 10_000.0])
    np.testing.assert_allclose(auction_discount(t), [1.0, 0.9, 0.8, 0.4, 0.0, 0.0], atol=1e-12)
    # mainnet: 0.95 → 0.70 over 900 s, then 0.70 → 0 over 43,200 s; half-way through slow = 0.35
    np.testing.assert_allclose(
        auction_discount([0.0, 450.0, 900.0, 900.0 + 21_600.0], DERIVE_MAINNET),
        [0.95, 0.825, 0.70, 0.35], atol=1e-12)
    # inverse
    np.testing.assert_allclose(time_at_discount([1.0, 0.9, 0.8, 0.4]), [0.0, 300.0, 600.0, 4200.0])
    assert time_at_discount(0.0) == np.inf


def test_discount_monotone_non_increasing():
    for p in (DERIVE_TEST, DERIVE_MAINNET, AuctionParams(fast_seconds=0.0)):
        t = np.linspace(-10.0, p.solvent_seconds * 1.2, 5001)
        d = auction_discount(t, p)
        assert np.all(np.diff(d) <= 1e-15)
        assert d.max() <= p.start and d.min() >= 0.0


def test_derive_reference_max_fraction():
    # BM = MM' + buffer·(MM' − MtM) = −100 + 0.1·(−100 − 300) = −140
    assert buffer_margin(-100.0, 300.0) == pytest.approx(-140.0)
    # t = 0: d = 1 → f = −140 / (−140 − 300·1) = 140/440 = 0.31818… (31.8 %)
    f0 = max_fraction(-100.0, 300.0, auction_discount(0.0))
    assert f0 == pytest.approx(140.0 / 440.0)
    assert round(100 * f0, 1) == 31.8
    # t = 300 s: d = 1 − 0.2·300/600 = 0.9, price = 0.9·300 = 270,
    # f = −140 / (−140 − 270) = 140/410 = 0.34146… (34.1 %); bidder pays 270·140/410 = 92.195
    d = auction_discount(300.0)
    assert d == pytest.approx(0.9)
    assert d * 300.0 == pytest.approx(270.0)
    f = max_fraction(-100.0, 300.0, d)
    assert f == pytest.approx(140.0 / 410.0)
    assert round(100 * f, 1) == 34.1
    assert 270.0 * f == pytest.approx(37_800.0 / 410.0)
    assert round(270.0 * f) == 92


def test_derive_reference_simulated_bid_restores_buffer_margin():
    r = simulate_auction(300.0, -100.0, DERIVE_TEST, BidderPopulation([0.9], [1.0]))
    assert len(r.fills) == 1
    fill = r.fills[0]
    assert fill.time == pytest.approx(300.0)
    assert fill.price == pytest.approx(270.0)
    assert fill.fraction_of_current == pytest.approx(140.0 / 410.0)
    assert fill.cash_paid == pytest.approx(37_800.0 / 410.0)  # ≈ 92.195
    # after the fill: 270/410 of the book is left and R = 37,800/410 in cash, so
    # BM = (270/410)·(−140) + 37,800/410 = 0;  MM' = (270/410)·(−100) + 37,800/410 = 10,800/410
    assert r.fraction_left == pytest.approx(270.0 / 410.0)
    assert r.buffer_margin == pytest.approx(0.0, abs=1e-9)
    assert r.mm_excess == pytest.approx(10_800.0 / 410.0)
    assert r.mtm == pytest.approx(270.0 / 410.0 * 300.0 + 37_800.0 / 410.0)
    assert r.ended and r.outcome == "restored" and r.end_time == pytest.approx(300.0)
    assert r.fund_payout == 0.0


def test_partial_fill_then_capped_fill():
    # Bidder A (reservation 1.0, capacity 20 %) at t = 0, d = 1: f_max = 31.8 % > 20 % → buys 20 %
    # for 1.0·300·0.2 = 60. Account: φ = 0.8, R = 60 → MtM = 240 + 60 = 300, MM' = −80 + 60 = −20,
    # BM = 0.8·(−140) + 60 = −52 (not ended).
    # Bidder B (reservation 0.9) at t = 300, d = 0.9:
    # f_max = −52 / (−52 − 300·0.9 − 60·0.1) = 52/328 of the current book = 0.8·52/328 of the
    # original; pays d·(MtM − R)·f = 0.9·240·52/328; afterwards BM = 0.
    pop = BidderPopulation(reservation=[1.0, 0.9], capacity=[0.2, 1.0])
    r = simulate_auction(300.0, -100.0, DERIVE_TEST, pop)
    a, b = r.fills
    assert a.bidder == 0 and a.time == 0.0
    assert a.fraction_of_current == pytest.approx(0.2)
    assert a.cash_paid == pytest.approx(60.0)
    assert a.buffer_margin_after == pytest.approx(-52.0)
    assert a.mm_excess_after == pytest.approx(-20.0)
    assert max_fraction(-20.0, 300.0, 0.9, 60.0) == pytest.approx(52.0 / 328.0)
    assert b.bidder == 1 and b.time == pytest.approx(300.0)
    assert b.fraction_of_current == pytest.approx(52.0 / 328.0)
    assert b.fraction_of_original == pytest.approx(0.8 * 52.0 / 328.0)
    assert b.cash_paid == pytest.approx(0.9 * 240.0 * 52.0 / 328.0)
    assert b.cash_paid == pytest.approx(b.price * b.fraction_of_original)
    assert b.buffer_margin_after == pytest.approx(0.0, abs=1e-9)
    assert r.cash_received == pytest.approx(60.0 + 0.9 * 240.0 * 52.0 / 328.0)
    assert r.ended and r.outcome == "restored"


def test_max_fraction_in_unit_interval():
    rng = np.random.default_rng(3)
    mm = rng.uniform(-500, 200, 20_000)
    mtm = mm + rng.uniform(0, 600, 20_000)  # requirement ≥ 0
    d = rng.uniform(0, 1, 20_000)
    R = rng.uniform(0, 100, 20_000)
    f = max_fraction(mm, mtm, d, R)
    assert f.shape == (20_000,)
    assert np.all((f >= 0) & (f <= 1))
    assert np.all(f[buffer_margin(mm, mtm) >= 0] == 0.0)
    # buying exactly f_max (when 0 < f < 1) brings BM to 0: BM + f·(d·MtM + (1 − d)·R − BM) = 0
    bm = buffer_margin(mm, mtm)
    ok = (f > 0) & (f < 1)
    np.testing.assert_allclose((bm + f * (d * mtm + (1 - d) * R - bm))[ok], 0.0, atol=1e-9)


def test_max_fraction_falls_with_time_then_rises():
    # with R = 0: f = BM/(BM − d·MtM) grows as d falls (a cheaper price needs a bigger sale)
    t = np.linspace(0.0, 7799.0, 500)
    f = max_fraction(-100.0, 300.0, auction_discount(t))
    assert np.all(np.diff(f) >= -1e-15)


def test_insolvent_payout_linear_from_mtm_to_mm():
    # MtM = −50, MM' = −130: the fund pays 50 at the start, 130 after 3600 s: 50 + 80·t/3600
    t = np.linspace(0.0, 3600.0, 37)
    np.testing.assert_allclose(insolvent_payout(t, -50.0, -130.0), 50.0 + 80.0 * t / 3600.0)
    assert insolvent_payout(10_000.0, -50.0, -130.0) == pytest.approx(130.0)

    r = simulate_auction(-50.0, -130.0, DERIVE_TEST, BidderPopulation([0.5], [1.0]))
    assert r.insolvent_start == 0.0
    inside = r.phase == "insolvent"
    assert inside.all()
    np.testing.assert_allclose(r.fund_payout_path, 50.0 + 80.0 * np.minimum(r.t, 3600.0) / 3600.0)
    np.testing.assert_allclose(r.price, -r.fund_payout_path)
    assert np.all(np.isnan(r.discount))
    # the bidder (reservation 0.5) values the book at −50 − 0.5·50 = −75 and bids when the fund
    # pays 75: 50 + 80·t/3600 = 75 → t = 1125 s; takes it all; the fund pays 75
    (fill,) = r.fills
    assert fill.time == pytest.approx(1125.0)
    assert fill.fund_payout == pytest.approx(75.0)
    assert fill.cash_paid == 0.0
    assert r.outcome == "closed" and r.fraction_left == 0.0
    assert r.fund_payout == pytest.approx(75.0) and r.fund_shortfall == 0.0
    short = simulate_auction(-50.0, -130.0, DERIVE_TEST, BidderPopulation([0.5], [1.0]), insurance_fund=60.0)
    assert short.fund_shortfall == pytest.approx(15.0)


def test_solvent_auction_converts_to_insolvent():
    # nobody bids for a positive price (reservation −0.2): after 7800 s the auction converts; per
    # original book the price ramps 0 → MM' = −100 over 3600 s; the bidder values the book at
    # 300 − 1.2·300 = −60, so it bids after 3600·60/100 = 2160 s, at t = 9960 s, paid 60
    r = simulate_auction(300.0, -100.0, DERIVE_TEST, BidderPopulation([-0.2], [1.0]))
    assert r.insolvent_start == pytest.approx(7800.0)
    (fill,) = r.fills
    assert fill.phase == "insolvent" and fill.time == pytest.approx(9960.0)
    assert fill.fund_payout == pytest.approx(60.0)
    assert r.outcome == "closed"
    assert r.t[-1] == pytest.approx(7800.0 + 3600.0)
    # nobody at all: unresolved, book untouched
    none = simulate_auction(300.0, -100.0, DERIVE_TEST, BidderPopulation([-5.0], [1.0]))
    assert not none.ended and none.outcome == "unresolved" and none.fraction_left == 1.0


def test_not_liquidatable_and_bad_inputs():
    r = simulate_auction(300.0, 10.0, DERIVE_TEST, BidderPopulation([1.0], [1.0]))
    assert r.outcome == "not_liquidatable" and r.fills == ()
    with pytest.raises(ValueError):
        simulate_auction(100.0, 200.0)  # MM' > MtM: negative requirement


def test_simulation_reproducible_and_consistent():
    pop1 = bidder_population(50, seed=42)
    pop2 = bidder_population(50, seed=42)
    np.testing.assert_array_equal(pop1.reservation, pop2.reservation)
    np.testing.assert_array_equal(pop1.capacity, pop2.capacity)
    assert not np.array_equal(pop1.reservation, bidder_population(50, seed=43).reservation)
    assert np.all((pop1.reservation > 0) & (pop1.reservation < 1))

    r1 = simulate_auction(300.0, -100.0, DERIVE_MAINNET, pop1)
    r2 = simulate_auction(300.0, -100.0, DERIVE_MAINNET, pop2)
    assert r1.fills == r2.fills
    np.testing.assert_array_equal(r1.price, r2.price)
    assert r1.ended and r1.outcome == "restored"
    frame = r1.fills_frame
    assert list(frame["time"]) == sorted(frame["time"])
    # every solvent fill pays whole-book price × fraction of the original book
    np.testing.assert_allclose(frame["cash_paid"], frame["price"] * frame["fraction_of_original"])
    assert r1.cash_received == pytest.approx(frame["cash_paid"].sum())
    assert r1.fraction_left == pytest.approx(1.0 - frame["fraction_of_original"].sum())
    # only the last fill ends it; the earlier ones leave BM < 0
    assert np.all(frame["buffer_margin_after"].iloc[:-1] < 0)
    assert frame["buffer_margin_after"].iloc[-1] == pytest.approx(0.0, abs=1e-9)
    # price path on the grid: d·MtM, monotone, covering the solvent auction
    assert r1.t[0] == 0.0 and r1.t[-1] == pytest.approx(DERIVE_MAINNET.solvent_seconds)
    np.testing.assert_allclose(r1.price, auction_discount(r1.t, DERIVE_MAINNET) * 300.0)
    assert np.all(np.diff(r1.price) <= 1e-12)


# --------------------------------------------------------------------------------------------
# Drift closed form
# --------------------------------------------------------------------------------------------
def test_drift_published_cases():
    # b = shortage / (P·(mr − lf − if)): 10/(100·0.10) = 1; 10/(100·0.09) = 10/9; 10/(100·0.08) = 1.25
    assert liquidation_amount(10.0, 0.10, 100.0) == pytest.approx(1.0)
    assert liquidation_amount(10.0, 0.10, 100.0, liquidator_fee=0.01) == pytest.approx(10.0 / 9.0)
    assert liquidation_amount(10.0, 0.10, 100.0, liquidator_fee=0.01, if_fee=0.01) == pytest.approx(1.25)


def test_drift_vectorised_and_edge_cases():
    out = liquidation_amount([10.0, 10.0, 10.0, 0.0, -5.0], 0.10, 100.0,
                             liquidator_fee=[0.0, 0.01, 0.01, 0.01, 0.0], if_fee=[0, 0, 0.01, 0, 0])
    np.testing.assert_allclose(out, [1.0, 10.0 / 9.0, 1.25, 0.0, 0.0])
    # fees eat the whole released margin: no finite amount suffices
    assert liquidation_amount(10.0, 0.02, 100.0, liquidator_fee=0.01, if_fee=0.01) == np.inf
    # liquidating b frees b·P·(mr − lf − if) of shortage: check the identity
    b = liquidation_amount(37.0, 0.05, 2_500.0, 0.005, 0.002)
    assert b * 2_500.0 * (0.05 - 0.005 - 0.002) == pytest.approx(37.0)


def test_auction_state_follows_the_post_fill_algebra():
    """_Auction: after taking fraction f of the current book at discount d, BM becomes
    BM + f·(d·MtM + (1 − d)·R − BM) (module docstring), whichever fill came before."""
    run = _Auction(300.0, -100.0, -140.0, np.array([1.0, 1.0]), 1e-12)
    for bidder, d, f in ((0, 1.0, 0.2), (1, 0.9, 0.1)):
        mtm, _, bm = run.figures()
        expected = bm + f * (d * mtm + (1 - d) * run.R - bm)
        taken = f * run.phi
        run.fill(0.0, bidder, "fast", d, d * 300.0, f, taken, cash=d * 300.0 * taken, payout=0.0)
        assert run.figures()[2] == pytest.approx(expected)
    assert run.cap_left.tolist() == pytest.approx([0.8, 1.0 - 0.8 * 0.1])
    run.end("restored", 5.0)
    assert run.ended and run.outcome == "restored" and run.end_time == 5.0


def test_price_path_phases():
    """Solvent then insolvent (Derive test parameters: fast 600 s, slow 7,200 s, insolvent
    3,600 s): d(600) = 0.8 and the last solvent point has d = 0; then the fund's payout ramps
    from max(−MtM₀, 0) = 0 to −MM'₀ = 100."""
    t, discount, price, fund, phase = _price_path(300.0, -100.0, DERIVE_TEST, 7800.0, [], 5)
    assert t.tolist() == [0.0, 600.0, 2850.0, 5700.0, 7800.0, 8550.0, 11400.0]
    assert discount[1] == pytest.approx(0.8) and discount[4] == 0.0
    assert phase.tolist() == ["fast", "slow", "slow", "slow", "slow", "insolvent", "insolvent"]
    assert fund[-1] == pytest.approx(100.0) and fund[5] == pytest.approx(100.0 * 750.0 / 3600.0)
    assert price[-1] == pytest.approx(-100.0) and price[0] == pytest.approx(300.0)
