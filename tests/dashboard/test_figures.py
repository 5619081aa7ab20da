"""Figures are pure functions of an Analysis: check them against the engine's numbers."""
import numpy as np
import pytest

from dashboard import figures
from engine import Settings, analyze
from engine.samples import demo_book, demo_market


@pytest.fixture(scope="module")
def desk():
    return analyze(demo_book("desk_book"), demo_market())


@pytest.fixture(scope="module")
def strangle():
    """Short strangle on a coarse grid with odd horizons: curved in both spot and vol."""
    return analyze(demo_book("naked_short_strangle"), demo_market(),
                   Settings(spot_range=0.3, spot_steps=13, vol_range=0.2, vol_steps=5, horizons_days=(0, 3, 10)))


def axis_titles(fig):
    layout = fig.to_plotly_json()["layout"]
    return {k: v.get("title", {}).get("text") for k, v in layout.items()
            if k.startswith(("xaxis", "yaxis")) and isinstance(v, dict)}


@pytest.mark.parametrize("horizon_index", [0, 1, 2])
def test_heatmap_is_the_cube_slice_in_display_units(strangle, horizon_index):
    days = strangle.stress_result.grid.horizons_days[horizon_index]
    fig = figures.stress_heatmap(strangle, days)
    heat = fig.data[0]
    assert heat.type == "heatmap"
    np.testing.assert_array_equal(np.asarray(heat.z), strangle.stress_result.pnl[:, :, horizon_index].T)
    np.testing.assert_allclose(heat.x, strangle.stress_result.grid.spot_shocks * 100)
    np.testing.assert_allclose(heat.y, strangle.stress_result.grid.vol_shocks * 100)
    assert heat.zmid == 0  # diverging around zero P&L
    assert f"after {days:g} days" in fig.layout.title.text


def test_heatmap_picks_the_nearest_horizon(strangle):
    np.testing.assert_array_equal(np.asarray(figures.stress_heatmap(strangle, 9.0).data[0].z),
                                  strangle.stress_result.pnl[:, :, 2].T)


def test_heatmap_marks_the_worst_cell_and_today(strangle):
    fig = figures.stress_heatmap(strangle, 0)
    z = strangle.stress_result.pnl[:, :, 0]
    s, v = np.unravel_index(z.argmin(), z.shape)
    worst = next(t for t in fig.data if t.name == "worst cell")
    assert (worst.x[0], worst.y[0]) == pytest.approx((strangle.stress_result.grid.spot_shocks[s] * 100,
                                                      strangle.stress_result.grid.vol_shocks[v] * 100))
    today = next(t for t in fig.data if t.name == "today")
    assert (today.x[0], today.y[0]) == (0, 0)


def test_selection_box_surrounds_the_nearest_cell(strangle):
    fig = figures.stress_heatmap(strangle, 0, selected=(-9.0, 11.0))  # nearest cell: −10 %, +10 pts
    (box,) = fig.layout.shapes
    assert (box.x0 + box.x1) / 2 == pytest.approx(-10.0)
    assert (box.y0 + box.y1) / 2 == pytest.approx(10.0)
    assert box.x1 - box.x0 == pytest.approx(5.0)  # one spot step of the 13-step ±30 % grid


def test_surface_is_the_same_slice(strangle):
    fig = figures.stress_surface(strangle, 10)
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), strangle.stress_result.pnl[:, :, 2].T)
    scene = fig.layout.scene
    assert "%" in scene.xaxis.title.text and "vol points" in scene.yaxis.title.text
    assert "USD" in scene.zaxis.title.text


def test_pnl_vs_spot_has_every_horizon_and_expiry_with_the_engine_breakevens(desk):
    fig = figures.pnl_vs_spot(desk)
    lines = [t for t in fig.data if t.mode == "lines"]
    labels = list(dict.fromkeys(desk.payoff["horizon"]))
    assert [t.name for t in lines] == labels
    assert labels[-1].startswith("expiry") and lines[-1].line.dash == "dash"
    for line, label in zip(lines, labels, strict=True):
        curve = desk.payoff[desk.payoff["horizon"] == label]
        np.testing.assert_allclose(line.y, curve["pnl"])
    markers = {t.legendgroup: t for t in fig.data if t.mode == "markers"}
    for label, shocks in desk.breakevens.items():
        if shocks:
            np.testing.assert_allclose(markers[label].x, np.asarray(shocks) * 100)
            np.testing.assert_array_equal(markers[label].y, 0)
    assert any(len(s) for s in desk.breakevens.values())


def test_bars_by_underlying_and_expiry_are_the_engine_aggregates(desk):
    fig = figures.by_underlying(desk)
    btc_delta = next(t for t in fig.data if t.name == "BTC" and t.xaxis == "x")
    expected = desk.by_underlying.set_index("underlying").loc["BTC", "delta_usd"]
    assert btc_delta.y[0] == pytest.approx(expected)
    assert btc_delta.customdata[0] == "BTC"  # what a click drills down on
    fig = figures.by_expiry(desk)
    eth_theta = next(t for t in fig.data if t.name == "ETH" and t.xaxis == "x4")
    eth = desk.by_expiry[desk.by_expiry["underlying"] == "ETH"]
    np.testing.assert_allclose(eth_theta.y, eth["theta_per_day"])
    assert list(eth_theta.x) == list(eth["expiry"])


def test_strike_profile_sums_options_by_strike(desk):
    fig = figures.strike_profile(desk, "ETH")
    eth = desk.by_strike[desk.by_strike["underlying"] == "ETH"]
    np.testing.assert_allclose(fig.data[0].x, eth["strike"])
    np.testing.assert_allclose(fig.data[0].y, eth["gamma_usd_1pct"])
    np.testing.assert_allclose(fig.data[1].y, eth["vega_per_vol_pt"])


def test_strike_profile_says_when_there_are_no_options():
    only_perp = analyze(demo_book("delta_hedged_long_straddle"), demo_market())
    fig = figures.strike_profile(only_perp, "ETH")
    assert any("no options on ETH" in a.text for a in fig.layout.annotations)


def test_greeks_vs_spot_are_the_profile(desk):
    fig = figures.greeks_vs_spot(desk)
    columns = ("delta_usd", "gamma_usd_1pct", "vega_per_vol_pt", "theta_per_day")
    for trace, column in zip(fig.data, columns, strict=True):
        np.testing.assert_allclose(trace.y, desk.profile[column])
        np.testing.assert_allclose(trace.x, desk.profile["spot_shock"] * 100)


@pytest.mark.parametrize("make", [
    lambda a: figures.stress_heatmap(a, 0),
    figures.pnl_vs_spot,
    figures.by_underlying,
    figures.by_expiry,
    lambda a: figures.strike_profile(a, "BTC"),
    figures.greeks_vs_spot,
])
def test_every_axis_carries_its_unit(desk, make):
    fig = make(desk)
    titles = {k: t for k, t in axis_titles(fig).items() if t}
    units = ("USD", "%", "vol points", "Underlying", "Expiry")
    assert titles and all(any(u in t for u in units) for t in titles.values()), titles
    subplot_titles = [a.text for a in fig.layout.annotations if "(" in (a.text or "")]
    for text in subplot_titles:  # panel titles name their unit, e.g. "Vega (USD per vol point)"
        assert "USD" in text
