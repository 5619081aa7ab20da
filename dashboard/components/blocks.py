"""Small layout pieces every page uses: a titled panel, the message under an editor, the busy
spinner, and the guard that keeps store writers from running on page arrival."""
from __future__ import annotations

from typing import Any

from dash import dcc, html, no_update
from dash.exceptions import PreventUpdate

from ..stores.session import Outcome

#: Keyword arguments of a control whose value survives a page change and a reload of the tab
#: (``**KEEP``); typed ``Any`` so that it unpacks into any component's keyword arguments.
KEEP: dict[str, Any] = {"persistence": True, "persistence_type": "session"}
#: Keyword arguments of a region whose changes a screen reader announces (``**LIVE``): messages.
LIVE: dict[str, Any] = {"aria-live": "polite"}


def panel(title: str, *children, how_to: str | None = None, className: str = "",
          how_to_folded: bool = False) -> html.Section:
    """A titled card; ``how_to`` is the short "how to read this" for trainers under the content
    (``how_to_folded``: behind a click, where the page needs the height)."""
    body = [html.H3(title, className="panel-title"), *children]
    if how_to and how_to_folded:
        body.append(html.Details([html.Summary("How to read this"), how_to], className="how-to"))
    elif how_to:
        body.append(html.P([html.Strong("How to read this: "), how_to], className="how-to"))
    return html.Section(body, className=f"panel {className}".strip())


def message(problems=(), note: str = "", warnings=()) -> html.Div | str:
    """Problems as a red list (each names its row or field), else a quiet green note, with any
    ``warnings`` (what was applied but deserves a look) as an amber list under it."""
    if problems:
        return html.Div([html.Ul([html.Li(p) for p in problems])], className="msg msg-error", role="alert")
    if warnings:
        return html.Div([html.Div(note), html.Ul([html.Li(w) for w in warnings])], className="msg msg-warning",
                        role="status")
    return html.Div(note, className="msg msg-ok") if note else ""


def committed(outcome: Outcome, current: dict | None = None) -> tuple:
    """(store value, message) of a transition's ``outcome``.

    Refused (``outcome.data`` None): the store stays as it was (``no_update``) beside the problems.
    Applied: the new value, its note and, under it, what the transition warns about (the problems
    of an applied outcome).  With ``current`` (writers that also run when their page is shown,
    with the controls' persisted values) an unchanged value writes nothing and shows only those
    warnings."""
    if outcome.data is None:
        return no_update, message(outcome.problems, outcome.note)
    if current is not None and outcome.data == current:
        return no_update, message(outcome.problems)
    if outcome.problems:
        return outcome.data, html.Div([message((), outcome.note), message(outcome.problems)])
    return outcome.data, message((), outcome.note)


#: Work longer than this shows a spinner over the old figures, dimmed as stale (the CSS rule on
#: ``data-dash-is-loading`` dims any other output after the same delay).
BUSY_AFTER_MS = 500


def busy(child) -> dcc.Loading:
    """``child`` (a figure, a grid, cards) behind a spinner once a computation for it takes over
    :data:`BUSY_AFTER_MS`; the last figures stay visible, dimmed, so that nobody reads them as
    the current ones."""
    return dcc.Loading(child, type="circle", delay_show=BUSY_AFTER_MS, color="#1f6feb",
                       overlay_style={"visibility": "visible", "opacity": 0.4, "filter": "grayscale(0.6)"})


def user_action(trigger) -> None:
    """Stop a store-writing callback that was not triggered by the user.

    Dash honours ``prevent_initial_call`` only when a callback's outputs arrive in the layout with
    its inputs; a page's buttons and grids arrive with the page while the stores live in the
    shell, so their writers also run each time the page is shown, with an empty trigger
    (``n_clicks`` None, ``cellValueChanged`` None).  Without this they would, e.g., reload the
    demo book on every visit.
    """
    if not trigger:
        raise PreventUpdate
