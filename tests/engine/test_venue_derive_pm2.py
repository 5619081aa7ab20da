"""Derive PM2 to the cent: the venue's published test portfolios through ``risk_based``.

The fixtures (tests/engine/fixtures/derive_pm2/) transcribe 12 of the portfolios of
derivexyz/v2-core (BUSL-1.1; source and licence in each file): positions, feeds, parameters and
the venue's results.  A case's IM/MM are net margins (MTM − requirement), so the requirement
pmdash must give is MTM − IM (resp. MM); every scenario's P&L must match too.
"""
import json
import math
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from engine.account import SliceFeed, VenueFeeds, load_account
from engine.instruments import parse_instrument
from engine.margin import compute
from engine.margin.account import account_health
from engine.margin.risk_based import load_preset, params_from_dict
from engine.market import SmileCoefficients, market_from_dict
from engine.portfolio import Book, Position
from engine.scenarios import instrument_arrays

FIXTURES = Path(__file__).parent / "fixtures" / "derive_pm2"
CASES = sorted(p.stem for p in FIXTURES.glob("*.json"))
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
CENT = 0.005


def _name(und: str, expiry: datetime, strike: float, call: bool) -> str:
    return f"{und}-{expiry.day}{MONTHS[expiry.month - 1]}{expiry.year % 100:02d}-{strike:g}-{'C' if call else 'P'}"


def load_case(name: str):
    """(book, market, arrays, account, feeds, params, expected) of one fixture."""
    case = json.loads((FIXTURES / f"{name}.json").read_text())
    und, spot = case["underlying"], case["spot"]
    t0 = datetime.fromisoformat(case["valuation_time"].replace("Z", "+00:00"))
    expiries = {e["seconds"]: e for e in case["expiries"]}
    positions, forwards, vols = [], [], []
    for o in case["options"]:
        e = expiries[o["seconds"]]
        when = datetime.fromtimestamp(t0.timestamp() + o["seconds"], UTC)
        positions.append(Position(parse_instrument(_name(und, when, o["strike"], o["call"])), o["amount"]))
        forwards.append(e["forward"])
        vols.append(o["vol"])
    perp = case["perp"]
    if perp["quantity"]:
        positions.append(Position(parse_instrument(f"{und}-PERPETUAL"), perp["quantity"], perp["entry_price"]))
    first = case["expiries"][0] if case["expiries"] else {"rate": 0.0, "expiry": case["valuation_time"]}
    market = market_from_dict({"valuation_time": case["valuation_time"], "usd_rate": first["rate"],
                               "underlyings": {und: {"spot": spot, "smile": [
                                   {"expiry": first["expiry"][:10], "atm_vol": 0.5}]}}})
    book = Book(tuple(positions))
    arrays = None
    if book.positions:
        # The venue prices each option at its own mark vol and its expiry's forward: per-option
        # smile coefficients (flat at the mark vol) and per-instrument carry ln(F/S)/T.
        arrays = instrument_arrays(book.instruments, market)
        o = arrays.option_index
        carry = arrays.carry.copy()
        fwd_of = {p.instrument: f for p, f in zip(positions[:len(forwards)], forwards, strict=True)}
        vol_of = {p.instrument: v for p, v in zip(positions[:len(vols)], vols, strict=True)}
        carry[o] = [math.log(fwd_of[arrays.instruments[i]] / spot) / arrays.T[i] for i in o]
        flat = np.array([[vol_of[arrays.instruments[i]] for i in o], np.zeros(len(o)), np.zeros(len(o))])
        T = arrays.T[o]
        arrays = replace(arrays, carry=carry, smile=SmileCoefficients(flat, flat, T, T, np.zeros(len(o))))
    account = load_account({"cash": case["cash"], "collateral": case["collateral"]})
    slices = {(und, datetime.fromisoformat(e["expiry"].replace("Z", "+00:00")).date()):
              SliceFeed(e["forward_confidence"], e["rate_confidence"], e["vol_confidence"], e["rate"])
              for e in case["expiries"]}
    feeds = VenueFeeds({und: case["spot_confidence"]}, {und: perp["mark"]} if perp["quantity"] else {},
                       {und: perp["confidence"]}, case["stable_price"], case["stable_confidence"], slices)
    params = params_from_dict(case["params"], "derive-case")
    return book, market, arrays, account, feeds, params, case["expected"]


@pytest.mark.parametrize("name", CASES)
def test_derive_case_to_the_cent(name):
    book, market, arrays, account, feeds, params, expected = load_case(name)
    r = compute(book, market, "risk_based", params, arrays=arrays, account=account, feeds=feeds)
    mtm = expected["portfolio_mtm"]
    assert r.initial == pytest.approx(mtm - expected["im"], abs=CENT)
    assert r.maintenance == pytest.approx(mtm - expected["mm"], abs=CENT)
    frame = r.scenario_pnl
    if frame.empty:  # no position and no risk-cancelling collateral: every scenario is flat
        assert not any(expected["scenario_pnl"])
    else:
        np.testing.assert_allclose(frame["weighted_pnl"], expected["scenario_pnl"], rtol=0, atol=CENT)


@pytest.mark.parametrize("name", [c for c in CASES if c != "test_61_general_general_test_1"])
def test_derive_case_equity_is_the_portfolio_mtm(name):
    # One rate per case (test 61 has five expiries at five rates, which the market's single
    # usd_rate cannot price): equity = cash + collateral + options + perp P&L at the perp mark.
    book, market, arrays, account, feeds, params, expected = load_case(name)
    h = account_health(book, market, account, "risk_based", params, arrays=arrays, feeds=feeds)
    assert h.equity == pytest.approx(expected["portfolio_mtm"], abs=CENT)


def test_twelve_cases_are_transcribed():
    assert len(CASES) == 12


def test_the_derive_preset_is_the_cases_default_parameter_set():
    # Every case of the default set (all but the two with their own skew/tail parameters)
    # uses the preset's groups exactly; the scenario lists agree as sets.
    preset = load_preset("derive")
    for name in ("test_12_risk_cancelling_naked_short_call", "test_22_structures_long_box",
                 "test_50_discounting_simple_discounting"):
        *_, params, _ = load_case(name)
        for group in ("vol_shock", "margin", "static_discount", "basis_contingency", "other_contingency",
                      "skew_shock"):
            assert asdict(getattr(params, group)) == pytest.approx(asdict(getattr(preset, group)), rel=1e-12), group
        key = sorted((round(s.spot, 9), s.vol, round(s.weight, 9)) for s in params.scenarios)
        assert key == sorted((round(s.spot, 9), s.vol, round(s.weight, 9)) for s in preset.scenarios)
