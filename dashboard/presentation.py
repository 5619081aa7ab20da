"""Presenter mode: for showing the dashboard on a projector or a shared screen.

State in one shell store (``ids.PRESENTER_STORE``, session storage)::

    {"on": bool, "dark": bool, "pnl_scale": USD or null}

* ``on`` hides how-to text and the settings panels, enlarges fonts and figures, and lets each
  page's key chart sit above the fold (``assets/presenter.css``);
* ``dark``: a dark theme for projectors (figures are inverted in lightness, hues kept);
* ``pnl_scale``: the stress heatmap's colour axis fixed at ± that many USD, so the same P&L has
  the same colour on every book shown (None: fitted to each book).

URL parameters set it on load, for a bookmark or a link sent to a presenter:
``/stress?present=1&theme=dark&scale=1000000``.  Every chart can go full screen (the ⛶ button
``assets/presenter.js`` adds to each chart).
"""
from __future__ import annotations

import contextlib
import math
from urllib.parse import parse_qs

import dash
from dash import Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from . import ids

#: Largest fixed colour scale accepted (USD): beyond it every book would be one colour.
MAX_SCALE = 1e12


def default_presenter() -> dict:
    return {"on": False, "dark": False, "pnl_scale": None}


def fixed_scale(presenter: dict | None) -> float | None:
    """The fixed P&L colour scale in force (only in presenter mode), or None."""
    if not presenter or not presenter.get("on"):
        return None
    scale = presenter.get("pnl_scale")
    return float(scale) if isinstance(scale, int | float) and 0 < scale <= MAX_SCALE else None


def parse_scale(value) -> float | None:
    """A scale typed by the user: a positive number of USD (thousands separators allowed), or
    None for "fit each book"; ValueError names the limit."""
    if value is None or str(value).strip() == "":
        return None
    try:
        scale = float(str(value).replace(",", "").replace("$", "").strip())
    except ValueError:
        raise ValueError(f"colour scale must be a number of USD (got {value!r})") from None
    if not (math.isfinite(scale) and 0 < scale <= MAX_SCALE):
        raise ValueError(f"colour scale must be between 0 and {MAX_SCALE:,.0f} USD (got {value!r})")
    return scale


def from_query(search: str | None, current: dict | None) -> dict | None:
    """The presenter state a URL query asks for (``present``, ``theme``, ``scale``), or None when
    the query says nothing about it.  A bad ``scale`` is ignored (the rest still applies)."""
    query = parse_qs((search or "").lstrip("?"))
    if not {"present", "theme", "scale"} & set(query):
        return None
    state = dict(current or default_presenter())
    if "present" in query:
        state["on"] = query["present"][-1].lower() not in ("0", "false", "no", "off")
    if "theme" in query:
        state["dark"] = query["theme"][-1].lower() == "dark"
    if "scale" in query:
        with contextlib.suppress(ValueError):
            state["pnl_scale"] = parse_scale(query["scale"][-1])
    return state


def controls() -> html.Div:
    """The navbar's presenter toggles and the fixed-scale box (shown in presenter mode)."""
    return html.Div([
        html.Span(dcc.Input(id=ids.PNL_SCALE, type="text", debounce=True, placeholder="P&L colour ± USD",
                            className="input presenter-scale"),
                  title="Fix the stress colour scale at ± this many USD (empty: fit each book)"),
        html.Button("Dark", id=ids.DARK_TOGGLE, className="nav-toggle", title="Dark theme for projectors"),
        html.Button("Present", id=ids.PRESENT_TOGGLE, className="nav-toggle",
                    title="Presenter mode: hide how-to text and settings, larger charts (URL: ?present=1)"),
    ], id=ids.PRESENTER_BAR, className="presenter-bar")


def store() -> dcc.Store:
    return dcc.Store(id=ids.PRESENTER_STORE, storage_type="session", data=default_presenter())


def toggled(trigger: str, presenter: dict, scale_text) -> dict:
    """The presenter state after a click on a toggle or an entry in the scale box."""
    state = dict(presenter or default_presenter())
    if trigger == ids.PRESENT_TOGGLE:
        state["on"] = not state["on"]
    elif trigger == ids.DARK_TOGGLE:
        state["dark"] = not state["dark"]
    elif trigger == ids.PNL_SCALE:
        try:
            state["pnl_scale"] = parse_scale(scale_text)
        except ValueError:
            state["pnl_scale"] = state.get("pnl_scale")
    return state


def register_callbacks(app: dash.Dash) -> None:
    @app.callback(Output(ids.PRESENTER_STORE, "data", allow_duplicate=True), Input(ids.URL, "search"),
                  State(ids.PRESENTER_STORE, "data"), prevent_initial_call="initial_duplicate")
    def from_url(search, presenter):
        wanted = from_query(search, presenter)
        if wanted is None or wanted == presenter:
            raise PreventUpdate
        return wanted

    @app.callback(Output(ids.PRESENTER_STORE, "data"), Output(ids.PNL_SCALE, "value"),
                  Input(ids.PRESENT_TOGGLE, "n_clicks"), Input(ids.DARK_TOGGLE, "n_clicks"),
                  Input(ids.PNL_SCALE, "value"), State(ids.PRESENTER_STORE, "data"), prevent_initial_call=True)
    def on_toggle(_present, _dark, scale_text, presenter):
        state = toggled(dash.ctx.triggered_id, presenter, scale_text)
        shown = "" if state["pnl_scale"] is None else f"{state['pnl_scale']:,.0f}"
        return state, shown

    # Classes on <body> are view-only: set in the browser.
    app.clientside_callback(
        """(p) => {
            p = p || {};
            document.body.classList.toggle('presenter', !!p.on);
            document.body.classList.toggle('theme-dark', !!p.dark);
            window.dispatchEvent(new Event('resize'));
            return ['presenter-bar', p.on ? 'on' : '', p.dark ? 'dark' : ''].filter(Boolean).join(' ');
        }""",
        Output(ids.PRESENTER_BAR, "className"), Input(ids.PRESENTER_STORE, "data"))
