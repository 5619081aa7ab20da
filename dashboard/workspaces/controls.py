"""The page controls that show an opened document's settings.

The Stress, Liquidation and Exchange pages write their stores *from* their controls, also when
the page is shown, and the controls keep their values through Dash's session persistence.  An
opened document therefore sets those controls too: for each one it writes the entry Dash's
renderer reads when the page is next shown, ``sessionStorage["_dash_persistence.<id>.value.true"]
= [shown value, layout value]`` (the renderer applies it only while the layout value is unchanged).
The page's writer then sees the document's values and leaves its store as it is.
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict

import dash

from .. import ids
from ..stores import liquidation as liquidation_state

PERSISTENCE_PREFIX = "_dash_persistence."
#: A layout component without a ``value`` (an empty input): its entry then has no layout value.
NO_VALUE = object()


def _shown(x: float, scale: float = 1.0) -> float:
    return round(x / scale, 10)


def control_values(doc: dict) -> list[tuple[str | dict, object]]:
    """(control id, value it shows) of every control that writes a document's page settings."""
    s, liq, ex = doc["settings"], doc["liquidation"], doc["exchange"]["settings"]
    values: list[tuple[str | dict, object]] = [
        (ids.SPOT_RANGE, _shown(s["spot_range"], 0.01)), (ids.SPOT_STEPS, s["spot_steps"]),
        (ids.VOL_RANGE, _shown(s["vol_range"], 0.01)), (ids.VOL_STEPS, s["vol_steps"]),
        (ids.HORIZONS, ", ".join(f"{d:g}" for d in s["horizons_days"])),
        (ids.LIQ_STRESS_MODE, liq["stress"]["mode"]), (ids.LIQ_SHOCK, _shown(liq["stress"]["spot_shock"], 0.01)),
        (ids.LIQ_COLLATERAL, liq["stress"]["collateral"]),
        (ids.EX_ACCOUNTS, ex["n_accounts"]), (ids.EX_SEED, ex["seed"]), (ids.EX_SHOCK, _shown(ex["spot_shock"], 0.01)),
        (ids.EX_TOP_N, ex["top_n"]), (ids.EX_IMPACT_K, ex["impact_k"]), (ids.EX_TURNOVER, ex["turnover"]),
        (ids.EX_ROUNDS, ex["max_rounds"]),
    ]
    params = liq["params"]
    preset = next((k for k, p in liquidation_state.AUCTION_PRESETS.items() if asdict(p) == params["auction"]),
                  "custom")
    values.append((ids.LIQ_AUCTION_PRESET, preset))
    for f in liquidation_state.FIELDS:
        section, *path = f.name.split(".")
        value = params[section]
        for key in path:
            value = value[key]
        shown = int(round(float(value) / f.scale)) if f.whole or f.choices else _shown(float(value), f.scale)
        values.append(({"type": ids.LIQ_PARAM, "name": f.name}, shown))
    return values


def stringify_id(component_id) -> str:
    """The renderer's string form of an id (dict ids: keys sorted, compact JSON)."""
    if not isinstance(component_id, dict):
        return str(component_id)
    return "{" + ",".join(f"{json.dumps(k)}:{json.dumps(component_id[k])}" for k in sorted(component_id)) + "}"


def layout_values() -> dict[str, object]:
    """{stringified id: layout ``value``} of the registered pages' components."""
    found = {}
    for page in dash.page_registry.values():
        layout = getattr(sys.modules.get(page["module"]), "layout", None)
        if layout is None or callable(layout):
            continue
        for component in [layout, *layout._traverse()]:
            cid = getattr(component, "id", None)
            if cid is not None:
                found[stringify_id(cid)] = getattr(component, "value", NO_VALUE)
    return found


def persistence_entries(doc: dict, originals: dict[str, object] | None = None) -> dict[str, list]:
    """``{sessionStorage key: [value, layout value]}`` for the controls whose shown value differs
    from the layout's (the others need no entry); controls not in any layout are skipped."""
    originals = layout_values() if originals is None else originals
    entries = {}
    for component_id, value in control_values(doc):
        key = stringify_id(component_id)
        if key not in originals or originals[key] == value:
            continue
        original = originals[key]
        if original is NO_VALUE and value is None:
            continue
        entries[f"{PERSISTENCE_PREFIX}{key}.value.true"] = [value] if original is NO_VALUE else [value, original]
    return entries
