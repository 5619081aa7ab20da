"""Presenter mode state: URL parameters, toggles, the fixed colour scale."""
import numpy as np
import pytest

from dashboard import figures, ids, presentation
from engine import analyze
from engine.samples import demo_book, demo_market


@pytest.fixture(scope="module")
def strangle():
    return analyze(demo_book("naked_short_strangle"), demo_market())


@pytest.fixture(scope="module")
def condor():
    return analyze(demo_book("short_iron_condor"), demo_market())


def test_url_parameters_set_presenter_mode_theme_and_scale():
    state = presentation.from_query("?present=1&theme=dark&scale=1,000,000", None)
    assert state == {"on": True, "dark": True, "pnl_scale": 1_000_000.0}
    assert presentation.from_query("?present=0", state)["on"] is False
    assert presentation.from_query("?foo=1", state) is None  # says nothing: leave the state alone
    assert presentation.from_query("?present=1&scale=lots", None)["pnl_scale"] is None  # bad scale ignored


@pytest.mark.parametrize("text", ["-5", "0", "nan", "inf", "1e13", "lots"])
def test_a_bad_scale_is_refused_naming_the_limit(text):
    with pytest.raises(ValueError, match="colour scale"):
        presentation.parse_scale(text)


def test_toggles_flip_and_a_bad_scale_keeps_the_one_in_force():
    s = presentation.default_presenter()
    s = presentation.toggled(ids.PRESENT_TOGGLE, s, None)
    s = presentation.toggled(ids.DARK_TOGGLE, s, None)
    s = presentation.toggled(ids.PNL_SCALE, s, "2e6")
    assert s == {"on": True, "dark": True, "pnl_scale": 2e6}
    assert presentation.toggled(ids.PNL_SCALE, s, "-1")["pnl_scale"] == 2e6
    assert presentation.fixed_scale(s) == 2e6
    assert presentation.fixed_scale(dict(s, on=False)) is None  # fixed only while presenting


def test_fixed_scale_gives_the_same_colour_to_the_same_pnl_on_two_books(strangle, condor):
    """Colour of a P&L = its position on [zmin, zmax]: with the scale fixed, equal P&L on two books
    sits at the same point of the colour bar; fitted, the bars differ."""
    fixed = [figures.stress_heatmap(a, 0, pnl_scale=1e5).data[0] for a in (strangle, condor)]
    assert [(t.zmin, t.zmax) for t in fixed] == [(-1e5, 1e5)] * 2
    fitted = [figures.stress_heatmap(a, 0).data[0] for a in (strangle, condor)]
    assert all(t.zmin is None and t.zmid == 0 for t in fitted)
    ranges = [np.ptp(np.asarray(t.z)) for t in fitted]
    assert ranges[0] != pytest.approx(ranges[1])
    surface = figures.stress_surface(strangle, 0, pnl_scale=1e5).data[0]
    assert (surface.cmin, surface.cmax) == (-1e5, 1e5)
