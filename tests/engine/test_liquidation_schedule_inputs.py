"""Almgren–Chriss inputs of a close-out (engine.liquidation.schedule.schedule_inputs), each derived
by hand from the cost model's published defaults (engine/liquidation/costs.py: half-spread 2 bp
of price for linear instruments, max(3 % of mark, 1 bp of spot) for options; ADV perp $1.5 bn,
future $200 m, option $20 m a day; fees 0.5 % / 0.2 % of spot, capped at an option's mark;
impact k = 1) and the market's 30-day ATM vol."""
import math
from dataclasses import replace

import numpy as np
import pytest

from engine.instruments import parse_instrument
from engine.liquidation.costs import CostParams
from engine.liquidation.schedule import almgren_chriss_schedule, schedule_inputs
from engine.market import STICKY_STRIKE
from engine.scenarios import instrument_arrays, instrument_values


@pytest.fixture(scope="module")
def atm30(market):
    T = 30.0 / 365.0
    return float(np.ravel(market.vol("BTC", market.forward("BTC", T), T))[0])


def test_perpetual_by_hand(market, atm30):
    S, X, days = market.underlyings["BTC"].spot, 250.0, 2.0
    inputs = schedule_inputs("BTC-PERPETUAL", -X, market, days)
    adv = 1.5e9 / S                                   # contracts a day
    h = 2e-4 * S                                      # the perp's price is spot
    c = 1.0 * atm30 / math.sqrt(365.0) * S / math.sqrt(adv)
    assert inputs.X == X
    assert inputs.sigma == pytest.approx(S * atm30 / math.sqrt(365.0), rel=1e-12)   # Δ = 1
    assert inputs.eta == pytest.approx(c / math.sqrt(X / days), rel=1e-12)
    assert inputs.gamma == pytest.approx(2 * h / (0.1 * adv), rel=1e-12)
    assert inputs.epsilon == pytest.approx(h + 0.005 * S, rel=1e-12)


def test_dated_future_by_hand(market, atm30):
    """A future's delta to spot is ∂F/∂S = e^{cT}; its half-spread is on the forward, its fee on spot."""
    u = market.underlyings["BTC"]
    inst = parse_instrument("BTC-25DEC26")
    F = u.spot * math.exp(u.carry * market.expiry_years(inst.expiry))
    inputs = schedule_inputs(inst, 40.0, market, 1.0)
    adv = 200e6 / u.spot
    assert inputs.sigma == pytest.approx(F / u.spot * u.spot * atm30 / math.sqrt(365.0), rel=1e-9)
    assert inputs.gamma == pytest.approx(2 * 2e-4 * F / (0.1 * adv), rel=1e-9)
    assert inputs.epsilon == pytest.approx(2e-4 * F + 0.005 * u.spot, rel=1e-9)


def test_option_by_hand(market, atm30):
    """Option: σ uses its delta (central difference of its value in spot at its own vol, sticky
    strike, as the cost model's Black-76 delta is), the impact weight
    max(|Δ|, 0.1), the half-spread max(3 % of mark, 1 bp of spot), the fee 0.2 % of spot capped at the mark."""
    name = "BTC-25DEC26-100000-C"
    arr = instrument_arrays((parse_instrument(name),), market)
    mark = float(instrument_values(arr)[0])
    S, bump = market.underlyings["BTC"].spot, 1e-4
    up, down = instrument_values(replace(arr, sticky=STICKY_STRIKE), np.array([[bump], [-bump]]))[:, 0]
    delta = (up - down) / (2 * bump * S)
    X, days = 30.0, 0.5
    inputs = schedule_inputs(name, X, market, days)
    h = max(0.03 * mark, 1e-4 * S)
    adv = 20e6 / S
    c = atm30 / math.sqrt(365.0) * S * max(abs(delta), 0.1) / math.sqrt(adv)
    assert inputs.sigma == pytest.approx(abs(delta) * S * atm30 / math.sqrt(365.0), rel=1e-6)
    assert inputs.eta == pytest.approx(c / math.sqrt(X / days), rel=1e-6)
    assert inputs.gamma == pytest.approx(2 * h / (0.1 * adv), rel=1e-9)
    assert inputs.epsilon == pytest.approx(h + min(0.002 * S, mark), rel=1e-9)


def test_linearised_impact_matches_the_cost_law_at_the_average_rate(market):
    """η·v = c·√v at v = X/T: the schedule's temporary impact per contract equals the square-root
    law's at the rate of a straight-line close-out; halving k halves η."""
    X, days = 120.0, 3.0
    full = schedule_inputs("ETH-PERPETUAL", X, market, days)
    half = schedule_inputs("ETH-PERPETUAL", X, market, days, CostParams(impact_k=0.5))
    assert half.eta == pytest.approx(full.eta / 2, rel=1e-12)
    assert half.sigma == full.sigma and half.gamma == full.gamma and half.epsilon == full.epsilon


def test_inputs_feed_the_schedule(market):
    inputs = schedule_inputs("BTC-PERPETUAL", 500.0, market, 1.0)
    s = almgren_chriss_schedule(inputs.X, inputs.sigma, inputs.eta, inputs.gamma, 1.0, 10, 1e-6, inputs.epsilon)
    assert s.holdings[0] == 500.0 and s.holdings[-1] == 0.0


@pytest.mark.parametrize("quantity, days", [(0.0, 1.0), (10.0, 0.0), (float("nan"), 1.0)])
def test_bad_inputs_refused(market, quantity, days):
    with pytest.raises(ValueError, match="non-zero quantity"):
        schedule_inputs("BTC-PERPETUAL", quantity, market, days)
