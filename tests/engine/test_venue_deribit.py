"""Deribit portfolio margin against the published ``private/pme/simulate`` example.

The fixture transcribes the example response of Deribit's API documentation (source in the
file): a BTC-margined (inverse) book of a perpetual and the 28JUN24 future.  Reproduced: each
instrument's risk vectors, standard (9 price moves × 3 vol scenarios) and extended (8 moves,
vol up), in BTC; the aggregated vectors (gains capped at max_offsetable_pnl = 0, the extended
losses dampened); the worst case, the roll shock, the delta shock, the risk-matrix margin and
MM = 0.8 × it.  The extended-table and dampener formulas are our definitions (Deribit publishes
none; docs/venues.md): this example is what they are checked against.  MMP and open-order
margins are not modelled.
"""
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from engine.account import Account, VenueFeeds
from engine.instruments import parse_instrument
from engine.margin import MODELS, account_book, compute
from engine.margin.risk_based import load_preset
from engine.market import market_from_dict
from engine.portfolio import Book, Position

EXAMPLE = json.loads((Path(__file__).parent / "fixtures" / "deribit" / "pme_simulate_example.json").read_text())


def example():
    t0 = datetime.fromtimestamp(EXAMPLE["timestamp_ms"] / 1000, UTC)
    S = EXAMPLE["index_price"]
    expiry = datetime(2024, 6, 28, 8, tzinfo=UTC)
    T = (expiry - t0).total_seconds() / (365 * 86400)
    carry = float(np.log(EXAMPLE["ticker"]["BTC-28JUN24"] / S) / T)
    market = market_from_dict({"valuation_time": t0.isoformat(), "underlyings": {
        "BTC": {"spot": S, "carry": carry, "smile": [{"expiry": "2024-06-28", "atm_vol": 0.5}]}}})
    book = Book(tuple(Position(parse_instrument(n), q) for n, q in EXAMPLE["position"].items()))
    feeds = VenueFeeds(perp_mark={"BTC": EXAMPLE["ticker"]["BTC-PERPETUAL"]})
    return book, market, feeds, load_preset("deribit")


def test_risk_vectors_per_instrument_in_btc():
    book, market, feeds, params = example()
    ab = account_book(book, market, Account(denomination="BTC"), feeds)
    kernel = ab.kernel(MODELS["risk_based"], params)
    names = list(ab.mb.arrays.names)
    for name, expected in EXAMPLE["initial_risk_vectors_standard"].items():
        i = names.index(name)
        vector = kernel.instrument_pnl[i] * EXAMPLE["position"][name]
        # 27 entries: each price move under vol up / unchanged / down (equal for linear contracts)
        np.testing.assert_allclose(vector[:27], np.repeat(expected, 3), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(vector[27:], EXAMPLE["initial_risk_vectors_extended"][name], rtol=1e-12,
                                   atol=1e-15)


def test_aggregated_vector_worst_case_roll_shock_and_margins():
    book, market, feeds, params = example()
    r = compute(book, market, "risk_based", params, account=Account(denomination="BTC"), feeds=feeds)
    assert r.currency == "BTC"
    aggregated = np.minimum(r.scenario_pnl["weighted_pnl"].to_numpy(), 0.0)  # max_offsetable_pnl 0
    expected = np.concatenate([np.repeat(EXAMPLE["aggregated_standard"], 3), EXAMPLE["aggregated_extended"]])
    np.testing.assert_allclose(aggregated, expected, rtol=1e-12, atol=1e-15)
    assert r.components["scenario_loss"] == pytest.approx(EXAMPLE["worst_case"], rel=1e-12)
    assert r.components["roll_shock"] == pytest.approx(EXAMPLE["roll_shock"], rel=1e-9)
    assert r.components["delta_shock"] == EXAMPLE["delta_shock"]
    # The published risk-matrix margin is worst case + roll shock to 4e-10 BTC (its own rounding).
    assert r.initial == pytest.approx(EXAMPLE["risk_matrix_margin"], abs=1e-9)
    assert EXAMPLE["maintenance_margin"] == pytest.approx(EXAMPLE["mm_factor"] * EXAMPLE["risk_matrix_margin"],
                                                          rel=1e-12)
    assert r.maintenance == pytest.approx(EXAMPLE["maintenance_margin"], abs=1e-9)
