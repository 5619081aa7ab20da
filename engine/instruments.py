"""Instruments and Deribit-style names (docs/methodology.md §2).

=====================  ==========================  =========================================
kind                   name                        parsed
=====================  ==========================  =========================================
option                 ``BTC-27DEC24-60000-C``     BTC, expiry 2024-12-27 08:00 UTC, K 60000, call
option, decimal strike ``XRP-27DEC24-0d625-C``     ``d`` is the decimal point: K 0.625
dated future           ``BTC-27DEC24``
perpetual              ``BTC-PERPETUAL``
spot                   ``BTC`` or ``BTC-USD``
=====================  ==========================  =========================================

Names are case-insensitive on input and canonical upper-case on output (Deribit's own form: no
leading zero in the day, ``d`` as decimal point in strikes).  Contracts are USD-linear by default,
one contract = ``multiplier`` units of the underlying; the settlement currency is an explicit
attribute so that coin-margined books can be added without touching the formulas.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from numbers import Real

from .limits import MAX_MULTIPLIER, MAX_NAME_CHARS, MAX_PRICE, MIN_MAGNITUDE

OPTION, FUTURE, PERPETUAL, SPOT = "option", "future", "perpetual", "spot"
KINDS = (OPTION, FUTURE, PERPETUAL, SPOT)

#: Deribit expiries settle at 08:00 UTC.
EXPIRY_TIME = time(8, 0, tzinfo=UTC)

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_UNDERLYING = r"[A-Z][A-Z0-9]{0,9}"
_DATE = r"(\d{1,2})([A-Z]{3})(\d{2})"
_STRIKE = r"(\d+(?:[D.]\d+)?)"
# ASCII only: ``\d`` would otherwise match other scripts' digits, which int() accepts.
_OPTION_RE = re.compile(rf"^({_UNDERLYING})-{_DATE}-{_STRIKE}-([CP])$", re.ASCII)
_FUTURE_RE = re.compile(rf"^({_UNDERLYING})-{_DATE}$", re.ASCII)
_PERP_RE = re.compile(rf"^({_UNDERLYING})-PERPETUAL$", re.ASCII)
_SPOT_RE = re.compile(rf"^({_UNDERLYING})(?:-(USD|USDC|USDT))?$", re.ASCII)
#: Strikes are written with at most this many decimals (format_strike), so names round-trip.
STRIKE_DECIMALS = 10

EXPECTED = (
    "expected UNDERLYING-DMMMYY-STRIKE-C|P (e.g. BTC-27DEC24-60000-C, decimal strike 0d625), "
    "UNDERLYING-DMMMYY (future), UNDERLYING-PERPETUAL or UNDERLYING / UNDERLYING-USD (spot)"
)


class InstrumentError(ValueError):
    """A name that is not a valid instrument; the message names the text and the expected form."""


@dataclass(frozen=True)
class Instrument:
    """One listed instrument.

    ``expiry`` is the settlement instant (tz-aware UTC, 08:00) for options and futures, ``None``
    otherwise; ``strike`` is in USD per unit of underlying; ``multiplier`` is units of underlying
    per contract; ``settlement`` is the currency P&L is paid in.
    """

    kind: str
    underlying: str
    expiry: datetime | None
    strike: float | None
    is_call: bool | None
    name: str
    multiplier: float = 1.0
    settlement: str = "USD"

    def __hash__(self) -> int:
        # Equal instruments have equal names, and a str caches its hash: books and arrays look
        # instruments up by the thousand per recompute, hashing every field each time cost ~2 ms.
        return hash(self.name)

    def __post_init__(self):
        m = self.multiplier
        if isinstance(m, bool) or not isinstance(m, Real) or not (
                math.isfinite(m) and MIN_MAGNITUDE <= m <= MAX_MULTIPLIER):
            raise InstrumentError(f"{self.name}: multiplier {m!r} must be a number in "
                                  f"[{MIN_MAGNITUDE:g}, {MAX_MULTIPLIER:g}] units of underlying per contract")

    @property
    def expiry_date(self) -> date | None:
        return self.expiry.date() if self.expiry is not None else None

    @property
    def is_option(self) -> bool:
        return self.kind == OPTION

    @property
    def is_linear(self) -> bool:
        """Futures, perpetuals and spot: value moves one-for-one with their reference price."""
        return self.kind != OPTION


def format_expiry(d: date) -> str:
    """``date(2024, 12, 27)`` -> ``'27DEC24'`` (Deribit: no leading zero in the day)."""
    return f"{d.day}{_MONTHS[d.month - 1]}{d.year % 100:02d}"


def format_strike(strike: float) -> str:
    """``60000.0`` -> ``'60000'``, ``0.625`` -> ``'0d625'``."""
    text = f"{strike:.{STRIKE_DECIMALS}f}".rstrip("0").rstrip(".")
    return text.replace(".", "d")


def option_name(underlying: str, expiry: date, strike: float, is_call: bool) -> str:
    return f"{underlying}-{format_expiry(expiry)}-{format_strike(strike)}-{'C' if is_call else 'P'}"


def future_name(underlying: str, expiry: date) -> str:
    return f"{underlying}-{format_expiry(expiry)}"


def _parse_date(text: str, day: str, mon: str, yy: str) -> datetime:
    if mon not in _MONTHS:
        raise InstrumentError(f"{text!r}: unknown month {mon!r} (JAN…DEC); {EXPECTED}")
    try:
        d = date(2000 + int(yy), _MONTHS.index(mon) + 1, int(day))
    except ValueError:
        raise InstrumentError(f"{text!r}: {day}{mon}{yy} is not a calendar date; {EXPECTED}") from None
    return datetime.combine(d, EXPIRY_TIME)


def _clip(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[:width] + "…"


def _strike(text: str, strike_txt: str) -> float:
    """The strike of an option name: positive, ≤ MAX_PRICE, at most STRIKE_DECIMALS decimals."""
    strike = float(strike_txt.replace("D", "."))
    if strike <= 0:
        raise InstrumentError(f"{text!r}: strike must be positive; {EXPECTED}")
    if not MIN_MAGNITUDE <= strike <= MAX_PRICE:
        raise InstrumentError(f"{_clip(repr(text))}: strike {strike:g} is outside "
                              f"[{MIN_MAGNITUDE:g}, {MAX_PRICE:g}] USD; {EXPECTED}")
    _, _, decimals = strike_txt.replace("D", ".").partition(".")
    if len(decimals.rstrip("0")) > STRIKE_DECIMALS:
        raise InstrumentError(f"{text!r}: strike has more than {STRIKE_DECIMALS} decimals; {EXPECTED}")
    return strike


def parse_instrument(name: str, multiplier: float = 1.0) -> Instrument:
    """Parse a Deribit-style instrument name (case-insensitive).

    >>> i = parse_instrument("btc-5jan25-60000-c")
    >>> i.name, i.kind, i.strike, i.is_call, i.expiry.isoformat()
    ('BTC-5JAN25-60000-C', 'option', 60000.0, True, '2025-01-05T08:00:00+00:00')
    >>> parse_instrument("XRP-27DEC24-0d625-P").strike
    0.625
    >>> parse_instrument("BTC-27DEC24").kind, parse_instrument("ETH-PERPETUAL").kind
    ('future', 'perpetual')
    """
    if not isinstance(name, str):
        raise InstrumentError(f"{_clip(repr(name))}: an instrument name must be text; {EXPECTED}")
    text = name.strip().upper()
    if not text:
        raise InstrumentError(f"empty instrument name; {EXPECTED}")
    if len(text) > MAX_NAME_CHARS:
        raise InstrumentError(f"{_clip(repr(text))}: a name of {len(text)} characters is longer than "
                              f"{MAX_NAME_CHARS}; {EXPECTED}")
    if not text.isascii():
        bad = "".join(dict.fromkeys(c for c in text if not c.isascii()))
        raise InstrumentError(f"{text!r}: non-ASCII character(s) {bad!r} (names use A-Z, 0-9, - and d); {EXPECTED}")
    if m := _OPTION_RE.match(text):
        und, day, mon, yy, strike_txt, cp = m.groups()
        expiry = _parse_date(text, day, mon, yy)
        strike = _strike(text, strike_txt)
        canonical = option_name(und, expiry.date(), strike, cp == "C")
        return Instrument(OPTION, und, expiry, strike, cp == "C", canonical, multiplier)
    if m := _PERP_RE.match(text):
        return Instrument(PERPETUAL, m.group(1), None, None, None, text, multiplier)
    if m := _FUTURE_RE.match(text):
        und, day, mon, yy = m.groups()
        expiry = _parse_date(text, day, mon, yy)
        return Instrument(FUTURE, und, expiry, None, None, future_name(und, expiry.date()), multiplier)
    if m := _SPOT_RE.match(text):
        return Instrument(SPOT, m.group(1), None, None, None, text, multiplier)
    raise InstrumentError(f"{text!r} is not a valid instrument name; {EXPECTED}")
