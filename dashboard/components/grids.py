"""AG Grid with the house defaults, its number columns, and frames as grid rows."""
from __future__ import annotations

import math

import dash_ag_grid as dag
import pandas as pd


def _fmt(spec: str) -> dict:
    """AG Grid value formatter with a d3 format; empty cells stay empty."""
    return {"function": f"params.value == null ? '' : d3.format('{spec}')(params.value)"}


def number_column(field: str, header: str, spec: str = ",.0f", **extra) -> dict:
    return {"field": field, "headerName": header, "type": "rightAligned",
            "valueFormatter": _fmt(spec), "filter": "agNumberColumnFilter", **extra}


#: Mark, value, P&L and Greeks of a position, as the engine computes them (docs/methodology.md §4 units).
RISK_COLUMNS = [
    {"field": "kind", "headerName": "Kind", "width": 100},
    {"field": "expiry", "headerName": "Expiry", "width": 115},
    number_column("mark", "Mark (USD)", ",.2f"),
    number_column("value", "Value (USD)"),
    number_column("pnl", "P&L vs entry (USD)"),
    number_column("delta_usd", "$delta (USD)"),
    number_column("gamma_usd_1pct", "Gamma (USD/1 %)"),
    number_column("vega_per_vol_pt", "Vega (USD/vol pt)"),
    number_column("theta_per_day", "Theta (USD/day)"),
]


def grid(grid_id: str, column_defs: list[dict], height: int | None = 420, filters: bool = True,
         **props) -> dag.AgGrid:
    """An AG Grid with the house defaults: sortable, resizable columns with wrapped headers,
    compact rows, column filters unless ``filters=False`` (short tables); ``height=None`` sizes
    the grid to its rows."""
    options = {"animateRows": False, "rowHeight": 34, **props.pop("dashGridOptions", {})}
    if height is None:
        options["domLayout"] = "autoHeight"
    return dag.AgGrid(
        id=grid_id, columnDefs=column_defs, rowData=[],
        defaultColDef={"sortable": True, "resizable": True, "filter": filters, "minWidth": 80,
                       "suppressHeaderMenuButton": not filters, "wrapHeaderText": True,
                       "autoHeaderHeight": True},
        dashGridOptions=options, className="grid",
        style={"width": "100%"} if height is None else {"height": f"{height}px", "width": "100%"},
        **props)


def frame_rows(frame: pd.DataFrame) -> list[dict]:
    """JSON rows of a frame: NaN (no entry price, no strike) becomes an empty cell."""
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
            for row in frame.to_dict("records")]
