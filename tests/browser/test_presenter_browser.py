"""Presenter mode in a real browser: the URL switches it on, how-to text and settings go, and the
Stress heatmap's top is above the fold on a projector-sized window.  Run with ``pytest --headless``."""
import pytest

from dashboard import ids

pytestmark = pytest.mark.browser

HEATMAP_TOP = f"return document.querySelector('#{ids.HEATMAP} .js-plotly-plot').getBoundingClientRect().top;"
VISIBLE_HOW_TO = ("return [...document.querySelectorAll('.how-to')]"
                  ".filter(e => e.offsetParent !== null).length;")


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_presenter_mode_puts_the_heatmap_above_the_fold(dash_duo, dashboard_app, size):
    dash_duo.start_server(dashboard_app)
    dash_duo.driver.set_window_size(*size)
    dash_duo.driver.get(dash_duo.server_url + "/stress?present=1&theme=dark")
    dash_duo.wait_for_element(f"#{ids.HEATMAP} .js-plotly-plot", timeout=20)
    dash_duo.wait_for_class_to_equal(f"#{ids.PRESENTER_BAR}", "presenter-bar on dark")
    inner_height = dash_duo.driver.execute_script("return window.innerHeight;")
    assert dash_duo.driver.execute_script(HEATMAP_TOP) < inner_height * 0.5
    assert dash_duo.driver.execute_script(VISIBLE_HOW_TO) == 0
    assert "theme-dark" in dash_duo.driver.execute_script("return document.body.className;")
    # The toggle turns it off again: the how-to text is back.
    dash_duo.find_element(f"#{ids.PRESENT_TOGGLE}").click()
    dash_duo.wait_for_class_to_equal(f"#{ids.PRESENTER_BAR}", "presenter-bar dark")
    assert dash_duo.driver.execute_script(VISIBLE_HOW_TO) > 0
    assert dash_duo.get_logs() == []
