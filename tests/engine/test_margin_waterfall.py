"""The IM waterfall the engine returns with every result: steps that add up to the IM, floors
counted only above what they floor, multipliers by what they add."""
import pytest

from engine.margin import compute, compute_all
from engine.margin.span import SpanParams
from engine.margin.tims import TimsParams
from engine.margin.waterfall import OTHER
from engine.samples import DEMO_BOOKS, demo_book, demo_market

MARKET = demo_market()


@pytest.mark.parametrize("book", list(DEMO_BOOKS))
def test_steps_add_up_to_the_im_without_a_remainder(book):
    for model, result in compute_all(demo_book(book), MARKET).items():
        assert sum(v for _, v in result.waterfall) == pytest.approx(result.initial, rel=1e-9, abs=1e-6), model
        assert all(label != OTHER for label, _ in result.waterfall), model


def test_multiplier_step_is_im_minus_mm():
    """SPAN and TIMS: MM is the requirement and IM = m × MM, so the multiplier adds (m − 1)·MM."""
    book = demo_book("naked_short_strangle")
    for model, params in (("span", SpanParams(initial_multiplier=1.3)), ("tims", TimsParams(initial_multiplier=1.5))):
        r = compute(book, MARKET, model, params)
        steps = dict(r.waterfall)
        step = steps[f"initial multiplier ×{params.initial_multiplier:g}"]
        assert step == pytest.approx(r.initial - r.maintenance)
        assert step == pytest.approx((params.initial_multiplier - 1.0) * r.maintenance)


def test_a_binding_minimum_counts_only_above_the_scan():
    """SPAN with a short option minimum of 50 % of spot per contract binds a 1-lot short strangle
    (two options: 2 × 0.5 × spot, far above its scan): the minimum's step is the excess alone."""
    book = demo_book("naked_short_strangle")
    r = compute(book, MARKET, "span", SpanParams(short_option_minimum=0.5, initial_multiplier=1.0))
    c = r.components
    assert c["short_option_minimum"] > c["scanning_risk"] + c["calendar_spread_charge"]
    steps = dict(r.waterfall)
    assert steps["short option minimum (above the scan)"] == pytest.approx(
        c["short_option_minimum"] - c["scanning_risk"] - c["calendar_spread_charge"])
    assert r.initial == pytest.approx(c["short_option_minimum"])


@pytest.mark.parametrize("model", ["standard", "greeks_based"])
def test_additive_models_step_through_their_components(model):
    r = compute(demo_book(), MARKET, model)
    assert [v for _, v in r.waterfall] == pytest.approx(list(r.components.values()))
