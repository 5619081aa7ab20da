"""What only a browser shows for workspaces: a saved workspace survives a reload and reopens, a
new tab continues the last state, a share link opens a copy, undo brings back a deleted row.
Run with ``pytest --headless``."""
import pytest
from dash.testing.wait import until
from selenium.webdriver.common.keys import Keys

from dashboard import ids
from tests.conftest import clear_dash_state, new_app

pytestmark = pytest.mark.browser


@pytest.fixture
def ws_app(tmp_path, monkeypatch):
    """A fresh app whose workspace database is a new SQLite file under ``tmp_path``."""
    monkeypatch.setenv("PMDASH_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PMDASH_DATABASE_URL", raising=False)
    app = new_app()
    yield app
    clear_dash_state()


def book_rows(dash_duo) -> int:
    return dash_duo.driver.execute_script(
        f"try {{ return dash_ag_grid.getApi('{ids.BOOK_GRID}').getDisplayedRowCount(); }} catch (e) {{ return -1; }}")


def wait_rows(dash_duo, rows: int, timeout: float = 20):
    until(lambda: book_rows(dash_duo) == rows, timeout=timeout,
          msg=f"the book grid should show {rows} rows (shows {book_rows(dash_duo)})")


def go(dash_duo, path: str):
    dash_duo.find_element(f'a.nav-link[href="{path}"]').click()


def delete_first_row(dash_duo):
    """Tick the first row, delete it, wait until the grid has one row less."""
    until(lambda: book_rows(dash_duo) > 0, timeout=20)
    rows = book_rows(dash_duo)
    dash_duo.driver.execute_script(
        f"dash_ag_grid.getApi('{ids.BOOK_GRID}').getDisplayedRowAtIndex(0).setSelected(true);")
    dash_duo.find_element(f"#{ids.DELETE_BUTTON}").click()
    wait_rows(dash_duo, rows - 1)


def open_book(dash_duo, url: str):
    dash_duo.driver.get(url)
    dash_duo.wait_for_element(f'#{ids.BOOK_GRID} .ag-row', timeout=20)


def save_as(dash_duo, name: str):
    go(dash_duo, "/workspaces")
    box = dash_duo.find_element(f"#{ids.WS_NAME}")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(name)
    dash_duo.find_element(f"#{ids.WS_SAVE_NEW}").click()
    dash_duo.wait_for_contains_text(f"#{ids.WS_MESSAGE}", f"saved as a new workspace '{name}'", timeout=20)
    dash_duo.wait_for_contains_text(f"#{ids.WS_GRID}", name, timeout=10)


def test_undo_restores_a_deleted_row_and_redo_deletes_it_again(dash_duo, ws_app):
    dash_duo.start_server(ws_app)
    open_book(dash_duo, dash_duo.server_url + "/")
    rows = book_rows(dash_duo)
    delete_first_row(dash_duo)
    wait_rows(dash_duo, rows - 1)
    until(lambda: dash_duo.find_element(f"#{ids.WS_UNDO}").is_enabled(), timeout=10)
    dash_duo.find_element(f"#{ids.WS_UNDO}").click()
    wait_rows(dash_duo, rows)
    dash_duo.find_element("body").send_keys(Keys.CONTROL, "y")  # the keyboard redo
    wait_rows(dash_duo, rows - 1)
    dash_duo.find_element("body").send_keys(Keys.CONTROL, "z")
    wait_rows(dash_duo, rows)
    go(dash_duo, "/workspaces")
    dash_duo.wait_for_element(f"#{ids.WS_GRID}")
    assert dash_duo.get_logs() == []


def test_save_reload_new_tab_and_reopen(dash_duo, ws_app):
    dash_duo.start_server(ws_app)
    open_book(dash_duo, dash_duo.server_url + "/")
    rows = book_rows(dash_duo)
    save_as(dash_duo, "desk monday")
    go(dash_duo, "/")
    delete_first_row(dash_duo)
    delete_first_row(dash_duo)
    wait_rows(dash_duo, rows - 2)

    dash_duo.driver.refresh()  # a reload keeps the tab's state
    dash_duo.wait_for_element(f'#{ids.BOOK_GRID} .ag-row', timeout=20)
    wait_rows(dash_duo, rows - 2)

    dash_duo.driver.switch_to.new_window("tab")  # a new tab continues the last state, not the demo
    open_book(dash_duo, dash_duo.server_url + "/")
    wait_rows(dash_duo, rows - 2)

    go(dash_duo, "/workspaces")
    dash_duo.wait_for_contains_text(f"#{ids.WS_GRID}", "desk monday", timeout=10)
    dash_duo.driver.execute_script(f"dash_ag_grid.getApi('{ids.WS_GRID}').getDisplayedRowAtIndex(0).setSelected(true);")
    dash_duo.find_element(f"#{ids.WS_OPEN}").click()
    dash_duo.wait_for_element(f'#{ids.BOOK_GRID} .ag-row', timeout=20)
    wait_rows(dash_duo, rows)
    dash_duo.wait_for_contains_text(f"#{ids.WS_CURRENT_LABEL}", "workspace: desk monday", timeout=10)
    dash_duo.find_element(f"#{ids.WS_UNDO}").click()  # opening is undoable
    wait_rows(dash_duo, rows - 2)


def test_a_share_link_opens_a_copy(dash_duo, ws_app):
    dash_duo.start_server(ws_app)
    open_book(dash_duo, dash_duo.server_url + "/")
    rows = book_rows(dash_duo)
    delete_first_row(dash_duo)
    wait_rows(dash_duo, rows - 1)
    go(dash_duo, "/workspaces")
    dash_duo.find_element(f"#{ids.WS_SHARE}").click()
    until(lambda: "/s/" in (dash_duo.find_element(f"#{ids.WS_SHARE_LINK}").get_attribute("value") or ""),
          timeout=20)
    link = dash_duo.find_element(f"#{ids.WS_SHARE_LINK}").get_attribute("value")
    go(dash_duo, "/")
    delete_first_row(dash_duo)  # the sharer goes on working: the link keeps the state it was made from
    wait_rows(dash_duo, rows - 2)

    dash_duo.driver.switch_to.new_window("tab")  # the colleague's tab
    open_book(dash_duo, link)
    wait_rows(dash_duo, rows - 1)
    dash_duo.wait_for_contains_text(f"#{ids.WS_CURRENT_LABEL}", "(shared copy)", timeout=10)
    delete_first_row(dash_duo)  # editing the copy …
    wait_rows(dash_duo, rows - 2)
    open_book(dash_duo, link)  # … leaves the snapshot as it was
    wait_rows(dash_duo, rows - 1)


def test_a_session_file_sets_every_page_and_a_corrupt_one_changes_nothing(dash_duo, ws_app, tmp_path):
    import orjson

    from dashboard.workspaces import payload

    doc = payload.default_payload()
    doc["book"]["positions"] = doc["book"]["positions"][:7]
    doc["settings"]["spot_steps"] = 21
    doc["liquidation"]["params"]["cost"]["impact_k"] = 1.7
    doc["exchange"]["settings"]["seed"] = 11
    good, bad = tmp_path / "monday.pmdash.json", tmp_path / "broken.pmdash.json"
    good.write_bytes(orjson.dumps(doc))
    bad.write_bytes(orjson.dumps(doc)[:-30])

    dash_duo.start_server(ws_app)
    open_book(dash_duo, dash_duo.server_url + "/")
    rows = book_rows(dash_duo)
    go(dash_duo, "/workspaces")
    dash_duo.find_element(f"#{ids.WS_FILE_UPLOAD} input[type=file]").send_keys(str(bad))
    dash_duo.wait_for_contains_text(f"#{ids.WS_MESSAGE}", "not JSON", timeout=20)
    go(dash_duo, "/")
    wait_rows(dash_duo, rows)  # refused: the tab kept its book

    go(dash_duo, "/workspaces")
    dash_duo.find_element(f"#{ids.WS_FILE_UPLOAD} input[type=file]").send_keys(str(good))
    dash_duo.wait_for_element(f'#{ids.BOOK_GRID} .ag-row', timeout=20)
    wait_rows(dash_duo, 7)
    dash_duo.wait_for_contains_text(f"#{ids.WS_CURRENT_LABEL}", "monday (not saved)", timeout=10)

    def stored(store_id: str):
        return dash_duo.driver.execute_script(f"return JSON.parse(window.sessionStorage.getItem('{store_id}'));")

    go(dash_duo, "/stress")  # the page's controls show the file's grid, and its writer keeps it
    until(lambda: dash_duo.find_element(f"#{ids.SPOT_STEPS}").get_attribute("value") == "21", timeout=15)
    go(dash_duo, "/liquidation")
    until(lambda: dash_duo.driver.execute_script(
        "const e = document.getElementById('{\"name\":\"cost.impact_k\",\"type\":\"liq-param\"}');"
        "return e && e.value;") == "1.7", timeout=20)
    go(dash_duo, "/exchange")
    until(lambda: dash_duo.find_element(f"#{ids.EX_SEED}").get_attribute("value") == "11", timeout=20)
    go(dash_duo, "/")
    wait_rows(dash_duo, 7)
    assert stored(ids.SETTINGS_STORE)["spot_steps"] == 21
    assert stored(ids.LIQ_PARAMS_STORE)["cost"]["impact_k"] == 1.7
    assert stored(ids.EX_SETTINGS_STORE)["seed"] == 11


def test_an_autosave_of_an_older_version_opens_upgraded_in_a_new_tab(dash_duo, ws_app):
    import orjson

    from dashboard.stores import session as state

    book, market, settings = state.default_stores()
    rows = [{k: r[k] for k in ("instrument", "quantity", "entry_price")} for r in book["positions"][:5]]
    # no account: it starts at its default
    items = {ids.BOOK_STORE: orjson.dumps({"name": "old", "positions": rows}).decode(),
             ids.MARKET_STORE: orjson.dumps(market).decode(), ids.SETTINGS_STORE: orjson.dumps(settings).decode()}
    autosave = orjson.dumps({"version": 1, "items": items}).decode()
    dash_duo.start_server(ws_app)
    open_book(dash_duo, dash_duo.server_url + "/")
    dash_duo.driver.execute_script("window.localStorage.setItem('pmdash-autosave', arguments[0]);"
                                   "window.sessionStorage.clear();", autosave)  # as a new tab after an upgrade
    dash_duo.driver.refresh()
    wait_rows(dash_duo, 5, timeout=30)
    dash_duo.wait_for_contains_text(f"#{ids.WS_CURRENT_LABEL}", "autosaved work", timeout=10)
