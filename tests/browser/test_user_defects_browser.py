"""Defects of issue 7 that only a browser shows: ticks left behind by a book replacement, the
new row out of sight, Enter in a slider's number box, the colour of a table cell, the fold.
Run with ``pytest --headless``."""
import time

import pytest
from dash.testing.wait import until

from dashboard import ids

pytestmark = pytest.mark.browser


def grid_api(dash_duo, script: str):
    return dash_duo.driver.execute_script(f"const api = dash_ag_grid.getApi('{ids.BOOK_GRID}'); {script}")


def displayed_rows(dash_duo) -> int:
    return grid_api(dash_duo, "return api ? api.getDisplayedRowCount() : 0;")


def test_ticks_do_not_survive_a_book_replacement(dash_duo, dashboard_app):
    dash_duo.start_server(dashboard_app)
    dash_duo.wait_for_element(f'#{ids.BOOK_GRID} [row-id="3"]', timeout=20)
    grid_api(dash_duo, "['2', '3'].forEach(id => api.getRowNode(id).setSelected(true));")
    until(lambda: grid_api(dash_duo, "return api.getSelectedRows().length;") == 2, timeout=5)
    dash_duo.select_dcc_dropdown(f"#{ids.DEMO_PICKER}", index=6)  # the calendar spread
    dash_duo.find_element(f"#{ids.DEMO_LOAD}").click()
    dash_duo.wait_for_contains_text(f"#{ids.BOOK_MESSAGE}", "Calendar", timeout=10)
    until(lambda: displayed_rows(dash_duo) < 20, timeout=10)
    rows = displayed_rows(dash_duo)
    until(lambda: grid_api(dash_duo, "return api.getSelectedRows().length;") == 0, timeout=5)
    dash_duo.find_element(f"#{ids.DELETE_BUTTON}").click()
    dash_duo.wait_for_contains_text(f"#{ids.BOOK_MESSAGE}", "select the rows to delete first", timeout=10)
    assert displayed_rows(dash_duo) == rows


def test_new_row_is_scrolled_to_and_the_inputs_cleared(dash_duo, dashboard_app):
    dash_duo.start_server(dashboard_app)
    dash_duo.wait_for_element(f'#{ids.BOOK_GRID} [row-id="1"]', timeout=20)
    dash_duo.find_element(f"#{ids.ADD_INSTRUMENT}").send_keys("BTC-PERPETUAL")
    dash_duo.find_element(f"#{ids.ADD_QUANTITY}").send_keys("3")
    dash_duo.find_element(f"#{ids.ADD_BUTTON}").click()
    dash_duo.wait_for_contains_text(f"#{ids.BOOK_MESSAGE}", "added BTC-PERPETUAL", timeout=10)
    # AG Grid renders only the rows in view: row 201 in the DOM means the grid scrolled to it.
    dash_duo.wait_for_element(f'#{ids.BOOK_GRID} .ag-center-cols-container [row-id="201"]', timeout=10)
    until(lambda: dash_duo.find_element(f"#{ids.ADD_INSTRUMENT}").get_attribute("value") == "", timeout=5)
    assert dash_duo.find_element(f"#{ids.ADD_QUANTITY}").get_attribute("value") == ""
    dash_duo.wait_for_contains_text(f"#{ids.CONTEXT_STRIP}", "(edited)", timeout=10)
    # After a reload the picker names the book in the store.
    dash_duo.select_dcc_dropdown(f"#{ids.DEMO_PICKER}", index=3)
    dash_duo.find_element(f"#{ids.DEMO_LOAD}").click()
    dash_duo.wait_for_contains_text(f"#{ids.BOOK_MESSAGE}", "loaded the demo book", timeout=10)
    label = dash_duo.find_element(f"#{ids.DEMO_PICKER}").text
    dash_duo.driver.refresh()
    dash_duo.wait_for_element(f'#{ids.BOOK_GRID} [row-id="1"]', timeout=20)
    until(lambda: dash_duo.find_element(f"#{ids.DEMO_PICKER}").text == label, timeout=10)


def test_enter_in_a_slider_number_box_applies_it(dash_duo, dashboard_app):
    from selenium.webdriver.common.keys import Keys

    dash_duo.driver.set_window_size(1920, 1080)  # Dash hides a slider's box when the slider is narrow
    dash_duo.start_server(dashboard_app)
    dash_duo.driver.get(dash_duo.server_url + "/stress")
    dash_duo.wait_for_element(f"#{ids.HEATMAP} .js-plotly-plot", timeout=20)
    box = dash_duo.find_element(f"#{ids.SPOT_RANGE} input.dash-range-slider-input")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("20", Keys.ENTER)  # no Tab, no click elsewhere
    dash_duo.wait_for_contains_text(f"#{ids.SETTINGS_MESSAGE}", "stress grid updated", timeout=15)
    until(lambda: dash_duo.driver.execute_script(
        f"const g = document.querySelector('#{ids.HEATMAP} .js-plotly-plot');"
        "return g && g._fullData.length ? Math.max(...g._fullData[0].x) : null;") == 20, timeout=15)


def set_viewport(dash_duo, width: int, height: int):
    """Size the window so that the page itself (not the browser's frame) is width × height."""
    dash_duo.driver.set_window_size(width, height)
    inner = dash_duo.driver.execute_script("return [window.innerWidth, window.innerHeight];")
    dash_duo.driver.set_window_size(2 * width - inner[0], 2 * height - inner[1])


def test_stress_heatmap_is_above_the_fold_at_1280_by_720(dash_duo, dashboard_app):
    dash_duo.start_server(dashboard_app)
    set_viewport(dash_duo, 1280, 720)
    dash_duo.driver.get(dash_duo.server_url + "/stress")
    dash_duo.wait_for_element(f"#{ids.HEATMAP} .js-plotly-plot .heatmaplayer", timeout=20)
    top, bottom, height = dash_duo.driver.execute_script(
        f"const r = document.querySelector('#{ids.HEATMAP} .js-plotly-plot .nsewdrag').getBoundingClientRect();"
        "return [r.top, r.bottom, window.innerHeight];")
    assert height == 720
    visible = (min(bottom, height) - top) / (bottom - top)
    print(f"heatmap cells from y={top:.0f} to {bottom:.0f}: {visible:.0%} visible at 1280×720")
    assert top < height and visible >= 0.6


def test_margin_table_ratio_cells_carry_their_level_colour(dash_duo, dashboard_app):
    dash_duo.start_server(dashboard_app)
    dash_duo.driver.get(dash_duo.server_url + "/margin")
    cell = f'#{ids.MARGIN_TABLE} [row-id="%s"] [col-id="margin_ratio"]'
    dash_duo.wait_for_element(cell % "standard", timeout=20)
    # Standard asks more MM than the equity (red, liquidatable); the selected risk-based model's
    # cell carries the level of its own ratio, computed here from the engine.
    from dashboard.stores import account
    from dashboard.stores import session as state
    from engine.margin.account import health_status

    book, market, _ = state.default_stores()
    h = account.health(book, market, account.default_account())
    until(lambda: "level-liquidatable" in dash_duo.find_element(cell % "standard").get_attribute("class"), timeout=10)
    level = health_status(h.equity, h.maintenance)
    assert f"level-{level}" in dash_duo.find_element(cell % "risk_based").get_attribute("class")
    colour = dash_duo.driver.execute_script(
        f"return getComputedStyle(document.querySelector('{cell % 'standard'}')).color;")
    assert colour == "rgb(201, 42, 42)"


def test_steps_beyond_the_limit_say_it_and_the_box_goes_back(dash_duo, dashboard_app):
    from selenium.webdriver.common.keys import Keys

    dash_duo.start_server(dashboard_app)
    dash_duo.driver.get(dash_duo.server_url + "/stress")
    dash_duo.wait_for_element(f"#{ids.HEATMAP} .js-plotly-plot", timeout=20)
    box = dash_duo.find_element(f"#{ids.SPOT_STEPS}")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("500", Keys.ENTER)
    dash_duo.wait_for_contains_text(f"#{ids.SETTINGS_MESSAGE}", "spot steps: at most 201 (got 500)", timeout=15)
    until(lambda: dash_duo.find_element(f"#{ids.SPOT_STEPS}").get_attribute("value") == "41", timeout=10)
    time.sleep(1.5)  # the reset must not clear the message that explains it
    assert "at most 201" in dash_duo.find_element(f"#{ids.SETTINGS_MESSAGE}").text
    assert dash_duo.get_logs() == []


def test_refused_collateral_goes_back_in_its_box(dash_duo, dashboard_app):
    from selenium.webdriver.common.keys import Keys

    dash_duo.start_server(dashboard_app)
    dash_duo.driver.get(dash_duo.server_url + "/margin")
    until(lambda: dash_duo.find_element(f"#{ids.MARGIN_COLLATERAL}").get_attribute("value") == "2000000", timeout=20)
    box = dash_duo.find_element(f"#{ids.MARGIN_COLLATERAL}")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("lots", Keys.ENTER)
    dash_duo.wait_for_contains_text(f"#{ids.MARGIN_ACCOUNT_MESSAGE}", "collateral must be a number", timeout=15)
    until(lambda: dash_duo.find_element(f"#{ids.MARGIN_COLLATERAL}").get_attribute("value") == "2000000", timeout=10)
    time.sleep(1.5)  # the reset must not clear the message that explains it
    assert "collateral must be a number" in dash_duo.find_element(f"#{ids.MARGIN_ACCOUNT_MESSAGE}").text
    assert dash_duo.get_logs() == []
