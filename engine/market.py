"""Market snapshot: spots, carry, USD rate and a parametric vol smile per expiry (docs/methodology.md §3).

Forward: F(T) = S·e^{bT} with b the annualised carry of the underlying (``carry`` in JSON).
Smile of one expiry, in standardised moneyness x = ln(K/F)/√T:

    σ(K, T) = max(σ_floor, atm + skew·x + curvature·x²),   σ_floor = 0.01

Between listed expiries the vol is interpolated linearly in total variance σ²T at the option's
x; before the first and after the last expiry the nearest smile is used (flat extrapolation).
Two choices keep short-dated wings finite: x uses T floored at one day and is clipped to
±``WING_CLAMP`` (beyond that the smile is flat), otherwise a quadratic wing would price a deep
out-of-the-money option a few hours from expiry at thousands of vol points.

Under a spot shock the smile is *sticky moneyness* by default (x recomputed on the shocked
forward, so the smile moves with spot); *sticky strike* keeps each strike's vol.

JSON format (docs/methodology.md §11)::

    {"valuation_time": "2026-11-24T08:00:00Z", "usd_rate": 0.0,
     "underlyings": {"BTC": {"spot": 95000.0, "carry": 0.05,
       "smile": [{"expiry": "2026-12-25", "atm_vol": 0.55, "skew": -0.10, "curvature": 0.20}]}}}
"""
from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

from .instruments import EXPIRY_TIME

SECONDS_PER_YEAR = 365.0 * 24 * 3600
VOL_FLOOR = 0.01
WING_CLAMP = 3.0
MIN_SMILE_T = 1.0 / 365.0
STICKY_MONEYNESS, STICKY_STRIKE = "moneyness", "strike"


class MarketError(ValueError):
    """Invalid market data; the message names the field (e.g. ``underlyings.BTC.spot``)."""


@dataclass(frozen=True)
class SmileSlice:
    """Smile parameters of one expiry date (vols as decimals per annum)."""

    expiry: date
    atm_vol: float
    skew: float = 0.0
    curvature: float = 0.0


@dataclass(frozen=True)
class UnderlyingMarket:
    """Spot (USD), annualised carry b (decimal) and the smile slices sorted by expiry."""

    spot: float
    carry: float = 0.0
    smile: tuple[SmileSlice, ...] = ()


@dataclass(frozen=True)
class Market:
    valuation_time: datetime
    underlyings: Mapping[str, UnderlyingMarket]
    usd_rate: float = 0.0
    sticky: str = STICKY_MONEYNESS

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

    def forward(self, underlying: str, T):
        """F(T) = S·e^{bT} in USD; T in years, array-like."""
        u = self.underlying(underlying)
        return u.spot * np.exp(u.carry * np.asarray(T, dtype=float))

    def vol(self, underlying: str, K, T, F=None):
        """Smile vol σ(K, T) (decimal p.a.) for one underlying; F defaults to the forward."""
        K = np.asarray(K, dtype=float)
        T = np.asarray(T, dtype=float)
        F = self.forward(underlying, T) if F is None else np.asarray(F, dtype=float)
        return smile_vol(smile_coefficients(self.underlying(underlying).smile, self, T), K, F, T)

    def with_spot_shock(self, shock) -> Market:
        """Every underlying's spot × (1 + shock) — a fraction, or one per underlying in the order
        of ``underlyings``; carry and smiles stay (the smile then follows ``sticky``)."""
        shocks = np.broadcast_to(np.asarray(shock, dtype=float), (len(self.underlyings),))
        unds = {u: replace(m, spot=m.spot * (1.0 + float(s)))
                for (u, m), s in zip(self.underlyings.items(), shocks, strict=True)}
        return replace(self, underlyings=unds)

    def replace_underlying(self, name: str, **changes) -> Market:
        unds = dict(self.underlyings)
        unds[name] = replace(self.underlying(name), **changes)
        return replace(self, underlyings=unds)


@dataclass(frozen=True)
class SmileCoefficients:
    """Per-option smile data for the vectorised kernel: the two bracketing slices' parameters
    (``lo``/``hi`` rows of atm, skew, curvature), their times and the total-variance weight."""

    lo: np.ndarray  # shape (3, n)
    hi: np.ndarray  # shape (3, n)
    t_lo: np.ndarray
    t_hi: np.ndarray
    weight: np.ndarray  # 0 → lo only, 1 → hi only


def smile_coefficients(slices, market: Market, T) -> SmileCoefficients:
    """Bracketing smile slices for options expiring at ``T`` years (one underlying)."""
    T = np.atleast_1d(np.asarray(T, dtype=float))
    if not slices:
        raise MarketError("no smile: at least one expiry with atm_vol is needed to price options")
    times = np.array([market.expiry_years(s.expiry) for s in slices])
    params = np.array([[s.atm_vol, s.skew, s.curvature] for s in slices]).T  # (3, m)
    hi_idx = np.clip(np.searchsorted(times, T, side="left"), 0, len(times) - 1)
    lo_idx = np.clip(hi_idx - 1, 0, len(times) - 1)
    lo_idx = np.where(times[0] >= T, 0, lo_idx)
    t_lo, t_hi = times[lo_idx], times[hi_idx]
    span = t_hi - t_lo
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = np.where(span > 0, (T - t_lo) / span, 0.0)
    weight = np.clip(weight, 0.0, 1.0)
    return SmileCoefficients(params[:, lo_idx], params[:, hi_idx], t_lo, t_hi, weight)


def _slice_vol(p, x):
    return np.maximum(VOL_FLOOR, p[0] + p[1] * x + p[2] * x * x)


def smile_vol(c: SmileCoefficients, K, F, T):
    """σ(K, T) from bracketing coefficients; broadcasts K, F, T against the option axis."""
    t_eff = np.maximum(T, MIN_SMILE_T)
    x = np.clip(np.log(K / F) / np.sqrt(t_eff), -WING_CLAMP, WING_CLAMP)
    s_lo, s_hi = _slice_vol(c.lo, x), _slice_vol(c.hi, x)
    # Linear in total variance between slices; at the ends weight is 0 or 1 (flat extrapolation).
    interior = (c.t_hi > c.t_lo) & (c.t_lo > 0)
    w_lo = s_lo * s_lo * np.maximum(c.t_lo, MIN_SMILE_T)
    w_hi = s_hi * s_hi * np.maximum(c.t_hi, MIN_SMILE_T)
    t_mid = np.maximum(c.t_lo + c.weight * (c.t_hi - c.t_lo), MIN_SMILE_T)
    var_interp = np.sqrt(np.maximum(w_lo + c.weight * (w_hi - w_lo), 0.0) / t_mid)
    # Beyond an already-expired slice (t_lo ≤ 0) the next live slice holds (flat extrapolation).
    flat = np.where((c.weight >= 1.0) | (c.t_lo <= 0), s_hi, s_lo)
    return np.where(interior, var_interp, flat)


# ----------------------------------------------------------------------------- JSON


def _num(value, where: str, positive=False, nonneg=False) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise MarketError(f"{where}: {value!r} is not a number") from None
    if not math.isfinite(x):
        raise MarketError(f"{where}: must be finite (got {value!r})")
    if positive and x <= 0:
        raise MarketError(f"{where}: must be > 0 (got {x:g})")
    if nonneg and x < 0:
        raise MarketError(f"{where}: must be ≥ 0 (got {x:g})")
    return x


def _parse_time(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise MarketError(f"valuation_time: {text!r} is not an ISO-8601 time") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def market_from_dict(data: Mapping) -> Market:
    """Build a :class:`Market` from the JSON structure; every bad field raises MarketError."""
    if not isinstance(data, Mapping):
        raise MarketError("market JSON must be an object")
    if "valuation_time" not in data:
        raise MarketError("valuation_time: missing")
    unds = {}
    raw_unds = data.get("underlyings") or {}
    if not isinstance(raw_unds, Mapping) or not raw_unds:
        raise MarketError("underlyings: at least one underlying is needed")
    for name, u in raw_unds.items():
        where = f"underlyings.{name}"
        if not isinstance(u, Mapping):
            raise MarketError(f"{where}: must be an object")
        slices = []
        raw_smile = u.get("smile") or []
        if not isinstance(raw_smile, list):
            raise MarketError(f"{where}.smile: must be a list of expiries")
        for i, s in enumerate(raw_smile):
            sw = f"{where}.smile[{i}]"
            if not isinstance(s, Mapping):
                raise MarketError(f"{sw}: must be an object with expiry and atm_vol")
            try:
                expiry = date.fromisoformat(str(s.get("expiry"))[:10])
            except ValueError:
                raise MarketError(f"{sw}.expiry: {s.get('expiry')!r} is not a date (YYYY-MM-DD)") from None
            slices.append(SmileSlice(expiry, _num(s.get("atm_vol"), f"{sw}.atm_vol", positive=True),
                                     _num(s.get("skew", 0.0), f"{sw}.skew"),
                                     _num(s.get("curvature", 0.0), f"{sw}.curvature")))
        slices.sort(key=lambda s: s.expiry)
        dup = {s.expiry for s in slices if sum(t.expiry == s.expiry for t in slices) > 1}
        if dup:
            raise MarketError(f"{where}.smile: expiry {min(dup)} listed twice")
        unds[str(name).upper()] = UnderlyingMarket(
            _num(u.get("spot"), f"{where}.spot", positive=True),
            _num(u.get("carry", 0.0), f"{where}.carry"),
            tuple(slices),
        )
    sticky = data.get("sticky", STICKY_MONEYNESS)
    if sticky not in (STICKY_MONEYNESS, STICKY_STRIKE):
        raise MarketError(f"sticky: {sticky!r} is not 'moneyness' or 'strike'")
    return Market(_parse_time(data["valuation_time"]), unds, _num(data.get("usd_rate", 0.0), "usd_rate"), sticky)


def market_to_dict(market: Market) -> dict:
    t = market.valuation_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "valuation_time": t,
        "usd_rate": market.usd_rate,
        "sticky": market.sticky,
        "underlyings": {
            name: {"spot": u.spot, "carry": u.carry,
                   "smile": [{"expiry": s.expiry.isoformat(), "atm_vol": s.atm_vol,
                              "skew": s.skew, "curvature": s.curvature} for s in u.smile]}
            for name, u in market.underlyings.items()
        },
    }


def load_market(source) -> Market:
    """Load a market from a JSON path, a file-like object, JSON text or an already-parsed dict."""
    if isinstance(source, Mapping):
        return market_from_dict(source)
    if isinstance(source, (str, os.PathLike)) and not str(source).lstrip().startswith("{"):
        text = Path(source).read_text(encoding="utf-8")
    elif isinstance(source, (io.IOBase,)) or hasattr(source, "read"):
        text = source.read()
        text = text.decode("utf-8") if isinstance(text, bytes) else text
    else:
        text = str(source)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise MarketError(f"market JSON is malformed: {e}") from None
    return market_from_dict(data)


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
