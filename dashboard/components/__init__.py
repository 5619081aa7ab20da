"""Layout pieces several pages use: titled panels, messages, grids and their columns, the busy
spinner, the upload error table, the account-health strip (:mod:`.health`).  A component is a function from plain values
to Dash components; it reads no store itself."""
from .blocks import BUSY_AFTER_MS, KEEP, LIVE, busy, committed, message, panel, user_action
from .grids import RISK_COLUMNS, frame_rows, grid, number_column
from .uploads import error_table

__all__ = ["BUSY_AFTER_MS", "KEEP", "LIVE", "RISK_COLUMNS", "busy", "committed", "error_table", "frame_rows", "grid",
           "message", "number_column", "panel", "user_action"]
