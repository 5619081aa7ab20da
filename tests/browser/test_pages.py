"""What only a browser shows: the pages load cleanly, an edit reaches every page, a bad upload is
reported row by row while the book stays.  Run with ``pytest --headless``."""
import pytest
from dash.testing.wait import until
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from dashboard import ids

pytestmark = pytest.mark.browser

HEATMAP_CORNER = (f"const g = document.querySelector('#{ids.HEATMAP} .js-plotly-plot');"
                  "return g && g._fullData && g._fullData.length ? g._fullData[0].z[0][0] : null;")


def open_page(dash_duo, path: str, ready: str):
    """Navigate with the navbar (client-side, stores kept) and wait for ``ready``."""
    dash_duo.find_element(f'a.nav-link[href="{path}"]').click()
    dash_duo.wait_for_element(ready)


def grid_cell(dash_duo, row_id: str, column: str):
    return dash_duo.find_element(f'#{ids.BOOK_GRID} .ag-center-cols-container [row-id="{row_id}"] [col-id="{column}"]')


def type_into_cell(dash_duo, row_id: str, column: str, text: str):
    ActionChains(dash_duo.driver).double_click(grid_cell(dash_duo, row_id, column)).perform()
    editor = dash_duo.find_element(f"#{ids.BOOK_GRID} .ag-cell-inline-editing input")
    editor.send_keys(Keys.CONTROL, "a")
    editor.send_keys(text, Keys.ENTER)


def book_rows(dash_duo) -> int:
    """Rows in the book grid (AG Grid renders only the visible ones into the DOM)."""
    return dash_duo.driver.execute_script(
        f"const api = dash_ag_grid.getApi('{ids.BOOK_GRID}'); return api ? api.getDisplayedRowCount() : 0;")


def wait_for_book(dash_duo, rows: int):
    dash_duo.wait_for_element(f'#{ids.BOOK_GRID} [row-id="1"]', timeout=15)
    until(lambda: book_rows(dash_duo) == rows, timeout=10)


def heatmap_corner(dash_duo):
    return dash_duo.driver.execute_script(HEATMAP_CORNER)


def test_every_page_loads_without_console_errors(dash_duo, dashboard_app):
    dash_duo.start_server(dashboard_app)
    wait_for_book(dash_duo, 200)
    dash_duo.wait_for_contains_text(f"#{ids.CONTEXT_STRIP}", "200 positions")
    open_page(dash_duo, "/greeks", "#card-delta_usd")
    dash_duo.wait_for_element(f"#{ids.GREEKS_VS_SPOT} .js-plotly-plot")
    open_page(dash_duo, "/stress", f"#{ids.HEATMAP} .js-plotly-plot")
    dash_duo.wait_for_element(f"#{ids.PAYOFF} .js-plotly-plot")
    dash_duo.wait_for_contains_text(f"#{ids.ATTRIBUTION_TITLE}", "Worst cell")
    assert dash_duo.get_logs() == []


def test_quantity_edit_reaches_greeks_and_heatmap_and_bad_edit_is_refused(dash_duo, dashboard_app):
    dash_duo.start_server(dashboard_app)
    dash_duo.driver.get(dash_duo.server_url + "/stress")
    dash_duo.wait_for_element(f"#{ids.HEATMAP} .js-plotly-plot")
    until(lambda: heatmap_corner(dash_duo) is not None, timeout=10)
    corner = heatmap_corner(dash_duo)
    open_page(dash_duo, "/greeks", "#card-delta_usd")
    delta = dash_duo.find_element("#card-delta_usd").text

    open_page(dash_duo, "/", f'#{ids.BOOK_GRID} [row-id="1"]')
    type_into_cell(dash_duo, "1", "quantity", "100")
    dash_duo.wait_for_contains_text(f"#{ids.BOOK_MESSAGE}", "1 edit(s) applied")

    open_page(dash_duo, "/greeks", "#card-delta_usd")
    until(lambda: dash_duo.find_element("#card-delta_usd").text not in ("", delta), timeout=10)
    open_page(dash_duo, "/stress", f"#{ids.HEATMAP} .js-plotly-plot")
    until(lambda: heatmap_corner(dash_duo) not in (None, corner), timeout=10)

    open_page(dash_duo, "/", f'#{ids.BOOK_GRID} [row-id="2"]')
    type_into_cell(dash_duo, "2", "quantity", "lots")
    dash_duo.wait_for_contains_text(f"#{ids.BOOK_MESSAGE}",
                                    "row 2 (ETH-4DEC26-3800-C), quantity: 'lots' is not a number")
    # The refused cell is back to its last good value.
    until(lambda: grid_cell(dash_duo, "2", "quantity").text == "9.9", timeout=10)
    assert dash_duo.get_logs() == []


def test_bad_csv_upload_lists_row_errors_and_keeps_the_book(dash_duo, dashboard_app, tmp_path):
    bad = tmp_path / "bad_book.csv"
    bad.write_text("instrument,quantity,entry_price\n"
                   "BTC-PERPETUAL,1,95000\n"
                   "BTC-PERPETUAL,one,95000\n"
                   "DOGE-PERPETUAL,5,\n")
    dash_duo.start_server(dashboard_app)
    wait_for_book(dash_duo, 200)
    dash_duo.find_element(f"#{ids.UPLOAD} input[type=file]").send_keys(str(bad))

    dash_duo.wait_for_contains_text(".upload-report", "2 problem(s), 1 valid row(s)")
    report = dash_duo.find_element(".upload-report").text
    assert "'one' is not a number" in report and "no market data for DOGE" in report
    rows = [r.text for r in dash_duo.find_elements(".upload-report tbody tr")]
    # Rows are data rows, with their line in the file (the header is line 1).
    assert rows[0].startswith("row 2 (line 3 of the file) quantity")
    assert rows[1].startswith("row 3 (line 4 of the file)")
    assert "Load the 1 valid row" in dash_duo.find_element(f"#{ids.UPLOAD_ACCEPT}").text

    # The previous book is intact: same size in the grid and in the header.
    assert book_rows(dash_duo) == 200
    assert "200 positions" in dash_duo.find_element(f"#{ids.CONTEXT_STRIP}").text
    assert dash_duo.get_logs() == []
