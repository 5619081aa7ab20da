"""Shared fixtures: the demo market, a fresh dashboard app, its page modules, and Chromium for the
browser tests.

Browser tests run headless through ``dash_duo`` (``pytest --headless``).  ``dash[testing]`` pins
selenium 4.2, which cannot download a driver, so the Debian ``chromium`` and ``chromedriver``
(``/usr/bin/chromedriver``, on PATH) are used as installed (docs/methodology.md §10).
"""
from __future__ import annotations

import os
import sys
import tempfile

import dash
import pytest
from dash import _callback, _pages

CHROMIUM = "/usr/bin/chromium"

# Workspaces the tests save go to a throw-away database, never the user's own data directory
# (set before any test imports dashboard.app, which opens the database).
os.environ.setdefault("PMDASH_DATA_DIR", tempfile.mkdtemp(prefix="pmdash-test-data-"))


@pytest.fixture(scope="session")
def market():
    """The demo market (immutable): valuation 2026-11-24 08:00 UTC, underlyings BTC and ETH."""
    from engine.samples import demo_market

    return demo_market()


def pytest_setup_options():
    """Chrome options for dash_duo (hook of the dash.testing plugin)."""
    from selenium.webdriver.chrome.options import Options

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1400,1000"):
        options.add_argument(arg)
    return options


def clear_dash_state() -> None:
    """Forget the pages and ``dash.callback`` registrations of earlier apps in this process.

    Dash keeps both in module globals: a second app would otherwise see the first one's pages
    (duplicate paths) and be served its pending page callbacks a second time.  This is what
    Dash's own test suite does in its ``clear_pages_state`` fixture, plus the callback lists.
    """
    for page in _pages.PAGE_REGISTRY.values():
        sys.modules.pop(page["module"], None)
    _pages.PAGE_REGISTRY.clear()
    _pages.CONFIG.clear()
    _pages.CONFIG.__dict__.clear()
    _callback.GLOBAL_CALLBACK_LIST.clear()
    _callback.GLOBAL_CALLBACK_MAP.clear()
    _callback.GLOBAL_INLINE_SCRIPTS.clear()


def new_app() -> dash.Dash:
    from dashboard.app import create_app

    clear_dash_state()
    return create_app({"CACHE_TYPE": "SimpleCache", "CACHE_THRESHOLD": 16})


@pytest.fixture
def dashboard_app():
    """A fresh app for one browser test."""
    app = new_app()
    yield app
    clear_dash_state()


@pytest.fixture(scope="session")
def app_context():
    """One app for the callback tests, with its Flask app context pushed (the analysis cache
    lives there), and its page modules as Dash imported them."""
    app = new_app()
    with app.server.app_context():
        yield app
    clear_dash_state()


@pytest.fixture(scope="session")
def pages(app_context):
    """The page modules of the app: ``pages.book``, ``pages.greeks``, ``pages.stress``."""
    class Pages:
        book = sys.modules["dashboard.pages.book"]
        greeks = sys.modules["dashboard.pages.greeks"]
        stress = sys.modules["dashboard.pages.stress"]

    return Pages
