"""What only a browser shows on the Liquidation and Exchange pages: a spot shock typed into the
slider reaches the queue, and a replay run draws its chart.  Run with ``pytest --headless``."""
import pytest
from dash.testing.wait import until
from selenium.webdriver.common.keys import Keys

from dashboard import ids

pytestmark = pytest.mark.browser

FIGURE_TITLE = ("const g = document.querySelector('#%s .js-plotly-plot');"
                "return g && g.layout && g.layout.title ? g.layout.title.text : null;")


def liquidatable(dash_duo) -> int | None:
    text = dash_duo.find_element(f"#{ids.EX_LIQUIDATABLE}").text.replace(",", "")
    return int(text) if text.isdigit() else None


def test_a_bigger_spot_shock_grows_the_exchange_queue(dash_duo, dashboard_app):
    dash_duo.start_server(dashboard_app)
    dash_duo.driver.get(dash_duo.server_url + "/exchange")
    dash_duo.wait_for_element(f"#{ids.EX_LIQUIDATABLE}", timeout=20)
    until(lambda: liquidatable(dash_duo) is not None, timeout=10)
    before = liquidatable(dash_duo)

    shock = dash_duo.find_element(f"#{ids.EX_SHOCK} input")  # the slider's own number box
    shock.send_keys(Keys.CONTROL, "a")
    shock.send_keys("-40", Keys.TAB)
    dash_duo.wait_for_contains_text(f"#{ids.EX_SUMMARY}", "spot −40 %", timeout=20)
    assert liquidatable(dash_duo) > before
    assert dash_duo.get_logs() == []


def test_a_replay_run_draws_its_chart(dash_duo, dashboard_app):
    dash_duo.start_server(dashboard_app)
    dash_duo.driver.get(dash_duo.server_url + "/liquidation")
    dash_duo.wait_for_element(f"#{ids.LIQ_STATUS} .liq-card", timeout=20)
    dash_duo.find_element(f'#{ids.LIQ_PATH} input[value="crash_24h:mirrored"]').click()
    dash_duo.find_element(f"#{ids.LIQ_REPLAY_RUN}").click()
    until(lambda: (dash_duo.driver.execute_script(FIGURE_TITLE % ids.LIQ_REPLAY) or "").startswith("Replay:"),
          timeout=20)
    dash_duo.wait_for_element(f"#{ids.LIQ_REPLAY_GRID} .ag-center-cols-container .ag-row", timeout=10)
    assert dash_duo.get_logs() == []
