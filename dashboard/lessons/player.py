"""The lesson player in the shell: a side card with the step's text, Back / Next, progress,
"Try it yourself" and Exit, and the callbacks that put each step's state into the stores.

Shell stores (session storage):

* ``LESSON_STORE``: ``{"key": lesson key or "", "lesson": lesson (``lessons.parse`` format),
  "step": k}`` while a lesson plays, else ``None``;
* ``LESSON_CAPTURE_STORE``: ``{"liquidation", "exchange", "page"}``, the last Liquidation and
  Exchange settings and the last page seen (other than Lessons), for "save the current state
  as a step".

Showing step k writes the shell stores (book, market, stress settings, account) and the URL's
path; the Stress, Margin, Liquidation and Exchange pages keep their own settings in their
controls, so while a lesson plays each of those pages, when shown, gets its controls set to the
step's values (its own callbacks then write its stores as for a user's edit).  Controls are
locked while a step is shown (``body.lesson-locked``, ``assets/lessons.css`` and
``assets/lessons.js``) until "Try it yourself".
"""
from __future__ import annotations

import dash
from dash import Input, Output, Patch, State, dcc, html, no_update
from dash.exceptions import PreventUpdate

from .. import ids
from ..components import LIVE
from . import LessonError, exchange_controls, liquidation_controls, margin_controls, step_state, stress_controls

#: Pages the capture store ignores: the Lessons page is where a step is saved, not shown.
NOT_CAPTURED = ("/lessons",)


def stores() -> list:
    return [dcc.Store(id=ids.LESSON_STORE, storage_type="session"),
            dcc.Store(id=ids.LESSON_CAPTURE_STORE, storage_type="session", data={}),
            dcc.Store(id=ids.LESSON_APPLIED), dcc.Store(id=ids.LESSON_VIEW)]


def player() -> html.Aside:
    """The side card; hidden unless a lesson plays."""
    return html.Aside([
        html.Div([html.Span(id=ids.LESSON_PROGRESS, className="lesson-progress"),
                  html.Button("✕ Exit", id=ids.LESSON_EXIT, className="lesson-exit", title="Leave the lesson")],
                 className="lesson-head"),
        html.Div(id=ids.LESSON_TITLE, className="lesson-title"),
        html.H3(id=ids.LESSON_STEP_TITLE, className="lesson-step-title"),
        html.P(id=ids.LESSON_TEXT, className="lesson-text"),
        html.Div(id=ids.LESSON_MESSAGE),
        html.Div([
            html.Button("◀ Back", id=ids.LESSON_BACK, className="button secondary"),
            html.Button("Try it yourself", id=ids.LESSON_TRY, className="button secondary lesson-try",
                        title="Unlock the controls to explore from this step"),
            html.Button("Next ▶", id=ids.LESSON_NEXT, className="button"),
        ], className="lesson-buttons"),
    ], id=ids.LESSON_PLAYER, className="lesson-player", hidden=True, **LIVE)


def started(key: str, lesson: dict) -> dict:
    """The lesson store value that starts ``lesson`` at its first step."""
    return {"key": key, "lesson": lesson, "step": 0}


def navigate(trigger: str, playing: dict | None) -> dict | None:
    """The lesson store after Back, Next (Finish on the last step) or Exit."""
    if not playing:
        raise PreventUpdate
    last = len(playing["lesson"]["steps"]) - 1
    if trigger == ids.LESSON_EXIT or (trigger == ids.LESSON_NEXT and playing["step"] >= last):
        return None
    offset = 1 if trigger == ids.LESSON_NEXT else -1
    return dict(playing, step=max(0, min(last, playing["step"] + offset)))


def card(playing: dict | None) -> tuple:
    """(hidden, progress, lesson title, step title, text, back disabled, next label) of the card."""
    if not playing:
        return True, "", "", "", "", True, "Next ▶"
    steps = playing["lesson"]["steps"]
    k = playing["step"]
    step = steps[k]
    last = k == len(steps) - 1
    return (False, f"Step {k + 1} of {len(steps)}", playing["lesson"]["title"], step.get("title") or "",
            step["text"], k == 0, "Finish ✓" if last else "Next ▶")


def apply(playing: dict | None):
    """(book, market, settings, account, page path, applied, message) that the current step sets;
    a step the engine refuses writes nothing and says why, naming the field.  ``applied`` (which
    step was written) is what the pages' controls follow, so they change only once the stores hold
    the step's values."""
    if not playing:
        raise PreventUpdate
    try:
        s = step_state(playing["lesson"], playing["step"])
    except LessonError as exc:
        problems = html.Ul([html.Li(f"this step cannot be shown: {p}") for p in exc.problems])
        return (no_update,) * 6 + (html.Div(problems, className="msg msg-error", role="alert"),)
    return s.book, s.market, s.settings, s.account, s.page, {"key": playing["key"], "step": playing["step"]}, ""


def controls_of(playing: dict | None, which: str) -> tuple:
    """The values the ``which`` page's controls show for the current step (``stress``,
    ``margin``, ``liquidation`` or ``exchange``); nothing while no lesson plays."""
    if not playing:
        raise PreventUpdate
    try:
        s = step_state(playing["lesson"], playing["step"], check=False)
    except LessonError:
        raise PreventUpdate from None
    return {"stress": lambda: stress_controls(s.settings), "margin": lambda: margin_controls(s.account),
            "liquidation": lambda: liquidation_controls(s.liquidation),
            "exchange": lambda: exchange_controls(s.exchange)}[which]()


#: Page controls a step sets, per page: (Input that says the page is shown, the controls).
PAGE_CONTROLS = {
    "stress": (ids.SPOT_RANGE, (ids.SPOT_RANGE, ids.SPOT_STEPS, ids.VOL_RANGE, ids.VOL_STEPS, ids.HORIZONS)),
    "margin": (ids.MARGIN_COLLATERAL, (ids.MARGIN_COLLATERAL, ids.MARGIN_MODEL, ids.MARGIN_PRESET)),
    "liquidation": (ids.LIQ_STRESS_MODE, (ids.LIQ_STRESS_MODE, ids.LIQ_SHOCK, ids.LIQ_COLLATERAL)),
    "exchange": (ids.EX_SHOCK, (ids.EX_ACCOUNTS, ids.EX_SEED, ids.EX_SHOCK, ids.EX_TOP_N, ids.EX_IMPACT_K,
                                ids.EX_TURNOVER, ids.EX_ROUNDS)),
}


def _register_page_controls(app: dash.Dash, which: str) -> None:
    shown, controls = PAGE_CONTROLS[which]
    # All outputs and the "shown" input live on the page: Dash runs this only while it is shown,
    # when it appears and after each step is written (a control changed before the store would
    # let the page's own writer commit a mix of the old account and the new control).
    app.callback([Output(c, "value", allow_duplicate=True) for c in controls], Input(ids.LESSON_APPLIED, "data"),
                 Input(shown, "id"), State(ids.LESSON_STORE, "data"), prevent_initial_call="initial_duplicate")(
        lambda _applied, _shown, playing: controls_of(playing, which))


def register_callbacks(app: dash.Dash) -> None:
    @app.callback(Output(ids.LESSON_STORE, "data", allow_duplicate=True), Input(ids.LESSON_BACK, "n_clicks"),
                  Input(ids.LESSON_NEXT, "n_clicks"), Input(ids.LESSON_EXIT, "n_clicks"),
                  State(ids.LESSON_STORE, "data"), prevent_initial_call=True)
    def on_button(_back, _next, _exit, playing):
        return navigate(dash.ctx.triggered_id, playing)

    app.callback(Output(ids.LESSON_PLAYER, "hidden"), Output(ids.LESSON_PROGRESS, "children"),
                 Output(ids.LESSON_TITLE, "children"), Output(ids.LESSON_STEP_TITLE, "children"),
                 Output(ids.LESSON_TEXT, "children"), Output(ids.LESSON_BACK, "disabled"),
                 Output(ids.LESSON_NEXT, "children"), Input(ids.LESSON_STORE, "data"))(card)

    app.callback(Output(ids.BOOK_STORE, "data", allow_duplicate=True),
                 Output(ids.MARKET_STORE, "data", allow_duplicate=True),
                 Output(ids.SETTINGS_STORE, "data", allow_duplicate=True),
                 Output(ids.ACCOUNT_STORE, "data", allow_duplicate=True),
                 Output(ids.URL, "pathname", allow_duplicate=True), Output(ids.LESSON_APPLIED, "data"),
                 Output(ids.LESSON_MESSAGE, "children"),
                 Input(ids.LESSON_STORE, "data"), prevent_initial_call=True)(apply)

    for which in PAGE_CONTROLS:
        _register_page_controls(app, which)

    # What "save the current state as a step" captures besides the shell stores.
    def capture_into(key: str):
        def write(value):
            if value is None:
                raise PreventUpdate
            patch = Patch()
            patch[key] = value
            return patch
        return write

    for store, key in ((ids.LIQ_STRESS_STORE, "liquidation"), (ids.EX_SETTINGS_STORE, "exchange")):
        app.callback(Output(ids.LESSON_CAPTURE_STORE, "data", allow_duplicate=True), Input(store, "data"),
                     prevent_initial_call="initial_duplicate")(capture_into(key))

    @app.callback(Output(ids.LESSON_CAPTURE_STORE, "data", allow_duplicate=True), Input(ids.URL, "pathname"),
                  prevent_initial_call="initial_duplicate")
    def capture_page(path):
        if not path or path in NOT_CAPTURED:
            raise PreventUpdate
        return capture_into("page")(path)

    # Locking, unlocking and the highlight are view-only: done in the browser (assets/lessons.js).
    app.clientside_callback(
        """(playing, tries, path) => {
            const trigger = (dash_clientside.callback_context.triggered[0] || {}).prop_id || '';
            const L = window.pmdashLessons;
            if (!playing) { L.stop(); return [null, false, 'Try it yourself']; }
            const step = playing.lesson.steps[playing.step] || {};
            if (trigger.startsWith('lesson-try')) { L.unlock(); }
            else if (!trigger.startsWith('url')) { L.lock(); }  // a new step, or a reload mid-lesson
            L.highlight(step.highlight || null);
            const locked = document.body.classList.contains('lesson-locked');
            return [step.highlight || null, !locked, locked ? 'Try it yourself' : 'Controls unlocked'];
        }""",
        Output(ids.LESSON_VIEW, "data"), Output(ids.LESSON_TRY, "disabled"), Output(ids.LESSON_TRY, "children"),
        Input(ids.LESSON_STORE, "data"), Input(ids.LESSON_TRY, "n_clicks"), Input(ids.URL, "pathname"))
