"""Bounds on input values and budgets on computations, in one place.

Value bounds keep absurd numbers (``1e308``, denormals, a 400-digit strike) out of the engine,
where they would turn into inf/NaN margins; every input path refuses them per row and field.

Budgets keep one request from taking the machine: each bounded computation counts its work in
the unit that drives its memory and time, and refuses past the limit with :class:`BudgetError`
naming the limit (the constant's name, its value and what to reduce).

=================================  ==========================================================
budget                             unit of work
=================================  ==========================================================
``MAX_STRESS_REVALUATIONS``        instruments × (grid cells + profile points × (horizons + 2))
``MAX_REPLAY_REVALUATIONS``        path points × positions
``MAX_ACCOUNT_POSITIONS``          non-zero (account, instrument) holdings on one machine
``MAX_SWEEP_EVALUATIONS``          shock levels (or cascade rounds) × account holdings
``MAX_CLUSTER_ACCOUNTS``           accounts of a population generated on a Dask cluster
=================================  ==========================================================

A float64 revaluation result takes 8 bytes; the stress budget (25 M) therefore caps the stress
grid at ~200 MB, which is what the default grid (2,132 cells) needs for ~11,000 instruments.
"""
from __future__ import annotations

#: Largest |quantity| in contracts and largest price or strike in USD accepted from any input.
MAX_QUANTITY = 1e12
MAX_PRICE = 1e12
#: Smallest non-zero magnitude accepted (quantities, prices, strikes, multipliers): below it a
#: value is a typo or a denormal (5e-324), not a size.
MIN_MAGNITUDE = 1e-12
#: Largest contract multiplier (units of underlying per contract).
MAX_MULTIPLIER = 1e9
#: Longest instrument name and longest number text accepted (characters).
MAX_NAME_CHARS = 64
MAX_NUMBER_CHARS = 40

MAX_STRESS_REVALUATIONS = 25_000_000
MAX_REPLAY_REVALUATIONS = 2_000_000
MAX_ACCOUNT_POSITIONS = 30_000_000
MAX_SWEEP_EVALUATIONS = 600_000_000
#: The cluster also checks its workers' memory (engine.liquidation.distributed.check_cluster_population).
MAX_CLUSTER_ACCOUNTS = 10_000_000


class BudgetError(ValueError):
    """A computation larger than its budget; the message names the limit and what to reduce."""


def check_budget(name: str, work: int, what: str, reduce: str) -> None:
    """Raise :class:`BudgetError` if ``work`` exceeds the constant ``name`` of this module.

    >>> check_budget("MAX_REPLAY_REVALUATIONS", 1_000, "revaluations", "fewer")
    >>> check_budget("MAX_REPLAY_REVALUATIONS", 3_000_000, "revaluations", "fewer")
    Traceback (most recent call last):
    ...
    engine.limits.BudgetError: 3,000,000 revaluations exceeds the limit MAX_REPLAY_REVALUATIONS = 2,000,000: fewer
    """
    limit = globals()[name]
    if work > limit:
        raise BudgetError(f"{work:,} {what} exceeds the limit {name} = {limit:,}: {reduce}")
