"""Risk-based (scenario) portfolio margin with exchange presets as data (docs/methodology.md §6.2, §9).

Sources: Deribit portfolio margin (support article "Portfolio Margin" and the API's
``private/pme/simulate`` example: BTC parameters price_range 0.16, volatility_range_up 0.5,
volatility_range_down 0.25, min_volatility_for_shock_up 0.5, short/long_term_vega_power 0.30/0.13,
max_delta_shock 0.1, delta_total_liq_shock_threshold 20,000,000, annualised_move_risk 0.075,
min_annualised_move 0.01, mm_factor 0.8); Derive PM2 (``PMRMLib_2.sol`` of derivexyz/v2-core:
scenario loss × im/mm factor, basis contingency as the initial worst scenario, perp and
naked-short contingencies with IM adding both MM and IM percentages); OKX portfolio margin
(announcement of 2025-01: MR1 ±4/8/12 %, MR6 ±24 %, MR4 annualised move 5 %, MR7 tier
multipliers); Paradex portfolio margin docs (24 scenarios, vol shock +40 %/−22 % relative with
vega power 0.30/0.13, minimum delta requirement, MMR = 50 % of IMR).  The presets are the JSON
files in ``presets/``; this module has no per-exchange branch.

Each underlying is margined separately (the four venues do the same).  For underlying u:

    P&L_s = Σ_i q_i·[V_i(S·(1 + s), σ_i^(v)) − V_i]   scenario s = (spot shock, vol v, weight w)
    L     = max(0, −min_s w_s·P&L_s, F)                worst weighted loss, F the forward floor
    C     = delta shock + roll shock                   contingencies scaled with the loss
    M     = max(minimum delta charge, minimum charge)  floors
    IM_u  = im_factor·max(L + C, M) + A_im             A: add-on contingencies (Derive)
    MM_u  = mm_factor·max(L + C, M) + A_mm
    IM = Σ_u IM_u,  MM = Σ_u MM_u

Vol shock, on the option's current vol σ (sticky strike), T in days:
m = (pivot / max(T, floor))^p with p = short_power if T ≤ pivot else long_power;
up: max(min_vol_up, σ·(1 + range_up·m)); down: σ·max(0, 1 − range_down·m) (floored at 1 vol
point by the pricer); none: σ.  Scenarios are instantaneous and move every forward with spot.

Contingencies (a zero parameter switches one off):

* delta shock (Deribit; our definition, Deribit does not publish the formula):
  max_delta_shock · max(|Δ$_u| − delta_liquidity_threshold, 0), Δ$_u the net spot delta in USD —
  an extra move on the part of a directional position too large to close at the index.
* roll shock (Deribit; our definition, which reproduces the published ``pme/simulate`` example
  exactly: perp 0.314538364 and future −0.001187534 BTC, 11 days → roll_shock 0.00315725898 =
  0.01 × (0.314538364 + 0.001187534)):  Σ_e |D_e|·max(min_annualised_move,
  annualised_move_risk·T_e), D_e the net forward delta (USD at spot) of expiry e, perpetuals at
  T = 0, spot holdings excluded — the risk that the basis of each expiry moves.
  OKX's MR4 basis risk uses the same form (annualised move 5 %, no minimum).
* forward floor (Derive basis contingency): per expiry, the P&L with every forward ×(1 ± f)
  (vol unchanged), min(up, down, 0) × (forward_base_factor + forward_time_factor·T_e), summed
  over expiries; its negative is a floor on L.
* minimum delta charge (Paradex): (min_delta_net·|Δ⁺ − Δ⁻| + min_delta_hedged·min(Δ⁺, Δ⁻)), Δ⁺/Δ⁻
  the USD spot deltas of the net long/short delta instruments (hedged delta = the offset part).
* minimum charge (OKX MR7): raw = min_charge_rate × gross notional of derivatives, times the
  tier multiplier of the raw amount.
* add-ons (Derive): A_mm = perp_mm·perp notional + naked_short_mm·S·naked shorts,
  A_im = A_mm + perp_im·… + naked_short_im·…; naked shorts netted per (expiry, strike):
  max(−(calls + puts), 0).

Exchange-wide use: :func:`account_margins` margins many accounts from one (instruments ×
scenarios) P&L matrix and a sparse (accounts × instruments) quantity matrix.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from importlib import resources

import numpy as np

from .core import (PERPETUAL_CODE, SPOT_CODE, GroupTerm, Kernel, ParamCheck, Universe,
                   evaluate_accounts, scenario_table, worst_loss)

VOL_DIRECTIONS = {"up": 1, "none": 0, "down": -1}
PRESET_DIR = "presets"


@dataclass(frozen=True)
class Scenario:
    """Spot shock (fraction), vol direction ("up", "none", "down") and P&L weight."""

    spot: float
    vol: str = "none"
    weight: float = 1.0

    @property
    def label(self) -> str:
        text = f"spot {self.spot * 100:+g}% vol {self.vol}"
        return text if self.weight == 1.0 else f"{text} ×{self.weight:.4g}"


@dataclass(frozen=True)
class VolShock:
    """Term-structure vol shock (see the module docstring); ranges are relative to σ."""

    range_up: float = 0.5
    range_down: float = 0.25
    min_vol_up: float = 0.5
    short_power: float = 0.30
    long_power: float = 0.13
    pivot_days: float = 30.0
    floor_days: float = 1.0

    def multiplier(self, T_years) -> np.ndarray:
        """m = (pivot / max(T, floor))^p, T in years."""
        days = np.asarray(T_years, dtype=float) * 365.0
        power = np.where(days <= self.pivot_days, self.short_power, self.long_power)
        return (self.pivot_days / np.maximum(days, self.floor_days)) ** power

    def shocked(self, sigma, T_years, direction: int) -> np.ndarray:
        """Shocked vol (decimal) of options with vol ``sigma`` and expiry ``T_years``."""
        sigma = np.asarray(sigma, dtype=float)
        m = self.multiplier(T_years)
        if direction > 0:
            return np.maximum(self.min_vol_up, sigma * (1.0 + self.range_up * m))
        if direction < 0:
            return sigma * np.maximum(0.0, 1.0 - self.range_down * m)
        return sigma


@dataclass(frozen=True)
class RiskBasedParams:
    """Scenario list, vol-shock rule, factors and contingencies (module docstring).

    The published defaults are the presets: ``load_preset("deribit")`` (what
    ``default_params("risk_based")`` returns), "derive", "okx", "paradex".  Contingency fields
    default to 0 (off).  ``min_charge_tiers``: (upper bound of the raw charge in USD,
    multiplier), ascending; beyond the last bound the last multiplier applies.
    """

    preset: str
    scenarios: tuple[Scenario, ...]
    vol_shock: VolShock = field(default_factory=VolShock)
    im_factor: float = 1.0
    mm_factor: float = 1.0
    max_delta_shock: float = 0.0
    delta_liquidity_threshold: float = 0.0
    annualised_move_risk: float = 0.0
    min_annualised_move: float = 0.0
    forward_shock: float = 0.0
    forward_base_factor: float = 0.0
    forward_time_factor: float = 0.0
    min_delta_net: float = 0.0
    min_delta_hedged: float = 0.0
    min_charge_rate: float = 0.0
    min_charge_tiers: tuple[tuple[float, float], ...] = ()
    perp_mm: float = 0.0
    perp_im: float = 0.0
    naked_short_mm: float = 0.0
    naked_short_im: float = 0.0

    def validate(self) -> None:
        c = ParamCheck(f"risk_based ({self.preset})")
        c.require(len(self.scenarios) > 0, "the scenario list is empty: at least one scenario is needed")
        for k, s in enumerate(self.scenarios):
            c.range(f"scenario {k + 1} spot shock", s.spot, -1.0, 10.0, open_lo=True)
            c.range(f"scenario {k + 1} weight", s.weight, 0.0, 10.0, open_lo=True)
            c.require(s.vol in VOL_DIRECTIONS, f"scenario {k + 1} vol must be up, none or down (got {s.vol!r})")
        v = self.vol_shock
        c.range("vol range_up", v.range_up, 0.0, 10.0)
        c.range("vol range_down", v.range_down, 0.0, 10.0)
        c.range("min_vol_up", v.min_vol_up, 0.0, 5.0)
        c.range("short_power", v.short_power, 0.0, 2.0)
        c.range("long_power", v.long_power, 0.0, 2.0)
        c.range("pivot_days", v.pivot_days, 0.0, 3650.0, open_lo=True)
        c.range("floor_days", v.floor_days, 0.0, 365.0, open_lo=True)
        c.range("im_factor", self.im_factor, 0.0, 10.0, open_lo=True)
        c.range("mm_factor", self.mm_factor, 0.0, 10.0)
        c.require(self.mm_factor <= self.im_factor, "mm_factor must not exceed im_factor (IM ≥ MM)")
        for name in ("max_delta_shock", "annualised_move_risk", "min_annualised_move", "min_delta_net",
                     "min_delta_hedged", "min_charge_rate", "perp_mm", "perp_im", "naked_short_mm",
                     "naked_short_im"):
            c.range(name, getattr(self, name), 0.0, 10.0)
        c.range("delta_liquidity_threshold", self.delta_liquidity_threshold, 0.0, 1e15)
        c.range("forward_shock", self.forward_shock, 0.0, 0.99)
        c.range("forward_base_factor", self.forward_base_factor, 0.0, 100.0)
        c.range("forward_time_factor", self.forward_time_factor, 0.0, 100.0)
        bounds = [t[0] for t in self.min_charge_tiers]
        c.require(all(b > 0 for b in bounds) and bounds == sorted(bounds),
                  "min_charge_tiers bounds must be positive and ascending")
        c.require(all(1.0 <= t[1] <= 100.0 for t in self.min_charge_tiers),
                  "min_charge_tiers multipliers must be in [1, 100]")
        c.done()

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (explicit scenario list); :func:`params_from_dict` reads it."""
        out = asdict(self)
        out["scenarios"] = list(out["scenarios"])
        out["min_charge_tiers"] = [[None if math.isinf(b) else b, m] for b, m in self.min_charge_tiers]
        return out


# ----------------------------------------------------------------------------- presets


def _scenario(k: int, s: dict) -> Scenario:
    """Scenario ``k`` (1-based) of an explicit list; a non-number names the scenario and field."""
    values = {}
    for key, default in (("spot", None), ("weight", 1.0)):
        raw = s.get(key, default)
        try:
            values[key] = float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"scenario {k} {key}: {raw!r} is not a number") from None
    return Scenario(values["spot"], s.get("vol", "none"), values["weight"])


def _scenarios_from_spec(spec) -> tuple[Scenario, ...]:
    """Explicit list of {spot, vol, weight}, or the compact preset form: a ``grid`` (spot × vol),
    ``extra`` scenarios and ``tails`` (vol, weight = weight_numerator/|spot|)."""
    if isinstance(spec, (list, tuple)):
        return tuple(_scenario(k, s) for k, s in enumerate(spec, start=1))
    out = []
    grid = spec.get("grid")
    if grid:
        out += [Scenario(float(s), v) for s in grid["spot"] for v in grid["vol"]]
    out += [_scenario(k, s) for k, s in enumerate(spec.get("extra", []), start=len(out) + 1)]
    tails = spec.get("tails")
    if tails:
        out += [Scenario(float(s), tails.get("vol", "up"), float(tails["weight_numerator"]) / abs(float(s)))
                for s in tails["spot"]]
    return tuple(out)


def params_from_dict(data: dict, preset: str = "custom") -> RiskBasedParams:
    """Build params from a preset file's structure or from :meth:`RiskBasedParams.to_dict`.

    Raises ValueError naming an unknown key (the params are not validated here).
    """
    data = dict(data)
    for key in ("title", "source", "notes"):
        data.pop(key, None)
    flat = dict(data.pop("contingencies", {}))
    flat.update(data)
    known = {f.name for f in fields(RiskBasedParams)}
    unknown = sorted(set(flat) - known)
    if unknown:
        raise ValueError(f"risk_based parameters: unknown key(s) {', '.join(unknown)}")
    flat.setdefault("preset", preset)
    flat["scenarios"] = _scenarios_from_spec(flat.get("scenarios", []))
    vol = flat.get("vol_shock", {})
    flat["vol_shock"] = vol if isinstance(vol, VolShock) else VolShock(**vol)
    flat["min_charge_tiers"] = tuple((math.inf if b is None else float(b), float(m))
                                     for b, m in flat.get("min_charge_tiers", ()))
    return RiskBasedParams(**flat)


def preset_names() -> tuple[str, ...]:
    files = resources.files(__package__).joinpath(PRESET_DIR).iterdir()
    return tuple(sorted(f.name[:-5] for f in files if f.name.endswith(".json")))


def _preset_data(name: str) -> dict:
    if name not in preset_names():
        raise ValueError(f"unknown risk_based preset {name!r}; choose one of {', '.join(preset_names())}")
    with resources.files(__package__).joinpath(PRESET_DIR, f"{name}.json").open("r", encoding="utf-8") as f:
        return json.load(f)


def load_preset(name: str) -> RiskBasedParams:
    """The published parameters of ``name`` (``presets/<name>.json``)."""
    return params_from_dict(_preset_data(name), name)


def preset_info(name: str) -> dict:
    """Title, source and notes of a preset (for display)."""
    data = _preset_data(name)
    return {k: data.get(k, "") for k in ("title", "source", "notes")}


# ----------------------------------------------------------------------------- kernel


def scenario_vol_shocks(universe: Universe, rule: VolShock, direction: np.ndarray) -> np.ndarray:
    """Absolute vol shocks (scenarios, instruments) that move each option's vol to the rule's
    shocked vol for its scenario direction (0 for linear instruments)."""
    o = universe.is_option
    sigma, T = universe.vol[o], universe.arrays.T[o]
    out = np.zeros((len(direction), universe.n_instruments))
    for d in (1, -1):
        rows = np.flatnonzero(direction == d)
        if len(rows):
            out[np.ix_(rows, np.flatnonzero(o))] = rule.shocked(sigma, T, d) - sigma
    return out


def tier_multiplier(raw: np.ndarray, tiers) -> np.ndarray:
    if not tiers:
        return np.ones_like(raw)
    bounds = np.array([t[0] for t in tiers])
    mult = np.array([t[1] for t in tiers])
    return mult[np.minimum(np.searchsorted(bounds, raw, side="left"), len(mult) - 1)]


class RiskBasedKernel(Kernel):
    """Linear features: weighted scenario P&L (S), net spot delta USD (1), forward delta USD by
    expiry (E), forward-shock P&L up and down by expiry (2E).  Group terms: long and short spot
    delta USD per instrument, gross derivative notional, perp notional, naked shorts per
    (expiry, strike)."""

    components = ("scenario_loss", "forward_floor", "delta_shock", "roll_shock", "minimum",
                  "perp_contingency", "option_contingency")

    def __init__(self, universe: Universe, params: RiskBasedParams, instrument_pnl: np.ndarray | None = None):
        p = self.params = params
        arr = universe.arrays
        self.spots = np.array([s.spot for s in p.scenarios])
        self.direction = np.array([VOL_DIRECTIONS[s.vol] for s in p.scenarios])
        self.weights = np.array([s.weight for s in p.scenarios])
        self.labels = [s.label for s in p.scenarios]
        if instrument_pnl is None:
            instrument_pnl = universe.scenario_pnl(self.spots, scenario_vol_shocks(universe, p.vol_shock, self.direction))
        elif np.shape(instrument_pnl) != (universe.n_instruments, len(p.scenarios)):
            raise ValueError(f"instrument_pnl must be (instruments, scenarios) = "
                             f"({universe.n_instruments}, {len(p.scenarios)}), got {np.shape(instrument_pnl)}")
        self.instrument_pnl = np.asarray(instrument_pnl, dtype=float)
        S = arr.spot
        not_spot = arr.kind != SPOT_CODE
        dated = (arr.kind != SPOT_CODE) & (arr.kind != PERPETUAL_CODE)
        fwd = universe.scenario_pnl([p.forward_shock, -p.forward_shock]) if p.forward_shock else \
            np.zeros((universe.n_instruments, 2))
        E = universe.n_buckets
        self.sl_scen = slice(0, len(p.scenarios))
        self.col_delta = self.sl_scen.stop
        self.sl_roll = slice(self.col_delta + 1, self.col_delta + 1 + E)
        self.sl_fwd_up = slice(self.sl_roll.stop, self.sl_roll.stop + E)
        self.sl_fwd_down = slice(self.sl_fwd_up.stop, self.sl_fwd_up.stop + E)
        delta_usd = universe.spot_delta * S
        linear = np.hstack([
            self.instrument_pnl * self.weights,
            delta_usd[:, None],
            universe.by_bucket(universe.fwd_delta * S, not_spot),
            universe.by_bucket(fwd[:, 0], dated),
            universe.by_bucket(fwd[:, 1], dated),
        ])
        opt = universe.is_option
        groups = (
            GroupTerm.per_instrument(universe, True, 1.0, 0.0, delta_usd),
            GroupTerm.per_instrument(universe, True, 0.0, 1.0, delta_usd),
            GroupTerm.per_instrument(universe, not_spot, p.min_charge_rate * universe.notional,
                                     p.min_charge_rate * universe.notional),
            GroupTerm.per_instrument(universe, arr.kind == PERPETUAL_CODE, universe.notional, universe.notional),
            _naked_short_term(universe) if opt.any() else GroupTerm.per_instrument(universe, False, 0.0, 0.0),
        )
        super().__init__(universe, linear, groups)
        T_e = universe.bucket_T
        self.forward_factor = p.forward_base_factor + p.forward_time_factor * T_e
        self.roll_rate = np.maximum(p.min_annualised_move, p.annualised_move_risk * T_e)

    def per_underlying(self, lin, grp, und):
        p = self.params
        scan = worst_loss(lin[:, self.sl_scen])
        worst_fwd = np.minimum(np.minimum(lin[:, self.sl_fwd_up], lin[:, self.sl_fwd_down]), 0.0)
        floor = -(worst_fwd @ self.forward_factor)
        loss = np.maximum(scan, floor)
        delta_shock = p.max_delta_shock * np.maximum(np.abs(lin[:, self.col_delta]) - p.delta_liquidity_threshold, 0.0)
        roll = np.abs(lin[:, self.sl_roll]) @ self.roll_rate
        long_d, short_d, raw, perp, naked = grp.T
        minimum = np.maximum(p.min_delta_net * np.abs(long_d - short_d) + p.min_delta_hedged * np.minimum(long_d, short_d),
                             raw * tier_multiplier(raw, p.min_charge_tiers))
        core = np.maximum(loss + delta_shock + roll, minimum)
        perp_im = (p.perp_mm + p.perp_im) * perp
        option_im = (p.naked_short_mm + p.naked_short_im) * naked
        im = p.im_factor * core + perp_im + option_im
        mm = p.mm_factor * core + p.perp_mm * perp + p.naked_short_mm * naked
        return np.column_stack([im, mm, scan, floor, delta_shock, roll, minimum, perp_im, option_im])

    def scenario_table(self, lin):
        return scenario_table(self.universe, self.labels, self.spots, self.direction,
                              np.full(len(self.spots), np.nan), self.weights, lin[:, self.sl_scen])


def _naked_short_term(universe: Universe) -> GroupTerm:
    """Naked shorts per (underlying, expiry, strike): x = Σ q·multiplier over the calls and puts
    of the group; charge S per unit of max(−x, 0) (Derive nets a short call against a long put
    of the same strike)."""
    arr = universe.arrays
    o = np.flatnonzero(universe.is_option)
    keys = np.column_stack([arr.und_index[o], universe.bucket[o], arr.strike[o]])
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    group = np.full(universe.n_instruments, -1)
    group[o] = inverse.ravel()
    und = uniq[:, 0].astype(int)
    return GroupTerm(group, arr.multiplier.copy(), np.zeros(len(uniq)), universe.und_spot[und], und)


def prepare(universe: Universe, params: RiskBasedParams) -> RiskBasedKernel:
    return RiskBasedKernel(universe, params)


# ----------------------------------------------------------------------------- accounts


@dataclass(frozen=True)
class AccountMargins:
    """Per account (arrays of length A, USD): initial, maintenance and the components."""

    initial: np.ndarray
    maintenance: np.ndarray
    components: dict


def account_margins(quantities, universe: Universe, params: RiskBasedParams,
                    instrument_pnl: np.ndarray | None = None) -> AccountMargins:
    """Initial and maintenance margin of many accounts on one instrument universe.

    ``quantities``: scipy.sparse (or dense) (accounts × instruments) signed contracts, columns in
    ``universe.arrays.instruments`` order.  ``instrument_pnl``: optional (instruments ×
    scenarios) P&L per contract (USD, unweighted, ``params.scenarios`` order), e.g. already
    revalued by the caller; computed from the universe when omitted.

    Aggregation: accounts never net across underlyings.  For each underlying u, the accounts'
    scenario P&L is the sparse-dense product Q_u·P_u (accounts × scenarios) and the worst
    weighted loss is a row minimum.  The contingencies aggregate the same way per underlying:
    delta shock and roll shock from further linear columns (net delta, delta by expiry), naked
    shorts, perp notional and the minimum charges from sparse piecewise-linear group sums
    (x = Q·M, then up·x⁺ + down·x⁻), so each account's IM_u is exactly what :func:`compute` gives
    its book; IM = Σ_u IM_u.  Cost ≈ nnz(Q) × (scenarios + 3·expiries) per underlying.
    """
    params.validate()
    kernel = RiskBasedKernel(universe, params, instrument_pnl)
    rows = evaluate_accounts(kernel, quantities)
    return AccountMargins(rows[:, 0], rows[:, 1], {name: rows[:, 2 + k] for k, name in enumerate(kernel.components)})
