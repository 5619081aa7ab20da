"""The Exchange page's long computations as background jobs in a browser, default configuration
(embedded diskcache manager): a big population shows the progress bar and the Cancel button while
the job runs, then the figure the engine computes; Cancel stops a job and keeps the last figure.
Run with ``pytest --headless``."""
import time

import plotly.graph_objects as go
import psutil
import pytest
from dash.testing.wait import until
from selenium.webdriver.common.keys import Keys

from dashboard import background, ids
from dashboard.stores import exchange as ex
from dashboard.stores import session as state
from dashboard.stores.account import default_account

pytestmark = pytest.mark.browser

#: Large enough that the sweep and the cascade take seconds on this machine.
BIG = 60_000

#: Every value the progress bars and Cancel buttons take, recorded in the page as they change
#: (a poll could miss a step that lasts less than its period).
WATCH = """
window.seen = [];
for (const id of arguments) {
  const el = document.getElementById(id);
  const note = () => window.seen.push([id, el.getAttribute('value'), el.disabled]);
  new MutationObserver(note).observe(el, {attributes: true});
  note();
}
"""
SEEN = "return window.seen;"
#: The shell's job stores as the renderer holds them (memory stores are not in the page).
JOB_STATES = """
const state = window.store.getState();
return arguments[0].map(id => {
  let node = state.layout;
  for (const key of state.paths.strs[id]) { node = node[key]; }
  return node.props.data === undefined ? null : node.props.data;
});
"""
BARS = ("const g = document.querySelector('#%s .js-plotly-plot');"
        "return g && g._fullData && g._fullData.length ? Array.from(g._fullData[0].y) : null;")


@pytest.fixture
def default_background(monkeypatch):
    """The configuration a fresh install has: no background variable, no Celery broker."""
    monkeypatch.delenv("PMDASH_BACKGROUND", raising=False)
    monkeypatch.delenv("PMDASH_CELERY_BROKER", raising=False)
    assert background.enabled()


def _open(dash_duo, app):
    dash_duo.start_server(app)
    dash_duo.driver.get(dash_duo.server_url + "/exchange")
    dash_duo.wait_for_element(f"#{ids.EX_LIQUIDATABLE}", timeout=30)
    for chart in (ids.EX_SHOCK_CHART, ids.EX_CASCADE):
        until(lambda c=chart: dash_duo.driver.execute_script(BARS % c), timeout=60)
    until(lambda: _disabled(dash_duo, ids.EX_SWEEP_CANCEL) and _disabled(dash_duo, ids.EX_CASCADE_CANCEL), timeout=60)


def _population(dash_duo, n: int) -> None:
    box = dash_duo.find_element(f"#{ids.EX_ACCOUNTS}")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(str(n), Keys.ENTER)


def _expected_bars(n: int) -> list[int]:
    _, market, _ = state.default_stores()
    settings = dict(ex.DEFAULT_SETTINGS, n_accounts=n)
    return [int(v) for v in ex.sweep("generated", settings, None, market, default_account())["accounts"]]


def _jobs_left() -> list[psutil.Process]:
    """Job processes still running: the live children of the forkserver jobs start from."""
    from multiprocess.forkserver import _forkserver

    server = _forkserver._forkserver_pid
    if server is None:
        return []
    return [p for p in psutil.Process(server).children() if p.status() != psutil.STATUS_ZOMBIE]


def _results_left() -> list:
    """Figures jobs stored that no page fetched: what a cancelled job leaves had it not been stopped."""
    cache = background.manager().handle
    return [key for key in cache.iterkeys() if isinstance(cache.get(key), go.Figure)]


def _disabled(dash_duo, element_id: str) -> bool:
    return dash_duo.find_element(f"#{element_id}").get_attribute("disabled") == "true"


def test_a_big_sweep_runs_in_the_background_with_progress_then_draws(dash_duo, dashboard_app, default_background):
    _open(dash_duo, dashboard_app)
    until(lambda: _disabled(dash_duo, ids.EX_SWEEP_CANCEL), timeout=30)
    assert not dash_duo.find_element(f"#{ids.EX_SWEEP_PROGRESS}").is_displayed()  # no job: out of sight
    dash_duo.driver.execute_script(WATCH, ids.EX_SWEEP_PROGRESS, ids.EX_SWEEP_CANCEL, ids.EX_CASCADE_CANCEL)

    expected = _expected_bars(BIG)
    started = time.monotonic()
    _population(dash_duo, BIG)
    until(lambda: dash_duo.find_element(f"#{ids.EX_SWEEP_CANCEL}").is_displayed(), timeout=30)
    assert dash_duo.find_element(f"#{ids.EX_SWEEP_PROGRESS}").is_displayed()
    until(lambda: dash_duo.driver.execute_script(BARS % ids.EX_SHOCK_CHART) == expected, timeout=90)
    took = time.monotonic() - started
    until(lambda: _disabled(dash_duo, ids.EX_CASCADE_CANCEL), timeout=90)
    until(lambda: not dash_duo.find_element(f"#{ids.EX_SWEEP_PROGRESS}").is_displayed(), timeout=10)  # done

    seen = dash_duo.driver.execute_script(SEEN)
    bar = [value for i, value, _ in seen if i == ids.EX_SWEEP_PROGRESS]
    assert {"1", "2"} & set(bar), f"the bar never moved: {bar}"
    for cancel in (ids.EX_SWEEP_CANCEL, ids.EX_CASCADE_CANCEL):
        states = [disabled for i, _, disabled in seen if i == cancel]
        assert False in states and states[-1] is True, f"{cancel} was not offered while running: {states}"
    assert dash_duo.get_logs() == []
    print(f"sweep of {BIG:,} accounts drawn {took:.1f} s after the change")
    until(lambda: not _jobs_left(), timeout=10)


def test_leaving_the_page_stops_its_jobs_cleanly_and_coming_back_draws(dash_duo, dashboard_app, default_background):
    """Going to another page cancels the page's jobs; they report to the shell's job store, not
    to a progress bar that is gone (no console error); the page works when shown again."""
    _open(dash_duo, dashboard_app)
    _population(dash_duo, ex.MAX_ACCOUNTS)
    until(lambda: not _disabled(dash_duo, ids.EX_SWEEP_CANCEL), timeout=30)
    assert _jobs_left()
    dash_duo.driver.find_element("css selector", "a[href='/margin']").click()
    until(lambda: not _jobs_left(), timeout=3)  # stopped: a population this size takes longer
    jobs_ended = [None] * len(background.JOB_STORES)
    until(lambda: dash_duo.driver.execute_script(JOB_STATES, list(background.JOB_STORES)) == jobs_ended, timeout=90)
    assert dash_duo.get_logs() == []

    dash_duo.driver.find_element("css selector", "a[href='/exchange']").click()
    expected = _expected_bars(ex.MAX_ACCOUNTS)
    until(lambda: dash_duo.driver.execute_script(BARS % ids.EX_SHOCK_CHART) == expected, timeout=90)
    until(lambda: _disabled(dash_duo, ids.EX_SWEEP_CANCEL) and _disabled(dash_duo, ids.EX_CASCADE_CANCEL),
          timeout=90)
    assert dash_duo.get_logs() == []


def test_cancel_stops_the_job_and_keeps_the_last_figure(dash_duo, dashboard_app, default_background):
    _open(dash_duo, dashboard_app)
    before = dash_duo.driver.execute_script(BARS % ids.EX_SHOCK_CHART)
    assert before == _expected_bars(ex.DEFAULT_SETTINGS["n_accounts"])

    unfetched = set(_results_left())  # a job overtaken by a newer one may have left its result
    _population(dash_duo, ex.MAX_ACCOUNTS)
    for cancel in (ids.EX_SWEEP_CANCEL, ids.EX_CASCADE_CANCEL):
        until(lambda c=cancel: not _disabled(dash_duo, c), timeout=30)
        dash_duo.find_element(f"#{cancel}").click()
        until(lambda c=cancel: _disabled(dash_duo, c), timeout=10)
    until(lambda: not _jobs_left(), timeout=10)
    assert set(_results_left()) == unfetched, "a cancelled job ran to its end instead of being stopped"
    assert dash_duo.driver.execute_script(BARS % ids.EX_SHOCK_CHART) == before

    # The page goes on working: a new population is computed and drawn.
    _population(dash_duo, 2_000)
    expected = _expected_bars(2_000)
    until(lambda: dash_duo.driver.execute_script(BARS % ids.EX_SHOCK_CHART) == expected, timeout=60)
    until(lambda: _disabled(dash_duo, ids.EX_CASCADE_CANCEL), timeout=90)
    assert dash_duo.get_logs() == []
    until(lambda: not _jobs_left(), timeout=10)
