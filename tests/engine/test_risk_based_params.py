"""risk_based parameters: venue groups with metadata, the old flat form, venue-accepted values,
and fuzzed account / feed input."""
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.account import AccountError, account_to_dict, feeds_from_market_dict, load_account
from engine.instruments import parse_instrument
from engine.margin import compute, params_from_dict, params_to_dict
from engine.margin.params import describe
from engine.margin.risk_based import RiskBasedParams, load_preset
from engine.margin.risk_based import params_from_dict as rb_from_dict
from engine.portfolio import Book, Position
from engine.samples import demo_market

OLD_FLAT = {  # the params dict a dashboard stored before the venue groups
    "preset": "derive", "scenarios": [{"spot": -0.1, "vol": "up", "weight": 1.0}, {"spot": 0.1, "vol": "down"}],
    "vol_shock": {"range_up": 0.5, "range_down": 0.3, "min_vol_up": 0.4, "short_power": 0.3, "long_power": 0.13,
                  "pivot_days": 30.0, "floor_days": 1.0},
    "im_factor": 1.0, "mm_factor": 0.8, "max_delta_shock": 0.0, "delta_liquidity_threshold": 0.0,
    "annualised_move_risk": 0.0, "min_annualised_move": 0.0, "forward_shock": 0.045, "forward_base_factor": 0.5,
    "forward_time_factor": 2.0, "min_delta_net": 0.0, "min_delta_hedged": 0.0, "min_charge_rate": 0.0,
    "min_charge_tiers": [], "perp_mm": 0.03, "perp_im": 0.01, "naked_short_mm": 0.003, "naked_short_im": 0.002,
}


def test_old_flat_params_load_onto_the_venue_groups():
    p = params_from_dict("risk_based", OLD_FLAT)
    assert p.vol_shock.vol_range_down == 0.3 and p.vol_shock.min_vol_up_shock == 0.4
    assert p.margin.mm_factor == 0.8
    assert (p.basis_contingency.scenario_spot_up, p.basis_contingency.scenario_spot_down) == (1.045, 0.955)
    assert p.basis_contingency.basis_cont_mult_factor == 2.0
    assert p.other_contingency.mm_perp_percent == 0.03 and p.other_contingency.im_option_percent == 0.002
    # and the new form round-trips through JSON
    assert params_from_dict("risk_based", json.loads(json.dumps(params_to_dict(p)))) == p


@pytest.mark.parametrize("name", ["deribit", "derive", "okx", "paradex"])
def test_presets_round_trip(name):
    p = load_preset(name)
    assert rb_from_dict(json.loads(json.dumps(p.to_dict()))) == p


def test_every_parameter_carries_unit_description_and_range():
    rows = describe(RiskBasedParams)
    groups = {r.group for r in rows}
    assert {"vol_shock", "margin", "static_discount", "basis_contingency", "other_contingency",
            "skew_shock"} <= groups
    assert all(r.description for r in rows)
    assert "vol_shock.dte_floor" in {r.name for r in rows}


def test_venue_accepted_values_are_accepted():
    # Derive accepts a DTE floor of 0, a dampening factor of 0 and a negative skew scale.
    p = load_preset("derive")
    data = p.to_dict()
    data["vol_shock"]["dte_floor"] = 0.0
    data["skew_shock"]["vol_param_scale"] = -20.0
    data["scenarios"][0]["weight"] = 0.0
    q = params_from_dict("risk_based", data)
    book = Book((Position(parse_instrument("BTC-25DEC26-100000-C"), -1.0),))
    r = compute(book, demo_market(), "risk_based", q)
    assert math.isfinite(r.initial) and r.initial > 0


def test_out_of_range_values_name_the_group_field():
    data = load_preset("derive").to_dict()
    data["other_contingency"]["conf_threshold"] = 1.5
    with pytest.raises(ValueError, match="other_contingency.conf_threshold"):
        params_from_dict("risk_based", data)
    data = load_preset("derive").to_dict()
    data["vol_shock"]["volume"] = 1
    with pytest.raises(ValueError, match="vol_shock.volume"):
        params_from_dict("risk_based", data)


collateral_item = st.fixed_dictionaries({"asset": st.sampled_from(["BTC", "ETH", "USDT", ""]),
                                         "amount": st.one_of(st.floats(allow_nan=True), st.text(max_size=3),
                                                             st.none())},
                                        optional={"price": st.one_of(st.floats(), st.none(), st.text(max_size=2)),
                                                  "underlying": st.sampled_from(["BTC", "SOL", None]),
                                                  "im_haircut": st.floats(-1, 2),
                                                  "risk_cancelling": st.one_of(st.booleans(), st.integers(0, 1)),
                                                  "confidence": st.floats(-1, 2)})
account_data = st.one_of(
    st.fixed_dictionaries({"cash": st.one_of(st.floats(), st.text(max_size=3), st.none()),
                           "collateral": st.lists(collateral_item, max_size=3)},
                          optional={"denomination": st.sampled_from(["USD", "BTC", "XYZ"])}),
    st.floats(), st.none(), st.text(max_size=5), st.lists(st.integers(), max_size=2))


@settings(max_examples=150, deadline=None)
@given(account_data)
def test_fuzzed_accounts_load_or_raise_account_error(data):
    try:
        account = load_account(data)
    except AccountError as e:
        assert str(e)
        return
    assert load_account(account_to_dict(account)) == account
    assert np.isfinite(account.cash)


@settings(max_examples=100, deadline=None)
@given(st.fixed_dictionaries({"underlyings": st.dictionaries(
    st.sampled_from(["BTC", "ETH"]),
    st.fixed_dictionaries({}, optional={"spot_confidence": st.one_of(st.floats(), st.text(max_size=2)),
                                        "perp_mark": st.one_of(st.floats(), st.none()),
                                        "smile": st.lists(st.fixed_dictionaries(
                                            {"expiry": st.sampled_from(["2026-12-25", "bad"])},
                                            optional={"forward_confidence": st.floats(),
                                                      "rate": st.floats()}), max_size=2)}), max_size=2)},
    optional={"stable_price": st.floats()}))
def test_fuzzed_feeds_load_or_raise_account_error(data):
    try:
        feeds = feeds_from_market_dict(data)
    except AccountError as e:
        assert str(e)
        return
    assert 0.0 <= feeds.stable_confidence <= 1.0 and feeds.stable_price > 0
