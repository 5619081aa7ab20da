"""Margin page and account-health strip in a browser: a model change and a parameter edit reach the
side-by-side table and the strip, a bad parameter is refused on screen, and the strip follows the
account to another page.  Run with ``pytest --headless``."""
import pytest
from dash.testing.wait import until
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from dashboard import ids
from engine.margin import compute
from engine.margin.span import SpanParams
from engine.samples import demo_book, demo_market

pytestmark = pytest.mark.browser


def open_margin(dash_duo, app):
    dash_duo.start_server(app)
    dash_duo.find_element('a.nav-link[href="/margin"]').click()
    dash_duo.wait_for_element(f'#{ids.MARGIN_TABLE} [row-id="span"]', timeout=20)
    dash_duo.wait_for_contains_text(f"#{ids.HEALTH_STRIP}", "Risk-based (deribit)")


def table_cell(dash_duo, model: str, column: str):
    return dash_duo.find_element(f'#{ids.MARGIN_TABLE} [row-id="{model}"] [col-id="{column}"]')


def type_into_parameter(dash_duo, name: str, text: str):
    cell = dash_duo.find_element(f'#{ids.PARAMS_GRID} [row-id="{name}"] [col-id="value"]')
    ActionChains(dash_duo.driver).double_click(cell).perform()
    editor = dash_duo.find_element(f"#{ids.PARAMS_GRID} .ag-cell-inline-editing input")
    editor.send_keys(Keys.CONTROL, "a")
    editor.send_keys(text, Keys.ENTER)


def test_model_and_parameter_edits_reach_the_table_and_the_strip(dash_duo, dashboard_app):
    open_margin(dash_duo, dashboard_app)
    dash_duo.find_element(f'#{ids.MARGIN_MODEL} input[value="span"]').click()
    dash_duo.wait_for_contains_text(f"#{ids.HEALTH_STRIP}", "SPAN")
    dash_duo.wait_for_contains_text(f"#{ids.MARGIN_TABLE} .selected-model", "SPAN")
    dash_duo.wait_for_element(f'#{ids.PARAMS_GRID} [row-id="price_scan_range"]')

    wider = compute(demo_book(), demo_market(), "span", SpanParams(price_scan_range=0.2)).initial
    type_into_parameter(dash_duo, "price_scan_range", "0.2")
    dash_duo.wait_for_text_to_equal(f'#{ids.MARGIN_TABLE} [row-id="span"] [col-id="initial"]', f"{wider:,.0f}")
    dash_duo.wait_for_contains_text(f"#{ids.HEALTH_STRIP}", f"IM ${wider:,.0f}")
    dash_duo.wait_for_contains_text(f"#{ids.PARAMS_MESSAGE}", "price_scan_range = 0.2")

    type_into_parameter(dash_duo, "price_scan_range", "-1")
    dash_duo.wait_for_contains_text(f"#{ids.PARAMS_MESSAGE}", "price_scan_range must be in (0, 0.9]")
    assert table_cell(dash_duo, "span", "initial").text == f"{wider:,.0f}"
    dash_duo.wait_for_text_to_equal(f'#{ids.PARAMS_GRID} [row-id="price_scan_range"] [col-id="value"]', "0.2")
    assert dash_duo.get_logs() == []


def test_collateral_moves_the_gauge_and_the_strip_on_every_page(dash_duo, dashboard_app):
    open_margin(dash_duo, dashboard_app)
    dash_duo.wait_for_contains_text(f"#{ids.MARGIN_GAUGE}", "Margin ratio")
    box = dash_duo.find_element(f"#{ids.MARGIN_COLLATERAL}")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("500,000", Keys.ENTER)
    dash_duo.wait_for_contains_text(f"#{ids.MARGIN_ACCOUNT_MESSAGE}", "collateral set to $500,000")
    dash_duo.wait_for_contains_text(f"#{ids.HEALTH_STRIP}", "LIQUIDATABLE")
    dash_duo.wait_for_contains_text(f"#{ids.MARGIN_GAUGE}", "off the scale")
    assert dash_duo.find_element(f"#{ids.HEALTH_STRIP} .gauge-fill").get_attribute("class") == "gauge-fill liquidatable"

    dash_duo.find_element('a.nav-link[href="/greeks"]').click()
    dash_duo.wait_for_element("#card-delta_usd")
    dash_duo.wait_for_contains_text(f"#{ids.HEALTH_STRIP}", "LIQUIDATABLE")
    # Back on the Margin page the controls show the stored account, not their layout defaults.
    dash_duo.find_element('a.nav-link[href="/margin"]').click()
    until(lambda: dash_duo.find_element(f"#{ids.MARGIN_COLLATERAL}").get_attribute("value") == "500000", timeout=10)
    assert dash_duo.find_element(f'#{ids.MARGIN_MODEL} input[value="risk_based"]').is_selected()
    assert dash_duo.get_logs() == []
