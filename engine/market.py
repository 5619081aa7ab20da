"""Market snapshot: spots, forward and rate term structures, and a vol smile per expiry
(docs/methodology.md §3, docs/market.md).

Forwards.  Each smile slice may carry its own ``forward`` (USD) and ``rate``; a listed dated
future's mark (``futures``) is its expiry's forward and wins over a slice forward.  Between
those nodes the log-forward ln(F/S) is linear in T (through 0 at T = 0); beyond the last node,
and for an underlying without nodes, it grows at the ``carry`` b:  F(T) = S·e^{bT}.  The
discount exponent r·T is interpolated the same way from the slice rates with ``usd_rate`` as the
fallback.  Perpetuals track spot, or ``perp_mark`` when given (the perp keeps its basis to spot).

Smiles, one form per slice (:mod:`engine.smile` for SVI and points):

* quadratic ``atm_vol/skew/curvature`` in x = ln(K/F)/√T:  σ = max(σ_floor, atm + skew·x + curvature·x²);
  x uses T floored at one day and clipped to ±``WING_CLAMP`` (beyond that the smile is flat), so a
  quadratic wing cannot price a far option hours from expiry at thousands of vol points;
* raw SVI ``svi`` {a, b, rho, m, sigma} in total variance at k = ln(K/F):  σ = √(w(k)/T_slice);
* strike points ``points`` [[strike, vol], ...]: σ² linear in k between points, flat beyond.

Between listed expiries the vol is interpolated linearly in total variance σ²T at the option's
moneyness; before the first and after the last expiry the nearest smile is used (flat).

Under a spot shock the smile is *sticky moneyness* by default (k recomputed on the shocked
forward, so the smile moves with spot); *sticky strike* keeps each strike's vol.

JSON format (docs/methodology.md §11; every addition optional, unknown keys ignored)::

    {"valuation_time": "2026-11-24T08:00:00Z", "usd_rate": 0.0,
     "underlyings": {"BTC": {"spot": 95000.0, "carry": 0.05, "perp_mark": 95020.0,
       "futures": {"2026-12-25": 95600.0},
       "smile": [{"expiry": "2026-12-25", "atm_vol": 0.55, "skew": -0.10, "curvature": 0.20},
                 {"expiry": "2027-03-26", "forward": 96900.0, "rate": 0.0,
                  "svi": {"a": 0.04, "b": 0.1, "rho": -0.3, "m": 0.0, "sigma": 0.2}},
                 {"expiry": "2027-06-25", "points": [[80000, 0.58], [95000, 0.52], [110000, 0.55]]}]}}}

Venue feed fields (engine.account.feeds_from_market_dict reads them; kept through
``market_from_dict``/``market_to_dict``, written only when not at their default): top level
``stable_price`` (USD per stable coin, default 1) and ``stable_confidence``; per underlying
``spot_confidence`` and ``perp_confidence`` (``perp_mark`` above, default spot); per slice
``forward_confidence``, ``rate_confidence`` and ``vol_confidence``.  Confidences are fractions in
[0, 1], default 1.
"""
from __future__ import annotations

import json
import math
import os
import re
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

from .instruments import EXPIRY_TIME
from .smile import (
    CHECK_POINTS,
    SVI,
    ArbitrageWarning,
    butterfly_check,
    calendar_check,
    fit_svi,
    numeric_derivatives,
    points_variance,
    svi_derivatives,
    svi_total_variance,
)

SECONDS_PER_YEAR = 365.0 * 24 * 3600
VOL_FLOOR = 0.01
WING_CLAMP = 3.0
MIN_SMILE_T = 1.0 / 365.0
STICKY_MONEYNESS, STICKY_STRIKE = "moneyness", "strike"
QUADRATIC, SVI_FORM, POINTS = "quadratic", "svi", "points"
FORMS = (QUADRATIC, SVI_FORM, POINTS)
_FORM_CODE = {QUADRATIC: 0, SVI_FORM: 1, POINTS: 2}

#: Input limits: a market is held in memory and checked field by field.
MAX_BYTES = 5_000_000
MAX_UNDERLYINGS = 200
MAX_SLICES = 500
MAX_POINTS = 1000
#: Vols above 2,000 % are taken as a unit mistake (a percentage typed as a decimal).
MAX_VOL = 20.0
_UNDERLYING_RE = re.compile(r"[A-Z][A-Z0-9]{0,9}")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _short_repr() -> reprlib.Repr:
    r = reprlib.Repr()  # bounded depth and length: a value deep or huge is never rendered whole
    r.maxlevel, r.maxstring, r.maxother, r.maxlist, r.maxdict, r.maxlong = 2, 40, 40, 4, 4, 40
    return r


_show = _short_repr().repr


class MarketError(ValueError):
    """Invalid market data; the message names the field (e.g. ``underlyings.BTC.spot``)."""


@dataclass(frozen=True)
class SmileSlice:
    """Smile of one expiry date (vols as decimals per annum): quadratic (``atm_vol``, ``skew``,
    ``curvature``), raw ``svi`` or strike ``points`` ((strike USD, vol), ...) — see :attr:`form`;
    optional per-expiry ``forward`` (USD) and ``rate`` (decimal, continuous)."""

    expiry: date
    atm_vol: float | None = None
    skew: float = 0.0
    curvature: float = 0.0
    svi: SVI | None = None
    points: tuple[tuple[float, float], ...] = ()
    forward: float | None = None
    rate: float | None = None
    #: Oracle confidences of the slice's feeds (fractions in [0, 1]; venue margin, engine.account).
    forward_confidence: float = 1.0
    rate_confidence: float = 1.0
    vol_confidence: float = 1.0

    @property
    def form(self) -> str:
        return SVI_FORM if self.svi is not None else POINTS if self.points else QUADRATIC


@dataclass(frozen=True)
class UnderlyingMarket:
    """Spot (USD), annualised carry b (decimal, the forward fallback), smile slices sorted by
    expiry, dated futures' marks ((expiry, USD), sorted) and the perpetual's mark (USD)."""

    spot: float
    carry: float = 0.0
    smile: tuple[SmileSlice, ...] = ()
    futures: tuple[tuple[date, float], ...] = ()
    perp_mark: float | None = None
    #: A move of the whole vol surface on top of the slices, any form (decimal vol points):
    #: σ + vol_shift + skew_shift·x, x = ln(K/F)/√T.  Scenarios (crash replays) set it; 0 = none.
    vol_shift: float = 0.0
    skew_shift: float = 0.0
    #: Oracle confidences of the spot and perp feeds (fractions in [0, 1]; engine.account).
    spot_confidence: float = 1.0
    perp_confidence: float = 1.0

    @property
    def perp_price(self) -> float:
        return self.spot if self.perp_mark is None else self.perp_mark


def _exponent_curve(T, node_t, node_y, tail_rate: float):
    """y(T) through (0, 0) and the nodes (t > 0, sorted), linear between them; slope
    ``tail_rate`` before 0 and beyond the last node."""
    T = np.asarray(T, dtype=float)
    if len(node_t) == 0:
        return tail_rate * T
    inside = np.interp(T, np.concatenate([[0.0], node_t]), np.concatenate([[0.0], node_y]))
    beyond = node_y[-1] + tail_rate * (T - node_t[-1])
    return np.where(T <= 0, tail_rate * T, np.where(node_t[-1] < T, beyond, inside))


@dataclass(frozen=True)
class Market:
    valuation_time: datetime
    underlyings: Mapping[str, UnderlyingMarket]
    usd_rate: float = 0.0
    sticky: str = STICKY_MONEYNESS
    #: Stable-coin price (USD) and its oracle confidence (engine.account.VenueFeeds).
    stable_price: float = 1.0
    stable_confidence: float = 1.0

    def year_fraction(self, when: datetime | None) -> float:
        """ACT/365 years from the valuation time to ``when`` (negative if already past)."""
        if when is None:
            return 0.0
        return (when - self.valuation_time).total_seconds() / SECONDS_PER_YEAR

    def expiry_years(self, expiry: date) -> float:
        return self.year_fraction(datetime.combine(expiry, EXPIRY_TIME))

    def spot(self, underlying: str) -> float:
        return self.underlying(underlying).spot

    def underlying(self, name: str) -> UnderlyingMarket:
        try:
            return self.underlyings[name]
        except KeyError:
            known = ", ".join(sorted(self.underlyings)) or "none"
            raise MarketError(f"no market data for underlying {name!r} (known: {known})") from None

    def _nodes(self, u: UnderlyingMarket, values: dict[date, float]):
        t = np.array([self.expiry_years(d) for d in values], dtype=float)
        y = np.array(list(values.values()), dtype=float)
        live = t > 0
        order = np.argsort(t[live])
        return t[live][order], y[live][order]

    def log_forward(self, underlying: str, T):
        """ln(F(T)/S) from the slice forwards and futures marks (carry beyond), T in years."""
        u = self.underlying(underlying)
        nodes = {s.expiry: math.log(s.forward / u.spot) for s in u.smile if s.forward is not None}
        nodes.update({d: math.log(mark / u.spot) for d, mark in u.futures})
        node_t, node_y = self._nodes(u, nodes)
        return _exponent_curve(T, node_t, node_y, u.carry)

    def forward(self, underlying: str, T):
        """F(T) in USD; T in years, array-like.  S·e^{bT} without term-structure nodes."""
        return self.underlying(underlying).spot * np.exp(self.log_forward(underlying, T))

    def rate(self, underlying: str, T):
        """Continuous discount rate to T (decimal p.a.) from the slice rates, ``usd_rate`` beyond."""
        u = self.underlying(underlying)
        nodes = {s.expiry: s.rate * self.expiry_years(s.expiry) for s in u.smile if s.rate is not None}
        T = np.asarray(T, dtype=float)
        node_t, node_y = self._nodes(u, nodes)
        y = _exponent_curve(T, node_t, node_y, self.usd_rate)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(T > 0, y / np.where(T > 0, T, 1.0), self.usd_rate)

    def vol(self, underlying: str, K, T, F=None):
        """Smile vol σ(K, T) (decimal p.a.) for one underlying; F defaults to the forward."""
        K = np.asarray(K, dtype=float)
        T = np.asarray(T, dtype=float)
        F = self.forward(underlying, T) if F is None else np.asarray(F, dtype=float)
        return smile_vol(smile_coefficients(self.underlying(underlying).smile, self, T, underlying), K, F, T)

    def with_spot_shock(self, shock) -> Market:
        """Every underlying's spot × (1 + shock) — a fraction, or one per underlying in the order
        of ``underlyings``; forwards, futures and perp marks move by the same factor (bases and
        carry stay), smiles stay (they then follow ``sticky``)."""
        shocks = np.broadcast_to(np.asarray(shock, dtype=float), (len(self.underlyings),))
        unds = {u: _scaled(m, 1.0 + float(s)) for (u, m), s in zip(self.underlyings.items(), shocks, strict=True)}
        return replace(self, underlyings=unds)

    def replace_underlying(self, name: str, **changes) -> Market:
        unds = dict(self.underlyings)
        unds[name] = replace(self.underlying(name), **changes)
        return replace(self, underlyings=unds)

    def rolled_to(self, when: datetime) -> Market:
        """The same market seen from ``when``: spot, each expiry's implied carry and rate, and each
        live slice's vols in k kept — the stress grid's horizon rule, so forwards roll down to spot.

        SVI slices hold total variance, so a and b are rescaled by T_new/T_old to keep
        √(w/T); slices and futures that expire by ``when`` are dropped (unless no slice would
        remain).  Positions that expire on the way settle with
        :func:`engine.scenarios.roll_book`.
        """
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        rolled = replace(self, valuation_time=when)
        unds = {}
        for name, u in self.underlyings.items():
            def shrink(d: date) -> float:
                """T_new/T_old for an expiry: implied carries and vols are kept, so a forward
                F = S·e^{bT} becomes S·(F/S)^{T_new/T_old} and SVI's a, b scale by it."""
                return rolled.expiry_years(d) / max(self.expiry_years(d), MIN_SMILE_T)

            live = []
            for s in u.smile:
                if rolled.expiry_years(s.expiry) <= 0:
                    continue
                f = shrink(s.expiry)
                if s.svi is not None:
                    s = replace(s, svi=replace(s.svi, a=s.svi.a * f, b=s.svi.b * f))
                if s.forward is not None:
                    s = replace(s, forward=u.spot * (s.forward / u.spot) ** f)
                live.append(s)
            futures = tuple((d, u.spot * (p / u.spot) ** shrink(d)) for d, p in u.futures
                            if rolled.expiry_years(d) > 0)
            unds[name] = replace(u, smile=tuple(live) or u.smile, futures=futures)
        return replace(rolled, underlyings=unds)


def _scaled(u: UnderlyingMarket, factor: float) -> UnderlyingMarket:
    return replace(u, spot=u.spot * factor,
                   perp_mark=None if u.perp_mark is None else u.perp_mark * factor,
                   futures=tuple((d, p * factor) for d, p in u.futures),
                   smile=tuple(s if s.forward is None else replace(s, forward=s.forward * factor)
                               for s in u.smile))


# ----------------------------------------------------------------------------- smile kernel


@dataclass(frozen=True)
class SmileCoefficients:
    """Per-option smile data for the vectorised kernel: the two bracketing slices' form codes
    (0 quadratic, 1 SVI, 2 points) and parameter rows (atm, skew, curvature or a, b, ρ, m, σ, or
    the index of a points table in ``tables``), their times (years) and the total-variance
    weight (0 → lo only, 1 → hi only).  ``tables`` are (k nodes, σ² nodes) pairs."""

    lo: np.ndarray  # shape (5, n)
    hi: np.ndarray  # shape (5, n)
    t_lo: np.ndarray
    t_hi: np.ndarray
    weight: np.ndarray
    lo_form: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    hi_form: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    tables: tuple[tuple[np.ndarray, np.ndarray], ...] = ()
    #: A move of the whole surface on top of any smile form, per option (decimal vol points):
    #: σ + level_shift + skew_shift·x, x = ln(K/F)/√T as in the quadratic smile; empty = none.
    level_shift: np.ndarray = field(default_factory=lambda: np.zeros(0))
    skew_shift: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def shifted(self, level, skew=0.0) -> SmileCoefficients:
        """These coefficients with the surface moved by ``level`` (+ ``skew``·x) vol points more."""
        n = self.lo.shape[1]
        base_l = self.level_shift if len(self.level_shift) == n else np.zeros(n)
        base_s = self.skew_shift if len(self.skew_shift) == n else np.zeros(n)
        return replace(self, level_shift=base_l + np.broadcast_to(level, (n,)),
                       skew_shift=base_s + np.broadcast_to(skew, (n,)))

    @classmethod
    def empty(cls, n: int) -> SmileCoefficients:
        z = np.zeros(n)
        return cls(np.zeros((5, n)), np.zeros((5, n)), z, z.copy(), z.copy(), np.zeros(n, int), np.zeros(n, int))

    def assign(self, sel: np.ndarray, part: SmileCoefficients) -> SmileCoefficients:
        """These coefficients with options ``sel`` taken from ``part`` (its tables appended)."""
        shift = len(self.tables)
        lo, hi = part.lo.copy(), part.hi.copy()
        lo[0] = np.where(part.lo_form == _FORM_CODE[POINTS], lo[0] + shift, lo[0])
        hi[0] = np.where(part.hi_form == _FORM_CODE[POINTS], hi[0] + shift, hi[0])
        new = replace(self, lo=self.lo.copy(), hi=self.hi.copy(), t_lo=self.t_lo.copy(), t_hi=self.t_hi.copy(),
                      weight=self.weight.copy(), lo_form=self.lo_form.copy(), hi_form=self.hi_form.copy(),
                      tables=self.tables + part.tables)
        new.lo[:, sel], new.hi[:, sel] = lo, hi
        new.t_lo[sel], new.t_hi[sel], new.weight[sel] = part.t_lo, part.t_hi, part.weight
        new.lo_form[sel], new.hi_form[sel] = part.lo_form, part.hi_form
        if len(part.level_shift) or len(self.level_shift):  # a moved surface keeps its move per option
            n, m = self.lo.shape[1], part.lo.shape[1]
            level, skew = (np.array(a, dtype=float) if len(a) == n else np.zeros(n)
                           for a in (self.level_shift, self.skew_shift))
            level[sel] = part.level_shift if len(part.level_shift) == m else 0.0
            skew[sel] = part.skew_shift if len(part.skew_shift) == m else 0.0
            new = replace(new, level_shift=level, skew_shift=skew)
        return new


def _slice_row(s: SmileSlice, table: int) -> list[float]:
    if s.svi is not None:
        return list(s.svi.as_array())
    if s.points:
        return [float(table), 0.0, 0.0, 0.0, 0.0]
    return [float(s.atm_vol or 0.0), s.skew, s.curvature, 0.0, 0.0]


def smile_coefficients(slices, market: Market, T, underlying: str | None = None) -> SmileCoefficients:
    """Bracketing smile slices for options expiring at ``T`` years (one underlying; its name is
    needed only for strike-point slices, whose strikes are turned into k on the slice forward)."""
    T = np.atleast_1d(np.asarray(T, dtype=float))
    if not slices:
        raise MarketError("no smile: at least one expiry with a smile is needed to price options")
    times = np.array([market.expiry_years(s.expiry) for s in slices])
    tables = []
    rows = []
    for s, t in zip(slices, times, strict=True):
        if s.points:
            if underlying is None:
                raise MarketError(f"smile {s.expiry}: strike points need the underlying's forward")
            K, v = np.array(s.points, dtype=float).T
            fwd = float(market.forward(underlying, max(t, 0.0)))
            k = np.log(K / fwd)
            order = np.argsort(k)
            tables.append((k[order], (v * v)[order]))
        rows.append(_slice_row(s, len(tables) - 1))
    params = np.array(rows).T  # (5, m)
    forms = np.array([_FORM_CODE[s.form] for s in slices], dtype=int)
    hi_idx = np.clip(np.searchsorted(times, T, side="left"), 0, len(times) - 1)
    lo_idx = np.clip(hi_idx - 1, 0, len(times) - 1)
    lo_idx = np.where(times[0] >= T, 0, lo_idx)
    t_lo, t_hi = times[lo_idx], times[hi_idx]
    span = t_hi - t_lo
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = np.where(span > 0, (T - t_lo) / span, 0.0)
    weight = np.clip(weight, 0.0, 1.0)
    coeffs = SmileCoefficients(params[:, lo_idx], params[:, hi_idx], t_lo, t_hi, weight,
                               forms[lo_idx], forms[hi_idx], tuple(tables))
    u = market.underlyings.get(underlying) if underlying is not None else None
    if u is not None and (u.vol_shift or u.skew_shift):
        coeffs = coeffs.shifted(u.vol_shift, u.skew_shift)
    return coeffs


def _form_vol(code: int, p, k, x, t_slice, tables):
    """Vol of one smile form; p rows broadcast against k (moneyness ln(K/F)) and x (k/√T, clipped)."""
    if code == _FORM_CODE[QUADRATIC]:
        return np.maximum(VOL_FLOOR, p[0] + p[1] * x + p[2] * x * x)
    if code == _FORM_CODE[SVI_FORM]:
        w = svi_total_variance(p, k)
        return np.maximum(VOL_FLOOR, np.sqrt(np.maximum(w, 0.0) / np.maximum(t_slice, MIN_SMILE_T)))
    out = np.empty(np.broadcast_shapes(np.shape(k), np.shape(p[0])))
    ids = np.broadcast_to(p[0], out.shape).astype(int)
    k = np.broadcast_to(k, out.shape)
    for j in np.unique(ids):
        mask = ids == j
        out[mask] = points_variance(k[mask], *tables[j])
    return np.maximum(VOL_FLOOR, np.sqrt(out))


def _side_vol(p, forms, t_slice, k, x, tables):
    present = np.unique(forms)
    if len(present) <= 1:
        return _form_vol(int(present[0]) if len(present) else 0, p, k, x, t_slice, tables)
    shape = np.broadcast_shapes(k.shape, forms.shape)
    k, x = np.broadcast_to(k, shape), np.broadcast_to(x, shape)
    out = np.empty(shape)
    for code in present:
        idx = np.flatnonzero(forms == code)
        out[..., idx] = _form_vol(int(code), p[:, idx], k[..., idx], x[..., idx], t_slice[idx], tables)
    return out


def smile_vol(c: SmileCoefficients, K, F, T):
    """σ(K, T) from bracketing coefficients; broadcasts K, F, T against the option axis."""
    t_eff = np.maximum(T, MIN_SMILE_T)
    k = np.log(K / F)
    x = np.clip(k / np.sqrt(t_eff), -WING_CLAMP, WING_CLAMP)
    lo_form = c.lo_form if len(c.lo_form) == c.lo.shape[1] else np.zeros(c.lo.shape[1], int)
    hi_form = c.hi_form if len(c.hi_form) == c.hi.shape[1] else np.zeros(c.hi.shape[1], int)
    s_lo = _side_vol(c.lo, lo_form, c.t_lo, k, x, c.tables)
    s_hi = _side_vol(c.hi, hi_form, c.t_hi, k, x, c.tables)
    # Linear in total variance between slices; at the ends weight is 0 or 1 (flat extrapolation).
    interior = (c.t_hi > c.t_lo) & (c.t_lo > 0)
    w_lo = s_lo * s_lo * np.maximum(c.t_lo, MIN_SMILE_T)
    w_hi = s_hi * s_hi * np.maximum(c.t_hi, MIN_SMILE_T)
    t_mid = np.maximum(c.t_lo + c.weight * (c.t_hi - c.t_lo), MIN_SMILE_T)
    var_interp = np.sqrt(np.maximum(w_lo + c.weight * (w_hi - w_lo), 0.0) / t_mid)
    # Beyond an already-expired slice (t_lo ≤ 0) the next live slice holds (flat extrapolation).
    flat = np.where((c.weight >= 1.0) | (c.t_lo <= 0), s_hi, s_lo)
    vol = np.where(interior, var_interp, flat)
    if len(c.level_shift) == c.lo.shape[1]:  # a moved surface (crash replays): floored like any smile
        vol = np.maximum(vol + c.level_shift + c.skew_shift * x, VOL_FLOOR)
    return vol


def slice_total_variance(market: Market, underlying: str, s: SmileSlice, k) -> np.ndarray:
    """w(k) = σ²T of one slice at its own expiry on a k grid (for checks and charts)."""
    t = market.expiry_years(s.expiry)
    c = smile_coefficients((s,), market, np.full(np.shape(k), t), underlying)
    F = float(market.forward(underlying, max(t, 0.0)))
    vol = smile_vol(c, F * np.exp(k), F, np.full(np.shape(k), t))
    return vol * vol * max(t, MIN_SMILE_T)


# ----------------------------------------------------------------------------- JSON


def _vol(value, where: str) -> float:
    x = _num(value, where, positive=True)
    if x > MAX_VOL:
        raise MarketError(f"{where}: {x:g} is above {MAX_VOL:g} ({MAX_VOL:.0%}) — vols are decimals (0.55 = 55 %)")
    return x


def _num(value, where: str, positive=False, nonneg=False) -> float:
    if isinstance(value, bool):
        raise MarketError(f"{where}: {value!r} is not a number")
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        raise MarketError(f"{where}: {_show(value)} is not a number (or out of range)") from None
    if not math.isfinite(x):
        raise MarketError(f"{where}: must be finite (got {_show(value)})")
    if positive and x <= 0:
        raise MarketError(f"{where}: must be > 0 (got {x:g})")
    if nonneg and x < 0:
        raise MarketError(f"{where}: must be ≥ 0 (got {x:g})")
    return x


def _opt_num(d: Mapping, key: str, where: str, **kw) -> float | None:
    return None if d.get(key) is None else _num(d[key], f"{where}.{key}", **kw)


def _parse_time(text) -> datetime:
    if not isinstance(text, str):
        raise MarketError(f"valuation_time: {_show(text)} is not an ISO-8601 time")
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise MarketError(f"valuation_time: {_show(text)} is not an ISO-8601 time") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _parse_date(value, where: str) -> date:
    text = value.strip() if isinstance(value, str) else None
    try:
        if text is None or not _DATE_RE.fullmatch(text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise MarketError(f"{where}: {_show(value)} is not a date (YYYY-MM-DD)") from None


def _parse_svi(raw, where: str) -> SVI:
    if not isinstance(raw, Mapping):
        raise MarketError(f"{where}: must be an object with a, b, rho, m, sigma")
    svi = SVI(*(_num(raw.get(key), f"{where}.{key}") for key in ("a", "b", "rho", "m", "sigma")))
    problems = svi.problems()
    if problems:
        raise MarketError(f"{where}.{problems[0]}")
    return svi


def _parse_points(raw, where: str) -> tuple[tuple[float, float], ...]:
    if not isinstance(raw, list) or not raw:
        raise MarketError(f"{where}: must be a non-empty list of [strike, vol] pairs")
    if len(raw) > MAX_POINTS:
        raise MarketError(f"{where}: {len(raw)} points, at most {MAX_POINTS}")
    out = {}
    for j, pair in enumerate(raw):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise MarketError(f"{where}[{j}]: must be a [strike, vol] pair")
        strike = _num(pair[0], f"{where}[{j}].strike", positive=True)
        if strike in out:
            raise MarketError(f"{where}[{j}].strike: {strike:g} listed twice")
        out[strike] = _vol(pair[1], f"{where}[{j}].vol")
    return tuple(sorted(out.items()))


#: Per-slice feed confidences of the JSON format (fractions in [0, 1], default 1).
SLICE_CONFIDENCES = ("forward_confidence", "rate_confidence", "vol_confidence")


def _confidence(d: Mapping, key: str, where: str) -> float:
    """An oracle confidence: a fraction in [0, 1], 1 when absent."""
    name = f"{where}.{key}" if where else key
    x = _num(d.get(key, 1.0), name)
    if not 0.0 <= x <= 1.0:
        raise MarketError(f"{name}: must be in [0, 1] (got {x:g})")
    return x


def _parse_slice(s, sw: str) -> SmileSlice:
    if not isinstance(s, Mapping):
        raise MarketError(f"{sw}: must be an object with expiry and a smile (atm_vol, svi or points)")
    expiry = _parse_date(s.get("expiry"), f"{sw}.expiry")
    given = [key for key in ("atm_vol", "svi", "points") if s.get(key) is not None]
    if len(given) > 1:
        raise MarketError(f"{sw}: one smile form per expiry — got {' and '.join(given)}")
    forward, rate = _opt_num(s, "forward", sw, positive=True), _opt_num(s, "rate", sw)
    fc, rc, vc = (_confidence(s, key, sw) for key in SLICE_CONFIDENCES)
    if given == ["svi"]:
        one = SmileSlice(expiry, svi=_parse_svi(s["svi"], f"{sw}.svi"), forward=forward, rate=rate)
    elif given == ["points"]:
        one = SmileSlice(expiry, points=_parse_points(s["points"], f"{sw}.points"), forward=forward, rate=rate)
    else:
        one = SmileSlice(expiry, _vol(s.get("atm_vol"), f"{sw}.atm_vol"),
                         _num(s.get("skew", 0.0), f"{sw}.skew"), _num(s.get("curvature", 0.0), f"{sw}.curvature"),
                         forward=forward, rate=rate)
    return replace(one, forward_confidence=fc, rate_confidence=rc, vol_confidence=vc)


def _parse_futures(raw, where: str) -> tuple[tuple[date, float], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise MarketError(f"{where}: must be an object of expiry → mark (USD)")
    marks = {_parse_date(d, f"{where}"): _num(p, f"{where}.{d}", positive=True) for d, p in raw.items()}
    return tuple(sorted(marks.items()))


def _parse_underlying(u, where: str) -> UnderlyingMarket:
    if not isinstance(u, Mapping):
        raise MarketError(f"{where}: must be an object")
    raw_smile = u.get("smile") or []
    if not isinstance(raw_smile, list):
        raise MarketError(f"{where}.smile: must be a list of expiries")
    if len(raw_smile) > MAX_SLICES:
        raise MarketError(f"{where}.smile: {len(raw_smile)} expiries, at most {MAX_SLICES}")
    slices, seen = [], set()
    for i, s in enumerate(raw_smile):
        one = _parse_slice(s, f"{where}.smile[{i}]")
        if one.expiry in seen:
            raise MarketError(f"{where}.smile[{i}].expiry: expiry {one.expiry} listed twice")
        seen.add(one.expiry)
        slices.append(one)
    slices.sort(key=lambda s: s.expiry)
    return UnderlyingMarket(_num(u.get("spot"), f"{where}.spot", positive=True),
                            _num(u.get("carry", 0.0), f"{where}.carry"), tuple(slices),
                            _parse_futures(u.get("futures"), f"{where}.futures"),
                            _opt_num(u, "perp_mark", where, positive=True),
                            _num(u.get("vol_shift", 0.0), f"{where}.vol_shift"),
                            _num(u.get("skew_shift", 0.0), f"{where}.skew_shift"),
                            _confidence(u, "spot_confidence", where), _confidence(u, "perp_confidence", where))


def market_from_dict(data: Mapping) -> Market:
    """Build a :class:`Market` from the JSON structure; every bad field raises MarketError.

    Keys the format does not define are ignored, so files carrying later additions still load.
    """
    if not isinstance(data, Mapping):
        raise MarketError("market JSON must be an object")
    if "valuation_time" not in data:
        raise MarketError("valuation_time: missing")
    raw_unds = data.get("underlyings") or {}
    if not isinstance(raw_unds, Mapping) or not raw_unds:
        raise MarketError("underlyings: at least one underlying is needed")
    if len(raw_unds) > MAX_UNDERLYINGS:
        raise MarketError(f"underlyings: {len(raw_unds)} underlyings, at most {MAX_UNDERLYINGS}")
    unds: dict[str, UnderlyingMarket] = {}
    spelled: dict[str, str] = {}
    for name, u in raw_unds.items():
        key = str(name).strip().upper()
        where = f"underlyings.{_show(name) if not isinstance(name, str) else name}"
        if not _UNDERLYING_RE.fullmatch(key):
            raise MarketError(f"{where}: {_show(name)} is not an underlying name (letters/digits, ≤ 10)")
        if key in spelled:
            raise MarketError(f"{where}: same underlying as {spelled[key]!r} (names are case-insensitive)")
        spelled[key] = str(name)
        unds[key] = _parse_underlying(u, where)
    sticky = data.get("sticky", STICKY_MONEYNESS)
    if sticky not in (STICKY_MONEYNESS, STICKY_STRIKE):
        raise MarketError(f"sticky: {_show(sticky)} is not 'moneyness' or 'strike'")
    return Market(_parse_time(data["valuation_time"]), unds, _num(data.get("usd_rate", 0.0), "usd_rate"), sticky,
                  _num(data.get("stable_price", 1.0), "stable_price", positive=True),
                  _confidence(data, "stable_confidence", ""))


def _slice_dict(s: SmileSlice) -> dict:
    out: dict = {"expiry": s.expiry.isoformat()}
    if s.svi is not None:
        out["svi"] = {"a": s.svi.a, "b": s.svi.b, "rho": s.svi.rho, "m": s.svi.m, "sigma": s.svi.sigma}
    elif s.points:
        out["points"] = [[k, v] for k, v in s.points]
    else:
        out.update(atm_vol=s.atm_vol, skew=s.skew, curvature=s.curvature)
    for key in ("forward", "rate"):
        if getattr(s, key) is not None:
            out[key] = getattr(s, key)
    out.update({key: getattr(s, key) for key in SLICE_CONFIDENCES if getattr(s, key) != 1.0})
    return out


def _underlying_dict(u: UnderlyingMarket) -> dict:
    out: dict = {"spot": u.spot, "carry": u.carry}
    if u.perp_mark is not None:
        out["perp_mark"] = u.perp_mark
    if u.futures:
        out["futures"] = {d.isoformat(): p for d, p in u.futures}
    for key in ("vol_shift", "skew_shift"):
        if getattr(u, key):
            out[key] = getattr(u, key)
    out.update({key: getattr(u, key) for key in ("spot_confidence", "perp_confidence") if getattr(u, key) != 1.0})
    out["smile"] = [_slice_dict(s) for s in u.smile]
    return out


def market_to_dict(market: Market) -> dict:
    when = market.valuation_time.astimezone(UTC)
    t = when.replace(tzinfo=None).isoformat(timespec="seconds" if not when.microsecond else "microseconds") + "Z"
    out = {
        "valuation_time": t,
        "usd_rate": market.usd_rate,
        "sticky": market.sticky,
        "underlyings": {name: _underlying_dict(u) for name, u in market.underlyings.items()},
    }
    if market.stable_price != 1.0 or market.stable_confidence != 1.0:
        out.update(stable_price=market.stable_price, stable_confidence=market.stable_confidence)
    return out


def _decode(raw: bytes | bytearray, where: str) -> str:
    if len(raw) > MAX_BYTES:
        raise MarketError(f"{where}: {len(raw):,} bytes, at most {MAX_BYTES:,}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise MarketError(f"{where}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def _read_path(path) -> str:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except (OSError, ValueError) as e:
        raise MarketError(f"market file {_show(str(path))}: cannot read ({e.__class__.__name__}: {e})") from None
    return _decode(raw, f"market file {_show(str(path))}")


def _looks_like_path(text: str) -> bool:
    try:
        return len(text) < 4096 and "\n" not in text and os.path.isfile(text)
    except (OSError, ValueError):
        return False


def market_text(source) -> str:
    """The JSON text of ``source``: a path (str or PathLike naming an existing file), a
    file-like object, bytes or JSON text.  A str that is not an existing file is JSON text."""
    if isinstance(source, os.PathLike):
        return _read_path(source)
    if isinstance(source, (bytes, bytearray)):
        return _decode(bytes(source), "market JSON")
    if isinstance(source, str):
        stripped = source.strip()
        if stripped[:1] not in ("{", "[") and _looks_like_path(stripped):
            return _read_path(stripped)
        return source
    if hasattr(source, "read"):
        try:
            text = source.read(MAX_BYTES + 1)
        except (OSError, ValueError) as e:
            raise MarketError(f"market JSON: cannot read ({e})") from None
        return _decode(text, "market JSON") if isinstance(text, (bytes, bytearray)) else str(text)
    raise MarketError(f"market: expected a path, file, JSON text or object (got {type(source).__name__})")


def parse_json(text: str, what: str = "market JSON"):
    """``json.loads`` whose every failure (syntax, depth, huge numbers) is a MarketError."""
    if len(text) > MAX_BYTES:
        raise MarketError(f"{what}: {len(text):,} characters, at most {MAX_BYTES:,}")
    try:
        return json.loads(text)
    except RecursionError:
        raise MarketError(f"{what} is malformed: nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, or an integer literal beyond Python's digit limit
        raise MarketError(f"{what} is malformed: {e}") from None


def load_market(source) -> Market:
    """Load a market from a JSON path, a file-like object, JSON text/bytes or a parsed dict.

    Every failure raises MarketError naming the field (or the file)."""
    if isinstance(source, Mapping):
        try:
            return market_from_dict(source)
        except RecursionError:
            raise MarketError("market: nested too deeply") from None
    text = market_text(source)
    if not text.strip():
        raise MarketError("market JSON is malformed: empty")
    return market_from_dict(parse_json(text))


def save_market(market: Market, target=None) -> str:
    """Serialise to the JSON format; write to ``target`` (path or file-like) if given."""
    text = json.dumps(market_to_dict(market), indent=2)
    if target is None:
        return text
    if hasattr(target, "write"):
        target.write(text)
    else:
        Path(target).write_text(text, encoding="utf-8")
    return text


# ----------------------------------------------------------------------------- arbitrage diagnostics


def _atm_total_variance(market: Market, underlying: str, s: SmileSlice) -> float:
    return float(slice_total_variance(market, underlying, s, np.zeros(1))[0])


def _butterfly_grid(market: Market, underlying: str, s: SmileSlice) -> np.ndarray:
    """k range a slice's density is checked on: SVI far into its wings (it defines them), a
    quadratic inside its wing clamp, strike points strictly between the outer points (flat vol
    beyond is the convention, not a quote)."""
    t = max(market.expiry_years(s.expiry), MIN_SMILE_T)
    spread = math.sqrt(max(_atm_total_variance(market, underlying, s), 1e-12))
    if s.points:
        fwd = float(market.forward(underlying, t))
        k = np.log(np.array([p[0] for p in s.points]) / fwd)
        if len(k) < 3:
            return np.zeros(0)
        pad = 0.02 * (k[-1] - k[0])
        return np.linspace(k[0] + pad, k[-1] - pad, 2 * CHECK_POINTS)
    reach = max(1.5, 6.0 * spread) if s.svi is not None else min(6.0 * spread, 0.99 * WING_CLAMP * math.sqrt(t))
    return np.linspace(-reach, reach, CHECK_POINTS)


def surface_arbitrage(market: Market, underlyings=None) -> tuple[ArbitrageWarning, ...]:
    """Butterfly (g(k) < 0) and calendar (w(k, T) falling in T) failures of the live slices of
    ``underlyings`` (default all), each naming the expiry and the k range; nothing is changed."""
    out = []
    for und in underlyings or market.underlyings:
        live = [s for s in market.underlying(und).smile if market.expiry_years(s.expiry) > 0]
        for s in live:
            k = _butterfly_grid(market, und, s)
            if len(k) < 3:
                continue
            if s.svi is not None:
                w, w1, w2 = svi_derivatives(s.svi.as_array(), k)
            else:
                w = slice_total_variance(market, und, s, k)
                w1, w2 = numeric_derivatives(k, w)
                k, w, w1, w2 = (a[2:-2] for a in (k, w, w1, w2))  # one-sided differences at the ends
            found = butterfly_check(und, s.expiry, k, w, w1, w2)
            if found:
                out.append(found)
        for near, far in zip(live, live[1:], strict=False):
            spread = math.sqrt(max(_atm_total_variance(market, und, far), 1e-12))
            k = np.linspace(-1.0, 1.0, CHECK_POINTS) * float(np.clip(3.0 * spread, 0.1, 1.5))
            found = calendar_check(und, near.expiry, far.expiry, k, slice_total_variance(market, und, near, k),
                                   slice_total_variance(market, und, far, k))
            if found:
                out.append(found)
    return tuple(out)


def convert_slice(market: Market, underlying: str, s: SmileSlice, form: str, strikes: int = 9) -> SmileSlice:
    """The slice ``s`` re-expressed in another smile ``form``, fitted to its own current vols
    (forward and rate kept): SVI by :func:`engine.smile.fit_svi` on 41 points over ±3 ATM
    standard deviations, weighted by exp(−k²/2σ²T) like vega; strike points sampled at ``strikes``
    strikes over ±2 deviations; quadratic by least squares in x = k/√T over ±2 deviations.  Raises MarketError for an
    unknown form or an expired slice."""
    if form not in FORMS:
        raise MarketError(f"form: {form!r} is not one of {', '.join(FORMS)}")
    t = market.expiry_years(s.expiry)
    if t <= 0:
        raise MarketError(f"{underlying} {s.expiry}: expired at the valuation time, nothing to convert")
    if form == s.form:
        return s
    spread = math.sqrt(max(_atm_total_variance(market, underlying, s), 1e-8))
    F = float(market.forward(underlying, t))
    # the expiry's own forward, rate and feed confidences stay
    keep = SmileSlice(s.expiry, forward=s.forward, rate=s.rate, forward_confidence=s.forward_confidence,
                      rate_confidence=s.rate_confidence, vol_confidence=s.vol_confidence)
    if form == SVI_FORM:
        k = np.linspace(-3.0, 3.0, 41) * spread
        vols = np.sqrt(slice_total_variance(market, underlying, s, k) / max(t, MIN_SMILE_T))
        vega_like = np.exp(-0.5 * (k / spread) ** 2)  # the fit matters most where options have vega
        return replace(keep, svi=fit_svi(F * np.exp(k), vols, F, t, vega_like).params)
    k = np.linspace(-2.0, 2.0, strikes if form == POINTS else 41) * spread
    vols = np.sqrt(slice_total_variance(market, underlying, s, k) / max(t, MIN_SMILE_T))
    if form == POINTS:
        return replace(keep, points=tuple((float(F * math.exp(x)), float(v)) for x, v in zip(k, vols, strict=True)))
    x = k / math.sqrt(max(t, MIN_SMILE_T))
    c, b, a = np.polyfit(x, vols, 2)
    return replace(keep, atm_vol=float(max(a, VOL_FLOOR)), skew=float(b), curvature=float(c))
