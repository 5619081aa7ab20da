"""Deribit API responses → a :class:`~engine.market.Market` and a :class:`~engine.portfolio.Book`.

Inputs are files as saved from the API, with or without the JSON-RPC wrapper
(``{"jsonrpc": "2.0", "id": …, "result": [...]}``), or the rows themselves.  Field meanings
(Deribit API v2 documentation, ``public/get_book_summary_by_currency`` and
``private/get_positions``; docs/market.md §Venue import):

* option rows: ``instrument_name``; ``mark_iv`` (implied vol in **percent**); ``underlying_price``
  (the forward of that expiry: a future's mark or a synthetic ``SYN.`` price — it is what the
  venue's own implied vols are computed on); ``interest_rate`` (used in those vols; taken as a
  decimal per annum, Deribit publishes 0); ``mark_price``, ``bid_price``, ``ask_price`` (in coin for
  inverse BTC/ETH options — USD = price × ``underlying_price``; in USDC for ``_USDC`` linear
  ones); ``estimated_delivery_price`` (the index, used as spot); ``creation_timestamp`` (ms UTC);
* future rows: ``mark_price`` in USD (USDC for linear ``_USDC`` futures); ``-PERPETUAL`` is the perp;
* positions: ``size`` is in coin for options, in **USD** for inverse futures and perpetuals, whose
  coin amount is ``size_currency``; ``direction`` buy/sell gives the sign; ``average_price`` is
  USD for futures, coin for inverse options (``average_price_usd`` is the USD one).

Linear ``XRP_USDC``-style names map to the engine's USD-linear ``XRP`` instruments.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from statistics import median

import numpy as np
import pandas as pd
from scipy.special import ndtr

from ..instruments import FUTURE, OPTION, PERPETUAL, InstrumentError, parse_instrument
from ..market import (
    MAX_VOL,
    MIN_SMILE_T,
    SECONDS_PER_YEAR,
    Market,
    MarketError,
    SmileSlice,
    UnderlyingMarket,
    market_text,
    parse_json,
    surface_arbitrage,
)
from ..portfolio import Book, PositionsImport, RowError, positions_from_records
from ..smile import SmileError, fit_svi

#: Quotes needed to fit SVI to an expiry; with fewer, its marks become strike points.
MIN_SVI_QUOTES = 6
_MAX_TIMESTAMP_MS = 253402300799999.0  # 9999-12-31T23:59:59.999Z
_LINEAR = re.compile(r"^([A-Za-z][A-Za-z0-9]*)_(USDC|USDT)-")


class VenueError(ValueError):
    """A venue file that cannot be used at all (not JSON, an API error, no usable rows)."""


def response_rows(source, what: str = "Deribit response") -> list[dict]:
    """The result rows of a saved API response: a path, text, bytes, file, list or dict, with
    or without the ``jsonrpc``/``result`` wrapper.  An API error object raises VenueError."""
    data = source
    if not isinstance(source, (list, dict)):
        try:
            data = parse_json(market_text(source), what)
        except MarketError as e:
            raise VenueError(str(e)) from None
    if isinstance(data, dict):
        if "error" in data and "result" not in data:
            err = data["error"]
            text = err.get("message", err) if isinstance(err, dict) else err
            raise VenueError(f"{what}: the API answered with an error: {str(text)[:200]}")
        if "result" in data:
            data = data["result"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise VenueError(f"{what}: expected a list of rows (or {{\"result\": [...]}})")
    return data


def _canonical_name(raw) -> str:
    """``XRP_USDC-21SEP26-1d25-C`` → ``XRP-21SEP26-1d25-C`` (USD-linear in the engine)."""
    text = str(raw).strip()
    m = _LINEAR.match(text)
    return f"{m.group(1)}-{text[m.end():]}" if m else text


def _is_linear(raw) -> bool:
    return bool(_LINEAR.match(str(raw).strip()))


def _field(row: dict, key: str, n: int, errors: list, *, required=True, positive=False, nonneg=False):
    value = row.get(key)
    if value is None:
        if required:
            errors.append(RowError(n, key, "missing"))
        return None
    try:
        x = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError, OverflowError):
        x = math.nan
    if not math.isfinite(x) or (positive and x <= 0) or (nonneg and x < 0):
        need = "> 0" if positive else "≥ 0" if nonneg else "a finite number"
        errors.append(RowError(n, key, f"{str(value)[:40]!r} is not a number {need}"))
        return None
    return x


def _black_call(F, K, T, sigma):
    s = sigma * np.sqrt(T)
    d1 = np.log(F / K) / s + 0.5 * s
    return F * ndtr(d1) - K * ndtr(d1 - s)


def implied_vols(price, F, K, T, is_call) -> np.ndarray:
    """Undiscounted Black-76 implied vol (decimal) of USD prices by vectorised bisection on
    [0.001, 10]; NaN where the price is outside the no-arbitrage bounds.

    >>> round(float(implied_vols(7.9656, 100.0, 100.0, 1.0, True)[0]), 4)  # F=K=100, T=1, σ=0.2
    0.2
    """
    price, F, K, T = (np.atleast_1d(np.asarray(a, dtype=float)) for a in (price, F, K, T))
    call = np.where(is_call, price, price + F - K)  # put-call parity, undiscounted
    ok = (call > np.maximum(F - K, 0.0)) & (call < F) & (T > 0)
    lo, hi = np.full(call.shape, 1e-3), np.full(call.shape, 10.0)
    Fs, Ks, Ts = (np.where(ok, a, 1.0) for a in (F, K, T))
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        above = _black_call(Fs, Ks, Ts, mid) > call
        hi, lo = np.where(above, mid, hi), np.where(above, lo, mid)
    return np.where(ok, 0.5 * (lo + hi), np.nan)


@dataclass(frozen=True)
class ExpiryFit:
    """How one expiry's smile was built: ``form`` "svi" (fitted) or "points" (too few quotes);
    fit errors in vol (decimal) against the marks; ``butterfly_free`` of the fitted slice."""

    underlying: str
    expiry: str
    T: float
    forward: float
    quotes: int
    form: str
    rmse_vol: float
    max_error_vol: float
    butterfly_free: bool


@dataclass(frozen=True)
class VenueMarket:
    """An imported snapshot: the market, the quotes it was built from (one row per option:
    underlying, expiry, instrument, strike, option_type, forward, rate, T, mark_iv, bid_iv,
    ask_iv, mark_usd — vols decimal), the fit per expiry, rows skipped (with reasons) and notes
    (including every static-arbitrage warning of the built surface)."""

    market: Market
    quotes: pd.DataFrame
    fits: tuple[ExpiryFit, ...]
    errors: tuple[RowError, ...]
    notes: tuple[str, ...]

    @property
    def fit_table(self) -> pd.DataFrame:
        return pd.DataFrame([f.__dict__ for f in self.fits])


def _timestamp(rows_ts: list[float]) -> datetime:
    if not rows_ts:
        raise VenueError("creation_timestamp: no row has one, the snapshot time is unknown")
    return datetime.fromtimestamp(max(rows_ts) / 1000.0, tz=UTC)


def _option_quotes(rows: list[dict], errors: list) -> tuple[list[dict], list[float], dict[str, list[float]]]:
    quotes: list[dict] = []
    stamps: list[float] = []
    index: dict[str, list[float]] = {}
    for n, row in enumerate(rows, start=1):
        before = len(errors)
        inst = _row_instrument(row, n, errors, (OPTION,), "an option")
        if inst is None:
            continue
        name = row["instrument_name"]
        iv = _field(row, "mark_iv", n, errors, positive=True)
        if iv is not None and iv > 100 * MAX_VOL:
            errors.append(RowError(n, "mark_iv", f"{iv:g} % is not a plausible implied vol (≤ {100 * MAX_VOL:g} %)"))
        fwd = _field(row, "underlying_price", n, errors, positive=True)
        ts = _field(row, "creation_timestamp", n, errors, positive=True)
        if ts is not None and ts > _MAX_TIMESTAMP_MS:
            errors.append(RowError(n, "creation_timestamp", f"{ts:g} ms is beyond the year 9999"))
        rate = _field(row, "interest_rate", n, errors, required=False)
        mark = _field(row, "mark_price", n, errors, required=False, nonneg=True)
        bid = _field(row, "bid_price", n, errors, required=False, nonneg=True)
        ask = _field(row, "ask_price", n, errors, required=False, nonneg=True)
        edp = _field(row, "estimated_delivery_price", n, errors, required=False, positive=True)
        if len(errors) > before:
            continue
        coin = 1.0 if _is_linear(name) else fwd  # inverse options are priced in coin
        stamps.append(ts)
        if edp is not None:
            index.setdefault(inst.underlying, []).append(edp)
        quotes.append({"row": n, "underlying": inst.underlying, "expiry": inst.expiry_date, "instrument": inst.name,
                       "strike": inst.strike, "is_call": inst.is_call, "forward": fwd, "rate": rate or 0.0,
                       "mark_iv": iv / 100.0, "mark_usd": np.nan if mark is None else mark * coin,
                       "bid_usd": np.nan if not bid else bid * coin, "ask_usd": np.nan if not ask else ask * coin,
                       "expiry_ts": inst.expiry.timestamp() if inst.expiry else math.nan})
    return quotes, stamps, index


def _row_instrument(row, n: int, errors: list, kinds: tuple, what: str):
    """The instrument a file row names, or None with its row error (not an object, a name the
    parser refuses, or a name of another kind than ``kinds``)."""
    if not isinstance(row, dict):
        errors.append(RowError(n, "row", "expected an object"))
        return None
    name = row.get("instrument_name")
    try:
        inst = parse_instrument(_canonical_name(name)) if isinstance(name, str) else None
    except InstrumentError as e:
        errors.append(RowError(n, "instrument_name", str(e)))
        return None
    if inst is None or inst.kind not in kinds:
        errors.append(RowError(n, "instrument_name", f"{str(name)[:40]!r} is not {what}"))
        return None
    return inst


def _future_marks(rows: list[dict], errors: list, offset: int):
    futures: dict[str, dict] = {}
    perps: dict[str, float] = {}
    stamps: list[float] = []
    index: dict[str, list[float]] = {}
    for n, row in enumerate(rows, start=offset):
        inst = _row_instrument(row, n, errors, (FUTURE, PERPETUAL), "a future or perpetual")
        if inst is None:
            continue
        before = len(errors)
        mark = _field(row, "mark_price", n, errors, positive=True)
        ts = _field(row, "creation_timestamp", n, errors, required=False, positive=True)
        if ts is not None and ts > _MAX_TIMESTAMP_MS:
            errors.append(RowError(n, "creation_timestamp", f"{ts:g} ms is beyond the year 9999"))
        edp = _field(row, "estimated_delivery_price", n, errors, required=False, positive=True)
        if len(errors) > before:
            continue
        if ts is not None:
            stamps.append(ts)
        if edp is not None:
            index.setdefault(inst.underlying, []).append(edp)
        # The inverse (coin-settled) contract is the reference when a linear twin is listed too.
        target: dict = futures.setdefault(inst.underlying, {}) if inst.kind == FUTURE else perps
        key = inst.expiry_date if inst.kind == FUTURE else inst.underlying
        if key not in target or not _is_linear(row["instrument_name"]):
            target[key] = mark
    return futures, perps, stamps, index


def fit_expiry(underlying: str, expiry, strike, is_call, mark_iv, forward: float, rate: float, T: float,
               notes: list | None = None) -> tuple[SmileSlice, ExpiryFit]:
    """One expiry's smile from its quotes (arrays of strike USD, is_call, mark vol decimal): SVI
    fitted to the out-of-the-money vol per strike (calls at or above the forward, puts below;
    the other side where only it is quoted), or strike points with fewer than
    ``MIN_SVI_QUOTES`` strikes or when the fit fails (noted in ``notes``)."""
    strike, call, iv = (np.asarray(a) for a in (strike, is_call, mark_iv))
    otm = np.where(call, strike >= forward, strike < forward)
    order = np.lexsort((otm, strike))
    strike, iv = strike[order].astype(float), iv[order].astype(float)
    last = np.r_[strike[1:] != strike[:-1], True]
    strikes, vols = strike[last], iv[last]
    if len(strikes) >= MIN_SVI_QUOTES:
        try:
            fit = fit_svi(strikes, vols, forward, T)
            return (SmileSlice(expiry, svi=fit.params, forward=forward, rate=rate),
                    ExpiryFit(underlying, expiry.isoformat(), T, forward, fit.quotes, "svi", fit.rmse_vol,
                              fit.max_error_vol, fit.butterfly_free))
        except SmileError as e:
            if notes is not None:
                notes.append(f"{underlying} {expiry}: SVI fit failed ({e}); using the marks as strike points")
    points = tuple((float(k), float(v)) for k, v in zip(strikes, vols, strict=True))
    return (SmileSlice(expiry, points=points, forward=forward, rate=rate),
            ExpiryFit(underlying, expiry.isoformat(), T, forward, len(points), "points", 0.0, 0.0, True))


def _smile_slice(und: str, expiry, group: list[dict], T: float, notes: list) -> tuple[SmileSlice, ExpiryFit]:
    fwd = float(median(q["forward"] for q in group))
    rate = float(median(q["rate"] for q in group))
    return fit_expiry(und, expiry, [q["strike"] for q in group], [q["is_call"] for q in group],
                      [q["mark_iv"] for q in group], fwd, rate, T, notes)


def split_book_summary(rows: list) -> tuple[list, list]:
    """(option rows, other rows) of a mixed book-summary response, by instrument name."""
    options: list = []
    others: list = []
    for row in rows:
        name = row.get("instrument_name") if isinstance(row, dict) else None
        try:
            is_option = isinstance(name, str) and parse_instrument(_canonical_name(name)).kind == OPTION
        except InstrumentError:
            is_option = False
        (options if is_option else others).append(row)
    return options, others


def market_from_book_summary(options=None, futures=None) -> VenueMarket:
    """A market from saved ``public/get_book_summary_by_currency`` responses (kind=option and/or
    kind=future; any of the forms :func:`response_rows` reads).

    Per underlying: spot = the median ``estimated_delivery_price`` (index); per option expiry:
    forward = median ``underlying_price``, rate = median ``interest_rate``, smile = SVI fitted to
    the out-of-the-money ``mark_iv`` per strike (strike points with fewer than
    ``MIN_SVI_QUOTES`` strikes); futures' marks and the perpetual's mark as given; carry = the
    implied carry of the last forward (the fallback beyond it); valuation time = the latest
    ``creation_timestamp``.  Bad rows are skipped and reported (row numbers count the option
    rows first, then the future rows); expired expiries are dropped with a note.
    """
    errors: list[RowError] = []
    notes: list[str] = []
    opt_rows = response_rows(options, "option book summary") if options is not None else []
    fut_rows = response_rows(futures, "future book summary") if futures is not None else []
    quotes, stamps, index = _option_quotes(opt_rows, errors)
    fut, perps, fut_stamps, fut_index = _future_marks(fut_rows, errors, len(opt_rows) + 1)
    for und, values in fut_index.items():
        index.setdefault(und, []).extend(values)
    names = list(dict.fromkeys([q["underlying"] for q in quotes] + list(fut) + list(perps)))
    if not names:
        raise VenueError("no usable option or future row: " + "; ".join(map(str, errors[:5])))
    when = _timestamp(stamps + fut_stamps)
    groups: dict[str, dict] = {}
    for q in quotes:
        groups.setdefault(q["underlying"], {}).setdefault(q["expiry"], []).append(q)
    probe = Market(when, {})
    fits, unds = [], {}
    for und in names:
        if und not in index:
            raise VenueError(f"{und}: no estimated_delivery_price in any row, the spot (index) is unknown")
        spot = float(median(index[und]))
        slices = []
        for expiry, group in sorted(groups.get(und, {}).items()):
            T = (group[0]["expiry_ts"] - when.timestamp()) / SECONDS_PER_YEAR
            if T <= 0:
                notes.append(f"{und} {expiry}: expired before the snapshot time, skipped")
                continue
            one, fit = _smile_slice(und, expiry, group, max(T, MIN_SMILE_T), notes)
            slices.append(one)
            fits.append(fit)
        marks = {d: p for d, p in fut.get(und, {}).items() if probe.expiry_years(d) > 0}
        nodes = [(s.expiry, s.forward) for s in slices] + list(marks.items())
        carry = 0.0
        if nodes:
            last, f_last = max(nodes)
            carry = math.log(f_last / spot) / max(probe.expiry_years(last), MIN_SMILE_T)
        unds[und] = UnderlyingMarket(spot, carry, tuple(slices), tuple(sorted(marks.items())), perps.get(und))
    market = Market(when, unds)
    notes.extend(str(w) for w in surface_arbitrage(market))
    return VenueMarket(market, _quote_table(pd.DataFrame(quotes), market), tuple(fits), tuple(errors),
                       tuple(notes))


def _quote_table(frame: pd.DataFrame, market: Market) -> pd.DataFrame:
    cols = ["underlying", "expiry", "instrument", "strike", "option_type", "forward", "rate", "T", "mark_iv",
            "bid_iv", "ask_iv", "mark_usd"]
    if not len(frame):
        return pd.DataFrame(columns=cols)
    T = (frame["expiry_ts"].to_numpy(float) - market.valuation_time.timestamp()) / SECONDS_PER_YEAR
    F, K, call = frame["forward"].to_numpy(float), frame["strike"].to_numpy(float), frame["is_call"].to_numpy(bool)
    out = frame.assign(T=T, option_type=np.where(call, "C", "P"),
                       bid_iv=implied_vols(frame["bid_usd"].to_numpy(float), F, K, T, call),
                       ask_iv=implied_vols(frame["ask_usd"].to_numpy(float), F, K, T, call))
    out["expiry"] = out["expiry"].map(lambda d: d.isoformat())
    return out[cols].reset_index(drop=True)


def book_from_positions(source, market: Market | None = None, name: str = "Deribit positions") -> PositionsImport:
    """A book from a saved ``private/get_positions`` response.

    Quantity in units of the underlying: options ``size`` (coin), futures and perpetuals
    ``size_currency`` (coin; their ``size`` is USD for inverse contracts), signed by
    ``direction``.  Entry price (USD per unit): ``average_price_usd`` for options (or
    ``average_price`` of linear USDC options), ``average_price`` for futures.  Flat positions
    (size 0) are left out; other bad rows are reported by row and field, as is a position that
    expired before ``market``'s valuation time or whose underlying it lacks.
    """
    try:
        rows = response_rows(source, "positions response")
    except VenueError as e:
        return PositionsImport(Book((), name), [RowError(0, "file", str(e))])
    records, pre_errors, rows_of = [], [], []
    for n, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            pre_errors.append(RowError(n, "row", "expected an object"))
            continue
        kind = row.get("kind")
        raw_name = row.get("instrument_name")
        if kind not in ("option", "future"):
            pre_errors.append(RowError(n, "kind", f"{str(kind)[:30]!r}: only option and future positions are read"))
            continue
        before = len(pre_errors)
        size_key = "size" if kind == "option" else "size_currency"
        size = _field(row, size_key, n, pre_errors)
        if len(pre_errors) > before or size == 0:
            continue
        direction = row.get("direction")
        sign = -1.0 if direction == "sell" else 1.0 if direction == "buy" else math.copysign(1.0, size)
        entry_key = ("average_price" if _is_linear(raw_name) else "average_price_usd") if kind == "option" \
            else "average_price"
        entry = _field(row, entry_key, n, pre_errors, required=False, nonneg=True)
        if len(pre_errors) > before:
            continue
        records.append({"instrument": _canonical_name(raw_name) if isinstance(raw_name, str) else raw_name,
                        "quantity": sign * abs(size), "entry_price": entry})
        rows_of.append(n)
    result = positions_from_records(records, market, name)
    # positions_from_records numbers its rows 1..len(records): map them back to the file's rows.
    remapped = [RowError(rows_of[e.row - 1] if 0 < e.row <= len(rows_of) else e.row, e.field, e.message)
                for e in result.errors]
    return PositionsImport(result.book, sorted(pre_errors + remapped, key=lambda e: e.row))
