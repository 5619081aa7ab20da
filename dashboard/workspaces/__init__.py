"""Work that lasts: saved workspaces in a database, share links, session files, autosave, undo.

* :mod:`.payload` — the whole state of a tab as one versioned JSON document, its upgrades and
  the checks a document from outside goes through;
* :mod:`.store` — workspaces and share snapshots in SQL (SQLAlchemy 2), schema version check;
* :mod:`.history` — undo / redo of the book, market and account as pure functions;
* :mod:`.controls` — the page controls an opened document sets;
* :mod:`.web` — the shell's undo strip and stores, the ``/s/<token>`` route, loading a document.

The page is ``dashboard/pages/workspaces.py``; the browser side ``assets/workspaces.js``.
See docs/workspaces.md.
"""
