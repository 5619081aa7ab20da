"""What only a browser shows on the Market page: a saved Deribit snapshot dropped on the upload
reaches the store and the vol surface is drawn from it.  Run with ``pytest --headless``."""
from pathlib import Path

import pytest
from dash.testing.wait import until

from dashboard import ids

pytestmark = pytest.mark.browser

FIXTURE = Path(__file__).parent.parent / "engine" / "fixtures" / "deribit" / "book_summary_option.json"
FIGURE = ("const g = document.querySelector('#%s .js-plotly-plot');"
          "return g && g.data ? [g.layout.title.text, g.data.length, g.data[0].type] : null;")


def test_a_deribit_snapshot_upload_draws_the_surface(dash_duo, dashboard_app):
    dash_duo.start_server(dashboard_app)
    dash_duo.driver.get(dash_duo.server_url + "/market")
    dash_duo.wait_for_element(f"#{ids.MKT_SLICE_GRID} .ag-center-cols-container .ag-row", timeout=20)
    dash_duo.find_element(f"#{ids.MKT_UPLOAD} input[type=file]").send_keys(str(FIXTURE))
    dash_duo.wait_for_contains_text(f"#{ids.MKT_MESSAGE}", "book_summary_option.json: BTC, XRP", timeout=20)
    until(lambda: "XRP" in dash_duo.find_element(f"#{ids.MKT_SLICE_GRID}").text, timeout=10)

    smile = dash_duo.driver.execute_script(FIGURE % ids.MKT_SMILE_FIG)
    assert smile[0] == "BTC smiles: fitted vs marks" and smile[1] >= 2  # the curve and the marks
    until(lambda: (dash_duo.driver.execute_script(FIGURE % ids.MKT_SURFACE_FIG) or [None])[0]
          == "BTC implied vol surface", timeout=10)
    assert dash_duo.driver.execute_script(FIGURE % ids.MKT_SURFACE_FIG)[2] == "surface"
    assert dash_duo.get_logs() == []
