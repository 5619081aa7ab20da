"""``MarginResult``: what every margin model returns (docs/methodology.md §6), and how it is assembled.

Attribution per position (``by_position``):

* ``marginal`` = requirement(book) − requirement(book without the position), USD.  For every
  model this is exact, whatever the non-additive pieces (worst-of scenarios, contingencies,
  minimums, square roots): the book without position p is the one-instrument variation
  (instrument i(p), change −q_p), so all P positions are evaluated at once by
  :func:`~engine.margin.core.evaluate_changes` — for a scenario model the P&L of "book without p"
  in every scenario is total P&L − q_p·P&L(i(p)), a (positions × scenarios) array, and the
  contingencies and minimums are recomputed from their own aggregates the same way.
* ``scaled`` sums to the total.  It is the Euler (gradient) allocation, q_p·∂R/∂q_p, taken by
  a one-sided finite difference: (R(book) − R(book with position p shrunk by ε))/ε, ε = 1e-4,
  all positions at once with the same one-instrument variations.  For a requirement that is
  homogeneous of degree 1 in the book (worst scenario loss, exposure-proportional
  contingencies) the contributions add up to R by Euler's theorem, and a hedge gets a negative
  share; what is not homogeneous (thresholds, fixed minimums) leaves a residual, removed by
  scaling the contributions to the total.  Unlike marginals scaled up to the total, this stays
  finite for hedged books whose marginals nearly cancel.  When the contributions sum to ≤ 0 the
  total is spread over the positive marginals, and equally when none is positive.
``marginal_mm``/``scaled_mm`` are the same for the maintenance requirement.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from .core import Kernel, MarginBook, evaluate_changes
from .waterfall import im_steps


@dataclass(frozen=True)
class MarginResult:
    """Requirements of one book under one model (USD).

    ``initial`` ≥ ``maintenance`` ≥ 0 (except a risk_based mm_factor above its im_factor, which
    Derive accepts).  ``components``: the named pieces of the model's formula
    (how they combine is the model's docstring; ``initial`` is authoritative).
    ``scenario_pnl``: the grid the model evaluated, one row per (underlying, scenario) with
    columns underlying, scenario (label), spot_shock, vol_direction (+1 up, 0, −1 down),
    vol_shock (absolute vol points; NaN where the shock is per option), weight, pnl, weighted_pnl,
    binding — empty for models without a grid.  ``binding_scenario``: underlying → label of its
    worst weighted scenario.  ``by_position``: position, instrument, underlying, quantity,
    marginal, scaled, marginal_mm, scaled_mm (see the module docstring).  ``by_underlying``:
    each underlying's stand-alone requirement and components.  ``details``: figures shown
    beside the requirement but not part of it (e.g. SPAN's net option value).  ``waterfall``:
    (label, amount) steps from the components to ``initial``, in the order the model's formula
    applies them (:func:`.waterfall.im_steps`).  ``currency``: the unit of every amount ("USD",
    or the coin of a coin-margined account).
    """

    model: str
    params: object
    initial: float
    maintenance: float
    components: dict
    scenario_pnl: pd.DataFrame
    binding_scenario: dict
    attribution: Attribution
    by_underlying: pd.DataFrame
    details: dict
    waterfall: tuple[tuple[str, float], ...] = ()
    currency: str = "USD"

    @cached_property
    def by_position(self) -> pd.DataFrame:
        """The attribution per position (module docstring), computed on first use: it evaluates
        the book once per position, which the figures of a recompute do not need."""
        return self.attribution.frame()


@dataclass(frozen=True)
class Attribution:
    """What the per-position attribution needs: the prepared model, the book, its requirement row
    (initial, maintenance, ...) and the factor applied to the amounts (USD → the account's coin)."""

    kernel: Kernel = field(repr=False)
    mb: MarginBook = field(repr=False)
    total: np.ndarray
    scale: float = 1.0

    def frame(self) -> pd.DataFrame:
        """position, instrument, underlying, quantity, marginal, scaled, marginal_mm, scaled_mm."""
        kernel, mb, total, arr = self.kernel, self.mb, self.total, self.mb.arrays
        without = evaluate_changes(kernel, mb.net, mb.position_instrument, -mb.quantity)
        marginal = total[0] - without[:, 0]
        marginal_mm = total[1] - without[:, 1]
        euler = euler_contributions(kernel, mb.net, mb.position_instrument, mb.quantity, total)
        return pd.DataFrame({
            "position": np.arange(len(mb)),
            "instrument": arr.names[mb.position_instrument] if len(mb) else np.array([], dtype=object),
            "underlying": np.asarray(arr.underlyings, dtype=object)[arr.und_index[mb.position_instrument]]
            if len(mb) else np.array([], dtype=object),
            "quantity": mb.quantity,
            "marginal": marginal * self.scale,
            "scaled": scale_to_total(euler[:, 0], total[0], marginal) * self.scale,
            "marginal_mm": marginal_mm * self.scale,
            "scaled_mm": scale_to_total(euler[:, 1], total[1], marginal_mm) * self.scale,
        })


EULER_STEP = 1e-4


def scale_to_total(weights: np.ndarray, total: float, fallback: np.ndarray | None = None) -> np.ndarray:
    """Allocation of ``total`` proportional to ``weights``; when they sum to ≤ 0, proportional to
    the positive part of ``fallback`` (default: the weights), else equal shares."""
    weights = np.asarray(weights, dtype=float)
    if len(weights) == 0:
        return weights.copy()
    tiny = 1e-12 * max(abs(total), 1.0)
    s = weights.sum()
    if s > tiny:
        return weights * (total / s)
    positive = np.maximum(weights if fallback is None else np.asarray(fallback, dtype=float), 0.0)
    if positive.sum() > tiny:
        return positive * (total / positive.sum())
    return np.full(len(weights), total / len(weights))


def euler_contributions(kernel: Kernel, net: np.ndarray, position_instrument, quantity,
                        total: np.ndarray) -> np.ndarray:
    """q_p·∂R/∂q_p for IM and MM (positions × 2), by shrinking each position by EULER_STEP."""
    shrunk = evaluate_changes(kernel, net, position_instrument, -EULER_STEP * np.asarray(quantity, float))
    return (total[None, :2] - shrunk[:, :2]) / EULER_STEP


def build_result(model: str, params, kernel: Kernel, mb: MarginBook) -> MarginResult:
    """Evaluate ``kernel`` on the book ``mb`` and assemble the :class:`MarginResult`."""
    names = ("initial", "maintenance") + kernel.components
    arr = mb.arrays
    net = mb.net
    n_und = kernel.n_und
    if n_und:
        lin, grp, _ = kernel.aggregates(net)
        comp_u = kernel.per_underlying(lin, grp, np.arange(n_und))
        total = kernel.combine(comp_u[None])[0]
        # Stand-alone per underlying: the other underlyings' components set to zero.
        alone = kernel.combine(comp_u[None] * np.eye(n_und)[:, :, None])
        scenarios, binding = kernel.scenario_table(lin)
    else:
        total, alone = np.zeros(len(names)), np.zeros((0, len(names)))
        scenarios, binding = kernel.scenario_table(np.zeros((0, kernel.linear.shape[1])))
    by_underlying = pd.DataFrame(alone, columns=list(names))
    by_underlying.insert(0, "underlying", list(arr.underlyings))
    values = dict(zip(names, (float(x) for x in total), strict=True))
    initial, maintenance = values.pop("initial"), values.pop("maintenance")
    components = {k: v for k, v in values.items() if k not in kernel.info}
    return MarginResult(
        model=model,
        params=params,
        initial=initial,
        maintenance=maintenance,
        components=components,
        scenario_pnl=scenarios,
        binding_scenario=binding,
        attribution=Attribution(kernel, mb, total),
        by_underlying=by_underlying,
        details={k: values[k] for k in kernel.info},
        waterfall=im_steps(model, params, initial, components, by_underlying),
    )
