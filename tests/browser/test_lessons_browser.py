"""Lesson 1 in a real browser, end to end: start it from the Lessons page, Next through every
step checking the page and the book and margin model it claims, "Try it yourself" unlocks the
controls, and the player is legible in presenter mode at 1280×720.  Run with ``pytest --headless``."""
import json

import pytest

from dashboard import ids, lessons

pytestmark = pytest.mark.browser

LESSON = "01_naked_vs_condor"
START = f'[id=\'{{"index":"{LESSON}","type":"{ids.LESSON_START}"}}\']'
SESSION = "return JSON.parse(window.sessionStorage.getItem(arguments[0]));"
LOCKED = "return document.body.classList.contains('lesson-locked');"
INERT_CONTROLS = ("return [...document.querySelectorAll('.content .margin-controls, .content .controls')]"
                  ".map(e => e.inert);")
PATH = "return window.location.pathname;"
HIGHLIGHTED = "return [...document.querySelectorAll('[data-lesson-highlight]')].map(e => e.id);"


def store(dash_duo, store_id):
    return dash_duo.driver.execute_script(SESSION, store_id)


def wait_for(dash_duo, condition, timeout=20, message=""):
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(dash_duo.driver, timeout, poll_frequency=0.2).until(lambda _: condition(), message)


def check_step(dash_duo, k, state):
    """The browser shows step k: progress, path, highlight, and the stores hold its book and model."""
    steps = len(lessons.shipped()[LESSON]["steps"])
    dash_duo.wait_for_text_to_equal(f"#{ids.LESSON_PROGRESS}", f"Step {k + 1} of {steps}", timeout=20)
    wait_for(dash_duo, lambda: dash_duo.driver.execute_script(PATH) == state.page, message=f"step {k}: page")
    wait_for(dash_duo, lambda: [p["instrument"] for p in store(dash_duo, ids.BOOK_STORE)["positions"]]
             == [p["instrument"] for p in state.book["positions"]], message=f"step {k}: book")
    wait_for(dash_duo, lambda: store(dash_duo, ids.ACCOUNT_STORE)["model"] == state.account["model"],
             message=f"step {k}: model")
    wait_for(dash_duo, lambda: dash_duo.driver.execute_script(HIGHLIGHTED) == [state.highlight],
             message=f"step {k}: highlight")
    assert dash_duo.driver.execute_script(LOCKED)


def test_lesson_one_end_to_end(dash_duo, dashboard_app):
    states = lessons.resolve(lessons.shipped()[LESSON], check=False)
    dash_duo.start_server(dashboard_app)
    dash_duo.driver.set_window_size(1400, 1000)
    dash_duo.driver.get(dash_duo.server_url + "/lessons")
    dash_duo.wait_for_element(START, timeout=20).click()
    for k, state in enumerate(states):
        check_step(dash_duo, k, state)
        if state.page == "/margin":
            # The Margin page's model choice shows the step's model, and it is locked.
            dash_duo.wait_for_element(f"#{ids.MARGIN_MODEL} input[value='{state.account['model']}']:checked",
                                      timeout=20)
            wait_for(dash_duo, lambda: all(dash_duo.driver.execute_script(INERT_CONTROLS)), message="inert")
        if k < len(states) - 1:
            dash_duo.find_element(f"#{ids.LESSON_NEXT}").click()
    # Try it yourself: the controls respond again; Finish leaves the lesson, the state stays.
    dash_duo.find_element(f"#{ids.LESSON_TRY}").click()
    wait_for(dash_duo, lambda: not dash_duo.driver.execute_script(LOCKED), message="unlock")
    assert not any(dash_duo.driver.execute_script(INERT_CONTROLS))
    dash_duo.wait_for_text_to_equal(f"#{ids.LESSON_NEXT}", "Finish ✓")
    dash_duo.find_element(f"#{ids.LESSON_NEXT}").click()
    wait_for(dash_duo, lambda: store(dash_duo, ids.LESSON_STORE) is None, message="exit")
    assert not dash_duo.find_element(f"#{ids.LESSON_PLAYER}").is_displayed()
    assert store(dash_duo, ids.BOOK_STORE)["name"] == states[-1].book["name"]
    assert dash_duo.get_logs() == []


def test_lesson_in_presenter_mode_at_1280x720(dash_duo, dashboard_app):
    """The card is legible beside the page, Back returns a step, and the Stress heatmap's top
    stays in the upper half of the window with the card shown."""
    dash_duo.start_server(dashboard_app)
    dash_duo.driver.set_window_size(1280, 720)
    dash_duo.driver.get(dash_duo.server_url + "/lessons?present=1")
    dash_duo.wait_for_class_to_equal(f"#{ids.PRESENTER_BAR}", "presenter-bar on")
    dash_duo.wait_for_element(START, timeout=20).click()
    steps = lessons.shipped()[LESSON]["steps"]
    for k in range(1, len(steps)):
        dash_duo.wait_for_text_to_equal(f"#{ids.LESSON_PROGRESS}", f"Step {k} of {len(steps)}", timeout=30)
        dash_duo.wait_for_element(f"#{ids.LESSON_NEXT}").click()
    dash_duo.wait_for_text_to_equal(f"#{ids.LESSON_PROGRESS}", f"Step {len(steps)} of {len(steps)}", timeout=30)
    dash_duo.wait_for_element(f"#{ids.HEATMAP} .js-plotly-plot", timeout=30)
    inner = dash_duo.driver.execute_script("return [window.innerWidth, window.innerHeight];")
    card = dash_duo.driver.execute_script(
        f"return document.getElementById('{ids.LESSON_PLAYER}').getBoundingClientRect().toJSON();")
    heatmap = dash_duo.driver.execute_script(
        f"return document.querySelector('#{ids.HEATMAP} .js-plotly-plot').getBoundingClientRect().toJSON();")
    assert card["bottom"] <= inner[1] and card["right"] <= inner[0]
    assert heatmap["top"] < inner[1] * 0.5
    assert heatmap["right"] <= card["left"], "the card must not cover the key chart"
    font = dash_duo.driver.execute_script(
        f"return parseFloat(getComputedStyle(document.getElementById('{ids.LESSON_TEXT}')).fontSize);")
    assert font >= 16
    dash_duo.driver.save_screenshot("/tmp/lesson-presenter-1280x720.png")
    dash_duo.find_element(f"#{ids.LESSON_BACK}").click()
    dash_duo.wait_for_text_to_equal(f"#{ids.LESSON_PROGRESS}", f"Step {len(steps) - 1} of {len(steps)}")
    wait_for(dash_duo, lambda: dash_duo.driver.execute_script(PATH) == "/margin", message="back to margin")
    assert json.dumps(store(dash_duo, ids.LESSON_STORE)["step"]) == str(len(steps) - 2)
    assert dash_duo.get_logs() == []


def test_cascade_lesson_sets_the_exchange_page_and_a_trainer_records_a_lesson(dash_duo, dashboard_app):
    """Lesson 4's steps set the Exchange page's own controls (and through them its store); then a
    trainer saves the current state as a step, and plays the one-step lesson."""
    dash_duo.start_server(dashboard_app)
    dash_duo.driver.set_window_size(1400, 1000)
    dash_duo.driver.get(dash_duo.server_url + "/lessons")
    dash_duo.wait_for_element(START.replace(LESSON, "04_exchange_cascade"), timeout=20).click()
    states = lessons.resolve(lessons.shipped()["04_exchange_cascade"], check=False)
    for k in range(1, 5):
        dash_duo.wait_for_text_to_equal(f"#{ids.LESSON_PROGRESS}", f"Step {k} of {len(states)}", timeout=30)
        dash_duo.wait_for_element(f"#{ids.LESSON_NEXT}").click()
    dash_duo.wait_for_text_to_equal(f"#{ids.LESSON_PROGRESS}", f"Step 5 of {len(states)}", timeout=30)
    wait_for(dash_duo, lambda: store(dash_duo, ids.EX_SETTINGS_STORE) == states[4].exchange, timeout=30,
             message="exchange store")
    assert dash_duo.find_element(f"#{ids.EX_IMPACT_K}").get_attribute("value") == "0"
    dash_duo.find_element(f"#{ids.LESSON_EXIT}").click()
    wait_for(dash_duo, lambda: not dash_duo.driver.execute_script(LOCKED), message="exit unlocks")
    # The trainer records the state on screen as a step of a new lesson and plays it.
    dash_duo.driver.find_element("css selector", "a[href='/lessons']").click()
    dash_duo.wait_for_element(f"#{ids.DRAFT_TEXT}", timeout=20).send_keys("Without impact there is no cascade.")
    dash_duo.find_element(f"#{ids.DRAFT_SAVE}").click()
    dash_duo.wait_for_contains_text(f"#{ids.DRAFT_STEPS}", "Without impact there is no cascade.", timeout=20)
    assert "Exchange page" in dash_duo.find_element(f"#{ids.DRAFT_STEPS}").text
    dash_duo.find_element(f"#{ids.DRAFT_PLAY}").click()
    dash_duo.wait_for_text_to_equal(f"#{ids.LESSON_PROGRESS}", "Step 1 of 1", timeout=30)
    wait_for(dash_duo, lambda: dash_duo.driver.execute_script(PATH) == "/exchange", message="plays on its page")
    assert store(dash_duo, ids.LESSON_STORE)["lesson"]["steps"][0]["exchange"] == states[4].exchange
    assert dash_duo.get_logs() == []
