"""SIMM-style model: docs/methodology.md §9's curvature figures and hand-computed delta/vega/curvature."""
import math

import numpy as np
import pytest

from engine.instruments import parse_instrument as P  # noqa: N812 — short for the many names
from engine.margin import compute
from engine.margin.greeks_based import SimmParams, curvature_margin, delta_margin
from engine.portfolio import Book, Position
from engine.pricing import black76_greeks
from engine.samples import demo_market

PHI_995_SQ = 6.634896601021214  # Φ⁻¹(0.995)², docs/methodology.md §9


def test_curvature_single_exposures_design_figures():
    # +100: θ = 0, λ = 5.634896601 → 100 + 563.4896601 = 663.49;  −100: θ = −1, λ = 1 → 0.
    assert curvature_margin([100.0]) == pytest.approx(663.49, abs=5e-3)
    assert curvature_margin([-100.0]) == 0.0


def test_curvature_offsetting_exposures():
    # ρ = 1: +100 and −100 net to K = 0 and ΣCVR = 0 → 0.
    assert curvature_margin([100.0, -100.0]) == pytest.approx(0.0, abs=1e-9)
    # ρ = 0 (squared: 0): K = √(100² + 100²) = 141.42; θ = min(0/200, 0) = 0 → λ·K = 5.6349·141.42.
    expected = (PHI_995_SQ - 1.0) * math.sqrt(2.0) * 100.0
    assert curvature_margin([100.0, -100.0], rho=0.0) == pytest.approx(expected, rel=1e-12)


def test_delta_margin_buckets():
    # two buckets, γ = 0: √(30² + 40²) = 50;  γ = 0.5: √(2500 + 2·0.5·30·(−40)) = √1300.
    assert delta_margin([30.0, -40.0], bucket=["BTC", "ETH"]) == pytest.approx(50.0)
    assert delta_margin([30.0, -40.0], bucket=["BTC", "ETH"], gamma=0.5) == pytest.approx(math.sqrt(1300.0))
    # one bucket, ρ = 0.5: √(900 + 1600 + 2·0.5·30·(−40)) = √1300
    assert delta_margin([30.0, -40.0], rho=0.5) == pytest.approx(math.sqrt(1300.0))


def test_perp_is_delta_only():
    r = compute(Book((Position(P("BTC-PERPETUAL"), -2.0),)), demo_market(), "greeks_based")
    assert r.components["delta_margin"] == pytest.approx(0.33 * 2 * 95000.0)
    assert r.components["vega_margin"] == 0.0 and r.components["curvature_margin"] == 0.0
    assert r.initial == r.maintenance == pytest.approx(0.33 * 2 * 95000.0)


def test_single_short_option_by_hand():
    market = demo_market()
    S, b, K, days = 95000.0, 0.05, 100000.0, 31.0
    T = days / 365.0
    F = S * math.exp(b * T)
    sigma = float(market.vol("BTC", K, T)[0])
    g = black76_greeks(F, K, T, sigma, 0.0, False)
    q = -3.0
    sigma_simm = 0.33 * math.sqrt(365.0 / 14.0) / 2.3263478740408408  # RW·√(365/14)/Φ⁻¹(0.99)
    delta = 0.33 * abs(q * float(g.delta) * math.exp(b * T) * S)
    vega = 0.45 * 0.60 * abs(q * float(g.vega)) * sigma_simm
    cvr = -0.5 * min(1.0, 14.0 / days) * q * float(g.vega) * sigma_simm  # > 0: short option
    curvature = PHI_995_SQ * cvr  # single positive CVR: ΣCVR + (Φ² − 1)·CVR
    r = compute(Book((Position(P("BTC-25DEC26-100000-P"), q),)), market, "greeks_based")
    assert r.components["delta_margin"] == pytest.approx(delta, rel=1e-9)
    assert r.components["vega_margin"] == pytest.approx(vega, rel=1e-9)
    assert r.components["curvature_margin"] == pytest.approx(curvature, rel=1e-9)
    assert r.initial == pytest.approx(delta + vega + curvature, rel=1e-9)
    # the long option carries no curvature margin
    long = compute(Book((Position(P("BTC-25DEC26-100000-P"), 3.0),)), market, "greeks_based")
    assert long.components["curvature_margin"] == 0.0


def test_cross_bucket_correlation_offsets_opposite_deltas():
    book = Book((Position(P("BTC-PERPETUAL"), 1.0), Position(P("ETH-PERPETUAL"), -95000.0 / 3400.0)))
    market = demo_market()
    alone = compute(book, market, "greeks_based").components["delta_margin"]
    assert alone == pytest.approx(math.sqrt(2.0) * 0.33 * 95000.0)
    hedged = compute(book, market, "greeks_based", SimmParams(cross_bucket_correlation=0.8)).components["delta_margin"]
    assert hedged == pytest.approx(math.sqrt(2.0 - 2 * 0.8) * 0.33 * 95000.0)


def test_bad_params_refused():
    with pytest.raises(ValueError, match="delta_correlation"):
        SimmParams(delta_correlation=1.5).validate()
    with pytest.raises(ValueError, match="delta_risk_weight"):
        SimmParams(delta_risk_weight=-0.1).validate()
    assert np.isclose(SimmParams().simm_vol, 0.33 * math.sqrt(365 / 14) / 2.3263478740408408)
