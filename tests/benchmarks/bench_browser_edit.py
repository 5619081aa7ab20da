"""Browser time of a book edit: from the Enter that commits a quantity cell on the 200-position
demo desk book to (a) that row's updated $delta in the grid and (b) the updated account-health
strip, measured inside headless Chromium (``performance.now()`` and MutationObservers), so the
server round trip, the engine run and Dash's rendering are all counted.

Target (issue #7): median < 200 ms for both on a 2-core machine.  Run with

    python -m pytest tests/benchmarks/bench_browser_edit.py --benchmark-only --headless \
        -p no:cacheprovider -o addopts=""

Each round types a new quantity (never a value seen before, so no cached analysis is reused).
The medians are printed and kept in the benchmark's ``extra_info``; they are recorded, not
asserted, unless ``PMDASH_BENCH_ENFORCE=1``.
"""
import os
import statistics

import pytest
from dash.testing.wait import until
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from dashboard import ids

pytestmark = pytest.mark.browser

TARGET_MS = 200.0
ROUNDS = 15
ROW, COLUMN, WATCHED = "1", "quantity", "delta_usd"

#: Arms the timers: the Enter that commits the edit starts the clock; observers stop one clock
#: when the row's $delta cell and one when the health strip show new text.
ARM = """
const row = '%s', col = '%s';
const cell = () => document.querySelector(
  '#%s .ag-center-cols-container [row-id="' + row + '"] [col-id="' + col + '"]');
const strip = document.getElementById('%s');
const b = window.__bench = {t0: null, row: null, strip: null, rowText: cell().innerText, stripText: strip.innerText};
if (!window.__benchKey) {
  window.__benchKey = true;
  document.addEventListener('keydown', e => { if (e.key === 'Enter' && window.__bench.t0 === null)
    window.__bench.t0 = performance.now(); }, true);
}
const check = () => {
  const now = performance.now(), w = window.__bench;
  if (w.t0 === null) return;
  const c = cell();
  if (w.row === null && c && c.innerText !== w.rowText) w.row = now - w.t0;
  if (w.strip === null && strip.innerText !== w.stripText) w.strip = now - w.t0;
};
if (window.__benchObs) window.__benchObs.forEach(o => o.disconnect());
window.__benchObs = [document.getElementById('%s'), strip].map(el => {
  const o = new MutationObserver(check); o.observe(el, {subtree: true, childList: true, characterData: true}); return o;
});
"""


def _edit(dash_duo, value: str):
    cell = dash_duo.find_element(f'#{ids.BOOK_GRID} .ag-center-cols-container [row-id="{ROW}"] [col-id="{COLUMN}"]')
    ActionChains(dash_duo.driver).double_click(cell).perform()
    editor = dash_duo.find_element(f"#{ids.BOOK_GRID} .ag-cell-inline-editing input")
    editor.send_keys(Keys.CONTROL, "a")
    editor.send_keys(value)
    dash_duo.driver.execute_script(ARM % (ROW, WATCHED, ids.BOOK_GRID, ids.HEALTH_STRIP, ids.BOOK_GRID))
    editor.send_keys(Keys.ENTER)
    until(lambda: dash_duo.driver.execute_script(
        "const b = window.__bench; return b.row !== null && b.strip !== null;"), timeout=20)
    return dash_duo.driver.execute_script("return [window.__bench.row, window.__bench.strip];")


def test_edit_to_updated_row_and_health_strip(dash_duo, dashboard_app, benchmark):
    dash_duo.driver.set_window_size(1400, 1000)
    dash_duo.start_server(dashboard_app)
    dash_duo.wait_for_element(f'#{ids.BOOK_GRID} [row-id="{ROW}"]', timeout=30)
    dash_duo.wait_for_contains_text(f"#{ids.HEALTH_STRIP}", "equity", timeout=30)
    dash_duo.wait_for_element(f"#{ids.INSTRUMENT_LIST} option", timeout=30)
    _edit(dash_duo, "3.01")  # warm-up: first engine run of a new state, first grid update
    quantities = iter(f"{3 + k / 100:.2f}" for k in range(2, 2 + 10 * ROUNDS))
    timings = []
    benchmark.pedantic(lambda: timings.append(_edit(dash_duo, next(quantities))), rounds=ROUNDS, iterations=1)
    row_ms = statistics.median(t[0] for t in timings)
    strip_ms = statistics.median(t[1] for t in timings)
    benchmark.extra_info.update(browser_row_median_ms=row_ms, browser_strip_median_ms=strip_ms,
                                browser_row_ms=[t[0] for t in timings], browser_strip_ms=[t[1] for t in timings])
    print(f"\nedit → updated row: median {row_ms:.0f} ms; edit → updated health strip: median {strip_ms:.0f} ms "
          f"({ROUNDS} edits; target < {TARGET_MS:.0f} ms)")
    if os.environ.get("PMDASH_BENCH_ENFORCE"):
        assert max(row_ms, strip_ms) < TARGET_MS
