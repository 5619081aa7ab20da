"""Incremental liquidation of one account under maintenance margin (docs/methodology.md §7).

While equity < MM·(1 + buffer), choose the next action among

* "reduce position i by one chunk" (default 10 % of its size at the start, at least one lot),
* "hedge": trade the underlying's perpetual against the account's net delta (as Deribit does for
  portfolio-margin accounts), one chunk of 10 % of the net delta at a time,

scoring each by  MM relief ÷ execution cost  and taking the best; actions that do not lower MM are
never taken.  The market is held fixed during the plan, so each action moves equity by exactly its
execution cost (the trade itself swaps mark-to-market for cash) and MM by the model's
re-evaluation of the smaller book.  All candidate books of a step are margined in one vectorised
call (a candidates × instruments quantity matrix).

The plan ends **healthy** (equity ≥ target), **bankrupt** (equity < 0: the deficit is drawn from
the insurance fund, and what the fund cannot cover is socialised / auto-deleveraged), or
**stuck** (no action lowers MM any more, or the step limit is reached).  Two naive orders are
available for comparison: ``largest_notional`` (close the biggest position first) and
``futures_first`` (futures and perps first, then options, as Deribit's liquidation engine does).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..instruments import parse_instrument
from ..margin import model_spec
from ..margin.account import account_equity
from ..margin.core import Kernel, Universe, evaluate, evaluate_changes, margin_book
from ..scenarios import KIND_CODES, instrument_arrays
from .costs import CostModel, CostParams, cost_model, impact_vols

POLICIES = ("optimised", "largest_notional", "futures_first")
HEALTHY, BANKRUPT, STUCK = "healthy", "bankrupt", "stuck"


@dataclass(frozen=True)
class PlanParams:
    """buffer: target = MM·(1 + buffer); chunk: fraction of a position (or of the net delta for
    a hedge) traded per step; lot: smallest tradable quantity (contracts); insurance_fund: USD
    available to cover a bankrupt account's deficit; max_steps bounds the plan."""

    buffer: float = 0.0
    chunk: float = 0.10
    lot: float = 0.1
    hedge: bool = True
    insurance_fund: float = 1_000_000.0
    max_steps: int = 5_000

    def validate(self) -> "PlanParams":
        bad = []
        if not 0 <= self.buffer <= 1:
            bad.append("buffer must be between 0 and 1 (0–100 % above MM)")
        if not 0 < self.chunk <= 1:
            bad.append("chunk must be in (0, 1]")
        if self.lot <= 0:
            bad.append("lot must be > 0")
        if self.insurance_fund < 0:
            bad.append("insurance fund must be ≥ 0")
        if bad:
            raise ValueError("; ".join(bad))
        return self


@dataclass(frozen=True)
class LiquidationPlan:
    """The steps taken and how the account ends.  Amounts in USD; ``steps`` has one row per
    action: step, action, instrument, quantity (signed contracts traded), price (USD per
    contract, after costs), cost, fee, im_after, mm_after, equity_after."""

    policy: str
    status: str
    steps: pd.DataFrame
    equity_before: float
    im_before: float
    mm_before: float
    equity_after: float
    im_after: float
    mm_after: float
    quantities_after: np.ndarray
    deficit: float
    insurance_fund_used: float
    socialised_loss: float

    @property
    def total_cost(self) -> float:
        return float(self.steps["cost"].sum()) if len(self.steps) else 0.0

    @property
    def total_fees(self) -> float:
        return float(self.steps["fee"].sum()) if len(self.steps) else 0.0


def _lots(x, lot):
    return np.maximum(np.round(np.abs(x) / lot), 1.0) * lot


def plan_liquidation(q0: np.ndarray, marks: np.ndarray, deltas: np.ndarray, notional: np.ndarray,
                     kind: np.ndarray, und_index: np.ndarray, hedge_index: np.ndarray,
                     names, und_names, equity0: float, kernel: Kernel, costs: CostModel,
                     params: PlanParams = PlanParams(), policy: str = "optimised") -> LiquidationPlan:
    """Run the greedy plan on net quantities ``q0`` (contracts per instrument).

    marks: USD per contract; deltas: spot delta per contract; notional: USD per contract;
    kind: KIND_CODES per instrument; und_index: underlying of each instrument (und_names: their
    names); hedge_index[u]:
    the instrument index of underlying u's perpetual (−1: none, so no hedge for u); ``kernel``
    is the margin model prepared on the same instruments (rows: IM, MM, components).
    """
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}")
    params.validate()
    q0 = np.asarray(q0, dtype=float)
    q = q0.copy()
    chunk_size = _lots(params.chunk * np.abs(q), params.lot)
    im, mm = (float(x) for x in evaluate(kernel, q)[:2])
    im0, mm0, equity = im, mm, float(equity0)
    is_linear = kind != KIND_CODES["option"]
    rows = []
    status = STUCK
    for step in range(1, params.max_steps + 1):
        if equity < 0:
            status = BANKRUPT
            break
        if equity >= mm * (1.0 + params.buffer):
            status = HEALTHY
            break
        # Perps the plan opened as hedges move only through hedge actions (towards zero net
        # delta): reducing them by chunks would buy back a hedge just paid for.
        held = np.flatnonzero((q != 0) & (q0 != 0))
        reduce = -np.sign(q[held]) * np.minimum(chunk_size[held], np.abs(q[held]))
        inst, trade = [held], [reduce]
        labels = ["reduce"] * len(held)
        n_hedge = 0
        if policy == "optimised" and params.hedge:
            net_delta = np.bincount(und_index, weights=q * deltas, minlength=len(hedge_index))
            hedged = np.flatnonzero((np.abs(net_delta) >= params.lot) & (hedge_index >= 0))
            h = hedge_index[hedged]
            full = -net_delta[hedged] / deltas[h]  # the perp trade that zeroes the net delta
            part = np.sign(full) * np.minimum(_lots(params.chunk * full, params.lot), np.abs(full))
            inst += [h, h]
            trade += [part, full]
            n_hedge = 2 * len(hedged)
            labels += ["hedge"] * n_hedge
        inst, trade = np.concatenate(inst).astype(int), np.concatenate(trade)
        if not len(inst):
            break
        req = evaluate_changes(kernel, q, inst, trade)
        cost = costs.trade_cost(inst, trade)
        is_hedge = np.arange(len(inst)) >= len(inst) - n_hedge
        reduce_cost = cost[:len(held)]
        # Slices: every position of one underlying reduced by its chunk at once.  Spreads whose
        # legs only margin well together can only come off this way; MM is homogeneous in the
        # book for the scenario models, so a slice always relieves it.
        slices, slice_names = _slices(held, q, kind, und_index, und_names) \
            if policy == "optimised" else ([], [])
        if slices:
            slice_req = np.array([evaluate(kernel, q + _vector(len(q), held, reduce, idx))
                                  for idx in slices])
            slice_cost = np.array([reduce_cost[np.isin(held, idx)].sum() for idx in slices])
            req = np.vstack([req, slice_req])
            cost = np.concatenate([cost, slice_cost])
        im_c, mm_c = req[:, 0], req[:, 1]
        n_single = len(inst)
        notional_c = np.concatenate([np.abs(q[inst]) * notional[inst], np.zeros(len(slices))])
        linear_c = np.concatenate([is_linear[inst], np.zeros(len(slices), bool)])
        hedge_c = np.concatenate([is_hedge, np.ones(len(slices), bool)])  # naive orders skip both
        finishes = equity - cost >= mm_c * (1.0 + params.buffer)
        j = _choose(policy, mm - mm_c, cost, notional_c, linear_c, hedge_c, finishes)
        if j is None:
            break
        if j < n_single:
            trades = [(inst[j], trade[j], cost[j], labels[j])]
        else:
            idx = slices[j - n_single]
            sel = np.isin(held, idx)
            trades = [(i, t, c, slice_names[j - n_single])
                      for i, t, c in zip(held[sel], reduce[sel], reduce_cost[sel])]
        equity -= cost[j]
        im, mm = float(im_c[j]), float(mm_c[j])
        for i, t, c, action in trades:
            q[i] += t
            # A buy (t > 0) pays the mark plus its cost per contract, a sale receives the mark less it.
            rows.append((step, action, names[i], t, marks[i] + np.sign(t) * c / abs(t), c,
                         abs(t) * costs.fee[i], im, mm, equity))
    deficit = max(0.0, -equity)
    fund_used = min(deficit, params.insurance_fund)
    steps = pd.DataFrame(rows, columns=["step", "action", "instrument", "quantity", "price", "cost",
                                       "fee", "im_after", "mm_after", "equity_after"])
    return LiquidationPlan(policy, status, steps, float(equity0), im0, mm0, equity, im, mm, q,
                           deficit, fund_used, deficit - fund_used)


def _slices(original: np.ndarray, q: np.ndarray, kind: np.ndarray, und_index: np.ndarray, und_names):
    """Groups of positions reduced together, per underlying: all of them, the short options,
    the long options, the linear positions (groups of one position are already candidates)."""
    option = kind[original] == KIND_CODES["option"]
    short = q[original] < 0
    groups, names = [], []
    for u in np.unique(und_index[original]):
        mine = und_index[original] == u
        for label, sel in (("all", mine), ("short options", mine & option & short),
                           ("long options", mine & option & ~short), ("futures/perps/spot", mine & ~option)):
            if sel.sum() > 1 and not any(np.array_equal(original[sel], g) for g in groups):
                groups.append(original[sel])
                names.append(f"reduce {label} {und_names[u]}")
    return groups, names


def _vector(n: int, idx: np.ndarray, values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Length-n vector holding ``values`` at ``idx`` where idx is in ``keep``, else 0."""
    out = np.zeros(n)
    sel = np.isin(idx, keep)
    out[idx[sel]] = values[sel]
    return out


def _choose(policy, relief, cost, notional, linear, is_hedge, finishes):
    """Index of the candidate the policy takes, or None when it has nothing to take.

    The optimised policy takes the best MM relief per USD of cost; when an action that restores
    the target costs no more than that one (the best ratio may overshoot, or not finish), it
    takes the cheapest such action instead."""
    if policy == "optimised":
        ok = relief > 1e-9
        if not ok.any():
            return None
        best = int(np.argmax(np.where(ok, relief / np.maximum(cost, 1e-12), -np.inf)))
        finishers = ok & finishes
        if finishers.any():
            cheapest = int(np.argmin(np.where(finishers, cost, np.inf)))
            if finishes[best] or cost[cheapest] <= cost[best]:
                return cheapest
        return best
    reduce = ~is_hedge
    if not reduce.any():
        return None
    rank = np.where(reduce, notional, -np.inf)
    if policy == "futures_first" and (linear & reduce).any():
        rank = np.where(linear & reduce, notional, -np.inf)
    return int(np.argmax(rank))


# ----------------------------------------------------------------------------- one account


@dataclass(frozen=True)
class AccountState:
    """An account as net contracts per instrument plus cash, on a fixed instrument list.

    ``cash`` (USD) is collateral minus the entry cost of futures, perps and spot (at today's mark
    where no entry price was given), so that equity = cash + Σ q_i·value_i at any market, with
    linear instruments valued at their price: the same equity as docs/methodology.md §6's unrealised P&L."""

    instruments: tuple
    quantities: np.ndarray
    cash: float

    def equity(self, values: np.ndarray) -> float:
        return self.cash + float(self.quantities @ values)


def account_state(book, market, collateral: float, hedges: bool = True) -> AccountState:
    """The account of ``book`` + ``collateral`` (USD), with each underlying's perpetual added
    (at zero) so that a plan can hedge with it."""
    perps = [parse_instrument(f"{u}-PERPETUAL") for u in book.underlyings] if hedges else []
    mb = margin_book(book, market, extra_instruments=perps)
    values = mb.universe.base
    return AccountState(mb.arrays.instruments, mb.net, account_equity(mb, collateral) - float(mb.net @ values))


def prepared_plan(state: AccountState, market, model: str = "risk_based", margin_params=None,
                  cost_params=None, params: PlanParams = PlanParams(), policy: str = "optimised"
                  ) -> LiquidationPlan:
    """Run :func:`plan_liquidation` for ``state`` at ``market`` (values, Greeks, costs and the
    margin model all prepared on the state's instruments)."""
    spec = model_spec(model)
    arr = instrument_arrays(state.instruments, market)
    uni = Universe(arr)
    kernel = spec.prepare(uni, spec.resolve(margin_params))
    atm = atm_vols(arr, market)
    costs = cost_model(arr, uni.base, uni.spot_delta, atm, cost_params or CostParams())
    perp = KIND_CODES["perpetual"]
    hedge_index = np.full(len(arr.underlyings), -1)
    for k in np.flatnonzero(arr.kind == perp):
        hedge_index[arr.und_index[k]] = k
    return plan_liquidation(state.quantities, uni.base, uni.spot_delta, uni.notional, arr.kind,
                            arr.und_index, hedge_index, arr.names, arr.underlyings,
                            state.equity(uni.base), kernel,
                            costs, params, policy)


def atm_vols(arr, market) -> np.ndarray:
    """Each instrument's underlying impact σ (:func:`.costs.impact_vols`), for the cost model
    and any schedule that should price risk the same way."""
    return impact_vols(market, arr.underlyings)[arr.und_index]


def liquidation_plan(book, market, collateral: float, model: str = "risk_based", margin_params=None,
                     cost_params=None, params: PlanParams = PlanParams(), policy: str = "optimised"
                     ) -> LiquidationPlan:
    """Plan the liquidation of ``book`` with ``collateral`` USD under ``model`` (see module doc)."""
    state = account_state(book, market, collateral, hedges=params.hedge)
    return prepared_plan(state, market, model, margin_params, cost_params, params, policy)


def compare_policies(book, market, collateral: float, model: str = "risk_based", margin_params=None,
                     cost_params=None, params: PlanParams = PlanParams()) -> pd.DataFrame:
    """The optimised plan beside the naive orders: status, steps, cost, fees, equity after and
    the cost saved by the optimised plan (USD)."""
    state = account_state(book, market, collateral, hedges=params.hedge)
    plans = {p: prepared_plan(state, market, model, margin_params, cost_params, params, p) for p in POLICIES}
    best = plans["optimised"].total_cost
    return pd.DataFrame([{"policy": p, "status": pl.status, "steps": len(pl.steps),
                          "cost": pl.total_cost, "fees": pl.total_fees, "equity_after": pl.equity_after,
                          "mm_after": pl.mm_after, "saved_by_optimised": pl.total_cost - best}
                         for p, pl in plans.items()])
