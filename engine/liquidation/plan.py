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

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..instruments import parse_instrument
from ..margin import MarginModel, margin_model
from ..margin.account import account_equity
from ..margin.core import Kernel, Universe, evaluate, evaluate_changes, margin_book
from ..market import Market
from ..scenarios import KIND_CODES, InstrumentArrays, instrument_arrays
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

    def validate(self) -> PlanParams:
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


@dataclass(frozen=True)
class PlanInputs:
    """An account prepared for :func:`plan_liquidation`: per instrument (arrays aligned),
    ``quantities`` net contracts at the start, ``marks`` USD per contract, ``deltas`` spot delta
    per contract, ``notional`` USD per contract, ``kind`` KIND_CODES, ``und_index`` the
    underlying (``und_names`` their names), ``names``; ``hedge_index[u]`` the instrument index
    of underlying u's perpetual (−1: none, so no hedge for u); ``equity`` USD at the start;
    ``kernel`` the margin model prepared on the same instruments (rows: IM, MM, components);
    ``costs`` their execution costs."""

    quantities: np.ndarray
    marks: np.ndarray
    deltas: np.ndarray
    notional: np.ndarray
    kind: np.ndarray
    und_index: np.ndarray
    hedge_index: np.ndarray
    names: np.ndarray
    und_names: tuple
    equity: float
    kernel: Kernel
    costs: CostModel

    @classmethod
    def prepare(cls, state: AccountState, market, model: MarginModel, cost_params=None) -> PlanInputs:
        """Values, Greeks, costs and the margin model of ``state`` at ``market``."""
        arr = state.arrays_at(market)
        uni = Universe(arr)
        costs = cost_model(arr, uni.base, uni.spot_delta, atm_vols(arr, market), cost_params or CostParams())
        hedge_index = np.full(len(arr.underlyings), -1)
        for k in np.flatnonzero(arr.kind == KIND_CODES["perpetual"]):
            hedge_index[arr.und_index[k]] = k
        return cls(np.asarray(state.quantities, dtype=float), uni.base, uni.spot_delta, uni.notional, arr.kind,
                   arr.und_index, hedge_index, arr.names, tuple(arr.underlyings), state.equity(uni.base),
                   model.prepare(uni), costs)


@dataclass(frozen=True)
class _Candidates:
    """One step's candidate actions: single trades (``inst``, ``trade``, ``labels``; the last
    ``n_hedge`` are perp hedges) then slices (groups of ``held`` positions reduced at once);
    ``req`` (IM, MM, …) and ``cost`` of every candidate, singles first."""

    held: np.ndarray
    reduce: np.ndarray
    inst: np.ndarray
    trade: np.ndarray
    labels: list
    n_hedge: int
    slices: list
    slice_names: list
    req: np.ndarray
    cost: np.ndarray


def _single_trades(inputs: PlanInputs, q: np.ndarray, chunk_size: np.ndarray, params: PlanParams, policy: str):
    """(held, reduce, inst, trade, labels, n_hedge): every held position reduced by its chunk,
    then (optimised, hedging) per underlying a partial and a full perp hedge of its net delta."""
    # Perps the plan opened as hedges move only through hedge actions (towards zero net
    # delta): reducing them by chunks would buy back a hedge just paid for.
    held = np.flatnonzero((q != 0) & (inputs.quantities != 0))
    reduce = -np.sign(q[held]) * np.minimum(chunk_size[held], np.abs(q[held]))
    inst, trade = [held], [reduce]
    labels = ["reduce"] * len(held)
    n_hedge = 0
    if policy == "optimised" and params.hedge:
        net_delta = np.bincount(inputs.und_index, weights=q * inputs.deltas, minlength=len(inputs.hedge_index))
        hedged = np.flatnonzero((np.abs(net_delta) >= params.lot) & (inputs.hedge_index >= 0))
        h = inputs.hedge_index[hedged]
        full = -net_delta[hedged] / inputs.deltas[h]  # the perp trade that zeroes the net delta
        part = np.sign(full) * np.minimum(_lots(params.chunk * full, params.lot), np.abs(full))
        inst += [h, h]
        trade += [part, full]
        n_hedge = 2 * len(hedged)
        labels += ["hedge"] * n_hedge
    return held, reduce, np.concatenate(inst).astype(int), np.concatenate(trade), labels, n_hedge


def _candidates(inputs: PlanInputs, q: np.ndarray, chunk_size: np.ndarray, params: PlanParams,
                policy: str) -> _Candidates | None:
    """The step's candidates with their requirements and costs (None: nothing to trade)."""
    held, reduce, inst, trade, labels, n_hedge = _single_trades(inputs, q, chunk_size, params, policy)
    if not len(inst):
        return None
    req = evaluate_changes(inputs.kernel, q, inst, trade)
    cost = inputs.costs.trade_cost(inst, trade)
    # Slices: every position of one underlying reduced by its chunk at once.  Spreads whose
    # legs only margin well together can only come off this way; MM is homogeneous in the
    # book for the scenario models, so a slice always relieves it.
    slices, slice_names = _slices(held, q, inputs.kind, inputs.und_index, inputs.und_names) \
        if policy == "optimised" else ([], [])
    if slices:
        reduce_cost = cost[:len(held)]
        slice_req = np.array([evaluate(inputs.kernel, q + _vector(len(q), held, reduce, idx)) for idx in slices])
        slice_cost = np.array([reduce_cost[np.isin(held, idx)].sum() for idx in slices])
        req = np.vstack([req, slice_req])
        cost = np.concatenate([cost, slice_cost])
    return _Candidates(held, reduce, inst, trade, labels, n_hedge, slices, slice_names, req, cost)


def _pick(inputs: PlanInputs, c: _Candidates, q: np.ndarray, equity: float, mm: float, params: PlanParams,
          policy: str) -> int | None:
    """The candidate the policy takes (index into ``c.req``), or None."""
    n_slices = len(c.slices)
    is_linear = inputs.kind != KIND_CODES["option"]
    is_hedge = np.arange(len(c.inst)) >= len(c.inst) - c.n_hedge
    notional = np.concatenate([np.abs(q[c.inst]) * inputs.notional[c.inst], np.zeros(n_slices)])
    linear = np.concatenate([is_linear[c.inst], np.zeros(n_slices, bool)])
    hedge = np.concatenate([is_hedge, np.ones(n_slices, bool)])  # naive orders skip both
    finishes = equity - c.cost >= c.req[:, 1] * (1.0 + params.buffer)
    return _choose(policy, mm - c.req[:, 1], c.cost, notional, linear, hedge, finishes)


def _trades_of(c: _Candidates, j: int) -> list[tuple[int, float, float, str]]:
    """(instrument, signed contracts, cost USD, action) of candidate ``j``."""
    n_single = len(c.inst)
    if j < n_single:
        return [(int(c.inst[j]), float(c.trade[j]), float(c.cost[j]), c.labels[j])]
    idx = c.slices[j - n_single]
    sel = np.isin(c.held, idx)
    reduce_cost = c.cost[:len(c.held)]
    return [(int(i), float(t), float(k), c.slice_names[j - n_single])
            for i, t, k in zip(c.held[sel], c.reduce[sel], reduce_cost[sel], strict=True)]


STEP_COLUMNS = ["step", "action", "instrument", "quantity", "price", "cost", "fee", "im_after", "mm_after",
                "equity_after"]


def plan_liquidation(inputs: PlanInputs, params: PlanParams = PlanParams(),
                     policy: str = "optimised") -> LiquidationPlan:
    """Run the greedy plan (module docstring) on the account ``inputs``."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}")
    params.validate()
    q = inputs.quantities.copy()
    chunk_size = _lots(params.chunk * np.abs(q), params.lot)
    im, mm = (float(x) for x in evaluate(inputs.kernel, q)[:2])
    im0, mm0, equity = im, mm, float(inputs.equity)
    rows = []
    status = STUCK
    for step in range(1, params.max_steps + 1):
        if equity < 0:
            status = BANKRUPT
            break
        if equity >= mm * (1.0 + params.buffer):
            status = HEALTHY
            break
        c = _candidates(inputs, q, chunk_size, params, policy)
        j = None if c is None else _pick(inputs, c, q, equity, mm, params, policy)
        if c is None or j is None:
            break
        equity -= c.cost[j]
        im, mm = float(c.req[j, 0]), float(c.req[j, 1])
        for i, t, cost, action in _trades_of(c, j):
            q[i] += t
            # A buy (t > 0) pays the mark plus its cost per contract, a sale receives the mark less it.
            rows.append((step, action, inputs.names[i], t, inputs.marks[i] + np.sign(t) * cost / abs(t), cost,
                         abs(t) * inputs.costs.fee[i], im, mm, equity))
    deficit = max(0.0, -equity)
    fund_used = min(deficit, params.insurance_fund)
    return LiquidationPlan(policy, status, pd.DataFrame(rows, columns=STEP_COLUMNS), float(inputs.equity), im0, mm0,
                           equity, im, mm, q, deficit, fund_used, deficit - fund_used)


def _slices(original: np.ndarray, q: np.ndarray, kind: np.ndarray, und_index: np.ndarray, und_names):
    """Groups of positions reduced together, per underlying: all of them, the short options,
    the long options, the linear positions (groups of one position are already candidates)."""
    option = kind[original] == KIND_CODES["option"]
    short = q[original] < 0
    groups: list[np.ndarray] = []
    names: list[str] = []
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
    #: the instruments vectorised at the market the state was made at (reused there)
    arrays: InstrumentArrays | None = field(default=None, compare=False, repr=False)
    market: Market | None = field(default=None, compare=False, repr=False)

    def arrays_at(self, market: Market) -> InstrumentArrays:
        """The instruments vectorised at ``market``."""
        if self.arrays is not None and market is self.market:
            return self.arrays
        return instrument_arrays(self.instruments, market)

    def equity(self, values: np.ndarray) -> float:
        return self.cash + float(self.quantities @ values)


def account_state(book, market, collateral: float, hedges: bool = True,
                  arrays: InstrumentArrays | None = None) -> AccountState:
    """The account of ``book`` + ``collateral`` (USD), with each underlying's perpetual added
    (at zero) so that a plan can hedge with it.  ``arrays``: the book's instruments vectorised
    at ``market`` (e.g. ``Analysis.arrays``), reused when they hold those perpetuals too."""
    perps = [parse_instrument(f"{u}-PERPETUAL") for u in book.underlyings] if hedges else []
    if arrays is not None and not set(perps) <= set(arrays.instruments):
        arrays = None
    mb = margin_book(book, market, arrays, extra_instruments=perps)
    values = mb.universe.base
    return AccountState(mb.arrays.instruments, mb.net, account_equity(mb, collateral) - float(mb.net @ values),
                        mb.arrays, market)


def prepared_plan(state: AccountState, market, model: str | MarginModel = "risk_based", margin_params=None,
                  cost_params=None, params: PlanParams = PlanParams(), policy: str = "optimised"
                  ) -> LiquidationPlan:
    """Run :func:`plan_liquidation` for ``state`` at ``market`` (values, Greeks, costs and the
    margin model all prepared on the state's instruments); ``model``: a name with its
    ``margin_params`` or a resolved MarginModel."""
    inputs = PlanInputs.prepare(state, market, margin_model(model, margin_params), cost_params)
    return plan_liquidation(inputs, params, policy)


def prepared_plans(state: AccountState, market, model: str | MarginModel = "risk_based", margin_params=None,
                   cost_params=None, params: PlanParams = PlanParams(), policies=POLICIES
                   ) -> dict[str, LiquidationPlan]:
    """:func:`prepared_plan` of every policy in ``policies`` (default all, optimised first), the
    account prepared once for all of them."""
    inputs = PlanInputs.prepare(state, market, margin_model(model, margin_params), cost_params)
    return {p: plan_liquidation(inputs, params, p) for p in policies}


def atm_vols(arr, market) -> np.ndarray:
    """Each instrument's underlying impact σ (:func:`.costs.impact_vols`), for the cost model
    and any schedule that should price risk the same way."""
    return impact_vols(market, arr.underlyings)[arr.und_index]


def liquidation_plan(book, market, collateral: float, model: str | MarginModel = "risk_based", margin_params=None,
                     cost_params=None, params: PlanParams = PlanParams(), policy: str = "optimised"
                     ) -> LiquidationPlan:
    """Plan the liquidation of ``book`` with ``collateral`` USD under ``model`` (see module doc)."""
    state = account_state(book, market, collateral, hedges=params.hedge)
    return prepared_plan(state, market, model, margin_params, cost_params, params, policy)


def compare_plans(plans: dict[str, LiquidationPlan]) -> pd.DataFrame:
    """Plans of one account side by side (the optimised one included): status, steps, cost,
    fees, equity and MM after, and the cost saved by the optimised plan (USD)."""
    best = plans["optimised"].total_cost
    return pd.DataFrame([{"policy": p, "status": pl.status, "steps": len(pl.steps),
                          "cost": pl.total_cost, "fees": pl.total_fees, "equity_after": pl.equity_after,
                          "mm_after": pl.mm_after, "saved_by_optimised": pl.total_cost - best}
                         for p, pl in plans.items()])


def compare_policies(book, market, collateral: float, model: str | MarginModel = "risk_based", margin_params=None,
                     cost_params=None, params: PlanParams = PlanParams()) -> pd.DataFrame:
    """The optimised plan beside the naive orders (:func:`compare_plans`), at ``market``."""
    state = account_state(book, market, collateral, hedges=params.hedge)
    return compare_plans(prepared_plans(state, market, model, margin_params, cost_params, params))
