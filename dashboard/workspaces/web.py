"""Workspaces in the app: the shell's undo/redo strip and stores, the share route, and the
package that loads a document into a tab.

Shell stores (in :func:`history_strip`, one of ``layout.HEADER_STRIPS``):

* ``WS_HISTORY`` (session): the undo history of ``history``.
* ``WS_CURRENT`` (session): ``{"id", "name", "revision", "source"}`` — the workspace this tab
  opened (``id`` None for the demo, a shared copy or a session file: Save then creates one).
* ``WS_OWNER`` (local): a random key made by ``assets/workspaces.js`` on the browser's first
  visit; it says whose workspaces a listing shows when no reverse-proxy user is set (see
  :func:`owner`).
* ``WS_LOAD`` (memory): a *load package* (:func:`load_package`).  Loading is done in the browser
  (``assets/workspaces.js``): it writes every store and the page controls' persisted values into
  the tab's session storage and reloads the app, so each page — also one not shown now — starts
  from the opened document.  The package carries the undo history with the load recorded, so
  opening a workspace (or the demo, a share, a file) is undone like any edit.

Autosave: ``assets/workspaces.js`` copies those session-storage entries to local storage every
few seconds and when the tab is hidden or closed; a new tab starts from that copy (the last
state of any tab), not from the demo book.  A copy written by another document version is not
copied as it is: the script puts it in ``WS_RESTORE`` (session) and :func:`restore_autosave`
upgrades and checks it like any document, then loads it.
"""
from __future__ import annotations

import hashlib
import os

import dash
import orjson
from dash import Input, Output, State, dcc, html, no_update
from dash.exceptions import PreventUpdate
from flask import Response, current_app, has_request_context, redirect, request

from .. import ids
from . import controls, history, payload
from .store import WorkspaceError, WorkspaceStore

EXTENSION = "pmdash_workspaces"
#: Name of the request header carrying the authenticated user, set by a reverse proxy.
USER_HEADER_ENV = "PMDASH_USER_HEADER"
HISTORY_STORES = {"book": ids.BOOK_STORE, "market": ids.MARKET_STORE, "account": ids.ACCOUNT_STORE}


def init_app(app: dash.Dash, store: WorkspaceStore | None = None) -> WorkspaceStore:
    """Open the workspace database (schema created or migrated now, at start-up) and register
    the share route ``/s/<token>`` on the app's server."""
    store = store or WorkspaceStore.open()
    server = app.server
    server.extensions[EXTENSION] = store
    prefix = app.config.requests_pathname_prefix

    def open_share_link(token: str):
        headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
        if store.open_share(token) is None:
            return Response("<!doctype html><title>Link not found</title><p>This share link is not valid "
                            "(mistyped, or the snapshot was removed).</p>", 404, headers, mimetype="text/html")
        response = redirect(f"{prefix}workspaces#share={token}", code=303)
        response.headers.update(headers)
        return response

    server.add_url_rule("/s/<token>", "pmdash_share", open_share_link)
    return store


def workspace_store() -> WorkspaceStore:
    return current_app.extensions[EXTENSION]


def owner(browser_key) -> str:
    """Whose workspaces: the user named by the ``PMDASH_USER_HEADER`` request header when the
    deployment sets one (behind an authenticating proxy), else this browser's random key."""
    header = os.environ.get(USER_HEADER_ENV)
    if header and has_request_context():
        user = (request.headers.get(header) or "").strip()
        if user:
            return "user:" + user[:100]
    if not isinstance(browser_key, str) or len(browser_key) < 16:
        raise WorkspaceError("this browser has no workspace key yet: reload the page")
    return "key:" + hashlib.sha256(browser_key.encode()).hexdigest()[:40]


def share_url(token: str) -> str:
    """The link of a share: under ``PMDASH_PUBLIC_URL`` when set (the address users reach the
    app at, behind a proxy), else the address of this request."""
    root = os.environ.get("PMDASH_PUBLIC_URL") or (request.host_url if has_request_context() else "")
    return f"{root.rstrip('/')}/s/{token}"


def load_package(doc: dict, history_value: dict | None, current: dict, target: str) -> dict:
    """What the browser writes into the tab's session storage to open ``doc``: every store,
    the undo history with this load as one step, the current-workspace note and the page
    controls' persisted values; then it goes to ``target``."""
    recorded = history.record(history_value, {part: doc[part] for part in history.PARTS})
    return {"stores": {**payload.to_stores(doc), ids.WS_HISTORY: recorded, ids.WS_CURRENT: current},
            "persistence": controls.persistence_entries(doc), "target": target}


# ----------------------------------------------------------------------------- shell


def history_strip() -> html.Div:
    """Undo / redo buttons and the current workspace, in the header of every page; it also
    holds the workspace stores of the shell."""
    return html.Div([
        dcc.Store(id=ids.WS_HISTORY, storage_type="session"),
        dcc.Store(id=ids.WS_CURRENT, storage_type="session"),
        dcc.Store(id=ids.WS_OWNER, storage_type="local"),
        dcc.Store(id=ids.WS_LOAD, storage_type="memory"),
        dcc.Store(id=ids.WS_RESTORE, storage_type="session"),
        html.Button("↶ Undo", id=ids.WS_UNDO, className="button secondary ws-history-button", disabled=True,
                    title="Undo the last change of the book, market or account (Ctrl+Z)"),
        html.Button("↷ Redo", id=ids.WS_REDO, className="button secondary ws-history-button", disabled=True,
                    title="Redo (Ctrl+Y or Ctrl+Shift+Z)"),
        dcc.Link(id=ids.WS_CURRENT_LABEL, href=dash.get_relative_path("/workspaces"), className="ws-current-label",
                 title="Workspaces: save, open, share, session file"),
    ], id=ids.WS_STRIP, className="strip ws-strip")


def current_label(current: dict | None) -> str:
    if not current or not current.get("name"):
        return "unsaved work"
    if current.get("id"):
        return f"workspace: {current['name']}"
    return f"{current['name']} (not saved)"


def record_change(book, market, acct, history_value):
    """Append the change of book, market or account to the history.  Dash also runs this when a
    tab starts; then it only sets ``present`` for a history that has none."""
    current = {"book": book, "market": market, "account": acct}
    if not dash.ctx.triggered_id and (history_value or {}).get("present") is not None:
        raise PreventUpdate
    recorded = history.record(history_value, current)
    if recorded is history_value:
        raise PreventUpdate
    return recorded


def step(undo_clicks, redo_clicks, history_value):
    """(book, market, account, history) one step back or forward; unchanged parts are not written."""
    move = history.undo if dash.ctx.triggered_id == ids.WS_UNDO else history.redo
    result = move(history_value)
    if result is None:
        raise PreventUpdate
    new_history, restored = result
    present = history_value["present"]
    values = [restored[p] if restored[p] != present[p] else no_update for p in HISTORY_STORES]
    return (*values, new_history)


def restore_autosave(saved, history_value):
    """The load package of an autosave written with another document version (``{"version",
    "items": {store id: JSON text}}``), upgraded and checked; None when there is none or it is
    refused (the tab then keeps the demo, and the stale copy is dropped)."""
    if not saved:
        raise PreventUpdate
    doc: dict = {"format": payload.FORMAT, "version": saved.get("version")}
    items = saved.get("items") if isinstance(saved.get("items"), dict) else {}
    try:
        for (part, sub), store_id in payload.STORES.items():
            if isinstance(items.get(store_id), str):
                value = orjson.loads(items[store_id])
                if sub is None:
                    doc[part] = value
                else:
                    doc.setdefault(part, {})[sub] = value
    except orjson.JSONDecodeError:
        return {"stores": {ids.WS_RESTORE: None}, "persistence": {}, "target": dash.get_relative_path("/")}
    defaults = payload.default_payload()
    for part in payload.SHELL_PARTS:  # a store the tab had not written yet starts at its default
        doc.setdefault(part, defaults[part])
    opened = payload.open_document(payload.encode(doc), "the autosaved state")
    if opened.payload is None:
        return {"stores": {ids.WS_RESTORE: None}, "persistence": {}, "target": dash.get_relative_path("/")}
    package = load_package(opened.payload, history_value,
                           {"id": None, "name": "autosaved work", "revision": None, "source": "autosave"},
                           dash.get_relative_path("/"))
    package["stores"][ids.WS_RESTORE] = None
    return package


def register_callbacks(app: dash.Dash) -> None:
    stores = [Input(store_id, "data") for store_id in HISTORY_STORES.values()]
    app.callback(Output(ids.WS_HISTORY, "data"), *stores, State(ids.WS_HISTORY, "data"))(record_change)
    app.callback(*(Output(s, "data", allow_duplicate=True) for s in HISTORY_STORES.values()),
                 Output(ids.WS_HISTORY, "data", allow_duplicate=True),
                 Input(ids.WS_UNDO, "n_clicks"), Input(ids.WS_REDO, "n_clicks"), State(ids.WS_HISTORY, "data"),
                 prevent_initial_call=True)(step)
    app.callback(Output(ids.WS_CURRENT_LABEL, "children"), Input(ids.WS_CURRENT, "data"))(current_label)
    app.callback(Output(ids.WS_LOAD, "data", allow_duplicate=True), Input(ids.WS_RESTORE, "data"),
                 State(ids.WS_HISTORY, "data"), prevent_initial_call="initial_duplicate")(restore_autosave)
    app.clientside_callback(
        dash.ClientsideFunction("pmdashWorkspaces", "historyButtons"),
        Output(ids.WS_UNDO, "disabled"), Output(ids.WS_REDO, "disabled"),
        Output(ids.WS_UNDO, "title"), Output(ids.WS_REDO, "title"), Input(ids.WS_HISTORY, "data"))
    app.clientside_callback(
        dash.ClientsideFunction("pmdashWorkspaces", "load"),
        Output(ids.WS_LOAD, "clear_data"), Input(ids.WS_LOAD, "data"), prevent_initial_call=True)
