"""The Liquidation page's state: its stores, how they change, and its memoised engine calls.

Two page-local stores (session storage: private to the tab, kept across visits) hold what the
page edits, each written only with values the engine accepted, so a refused value leaves the
last good results on screen:

* ``LIQ_STRESS_STORE``: ``{"mode": "none" | "push" | "custom", "spot_shock": fraction,
  "collateral": USD or null}`` — the scenario the account is planned at (:func:`scenario`).
* ``LIQ_PARAMS_STORE``: ``{"cost": CostParams fields, "plan": PlanParams fields, "auction":
  AuctionParams fields, "bidders": {"n", "seed", "reservation_mean"}}``, engine units.

An uploaded replay path waits in ``LIQ_PATH_STORE``: ``{"filename", "hours", "spot_shock"}``.
The account itself (collateral, model, its parameters) is the Margin page's ``ACCOUNT_STORE``,
read through :mod:`dashboard.stores.account`.
"""
from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from engine.liquidation import (
    DERIVE_MAINNET,
    DERIVE_TEST,
    AuctionParams,
    AuctionResult,
    BidderPopulation,
    EfficientFrontier,
    ExecutionSchedule,
    ScheduleInputs,
    almgren_chriss_schedule,
    bidder_population,
    efficient_frontier,
    simulate_auction,
)
from engine.liquidation import schedule_inputs as engine_schedule_inputs
from engine.liquidation.costs import CostParams
from engine.liquidation.plan import (
    AccountState,
    LiquidationPlan,
    PlanParams,
    account_state,
    compare_plans,
    prepared_plans,
)
from engine.liquidation.replay import PRESET_PATHS, ReplayResult, preset_path, replay, validate_path
from engine.margin import margin_model
from engine.market import Market
from engine.scenarios import instrument_arrays

from .. import guard
from ..format import usd
from . import session as state
from .account import account_key, collateral_usd, health, model_params

# ----------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Field:
    """One editable parameter: ``name`` is ``section.field`` (``section.field.kind`` for the
    per-kind dicts of CostParams); the engine value is the shown value × ``scale``."""

    name: str
    label: str
    default: float  # engine units
    scale: float = 1.0
    whole: bool = False  # a count or a seed
    choices: tuple = ()  # (label, value) pairs: shown as radio items

    @property
    def section(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def shown_default(self):
        value = self.default / self.scale
        return int(round(value)) if self.whole or self.choices else round(value, 10)


def _fields() -> tuple[Field, ...]:
    """Every parameter, with the engine's published default (never restated here)."""
    cost, plan, auction = CostParams(), PlanParams(), DERIVE_TEST
    return (
        Field("cost.spread_bps_linear", "Half-spread, futures/perps/spot (bp of price)", cost.spread_bps_linear),
        Field("cost.option_spread_of_mark", "Half-spread, options (% of mark)", cost.option_spread_of_mark, 0.01),
        Field("cost.option_spread_min_bps", "Option half-spread floor (bp of spot)", cost.option_spread_min_bps),
        Field("cost.impact_k", "Impact constant k (square-root law)", cost.impact_k),
        *(Field(f"cost.adv_usd.{kind}", f"ADV, {kind} (USD m per day)", v, 1e6) for kind, v in cost.adv_usd.items()),
        *(Field(f"cost.fee_rate.{kind}", f"Fee, {kind} (% of notional)", v, 0.01) for kind, v in cost.fee_rate.items()),
        Field("plan.buffer", "Target above MM (%: end at MM × (1 + buffer))", plan.buffer, 0.01),
        Field("plan.chunk", "Chunk (% of a position per step)", plan.chunk, 0.01),
        Field("plan.lot", "Lot (contracts)", plan.lot),
        Field("plan.hedge", "Hedge with perpetuals", float(plan.hedge), choices=(("on", 1), ("off", 0))),
        Field("plan.insurance_fund", "Insurance fund (USD)", plan.insurance_fund),
        Field("auction.start", "Start (% of MtM)", auction.start, 0.01),
        Field("auction.fast_cutoff", "End of fast phase (% of MtM)", auction.fast_cutoff, 0.01),
        Field("auction.fast_seconds", "Fast phase (minutes)", auction.fast_seconds, 60.0),
        Field("auction.slow_seconds", "Slow phase (minutes)", auction.slow_seconds, 60.0),
        Field("auction.insolvent_seconds", "Insolvent phase (minutes)", auction.insolvent_seconds, 60.0),
        Field("auction.buffer", "Buffer (% of the requirement)", auction.buffer, 0.01),
        Field("bidders.n", "Bidders", 20, whole=True),
        Field("bidders.seed", "Bidder seed", 0, whole=True),
        Field("bidders.reservation_mean", "Mean reservation (% of MtM)", 0.85, 0.01),
    )


FIELDS = _fields()
SECTIONS = {"cost": "Execution costs", "plan": "Plan", "auction": "Auction", "bidders": "Bidders"}
AUCTION_PRESETS = {"test": DERIVE_TEST, "mainnet": DERIVE_MAINNET}


@dataclass(frozen=True)
class Settings:
    """The engine objects of a params store value."""

    cost: CostParams
    plan: PlanParams
    auction: AuctionParams
    bidders: BidderPopulation


def settings_of(data: dict) -> Settings:
    """Engine objects of a ``LIQ_PARAMS_STORE`` value; ValueError (the engine's message, with its
    section) when a value is refused."""
    builders = {
        "cost": lambda d: CostParams(**d).validate(),
        "plan": lambda d: PlanParams(**d).validate(),
        "auction": lambda d: AuctionParams(**d),
        "bidders": lambda d: bidder_population(int(d["n"]), int(d["seed"]), reservation_mean=d["reservation_mean"]),
    }
    built = {}
    for section, build in builders.items():
        try:
            built[section] = build(data[section])
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{SECTIONS[section]}: {exc}") from None
    return Settings(**built)


def params_from_controls(values: dict, preset: str) -> state.Outcome:
    """A params store value from the controls (``values``: field name → shown value).  The
    auction fields count only with the ``custom`` preset, else the preset's published values
    are used.  Any refused value refuses the whole edit, naming the field or the engine's reason."""
    problems, data = [], {"cost": {}, "plan": {}, "auction": {}, "bidders": {}}
    for f in FIELDS:
        if f.section == "auction" and preset != "custom":
            continue
        value = values.get(f.name)
        if not guard.is_number(value) or (f.whole and not float(value).is_integer()):
            problems.append(f"{f.label}: enter a {'whole ' if f.whole else ''}number")
            continue
        _, *path = f.name.split(".")
        target = data[f.section]
        if len(path) == 2:  # one kind's entry of adv_usd / fee_rate
            target = target.setdefault(path[0], {})
        target[path[-1]] = bool(value) if f.choices else value * f.scale
    if preset in AUCTION_PRESETS:
        data["auction"] = asdict(AUCTION_PRESETS[preset])
    if problems:
        return state.Outcome(None, tuple(problems))
    try:
        settings_of(data)
    except ValueError as exc:
        return state.Outcome(None, (f"{exc} — nothing was changed",))
    return state.Outcome(data, note="parameters applied")


DEFAULT_PARAMS = params_from_controls({f.name: f.shown_default for f in FIELDS}, "test").data

# ----------------------------------------------------------------------------- scenario

#: "Push past the liquidation price": this much further than the nearer liquidation move …
PUSH_BEYOND = 0.05
#: … or, with no liquidation price within reach, collateral cut until equity is this × MM.
PUSH_EQUITY = 0.9
DEFAULT_STRESS = {"mode": "none", "spot_shock": 0.0, "collateral": None}
STRESS_MODES = {"none": "The account as it is", "push": "Push it past its liquidation price",
                "custom": "Custom: the spot shock and collateral below"}


def stress_from_controls(mode: str, shock_pct, collateral) -> state.Outcome:
    """The stress store value: an empty collateral means the account's own, else USD ≥ 0."""
    if mode not in STRESS_MODES:
        return state.Outcome(None, (f"unknown stress mode {mode!r}",))
    if collateral in (None, ""):
        amount = None
    elif guard.is_number(collateral) and collateral >= 0:
        amount = float(collateral)
    else:
        return state.Outcome(None, ("collateral: enter USD ≥ 0, or leave it empty for the account's own",))
    return state.Outcome({"mode": mode, "spot_shock": float(shock_pct or 0.0) / 100.0, "collateral": amount},
                         note="scenario applied")


@dataclass(frozen=True)
class Scenario:
    """Where the account is planned: every spot × (1 + spot_shock), with ``collateral`` USD."""

    spot_shock: float
    collateral: float
    description: str


def pct(x: float, prefix: str = "") -> str:
    """``-0.253`` -> ``'−25.3 %'`` (true minus sign)."""
    return f"{prefix}{x * 100:+.1f} %".replace("-", "−")


def scenario(book: dict, market: dict, account: dict, stress: dict) -> Scenario:
    """Resolve the stress store against the account.

    ``push`` moves spot ``PUSH_BEYOND`` further than the nearer liquidation price of the account
    (from its health); with none within the search range it cuts the collateral until equity is
    ``PUSH_EQUITY`` × MM instead.  Spot moves for every underlying alike, as liquidation prices
    are defined (docs/methodology.md §7)."""
    own = collateral_usd(market, account)
    if stress["mode"] == "custom":
        amount = collateral_usd(market, account, stress["spot_shock"]) if stress["collateral"] is None \
            else float(stress["collateral"])
        return Scenario(stress["spot_shock"], amount,
                        pct(stress["spot_shock"], "spot ") + f", collateral {usd(amount)}")
    if stress["mode"] != "push":
        return Scenario(0.0, own, "the account as it is")
    h = health(book, market, account)
    if h.liquidatable:
        return Scenario(0.0, own, "already under maintenance margin: no stress needed")
    sides = [s for s in (h.liquidation_shock_down, h.liquidation_shock_up) if s is not None]
    if sides:
        nearest = min(sides, key=abs)
        shock = nearest + math.copysign(PUSH_BEYOND, nearest)
        # collateral tied to an underlying has moved with it (wrong-way for coin collateral)
        return Scenario(shock, collateral_usd(market, account, shock),
                        pct(shock, "spot ") + f": {PUSH_BEYOND * 100:.0f} points past the liquidation price at "
                        + pct(nearest))
    cut = max(0.0, own - (h.equity - PUSH_EQUITY * h.maintenance))
    return Scenario(0.0, cut, f"no liquidation price within ±{h.search_range * 100:.0f} %: collateral cut to "
                              f"{usd(cut)} (equity {PUSH_EQUITY * 100:.0f} % of MM)")


def _account_now(book: dict, market: dict, sc: Scenario, hedges: bool) -> tuple[AccountState, Market]:
    """The account's cash fixed at today's market (entry prices; futures without one at today's
    mark), and the scenario's market, where everything is then revalued."""
    today = state.market_of(market)
    return account_state(state.book_of(book), today, sc.collateral, hedges=hedges), today.with_spot_shock(sc.spot_shock)


def _model_key(account: dict) -> list:
    model = account["model"]
    return [model, account.get("params", {}).get(model), *account_key(account)]


# ----------------------------------------------------------------------------- plan


def plans(book: dict, market: dict, account: dict, stress: dict, params: dict
          ) -> tuple[Scenario, dict[str, LiquidationPlan]]:
    """The scenario, and the plan of every policy (optimised first) at its market, memoised."""
    sc = scenario(book, market, account, stress)

    def run():
        settings = settings_of(params)
        now, at = _account_now(book, market, sc, settings.plan.hedge)
        model = margin_model(account["model"], model_params(account))  # validated once for the three plans
        return prepared_plans(now, at, model, None, settings.cost, settings.plan)  # the account prepared once

    payload = [book, market, sc.spot_shock, sc.collateral, *_model_key(account), params["cost"], params["plan"]]
    return sc, state.memoise("liquidation-plans", payload, run)


#: The policies side by side (the engine's table of the plans made at the scenario's market).
comparison = compare_plans


def merged_steps(steps: pd.DataFrame) -> pd.DataFrame:
    """Plan steps with each run of consecutive steps on the same instrument (same action) as one
    row: steps "first–last", trades (count), quantity, cost and fee summed, price the
    quantity-weighted average, MM and equity after the run's last step."""
    if steps.empty:
        return steps.assign(steps=pd.Series(dtype=str), trades=pd.Series(dtype=int))
    run = ((steps["instrument"] != steps["instrument"].shift()) | (steps["action"] != steps["action"].shift())).cumsum()
    weight = steps["quantity"].abs()
    merged = steps.assign(weighted=steps["price"] * weight, weight=weight).groupby(run, sort=False).agg(
        first=("step", "first"), last=("step", "last"), trades=("step", "size"), action=("action", "first"),
        instrument=("instrument", "first"), quantity=("quantity", "sum"), weighted=("weighted", "sum"),
        weight=("weight", "sum"), cost=("cost", "sum"), fee=("fee", "sum"), mm_after=("mm_after", "last"),
        equity_after=("equity_after", "last"))
    merged["price"] = merged["weighted"] / merged["weight"].where(merged["weight"] > 0)
    merged["steps"] = [f"{a}" if a == b else f"{a}–{b}" for a, b in zip(merged["first"], merged["last"], strict=True)]
    return merged.drop(columns=["first", "last", "weighted", "weight"]).reset_index(drop=True)


# ----------------------------------------------------------------------------- replay


def read_path(contents: str, filename: str) -> state.Outcome:
    """A ``dcc.Upload`` payload as a path store value, checked by the engine's ``validate_path``."""
    try:
        frame = pd.read_csv(io.BytesIO(state.upload_bytes(contents)))
    except (ValueError, pd.errors.ParserError) as exc:  # UnicodeDecodeError is a ValueError
        return state.Outcome(None, (f"{filename}: not a readable CSV ({exc})",))
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    try:
        path = validate_path(frame)
    except ValueError as exc:
        return state.Outcome(None, (f"{filename}: {exc}",))
    data = {"filename": filename, "hours": path["hours"].tolist(), "spot_shock": path["spot_shock"].tolist()}
    return state.Outcome(data, note=f"{filename}: {len(path)} points loaded; press Run replay")


#: Suffix of a preset's key for its mirror image (every shock negated).
MIRRORED = ":mirrored"


def path_choices() -> dict[str, str]:
    """Path keys and labels: every engine preset and its mirror image (a book may be threatened
    by a rise as well as a fall), each saying which way spot goes."""
    choices = {}
    for key, label in PRESET_PATHS.items():
        shocks = preset_path(key)["spot_shock"]
        down = abs(shocks.min()) > abs(shocks.max())
        choices[key] = f"{label} (spot {'down' if down else 'up'})"
        choices[key + MIRRORED] = f"mirror of {label} (spot {'up' if down else 'down'})"
    return choices


def replay_path(path_key: str, mirror: bool, uploaded: dict | None) -> pd.DataFrame:
    """A preset (``<key>`` or ``<key>:mirrored``) or the uploaded path (hours, spot_shock);
    ``mirror`` negates the shocks of the uploaded path only (a preset has its own mirror)."""
    if path_key == "upload":
        if not uploaded:
            raise ValueError("upload a path CSV first (hours,spot_shock)")
        path = pd.DataFrame({"hours": uploaded["hours"], "spot_shock": uploaded["spot_shock"]})
        return path.assign(spot_shock=-path["spot_shock"]) if mirror else path
    key = path_key.removesuffix(MIRRORED)
    path = preset_path(key)
    return path.assign(spot_shock=-path["spot_shock"]) if key != path_key else path


def path_label(path_key: str, mirror: bool, uploaded: dict | None) -> str:
    """What a replay walked, for its chart: the preset's label, or the uploaded file and whether
    it was mirrored."""
    if path_key == "upload":
        name = (uploaded or {}).get("filename") or "uploaded path"
        return f"{name}, mirrored (spot shocks negated)" if mirror else name
    return path_choices().get(path_key, path_key)


def threat_note(h) -> str:
    """Which way spot must move to liquidate the account (``AccountHealth``), in words."""
    sides = [f"a fall of {pct(h.liquidation_shock_down)}" if h.liquidation_shock_down is not None else None,
             f"a rise of {pct(h.liquidation_shock_up)}" if h.liquidation_shock_up is not None else None]
    found = [s for s in sides if s]
    if h.liquidatable:
        return "The account is liquidatable already: any path starts with a liquidation."
    if not found:
        return (f"No move of every spot within ±{h.search_range * 100:.0f} % liquidates this account: the paths "
                "show how far it stays from its liquidation line.")
    missing = "a fall" if h.liquidation_shock_down is None else "a rise" if h.liquidation_shock_up is None else None
    beyond = f"; {missing} within ±{h.search_range * 100:.0f} % does not" if missing else ""
    direction = ("up" if missing == "a fall" else "down") if missing else "either way"
    return (f"This account is liquidated by {' or by '.join(found)} of every spot{beyond}: choose a path that "
            f"goes {direction} far enough to see its liquidations.")


def replay_result(book: dict, market: dict, account: dict, stress: dict, params: dict,
                  path: pd.DataFrame) -> ReplayResult:
    """The account (with the scenario's collateral: the path replaces its spot shock) replayed
    along ``path`` from today's market, memoised; ValueError for a path the engine refuses."""
    sc = scenario(book, market, account, stress)

    def run():
        settings = settings_of(params)
        return replay(state.book_of(book), state.market_of(market), sc.collateral, path, account["model"],
                      model_params(account), settings.cost, settings.plan)

    payload = [book, market, sc.collateral, *_model_key(account), params["cost"], params["plan"], path.to_dict("list")]
    return state.memoise("liquidation-replay", payload, run)


# ----------------------------------------------------------------------------- schedule


def positions_by_size(book: dict, market: dict, account: dict, stress: dict) -> list[tuple[str, float]]:
    """(instrument, notional USD at the scenario's market) of every position, largest first."""
    now, at = _account_now(book, market, scenario(book, market, account, stress), hedges=False)
    arr = instrument_arrays(now.instruments, at)
    notional = np.abs(now.quantities) * arr.spot * arr.multiplier
    return [(arr.names[k], float(notional[k])) for k in np.argsort(-notional, kind="stable") if now.quantities[k]]


def schedule_inputs(book: dict, market: dict, account: dict, stress: dict, params: dict, instrument: str,
                    days: float) -> ScheduleInputs:
    """Almgren–Chriss inputs for closing ``instrument`` over ``days`` at the scenario's market,
    from the plan's cost model (``engine.liquidation.schedule.schedule_inputs``)."""
    now, at = _account_now(book, market, scenario(book, market, account, stress), hedges=False)
    k = next(k for k, inst in enumerate(now.instruments) if inst.name == instrument)
    return engine_schedule_inputs(now.instruments[k], float(now.quantities[k]), at, days, settings_of(params).cost)


def schedule(inputs: ScheduleInputs, days: float, steps: int, lam: float
             ) -> tuple[ExecutionSchedule, EfficientFrontier]:
    """The optimal trajectory at λ and the frontier over λ (ValueError: the engine's reason)."""
    args = (inputs.X, inputs.sigma, inputs.eta, inputs.gamma, float(days), int(steps))
    return (almgren_chriss_schedule(*args, float(lam), inputs.epsilon),
            efficient_frontier(*args, epsilon=inputs.epsilon))


def schedule_problems(days, steps, lam) -> list[str]:
    problems = []
    if not (guard.is_number(days) and days > 0):
        problems.append("horizon T: enter a number of days > 0")
    if not (guard.is_number(steps) and steps >= 1 and float(steps).is_integer()):
        problems.append("intervals N: enter a whole number ≥ 1")
    if not (guard.is_number(lam) and lam >= 0):
        problems.append("risk aversion λ: enter a number ≥ 0 (0: the straight line)")
    return problems


# ----------------------------------------------------------------------------- auction


def auction(plan: LiquidationPlan, params: dict) -> AuctionResult | None:
    """The Dutch auction of the account the plan starts from (MtM = its equity, positions plus
    cash; MM' = equity − MM), or None when it is not under MM."""
    excess = plan.equity_before - plan.mm_before
    if excess >= 0:
        return None
    settings = settings_of(params)
    return simulate_auction(plan.equity_before, excess, settings.auction, settings.bidders,
                            insurance_fund=settings.plan.insurance_fund)
