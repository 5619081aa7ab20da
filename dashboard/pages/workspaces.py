"""Workspaces page: save the whole state under a name, list, open, rename, duplicate, delete,
share a read-only copy by link, and download or upload it as a session file.

The state is the document of ``dashboard.workspaces.payload``; where it is stored and how it is
loaded into the tab is explained in ``dashboard.workspaces`` and docs/workspaces.md.
"""
from __future__ import annotations

import re

import dash
from dash import Input, Output, State, callback, clientside_callback, ctx, dcc, html, no_update
from sqlalchemy.exc import SQLAlchemyError

from dashboard import guard, ids
from dashboard.components import LIVE, grid, message, panel, user_action
from dashboard.stores.session import upload_bytes
from dashboard.workspaces import payload, store, web

dash.register_page(__name__, path="/workspaces", name="Workspaces", order=7,
                   title="Workspaces · Portfolio-margin risk")

COLUMNS = [
    {"field": "name", "headerName": "Name", "flex": 3, "checkboxSelection": True},
    {"field": "updated", "headerName": "Saved (UTC)", "flex": 2},
    {"field": "revision", "headerName": "Revision", "flex": 1, "type": "rightAligned"},
    {"field": "size_kb", "headerName": "Size (kB)", "flex": 1, "type": "rightAligned"},
]
SHELL_STATES = [State(store_id, "data") for store_id in payload.SHELL_STORES]


def after_load() -> str:
    """Where an opened document is shown: the Book page."""
    return dash.get_relative_path("/")


def _this_tab():
    return panel(
        "This tab",
        html.P(id=ids.WS_CURRENT_NOTE, className="ws-note"),
        html.Div([
            dcc.Input(id=ids.WS_NAME, placeholder="workspace name", maxLength=store.MAX_NAME, className="input wide"),
            html.Button("Save", id=ids.WS_SAVE, className="button"),
            html.Button("Save as new", id=ids.WS_SAVE_NEW, className="button secondary"),
            html.Button("Start from the demo book", id=ids.WS_DEMO, className="button secondary"),
        ], className="toolbar"),
        how_to="Save stores everything this tab holds — book, market, stress grid, account and margin "
               "parameters, Liquidation and Exchange settings — under the name. Save overwrites the "
               "workspace this tab opened (refused if someone saved it meanwhile); Save as new always "
               "makes a new one. Without saving, the tab's state is still kept in this browser: a "
               "reload or a new tab continues where you were. Undo (Ctrl+Z) also undoes an open.",
    )


def _saved():
    return panel(
        "Saved workspaces",
        html.Div([
            html.Button("Open", id=ids.WS_OPEN, className="button"),
            html.Button("Rename to the name above", id=ids.WS_RENAME, className="button secondary"),
            html.Button("Duplicate", id=ids.WS_DUPLICATE, className="button secondary"),
            dcc.ConfirmDialogProvider(html.Button("Delete", className="button danger"), id=ids.WS_DELETE_CONFIRM,
                                      message="Delete the selected workspace? This cannot be undone."),
        ], className="toolbar"),
        grid(ids.WS_GRID, COLUMNS, height=300, getRowId="params.data.id",
             dashGridOptions={"rowSelection": "single"}),
        how_to="Tick a workspace, then Open (replaces this tab's state; Ctrl+Z brings it back), "
               "Rename, Duplicate or Delete. The list shows this browser's workspaces (or, behind a "
               "login proxy, yours): nobody can list anyone else's.",
    )


def _share_and_file():
    return html.Div([
        panel(
            "Share a copy",
            html.Div([html.Button("Create a share link", id=ids.WS_SHARE, className="button"),
                      dcc.Input(id=ids.WS_SHARE_LINK, readOnly=True, className="input wide ws-link",
                                placeholder="the link appears here"),
                      dcc.Clipboard(target_id=ids.WS_SHARE_LINK, id=ids.WS_SHARE_COPY, title="copy the link")],
                     className="toolbar"),
            how_to="The link opens a frozen copy of this tab's current state in the viewer's own tab; "
                   "whatever they change stays theirs. It carries a random 256-bit token and "
                   "nothing else: it cannot be guessed, and it shows only this snapshot.",
        ),
        panel(
            "Session file",
            html.Div([html.Button("Download the session file", id=ids.WS_FILE_DOWNLOAD_BUTTON,
                                  className="button secondary"),
                      dcc.Download(id=ids.WS_FILE_DOWNLOAD)], className="toolbar"),
            dcc.Upload(id=ids.WS_FILE_UPLOAD, className="dropzone", accept=".json,application/json",
                       max_size=payload.MAX_PAYLOAD_BYTES,
                       children=html.Div(["Drop a session file here, or ", html.A("choose one"),
                                 f" ({guard.size_text(payload.MAX_PAYLOAD_BYTES)})"])),
            how_to=f"One JSON file with the whole state (format version {payload.PAYLOAD_VERSION}; "
                   "older versions open too). An uploaded file is checked part by part like every "
                   f"edit; a damaged file or one above {payload.MAX_PAYLOAD_BYTES / 1e6:g} MB is refused "
                   "and this tab keeps its state.",
        ),
    ], className="row two")


def layout(**_query):
    where = store.database_location(web.workspace_store().engine)
    return html.Div([
        dcc.Store(id=ids.WS_GATHER, storage_type="memory"),
        dcc.Store(id=ids.WS_PAGE_STORE_IDS, storage_type="memory", data=list(payload.PAGE_STORES)),
        html.Div(id=ids.WS_MESSAGE, **LIVE),
        _this_tab(),
        _saved(),
        _share_and_file(),
        html.P(["Workspaces are stored in ", html.Code(where), " (PMDASH_DATABASE_URL / PMDASH_DATA_DIR, "
                "see docs/workspaces.md)."], id=ids.WS_WHERE, className="ws-note"),
    ], className="page")


# ----------------------------------------------------------------------------- helpers


def rows(owner_key) -> list[dict]:
    return [{"id": w.id, "name": w.name, "updated": w.updated.strftime("%Y-%m-%d %H:%M"),
             "revision": w.revision, "size_kb": round(w.size / 1000, 1)}
            for w in web.workspace_store().list(web.owner(owner_key))]


def _selected(selected) -> str:
    if not selected:
        raise store.WorkspaceError("tick a workspace in the list first")
    return selected[0]["id"]


def _opened(raw: bytes, source: str, history_value, current: dict):
    """(load package, message) of a document from outside; refused: no package, the problems."""
    opened = payload.open_document(raw, source)
    if opened.payload is None:
        return no_update, message(opened.problems)
    return web.load_package(opened.payload, history_value, current, after_load()), message(note=f"opening {source} …")


# ----------------------------------------------------------------------------- callbacks


@callback(Output(ids.WS_GRID, "rowData"), Output(ids.WS_CURRENT_NOTE, "children"), Output(ids.WS_NAME, "value"),
          Input(ids.WS_OWNER, "data"), Input(ids.WS_CURRENT, "data"), State(ids.WS_NAME, "value"))
def show(owner_key, current, name):
    current = current or {}
    if current.get("id"):
        note = [html.B(current["name"]), f" — saved workspace, revision {current['revision']}: Save overwrites it."]
    elif current.get("name"):
        note = [html.B(current["name"]), " — not saved: Save keeps it as a new workspace."]
    else:
        note = "Unsaved work: Save keeps it as a new workspace."
    try:
        listed = rows(owner_key)
    except (store.WorkspaceError, SQLAlchemyError):
        listed = []
    return listed, note, name or current.get("name") or no_update


clientside_callback(
    dash.ClientsideFunction("pmdashWorkspaces", "gather"),
    Output(ids.WS_GATHER, "data"),
    Input(ids.WS_SAVE, "n_clicks"), Input(ids.WS_SAVE_NEW, "n_clicks"), Input(ids.WS_SHARE, "n_clicks"),
    Input(ids.WS_FILE_DOWNLOAD_BUTTON, "n_clicks"), State(ids.WS_PAGE_STORE_IDS, "data"),
    prevent_initial_call=True)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower() or "workspace"


def act(gathered: dict, book, market, settings, acct, name, owner_key, current):
    """Save, save as new, share or download the tab's state (gathered: the page stores' values
    read in the browser).  Returns (message, current, share link, download, rows)."""
    current = current or {}
    doc = payload.from_stores({ids.BOOK_STORE: book, ids.MARKET_STORE: market, ids.SETTINGS_STORE: settings,
                               ids.ACCOUNT_STORE: acct, **(gathered.get("pages") or {})})
    raw = payload.encode(doc)
    name = " ".join(str(name or "").split()) or current.get("name") or book.get("name") or "workspace"
    action = gathered.get("action")
    repo = web.workspace_store()
    if action == ids.WS_FILE_DOWNLOAD_BUTTON:
        return (message(note=f"session file of '{name}' ({len(raw) / 1000:,.1f} kB)"), no_update, no_update,
                dcc.send_bytes(raw, f"{_slug(name)}.pmdash.json"), no_update)
    if action == ids.WS_SHARE:
        token = repo.share(name, raw, payload.PAYLOAD_VERSION)
        return (message(note="share link created: it opens a copy of the state as it is now"), no_update,
                web.share_url(token), no_update, no_update)
    who = web.owner(owner_key)
    if action == ids.WS_SAVE and current.get("id"):
        info = repo.save(who, current["id"], raw, payload.PAYLOAD_VERSION, current.get("revision"))
        if name != info.name:
            info = repo.rename(who, info.id, name)
        note = f"saved '{info.name}' (revision {info.revision})"
    else:
        info = repo.create(who, name, raw, payload.PAYLOAD_VERSION)
        note = f"saved as a new workspace '{info.name}'"
    new_current = {"id": info.id, "name": info.name, "revision": info.revision, "source": "workspace"}
    return message(note=note), new_current, no_update, no_update, rows(owner_key)


@callback(Output(ids.WS_MESSAGE, "children", allow_duplicate=True),
          Output(ids.WS_CURRENT, "data", allow_duplicate=True),
          Output(ids.WS_SHARE_LINK, "value"), Output(ids.WS_FILE_DOWNLOAD, "data"),
          Output(ids.WS_GRID, "rowData", allow_duplicate=True),
          Input(ids.WS_GATHER, "data"), *SHELL_STATES, State(ids.WS_NAME, "value"), State(ids.WS_OWNER, "data"),
          State(ids.WS_CURRENT, "data"), prevent_initial_call=True)
def act_callback(gathered, book, market, settings, acct, name, owner_key, current):
    user_action(gathered)
    try:
        return act(gathered, book, market, settings, acct, name, owner_key, current)
    except store.WorkspaceError as exc:
        return message([str(exc)]), no_update, no_update, no_update, no_update
    except SQLAlchemyError as exc:
        return message([f"the workspace database failed, nothing was saved: {exc}"]), *(no_update,) * 4


def manage(action: str, selected, name, owner_key, current):
    """Rename, duplicate or delete the ticked workspace: (message, current, rows)."""
    repo, who = web.workspace_store(), web.owner(owner_key)
    workspace_id = _selected(selected)
    current = current or {}
    new_current = no_update
    if action == ids.WS_RENAME:
        info = repo.rename(who, workspace_id, name)
        note = f"renamed to '{info.name}'"
        if current.get("id") == info.id:
            new_current = dict(current, name=info.name)
    elif action == ids.WS_DUPLICATE:
        info = repo.duplicate(who, workspace_id)
        note = f"duplicated as '{info.name}'"
    else:
        gone = repo.delete(who, workspace_id)
        note = f"deleted '{gone}'"
        if current.get("id") == workspace_id:
            new_current = {"id": None, "name": current.get("name"), "revision": None, "source": "deleted"}
    return message(note=note), new_current, rows(owner_key)


@callback(Output(ids.WS_MESSAGE, "children", allow_duplicate=True),
          Output(ids.WS_CURRENT, "data", allow_duplicate=True),
          Output(ids.WS_GRID, "rowData", allow_duplicate=True),
          Input(ids.WS_RENAME, "n_clicks"), Input(ids.WS_DUPLICATE, "n_clicks"),
          Input(ids.WS_DELETE_CONFIRM, "submit_n_clicks"), State(ids.WS_GRID, "selectedRows"),
          State(ids.WS_NAME, "value"), State(ids.WS_OWNER, "data"), State(ids.WS_CURRENT, "data"),
          prevent_initial_call=True)
def manage_callback(rename, duplicate, delete, selected, name, owner_key, current):
    user_action(rename or duplicate or delete)
    action = ids.WS_DELETE if ctx.triggered_id == ids.WS_DELETE_CONFIRM else ctx.triggered_id
    try:
        return manage(action, selected, name, owner_key, current)
    except (store.WorkspaceError, SQLAlchemyError) as exc:
        return message([str(exc)]), no_update, no_update


def open_saved(selected, owner_key, history_value):
    """(load package, message) of the ticked workspace."""
    info, document = web.workspace_store().load(web.owner(owner_key), _selected(selected))
    current = {"id": info.id, "name": info.name, "revision": info.revision, "source": "workspace"}
    return _opened(document.payload, f"workspace '{info.name}'", history_value, current)


@callback(Output(ids.WS_LOAD, "data", allow_duplicate=True), Output(ids.WS_MESSAGE, "children", allow_duplicate=True),
          Input(ids.WS_OPEN, "n_clicks"), State(ids.WS_GRID, "selectedRows"), State(ids.WS_OWNER, "data"),
          State(ids.WS_HISTORY, "data"), prevent_initial_call=True)
def open_callback(n_clicks, selected, owner_key, history_value):
    user_action(n_clicks)
    try:
        return open_saved(selected, owner_key, history_value)
    except (store.WorkspaceError, SQLAlchemyError) as exc:
        return no_update, message([str(exc)])


def upload_session_file(contents: str, filename: str, history_value):
    """(load package, message) of an uploaded session file; refused: the tab keeps its state."""
    try:
        raw = upload_bytes(contents)
    except ValueError:
        return no_update, message([f"{filename}: not a readable file: nothing was opened"])
    name = re.sub(r"(\.pmdash)?\.json$", "", filename or "session file", flags=re.IGNORECASE)
    return _opened(raw, filename or "the session file", history_value,
                   {"id": None, "name": name, "revision": None, "source": "file"})


@callback(Output(ids.WS_LOAD, "data", allow_duplicate=True), Output(ids.WS_MESSAGE, "children", allow_duplicate=True),
          Output(ids.WS_FILE_UPLOAD, "contents"), Input(ids.WS_FILE_UPLOAD, "contents"),
          State(ids.WS_FILE_UPLOAD, "filename"), State(ids.WS_HISTORY, "data"), prevent_initial_call=True)
def upload_callback(contents, filename, history_value):
    user_action(contents)
    return (*upload_session_file(contents, filename, history_value), None)


def open_share(url_hash: str, history_value):
    """(load package, message) for ``#share=<token>`` (where ``/s/<token>`` redirects)."""
    token = (url_hash or "").removeprefix("#share=")
    if not url_hash or not url_hash.startswith("#share="):
        return no_update, no_update
    document = web.workspace_store().open_share(token)
    if document is None:
        return no_update, message(["this share link is not valid (mistyped, or the snapshot was removed)"])
    return _opened(document.payload, f"the shared snapshot '{document.name}'", history_value,
                   {"id": None, "name": f"{document.name} (shared copy)", "revision": None, "source": "share"})


@callback(Output(ids.WS_LOAD, "data", allow_duplicate=True), Output(ids.WS_MESSAGE, "children", allow_duplicate=True),
          Input(ids.WS_PAGE_STORE_IDS, "data"), State(ids.URL, "hash"), State(ids.WS_HISTORY, "data"),
          prevent_initial_call="initial_duplicate")
def share_callback(_page_shown, url_hash, history_value):
    """Runs when this page is shown (its own store is the input, so never on another page)."""
    return open_share(url_hash, history_value)


@callback(Output(ids.WS_LOAD, "data", allow_duplicate=True), Input(ids.WS_DEMO, "n_clicks"),
          State(ids.WS_HISTORY, "data"), prevent_initial_call=True)
def demo_callback(n_clicks, history_value):
    user_action(n_clicks)
    return web.load_package(payload.default_payload(), history_value,
                            {"id": None, "name": "demo desk book", "revision": None, "source": "demo"}, after_load())
