"""Lessons page: the shipped guided lessons with Start, and a lesson editor for trainers — save the
current state as a step, reorder or delete steps, download the lesson as JSON, upload one and
play it (docs/lessons.md).  The lesson logic is in :mod:`dashboard.lessons`, the player in the
shell (:mod:`dashboard.lessons.player`).
"""
from __future__ import annotations

import dash
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update

from .. import guard, ids, lessons
from ..components import LIVE, message, panel
from ..lessons.player import started

dash.register_page(__name__, path="/lessons", name="Lessons", order=8, title="Lessons · Portfolio-margin risk")

#: Page choices for a step: (label, path).
PAGE_LABELS = {"/": "Book", "/greeks": "Greeks", "/stress": "Stress", "/margin": "Margin",
               "/liquidation": "Liquidation", "/exchange": "Exchange", "/report": "Report", "/lessons": "Lessons"}


def _lesson_card(key: str, lesson: dict) -> html.Div:
    return html.Div([
        html.H4(lesson["title"]),
        html.P(lesson["summary"]),
        html.P(f"{len(lesson['steps'])} steps"),
        html.Button("Start ▶", id={"type": ids.LESSON_START, "index": key}, className="button"),
    ], className="lesson-card")


def _editor():
    pages = [{"label": PAGE_LABELS.get(p, p), "value": p} for p in lessons.known_pages()]
    return panel(
        "Write a lesson",
        html.Div([
            html.Div([html.Label("Lesson title", htmlFor=ids.DRAFT_TITLE),
                      dcc.Input(id=ids.DRAFT_TITLE, type="text", className="input wide", debounce=True,
                                persistence=True, persistence_type="session", maxLength=lessons.MAX_TITLE)],
                     className="field"),
            html.Div([html.Label("Summary", htmlFor=ids.DRAFT_SUMMARY),
                      dcc.Input(id=ids.DRAFT_SUMMARY, type="text", className="input wide", debounce=True,
                                persistence=True, persistence_type="session", maxLength=lessons.MAX_TEXT)],
                     className="field"),
            html.Div([html.Label("Step title", htmlFor=ids.DRAFT_STEP_TITLE),
                      dcc.Input(id=ids.DRAFT_STEP_TITLE, type="text", className="input wide",
                                maxLength=lessons.MAX_TITLE)], className="field"),
            html.Div([html.Label("Page the step shows"),
                      dcc.Dropdown(id=ids.DRAFT_PAGE, options=pages, value="/", clearable=False)], className="field"),
            html.Div([html.Label("Step text: what to look at, and why", htmlFor=ids.DRAFT_TEXT),
                      dcc.Textarea(id=ids.DRAFT_TEXT, maxLength=lessons.MAX_TEXT,
                                   placeholder="e.g. The boxed cell is the binding scenario: …")],
                     className="field wide"),
            html.Div([html.Label("Highlighted control (optional)"),
                      dcc.Dropdown(id=ids.DRAFT_HIGHLIGHT, options=sorted(lessons.HIGHLIGHTS), placeholder="none")],
                     className="field"),
            html.Div([html.Button("Save the current state as a step", id=ids.DRAFT_SAVE, className="button")],
                     className="field"),
        ], className="lessons-editor"),
        html.Div(id=ids.DRAFT_MESSAGE, **LIVE),
        html.H4("Steps", className="subtitle"),
        html.Ol(id=ids.DRAFT_STEPS, className="draft-steps"),
        html.Div([
            html.Button("Play this lesson ▶", id=ids.DRAFT_PLAY, className="button"),
            html.Button("Download JSON", id=ids.DRAFT_DOWNLOAD_BUTTON, className="button secondary"),
            html.Button("New lesson", id=ids.DRAFT_NEW, className="button danger"),
            dcc.Download(id=ids.DRAFT_DOWNLOAD),
        ], className="actions"),
        dcc.Upload(id=ids.LESSON_UPLOAD, className="dropzone", accept=".json,application/json",
                   max_size=lessons.MAX_UPLOAD_BYTES,
                   children=html.Div(["Drop a lesson JSON here, or ", html.A("choose one"),
                                      " (it opens in the editor; then Play; ",
                                      guard.size_text(lessons.MAX_UPLOAD_BYTES), ")"])),
        html.Div(id=ids.LESSON_UPLOAD_MESSAGE, **LIVE),
        how_to="Set the app up as the step should show it (book, market, margin model and collateral, "
               "stress grid, Liquidation and Exchange settings) on any page, come back here, type what the "
               "learner should look at and why, choose the page and a control to outline, and save. The step "
               "records the whole state, so the lesson plays the same for everyone. Download the lesson to "
               "keep it; upload it later (or share it) and press Play. A file with a mistake is refused "
               "with the field named, and nothing you had is lost.",
    )


layout = html.Div([
    dcc.Store(id=ids.DRAFT_STORE, storage_type="session", data=lessons.new_draft()),
    panel("Guided lessons",
          html.Div([_lesson_card(key, lesson) for key, lesson in lessons.shipped().items()],
                   id=ids.LESSON_LIST, className="lessons-list"),
          how_to="Start a lesson: a card at the right walks through its steps, each setting the book, market, "
                 "margin model and page, with the control to look at outlined. Controls are locked while a "
                 "step is shown so the class sees the same screen; 'Try it yourself' unlocks them, Next or "
                 "Back moves on. Works in presenter mode."),
    _editor(),
], className="page")


# ----------------------------------------------------------------------------- player


@callback(Output(ids.LESSON_STORE, "data", allow_duplicate=True),
          Input({"type": ids.LESSON_START, "index": ALL}, "n_clicks"), prevent_initial_call=True)
def start(clicks):
    if not ctx.triggered_id or not any(clicks):
        return no_update
    key = ctx.triggered_id["index"]
    return started(key, lessons.shipped()[key])


# ----------------------------------------------------------------------------- editor


def step_items(draft: dict) -> list:
    """One line per step: its number, title or text, page and highlight, with ↑ ↓ ✕."""
    items = []
    for k, step in enumerate(draft["steps"]):
        meta = f"{PAGE_LABELS.get(step.get('page'), step.get('page', ''))} page"
        if step.get("highlight"):
            meta += f" · outlines {step['highlight']}"
        text = step["text"] if len(step["text"]) <= 140 else step["text"][:137] + "…"
        items.append(html.Li([
            html.Div([html.B(step.get("title") or f"Step {k + 1}"), html.Div(text),
                      html.Div(meta, className="step-meta")], className="step-body"),
            html.Button("↑", id={"type": ids.DRAFT_MOVE, "index": k, "by": -1}, className="button secondary",
                        title="Move up", disabled=k == 0),
            html.Button("↓", id={"type": ids.DRAFT_MOVE, "index": k, "by": 1}, className="button secondary",
                        title="Move down", disabled=k == len(draft["steps"]) - 1),
            html.Button("✕", id={"type": ids.DRAFT_DELETE, "index": k}, className="button danger", title="Delete"),
        ], className="draft-step"))
    return items or [html.Li("No steps yet: save the current state as the first one.", className="hint")]


@callback(Output(ids.DRAFT_STEPS, "children"), Input(ids.DRAFT_STORE, "data"))
def render_steps(draft):
    return step_items(draft)


@callback(Output(ids.DRAFT_PAGE, "value"), Input(ids.DRAFT_PAGE, "id"), State(ids.LESSON_CAPTURE_STORE, "data"))
def last_page(_, captured):
    """The page a new step shows: the one the trainer came from."""
    return (captured or {}).get("page") or "/"


def save_step(draft: dict, text, title, page, highlight, stores: dict, captured: dict | None):
    """(draft, message) after "save the current state as a step"."""
    if not text or not str(text).strip():
        return no_update, message(["step text: type what the learner should look at, and why"])
    if len(draft["steps"]) >= lessons.MAX_STEPS:
        return no_update, message([f"a lesson has at most {lessons.MAX_STEPS} steps"])
    captured = captured or {}
    step = lessons.capture(str(text).strip(), page or "/", stores["book"], stores["market"], stores["settings"],
                     stores["account"], captured.get("liquidation"), captured.get("exchange"), highlight,
                     title or "")
    return dict(draft, steps=draft["steps"] + [step]), message(note=f"step {len(draft['steps']) + 1} saved")


@callback(Output(ids.DRAFT_STORE, "data"), Output(ids.DRAFT_MESSAGE, "children"),
          Output(ids.DRAFT_TEXT, "value"), Output(ids.DRAFT_STEP_TITLE, "value"),
          Input(ids.DRAFT_SAVE, "n_clicks"), Input({"type": ids.DRAFT_MOVE, "index": ALL, "by": ALL}, "n_clicks"),
          Input({"type": ids.DRAFT_DELETE, "index": ALL}, "n_clicks"), Input(ids.DRAFT_NEW, "n_clicks"),
          State(ids.DRAFT_TEXT, "value"), State(ids.DRAFT_STEP_TITLE, "value"), State(ids.DRAFT_PAGE, "value"),
          State(ids.DRAFT_HIGHLIGHT, "value"), State(ids.BOOK_STORE, "data"), State(ids.MARKET_STORE, "data"),
          State(ids.SETTINGS_STORE, "data"), State(ids.ACCOUNT_STORE, "data"), State(ids.LESSON_CAPTURE_STORE, "data"),
          State(ids.DRAFT_STORE, "data"), prevent_initial_call=True)
def edit_draft(save, moves, deletes, new, text, title, page, highlight, book, market, settings, account, captured,
               draft):
    trigger = ctx.triggered_id
    if not ctx.triggered or not ctx.triggered[0]["value"]:
        return no_update, no_update, no_update, no_update
    if trigger == ids.DRAFT_SAVE:
        stores = {"book": book, "market": market, "settings": settings, "account": account}
        new_draft, note = save_step(draft, text, title, page, highlight, stores, captured)
        cleared = new_draft is not no_update
        return new_draft, note, "" if cleared else no_update, "" if cleared else no_update
    if trigger == ids.DRAFT_NEW:
        return lessons.new_draft(), message(note="new lesson: save its first step"), no_update, no_update
    if trigger["type"] == ids.DRAFT_MOVE:
        return lessons.move_step(draft, trigger["index"], trigger["by"]), "", no_update, no_update
    return lessons.delete_step(draft, trigger["index"]), "", no_update, no_update


@callback(Output(ids.DRAFT_STORE, "data", allow_duplicate=True), Output(ids.LESSON_UPLOAD_MESSAGE, "children"),
          Output(ids.DRAFT_TITLE, "value"), Output(ids.DRAFT_SUMMARY, "value"), Output(ids.LESSON_UPLOAD, "contents"),
          Input(ids.LESSON_UPLOAD, "contents"), State(ids.LESSON_UPLOAD, "filename"), prevent_initial_call=True)
def upload(contents, filename):
    if not contents:
        return (no_update,) * 5
    lesson, problems = lessons.read_upload(contents, filename)
    if lesson is None:
        return no_update, message([f"{filename}: {p}" for p in problems]), no_update, no_update, None
    return (lesson, message(note=f"{filename}: {len(lesson['steps'])} steps loaded — press Play"),
            lesson["title"], lesson["summary"], None)


def finished(draft: dict, title, summary) -> tuple[dict | None, list[str]]:
    """(lesson, problems) of the draft with the title and summary typed above it."""
    lesson = dict(draft, title=(title or "").strip() or draft.get("title", ""), summary=(summary or "").strip())
    try:
        lesson = lessons.parse(lesson)
        lessons.resolve(lesson)
    except lessons.LessonError as exc:
        return None, list(exc.problems)
    return lesson, []


@callback(Output(ids.DRAFT_DOWNLOAD, "data"), Output(ids.LESSON_STORE, "data", allow_duplicate=True),
          Output(ids.DRAFT_MESSAGE, "children", allow_duplicate=True),
          Input(ids.DRAFT_DOWNLOAD_BUTTON, "n_clicks"), Input(ids.DRAFT_PLAY, "n_clicks"),
          State(ids.DRAFT_STORE, "data"), State(ids.DRAFT_TITLE, "value"), State(ids.DRAFT_SUMMARY, "value"),
          prevent_initial_call=True)
def download_or_play(download, play, draft, title, summary):
    if not (download or play):
        return no_update, no_update, no_update
    lesson, problems = finished(draft, title, summary)
    if lesson is None:
        return no_update, no_update, message(problems)
    if ctx.triggered_id == ids.DRAFT_PLAY:
        return no_update, started("", lesson), ""
    name = "".join(c if c.isalnum() else "_" for c in lesson["title"].lower()).strip("_")[:60] or "lesson"
    return dcc.send_string(lessons.to_json(lesson), f"{name}.json"), no_update, message(note="lesson downloaded")
