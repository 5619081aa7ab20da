"""Positions and books; CSV/JSON import and export with per-row validation (docs/methodology.md §11).

Positions CSV: header ``instrument,quantity[,entry_price]``, one position a row.  Quantities are
signed contracts (+ long, − short, fractions allowed); ``entry_price`` is USD per contract (the
premium paid/received for an option, the traded price for a future, perp or spot holding).
JSON: a list of objects with the same keys, or ``{"positions": [...]}``.

Import never raises on bad rows: :func:`read_positions` keeps every good row and reports each bad
one as a :class:`RowError` naming the 1-based data row (the header is not counted), the field and
the reason.  Only a file that cannot be read at all yields an error with ``row == 0``.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from numbers import Real
from pathlib import Path

import numpy as np
import pandas as pd

from .instruments import Instrument, InstrumentError, parse_instrument
from .limits import MAX_NUMBER_CHARS, MAX_PRICE, MAX_QUANTITY, MIN_MAGNITUDE

#: Refuse uploads larger than this (bytes) or with more rows: a browser upload is held in memory.
MAX_BYTES = 5_000_000
MAX_ROWS = 50_000
COLUMNS = ("instrument", "quantity", "entry_price")


@dataclass(frozen=True)
class Position:
    instrument: Instrument
    quantity: float
    entry_price: float | None = None

    @property
    def name(self) -> str:
        return self.instrument.name


@dataclass(frozen=True)
class Book:
    """An ordered, immutable set of positions (duplicates of an instrument are allowed)."""

    positions: tuple[Position, ...] = ()
    name: str = ""

    def __len__(self) -> int:
        return len(self.positions)

    def __iter__(self):
        return iter(self.positions)

    @cached_property
    def instruments(self) -> tuple[Instrument, ...]:
        """Distinct instruments in first-seen order."""
        return tuple(dict.fromkeys(p.instrument for p in self.positions))

    @cached_property
    def instrument_index(self) -> np.ndarray:
        """Per position, the index of its instrument in :attr:`instruments` (read-only)."""
        index = {inst: k for k, inst in enumerate(self.instruments)}
        out = np.fromiter((index[p.instrument] for p in self.positions), dtype=int, count=len(self.positions))
        out.flags.writeable = False
        return out

    @property
    def underlyings(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(i.underlying for i in self.instruments))

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {"instrument": [p.name for p in self.positions],
             "quantity": [p.quantity for p in self.positions],
             "entry_price": [p.entry_price for p in self.positions]},
            columns=list(COLUMNS),
        ).astype({"quantity": float, "entry_price": float})

    def to_records(self) -> list[dict]:
        return [{"instrument": p.name, "quantity": p.quantity, "entry_price": p.entry_price}
                for p in self.positions]

    def with_positions(self, positions: Iterable[Position]) -> Book:
        return Book(tuple(positions), self.name)

    def without(self, index: int) -> Book:
        return self.with_positions(p for i, p in enumerate(self.positions) if i != index)

    def plus(self, *positions: Position) -> Book:
        return self.with_positions(self.positions + tuple(positions))


@dataclass(frozen=True)
class RowError:
    """One rejected row: ``row`` is the 1-based data row (0 = the file as a whole)."""

    row: int
    field: str
    message: str

    def __str__(self) -> str:
        where = "file" if self.row == 0 else f"row {self.row}"
        return f"{where}, {self.field}: {self.message}"


@dataclass(frozen=True)
class PositionsImport:
    book: Book
    errors: list[RowError] = field(default_factory=list)
    #: What was read but not used (e.g. an unknown column), for the user to know.
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


#: A decimal number as written in a file: ASCII digits, optional sign, point, exponent and single
#: underscores between digits (``1_000``; ``1__0`` is refused, as Python's own literals do).
_NUMBER_RE = re.compile(r"[+-]?(?:\d(?:_?\d)*(?:\.(?:\d(?:_?\d)*)?)?|\.\d(?:_?\d)*)(?:[eE][+-]?\d(?:_?\d)*)?",
                        re.ASCII)
_BOUNDS = {"quantity": MAX_QUANTITY, "entry_price": MAX_PRICE}


class _Record(dict):
    """A JSON object that remembers the keys it was given more than once."""

    duplicate_keys: tuple[str, ...] = ()


def _json_object(pairs) -> _Record:
    record = _Record(pairs)
    if len(record) < len(pairs):
        keys = [k for k, _ in pairs]
        record.duplicate_keys = tuple(dict.fromkeys(k for k in keys if keys.count(k) > 1))
    return record


def _json_int(text: str):
    # Beyond float range an integer is refused per field (as inf), not by the whole file.
    return int(text) if len(text) <= 30 else float(text)


def _show(value) -> str:
    """A short repr for messages (a megabyte of text or a 4,000-digit integer stays short)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10 ** 30:
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "…"


def _parse_number(value) -> float:
    """``value`` as a float, or ValueError with the reason (text, booleans and odd types)."""
    if isinstance(value, bool) or not isinstance(value, (str, Real)):
        raise ValueError(f"{_show(value)} is not a number")
    if isinstance(value, str):
        text = value.strip()
        if len(text) > MAX_NUMBER_CHARS or not _NUMBER_RE.fullmatch(text):
            hint = " (underscores only between digits)" if "_" in text else ""
            raise ValueError(f"{_show(value)} is not a number{hint}")
        return float(text)
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _number(value, row: int, name: str, errors: list[RowError], required: bool):
    """A finite number within ±bound (``_BOUNDS``), non-zero ones ≥ MIN_MAGNITUDE; else an error."""
    if value is None or (isinstance(value, str) and not value.strip()) or (
            isinstance(value, float) and math.isnan(value)):
        if required:
            errors.append(RowError(row, name, "missing value"))
        return None
    try:
        x = _parse_number(value)
    except ValueError as e:
        errors.append(RowError(row, name, str(e)))
        return None
    bound = _BOUNDS[name]
    if not math.isfinite(x) or abs(x) > bound:
        errors.append(RowError(row, name, f"{_show(value)} is not a finite number within ±{bound:g}"))
        return None
    if x != 0 and abs(x) < MIN_MAGNITUDE:
        errors.append(RowError(row, name, f"{_show(value)} is below {MIN_MAGNITUDE:g} in magnitude: "
                                          "a typo or a denormal, not a size"))
        return None
    return x


def validate_record(record: dict, row: int, market=None, errors: list[RowError] | None = None):
    """Turn one raw record into a :class:`Position`, or ``None`` with its errors appended.

    With a ``market``, the underlying must have market data and an option or future must not
    have expired before the valuation time.
    """
    errors = [] if errors is None else errors
    before = len(errors)
    for key in getattr(record, "duplicate_keys", ()):
        errors.append(RowError(row, str(key), f"{key!r} given more than once in this row"))
    raw_name = record.get("instrument")
    inst = None
    if raw_name is None or (isinstance(raw_name, str) and not raw_name.strip()):
        errors.append(RowError(row, "instrument", "missing instrument name"))
    else:
        try:
            inst = parse_instrument(raw_name)
        except InstrumentError as e:
            errors.append(RowError(row, "instrument", str(e)))
    qty = _number(record.get("quantity"), row, "quantity", errors, required=True)
    if qty == 0:
        errors.append(RowError(row, "quantity", "quantity is 0: a position needs a non-zero size"))
    entry = _number(record.get("entry_price"), row, "entry_price", errors, required=False)
    if entry is not None and entry < 0:
        errors.append(RowError(row, "entry_price", f"{entry:g} is negative: prices are ≥ 0 USD"))
    if inst is not None and market is not None:
        if inst.underlying not in market.underlyings:
            known = ", ".join(sorted(market.underlyings))
            errors.append(RowError(row, "instrument",
                                   f"no market data for {inst.underlying} (known: {known})"))
        elif inst.expiry is not None and inst.expiry <= market.valuation_time:
            when = market.valuation_time.strftime("%Y-%m-%d %H:%M UTC")
            errors.append(RowError(row, "instrument",
                                   f"{inst.name} expired {inst.expiry:%Y-%m-%d %H:%M} UTC, "
                                   f"before the valuation time {when}"))
    if len(errors) > before or inst is None or qty is None:
        return None
    return Position(inst, qty, entry)


def positions_from_records(records: Iterable[dict], market=None, name: str = "",
                           first_row: int = 1) -> PositionsImport:
    return _validated(enumerate(records, start=first_row), market, name, [])


def _validated(numbered_records, market, name: str, errors: list[RowError]) -> PositionsImport:
    """Validate (row, record) pairs into a book; ``errors`` already holds the reader's own."""
    positions = []
    for row, record in numbered_records:
        if not isinstance(record, dict):
            errors.append(RowError(row, "row", "expected an object with instrument and quantity"))
            continue
        pos = validate_record(record, row, market, errors)
        if pos is not None:
            positions.append(pos)
    errors.sort(key=lambda e: e.row)
    return PositionsImport(Book(tuple(positions), name), errors)


#: The columns a positions file is read for; any other is reported as ignored.
POSITION_COLUMNS = ("instrument", "quantity", "entry_price")


def _ignored_columns(columns) -> list[str]:
    extra = [c for c in dict.fromkeys(columns) if c not in POSITION_COLUMNS]
    if not extra:
        return []
    return [f"column(s) {', '.join(repr(c) for c in extra)} ignored: only {', '.join(POSITION_COLUMNS)} are read "
            "(quantities are signed: + long, − short)"]


def _read_text(source) -> tuple[str, str]:
    """(text, name) from a path, file-like or bytes; raises ValueError with a clear reason."""
    data: bytes | str
    if isinstance(source, (bytes, bytearray)):
        data, name = bytes(source), ""
    elif hasattr(source, "read"):
        data, name = source.read(MAX_BYTES + 1), getattr(source, "name", "")
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.stat().st_size > MAX_BYTES:
            raise ValueError(f"file is larger than {MAX_BYTES / 1e6:g} MB")
        data, name = path.read_bytes(), path.name
    else:
        raise ValueError(f"cannot read positions from {type(source).__name__}")
    if len(data) > MAX_BYTES:
        raise ValueError(f"file is larger than {MAX_BYTES / 1e6:g} MB")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValueError("file is not UTF-8 text (is it a spreadsheet? save it as CSV)") from None
    return data, str(name)


def parse_positions_text(text: str, market=None, name: str = "", fmt: str | None = None) -> PositionsImport:
    """Parse CSV or JSON text (``fmt`` 'csv'/'json', or guessed from the first character)."""
    stripped = text.lstrip()
    fmt = fmt or ("json" if stripped[:1] in "[{" and stripped else "csv")
    try:
        records, errors = _json_records(text) if fmt == "json" else _csv_records(text)
    except _FileError as e:
        return PositionsImport(Book(name=name), [e.error])
    result = _validated(records, market, name, errors)
    if not result.book.positions and not result.errors:  # a file must bring positions; a book may be empty
        result.errors.append(RowError(0, "file", "the file has no positions (only a header)"))
    keys = [k for _, record in records if isinstance(record, dict) for k in record]
    result.warnings.extend(_ignored_columns(keys))
    return result


class _FileError(Exception):
    """The file as a whole cannot be read (row 0)."""

    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.error = RowError(0, field_name, message)


def _json_records(text: str) -> tuple[list[tuple[int, object]], list[RowError]]:
    try:
        data = json.loads(text, object_pairs_hook=_json_object, parse_int=_json_int)
    except ValueError as e:  # JSONDecodeError, or a number json itself refuses
        raise _FileError("file", f"malformed JSON: {e}") from None
    except RecursionError:
        raise _FileError("file", "JSON nested too deeply") from None
    if isinstance(data, dict):
        data = data.get("positions")
    if not isinstance(data, list):
        raise _FileError("file", "JSON must be a list of positions or {\"positions\": [...]}")
    if len(data) > MAX_ROWS:
        raise _FileError("file", f"more than {MAX_ROWS} rows")
    return list(enumerate(data, start=1)), []


def _csv_records(text: str) -> tuple[list[tuple[int, dict]], list[RowError]]:
    """(row, record) pairs; blank and malformed lines are skipped but keep the numbering."""
    # newline="": the csv module sees the file's own line ends, so CR-only (old Mac) files read too.
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise _FileError("file", "empty file: expected a header instrument,quantity[,entry_price]") from None
    except csv.Error as e:
        raise _FileError("file", f"not readable as CSV: {e}") from None
    cols = [h.strip().lower() for h in header]
    twice = sorted({c for c in cols if c and cols.count(c) > 1})
    if twice:
        raise _FileError("header", f"column(s) {', '.join(twice)} given more than once: each column once, "
                                   f"got {','.join(header)}")
    missing = [c for c in ("instrument", "quantity") if c not in cols]
    if missing:
        raise _FileError("header", f"missing column(s) {', '.join(missing)}: expected "
                                   f"instrument,quantity[,entry_price], got {','.join(header)}")
    records: list[tuple[int, dict]] = []
    errors: list[RowError] = []
    for row in range(1, MAX_ROWS + 2):
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as e:  # e.g. a field over the csv module's size limit: this row only
            errors.append(RowError(row, "row", f"not readable as CSV: {e}"))
            continue
        if row > MAX_ROWS:
            errors.append(RowError(0, "file", f"more than {MAX_ROWS} rows: the rest was not read"))
        elif not any(v.strip() for v in values):
            continue  # a blank line is skipped, but keeps the numbering
        elif len(values) > len(cols):
            errors.append(RowError(row, "row", f"{len(values)} fields for {len(cols)} columns"))
        else:
            records.append((row, dict(zip(cols, values, strict=False))))
    return records, errors


def read_positions(source, market=None) -> PositionsImport:
    """Read positions from a CSV/JSON path, file-like object or bytes.

    Returns ``PositionsImport(book, errors)``: the book holds every valid row; ``errors`` lists
    each rejected row as ``RowError(row, field, message)``.  Passing the ``market`` also rejects
    rows whose underlying has no market data or whose expiry is before the valuation time.
    """
    try:
        text, name = _read_text(source)
    except (OSError, ValueError) as e:
        return PositionsImport(Book(), [RowError(0, "file", str(e))])
    fmt = "json" if name.lower().endswith(".json") else ("csv" if name.lower().endswith(".csv") else None)
    return parse_positions_text(text, market, Path(name).stem if name else "", fmt)


def write_positions(book: Book, target=None, fmt: str = "csv") -> str:
    """Export a book as CSV (default) or JSON text; also write it to ``target`` if given."""
    if fmt == "json":
        text = json.dumps({"positions": book.to_records()}, indent=2)
    else:
        text = book.to_frame().to_csv(index=False, float_format="%.10g")
    if target is not None:
        if hasattr(target, "write"):
            target.write(text)
        else:
            Path(target).write_text(text, encoding="utf-8")
    return text
