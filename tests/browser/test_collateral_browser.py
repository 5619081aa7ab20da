"""The Margin page's collateral editor in a browser: adding a BTC row and typing its amount moves
the account-health strip; a bad amount is refused naming the row.  Run with ``pytest --headless``."""
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from dashboard import ids
from engine.margin.account import account_health
from engine.samples import demo_book, demo_market

pytestmark = pytest.mark.browser


def type_amount(dash_duo, text: str):
    cell = dash_duo.find_element(f'#{ids.COLLATERAL_GRID} [row-id="0"] [col-id="amount"]')
    ActionChains(dash_duo.driver).double_click(cell).perform()
    editor = dash_duo.find_element(f"#{ids.COLLATERAL_GRID} .ag-cell-inline-editing input")
    editor.send_keys(Keys.CONTROL, "a")
    editor.send_keys(text, Keys.ENTER)


def test_a_collateral_row_moves_the_strip(dash_duo, dashboard_app):
    dash_duo.start_server(dashboard_app)
    dash_duo.find_element('a.nav-link[href="/margin"]').click()
    dash_duo.wait_for_contains_text(f"#{ids.HEALTH_STRIP}", "Risk-based (deribit)", timeout=20)
    # the editor is live once its denomination shows the stored one
    dash_duo.wait_for_element(f'#{ids.COLLATERAL_DENOMINATION} input[value="USD"]:checked', timeout=20)
    dash_duo.find_element(f"#{ids.COLLATERAL_ADD}").click()
    dash_duo.wait_for_element(f'#{ids.COLLATERAL_GRID} [row-id="0"]', timeout=20)

    # 2,000,000 USD cash plus 10 BTC at the market's spot, the default book marked to market
    account = {"cash": 2_000_000.0, "collateral": [{"asset": "BTC", "amount": 10.0, "underlying": "BTC"}]}
    equity = account_health(demo_book(), demo_market(), account).equity
    type_amount(dash_duo, "10")
    dash_duo.wait_for_contains_text(f"#{ids.HEALTH_EQUITY}", f"${equity:,.0f}", timeout=20)
    dash_duo.wait_for_contains_text(f"#{ids.COLLATERAL_MESSAGE}", "1 collateral edit(s) applied")

    type_amount(dash_duo, "lots")
    dash_duo.wait_for_contains_text(f"#{ids.COLLATERAL_MESSAGE}", "collateral row 1: amount must be a number")
    assert dash_duo.find_element(f"#{ids.HEALTH_EQUITY}").text == f"${equity:,.0f}"
