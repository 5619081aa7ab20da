"""Risk-based (scenario) portfolio margin with exchange presets as data (docs/venues.md, docs/methodology.md §6.2).

Sources: Derive PM2 (``PMRMLib_2.sol`` / ``PMRM_2.sol`` of derivexyz/v2-core, BUSL-1.1: scenarios,
vol shocks, static discount, skew scenarios, basis, perp, option, collateral and oracle
contingencies; reproduced to the cent on its published test portfolios); Deribit portfolio
margin (support article "Portfolio Margin", API ``private/pme/simulate`` example); OKX portfolio
margin (announcement of 2025-01); Paradex portfolio margin docs.  The presets are the JSON files
in ``presets/`` (which parameter set each is: its ``source``/``notes``); this module has no
per-exchange branch.  Parameters are grouped under the venue structs (Derive's names):
``vol_shock``, ``margin``, ``static_discount``, ``basis_contingency``, ``other_contingency``,
``skew_shock``; Deribit/OKX/Paradex pieces under ``delta_shock``, ``roll_shock``,
``extended_table``, ``minimum_charge``.  A zero parameter switches a piece off.

Each underlying u is margined separately.  Options are grouped by expiry e (V_e: the expiry's
value, V_e⁰ at the snapshot).  Scenario s = (spot multiplier 1 + s, vol direction, weight w):

    V_e,s   = Σ_{i∈e} q_i·B76(F_i,s, K_i, T_e, σ_i,s, r_e)          options of expiry e
    F_i,s   = F_i·(φ_e + (1 − φ_e)·(1 + s)),  φ_e = max(0, 1 − t_e/window)   fixed forward
              near settlement (the settlement TWAP window; 0 = off)
    D_e(x)  = pos_e if x ≥ 0 else neg_e                               static discount
    pos_e   = long_base·e^{−T(r·long_mult + long_add)}
    neg_e   = min(e^{rT}, short_base·e^{T(r·short_mult + short_add)})
    x_e,s   = w·(D_e(V_e,s)·V_e,s − V_e⁰);  skew scenarios (linear, abs) count −|x_e,s|
    P&L_s   = Σ_e x_e,s + w·(Σ_linear q·P·s + rc_u·s)
              linear instruments at their reference price P (perps: the perp mark), rc_u the
              value of risk-cancelling collateral tied to u
    B_u     = Σ_e min(V_e(up) − V_e⁰, V_e(down) − V_e⁰, 0)·(add + mult·T_e)   basis contingency
    L_u     = max(0, −min(B_u, min_s P&L_s))                          worst loss

Vol shock (multiplicative, sticky strike), m = (pivot / max(T_days, dte_floor))^p, p the short
power when T ≤ pivot else the long power: up σ·(1 + range_up·m) floored at min_vol_up_shock;
down σ·max(0, 1 − range_down·m); none σ.  Skew scenarios (spot unchanged): k = ln(K/F)
(|k| for abs), cap = c_base·√T + base_cap, k* = max(min_k_star, √T·width·(static + scale·√T)),
σ' = σ·max(0, 1 + clamp(k·cap/k*, −cap, cap)).

Requirements, per underlying (peg = max(0, peg_threshold − stable price)·peg_factor):

    MM_u = mm_factor·L_u + A_mm
    IM_u = (im_factor + peg)·L_u + A_mm + A_im
    with L_u replaced by max(L_u + delta shock + roll shock, M), M the floors (Deribit, OKX,
    Paradex; below)
    A_mm = mm_perp·|perp|·S + mm_option·S·naked shorts
    A_im = im_perp·|perp|·S + im_option·S·naked shorts + oracle contingencies
    oracle contingency of a feed of confidence c < conf_threshold: (1 − c)·conf_margin·notional
      (perps: |perp|·S with c = min(spot, perp confidence); expiry e: Σ|q|·S with
      c = min(portfolio confidence, forward/rate/vol confidences of e))

Collateral haircuts and the oracle contingency of collateral are account charges
(:func:`collateral_charges`), added by :func:`engine.margin.compute`.

Extended moves (Deribit's extended table; our definition, consistent with the published
example): the scenario's edge e is the standard move on its side; its P&L is
P&L(e) + w·(P&L(m) − P&L(e)·m/e) (USD), and a loss counts beyond extended_dampener only.

Contingencies of the other venues:
* delta shock (Deribit; our definition): max_delta_shock·max(|Δ$_u| − delta_total_liq_shock_threshold, 0).
* roll shock (Deribit; our definition, reproduces the published ``pme/simulate`` example):
  Σ_e |D_e|·max(min_annualised_move, annualised_move_risk·T_e), D_e the net forward delta
  (USD at spot) of expiry e, perpetuals at T = 0, spot holdings excluded.  OKX MR4 the same.
* minimum delta charge (Paradex): min_delta_net·|Δ⁺ − Δ⁻| + min_delta_hedged·min(Δ⁺, Δ⁻).
* minimum charge (OKX MR7): min_charge_rate × gross notional, times the tier multiplier.

Coin-denominated underlyings (a BTC/ETH-margined account's own coin, Deribit's inverse books):
every value is measured in coin at its own shocked reference price (options V/F, linear
instruments P&L/P: an inverse contract's N·(1/P₀ − 1/P₁)); the requirement is in coin.

Exchange-wide use: :func:`account_margins` margins many accounts from one (instruments ×
scenarios) P&L matrix and a sparse (accounts × instruments) quantity matrix.
"""
from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from importlib import resources

import numpy as np

from ..account import NO_FEEDS, Account, AccountError, CollateralValues, VenueFeeds
from ..pricing import black76_price
from .core import (
    FUTURE_CODE,
    OPTION_CODE,
    PERPETUAL_CODE,
    SECONDS_PER_YEAR,
    SPOT_CODE,
    GroupTerm,
    Kernel,
    ParamCheck,
    Universe,
    evaluate_accounts,
    scenario_table,
)
from .params import check_ranges, param

VOL_DIRECTIONS = {"up": 1, "none": 0, "down": -1, "linear": 2, "abs": 3}
SKEW = (2, 3)
PRESET_DIR = "presets"


@dataclass(frozen=True)
class Scenario:
    """Spot shock (fraction), vol direction (up, none, down, linear, abs) and P&L weight
    (Derive's dampening factor)."""

    spot: float
    vol: str = "none"
    weight: float = 1.0
    #: extended scenario (Deribit's extended table): ``edge`` is the spot shock of the table's
    #: edge on its side; P&L = P&L(edge) + weight·(P&L(spot) − P&L(edge)·spot/edge), same vol
    edge: float | None = None

    @property
    def label(self) -> str:
        if self.vol in ("linear", "abs"):
            text = f"skew {self.vol}"
        elif self.edge is not None:
            return f"extended {self.spot * 100:+g}% vol {self.vol} (edge {self.edge * 100:+g}%, ×{self.weight:.4g})"
        else:
            text = f"spot {self.spot * 100:+g}% vol {self.vol}"
        return text if self.weight == 1.0 else f"{text} ×{self.weight:.4g}"


@dataclass(frozen=True)
class VolShock:
    """Derive VolShockParameters (Deribit: volatility_range_up/down, min_volatility_for_shock_up,
    short/long_term_vega_power)."""

    vol_range_up: float = param(0.5, unit="fraction of σ", description="vol shock up at the pivot", lo=0.0, hi=10.0)
    vol_range_down: float = param(0.25, unit="fraction of σ", description="vol shock down at the pivot",
                                  lo=0.0, hi=10.0)
    min_vol_up_shock: float = param(0.5, unit="vol (decimal)", description="floor of a shocked-up vol",
                                    lo=0.0, hi=20.0)
    short_term_power: float = param(0.30, unit="", description="time power up to the pivot", lo=0.0, hi=10.0)
    long_term_power: float = param(0.13, unit="", description="time power beyond the pivot", lo=0.0, hi=10.0)
    dte_floor: float = param(1.0, unit="days", description="floor of days to expiry in the time scaling",
                             lo=0.0, hi=400.0)
    pivot_days: float = param(30.0, unit="days", description="pivot of the time scaling", lo=0.0, hi=3650.0,
                              lo_open=True)

    def multiplier(self, T_years) -> np.ndarray:
        """m = (pivot / max(T, floor))^p, T in years (a day's 1e-9 keeps T = floor = 0 finite)."""
        days = np.asarray(T_years, dtype=float) * 365.0
        power = np.where(days <= self.pivot_days, self.short_term_power, self.long_term_power)
        return (self.pivot_days / np.maximum(np.maximum(days, self.dte_floor), 1e-9)) ** power

    def factor(self, T_years, direction: int) -> np.ndarray:
        """Multiplier of σ for ``direction`` (+1 up, −1 down, 0 none), before the up floor."""
        m = self.multiplier(T_years)
        if direction > 0:
            return 1.0 + self.vol_range_up * m
        if direction < 0:
            return np.maximum(0.0, 1.0 - self.vol_range_down * m)
        return np.ones_like(m)

    def shocked(self, sigma, T_years, direction: int) -> np.ndarray:
        """Shocked vol (decimal) of options with vol ``sigma`` and expiry ``T_years``."""
        out = np.asarray(sigma, dtype=float) * self.factor(T_years, direction)
        return np.maximum(self.min_vol_up_shock, out) if direction > 0 else out


@dataclass(frozen=True)
class Margin:
    """Derive MarginParameters: factors on the worst scenario loss."""

    im_factor: float = param(1.0, unit="×", description="IM factor on the worst loss", lo=0.0, hi=10.0, lo_open=True)
    mm_factor: float = param(1.0, unit="×", description="MM factor on the worst loss (Derive accepts it above "
                             "im_factor: MM may then exceed IM)", lo=0.0, hi=10.0)


@dataclass(frozen=True)
class StaticDiscount:
    """Derive MarginParameters, static discount part (1, 0, 0 = no discount)."""

    long_base_static_discount: float = param(1.0, unit="×", description="base discount of a positive expiry value",
                                             lo=0.0, hi=4.0)
    long_rate_mult_scale: float = param(0.0, unit="×", description="rate multiplier, positive value", lo=0.0, hi=10.0)
    long_rate_add_scale: float = param(0.0, unit="1/year", description="rate add-on, positive value", lo=0.0, hi=10.0)
    short_base_static_discount: float = param(1.0, unit="×", description="base factor of a negative expiry value",
                                              lo=0.0, hi=4.0)
    short_rate_mult_scale: float = param(0.0, unit="×", description="rate multiplier, negative value", lo=0.0, hi=10.0)
    short_rate_add_scale: float = param(0.0, unit="1/year", description="rate add-on, negative value",
                                        lo=0.0, hi=10.0)

    def factors(self, T, rate):
        """(pos, neg) factors per expiry (module docstring)."""
        T, r = np.asarray(T, dtype=float), np.asarray(rate, dtype=float)
        pos = self.long_base_static_discount * np.exp(-T * (r * self.long_rate_mult_scale + self.long_rate_add_scale))
        neg = self.short_base_static_discount * np.exp(T * (r * self.short_rate_mult_scale + self.short_rate_add_scale))
        return pos, np.minimum(np.exp(r * T), neg)


@dataclass(frozen=True)
class BasisContingency:
    """Derive BasisContingencyParameters: spot multipliers up/down, factor add + mult·T."""

    scenario_spot_up: float = param(1.0, unit="× spot", description="forward scenario up", lo=1.0, hi=3.0)
    scenario_spot_down: float = param(1.0, unit="× spot", description="forward scenario down", lo=0.0, hi=1.0)
    basis_cont_add_factor: float = param(0.0, unit="×", description="factor, constant part", lo=0.0, hi=20.0)
    basis_cont_mult_factor: float = param(0.0, unit="1/year", description="factor, per year to expiry",
                                          lo=0.0, hi=20.0)


@dataclass(frozen=True)
class OtherContingency:
    """Derive OtherContingencyParameters: peg loss, oracle confidence, perp and option add-ons."""

    peg_loss_threshold: float = param(0.0, unit="USD", description="stable price below which IM rises",
                                      lo=0.0, hi=100.0)
    peg_loss_factor: float = param(0.0, unit="×", description="IM factor added per USD of peg loss", lo=0.0, hi=10.0)
    conf_threshold: float = param(0.0, unit="fraction", description="oracle confidence below which IM rises",
                                  lo=0.0, hi=1.0)
    conf_margin: float = param(0.0, unit="×", description="IM per unit of (1 − confidence) of notional",
                               lo=0.0, hi=20.0)
    mm_perp_percent: float = param(0.0, unit="fraction of notional", description="perp MM add-on", lo=0.0, hi=3.0)
    im_perp_percent: float = param(0.0, unit="fraction of notional", description="perp IM add-on (on top of MM)",
                                   lo=0.0, hi=3.0)
    mm_option_percent: float = param(0.0, unit="fraction of spot", description="MM per naked short", lo=0.0, hi=2.0)
    im_option_percent: float = param(0.0, unit="fraction of spot", description="IM per naked short (on top of MM)",
                                     lo=0.0, hi=2.0)


@dataclass(frozen=True)
class SkewShock:
    """Derive SkewShockParameters (only used by linear/abs scenarios)."""

    linear_base_cap: float = param(0.0, unit="×", description="cap of the linear multiplier", lo=0.0, hi=10.0)
    abs_base_cap: float = param(0.0, unit="×", description="cap of the abs multiplier", lo=0.0, hi=10.0)
    linear_c_base: float = param(0.0, unit="per √year", description="cap change per √T, linear", lo=-10.0, hi=10.0)
    abs_c_base: float = param(0.0, unit="per √year", description="cap change per √T, abs", lo=-10.0, hi=10.0)
    min_k_star: float = param(0.01, unit="log-moneyness", description="floor of k*", lo=0.0, hi=10.0)
    width_scale: float = param(0.0, unit="×", description="k* width scale", lo=0.0, hi=10.0)
    vol_param_static: float = param(0.0, unit="vol", description="k* vol parameter, constant", lo=0.0, hi=10.0)
    vol_param_scale: float = param(0.0, unit="vol per √year", description="k* vol parameter per √T",
                                   lo=-20.0, hi=20.0)

    def multiplier(self, k, sqrt_T, absolute: bool) -> np.ndarray:
        cap = (self.abs_c_base if absolute else self.linear_c_base) * sqrt_T + \
            (self.abs_base_cap if absolute else self.linear_base_cap)
        k_star = np.maximum(self.min_k_star, sqrt_T * self.width_scale * (self.vol_param_static
                                                                          + sqrt_T * self.vol_param_scale))
        k = np.abs(k) if absolute else k
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where(k_star > 0, k * cap / k_star, 0.0)
        return np.maximum(0.0, 1.0 + np.clip(x, -np.abs(cap), np.abs(cap)))


@dataclass(frozen=True)
class DeltaShock:
    """Deribit currency-pair parameters max_delta_shock and delta_total_liq_shock_threshold."""

    max_delta_shock: float = param(0.0, unit="fraction", description="extra move on delta beyond the threshold",
                                   lo=0.0, hi=10.0)
    delta_total_liq_shock_threshold: float = param(0.0, unit="USD", description="delta liquid at the index",
                                                   lo=0.0, hi=1e15)


@dataclass(frozen=True)
class RollShock:
    """Deribit currency parameters annualised_move_risk and min_annualised_move (OKX MR4)."""

    annualised_move_risk: float = param(0.0, unit="1/year", description="basis move per year to expiry",
                                        lo=0.0, hi=10.0)
    min_annualised_move: float = param(0.0, unit="fraction", description="floor of the basis move", lo=0.0, hi=10.0)


@dataclass(frozen=True)
class ExtendedTable:
    """Deribit currency parameter extended_dampener (our definition: an extended move's loss
    counts beyond this amount, USD)."""

    extended_dampener: float = param(0.0, unit="USD", description="loss of an extended move that is not counted",
                                     lo=0.0, hi=1e15)


@dataclass(frozen=True)
class MinimumCharge:
    """Paradex minimum delta requirement and OKX MR7.  ``min_charge_tiers``: (upper bound of the
    raw charge in USD, multiplier), ascending; beyond the last bound the last multiplier applies."""

    min_delta_net: float = param(0.0, unit="fraction", description="charge on |net delta|", lo=0.0, hi=10.0)
    min_delta_hedged: float = param(0.0, unit="fraction", description="charge on hedged delta", lo=0.0, hi=10.0)
    min_charge_rate: float = param(0.0, unit="fraction", description="raw charge on gross notional", lo=0.0, hi=10.0)
    min_charge_tiers: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class RiskBasedParams:
    """Scenario list and the venue parameter groups (module docstring).

    The published defaults are the presets: ``load_preset("deribit")`` (what
    ``default_params("risk_based")`` returns), "derive", "okx", "paradex".
    """

    preset: str
    scenarios: tuple[Scenario, ...]
    vol_shock: VolShock = field(default_factory=VolShock)
    margin: Margin = field(default_factory=Margin)
    static_discount: StaticDiscount = field(default_factory=StaticDiscount)
    basis_contingency: BasisContingency = field(default_factory=BasisContingency)
    other_contingency: OtherContingency = field(default_factory=OtherContingency)
    skew_shock: SkewShock = field(default_factory=SkewShock)
    delta_shock: DeltaShock = field(default_factory=DeltaShock)
    roll_shock: RollShock = field(default_factory=RollShock)
    extended_table: ExtendedTable = field(default_factory=ExtendedTable)
    minimum_charge: MinimumCharge = field(default_factory=MinimumCharge)
    settlement_window_minutes: float = param(0.0, unit="minutes",
                                             description="settlement TWAP window: the forward is fixed pro rata",
                                             lo=0.0, hi=1440.0)

    @property
    def im_factor(self) -> float:
        """``margin.im_factor`` (the name of earlier versions)."""
        return self.margin.im_factor

    @property
    def mm_factor(self) -> float:
        """``margin.mm_factor`` (the name of earlier versions)."""
        return self.margin.mm_factor

    def validate(self) -> None:
        c = ParamCheck(f"risk_based ({self.preset})")
        c.require(len(self.scenarios) > 0, "the scenario list is empty: at least one scenario is needed")
        for k, s in enumerate(self.scenarios):
            c.range(f"scenario {k + 1} spot shock", s.spot, -1.0, 10.0, open_lo=True)
            c.range(f"scenario {k + 1} weight", s.weight, 0.0, 10.0)
            c.require(s.vol in VOL_DIRECTIONS,
                      f"scenario {k + 1} vol must be up, none, down, linear or abs (got {s.vol!r})")
            c.require(s.vol not in ("linear", "abs") or s.spot == 0.0,
                      f"scenario {k + 1}: a skew scenario ({s.vol}) takes spot shock 0")
            if s.edge is not None:
                c.require(s.vol in ("up", "none", "down") and s.edge != 0.0 and s.spot / s.edge > 1.0,
                          f"scenario {k + 1}: an extended move must lie beyond its edge, on the same side")
        check_ranges(self, c)
        tiers = self.minimum_charge.min_charge_tiers
        bounds = [t[0] for t in tiers]
        c.require(all(b > 0 for b in bounds) and bounds == sorted(bounds),
                  "min_charge_tiers bounds must be positive and ascending")
        c.require(all(1.0 <= t[1] <= 100.0 for t in tiers), "min_charge_tiers multipliers must be in [1, 100]")
        c.done()

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (explicit scenario list); :func:`params_from_dict` reads it."""
        out = asdict(self)
        out["scenarios"] = list(out["scenarios"])
        out["minimum_charge"]["min_charge_tiers"] = [[None if math.isinf(b) else b, m]
                                                     for b, m in self.minimum_charge.min_charge_tiers]
        return out


GROUPS = {"vol_shock": VolShock, "margin": Margin, "static_discount": StaticDiscount,
          "basis_contingency": BasisContingency, "other_contingency": OtherContingency, "skew_shock": SkewShock,
          "delta_shock": DeltaShock, "roll_shock": RollShock, "extended_table": ExtendedTable,
          "minimum_charge": MinimumCharge}

#: The flat form of earlier versions: old key -> (group, field).
OLD_KEYS = {
    "im_factor": ("margin", "im_factor"), "mm_factor": ("margin", "mm_factor"),
    "max_delta_shock": ("delta_shock", "max_delta_shock"),
    "delta_liquidity_threshold": ("delta_shock", "delta_total_liq_shock_threshold"),
    "annualised_move_risk": ("roll_shock", "annualised_move_risk"),
    "min_annualised_move": ("roll_shock", "min_annualised_move"),
    "forward_base_factor": ("basis_contingency", "basis_cont_add_factor"),
    "forward_time_factor": ("basis_contingency", "basis_cont_mult_factor"),
    "min_delta_net": ("minimum_charge", "min_delta_net"), "min_delta_hedged": ("minimum_charge", "min_delta_hedged"),
    "min_charge_rate": ("minimum_charge", "min_charge_rate"),
    "min_charge_tiers": ("minimum_charge", "min_charge_tiers"),
    "perp_mm": ("other_contingency", "mm_perp_percent"), "perp_im": ("other_contingency", "im_perp_percent"),
    "naked_short_mm": ("other_contingency", "mm_option_percent"),
    "naked_short_im": ("other_contingency", "im_option_percent"),
}
OLD_VOL_KEYS = {"range_up": "vol_range_up", "range_down": "vol_range_down", "min_vol_up": "min_vol_up_shock",
                "short_power": "short_term_power", "long_power": "long_term_power", "floor_days": "dte_floor"}


# ----------------------------------------------------------------------------- presets


def _scenario(k: int, s: dict) -> Scenario:
    """Scenario ``k`` (1-based) of an explicit list; a non-number names the scenario and field."""
    values = {}
    for key, default in (("spot", None), ("weight", 1.0)):
        raw = s.get(key, default)
        try:
            values[key] = float(raw)  # type: ignore[arg-type]  # None is refused below
        except (TypeError, ValueError):
            raise ValueError(f"scenario {k} {key}: {raw!r} is not a number") from None
    edge = s.get("edge")
    try:
        edge = None if edge is None else float(edge)
    except (TypeError, ValueError):
        raise ValueError(f"scenario {k} edge: {edge!r} is not a number") from None
    return Scenario(values["spot"], s.get("vol", "none"), values["weight"], edge)


def _scenarios_from_spec(spec) -> tuple[Scenario, ...]:
    """Explicit list of {spot, vol, weight}, or the compact preset form: a ``grid`` (spot × vol),
    ``extra`` scenarios, ``tails`` (vol, weight = weight_numerator/|spot|), ``extended`` moves
    (vol, edge ±, weight = weight_numerator/|spot|), then ``after`` and ``skew`` scenarios."""
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
    ext = spec.get("extended")
    if ext:
        out += [Scenario(float(s), ext.get("vol", "up"), float(ext["weight_numerator"]) / abs(float(s)),
                         math.copysign(float(ext["edge"]), float(s))) for s in ext["spot"]]
    for key in ("after", "skew"):
        out += [_scenario(k, s) for k, s in enumerate(spec.get(key, []), start=len(out) + 1)]
    return tuple(out)


def _group(name: str, raw):
    cls = GROUPS[name]
    if isinstance(raw, cls):
        return raw
    if not isinstance(raw, dict):
        raise ValueError(f"risk_based parameters: {name} must be an object")
    raw = {OLD_VOL_KEYS.get(k, k) if name == "vol_shock" else k: v for k, v in raw.items()}
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"risk_based parameters: unknown key(s) {', '.join(f'{name}.{k}' for k in unknown)}")
    if "min_charge_tiers" in raw:
        raw["min_charge_tiers"] = tuple((math.inf if b is None else float(b), float(m))
                                        for b, m in raw["min_charge_tiers"])
    return cls(**raw)


def params_from_dict(data: dict, preset: str = "custom") -> RiskBasedParams:
    """Build params from a preset file's structure or from :meth:`RiskBasedParams.to_dict`; the
    flat form of earlier versions (``im_factor``, ``perp_mm``, ``forward_shock``, ``contingencies``,
    old vol_shock names) is read too.  Raises ValueError naming an unknown key (the params are not
    validated here)."""
    data = dict(data)
    for key in ("title", "source", "notes"):
        data.pop(key, None)
    flat = dict(data.pop("contingencies", {}))
    flat.update(data)
    groups: dict = {name: dict(flat.pop(name)) if isinstance(flat.get(name), dict) else flat.pop(name, {})
                    for name in GROUPS}
    built: dict = {}
    shock = flat.pop("forward_shock", None)
    if shock is not None:
        groups["basis_contingency"].setdefault("scenario_spot_up", 1.0 + float(shock))
        groups["basis_contingency"].setdefault("scenario_spot_down", 1.0 - float(shock))
    for old, (group, name) in OLD_KEYS.items():
        if old in flat:
            groups[group][name] = flat.pop(old)
    unknown = sorted(set(flat) - {"preset", "scenarios", "settlement_window_minutes"})
    if unknown:
        raise ValueError(f"risk_based parameters: unknown key(s) {', '.join(unknown)}")
    built.update((name, _group(name, raw)) for name, raw in groups.items())
    return RiskBasedParams(preset=flat.get("preset", preset), scenarios=_scenarios_from_spec(flat.get("scenarios", [])),
                           settlement_window_minutes=flat.get("settlement_window_minutes", 0.0),
                           **built)


@functools.cache  # package files: they do not change while the process runs
def preset_names() -> tuple[str, ...]:
    files = resources.files(__package__).joinpath(PRESET_DIR).iterdir()
    return tuple(sorted(f.name[:-5] for f in files if f.name.endswith(".json")))


def _preset_data(name: str) -> dict:
    if name not in preset_names():
        raise ValueError(f"unknown risk_based preset {name!r}; choose one of {', '.join(preset_names())}")
    with resources.files(__package__).joinpath(PRESET_DIR, f"{name}.json").open("r", encoding="utf-8") as f:
        return json.load(f)


@functools.cache  # frozen parameters of a package file: read and validated once per process
def load_preset(name: str) -> RiskBasedParams:
    """The published parameters of ``name`` (``presets/<name>.json``)."""
    return params_from_dict(_preset_data(name), name)


def preset_info(name: str) -> dict:
    """Title, source and notes of a preset (for display)."""
    data = _preset_data(name)
    return {k: data.get(k, "") for k in ("title", "source", "notes")}


# ----------------------------------------------------------------------------- account context


@dataclass(frozen=True)
class MarginContext:
    """What the account and the venue feeds add to the scenarios: per underlying (book order)
    the risk-cancelling collateral value ``rc_value`` (cash units), whether the underlying is
    measured in coin, and the factor that converts the other underlyings' USD results into the
    account's denomination."""

    feeds: VenueFeeds = NO_FEEDS
    rc_value: np.ndarray | None = None
    coin: np.ndarray | None = None
    usd_scale: float = 1.0


def margin_context(universe: Universe, account: Account | None, feeds: VenueFeeds | None,
                   values: CollateralValues | None) -> MarginContext:
    feeds = feeds or NO_FEEDS
    n = universe.n_underlyings
    rc = np.zeros(n)
    if account is not None and values is not None:
        flags = np.array([c.risk_cancelling for c in account.collateral], dtype=bool)
        tied = flags & (values.und_index >= 0)
        np.add.at(rc, values.und_index[tied], values.value[tied])
    unds = list(universe.arrays.underlyings)
    coin = np.zeros(n, dtype=bool)
    scale = 1.0
    if account is not None and account.is_coin_margined:
        if account.denomination not in unds:
            raise AccountError(f"denomination: no market data for {account.denomination} to convert the "
                               f"account's amounts (add it to the market)")
        k = unds.index(account.denomination)
        coin[k] = True
        scale = 1.0 / float(universe.und_spot[k])
    return MarginContext(feeds, rc, coin, scale)


def collateral_charges(account: Account, values: CollateralValues, params=None) -> tuple[float, float]:
    """(IM, MM) charges of the collateral (cash units): MM = Σ v·mm_haircut; IM = MM + Σ v·im_haircut
    + the oracle contingency (1 − c)·conf_margin·v where c < conf_threshold (risk_based only)."""
    if not account.collateral:
        return 0.0, 0.0
    mm_h = np.array([c.mm_haircut for c in account.collateral])
    im_h = np.array([c.im_haircut for c in account.collateral])
    mm = float(values.value @ mm_h)
    im = mm + float(values.value @ im_h)
    if isinstance(params, RiskBasedParams):
        im += float(oracle_rate(values.confidence, params.other_contingency) @ values.value)
    return im, mm


def oracle_rate(confidence, other: OtherContingency) -> np.ndarray:
    """(1 − c)·conf_margin where c < conf_threshold, else 0."""
    c = np.asarray(confidence, dtype=float)
    return np.where(c < other.conf_threshold, (1.0 - c) * other.conf_margin, 0.0)


# ----------------------------------------------------------------------------- revaluation


@dataclass(frozen=True)
class OptionInputs:
    """Per option of the universe (option order): forward, strike, T, vol, rate, call flag,
    multiplier and the fixed share φ of the forward (settlement window)."""

    F: np.ndarray
    K: np.ndarray
    T: np.ndarray
    sigma: np.ndarray
    rate: np.ndarray
    is_call: np.ndarray
    mult: np.ndarray
    fixed: np.ndarray

    def forward(self, spot_mult) -> np.ndarray:
        return self.F * (self.fixed + (1.0 - self.fixed) * np.asarray(spot_mult, dtype=float))

    def values(self, spot_mult, sigma) -> np.ndarray:
        """USD value per contract; ``spot_mult`` (S, 1) and ``sigma`` broadcast to (S, options)."""
        return black76_price(self.forward(spot_mult), self.K, self.T, sigma, self.rate, self.is_call) * self.mult


def _slice_feeds(universe: Universe, feeds: VenueFeeds) -> tuple[np.ndarray, np.ndarray]:
    """Per option (option order): the expiry's rate (the market's where the feeds give none)
    and the minimum of its forward, rate and vol confidences."""
    arr = universe.arrays
    o = arr.option_index
    rate, conf = np.full(len(o), float(arr.rate)), np.ones(len(o))
    if feeds.slices and len(o):
        keys = [(arr.underlyings[u], arr.instruments[i].expiry_date) for u, i in zip(arr.und_index[o], o, strict=True)]
        for key in set(keys) & set(feeds.slices):
            rows = np.array([k == key for k in keys])
            feed = feeds.slices[key]
            conf[rows] = feed.confidence
            if feed.rate is not None:
                rate[rows] = feed.rate
    return rate, conf


def option_inputs(universe: Universe, feeds: VenueFeeds, window_minutes: float) -> OptionInputs:
    arr = universe.arrays
    o = arr.option_index
    T = np.maximum(arr.T[o], 0.0)
    rate, _ = _slice_feeds(universe, feeds)
    window = window_minutes * 60.0
    seconds = T * SECONDS_PER_YEAR
    fixed = np.clip(1.0 - seconds / window, 0.0, 1.0) if window > 0 else np.zeros(len(o))
    return OptionInputs(arr.forward()[o], arr.strike[o], T, universe.vol[o], rate, arr.is_call[o],
                        arr.multiplier[o], fixed)


def scenario_option_values(opt: OptionInputs, params: RiskBasedParams) -> np.ndarray:
    """Option values per contract (scenarios, options) under every scenario (module docstring)."""
    spots = np.array([1.0 + s.spot for s in params.scenarios])[:, None]
    direction = np.array([VOL_DIRECTIONS[s.vol] for s in params.scenarios])
    sigma = np.empty((len(spots), len(opt.F)))
    for d in (-1, 0, 1):
        rows = direction == d
        if rows.any():
            sigma[rows] = params.vol_shock.shocked(opt.sigma, opt.T, d)
    for d in SKEW:
        rows = direction == d
        if rows.any():
            with np.errstate(divide="ignore"):
                k = np.log(opt.K / opt.forward(1.0))
            sigma[rows] = opt.sigma * params.skew_shock.multiplier(k, np.sqrt(opt.T), d == 3)
    return opt.values(spots, sigma)


def tier_multiplier(raw: np.ndarray, tiers) -> np.ndarray:
    if not tiers:
        return np.ones_like(raw)
    bounds = np.array([t[0] for t in tiers])
    mult = np.array([t[1] for t in tiers])
    return mult[np.minimum(np.searchsorted(bounds, raw, side="left"), len(mult) - 1)]


# ----------------------------------------------------------------------------- kernel


class RiskBasedKernel(Kernel):
    """Linear features: option value change per (scenario, expiry) (S·E), option value per
    expiry (E) and linear instruments' P&L per scenario (S) — or, when no static discount or skew
    scenario needs expiries, every instrument's P&L per scenario (S) —, net spot delta (1),
    forward delta by expiry (E), basis-scenario P&L up and down by expiry (2E).  Group terms: long and short spot
    delta per instrument, gross derivative notional, perp notional, naked shorts per (expiry,
    strike), gross option contracts × oracle rate (two terms: without and with a perp held)."""

    components = ("scenario_loss", "forward_floor", "delta_shock", "roll_shock", "minimum",
                  "perp_contingency", "option_contingency", "oracle_contingency")

    def __init__(self, universe: Universe, params: RiskBasedParams, instrument_pnl: np.ndarray | None = None,
                 context: MarginContext | None = None):
        p = self.params = params
        ctx = self.context = context or MarginContext()
        arr = universe.arrays
        n, n_s, E = universe.n_instruments, len(p.scenarios), universe.n_buckets
        self.spots = np.array([s.spot for s in p.scenarios])
        self.direction = np.array([VOL_DIRECTIONS[s.vol] for s in p.scenarios])
        extended = np.array([s.edge is not None for s in p.scenarios], dtype=bool)
        self.weights = np.where(extended, 1.0, [s.weight for s in p.scenarios])
        self.labels = [s.label for s in p.scenarios]
        coin = np.zeros(universe.n_underlyings, dtype=bool) if ctx.coin is None else ctx.coin
        inst_coin = coin[arr.und_index]
        o = arr.option_index
        opt = option_inputs(universe, ctx.feeds, p.settlement_window_minutes)
        lin = np.flatnonzero(arr.kind != OPTION_CODE)
        perp = arr.kind == PERPETUAL_CODE
        ref = arr.forward().copy()
        marks = np.array([ctx.feeds.perp_mark.get(u, np.nan) for u in arr.underlyings], dtype=float)
        if len(marks):
            mark = marks[arr.und_index]
            use = perp & ~np.isnan(mark)
            ref[use] = mark[use]
        # Option values: base and per scenario; coin-measured underlyings value an option at V/F.
        V0 = opt.values(1.0, opt.sigma)
        if instrument_pnl is None:
            Vs = scenario_option_values(opt, p)
        elif np.shape(instrument_pnl) != (n, n_s):
            raise ValueError(f"instrument_pnl must be (instruments, scenarios) = ({n}, {n_s}), "
                             f"got {np.shape(instrument_pnl)}")
        else:
            Vs = V0 + np.asarray(instrument_pnl, dtype=float)[o].T
        # Linear instruments: P&L at their reference price (perps: the perp mark).
        pnl_lin = (ref * arr.multiplier)[lin] * self.spots[:, None]
        if instrument_pnl is not None:
            pnl_lin = np.asarray(instrument_pnl, dtype=float)[lin].T
        Vs, pnl_lin, edge_spots = self._extend(opt, V0, Vs, (ref * arr.multiplier)[lin], pnl_lin, extended,
                                               instrument_pnl is None)
        # a coin-measured result converts at the scenario's prices (an extended move: its edge's)
        smult = 1.0 + edge_spots[:, None]
        c_o = inst_coin[o]
        V0_m = np.where(c_o, V0 / np.where(c_o, opt.F, 1.0), V0)
        dV = np.where(c_o, Vs / np.where(c_o, opt.forward(smult), 1.0), Vs) - V0_m
        # Coin-measured underlyings: an inverse contract's P&L, ÷ P·(1 + s).
        pnl_lin = np.where(inst_coin[lin], pnl_lin / (ref[lin] * smult), pnl_lin)
        self.instrument_pnl = np.zeros((n, n_s))
        self.instrument_pnl[o] = dV.T
        self.instrument_pnl[lin] = pnl_lin.T
        bucket = universe.bucket
        # Per-expiry columns only when a per-expiry nonlinearity needs them (static discount,
        # skew scenarios); otherwise the options' P&L per scenario suffices.
        sd = p.static_discount
        self.per_expiry = bool(np.isin(self.direction, SKEW).any()) or sd != StaticDiscount()
        E_cols = E if self.per_expiry else 1
        val = np.zeros((n, n_s, E_cols))
        val[o, :, bucket[o] if self.per_expiry else 0] = dV.T
        base = np.zeros((n, E_cols if self.per_expiry else 0))
        if self.per_expiry:
            base[o, bucket[o]] = V0_m
        # Linear instruments' P&L: its own block beside per-expiry option values, else summed in.
        other = np.zeros((n, n_s if self.per_expiry else 0))
        if self.per_expiry:
            other[lin] = pnl_lin.T
        else:
            val[lin, :, 0] = pnl_lin.T
        bc = p.basis_contingency
        dated = (arr.kind != SPOT_CODE) & ~perp
        # Basis scenarios priced, and their 2E features kept, only when the contingency counts them
        # (a factor is not 0): otherwise the forward floor is 0 and the features would be zeros.
        self.basis = bool(bc.basis_cont_add_factor or bc.basis_cont_mult_factor)
        basis_cols = []
        if self.basis:
            fwd = _basis_pnl(universe, opt, V0_m, ref, inst_coin, (bc.scenario_spot_up, bc.scenario_spot_down))
            basis_cols = [universe.by_bucket(fwd[:, 0], dated), universe.by_bucket(fwd[:, 1], dated)]
        E_fwd = E if self.basis else 0
        S = arr.spot
        per_usd = np.where(inst_coin, 1.0 / S, 1.0)
        not_spot = arr.kind != SPOT_CODE
        delta_usd = universe.spot_delta * S * per_usd
        self.n_s, self.E = n_s, E
        self.sl_val = slice(0, n_s * E_cols)
        self.sl_base = slice(self.sl_val.stop, self.sl_val.stop + base.shape[1])
        self.sl_other = slice(self.sl_base.stop, self.sl_base.stop + other.shape[1])
        self.col_delta = self.sl_other.stop
        self.sl_roll = slice(self.col_delta + 1, self.col_delta + 1 + E)
        self.sl_fwd_up = slice(self.sl_roll.stop, self.sl_roll.stop + E_fwd)
        self.sl_fwd_down = slice(self.sl_fwd_up.stop, self.sl_fwd_up.stop + E_fwd)
        linear = np.hstack([
            val.reshape(n, n_s * E_cols), base, other, delta_usd[:, None],
            universe.by_bucket(universe.fwd_delta * S * per_usd, not_spot),
            *basis_cols,
        ])
        notional = universe.notional * per_usd
        oc = p.other_contingency
        conf = self._confidences(universe, ctx.feeds)
        groups = (
            GroupTerm.per_instrument(universe, True, 1.0, 0.0, delta_usd),
            GroupTerm.per_instrument(universe, True, 0.0, 1.0, delta_usd),
            GroupTerm.per_instrument(universe, not_spot, p.minimum_charge.min_charge_rate * notional,
                                     p.minimum_charge.min_charge_rate * notional),
            GroupTerm.per_instrument(universe, perp, notional, notional),
            _naked_short_term(universe, per_usd) if len(o) else GroupTerm.per_instrument(universe, False, 0.0, 0.0),
            *(GroupTerm.per_instrument(universe, universe.is_option & (rate > 0), rate * notional, rate * notional)
              for rate in (oracle_rate(conf[0], oc), oracle_rate(conf[1], oc))),
        )
        super().__init__(universe, linear, groups)
        T_e = universe.bucket_T
        self.forward_factor = bc.basis_cont_add_factor + bc.basis_cont_mult_factor * T_e
        self.roll_rate = np.maximum(p.roll_shock.min_annualised_move, p.roll_shock.annualised_move_risk * T_e)
        self.discount = self._discounts(universe, opt)
        spot_conf = np.array([ctx.feeds.spot_conf(u) for u in arr.underlyings])
        perp_conf = np.minimum(spot_conf, [ctx.feeds.perp_conf(u) for u in arr.underlyings])
        self.perp_oracle = oracle_rate(perp_conf, oc)
        self.rc = np.zeros(universe.n_underlyings) if ctx.rc_value is None else ctx.rc_value
        self.rc = np.where(coin, 0.0, self.rc)  # a coin account's own coin is its unit
        stable = ctx.feeds.stable_price
        self.peg = (oc.peg_loss_threshold - stable) * oc.peg_loss_factor if stable < oc.peg_loss_threshold else 0.0
        self.out_scale = np.where(coin, 1.0, ctx.usd_scale)
        self.extended = extended
        # Risk-cancelling collateral is linear: an extended move counts its edge's move.
        self.rc_spots = edge_spots
        self.dampener = np.where(coin, p.extended_table.extended_dampener / universe.und_spot,
                                 p.extended_table.extended_dampener)
        self.threshold = np.where(coin, p.delta_shock.delta_total_liq_shock_threshold / universe.und_spot,
                                  p.delta_shock.delta_total_liq_shock_threshold)

    def _extend(self, opt: OptionInputs, V0, Vs, lin_value, pnl_lin, extended, priced: bool):
        """Extended moves: the edge's P&L plus weight × what lies beyond its linear
        extrapolation (USD).  ``priced``: Vs are the options' values under every scenario.
        Returns option values, linear P&L and each scenario's edge spot (its own spot for the
        others)."""
        p = self.params
        ext = np.flatnonzero(extended)
        edge_spots = self.spots.copy()
        if not len(ext):
            return Vs, pnl_lin, edge_spots
        edges = [Scenario(float(p.scenarios[k].edge or 0.0), p.scenarios[k].vol) for k in ext]
        edge_spots[ext] = [e.spot for e in edges]
        # An edge that is a scenario of the table (Deribit's ±16 % vol up) is already priced in Vs.
        table = {(s.spot, s.vol): j for j, s in enumerate(p.scenarios) if s.edge is None}
        rows = [table.get((e.spot, e.vol)) for e in edges]
        if priced and all(j is not None for j in rows):
            V_edge = Vs[rows]
        else:
            V_edge = scenario_option_values(opt, replace(p, scenarios=tuple(edges)))
        lin_edge = lin_value * edge_spots[ext][:, None]
        ratio = (self.spots[ext] / edge_spots[ext])[:, None]
        w = np.array([p.scenarios[k].weight for k in ext])[:, None]
        Vs, pnl_lin = Vs.copy(), pnl_lin.copy()
        Vs[ext] = V_edge + w * ((Vs[ext] - V0) - (V_edge - V0) * ratio)
        pnl_lin[ext] = lin_edge + w * (pnl_lin[ext] - lin_edge * ratio)
        return Vs, pnl_lin, edge_spots

    @staticmethod
    def _confidences(universe: Universe, feeds: VenueFeeds) -> tuple[np.ndarray, np.ndarray]:
        """Per instrument (options): the expiry's confidence without and with a perp held."""
        arr = universe.arrays
        n = universe.n_instruments
        without, with_perp = np.ones(n), np.ones(n)
        o = arr.option_index
        if len(o):
            spot = np.array([feeds.spot_conf(u) for u in arr.underlyings])[arr.und_index[o]]
            perp = np.array([feeds.perp_conf(u) for u in arr.underlyings])[arr.und_index[o]]
            without[o] = np.minimum(spot, _slice_feeds(universe, feeds)[1])
            with_perp[o] = np.minimum(without[o], perp)
        return without, with_perp

    def _discounts(self, universe: Universe, opt: OptionInputs) -> np.ndarray:
        """(U, E, 2) static discount factors (pos, neg) per underlying and expiry."""
        U, E = universe.n_underlyings, universe.n_buckets
        out = np.ones((U, E, 2))
        o = universe.arrays.option_index
        if len(o):
            pos, neg = self.params.static_discount.factors(opt.T, opt.rate)
            u, e = universe.arrays.und_index[o], universe.bucket[o]
            out[u, e, 0], out[u, e, 1] = pos, neg
        return out

    def scenario_pnl(self, lin: np.ndarray, und: np.ndarray) -> np.ndarray:
        """(n, S) weighted scenario P&L of n underlying-portfolios."""
        return self._pnl_by_scenario(lin, und).T

    def _pnl_by_scenario(self, lin: np.ndarray, und: np.ndarray) -> np.ndarray:
        """:meth:`scenario_pnl` stored scenario-major (S, n): each portfolio's worst scenario is
        then a reduction across rows, several times faster in numpy than one along a short last
        axis (the accounts path takes it for 25,000 portfolios at a time)."""
        n = len(lin)
        # Built scenario-major throughout: the risk-cancelling collateral's P&L rc_u·s first, the
        # features added to it (the same sums, ~3× faster than writing into a transposed view).
        pnl = np.empty((self.n_s, n))
        np.multiply(self.rc[und], self.rc_spots[:, None], out=pnl)
        if self.per_expiry:
            pnl += lin[:, self.sl_other].T
            dV = lin[:, self.sl_val].reshape(n, self.n_s, self.E)
            Vs = lin[:, self.sl_base][:, None, :] + dV
            disc = self.discount[und]
            factor = np.where(Vs >= 0.0, disc[:, None, :, 0], disc[:, None, :, 1])
            x = dV + (factor - 1.0) * Vs
            skew = np.isin(self.direction, SKEW)
            x[:, skew, :] = -np.abs(x[:, skew, :])
            np.add(x.sum(axis=2).T, pnl, out=pnl)
        else:
            np.add(lin[:, self.sl_val].T, pnl, out=pnl)
        pnl *= self.weights[:, None]
        if self.extended.any():
            damp = self.dampener[und]
            ext = pnl[self.extended]
            pnl[self.extended] = np.where(ext < 0.0, np.minimum(ext + damp, 0.0), ext)
        return pnl

    def per_underlying(self, lin, grp, und):
        p = self.params
        pnl = self._pnl_by_scenario(lin, und)
        scan = np.maximum(-pnl.min(axis=0), 0.0) if len(pnl) else np.zeros(len(lin))
        if self.basis:
            worst_fwd = np.minimum(np.minimum(lin[:, self.sl_fwd_up], lin[:, self.sl_fwd_down]), 0.0)
            floor = 0.0 - worst_fwd @ self.forward_factor  # 0.0 − x: no negative zero when the factor is 0
        else:
            floor = np.zeros(len(lin))
        loss = np.maximum(scan, floor)
        delta_shock = p.delta_shock.max_delta_shock * np.maximum(np.abs(lin[:, self.col_delta]) - self.threshold[und],
                                                                 0.0)
        roll = np.abs(lin[:, self.sl_roll]) @ self.roll_rate
        long_d, short_d, raw, perp, naked, oracle_alone, oracle_perp = grp.T
        mc = p.minimum_charge
        minimum = np.maximum(mc.min_delta_net * np.abs(long_d - short_d) + mc.min_delta_hedged * np.minimum(long_d,
                                                                                                           short_d),
                             raw * tier_multiplier(raw, mc.min_charge_tiers))
        oc = p.other_contingency
        oracle = np.where(perp > 0, oracle_perp, oracle_alone) + self.perp_oracle[und] * perp
        perp_im = (oc.mm_perp_percent + oc.im_perp_percent) * perp
        option_im = (oc.mm_option_percent + oc.im_option_percent) * naked
        core = np.maximum(loss + delta_shock + roll, minimum)
        im = (p.margin.im_factor + self.peg) * core + perp_im + option_im + oracle
        mm = p.margin.mm_factor * core + oc.mm_perp_percent * perp + oc.mm_option_percent * naked
        out = np.column_stack([im, mm, scan, floor, delta_shock, roll, minimum, perp_im, option_im, oracle])
        return out * self.out_scale[und][:, None]

    def scenario_table(self, lin):
        und = np.arange(len(lin))
        pnl = self.scenario_pnl(lin, und) * self.out_scale[und][:, None]
        return scenario_table(self.universe, self.labels, self.spots, self.direction,
                              np.full(len(self.spots), np.nan), self.weights, pnl)


def _basis_pnl(universe: Universe, opt: OptionInputs, V0_m, ref, inst_coin, multipliers) -> np.ndarray:
    """(instruments, 2) P&L per contract of the basis scenarios (spot × each multiplier, vol
    unchanged): options repriced, dated futures along their forward; coin-measured where
    ``inst_coin``."""
    arr = universe.arrays
    o = arr.option_index
    c_o = inst_coin[o]
    fut = np.flatnonzero(arr.kind == FUTURE_CODE)
    out = np.zeros((universe.n_instruments, len(multipliers)))
    for j, m in enumerate(multipliers):
        v = opt.values(np.array([[m]]), opt.sigma[None])[0]
        out[o, j] = np.where(c_o, v / np.where(c_o, opt.forward(m), 1.0), v) - V0_m
        move = (ref * arr.multiplier)[fut] * (m - 1.0)
        out[fut, j] = np.where(inst_coin[fut], move / (ref[fut] * m), move)
    return out


def _naked_short_term(universe: Universe, per_usd: np.ndarray) -> GroupTerm:
    """Naked shorts per (underlying, expiry, strike): x = Σ q·multiplier over the calls and puts
    of the group; charge S per unit of max(−x, 0) (Derive nets a short call against a long put
    of the same strike)."""
    arr = universe.arrays
    # The copies of a stacked universe have the same groups: one copy's, offset per copy.
    n, c = universe.n_instruments // universe.copies, universe.copies
    o = np.flatnonzero(universe.is_option[:n])
    keys = np.column_stack([arr.und_index[o], universe.bucket[o], arr.strike[o]])
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    n_groups, n_und = len(uniq), universe.n_underlyings // c
    group = np.full(universe.n_instruments, -1)
    group.reshape(c, n)[:, o] = inverse.ravel()[None, :] + n_groups * np.arange(c)[:, None]
    und = (uniq[:, 0].astype(int)[None, :] + n_und * np.arange(c)[:, None]).ravel()
    first = np.zeros(n_groups, dtype=int)
    first[inverse.ravel()] = o
    first = (first[None, :] + n * np.arange(c)[:, None]).ravel()
    return GroupTerm(group, arr.multiplier.copy(), np.zeros(len(und)), universe.und_spot[und] * per_usd[first], und)


def prepare(universe: Universe, params: RiskBasedParams, context: MarginContext | None = None) -> RiskBasedKernel:
    return RiskBasedKernel(universe, params, context=context)


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
    revalued by the caller; computed from the universe when omitted.  Accounts hold no
    collateral here (USD cash only).

    Aggregation: accounts never net across underlyings.  For each underlying u, the accounts'
    per-expiry scenario values are the sparse-dense product Q_u·P_u and the worst weighted loss
    is a row minimum after the static discount; the contingencies aggregate the same way per
    underlying from further linear columns and sparse piecewise-linear group sums, so each
    account's IM_u is exactly what :func:`compute` gives its book; IM = Σ_u IM_u.
    """
    params.validate()
    kernel = RiskBasedKernel(universe, params, instrument_pnl)
    rows = evaluate_accounts(kernel, quantities)
    return AccountMargins(rows[:, 0], rows[:, 1], {name: rows[:, 2 + k] for k, name in enumerate(kernel.components)})
