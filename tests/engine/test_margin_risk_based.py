"""Risk-based model: hand computation from the published grids, presets, contingencies,
exchange-wide account margins.  Expected values are derived here, not read from the code."""
import json
import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import sparse
from scipy.special import ndtr

from engine.instruments import parse_instrument as P  # noqa: N812 — short for the many names
from engine.listing import listed_instruments
from engine.margin import compute, default_params
from engine.margin.core import Universe
from engine.margin.risk_based import (
    RiskBasedParams,
    Scenario,
    account_margins,
    load_preset,
    params_from_dict,
    preset_info,
    preset_names,
    tier_multiplier,
)
from engine.portfolio import Book, Position
from engine.pricing import black76_price
from engine.samples import demo_market
from engine.scenarios import instrument_arrays

S, CARRY = 95000.0, 0.05
DERIBIT_SPOTS = [-0.16, -0.12, -0.08, -0.04, 0.0, 0.04, 0.08, 0.12, 0.16]
TAILS = [-0.66, -0.33, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0]


def test_presets_are_data():
    assert preset_names() == ("deribit", "derive", "okx", "paradex")
    counts = {name: len(load_preset(name).scenarios) for name in preset_names()}
    # Deribit 9×3 + 8 tails; Derive 7×3 + ±18 % + 8 tails; OKX 7×3 + ±24 %; Paradex 24 (its docs)
    assert counts == {"deribit": 35, "derive": 31, "okx": 23, "paradex": 24}
    paradex = load_preset("paradex")
    assert [round(s.weight, 4) for s in paradex.scenarios[-8:]] == [0.2424, 0.4848, 0.32, 0.16, 0.08, 0.0533, 0.04,
                                                                      0.032]
    assert default_params("risk_based") == load_preset("deribit")
    for name in preset_names():
        load_preset(name).validate()
        assert preset_info(name)["source"]
    assert preset_info("deribit")["title"] == "Deribit portfolio margin"


def test_short_call_deribit_by_hand():
    """One short BTC-25DEC26-110000-C: black76_price on the 27 grid states and 8 tails."""
    market = demo_market()
    K, days = 110000.0, 31.0
    T = days / 365.0
    F0 = S * math.exp(CARRY * T)
    sigma = float(market.vol("BTC", K, T)[0])
    V0 = float(black76_price(F0, K, T, sigma, 0.0, True))
    m = (30.0 / days) ** 0.13                           # T > 30 days: long-term power
    up = max(0.5, sigma * (1 + 0.5 * m))                # min_vol_up 0.5
    down = sigma * max(0.0, 1 - 0.25 * m)
    def short(s, v):  # one short contract: P&L = −(V(shocked) − V0)
        return -(float(black76_price(F0 * (1 + s), K, T, v, 0.0, True)) - V0)

    pnl = [short(s, v) for s in DERIBIT_SPOTS for v in (up, sigma, down)]
    # extended moves: edge P&L (±16 %, vol up) + 0.16/|m| of what lies beyond its linear extrapolation
    for m in TAILS:
        e = math.copysign(0.16, m)
        ext = short(e, up) + 0.16 / abs(m) * (short(m, up) - short(e, up) * m / e)
        pnl.append(min(ext + 100_000.0, 0.0) if ext < 0 else ext)  # extended_dampener 100,000 USD
    loss = max(0.0, -min(pnl))
    # roll shock: |forward delta|·S·max(0.01, 0.075·T) = N(d1)·95,000·0.01 (0.075·31/365 < 0.01)
    d1 = (math.log(F0 / K) + 0.5 * sigma * sigma * T) / (sigma * math.sqrt(T))
    roll = float(ndtr(d1)) * S * max(0.01, 0.075 * T)
    r = compute(Book((Position(P("BTC-25DEC26-110000-C"), -1.0),)), market, "risk_based")
    assert r.components["scenario_loss"] == pytest.approx(loss, rel=1e-9)
    assert r.components["roll_shock"] == pytest.approx(roll, rel=1e-9)
    assert r.components["delta_shock"] == 0.0  # far below the $20M liquidity threshold
    assert r.initial == pytest.approx(loss + roll, rel=1e-9)
    assert r.maintenance == pytest.approx(0.8 * (loss + roll), rel=1e-9)
    frame = r.scenario_pnl
    assert len(frame) == 35 and frame["binding"].sum() == 1
    np.testing.assert_allclose(frame["weighted_pnl"], pnl, rtol=1e-9, atol=1e-6)
    worst = int(np.argmin(pnl))
    assert r.binding_scenario["BTC"] == frame["scenario"].iloc[worst]


def test_roll_shock_reproduces_deribit_published_example():
    # private/pme/simulate example: perp 0.314538364, future −0.001187534 (11 days) →
    # roll_shock 0.00315725898 BTC = 0.01 × (0.314538364 + 0.001187534).
    book = Book((Position(P("BTC-PERPETUAL"), 0.314538364), Position(P("BTC-4DEC26"), -0.001187534)))
    r = compute(book, demo_market(), "risk_based")
    assert r.components["roll_shock"] / S == pytest.approx(0.00315725898, rel=1e-9)


def test_delta_shock_above_liquidity_threshold():
    # 300 BTC perp = $28.5M of delta; threshold $20M → 0.1 × 8.5M = 850,000.
    r = compute(Book((Position(P("BTC-PERPETUAL"), 300.0),)), demo_market(), "risk_based")
    assert r.components["delta_shock"] == pytest.approx(0.1 * (300 * S - 20e6))
    # linear: worst is ±16 % (an extended move of a linear book is its edge's P&L) → 0.16·28.5M
    assert r.components["scenario_loss"] == pytest.approx(0.16 * 300 * S)


def test_derive_perp_contingency_added_outside_the_factor():
    # 1 perp: worst weighted loss is ±18 % vol up (tails 0.036 < 0.18) = 17,100; perp MM 1.5 %,
    # IM adds 0.5 % on top (the venue's test parameter set).
    r = compute(Book((Position(P("BTC-PERPETUAL"), 1.0),)), demo_market(), "risk_based", load_preset("derive"))
    loss = 0.18 * S
    assert r.components["scenario_loss"] == pytest.approx(loss)
    assert r.initial == pytest.approx(1.0 * loss + (0.015 + 0.005) * S)
    assert r.maintenance == pytest.approx(0.8 * loss + 0.015 * S)


def test_derive_naked_shorts_netted_per_strike():
    derive = load_preset("derive")
    market = demo_market()
    short_both = Book((Position(P("BTC-25DEC26-95000-C"), -2.0), Position(P("BTC-25DEC26-95000-P"), -1.0)))
    call_vs_put = Book((Position(P("BTC-25DEC26-95000-C"), -2.0), Position(P("BTC-25DEC26-95000-P"), 1.5)))
    # naked = max(−(calls + puts), 0): 3 and 0.5 contracts; IM adds (0.3 % + 0.2 %) of S per contract
    assert compute(short_both, market, "risk_based", derive).components["option_contingency"] == \
        pytest.approx(3 * 0.005 * S)
    assert compute(call_vs_put, market, "risk_based", derive).components["option_contingency"] == \
        pytest.approx(0.5 * 0.005 * S)


def test_derive_forward_floor():
    # A long future: forward ×0.955 loses 4.5 %·F·q; × (0.5 + 2T); T = 122 days.
    book = Book((Position(P("BTC-26MAR27"), 1.0),))
    T = 122 / 365
    F = S * math.exp(CARRY * T)
    r = compute(book, demo_market(), "risk_based", load_preset("derive"))
    assert r.components["forward_floor"] == pytest.approx(0.045 * F * (0.5 + 2 * T), rel=1e-9)


def test_paradex_minimum_delta_charge():
    market = demo_market()
    paradex = load_preset("paradex")
    # outright perp: scan (16 %) beats the minimum (2 %); MM is half
    r = compute(Book((Position(P("BTC-PERPETUAL"), 1.0),)), market, "risk_based", paradex)
    assert r.initial == pytest.approx(0.16 * S) and r.maintenance == pytest.approx(0.08 * S)
    # perp against the March future: scan only sees the carry; min delta = 2 %·|net| + 1 %·hedged
    book = Book((Position(P("BTC-PERPETUAL"), 1.0), Position(P("BTC-26MAR27"), -1.0)))
    long_d, short_d = S, S * math.exp(CARRY * 122 / 365)
    minimum = 0.02 * abs(long_d - short_d) + 0.01 * min(long_d, short_d)
    r = compute(book, market, "risk_based", paradex)
    assert r.components["minimum"] == pytest.approx(minimum, rel=1e-9)
    assert r.initial == pytest.approx(max(r.components["scenario_loss"], minimum), rel=1e-9)


def test_okx_minimum_charge_tiers():
    tiers = load_preset("okx").minimum_charge.min_charge_tiers
    raw = np.array([0.0, 250_000.0, 250_001.0, 999_999.0, 3_500_000.0, 1e9])
    np.testing.assert_array_equal(tier_multiplier(raw, tiers), [1, 1, 2, 4, 10, 12])


def test_params_round_trip_and_bad_params_refused():
    p = load_preset("okx")
    assert params_from_dict(json.loads(json.dumps(p.to_dict()))) == p
    deribit = load_preset("deribit")
    with pytest.raises(ValueError, match="scenario list is empty"):
        replace(deribit, scenarios=()).validate()
    with pytest.raises(ValueError, match="im_factor"):
        replace(deribit, margin=replace(deribit.margin, im_factor=12.0)).validate()
    # Derive accepts an MM factor above the IM factor (its test portfolio 87: MM 10, IM 1)
    replace(deribit, margin=replace(deribit.margin, mm_factor=10.0)).validate()
    with pytest.raises(ValueError, match="mm_factor"):
        replace(deribit, margin=replace(deribit.margin, mm_factor=10.5)).validate()
    with pytest.raises(ValueError, match="range_up"):
        replace(deribit, vol_shock=replace(deribit.vol_shock, vol_range_up=-0.5)).validate()
    with pytest.raises(ValueError, match="spot shock"):
        replace(deribit, scenarios=(Scenario(-1.2, "up"),)).validate()
    with pytest.raises(ValueError, match="unknown risk_based preset"):
        load_preset("binance")
    with pytest.raises(ValueError, match="unknown key"):
        params_from_dict({"scenarios": [], "leverage": 3})
    with pytest.raises(ValueError, match="im_factor"):
        compute(Book(), demo_market(), "risk_based", replace(deribit, margin=replace(deribit.margin, im_factor=0.0)))
    with pytest.raises(ValueError, match="RiskBasedParams"):
        compute(Book(), demo_market(), "risk_based", default_params("span"))


@pytest.mark.parametrize("preset", ["deribit", "derive", "okx", "paradex"])
def test_account_margins_match_single_books(preset):
    market = demo_market()
    listing = listed_instruments(market)
    universe = Universe(instrument_arrays(listing, market))
    rng = np.random.default_rng(7)
    n_acc = 6
    Q = sparse.random(n_acc, len(listing), density=0.02, random_state=rng, format="csr")
    Q.data = np.round((Q.data - 0.5) * 40, 1)
    params = load_preset(preset)
    out = account_margins(Q, universe, params)
    dense = Q.toarray()
    for a in range(n_acc):
        book = Book(tuple(Position(listing[k], float(dense[a, k])) for k in np.flatnonzero(dense[a])))
        r = compute(book, market, "risk_based", params)
        assert out.initial[a] == pytest.approx(r.initial, rel=1e-9, abs=1e-6)
        assert out.maintenance[a] == pytest.approx(r.maintenance, rel=1e-9, abs=1e-6)
        assert out.components["roll_shock"][a] == pytest.approx(r.components["roll_shock"], rel=1e-9, abs=1e-6)


def test_account_margins_take_a_given_pnl_matrix():
    market = demo_market()
    listing = listed_instruments(market)[:40]
    universe = Universe(instrument_arrays(listing, market))
    params = RiskBasedParams("flat", (Scenario(-0.1), Scenario(0.1)))
    pnl = np.zeros((len(listing), 2))
    pnl[0] = [-100.0, 50.0]  # one contract of instrument 0 loses 100 in scenario 1
    Q = sparse.csr_matrix(([2.0, -1.0], ([0, 1], [0, 0])), shape=(2, len(listing)))
    out = account_margins(Q, universe, params, instrument_pnl=pnl)
    np.testing.assert_allclose(out.initial, [200.0, 50.0])
    with pytest.raises(ValueError, match="instrument_pnl"):
        account_margins(Q, universe, params, instrument_pnl=pnl[:, :1])
