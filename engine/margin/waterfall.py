"""The initial margin built up step by step: each model's pieces in the order its formula applies
them (docs/methodology.md §6), for the IM waterfall of a :class:`~.result.MarginResult`.

Steps are computed per underlying from the stand-alone components (``by_underlying``) and summed;
a floor or minimum counts only by how much it raises the requirement, a multiplier by what it
adds.  For the additive models (standard, SIMM-style) the steps are the components themselves.
What no step explains (a model whose IM is not rebuilt here) is a last "other" step, so the steps
always add up to the IM.

    risk-based   IM_u = f·max(max(L, F) + delta + roll, minimum) + add-ons
    SPAN         IM_u = m·max(scanning risk + spread charge, short option minimum)
    TIMS         IM_u = m·max(worst loss, option minimum)
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

#: Readable names of components that are steps as they are.
COMPONENT_LABELS = {"short_options": "short options", "futures_perps": "futures and perps",
                    "delta_margin": "delta margin", "vega_margin": "vega margin",
                    "curvature_margin": "curvature margin"}
OTHER = "other (model combination)"


def _risk_based(u: Mapping[str, np.ndarray], p) -> list[tuple[str, np.ndarray]]:
    loss = np.maximum(u["scenario_loss"], u["forward_floor"])
    stressed = loss + u["delta_shock"] + u["roll_shock"]
    core = np.maximum(stressed, u["minimum"])
    return [("worst scenario loss", u["scenario_loss"]),
            ("forward floor (above the scenario loss)", loss - u["scenario_loss"]),
            ("delta shock", u["delta_shock"]),
            ("roll shock", u["roll_shock"]),
            ("minimum charge (above the losses)", core - stressed),
            (f"IM factor ×{p.im_factor:g}", (p.im_factor - 1.0) * core),
            ("perp contingency", u["perp_contingency"]),
            ("naked-short option contingency", u["option_contingency"])]


def _span(u: Mapping[str, np.ndarray], p) -> list[tuple[str, np.ndarray]]:
    scan = u["scanning_risk"] + u["calendar_spread_charge"]
    requirement = np.maximum(scan, u["short_option_minimum"])
    return [("scanning risk", u["scanning_risk"]),
            ("calendar spread charge", u["calendar_spread_charge"]),
            ("short option minimum (above the scan)", requirement - scan),
            (f"initial multiplier ×{p.initial_multiplier:g}", (p.initial_multiplier - 1.0) * requirement)]


def _tims(u: Mapping[str, np.ndarray], p) -> list[tuple[str, np.ndarray]]:
    requirement = np.maximum(u["worst_loss"], u["option_minimum"])
    return [("worst loss over the range", u["worst_loss"]),
            ("option minimum (above the loss)", requirement - u["worst_loss"]),
            (f"initial multiplier ×{p.initial_multiplier:g}", (p.initial_multiplier - 1.0) * requirement)]


#: Models whose IM is not the plain sum of their components, and how it is built up.
RULES: dict[str, Callable[[Mapping[str, np.ndarray], object], list[tuple[str, np.ndarray]]]] = {
    "risk_based": _risk_based, "span": _span, "tims": _tims}


def im_steps(model: str, params, initial: float, components: dict,
             by_underlying: pd.DataFrame) -> tuple[tuple[str, float], ...]:
    """(label, USD) steps that add up to ``initial``, in the order the model's formula applies
    them (module docstring); a remainder above 1e-6 of the IM is the last step, ``OTHER``.

    >>> im_steps("greeks_based", None, 12.0, {"delta_margin": 4.0, "vega_margin": 6.0}, pd.DataFrame())
    (('delta margin', 4.0), ('vega margin', 6.0), ('other (model combination)', 2.0))
    """
    rule = RULES.get(model)
    if rule is None:
        steps = [(COMPONENT_LABELS.get(k, k.replace("_", " ")), float(v)) for k, v in components.items()]
    else:  # the rules on plain arrays: pandas' per-operation overhead is most of their cost
        columns = {c: by_underlying[c].to_numpy(dtype=float) for c in by_underlying.columns if c != "underlying"}
        steps = [(k, float(np.sum(v))) for k, v in rule(columns, params)]
    rest = initial - sum(v for _, v in steps)
    if abs(rest) > 1e-6 * max(initial, 1.0):
        steps.append((OTHER, rest))
    return tuple(steps)
