"""The revaluation kernel: every instrument of a book under any array of shocks (docs/methodology.md §5).

One numpy call prices every instrument under a whole grid of (spot, vol, horizon) shocks by
broadcasting; the book's P&L is then a matrix product with its net quantities.  Instruments are
revalued once each (a book of 10,000 positions on 800 listed instruments prices 800 columns), and
the margin models and the liquidation engine call the same kernel with their own scenarios.

Shock conventions: ``spot_shock`` a fraction of spot (−0.2 = −20 %) applied to every underlying
(or per instrument, by broadcasting); ``vol_shock`` absolute vol points as a decimal (+0.10 = +10
points), or relative (σ·(1 + shock)) with ``vol_relative=True``; ``horizon`` in years (ACT/365).
Under a horizon shift the forward rolls down its curve, F = S·(1+s)·e^{b·(T−h)}; an option whose
expiry passes inside the horizon settles at intrinsic on the shocked spot.  Perpetuals and spot
holdings track spot; dated futures track the forward.  Values are USD per contract.

    P&L(s, v, h) = Σ_i q_i·[V_i(S(1+s), σ+v, T−h) − V_i(S, σ, T)]
"""
from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

import numpy as np
import pandas as pd

from .instruments import FUTURE, OPTION, PERPETUAL, SPOT, Instrument
from .market import STICKY_MONEYNESS, VOL_FLOOR, Market, SmileCoefficients, smile_coefficients, smile_vol
from .portfolio import Book
from .pricing import black76_greeks, black76_price

DAYS_PER_YEAR = 365.0
#: numpy and scipy's ndtr release the GIL, so large grids are split over the cores by spot slice.
WORKERS = max(1, min(4, os.cpu_count() or 1))
_SLICE_CELLS = 60_000
KIND_CODES = {OPTION: 0, FUTURE: 1, PERPETUAL: 2, SPOT: 3}


@dataclass(frozen=True)
class InstrumentArrays:
    """A set of instruments as parallel arrays against one market snapshot.

    ``T`` years to expiry (0 for perpetuals and spot), ``strike`` NaN for non-options,
    ``spot`` of each instrument's underlying (a perpetual with a ``perp_mark``: that mark, so it
    keeps its basis), ``carry`` the implied carry ln(F/S)/T to the instrument's own expiry (the
    underlying's carry for undated ones), ``multiplier`` units per contract; ``rate`` is the
    market's ``usd_rate`` and ``option_rate`` each option's own expiry rate (option_index order).
    """

    instruments: tuple[Instrument, ...]
    underlyings: tuple[str, ...]
    und_index: np.ndarray
    kind: np.ndarray
    spot: np.ndarray
    carry: np.ndarray
    strike: np.ndarray
    is_call: np.ndarray
    T: np.ndarray
    multiplier: np.ndarray
    option_index: np.ndarray  # positions of options in the arrays
    smile: SmileCoefficients  # for the options only, in option_index order
    rate: float
    sticky: str
    option_rate: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.instruments)

    @cached_property
    def names(self) -> np.ndarray:
        return np.array([i.name for i in self.instruments], dtype=object)

    @property
    def rates(self):
        """Discount rate of each option (option_index order); the scalar ``rate`` if not given."""
        return self.rate if self.option_rate is None else self.option_rate

    @cached_property
    def linear_index(self) -> np.ndarray:
        return np.flatnonzero(self.kind != KIND_CODES[OPTION])

    def forward(self, spot_shock=0.0, horizon=0.0):
        """Reference price per unit: the forward for options/futures, spot for perps and spot."""
        S = self.spot * (1.0 + np.asarray(spot_shock, dtype=float))
        T_rem = np.maximum(self.T - np.asarray(horizon, dtype=float), 0.0)
        return S * np.exp(self.carry * T_rem)

    def base_vol(self) -> np.ndarray:
        """Smile vol of each option at valuation (decimal p.a.), in option_index order."""
        o = self.option_index
        return smile_vol(self.smile, self.strike[o], self.forward()[o], self.T[o])


def instrument_arrays(instruments, market: Market, sticky: str | None = None) -> InstrumentArrays:
    """Vectorise ``instruments`` against ``market`` (raises MarketError on a missing underlying)."""
    instruments = tuple(instruments)
    unds = tuple(dict.fromkeys(i.underlying for i in instruments))
    und_pos = {u: k for k, u in enumerate(unds)}
    und_index = np.array([und_pos[i.underlying] for i in instruments], dtype=int)
    kind = np.array([KIND_CODES[i.kind] for i in instruments], dtype=int)
    T = np.array([market.year_fraction(i.expiry) for i in instruments], dtype=float)
    strike = np.array([np.nan if i.strike is None else i.strike for i in instruments], dtype=float)
    is_call = np.array([bool(i.is_call) for i in instruments], dtype=bool)
    mult = np.array([i.multiplier for i in instruments], dtype=float)
    opt = np.flatnonzero(kind == KIND_CODES[OPTION])
    spot, carry, rate = np.zeros(len(instruments)), np.zeros(len(instruments)), np.zeros(len(instruments))
    # One term-structure evaluation per underlying over all its instruments' expiries.
    for k, und in enumerate(unds):
        sel = np.flatnonzero(und_index == k)
        u = market.underlying(und)
        dated = T[sel] > 0
        y = market.log_forward(und, T[sel])
        carry[sel] = np.where(dated, y / np.where(dated, T[sel], 1.0), u.carry)
        rate[sel] = market.rate(und, T[sel])
        spot[sel] = np.where(kind[sel] == KIND_CODES[PERPETUAL], u.perp_price, u.spot)
    smile = _option_smiles(opt, und_index, unds, T, market)
    return InstrumentArrays(instruments, unds, und_index, kind, spot, carry,
                            strike, is_call, T, mult, opt, smile, market.usd_rate,
                            sticky or market.sticky, rate[opt])


def _option_smiles(opt, und_index, unds, T, market) -> SmileCoefficients:
    coeffs = SmileCoefficients.empty(len(opt))
    for k, und in enumerate(unds):
        sel = np.flatnonzero(und_index[opt] == k)
        if len(sel):
            coeffs = coeffs.assign(sel, smile_coefficients(market.underlying(und).smile, market,
                                                           T[opt[sel]], und))
    return coeffs


def instrument_values(arr: InstrumentArrays, spot_shock=0.0, vol_shock=0.0, horizon=0.0,
                      vol_relative: bool = False) -> np.ndarray:
    """USD value per contract of every instrument, shocks broadcast against the last axis.

    ``spot_shock``, ``vol_shock`` and ``horizon`` (years) may be scalars or arrays whose last
    axis is 1 or ``len(arr)``; the result has the broadcast shape with last axis ``len(arr)``.
    Futures, perps and spot are valued at their reference price (the forward or spot).
    """
    s = np.asarray(spot_shock, dtype=float)
    v = np.asarray(vol_shock, dtype=float)
    h = np.asarray(horizon, dtype=float)
    shape = np.broadcast_shapes(s.shape, v.shape, h.shape, (len(arr),))
    out = np.empty(shape)
    lin = arr.linear_index
    if len(lin):
        S = arr.spot[lin] * (1.0 + _sub(s, lin, arr))
        T_rem = np.maximum(arr.T[lin] - _sub(h, lin, arr), 0.0)
        out[..., lin] = S * np.exp(arr.carry[lin] * T_rem) * arr.multiplier[lin]
    o = arr.option_index
    if len(o):
        s_o, v_o, h_o = _sub(s, o, arr), _sub(v, o, arr), _sub(h, o, arr)
        K, T0, carry = arr.strike[o], arr.T[o], arr.carry[o]
        S = arr.spot[o] * (1.0 + s_o)
        T_rem = np.maximum(T0 - h_o, 0.0)
        growth = np.exp(carry * T_rem)
        F = S * growth
        F_smile = F if arr.sticky == STICKY_MONEYNESS else arr.spot[o] * growth
        sigma = smile_vol(arr.smile, K, F_smile, T_rem)
        sigma = sigma * (1.0 + v_o) if vol_relative else sigma + v_o  # a new array: floored in place
        np.maximum(sigma, VOL_FLOOR, out=sigma)
        value = black76_price(F, K, T_rem, sigma, arr.rates, arr.is_call[o])
        value *= arr.multiplier[o]
        out[..., o] = value
    return out


def _sub(x: np.ndarray, idx: np.ndarray, arr: InstrumentArrays) -> np.ndarray:
    """Restrict a shock array to the instruments ``idx`` when it has a per-instrument axis
    (scenario axes must therefore end in a length-1 axis)."""
    return x[..., idx] if x.ndim and x.shape[-1] == len(arr) else x


# ----------------------------------------------------------------------------- stress grid


@dataclass(frozen=True)
class ShockGrid:
    """Axes of the stress grid: spot shocks (fractions), vol shocks (absolute, decimal), days."""

    spot_shocks: np.ndarray
    vol_shocks: np.ndarray
    horizons_days: np.ndarray

    @classmethod
    def build(cls, spot_range=0.5, spot_steps=41, vol_range=0.30, vol_steps=13,
              horizons_days=(0, 1, 7, 30)) -> ShockGrid:
        """Symmetric grid; default −50…+50 % spot in 41 steps, −30…+30 vol points in 13 steps."""
        return cls(np.round(np.linspace(-spot_range, spot_range, spot_steps), 10),
                   np.round(np.linspace(-vol_range, vol_range, vol_steps), 10),
                   np.asarray(sorted(set(float(h) for h in horizons_days)), dtype=float))

    @property
    def shape(self) -> tuple[int, int, int]:
        return len(self.spot_shocks), len(self.vol_shocks), len(self.horizons_days)


DEFAULT_GRID = ShockGrid.build()


@dataclass(frozen=True)
class StressResult:
    """Full-revaluation P&L over a :class:`ShockGrid` (USD).

    ``instrument_pnl[s, v, h, i]`` is the P&L of one contract of instrument ``i``;
    ``pnl[s, v, h]`` is the book total; per-position contributions come from
    :meth:`position_pnl` without materialising a position axis over the whole grid.
    """

    grid: ShockGrid
    instrument_pnl: np.ndarray
    pnl: np.ndarray
    position_instrument: np.ndarray  # instrument index of each position
    position_quantity: np.ndarray

    def position_pnl(self, spot_shock: float, vol_shock: float, horizon_days: float) -> np.ndarray:
        """P&L of every position (USD) in the grid cell nearest the given shocks."""
        s, v, h = self.cell(spot_shock, vol_shock, horizon_days)
        return self.position_quantity * self.instrument_pnl[s, v, h, self.position_instrument]

    def cell(self, spot_shock, vol_shock, horizon_days) -> tuple[int, int, int]:
        g = self.grid
        return (int(np.abs(g.spot_shocks - spot_shock).argmin()),
                int(np.abs(g.vol_shocks - vol_shock).argmin()),
                int(np.abs(g.horizons_days - horizon_days).argmin()))

    def to_frame(self) -> pd.DataFrame:
        """Tidy frame: spot_shock, vol_shock, horizon_days, pnl (one row per grid cell)."""
        g = self.grid
        s, v, h = np.meshgrid(g.spot_shocks, g.vol_shocks, g.horizons_days, indexing="ij")
        return pd.DataFrame({"spot_shock": s.ravel(), "vol_shock": v.ravel(),
                             "horizon_days": h.ravel(), "pnl": self.pnl.ravel()})


def net_quantities(position_instrument: np.ndarray, quantity: np.ndarray, n_instruments: int):
    """Σ of signed contracts per instrument."""
    return np.bincount(position_instrument, weights=quantity, minlength=n_instruments)


def revaluation_pool() -> ThreadPoolExecutor:
    """Threads for one computation (use as a context manager).

    Made per call, not kept in a module global: a kept pool's threads do not survive ``fork()``
    (gunicorn ``--preload``) or a test server that stops every thread started after it, and a
    pool whose threads died waits forever.  Starting two threads costs ~0.1 ms.
    """
    return ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="revalue")


def stress_grid(arr: InstrumentArrays, position_instrument, quantity,
                grid: ShockGrid = DEFAULT_GRID, base: np.ndarray | None = None) -> StressResult:
    """Revalue every instrument over the grid by broadcasting and aggregate the book.

    ``base`` (instrument values at no shock) may be passed in when the caller already has it.
    """
    with revaluation_pool() as pool:
        inst_pnl = start_instrument_stress(arr, grid, base, pool)()
    q = np.asarray(quantity, dtype=float)
    pos_inst = np.asarray(position_instrument, dtype=int)
    return StressResult(grid, inst_pnl, inst_pnl @ net_quantities(pos_inst, q, len(arr)), pos_inst, q)


def start_instrument_stress(arr: InstrumentArrays, grid: ShockGrid, base: np.ndarray | None,
                            pool: ThreadPoolExecutor) -> Callable[[], np.ndarray]:
    """Submit the grid's spot slices to ``pool``; the returned function waits for them and gives
    the P&L of one contract of each instrument in every cell, shape (spot, vol, horizon, instruments)."""
    v = grid.vol_shocks[None, :, None, None]
    h = (grid.horizons_days / DAYS_PER_YEAR)[None, None, :, None]
    base = instrument_values(arr) if base is None else base

    def revalue(spot_shocks):
        pnl = instrument_values(arr, spot_shocks[:, None, None, None], v, h)
        pnl -= base
        return pnl

    # Slices of about _SLICE_CELLS cells: each pass of the pricing over a slice stays in the
    # CPU cache (twice as fast per cell as one pass over a large grid), and the slices spread
    # over the threads.
    cells = len(arr) * np.prod(grid.shape)
    n_parts = int(np.clip(np.ceil(cells / _SLICE_CELLS), 1, len(grid.spot_shocks)))
    futures = [pool.submit(revalue, p) for p in np.array_split(grid.spot_shocks, n_parts)]
    return lambda: np.concatenate([f.result() for f in futures], axis=0)


def instrument_payoff_curves(arr: InstrumentArrays, spot_shocks, horizons_years,
                             base: np.ndarray | None = None) -> np.ndarray:
    """P&L of one contract of each instrument (USD) along spot for each horizon at unchanged vol:
    shape (n_horizons, n_spots, n_instruments)."""
    s = np.asarray(spot_shocks, dtype=float)[None, :, None]
    h = np.asarray(horizons_years, dtype=float)[:, None, None]
    pnl = instrument_values(arr, s, 0.0, h)
    pnl -= instrument_values(arr) if base is None else base
    return pnl


def breakevens(x, y) -> np.ndarray:
    """x where the piecewise-linear curve y(x) crosses zero (linear interpolation).

    Only sign changes count: a curve that touches zero and turns back (a short straddle's P&L at
    no move) or is zero throughout has no breakeven there.  A zero reached exactly between a
    negative and a positive value is a breakeven at that point (the middle of a run of zeros).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    nz = np.flatnonzero(y != 0)
    if len(nz) < 2:
        return np.zeros(0)
    a, b = nz[:-1], nz[1:]
    change = np.sign(y[a]) != np.sign(y[b])
    a, b = a[change], b[change]
    adjacent = b == a + 1
    cross = x[a] - y[a] * (x[b] - x[a]) / (y[b] - y[a])
    zero_run = 0.5 * (x[a + 1] + x[b - 1])
    return np.round(np.where(adjacent, cross, zero_run), 12)


# ----------------------------------------------------------------------------- Greeks


GREEK_COLUMNS = ("delta", "delta_usd", "gamma_usd_1pct", "vega_per_vol_pt", "theta_per_day",
                 "rho_per_pct", "vanna_per_vol_pt", "volga_per_vol_pt", "charm_per_day")


def instrument_greeks(arr: InstrumentArrays, spot_shock=0.0) -> dict[str, np.ndarray]:
    """Display-unit Greeks of one contract of each instrument, at spot·(1 + spot_shock).

    delta: units of underlying (spot delta = Black delta·∂F/∂S, ∂F/∂S = e^{bT});
    delta_usd = delta·S; gamma_usd_1pct = Γ_S·S²/100 (the delta change for a 1 % move,
    Γ_S·0.01·S units, valued at today's spot);
    vega_per_vol_pt = vega/100; theta_per_day = theta/365 (Black-76 theta, F fixed);
    rho_per_pct = rho/100; vanna_per_vol_pt: change of delta (units) per vol point;
    volga_per_vol_pt: change of vega_per_vol_pt per vol point; charm_per_day: change of delta
    (units) per day; ``value`` is the USD value per contract as :func:`instrument_values` gives.
    ``spot_shock`` broadcasts like in :func:`instrument_values`.
    """
    s = np.asarray(spot_shock, dtype=float)
    shape = np.broadcast_shapes(s.shape, (len(arr),))
    S = np.broadcast_to(arr.spot * (1.0 + s), shape)
    growth = np.exp(arr.carry * np.maximum(arr.T, 0.0))
    out = {k: np.zeros(shape) for k in GREEK_COLUMNS + ("value",)}
    # Linear instruments: delta = multiplier·∂F/∂S, nothing else.
    lin = arr.linear_index
    out["delta"][..., lin] = (arr.multiplier * growth)[lin]
    out["value"][..., lin] = (S * arr.multiplier * growth)[..., lin]
    o = arr.option_index
    if len(o):
        S_o = S[..., o]
        F = S_o * growth[o]
        F_smile = F if arr.sticky == STICKY_MONEYNESS else arr.spot[o] * growth[o]
        sigma = np.maximum(smile_vol(arr.smile, arr.strike[o], F_smile, arr.T[o]), VOL_FLOOR)
        g = black76_greeks(F, arr.strike[o], arr.T[o], sigma, arr.rates, arr.is_call[o])
        m, dfds = arr.multiplier[o], growth[o]
        out["value"][..., o] = m * g.price
        out["delta"][..., o] = m * g.delta * dfds
        gamma_s = m * g.gamma * dfds * dfds
        out["gamma_usd_1pct"][..., o] = gamma_s * S_o * S_o / 100.0
        out["vega_per_vol_pt"][..., o] = m * g.vega / 100.0
        out["theta_per_day"][..., o] = m * g.theta / DAYS_PER_YEAR
        out["rho_per_pct"][..., o] = m * g.rho / 100.0
        out["vanna_per_vol_pt"][..., o] = m * g.vanna * dfds / 100.0
        out["volga_per_vol_pt"][..., o] = m * g.volga / 1e4
        out["charm_per_day"][..., o] = m * g.charm * dfds / DAYS_PER_YEAR
    out["delta_usd"] = out["delta"] * S
    return out


# ----------------------------------------------------------------------------- time roll


@dataclass(frozen=True)
class TimeRoll:
    """A book carried to a later valuation time: the positions still open, the market seen from
    then (:meth:`Market.rolled_to`), and what settled on the way — one row per settled position
    (instrument, expiry, quantity, entry_price, settlement_price, cash, pnl in USD) — and its total cash."""

    book: Book
    market: Market
    settled: pd.DataFrame
    cash: float


def roll_book(book: Book, market: Market, when: datetime) -> TimeRoll:
    """Move the valuation time to ``when``; options and futures expiring by then settle into cash.

    The rule is the stress grid's horizon rule with no shock: at its expiry a dated instrument's
    forward has rolled down to spot, so an option pays its intrinsic value on spot,
    q·m·max(±(S − K), 0), and a future q·m·(S − entry) (0 without an entry price, as its equity
    contribution is then 0).  Equity is continuous: just before expiry the position is worth what
    it pays just after.  ``pnl`` is cash less the option premium paid, q·m·entry (NaN if unknown).
    """
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    rows, keep = [], []
    for p in book.positions:
        inst = p.instrument
        if inst.expiry is None or inst.expiry > when:
            keep.append(p)
            continue
        S = market.spot(inst.underlying)
        m = p.quantity * inst.multiplier
        entry = np.nan if p.entry_price is None else p.entry_price
        if inst.kind == OPTION:
            K = float(inst.strike or 0.0)
            cash = m * max((S - K) if inst.is_call else (K - S), 0.0) + 0.0  # + 0.0: no −0 for shorts
            pnl = cash - m * entry
        else:
            cash = 0.0 if np.isnan(entry) else m * (S - entry)
            pnl = cash if not np.isnan(entry) else np.nan
        rows.append({"instrument": inst.name, "expiry": inst.expiry.date().isoformat(), "quantity": p.quantity,
                     "entry_price": entry, "settlement_price": S, "cash": cash, "pnl": pnl})
    settled = pd.DataFrame(rows, columns=["instrument", "expiry", "quantity", "entry_price", "settlement_price",
                                          "cash", "pnl"])
    return TimeRoll(book.with_positions(keep), market.rolled_to(when), settled, float(settled["cash"].sum()))
