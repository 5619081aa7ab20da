"""``analyze(book, market, settings)``: everything the dashboard shows about one book, at once.

One call vectorises the book, prices it, computes display Greeks per position and their
aggregates (by underlying, expiry, strike), the full-revaluation stress grid, P&L-vs-spot curves
for each horizon and at expiry with breakevens, and Greeks-vs-spot profiles.  Margin and
liquidation work consumes the same ``Analysis`` (its ``arrays`` and position mapping).

Units: quantities in contracts, prices and values in USD, delta in units of underlying (and USD),
gamma as USD delta change per 1 % move, vega per vol point, theta per calendar day.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from .instruments import FUTURE, OPTION, PERPETUAL
from .limits import check_budget
from .market import Market
from .portfolio import Book
from .scenarios import (
    DAYS_PER_YEAR,
    GREEK_COLUMNS,
    InstrumentArrays,
    ShockGrid,
    StressResult,
    breakevens,
    instrument_arrays,
    instrument_greeks,
    instrument_payoff_curves,
    instrument_values,
    net_quantities,
    revaluation_pool,
    start_instrument_stress,
)

TOTAL_COLUMNS = ("value", "pnl", "delta_usd", "gamma_usd_1pct", "vega_per_vol_pt", "theta_per_day")
AGG_COLUMNS = ("value", "pnl", "notional_usd") + GREEK_COLUMNS


#: Inclusive bounds of the stress grid's step counts.
SPOT_STEPS_RANGE = (2, 201)
VOL_STEPS_RANGE = (1, 61)


@dataclass(frozen=True)
class Settings:
    """What to compute: stress-grid axes, horizons (days), smile dynamics, profile resolution."""

    spot_range: float = 0.5
    spot_steps: int = 41
    vol_range: float = 0.30
    vol_steps: int = 13
    horizons_days: tuple[float, ...] = (0.0, 1.0, 7.0, 30.0)
    sticky: str | None = None  # None: the market's own setting
    profile_steps: int = 81

    def __post_init__(self):
        problems = []
        if not 0 < self.spot_range < 1:
            problems.append("spot_range must be in (0, 1) — a −100 % shock has no forward")
        if not 0 <= self.vol_range <= 2:
            problems.append("vol_range must be between 0 and 2 (200 vol points)")
        (s_lo, s_hi), (v_lo, v_hi) = SPOT_STEPS_RANGE, VOL_STEPS_RANGE
        if not s_lo <= self.spot_steps <= s_hi or not v_lo <= self.vol_steps <= v_hi:
            problems.append(f"spot_steps must be {s_lo}…{s_hi} and vol_steps {v_lo}…{v_hi}")
        if any(h < 0 or h > 3650 for h in self.horizons_days) or not self.horizons_days:
            problems.append("horizons_days must be 0…3650 days, at least one")
        if not 3 <= self.profile_steps <= 1001:
            problems.append("profile_steps must be 3…1001")
        if problems:
            raise ValueError("; ".join(problems))

    def revaluations(self, n_instruments: int) -> int:
        """Instrument revaluations one analysis takes: the stress grid's cells plus the payoff
        curves (horizons + expiry) and the Greeks profile, each ``profile_steps`` points."""
        cells = self.spot_steps * self.vol_steps * len(set(self.horizons_days))
        return n_instruments * (cells + self.profile_steps * (len(self.horizons_days) + 2))

    @property
    def profile_shocks(self) -> np.ndarray:
        """Spot moves (fractions) of the payoff curves and the Greeks profile."""
        return np.linspace(-self.spot_range, self.spot_range, self.profile_steps)

    @property
    def grid(self) -> ShockGrid:
        return ShockGrid.build(self.spot_range, self.spot_steps, self.vol_range, self.vol_steps,
                               self.horizons_days)


@dataclass(frozen=True)
class Analysis:
    book: Book
    market: Market
    settings: Settings
    arrays: InstrumentArrays
    position_instrument: np.ndarray
    positions: pd.DataFrame
    totals: dict
    stress_result: StressResult
    payoff: pd.DataFrame
    breakevens: dict
    profile: pd.DataFrame
    warnings: tuple[str, ...] = field(default=())

    # Aggregates are built on first use: the Greeks page needs them, a stress or margin view not.
    @cached_property
    def by_underlying(self) -> pd.DataFrame:
        """Sums per underlying (positions, value, pnl, notional and every Greek column)."""
        return _aggregate(self.positions, ["underlying"])

    @cached_property
    def by_expiry(self) -> pd.DataFrame:
        """Sums per underlying and expiry date ("PERP"/"SPOT" for undated instruments)."""
        return _aggregate(self.positions, ["underlying", "expiry"])

    @cached_property
    def by_strike(self) -> pd.DataFrame:
        """Sums of the options per underlying and strike."""
        frame = self.positions
        return _aggregate(frame[frame["kind"] == OPTION], ["underlying", "strike"])

    @property
    def stress(self) -> pd.DataFrame:
        """Tidy stress frame: spot_shock, vol_shock, horizon_days, pnl (USD)."""
        return self.stress_result.to_frame()

    @property
    def quantities(self) -> np.ndarray:
        return self.positions["quantity"].to_numpy(float)


def _position_table(book: Book, arr: InstrumentArrays, pos_inst: np.ndarray, q: np.ndarray,
                    mark_i: np.ndarray) -> pd.DataFrame:
    entry = np.array([np.nan if p.entry_price is None else p.entry_price for p in book.positions])
    greeks_i = instrument_greeks(arr)
    vol_i = np.full(len(arr), np.nan)
    vol_i[arr.option_index] = arr.base_vol()
    kind = np.array([i.kind for i in arr.instruments], dtype=object)[pos_inst]
    mult = arr.multiplier[pos_inst]
    mark = mark_i[pos_inst]
    # Equity contribution (docs/methodology.md §6): options and spot at value; futures/perps at unrealised P&L.
    is_deriv_linear = (kind == FUTURE) | (kind == PERPETUAL)
    value = np.where(is_deriv_linear, q * np.where(np.isnan(entry), 0.0, mark - entry * mult), q * mark)
    pnl = q * (mark - entry * mult)  # NaN without an entry price
    insts = [arr.instruments[k] for k in pos_inst]
    frame = pd.DataFrame({
        "instrument": [i.name for i in insts],
        "underlying": [i.underlying for i in insts],
        "kind": kind,
        "expiry": [i.expiry_date.isoformat() if i.expiry else ("PERP" if i.kind == PERPETUAL else "SPOT")
                   for i in insts],
        "strike": arr.strike[pos_inst],
        "option_type": [("C" if i.is_call else "P") if i.kind == OPTION else "" for i in insts],
        "quantity": q,
        "entry_price": entry,
        "mark": mark,
        "value": value,
        "pnl": pnl,
        "notional_usd": np.abs(q) * mult * arr.spot[pos_inst],
        "spot": arr.spot[pos_inst],
        "forward": arr.forward()[pos_inst],
        "vol": vol_i[pos_inst],
        "days_to_expiry": np.where(kind == OPTION, arr.T[pos_inst], np.where(kind == FUTURE, arr.T[pos_inst], np.nan))
        * DAYS_PER_YEAR,
        **{col: q * greeks_i[col][pos_inst] for col in GREEK_COLUMNS},
    })
    return frame


def _aggregate(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    cols = list(AGG_COLUMNS)
    agg = frame[keys + cols].assign(positions=1).groupby(keys, sort=True).sum(min_count=1)
    return agg[["positions"] + cols].reset_index()


@dataclass(frozen=True)
class Revaluation:
    """What an analysis computes per instrument before any quantity enters (one contract, USD):
    the value today, the stress grid's P&L (spot, vol, horizon, instrument), the payoff curves'
    P&L (curve, spot point, instrument) and the profile's value and display Greeks (spot point,
    instrument).  It depends on the instruments, the market and the settings only: an edit of
    quantities or entry prices keeps it, and :func:`analyze` then only aggregates."""

    arrays: InstrumentArrays
    settings: Settings
    base: np.ndarray
    stress: np.ndarray
    payoff_labels: tuple[str, ...]
    payoff_horizons: np.ndarray  # years, one per curve
    payoff: np.ndarray
    profile: dict[str, np.ndarray]


def _settings(settings: Settings | Mapping[str, Any] | None) -> Settings:
    if isinstance(settings, Mapping):  # e.g. the dashboard's JSON store
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}
        return Settings(**fields)
    return settings or Settings()


def _book_arrays(book: Book, market: Market, settings: Settings, arrays: InstrumentArrays | None) -> InstrumentArrays:
    if arrays is None:
        return instrument_arrays(book.instruments, market, settings.sticky)
    if arrays.instruments != book.instruments or arrays.sticky != (settings.sticky or market.sticky):
        raise ValueError("arrays are not those of this book's instruments and smile dynamics: rebuild them")
    return arrays


def _check_budget(settings: Settings, n_instruments: int) -> None:
    check_budget("MAX_STRESS_REVALUATIONS", settings.revaluations(n_instruments),
                 "instrument revaluations (stress grid cells and curve points × instruments)",
                 "use fewer spot or vol steps, horizons or profile points, or a smaller book")


def start_revaluation(arr: InstrumentArrays, settings: Settings, pool, base: np.ndarray | None = None
                      ) -> Callable[[], Revaluation]:
    """Submit the :class:`Revaluation` of ``arr``'s instruments to the threads of ``pool``; the
    returned function waits for it.  ``base``: the instruments' values today, if already known."""
    base = instrument_values(arr) if base is None else base
    finish_cube = start_instrument_stress(arr, settings.grid, base, pool)
    shocks = settings.profile_shocks
    labels = [f"{h:g} d" for h in settings.horizons_days]
    horizons = [h / DAYS_PER_YEAR for h in settings.horizons_days]
    opt_T = arr.T[arr.option_index]
    if len(opt_T) and opt_T.max() > 0:  # and the curve at the last option expiry
        labels.append(f"expiry ({opt_T.max() * DAYS_PER_YEAR:.0f} d)")
        horizons.append(float(opt_T.max()))
    # One task per curve: each stays in the CPU cache, as the grid's slices do.
    payoff = [pool.submit(instrument_payoff_curves, arr, shocks, [h], base) for h in horizons]
    profile = pool.submit(instrument_greeks, arr, shocks[:, None])

    def finish() -> Revaluation:
        greeks = profile.result()
        curves = {k: greeks[k] for k in GREEK_COLUMNS}
        curves["pnl"] = greeks["value"] - base
        return Revaluation(arr, settings, base, finish_cube(), tuple(labels), np.asarray(horizons),
                           np.concatenate([p.result() for p in payoff]), curves)

    return finish


def revalue(book: Book, market: Market, settings: Settings | None = None, *,
            arrays: InstrumentArrays | None = None) -> Revaluation:
    """The :class:`Revaluation` of ``book``'s instruments (arguments as :func:`analyze`'s)."""
    settings = _settings(settings)
    _check_budget(settings, len(book.instruments))
    with revaluation_pool() as pool:
        return start_revaluation(_book_arrays(book, market, settings, arrays), settings, pool)()


def analyze(book: Book, market: Market, settings: Settings | None = None, *,
            arrays: InstrumentArrays | None = None, revaluation: Revaluation | None = None) -> Analysis:
    """Price, Greeks, aggregates, stress grid, payoff curves and profiles of ``book``.

    ``settings``: a :class:`Settings`, a dict of its fields, or None for the defaults.
    ``arrays``: the book's instruments already vectorised against ``market`` with the settings'
    smile dynamics (``instrument_arrays(book.instruments, market, settings.sticky)``), e.g. kept
    from before an edit that changed only quantities or entry prices; ``revaluation``: likewise
    the book's :func:`revalue` on this market and these settings (then nothing is repriced).
    Raises ``MarketError`` if an underlying of the book has no market data and
    :class:`engine.limits.BudgetError` past ``MAX_STRESS_REVALUATIONS``.
    """
    settings = _settings(settings)
    if revaluation is not None and revaluation.settings != settings:
        raise ValueError("the revaluation was computed with other settings: rebuild it")
    _check_budget(settings, len(book.instruments))
    pos_inst = book.instrument_index
    q = np.fromiter((p.quantity for p in book.positions), dtype=float, count=len(book))
    arr = _book_arrays(book, market, settings, arrays if revaluation is None else revaluation.arrays)
    net = net_quantities(pos_inst, q, len(arr))
    with revaluation_pool() as pool:
        # The revaluation runs on the pool's threads while this thread builds the tables.
        base = instrument_values(arr) if revaluation is None else revaluation.base
        finish = start_revaluation(arr, settings, pool, base) if revaluation is None else (lambda: revaluation)
        frame = _position_table(book, arr, pos_inst, q, base)
        totals = {c: float(frame[c].sum()) for c in TOTAL_COLUMNS}
        # P&L vs entry is unknown (NaN), not zero, when no position has an entry price.
        totals["pnl"] = float(frame["pnl"].sum(min_count=1))
        totals.update(positions=len(frame), notional_usd=float(frame["notional_usd"].sum()))
        rv = finish()
    stress = StressResult(settings.grid, rv.stress, rv.stress @ net, pos_inst, q)
    payoff, bes = _payoff(rv, net)

    warnings = []
    expired = frame.loc[(frame["days_to_expiry"] <= 0), "instrument"].tolist()
    if expired:
        warnings.append(f"{len(expired)} position(s) already expired, valued at intrinsic: "
                        + ", ".join(expired[:5]))
    warnings += _extrapolated_vol_warning(arr, market)
    return Analysis(book, market, settings, arr, pos_inst, frame, totals, stress, payoff, bes, _profile(rv, net),
                    tuple(warnings))


def _extrapolated_vol_warning(arr: InstrumentArrays, market: Market) -> list[str]:
    """One warning naming the options that expire after their underlying's last smile expiry:
    their vol is the last smile's, held flat (docs/methodology.md §3), not a quoted one."""
    last = {u: max(s.expiry for s in m.smile) for u, m in market.underlyings.items() if m.smile}
    names = [i.name for i in (arr.instruments[k] for k in arr.option_index)
             if i.underlying in last and i.expiry is not None and i.expiry.date() > last[i.underlying]]
    if not names:
        return []
    return [f"{len(names)} option(s) expire after the last smile expiry ("
            + ", ".join(f"{u} {d.isoformat()}" for u, d in last.items())
            + "), priced on extrapolated vol (the last smile held flat): "
            + ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")]


def _payoff(rv: Revaluation, net: np.ndarray):
    """P&L vs spot at unchanged vol for each horizon and at the last option expiry, with breakevens."""
    shocks = rv.settings.profile_shocks
    pnl = rv.payoff @ net
    frame = pd.DataFrame({
        "spot_shock": np.tile(shocks, len(rv.payoff_labels)),
        "horizon": np.repeat(rv.payoff_labels, len(shocks)),
        "horizon_days": np.repeat(rv.payoff_horizons * DAYS_PER_YEAR, len(shocks)),
        "pnl": pnl.ravel(),
    })
    return frame, {label: breakevens(shocks, row).tolist() for label, row in zip(rv.payoff_labels, pnl, strict=True)}


def _profile(rv: Revaluation, net: np.ndarray) -> pd.DataFrame:
    """Book P&L and Greeks totals as every spot moves by the same fraction (vol per smile)."""
    data = {"spot_shock": rv.settings.profile_shocks}
    data.update({k: rv.profile[k] @ net for k in GREEK_COLUMNS})
    data["pnl"] = rv.profile["pnl"] @ net
    return pd.DataFrame(data)
