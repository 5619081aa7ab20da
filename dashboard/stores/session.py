"""Where the dashboard's state lives, how it changes, and the one cached call into the engine.

Per-user state lives in the browser, in three ``dcc.Store`` (``storage_type="session"``: private
to the tab, kept across a reload), all JSON:

* ``BOOK_STORE``: ``{"name": str, "positions": [{"id": "1", "instrument": "BTC-25DEC26-95000-C",
  "quantity": -7.7, "entry_price": 6303.2 or null}, ...], "demo": key of the demo book it was
  loaded from (if so), "edited": true once the user changed it}``.  ``id`` is the grid's stable
  row id (``getRowId``); an id is never reused within a book, so a row keeps its identity while edited.
* ``MARKET_STORE``: the market JSON of docs/methodology.md §11 (``engine.market.market_to_dict``).
* ``SETTINGS_STORE``: ``{"spot_range", "spot_steps", "vol_range", "vol_steps", "horizons_days"}``,
  the fields of ``engine.Settings`` (fractions, counts and days).

Only states the engine accepted are ever written: every transition below ends with a trial
:func:`analysis` and returns ``Outcome(data=None, ...)`` when anything is wrong, so a refused
edit leaves the last good state in the store and every page keeps showing it.  The trial run also
warms the cache for the pages that render next.

The server keeps nothing per user.  :func:`analysis` is memoised in a flask-caching cache keyed by
a content hash of the three stores, so every callback of every page, in every worker when the
cache is shared (Redis or a ``FileSystemCache``), shares one engine run per distinct state;
concurrent requests for a state not yet cached wait for one computation (``memo.SingleFlight``).
"""
from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import io
import logging
import math
import re
from dataclasses import dataclass

import orjson
from flask import has_app_context
from flask_caching import Cache

from engine import Analysis, Book, Market, Settings, analyze
from engine.analysis import SPOT_STEPS_RANGE, VOL_STEPS_RANGE, Revaluation, revalue
from engine.market import MarketError, market_from_dict, market_to_dict
from engine.portfolio import Position, PositionsImport, positions_from_records, read_positions, validate_record
from engine.samples import DEFAULT_BOOK, demo_book, demo_market
from engine.scenarios import InstrumentArrays, instrument_arrays

from .. import guard, memo

log = logging.getLogger(__name__)

#: flask-caching ``Cache`` bound to each app in :func:`init_cache`; it holds engine results keyed
#: by content, nothing that belongs to a user.
_cache = Cache()
#: Concurrent callbacks asking for the same key wait for the one computation already running.
_flight = memo.SingleFlight()


def cache_config() -> dict:
    """The results cache of :func:`dashboard.memo.cache_config`: Redis under ``PMDASH_REDIS_URL``,
    a ``FileSystemCache`` under ``PMDASH_CACHE_DIR``, else in-process and bounded in bytes
    (``PMDASH_CACHE_MAX_MB``)."""
    return memo.cache_config()


def init_cache(server, config: dict | None = None) -> None:
    _cache.init_app(server, config=config or cache_config())


# ----------------------------------------------------------------------------- store formats


def _record(row_id: str, position: Position) -> dict:
    return {"id": row_id, "instrument": position.name, "quantity": position.quantity,
            "entry_price": position.entry_price}


def book_data(book: Book) -> dict:
    """Store value of a whole new book: rows numbered 1…N."""
    return {"name": book.name,
            "positions": [_record(str(k), p) for k, p in enumerate(book.positions, start=1)]}


def book_of(data: dict) -> Book:
    """The engine ``Book`` of a store value, its rows validated again as an upload's are (the
    browser sends the store back and may have changed it); memoised by content, as every
    callback of an edit reads the same book."""
    positions = guard.check_book(data)["positions"]

    def parse() -> Book:
        result = positions_from_records(positions, name=data.get("name", ""))
        if result.errors:
            raise ValueError("; ".join(map(str, result.errors)))
        return result.book

    return memoise("book", [data.get("name", ""), _rows(positions)], parse)


def market_of(data: dict) -> Market:
    return market_from_dict(guard.check_market(data))


def settings_data(settings: Settings) -> dict:
    return {"spot_range": settings.spot_range, "spot_steps": settings.spot_steps,
            "vol_range": settings.vol_range, "vol_steps": settings.vol_steps,
            "horizons_days": list(settings.horizons_days)}


def settings_of(data: dict) -> Settings:
    guard.check_settings(data)
    return Settings(spot_range=data["spot_range"], spot_steps=data["spot_steps"],
                    vol_range=data["vol_range"], vol_steps=data["vol_steps"],
                    horizons_days=tuple(data["horizons_days"]))


def demo_book_data(key: str) -> dict:
    """Store value of a demo book, remembering which one (the Book page's picker shows it)."""
    return dict(book_data(demo_book(key)), demo=key)


def default_stores() -> tuple[dict, dict, dict]:
    """Initial book, market and settings: the demo desk book on the demo market."""
    return demo_book_data(DEFAULT_BOOK), market_to_dict(demo_market()), settings_data(Settings())


# ----------------------------------------------------------------------------- the engine call


def content_hash(payload) -> str:
    """SHA-256 of ``payload`` (JSON-able store values): the key of what it determines."""
    raw = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY)
    return hashlib.sha256(raw).hexdigest()


def _content(book: dict, market: dict, settings: dict) -> list:
    """What an analysis depends on; row ids are left out, they do not change any number.  The
    stores' shapes and sizes are checked first (``guard``): nothing is hashed or computed for a
    tampered one."""
    guard.check_book(book), guard.check_market(market), guard.check_settings(settings)
    return [book.get("name", ""), _rows(book["positions"]), market, settings]


def _rows(positions: list[dict]) -> list:
    """The numbers of the rows, without their ids."""
    return [(p["instrument"], p["quantity"], p["entry_price"]) for p in positions]


def digest(book: dict, market: dict, settings: dict) -> str:
    """Stable content hash of a state (the analysis cache key, after ``analysis:``)."""
    return content_hash(_content(book, market, settings))


def memoise(namespace: str, payload, compute):
    """``compute()`` memoised in the app's cache under a content hash of ``payload`` (JSON-able
    store values), computed once however many requests ask for it at the same time; outside an
    app (scripts, notebooks) it just runs."""
    if not has_app_context():
        return compute()
    return memo.memoised(_cache, f"{namespace}:{content_hash(payload)}", compute, _flight)


def instrument_key(book: Book) -> list[str]:
    """The part of a book that work kept across edits of quantities depends on: its instruments."""
    return [i.name for i in book.instruments]


def instruments_of(book: Book, market: dict) -> InstrumentArrays:
    """``book``'s instruments vectorised against the market store, memoised by the instrument
    names and the market: an edit of quantities or entry prices reuses them (for the analysis
    and every margin model: the dashboard's settings keep the market's smile dynamics)."""
    return memoise("arrays", [instrument_key(book), market],
                   lambda: instrument_arrays(book.instruments, market_of(market)))


def revaluation(book: Book, market: dict, settings: dict) -> Revaluation:
    """The instrument-level half of an analysis (``engine.analysis.revalue``), memoised by the
    instrument names, the market and the settings: an edit of quantities or entry prices only
    aggregates it again."""
    return memoise("revaluation", [instrument_key(book), market, settings],
                   lambda: revalue(book, market_of(market), settings_of(settings),
                                   arrays=instruments_of(book, market)))


def analysis(book: dict, market: dict, settings: dict) -> Analysis:
    """``engine.analyze`` of the three store values, memoised by content."""
    def run() -> Analysis:
        book_obj = book_of(book)
        return analyze(book_obj, market_of(market), settings_of(settings),
                       revaluation=revaluation(book_obj, market, settings))

    return memoise("analysis", _content(book, market, settings), run)


def try_analysis(book: dict, market: dict, settings: dict) -> tuple[Analysis | None, str | None]:
    """(analysis, None), or (None, why) when the engine refuses the state; never raises."""
    try:
        return analysis(book, market, settings), None
    except Exception as exc:  # the UI boundary: report any engine failure, keep the last good state
        log.exception("analysis failed")
        return None, f"{type(exc).__name__}: {exc}"


# ----------------------------------------------------------------------------- transitions


@dataclass(frozen=True)
class Outcome:
    """What a user action did: the new store value (``None``: keep the current one), the
    problems to show (each naming the row or field) and a short note of what was applied."""

    data: dict | None
    problems: tuple[str, ...] = ()
    note: str = ""


def checked(data: dict, book: dict, market: dict, settings: dict, note: str,
            problems: tuple[str, ...] = ()) -> Outcome:
    """Commit ``data`` only if the engine accepts the resulting state."""
    _, error = try_analysis(book, market, settings)
    if error:
        return Outcome(None, problems + (f"the engine refused the change, nothing was applied: {error}",))
    return Outcome(data, problems, note)


def _row_problem(error, instrument: str) -> str:
    where = f"row {error.row}" + (f" ({instrument})" if instrument else "")
    return f"{where}, {error.field}: {error.message}"


def edited_value(change: dict):
    """The new value of a ``cellValueChanged`` entry: dash-ag-grid 35 sends it as ``value``
    although its docs say ``newValue`` (the name older versions used)."""
    return change["value"] if "value" in change else change.get("newValue")


def edit_positions(book: dict, market: dict, settings: dict, changes: list[dict]) -> Outcome:
    """Apply grid cell edits (``cellValueChanged`` entries: rowId, colId, value).

    Each edited row is re-validated against the market (instrument name, underlying with market
    data, not expired; quantity a non-zero number; entry price ≥ 0).  Good edits are applied, bad
    ones are reported naming the row and field and left out.
    """
    market_obj = market_of(market)
    rows = [dict(r) for r in book["positions"]]
    index = {r["id"]: k for k, r in enumerate(rows)}
    problems, applied = [], 0
    for change in changes:
        k = index.get(str(change.get("rowId")))
        field = change.get("colId")
        if k is None or field not in ("instrument", "quantity", "entry_price"):
            continue
        candidate = dict(rows[k], **{field: edited_value(change)})
        errors = []
        position = validate_record(candidate, k + 1, market_obj, errors)
        if position is None:
            problems += [_row_problem(e, rows[k]["instrument"]) for e in errors]
            continue
        rows[k] = _record(rows[k]["id"], position)
        applied += 1
    if not applied:
        return Outcome(None, tuple(problems))
    data = dict(book, positions=rows, edited=True)
    return checked(data, data, market, settings, f"{applied} edit(s) applied", tuple(problems))


def next_row_id(book: dict) -> str:
    return str(1 + max((int(r["id"]) for r in book["positions"]), default=0))


def add_position(book: dict, market: dict, settings: dict, instrument, quantity, entry_price) -> Outcome:
    row = len(book["positions"]) + 1
    errors = []
    position = validate_record({"instrument": instrument, "quantity": quantity, "entry_price": entry_price},
                               row, market_of(market), errors)
    if position is None:
        return Outcome(None, tuple(_row_problem(e, "new position") for e in errors))
    data = dict(book, positions=book["positions"] + [_record(next_row_id(book), position)], edited=True)
    return checked(data, data, market, settings, f"added {position.name} × {position.quantity:g}")


def delete_positions(book: dict, market: dict, settings: dict, row_ids) -> Outcome:
    doomed = {str(i) for i in row_ids or ()}
    kept = [r for r in book["positions"] if r["id"] not in doomed]
    if len(kept) == len(book["positions"]):
        return Outcome(None, ("select the rows to delete first (tick their boxes)",))
    data = dict(book, positions=kept, edited=True)
    return checked(data, data, market, settings, f"deleted {len(book['positions']) - len(kept)} position(s)")


def replace_book(new_book: Book, market: dict, settings: dict, note: str) -> Outcome:
    data = book_data(new_book)
    return checked(data, data, market, settings, note)


def upload_bytes(contents: str | None) -> bytes:
    """The bytes of a ``dcc.Upload`` payload (``data:<mime>;base64,<data>``); ValueError (which
    ``binascii.Error`` is) when ``contents`` is not one."""
    try:
        return base64.b64decode((contents or "").split(",", 1)[1], validate=True)
    except IndexError:
        raise ValueError("not an uploaded file (no base64 payload)") from None


def read_upload(contents: str, filename: str, market: dict) -> PositionsImport:
    """Parse a ``dcc.Upload`` payload (``data:<mime>;base64,<data>``) into a book and row errors.

    JSON is recognised by the file name (``.json``/``.csv``) or else by its first character.
    """
    try:
        raw = upload_bytes(contents)
    except ValueError:
        raw = b""
    upload = io.BytesIO(raw)
    upload.name = filename or ""  # read_positions picks the format from the name
    result = read_positions(upload, market_of(market))
    name = re.sub(r"\.(csv|json|txt)$", "", filename or "", flags=re.IGNORECASE)
    return PositionsImport(Book(result.book.positions, name or "uploaded book"), result.errors, result.warnings)


def upload_is_csv(contents: str, filename: str | None) -> bool:
    """Whether ``read_upload`` reads the payload as CSV (its rows are then lines of the file)."""
    name = (filename or "").lower()
    if name.endswith((".csv", ".json")):
        return name.endswith(".csv")
    try:
        head = base64.b64decode(contents.split(",", 1)[1][:64] + "==", validate=False)
    except (IndexError, ValueError, binascii.Error):
        return True
    return head.decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n")[:1] not in "[{"


def row_place(row: int, csv: bool) -> str:
    """Where an upload error is: ``row 3 (line 4 of the file)`` for a CSV (the header is line 1);
    row 0 is the file as a whole."""
    if not row:
        return "file"
    return f"row {row} (line {row + 1} of the file)" if csv else f"row {row} (entry {row} of the list)"


def edit_market(market: dict, book: dict, settings: dict, table: str, changes: list[dict]) -> Outcome:
    """Apply edits of the market grids; ``table`` is ``"global"``, ``"underlyings"`` or ``"smile"``
    and row ids are those of :func:`market_rows`.  Any invalid value refuses the whole edit with
    the engine's message, which names the field (e.g. ``underlyings.BTC.smile[2].atm_vol``)."""
    candidate = copy.deepcopy(market)
    for change in changes:
        field, value = change.get("colId"), edited_value(change)
        if table == "global":
            candidate[field] = value
        elif table == "underlyings":
            candidate["underlyings"][change["rowId"]][field] = value
        else:
            underlying, k = str(change["rowId"]).rsplit("|", 1)
            candidate["underlyings"][underlying]["smile"][int(k)][field] = value
    try:
        data = market_to_dict(market_from_dict(candidate))
    except MarketError as exc:
        return Outcome(None, (f"{exc} — the market was not changed",))
    already = set(implausible_market(market, market))  # a value already in force is not the edit's fault
    implausible = [p for p in implausible_market(market, data) if p not in already]
    if implausible:
        return Outcome(None, tuple(f"{p} — the market was not changed" for p in implausible))
    return checked(data, book, data, settings, "market updated")


#: Largest values the market editor takes (decimals per annum): what lies beyond is a unit slip
#: (55 typed for 55 %) far more often than a market, and would silently wreck every figure.
MAX_VOL = 5.0
MAX_RATE = 1.0
#: A spot may move at most this factor (up or down) in one edit.
MAX_SPOT_JUMP = 10.0


def _pct(x: float) -> str:
    return f"{x * 100:,.6g} %"


def implausible_market(before: dict, after: dict) -> list[str]:
    """What the engine would accept but no market holds: vols above :data:`MAX_VOL`, carry or
    rate beyond ±:data:`MAX_RATE`, a spot moved more than ×:data:`MAX_SPOT_JUMP`; each names
    its field and reads the value as the percentage it would be."""
    problems = []
    if abs(after["usd_rate"]) > MAX_RATE:
        problems.append(f"USD rate {after['usd_rate']:g} would be {_pct(after['usd_rate'])} a year: rates are "
                        f"decimals (0.05 = 5 %), at most ±{_pct(MAX_RATE)}")
    for name, u in after["underlyings"].items():
        old = before["underlyings"].get(name)
        if abs(u["carry"]) > MAX_RATE:
            problems.append(f"{name} carry {u['carry']:g} would be {_pct(u['carry'])} a year: carry is a decimal "
                            f"(0.05 = 5 %), at most ±{_pct(MAX_RATE)}")
        if old and not 1 / MAX_SPOT_JUMP <= u["spot"] / old["spot"] <= MAX_SPOT_JUMP:
            problems.append(f"{name} spot {u['spot']:,.6g} is more than ×{MAX_SPOT_JUMP:g} away from "
                            f"{old['spot']:,.6g}: "
                            "a typo? Change it in smaller steps if it is real")
        for s in u["smile"]:
            if s["atm_vol"] > MAX_VOL:
                problems.append(f"{name} {s['expiry']} ATM vol {s['atm_vol']:g} would be {_pct(s['atm_vol'])}: vols "
                                f"are decimals (0.55 = 55 %), at most {MAX_VOL:g} ({_pct(MAX_VOL)})")
    return problems


def market_rows(market: dict) -> tuple[list[dict], list[dict], list[dict]]:
    """Rows of the three market grids (global, per underlying, smile), with the row ids
    :func:`edit_market` maps back to the store."""
    global_rows = [{"id": "market", "valuation_time": market["valuation_time"],
                    "usd_rate": market["usd_rate"], "sticky": market["sticky"]}]
    underlyings = [{"id": name, "underlying": name, "spot": u["spot"], "carry": u["carry"]}
                   for name, u in market["underlyings"].items()]
    smile = [dict(s, id=f"{name}|{k}", underlying=name)
             for name, u in market["underlyings"].items() for k, s in enumerate(u["smile"])]
    return global_rows, underlyings, smile


def settings_from_controls(spot_range_pct, spot_steps, vol_range_pts, vol_steps, horizons_text,
                           book: dict, market: dict) -> Outcome:
    """Stress settings from the page controls (spot range in %, vol range in vol points, steps,
    horizons as comma-separated days); a bad value is reported and nothing changes."""
    problems = []

    def whole(value, name, bounds):
        lo, hi = bounds
        if value is None or not float(value).is_integer():
            problems.append(f"{name}: enter a whole number from {lo} to {hi}")
            return 0
        if not lo <= value <= hi:
            problems.append(f"{name}: at {'most' if value > hi else 'least'} {hi if value > hi else lo} "
                            f"(got {value:g})")
        return int(value)

    horizons = []
    for text in re.split(r"[,;\s]+", (horizons_text or "").strip()):
        if not text:
            continue
        try:
            days = float(text)
        except ValueError:
            problems.append(f"horizons: {text!r} is not a number of days")
            continue
        if not math.isfinite(days):
            problems.append(f"horizons: {text!r} is not a number of days")
            continue
        horizons.append(days)
    steps = whole(spot_steps, "spot steps", SPOT_STEPS_RANGE), whole(vol_steps, "vol steps", VOL_STEPS_RANGE)
    if spot_range_pct is None or vol_range_pts is None:
        problems.append("choose the spot and vol ranges")
    if problems:
        return Outcome(None, tuple(problems))
    try:
        settings = Settings(spot_range=spot_range_pct / 100.0, spot_steps=steps[0],
                            vol_range=vol_range_pts / 100.0, vol_steps=steps[1],
                            horizons_days=tuple(sorted(set(horizons))))
    except ValueError as exc:
        return Outcome(None, tuple(str(exc).split("; ")))
    data = settings_data(settings)
    return checked(data, book, market, data, "stress grid updated")
