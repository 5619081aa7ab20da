"""What only a browser shows on the Risk page: the VaR table, the crash replay and the liquidation
boundary draw, and choosing another method redraws the histogram.  Run with ``pytest --headless``."""
import pytest
from dash.testing.wait import until

from dashboard import ids

pytestmark = pytest.mark.browser

FIGURE_TITLE = ("const g = document.querySelector('#%s .js-plotly-plot');"
                "return g && g.layout && g.layout.title ? g.layout.title.text : null;")


def title(dash_duo, graph_id) -> str:
    return dash_duo.driver.execute_script(FIGURE_TITLE % graph_id) or ""


def test_risk_page_draws_and_follows_the_method(dash_duo, dashboard_app):
    dash_duo.start_server(dashboard_app)
    dash_duo.driver.get(dash_duo.server_url + "/risk")
    until(lambda: title(dash_duo, ids.RISK_TABLE).startswith("VaR and expected shortfall"), timeout=60)
    until(lambda: title(dash_duo, ids.RISK_HISTOGRAM).startswith("Monte Carlo"), timeout=30)
    until(lambda: "Black Thursday" in title(dash_duo, ids.RISK_REPLAY), timeout=60)
    until(lambda: title(dash_duo, ids.RISK_BOUNDARY).startswith("Liquidation boundary"), timeout=90)
    dash_duo.select_dcc_dropdown(f"#{ids.RISK_METHOD}", value="Parametric delta-normal")
    until(lambda: title(dash_duo, ids.RISK_HISTOGRAM).startswith("Parametric delta-normal"), timeout=30)
    dash_duo.wait_for_element(f"#{ids.RISK_CORR_GRID} .ag-center-cols-container .ag-row", timeout=10)
    assert dash_duo.get_logs() == []
