"""The Dash application: ``create_app()`` builds it, ``server`` is the WSGI entry point.

    gunicorn dashboard.app:server          # set PMDASH_REDIS_URL (or PMDASH_CACHE_DIR) to share results between workers

Pages are the modules of ``dashboard/pages`` (``dash.register_page`` in each): a new page is a new
module there, picked up here without any change.
"""
from __future__ import annotations

from pathlib import Path

import dash

from . import guard, layout
from .stores import session as state
from .workspaces import web as workspaces

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def create_app(cache_config: dict | None = None) -> dash.Dash:
    """A new Dash app with the Book, Greeks and Stress pages (and any page module added later).

    ``cache_config`` is a flask-caching config; by default ``state.cache_config()`` (in-process,
    bounded in bytes; Redis under ``PMDASH_REDIS_URL``; a FileSystemCache under ``PMDASH_CACHE_DIR``).
    """
    app = dash.Dash(
        "dashboard",  # the package: page modules are then imported as dashboard.pages.<name>
        use_pages=True,
        pages_folder="pages",
        assets_folder=str(ASSETS),
        title="Portfolio-margin risk",
        update_title=None,
        on_error=guard.on_callback_error,  # no silent 500: the message where the content would be
    )
    app.server.config["MAX_CONTENT_LENGTH"] = guard.max_request_bytes()  # larger POSTs: 413, unread
    state.init_cache(app.server, cache_config)
    workspaces.init_app(app)  # workspace database (schema checked now) and the /s/<token> route
    app.layout = layout.shell()
    layout.register_callbacks(app)
    return app


def set_up_before_serving(app: dash.Dash) -> None:
    """Run Dash's once-per-process server set-up now, in one thread.  Dash does it in a hook of
    the first request and marks it done before doing it, so under gunicorn's threads the other
    first requests of a fresh worker read half-built registries and fail with 500
    (plotly/dash#3971, seen in the load test); one request made here, before any other, avoids it."""
    with app.server.test_client() as client:
        client.get("/")


app = create_app()
set_up_before_serving(app)
server = app.server
