"""Replay an account along a spot path, liquidating whenever it falls under maintenance margin.

At each point of the path (hours from now, spot shock as a fraction, the same for every
underlying) the market is moved — spots shocked and the valuation time advanced, so options decay
and expire — the account is revalued in full, and if equity < MM the liquidation plan
(:mod:`.plan`) runs at that market and its trades are applied before the walk goes on.

Preset paths: ``crash_24h`` (−30 % in a straight line over 24 h), ``v_shape`` (−25 % over 12 h,
then back to −5 % over the next 12 h) and ``grind_up`` (+20 % over 7 days with a seeded random
walk around the trend).  A user path is a table of hours and spot shocks.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

import numpy as np
import pandas as pd

from ..limits import check_budget
from ..margin import MarginModel, margin_model
from ..margin.account import margin_ratio
from ..margin.core import Universe, evaluate
from ..market import Market
from ..scenarios import instrument_arrays
from .plan import AccountState, PlanParams, account_state, prepared_plan

PRESET_PATHS = {
    "crash_24h": "−30 % over 24 hours",
    "v_shape": "V: −25 % over 12 h, rebound to −5 % by 24 h",
    "grind_up": "slow grind up: +20 % over 7 days",
}


def preset_path(name: str, steps: int = 49, seed: int = 7) -> pd.DataFrame:
    """A preset spot path: columns hours, spot_shock (fraction)."""
    if name == "crash_24h":
        hours = np.linspace(0.0, 24.0, steps)
        shock = -0.30 * hours / 24.0
    elif name == "v_shape":
        hours = np.linspace(0.0, 24.0, steps)
        shock = np.where(hours <= 12.0, -0.25 * hours / 12.0, -0.25 + 0.20 * (hours - 12.0) / 12.0)
    elif name == "grind_up":
        hours = np.linspace(0.0, 24.0 * 7, steps)
        rng = np.random.default_rng(seed)
        noise = np.cumsum(rng.normal(0.0, 0.01, steps))
        noise -= noise[0]
        noise -= np.linspace(0.0, noise[-1], steps)  # pinned to the trend at both ends
        shock = 0.20 * hours / hours[-1] + noise
    else:
        raise ValueError(f"unknown path {name!r}; choose one of {', '.join(PRESET_PATHS)}")
    return pd.DataFrame({"hours": hours, "spot_shock": shock})


def validate_path(path: pd.DataFrame) -> pd.DataFrame:
    """Check a user path: numeric hours increasing from ≥ 0, shocks in (−1, 10)."""
    if not {"hours", "spot_shock"} <= set(path.columns):
        raise ValueError("a path needs the columns hours, spot_shock")
    p = path[["hours", "spot_shock"]].apply(pd.to_numeric, errors="coerce")
    bad = p.index[p.isna().any(axis=1)]
    if len(bad):
        raise ValueError(f"row {bad[0] + 1}: hours and spot_shock must be numbers")
    if (p["hours"] < 0).any() or (np.diff(p["hours"]) <= 0).any():
        raise ValueError("hours must start at ≥ 0 and increase row by row")
    if ((p["spot_shock"] <= -1) | (p["spot_shock"] >= 10)).any():
        raise ValueError("spot_shock must be a fraction in (−1, 10), e.g. −0.2 for −20 %")
    if len(p) > 2000:
        raise ValueError("a path may have at most 2,000 points")
    return p.reset_index(drop=True)


@dataclass(frozen=True)
class ReplayResult:
    """``path``: hours, spot_shock, equity, im, mm, margin_ratio, liquidated (bool: a plan ran at
    this point), trades, cost; ``trades``: every plan step with its hours; ``status`` at the end."""

    path: pd.DataFrame
    trades: pd.DataFrame
    status: str
    final_equity: float
    deficit: float


def replay(book, market: Market, collateral: float, path: pd.DataFrame, model: str | MarginModel = "risk_based",
           margin_params=None, cost_params=None, params: PlanParams = PlanParams()) -> ReplayResult:
    """Walk ``path`` (see module doc) and liquidate when the account is under MM; ``model``: a
    name with its ``margin_params`` or a resolved MarginModel."""
    path = validate_path(path)
    check_budget("MAX_REPLAY_REVALUATIONS", len(path) * max(len(book), 1), "path points × positions",
                 "use a path with fewer points or a smaller book")
    resolved = margin_model(model, margin_params)
    state = account_state(book, market, collateral, hedges=params.hedge)
    rows, trades = [], []
    status, deficit = "healthy", 0.0
    for hours, shock in path.itertuples(index=False):
        m = replace(market.with_spot_shock(shock), valuation_time=market.valuation_time + timedelta(hours=hours))
        uni = Universe(instrument_arrays(state.instruments, m))
        values = uni.base
        equity = state.equity(values)
        im, mm = (float(x) for x in evaluate(resolved.prepare(uni), state.quantities)[:2])
        n_trades, cost = 0, 0.0
        if equity < mm and status != "bankrupt":
            plan = prepared_plan(state, m, resolved, None, cost_params, params)
            n_trades, cost = len(plan.steps), plan.total_cost
            trades.append(plan.steps.assign(hours=hours, spot_shock=shock))
            q = plan.quantities_after
            # The plan swapped positions for cash at its prices: carry the cash forward.
            state = AccountState(state.instruments, q, plan.equity_after - float(q @ values))
            equity, im, mm = plan.equity_after, plan.im_after, plan.mm_after
            status, deficit = plan.status, plan.deficit
        rows.append((hours, shock, equity, im, mm, margin_ratio(equity, mm),
                     n_trades > 0, n_trades, cost))
    frame = pd.DataFrame(rows, columns=["hours", "spot_shock", "equity", "im", "mm", "margin_ratio",
                                        "liquidated", "trades", "cost"])
    trade_frame = pd.concat(trades, ignore_index=True) if trades else pd.DataFrame(
        columns=["hours", "spot_shock", "step", "action", "instrument", "quantity", "price", "cost"])
    return ReplayResult(frame, trade_frame, status, float(frame["equity"].iloc[-1]), deficit)
