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
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Iterable

import pandas as pd

from .instruments import Instrument, InstrumentError, parse_instrument

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

    def with_positions(self, positions: Iterable[Position]) -> "Book":
        return Book(tuple(positions), self.name)

    def without(self, index: int) -> "Book":
        return self.with_positions(p for i, p in enumerate(self.positions) if i != index)

    def plus(self, *positions: Position) -> "Book":
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


def _number(value, row: int, name: str, errors: list[RowError], required: bool):
    if value is None or (isinstance(value, str) and not value.strip()) or (
            isinstance(value, float) and math.isnan(value)):
        if required:
            errors.append(RowError(row, name, "missing value"))
        return None
    try:
        x = float(str(value).strip().replace("_", "")) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        errors.append(RowError(row, name, f"{value!r} is not a number"))
        return None
    if not math.isfinite(x):
        errors.append(RowError(row, name, f"{value!r} is not a finite number"))
        return None
    return x


def validate_record(record: dict, row: int, market=None, errors: list[RowError] | None = None):
    """Turn one raw record into a :class:`Position`, or ``None`` with its errors appended.

    With a ``market``, the underlying must have market data and an option or future must not
    have expired before the valuation time.
    """
    errors = [] if errors is None else errors
    before = len(errors)
    raw_name = record.get("instrument")
    inst = None
    if raw_name is None or not str(raw_name).strip():
        errors.append(RowError(row, "instrument", "missing instrument name"))
    else:
        try:
            inst = parse_instrument(str(raw_name))
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
    if len(errors) > before:
        return None
    return Position(inst, qty, entry)


def positions_from_records(records: Iterable[dict], market=None, name: str = "",
                           first_row: int = 1) -> PositionsImport:
    errors: list[RowError] = []
    positions = []
    for row, record in enumerate(records, start=first_row):
        if not isinstance(record, dict):
            errors.append(RowError(row, "row", "expected an object with instrument and quantity"))
            continue
        pos = validate_record(record, row, market, errors)
        if pos is not None:
            positions.append(pos)
    return PositionsImport(Book(tuple(positions), name), errors)


def _read_text(source) -> tuple[str, str]:
    """(text, name) from a path, file-like or bytes; raises ValueError with a clear reason."""
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
    if fmt == "json":
        return _parse_positions_json(text, market, name)
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        return PositionsImport(Book(name=name), [RowError(0, "file", "empty file: expected a header "
                                                          "instrument,quantity[,entry_price]")])
    except csv.Error as e:
        return PositionsImport(Book(name=name), [RowError(0, "file", f"not readable as CSV: {e}")])
    cols = [h.strip().lower() for h in header]
    missing = [c for c in ("instrument", "quantity") if c not in cols]
    if missing:
        return PositionsImport(Book(name=name), [RowError(
            0, "header", f"missing column(s) {', '.join(missing)}: expected "
                         f"instrument,quantity[,entry_price], got {','.join(header)}")])
    records, errors = [], []
    try:
        for row, values in enumerate(reader, start=1):
            if row > MAX_ROWS:
                errors.append(RowError(0, "file", f"more than {MAX_ROWS} rows: the rest was not read"))
                break
            if not any(v.strip() for v in values):
                records.append(None)  # blank line: skipped, but keeps row numbers aligned
                continue
            if len(values) > len(cols):
                errors.append(RowError(row, "row", f"{len(values)} fields for {len(cols)} columns"))
                records.append(None)
                continue
            records.append(dict(zip(cols, values)))
    except csv.Error as e:
        errors.append(RowError(len(records) + 1, "row", f"not readable as CSV: {e}"))
    positions = []
    for row, rec in enumerate(records, start=1):
        if rec is None:
            continue
        pos = validate_record(rec, row, market, errors)
        if pos is not None:
            positions.append(pos)
    if not positions and not errors:
        errors.append(RowError(0, "file", "the file has no positions (only a header)"))
    errors.sort(key=lambda e: e.row)
    return PositionsImport(Book(tuple(positions), name), errors, _ignored_columns(cols))


def _parse_positions_json(text: str, market, name: str) -> PositionsImport:
    """A JSON list of position records, or ``{"positions": [...]}``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        return PositionsImport(Book(name=name), [RowError(0, "file", f"malformed JSON: {e}")])
    if isinstance(data, dict):
        data = data.get("positions")
    if not isinstance(data, list):
        return PositionsImport(Book(name=name), [RowError(
            0, "file", "JSON must be a list of positions or {\"positions\": [...]}")])
    if len(data) > MAX_ROWS:
        return PositionsImport(Book(name=name), [RowError(0, "file", f"more than {MAX_ROWS} rows")])
    if not data:
        return PositionsImport(Book(name=name), [RowError(0, "file", "the file has no positions")])
    result = positions_from_records(data, market, name)
    keys = [k for rec in data if isinstance(rec, dict) for k in rec]
    return PositionsImport(result.book, result.errors, _ignored_columns(keys))


#: The columns a positions file is read for; any other is reported as ignored.
POSITION_COLUMNS = ("instrument", "quantity", "entry_price")


def _ignored_columns(columns) -> list[str]:
    extra = [c for c in dict.fromkeys(columns) if c not in POSITION_COLUMNS]
    if not extra:
        return []
    return [f"column(s) {', '.join(repr(c) for c in extra)} ignored: only {', '.join(POSITION_COLUMNS)} are read "
            "(quantities are signed: + long, − short)"]


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
