"""Margin parameters survive the JSON round trip the dashboard store uses, and bad values in
that JSON are refused with a message naming the field."""
import json
from dataclasses import fields

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.margin import MODELS, default_params, params_from_dict, params_to_dict
from engine.margin.params import describe
from engine.margin.span import SpanParams


@pytest.mark.parametrize("model", list(MODELS))
def test_round_trip(model):
    params = default_params(model)
    text = json.dumps(params_to_dict(params))
    assert params_from_dict(model, json.loads(text)) == params


@pytest.mark.parametrize("model, data, words", [
    ("tims", {"points": 3}, "points"),
    ("span", {"price_scan_range": -0.1}, "price_scan_range"),
    ("standard", {"no_such": 1.0}, "no_such"),
    ("standard", {"future_im_rate": 10 ** 400}, "future_im_rate must be in .* 401 digits"),
])
def test_bad_values_refused(model, data, words):
    with pytest.raises(ValueError, match=words):
        params_from_dict(model, data)


def test_text_is_not_a_number():
    """"0.5" parses as a float but is text: refused with a message, not a failure in the maths."""
    with pytest.raises(ValueError, match="must be a number"):
        params_from_dict("span", {"price_scan_range": "0.2"})
    data = params_to_dict(default_params("risk_based"))
    data["scenarios"][3]["weight"] = "heavy"
    with pytest.raises(ValueError, match="scenario 4 weight: 'heavy' is not a number"):
        params_from_dict("risk_based", data)


# ----------------------------------------------------------------------------- one convention

SIMPLE_MODELS = [m for m in MODELS if m != "risk_based"]


@pytest.mark.parametrize("model", SIMPLE_MODELS)
def test_every_field_carries_its_metadata(model):
    """Every parameter of the models without presets has a unit, a description and a range
    that its published default lies in."""
    spec = MODELS[model]
    infos = {i.name: i for i in describe(spec.params_type)}
    assert set(infos) == {f.name for f in fields(spec.params_type)}
    defaults = spec.defaults(None)
    for name, info in infos.items():
        assert info.unit and info.description, name
        for value in np.atleast_1d(getattr(defaults, name)):
            assert (info.lo is None or value >= info.lo) and (info.hi is None or value <= info.hi), name


@pytest.mark.parametrize("model, data, words", [
    ("span", {"price_scan_range": 0.0}, r"price_scan_range must be in \(0, 0.9\]"),  # open lower bound
    ("greeks_based", {"delta_correlation": 1.5}, r"delta_correlation must be in \[-1, 1\]"),
    ("tims", {"vol_shocks": [0.1, 3.0]}, r"vol_shocks\[2\] must be in \[-2, 2\]"),
    ("tims", {"vol_shocks": 0.1}, "vol_shocks must be a list of numbers"),
    ("tims", {"vol_shocks": [[0.1]]}, "vol_shocks must be a list of numbers"),
    ("standard", {"option_im_rate": [0.1]}, "option_im_rate must be a single value"),
    ("standard", {"option_im_rate": {"x": 1}}, "option_im_rate must be a single value"),
    ("standard", {"option_im_rate": None}, "option_im_rate must be a number"),
    ("standard", {"option_mm_rate": "0.5", "option_im_floor": 0.1}, "option_mm_rate must be a number"),
    ("standard", [0.1], "expected an object"),
    ("standard", {3: 0.1}, "unknown parameter"),
])
def test_wrong_shapes_and_values_name_the_field(model, data, words):
    with pytest.raises(ValueError, match=words):
        params_from_dict(model, data)


def test_cross_field_rules_kept():
    with pytest.raises(ValueError, match="option_mm_rate must not exceed option_im_floor"):
        params_from_dict("standard", {"option_mm_rate": 0.2})
    with pytest.raises(ValueError, match="extreme_multiple × price_scan_range must be below 1"):
        params_from_dict("span", {"price_scan_range": 0.6})
    with pytest.raises(ValueError, match="points must be an even integer"):
        params_from_dict("tims", {"points": 2.5})


JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                         st.text(max_size=5))
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=2)),
    max_leaves=6)


@pytest.mark.parametrize("model", SIMPLE_MODELS)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_params_from_dict_only_raises_value_error(model, data):
    """Any JSON a store could hold gives valid params or a ValueError — never a TypeError or
    AttributeError from deeper down."""
    names = [f.name for f in fields(MODELS[model].params_type)]
    payload = data.draw(st.one_of(
        st.dictionaries(st.sampled_from(names + ["junk"]), JSON_VALUES, max_size=4),
        JSON_VALUES))
    try:
        params = params_from_dict(model, payload)
    except ValueError:
        return
    assert isinstance(params, MODELS[model].params_type)
    params.validate()


# ----------------------------------------------------------------------------- model specs


@pytest.mark.parametrize("model", list(MODELS))
def test_spec_carries_the_ui_metadata(model):
    spec = MODELS[model]
    assert spec.title and spec.short_name and spec.source
    assert bool(spec.no_grid) == (model in ("standard", "greeks_based"))
    assert spec.label(default_params(model)).startswith(spec.short_name)


def test_titles():
    assert MODELS["span"].title == "SPAN-style (CME method)"
    assert MODELS["greeks_based"].title == "SIMM-style"
    assert MODELS["risk_based"].label(default_params("risk_based", "okx")) == "Risk-based (okx)"


def test_margin_model_resolves_once_and_is_accepted_by_name_or_value():
    from engine.margin import MarginModel, compute, margin_model, model_spec
    from engine.samples import demo_book, demo_market

    m = margin_model("span", SpanParams(price_scan_range=0.2))
    assert m.params.price_scan_range == 0.2 and margin_model(m) is m
    with pytest.raises(ValueError, match="price_scan_range"):
        MarginModel(model_spec("span"), SpanParams(price_scan_range=-1.0))
    with pytest.raises(ValueError, match="not with a resolved MarginModel"):
        margin_model(m, SpanParams())
    book, market = demo_book("short_iron_condor"), demo_market()
    assert compute(book, market, m).initial == compute(book, market, "span", SpanParams(price_scan_range=0.2)).initial


def test_from_dict_handles_nested_groups():
    """The same convention for a params type with a nested group (as the risk-based one has)."""
    from dataclasses import dataclass, field

    from engine.margin.core import ParamCheck
    from engine.margin.params import check_ranges, from_dict, param

    @dataclass(frozen=True)
    class Shock:
        up: float = param(0.5, unit="fraction", description="up", lo=0.0, hi=1.0)

    @dataclass(frozen=True)
    class Params:
        shock: Shock = field(default_factory=Shock)
        factor: float = param(1.0, unit="×", description="factor", lo=0.0, hi=10.0)

    assert from_dict(Params, {"shock": {"up": 0.25}}, "m") == Params(Shock(0.25))
    assert [i.name for i in describe(Params)] == ["shock.up", "factor"]
    with pytest.raises(ValueError, match="unknown parameter.*shock.down"):
        from_dict(Params, {"shock": {"down": 0.1}}, "m")
    with pytest.raises(ValueError, match="m parameters shock: expected an object"):
        from_dict(Params, {"shock": 0.3}, "m")
    check = ParamCheck("m")
    check_ranges(from_dict(Params, {"shock": {"up": 2.0}}, "m"), check)
    assert check.problems == ["shock.up must be in [0, 1] (got 2)"]
