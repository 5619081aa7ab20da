"""Liquidation engine (docs/methodology.md §7).

* :mod:`.plan` — incremental, hedging-aware liquidation of one account, with the naive orders
  to compare against; :mod:`.costs` — half-spread + square-root impact + fee per trade;
* :mod:`.replay` — an account walked along a spot path, liquidated when under MM;
* :mod:`.queue` — the exchange-wide queue of accounts and the liquidation cascade;
* :mod:`.schedule` — Almgren & Chriss (2000) optimal execution of a large close-out, and its
  inputs σ, η, γ, ε from the cost model;
* :mod:`.auction` — the Derive (Lyra v2) Dutch auction (``DutchAuction.sol``);
* :mod:`.amounts` — Drift's closed-form liquidation amount (protocol-v2 ``math/liquidation.rs``).

Each module's docstring states its formulas, parameters and units.
"""
from . import amounts, auction, schedule
from .amounts import *  # noqa: F401,F403 — re-exported; names listed in each module's __all__
from .auction import *  # noqa: F401,F403
from .costs import CostModel, CostParams, cost_model
from .plan import LiquidationPlan, PlanInputs, PlanParams, compare_plans, compare_policies, liquidation_plan
from .queue import (
                    CascadeParams,
                    Population,
                    PopulationParams,
                    cascade,
                    generate_population,
                    liquidatable_vs_shock,
                    margin_queue,
                    read_accounts,
)
from .replay import PRESET_PATHS, ReplayResult, preset_path, replay
from .schedule import *  # noqa: F401,F403

__all__ = [*schedule.__all__, *auction.__all__, *amounts.__all__,
           "CostModel", "CostParams", "cost_model", "LiquidationPlan", "PlanInputs", "PlanParams", "compare_plans",
           "compare_policies",
           "liquidation_plan", "CascadeParams", "Population", "PopulationParams", "cascade",
           "generate_population", "liquidatable_vs_shock", "margin_queue", "read_accounts",
           "PRESET_PATHS", "ReplayResult", "preset_path", "replay"]
