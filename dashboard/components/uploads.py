"""The per-row error table of a refused (or partly refused) upload."""
from __future__ import annotations

from dash import html

from ..stores.session import row_place

#: Errors listed in full; beyond this a line says how many more there are.
SHOWN_ERRORS = 200


def error_table(errors: list[dict], csv: bool) -> list:
    """Upload errors (``{"row", "field", "message"}``, row 0 the file as a whole) as a table with
    where each is (a CSV's line, a JSON list's entry), the first :data:`SHOWN_ERRORS` of them,
    and a line saying how many more there are."""
    shown = errors[:SHOWN_ERRORS]
    table = html.Table([
        html.Thead(html.Tr([html.Th("Where"), html.Th("Field"), html.Th("Problem")])),
        html.Tbody([html.Tr([html.Td(row_place(e["row"], csv)), html.Td(e["field"]), html.Td(e["message"])])
                    for e in shown]),
    ], className="error-table")
    return [table, *([html.P(f"… and {len(errors) - len(shown)} more.")] if len(errors) > len(shown) else [])]
