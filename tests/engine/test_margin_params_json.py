"""Margin parameters survive the JSON round trip the dashboard store uses, and bad values in
that JSON are refused with a message naming the field."""
import json

import pytest

from engine.margin import MODELS, default_params, params_from_dict, params_to_dict


@pytest.mark.parametrize("model", list(MODELS))
def test_round_trip(model):
    params = default_params(model)
    text = json.dumps(params_to_dict(params))
    assert params_from_dict(model, json.loads(text)) == params


@pytest.mark.parametrize("model, data, words", [
    ("tims", {"points": 3}, "points"),
    ("span", {"price_scan_range": -0.1}, "price_scan_range"),
    ("standard", {"no_such": 1.0}, "no_such"),
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
