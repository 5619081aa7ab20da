"""The margin account: USD cash, collateral assets and the denomination (docs/methodology.md §6, §7).

An account holds ``cash`` (USD, may be negative: borrowed) and a list of collateral assets.  Each
asset is valued in the account's cash currency (USD, a stable coin):

    value_c = amount · price_c / stable_price

``price_c`` is the asset's own ``price`` when given, else the spot of its ``underlying`` in the
market.  An asset tied to an ``underlying`` moves with that underlying's spot wherever the book is
repriced (liquidation search, stress): value_c(s) = value_c·(1 + s).  ``risk_cancelling`` assets
also move with spot inside the margin scenarios (Derive PM2: ``value·(shock − 1)`` per scenario);
the others are charged haircuts instead.  Haircuts (fractions of value) and the oracle confidence
contingency are margin charges of the model (engine.margin.risk_based).

Coin-margined accounts (``denomination`` "BTC"/"ETH", Deribit's inverse BTC/ETH books): equity,
IM, MM and P&L are reported in that coin, x_coin = x_USD / S, beside USD.

Account JSON (``account_to_dict`` / ``load_account``)::

    {"cash": 2000000.0, "denomination": "USD",
     "collateral": [{"asset": "BTC", "amount": 2.3, "underlying": "BTC", "im_haircut": 0.05,
                     "mm_haircut": 0.25, "risk_cancelling": false, "confidence": 1.0}]}

An old store (a plain USD number) loads as an account with that cash and no collateral.

Venue feeds (:class:`VenueFeeds`): oracle confidences, the stable-coin price, a separate perp mark
and per-expiry feed values, read from the Market JSON by :func:`feeds_from_market_dict`::

    {"stable_price": 1.0, "stable_confidence": 1.0,
     "underlyings": {"ETH": {"spot": 2000.0, "spot_confidence": 1.0, "perp_mark": 2001.5,
        "perp_confidence": 1.0, "smile": [{"expiry": "2025-02-28", "forward_confidence": 1.0,
        "rate_confidence": 1.0, "vol_confidence": 1.0, "rate": 0.15, ...}]}}}

Defaults: confidences 1, perp mark = spot, stable price 1, slice rate = the market's ``usd_rate``.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

import numpy as np

DENOMINATIONS = ("USD", "BTC", "ETH")


class AccountError(ValueError):
    """Invalid account data; the message names the field (e.g. ``collateral[1].amount``)."""


@dataclass(frozen=True)
class CollateralAsset:
    """One collateral holding: ``amount`` units of ``asset``; ``price`` USD per unit (None: the
    spot of ``underlying``); haircuts and ``confidence`` are fractions in [0, 1]."""

    asset: str
    amount: float
    price: float | None = None
    underlying: str | None = None
    im_haircut: float = 0.0
    mm_haircut: float = 0.0
    risk_cancelling: bool = False
    confidence: float = 1.0


@dataclass(frozen=True)
class Account:
    """USD ``cash`` plus ``collateral``; ``denomination`` the currency results are shown in."""

    cash: float = 0.0
    collateral: tuple[CollateralAsset, ...] = ()
    denomination: str = "USD"

    @property
    def is_coin_margined(self) -> bool:
        return self.denomination != "USD"


# ----------------------------------------------------------------------------- JSON


def _number(value, where: str, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or value is None:
        raise AccountError(f"{where}: {value!r} is not a number")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise AccountError(f"{where}: {value!r} is not a number") from None
    if not math.isfinite(x):
        raise AccountError(f"{where}: must be finite (got {value!r})")
    if (lo is not None and x < lo) or (hi is not None and x > hi):
        raise AccountError(f"{where}: must be in [{lo:g}, {hi if hi is not None else math.inf:g}] (got {x:g})")
    return x


def _collateral(k: int, raw) -> CollateralAsset:
    where = f"collateral[{k}]"
    if not isinstance(raw, Mapping):
        raise AccountError(f"{where}: must be an object with asset and amount")
    known = {"asset", "amount", "price", "underlying", "im_haircut", "mm_haircut", "risk_cancelling", "confidence"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise AccountError(f"{where}: unknown field(s) {', '.join(unknown)}")
    asset = str(raw.get("asset") or "").strip().upper()
    if not asset:
        raise AccountError(f"{where}.asset: missing")
    underlying = raw.get("underlying")
    underlying = str(underlying).strip().upper() if underlying not in (None, "") else None
    price = raw.get("price")
    price = None if price in (None, "") else _number(price, f"{where}.price", lo=0.0)
    if price is None and underlying is None:
        raise AccountError(f"{where}.price: missing (give a price or the underlying that prices {asset})")
    rc = raw.get("risk_cancelling", False)
    if not isinstance(rc, bool):
        raise AccountError(f"{where}.risk_cancelling: must be true or false (got {rc!r})")
    if rc and underlying is None:
        raise AccountError(f"{where}.risk_cancelling: needs the underlying whose spot it moves with")
    return CollateralAsset(
        asset, _number(raw.get("amount"), f"{where}.amount", lo=0.0), price, underlying,
        _number(raw.get("im_haircut", 0.0), f"{where}.im_haircut", 0.0, 1.0),
        _number(raw.get("mm_haircut", 0.0), f"{where}.mm_haircut", 0.0, 1.0),
        rc, _number(raw.get("confidence", 1.0), f"{where}.confidence", 0.0, 1.0))


def account_from_dict(data) -> Account:
    """An :class:`Account` from its JSON structure, or from an old store's plain USD number."""
    if isinstance(data, (int, float)) and not isinstance(data, bool):
        return Account(cash=_number(data, "cash"))
    if not isinstance(data, Mapping):
        raise AccountError(f"account: must be an object with cash and collateral (got {type(data).__name__})")
    unknown = sorted(set(data) - {"cash", "collateral", "denomination"})
    if unknown:
        raise AccountError(f"account: unknown field(s) {', '.join(unknown)}")
    denomination = str(data.get("denomination", "USD")).upper()
    if denomination not in DENOMINATIONS:
        raise AccountError(f"denomination: {denomination!r} is not one of {', '.join(DENOMINATIONS)}")
    raw = data.get("collateral") or []
    if not isinstance(raw, list):
        raise AccountError("collateral: must be a list of assets")
    return Account(_number(data.get("cash", 0.0), "cash"), tuple(_collateral(k, c) for k, c in enumerate(raw)),
                   denomination)


def load_account(source) -> Account:
    """An account from a dict, JSON text, an old store's number, or an :class:`Account`."""
    if isinstance(source, Account):
        return source
    if isinstance(source, str):
        try:
            source = json.loads(source)
        except json.JSONDecodeError as e:
            raise AccountError(f"account JSON is malformed: {e}") from None
    return account_from_dict(source)


def account_to_dict(account: Account) -> dict:
    """JSON-ready dict; :func:`load_account` reads it back."""
    rows = []
    for c in account.collateral:
        row = {"asset": c.asset, "amount": c.amount}
        if c.price is not None:
            row["price"] = c.price
        if c.underlying is not None:
            row["underlying"] = c.underlying
        row.update(im_haircut=c.im_haircut, mm_haircut=c.mm_haircut, risk_cancelling=c.risk_cancelling,
                   confidence=c.confidence)
        rows.append(row)
    return {"cash": account.cash, "denomination": account.denomination, "collateral": rows}


# ----------------------------------------------------------------------------- feeds


@dataclass(frozen=True)
class SliceFeed:
    """Feed values of one expiry: confidences in [0, 1] and the rate (None: the market's)."""

    forward_confidence: float = 1.0
    rate_confidence: float = 1.0
    vol_confidence: float = 1.0
    rate: float | None = None

    @property
    def confidence(self) -> float:
        return min(self.forward_confidence, self.rate_confidence, self.vol_confidence)


@dataclass(frozen=True)
class VenueFeeds:
    """Oracle values a venue margins with beside the market (module docstring).  Keys are
    underlyings; ``slices`` maps (underlying, expiry date) to its :class:`SliceFeed`."""

    spot_confidence: Mapping[str, float] = field(default_factory=dict)
    perp_mark: Mapping[str, float] = field(default_factory=dict)
    perp_confidence: Mapping[str, float] = field(default_factory=dict)
    stable_price: float = 1.0
    stable_confidence: float = 1.0
    slices: Mapping[tuple[str, date], SliceFeed] = field(default_factory=dict)

    def spot_conf(self, underlying: str) -> float:
        return self.spot_confidence.get(underlying, 1.0)

    def perp_conf(self, underlying: str) -> float:
        return self.perp_confidence.get(underlying, 1.0)

    def slice(self, underlying: str, expiry: date | None) -> SliceFeed:
        return self.slices.get((underlying, expiry), SliceFeed()) if expiry is not None else SliceFeed()


NO_FEEDS = VenueFeeds()


def feeds_from_market_dict(data: Mapping) -> VenueFeeds:
    """The venue feed fields of a Market JSON dict (absent fields take their defaults)."""
    if not isinstance(data, Mapping):
        raise AccountError("market JSON must be an object")
    spot_c, marks, perp_c, slices = {}, {}, {}, {}
    for name, u in (data.get("underlyings") or {}).items():
        und = str(name).upper()
        where = f"underlyings.{name}"
        if not isinstance(u, Mapping):
            continue
        if "spot_confidence" in u:
            spot_c[und] = _number(u["spot_confidence"], f"{where}.spot_confidence", 0.0, 1.0)
        if u.get("perp_mark") is not None:
            marks[und] = _number(u["perp_mark"], f"{where}.perp_mark", lo=0.0)
        if "perp_confidence" in u:
            perp_c[und] = _number(u["perp_confidence"], f"{where}.perp_confidence", 0.0, 1.0)
        for i, s in enumerate(u.get("smile") or []):
            if not isinstance(s, Mapping):
                continue
            sw = f"{where}.smile[{i}]"
            try:
                expiry = date.fromisoformat(str(s.get("expiry"))[:10])
            except ValueError:
                raise AccountError(f"{sw}.expiry: {s.get('expiry')!r} is not a date (YYYY-MM-DD)") from None
            conf = {k: _number(s[k], f"{sw}.{k}", 0.0, 1.0)
                    for k in ("forward_confidence", "rate_confidence", "vol_confidence") if k in s}
            rate = _number(s["rate"], f"{sw}.rate") if s.get("rate") is not None else None
            if conf or rate is not None:
                slices[(und, expiry)] = SliceFeed(**conf, rate=rate)
    return VenueFeeds(spot_c, marks, perp_c,
                      _number(data.get("stable_price", 1.0), "stable_price", lo=1e-9),
                      _number(data.get("stable_confidence", 1.0), "stable_confidence", 0.0, 1.0), slices)


# ----------------------------------------------------------------------------- valuation


@dataclass(frozen=True)
class CollateralValues:
    """Per collateral asset (arrays in account order, cash units): ``value``, the index of the
    underlying it moves with (−1: none) and its ``confidence`` floored by the oracle's."""

    value: np.ndarray
    und_index: np.ndarray
    confidence: np.ndarray

    @property
    def total(self) -> float:
        return float(self.value.sum())


def collateral_values(account: Account, underlyings, spots, feeds: VenueFeeds = NO_FEEDS,
                      spot_shock: float = 0.0) -> CollateralValues:
    """Value of each collateral asset with every spot × (1 + ``spot_shock``).

    ``underlyings``/``spots``: the book's underlyings and their spots (USD); an asset priced from
    an underlying outside them raises AccountError naming it.  Confidence: min(asset's, spot
    confidence of its underlying — or, without one, the lowest of the book's underlyings).
    """
    unds = list(underlyings)
    spot = dict(zip(unds, map(float, spots), strict=True))
    n = len(account.collateral)
    value, und_index, conf = np.zeros(n), np.full(n, -1), np.ones(n)
    floor = min((feeds.spot_conf(u) for u in unds), default=1.0)
    for k, c in enumerate(account.collateral):
        if c.underlying is not None and c.underlying not in spot and c.price is None:
            raise AccountError(f"collateral[{k}].underlying: no market data for {c.underlying!r} "
                                   f"(known: {', '.join(unds) or 'none'})")
        tied = c.underlying is not None and c.underlying in spot
        price = c.price if c.price is not None else spot[str(c.underlying)]
        move = (1.0 + spot_shock) if tied else 1.0
        value[k] = c.amount * price * move / feeds.stable_price
        und_index[k] = unds.index(c.underlying) if tied else -1
        conf[k] = min(c.confidence, feeds.spot_conf(str(c.underlying)) if tied else floor)
    return CollateralValues(value, und_index, conf)


__all__ = ["Account", "AccountError", "CollateralAsset", "CollateralValues", "DENOMINATIONS", "NO_FEEDS",
           "SliceFeed", "VenueFeeds", "account_from_dict", "account_to_dict",
           "collateral_values", "feeds_from_market_dict", "load_account"]
