"""Undo and redo of the book, the market and the account, as pure functions on JSON.

The history is one JSON value (``ids.WS_HISTORY``, session storage, so it survives a reload)::

    {"present": {"book": …, "market": …, "account": …} or null,
     "past":   [step, …],   # oldest first; undo takes the last
     "future": [step, …]}   # redo takes the last

A *step* records what one change did, part by part: ``{part: {key: change}}`` over the
top-level keys of that store value.  A change is ``{"old": …, "new": …}`` (a side is absent when
the key was), or for two lists ``{"at": i, "old": […], "new": […]}``: the slice that differs
between their common head and tail.  Editing one cell of a 200-position book thus records one
row twice, not the book twice, which keeps the history small enough to travel with a callback
and to live in the tab's session storage.

:func:`record` is called with the current store values after every change; it compares them
with ``present`` and appends a step when they differ (a change made by :func:`undo` or
:func:`redo` itself equals ``present`` and records nothing).  At most :data:`MAX_STEPS` steps
are kept, and fewer when they would exceed :data:`MAX_CHARS` of JSON (only whole-book
replacements of large books come near: 50 of a 200-position book are ~2 MB).
"""
from __future__ import annotations

import copy

import orjson

PARTS = ("book", "market", "account")
MAX_STEPS = 100
MAX_CHARS = 2_500_000


def empty() -> dict:
    return {"present": None, "past": [], "future": []}


def _splice(old: list, new: list) -> dict:
    head = 0
    while head < min(len(old), len(new)) and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < min(len(old), len(new)) - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    return {"at": head, "old": old[head:len(old) - tail], "new": new[head:len(new) - tail]}


def diff(before: dict, after: dict) -> dict:
    """``{key: change}`` turning ``before`` into ``after`` (top-level keys)."""
    changes = {}
    for key in list(before) + [k for k in after if k not in before]:
        if key in before and key in after:
            if before[key] == after[key]:
                continue
            if isinstance(before[key], list) and isinstance(after[key], list):
                changes[key] = _splice(before[key], after[key])
                continue
        change = {}
        if key in before:
            change["old"] = before[key]
        if key in after:
            change["new"] = after[key]
        changes[key] = change
    return changes


def apply(value: dict, changes: dict, forward: bool = True) -> dict:
    """``value`` with ``changes`` applied (``forward=False``: undone)."""
    result = dict(value)
    src, dst = ("old", "new") if forward else ("new", "old")
    for key, change in changes.items():
        if "at" in change:
            at = change["at"]
            items = list(result[key])
            items[at:at + len(change[src])] = copy.deepcopy(change[dst])
            result[key] = items
        elif dst in change:
            result[key] = copy.deepcopy(change[dst])
        else:
            result.pop(key, None)
    return result


def _size(steps: list) -> int:
    return len(orjson.dumps(steps))


def record(history: dict | None, current: dict) -> dict:
    """The history after the stores became ``current`` (``{part: value}`` for :data:`PARTS`);
    the same object when nothing changed."""
    history = history or empty()
    present = history.get("present")
    if present is None:
        return {"present": current, "past": [], "future": []}
    step = {part: diff(present[part], current[part]) for part in PARTS if present.get(part) != current[part]}
    if not step:
        return history
    past = (history["past"] + [step])[-MAX_STEPS:]
    while len(past) > 1 and _size(past) > MAX_CHARS:
        past = past[1:]
    return {"present": current, "past": past, "future": []}


def undo(history: dict | None) -> tuple[dict, dict] | None:
    """(history, store values to restore) one step back, or None when there is nothing to undo."""
    if not history or not history["past"] or history.get("present") is None:
        return None
    step = history["past"][-1]
    restored = dict(history["present"])
    for part, changes in step.items():
        restored[part] = apply(restored[part], changes, forward=False)
    return {"present": restored, "past": history["past"][:-1], "future": history["future"] + [step]}, restored


def redo(history: dict | None) -> tuple[dict, dict] | None:
    """(history, store values to restore) one step forward, or None when there is nothing to redo."""
    if not history or not history["future"] or history.get("present") is None:
        return None
    step = history["future"][-1]
    restored = dict(history["present"])
    for part, changes in step.items():
        restored[part] = apply(restored[part], changes, forward=True)
    return {"present": restored, "past": history["past"] + [step], "future": history["future"][:-1]}, restored
