"""Positions import/export with per-row validation (engine/portfolio.py, docs/methodology.md §11).

Row numbers are 1-based data rows (the header is row 0 of nothing: it is not counted), counted by
hand in each fixture below; a file that cannot be read at all is reported as row 0.
"""
import io
import json

import pytest

from engine.instruments import parse_instrument
from engine.portfolio import MAX_BYTES, Book, Position, read_positions, write_positions


def book_of(*rows):
    return Book(tuple(Position(parse_instrument(n), q, e) for n, q, e in rows), "b")


SAMPLE = book_of(
    ("BTC-25DEC26-95000-C", -7.5, 6303.2),
    ("XRP-27DEC24-0d625-P", 1000.0, 0.05),
    ("ETH-26MAR27", 2.0, 3450.5),
    ("BTC-PERPETUAL", -0.1, None),
    ("BTC", 0.003, 92000.0),
    ("BTC-25DEC26-95000-C", 2.0, None),   # duplicates of an instrument are kept as they are
)


def as_tuples(book):
    return [(p.name, p.quantity, p.entry_price) for p in book]


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_import_round_trip(fmt, tmp_path):
    text = write_positions(SAMPLE, fmt=fmt)
    again = read_positions(text.encode())
    assert again.ok and as_tuples(again.book) == as_tuples(SAMPLE)
    path = tmp_path / f"book.{fmt}"
    write_positions(SAMPLE, path, fmt=fmt)
    from_path = read_positions(path)
    assert from_path.ok and as_tuples(from_path.book) == as_tuples(SAMPLE)
    assert from_path.book.name == "book"
    buf = io.StringIO()
    write_positions(SAMPLE, buf, fmt=fmt)
    assert buf.getvalue() == text


def test_csv_export_format():
    """Header instrument,quantity,entry_price; canonical names; empty entry_price when absent."""
    lines = write_positions(book_of(("btc-5jan27-60000-c", -2.5, 1234.5), ("BTC-PERPETUAL", 1, None))).splitlines()
    assert lines == ["instrument,quantity,entry_price", "BTC-5JAN27-60000-C,-2.5,1234.5", "BTC-PERPETUAL,1,"]


def test_json_accepts_list_or_object():
    rows = [{"instrument": "btc-perpetual", "quantity": 2}, {"instrument": "ETH", "quantity": "0.5",
                                                             "entry_price": 3000}]
    for payload in (rows, {"positions": rows}):
        r = read_positions(json.dumps(payload).encode())
        assert r.ok
        assert as_tuples(r.book) == [("BTC-PERPETUAL", 2.0, None), ("ETH", 0.5, 3000.0)]


BAD_CSV = """instrument,quantity,entry_price
BTC-25DEC26-95000-C,-10,4800
FOO-BAR-BAZ,1,
BTC-PERPETUAL,ten,
BTC-PERPETUAL,0,95000

ETH-26MAR27,2,-5
BTC-20NOV26-90000-C,1,
SOL-PERPETUAL,3,
BTC,1,92000,extra
eth-perpetual,-2.5,3400
BTC-25DEC26-80000-P
BTC-31FEB27-80000-P,1,
,1,
BTC-PERPETUAL,inf,
"""
# Data rows counted by hand (row 5 is the blank line: skipped, but it keeps the numbering):
BAD_EXPECTED = {
    2: "instrument",     # unknown instrument
    3: "quantity",       # non-numeric
    4: "quantity",       # zero
    6: "entry_price",    # negative
    7: "instrument",     # expired 2026-11-20 before the 2026-11-24 valuation
    8: "instrument",     # SOL: no market data
    9: "row",            # 4 fields for 3 columns
    11: "quantity",      # missing quantity
    12: "instrument",    # 31 February
    13: "instrument",    # missing name
    14: "quantity",      # not finite
}


def test_bad_rows_reported_good_rows_kept(market):
    r = read_positions(BAD_CSV.encode(), market=market)
    assert as_tuples(r.book) == [("BTC-25DEC26-95000-C", -10.0, 4800.0), ("ETH-PERPETUAL", -2.5, 3400.0)]
    assert {e.row: e.field for e in r.errors} == BAD_EXPECTED
    assert len(r.errors) == len(BAD_EXPECTED)
    assert not r.ok
    by_row = {e.row: e for e in r.errors}
    assert "FOO-BAR-BAZ" in by_row[2].message and "UNDERLYING-DMMMYY" in by_row[2].message
    assert "ten" in by_row[3].message
    assert "expired" in by_row[7].message
    assert "SOL" in by_row[8].message
    assert str(by_row[3]).startswith("row 3, quantity")


def test_without_market_only_format_is_checked():
    """Expiry and underlying are checked against a market only when one is given."""
    r = read_positions(BAD_CSV.encode())
    rows = {e.row for e in r.errors}
    assert 7 not in rows and 8 not in rows
    assert ("SOL-PERPETUAL", 3.0, None) in as_tuples(r.book)


def test_json_bad_records_numbered_from_one(market):
    rows = [{"instrument": "BTC-PERPETUAL", "quantity": 1}, "not an object",
            {"instrument": "BTC-PERPETUAL", "quantity": 0}, {"instrument": "ETH-PERPETUAL", "quantity": None},
            {"instrument": "BTC-PERPETUAL", "quantity": 1, "entry_price": -1}]
    r = read_positions(json.dumps(rows).encode(), market=market)
    assert [(e.row, e.field) for e in r.errors] == [(2, "row"), (3, "quantity"), (4, "quantity"),
                                                     (5, "entry_price")]
    assert len(r.book) == 1


@pytest.mark.parametrize("data,field", [
    (b"", "file"),
    (b"\n\n", "header"),                           # blank lines only: no header
    (b"instr,qty\nBTC,1\n", "header"),
    (b"instrument,entry_price\nBTC,1\n", "header"),
    (b"quantity\n1\n", "header"),
    (b"\xff\xfeB\x00T\x00C\x00", "file"),          # UTF-16: not UTF-8 text
    (b"instrument,quantity\nBTC-PERPETUAL,\xe9\n", "file"),
    (b"[1, 2", "file"),                             # malformed JSON
    (b'{"rows": []}', "file"),
])
def test_file_level_errors_are_row_zero(data, field):
    r = read_positions(data)
    assert len(r.errors) == 1
    assert (r.errors[0].row, r.errors[0].field) == (0, field)
    assert len(r.book) == 0
    assert str(r.errors[0]).startswith("file," if field == "file" else "file, header")


def test_header_error_says_what_was_expected():
    msg = read_positions(b"name,size\nBTC,1\n").errors[0].message
    assert "instrument,quantity" in msg and "name,size" in msg


def test_header_is_case_and_space_insensitive_and_bom_tolerant():
    r = read_positions("\ufeff Instrument , QUANTITY \nbtc-perpetual,1\n".encode())
    assert r.ok and as_tuples(r.book) == [("BTC-PERPETUAL", 1.0, None)]


def test_oversize_upload_refused(tmp_path):
    big = b"instrument,quantity\n" + b"BTC-PERPETUAL,1\n" * (MAX_BYTES // 16 + 1)
    assert len(big) > MAX_BYTES
    for source in (big, io.BytesIO(big)):
        r = read_positions(source)
        assert [(e.row, e.field) for e in r.errors] == [(0, "file")] and len(r.book) == 0
    path = tmp_path / "big.csv"
    path.write_bytes(big)
    assert [(e.row, e.field) for e in read_positions(path).errors] == [(0, "file")]


def test_just_under_limit_accepted():
    rows = b"BTC-PERPETUAL,1\n" * 1000
    r = read_positions(b"instrument,quantity\n" + rows)
    assert r.ok and len(r.book) == 1000


def test_missing_file_is_row_zero(tmp_path):
    r = read_positions(tmp_path / "nope.csv")
    assert [(e.row, e.field) for e in r.errors] == [(0, "file")]


def test_fractional_signed_quantities_and_underscores():
    r = read_positions(b"instrument,quantity,entry_price\nBTC-PERPETUAL,-0.25,\nETH,1_000,3_400.5\n")
    assert r.ok and as_tuples(r.book) == [("BTC-PERPETUAL", -0.25, None), ("ETH", 1000.0, 3400.5)]


@pytest.mark.parametrize("quantity,entry,field,fragment", [
    ("1e308", "", "quantity", "within"),
    ("1", "1e308", "entry_price", "within"),
    ("-1e13", "", "quantity", "within"),            # beyond MAX_QUANTITY = 1e12
    ("1" * 39, "", "quantity", "within"),           # 39 digits: 1.1e38 contracts
    ("1" * 400, "", "quantity", "not a number"),    # longer than any number text
    ("5e-324", "", "quantity", "denormal"),
    ("1", "2.5e-310", "entry_price", "denormal"),
    ("1__0", "", "quantity", "underscores"),
    ("_10", "", "quantity", "not a number"),
    ("10_", "", "quantity", "not a number"),
    ("١٠", "", "quantity", "not a number"),  # Arabic-Indic 10
    ("nan", "", "quantity", "not a number"),
    ("Infinity", "", "quantity", "not a number"),
    ("0x10", "", "quantity", "not a number"),
])
def test_absurd_numbers_refused_per_row(quantity, entry, field, fragment):
    """The bad row is refused naming its field; the good rows on either side are kept."""
    text = f"instrument,quantity,entry_price\nBTC-PERPETUAL,1,\nETH,{quantity},{entry}\nETH-PERPETUAL,-2,\n"
    r = read_positions(text.encode())
    assert [(e.row, e.field) for e in r.errors] == [(2, field)]
    assert fragment in r.errors[0].message and len(r.errors[0].message) < 200
    assert as_tuples(r.book) == [("BTC-PERPETUAL", 1.0, None), ("ETH-PERPETUAL", -2.0, None)]


def test_400_digit_strike_refuses_only_its_row():
    strike = "9" * 400
    text = f"instrument,quantity\nBTC-25DEC26-95000-C,1\nBTC-25DEC26-{strike}-C,1\nETH,2\n"
    r = read_positions(text.encode())
    assert [(e.row, e.field) for e in r.errors] == [(2, "instrument")]
    assert as_tuples(r.book) == [("BTC-25DEC26-95000-C", 1.0, None), ("ETH", 2.0, None)]


@pytest.mark.parametrize("record,field", [
    ({"instrument": "BTC", "quantity": True}, "quantity"),
    ({"instrument": "BTC", "quantity": 1, "entry_price": False}, "entry_price"),
    ({"instrument": "BTC", "quantity": [1]}, "quantity"),
    ({"instrument": "BTC", "quantity": {"v": 1}}, "quantity"),
    ({"instrument": 12345, "quantity": 1}, "instrument"),
    ({"instrument": ["BTC"], "quantity": 1}, "instrument"),
    ({"instrument": "BTC", "quantity": 1e300}, "quantity"),
    ({"instrument": "BTC", "quantity": 10 ** 400}, "quantity"),   # beyond float range
    ({"instrument": "BTC", "quantity": 5e-324}, "quantity"),
])
def test_json_wrong_types_and_magnitudes_refused_per_row(record, field):
    rows = [{"instrument": "ETH", "quantity": 1}, record]
    r = read_positions(json.dumps(rows).encode())
    assert [(e.row, e.field) for e in r.errors] == [(2, field)]
    assert as_tuples(r.book) == [("ETH", 1.0, None)]


def test_json_non_finite_literals_and_huge_integer_text_refused_per_row():
    """json accepts NaN/Infinity and 5,000-digit integers; each is refused as its own row."""
    text = ('[{"instrument": "ETH", "quantity": 1}, {"instrument": "BTC", "quantity": Infinity},'
            '{"instrument": "BTC", "quantity": NaN}, {"instrument": "BTC", "quantity": ' + "7" * 5000 + '}]')
    r = read_positions(text.encode())
    assert [(e.row, e.field) for e in r.errors] == [(2, "quantity"), (3, "quantity"), (4, "quantity")]
    assert as_tuples(r.book) == [("ETH", 1.0, None)]


def test_json_deep_nesting_is_a_file_error():
    r = read_positions(b"[" * 100_000 + b"]" * 100_000)
    assert [(e.row, e.field) for e in r.errors] == [(0, "file")] and "deep" in r.errors[0].message


def test_duplicate_column_refused_naming_it():
    r = read_positions(b"instrument,quantity,Quantity\nBTC,1,2\n")
    assert [(e.row, e.field) for e in r.errors] == [(0, "header")]
    assert "quantity" in r.errors[0].message and "more than once" in r.errors[0].message
    assert len(r.book) == 0


def test_duplicate_json_key_refuses_that_row():
    text = b'[{"instrument": "ETH", "quantity": 1}, {"instrument": "BTC", "quantity": 1, "quantity": 2}]'
    r = read_positions(text)
    assert [(e.row, e.field) for e in r.errors] == [(2, "quantity")] and "more than once" in r.errors[0].message
    assert as_tuples(r.book) == [("ETH", 1.0, None)]


@pytest.mark.parametrize("newline", ["\r", "\r\n", "\n"])
def test_any_line_ending_accepted(newline):
    """CR-only files (classic Mac OS) read like LF and CRLF ones."""
    text = newline.join(["instrument,quantity,entry_price", "BTC-PERPETUAL,-0.5,", "ETH,2,3000", ""])
    r = read_positions(text.encode())
    assert r.ok and as_tuples(r.book) == [("BTC-PERPETUAL", -0.5, None), ("ETH", 2.0, 3000.0)]


def test_unreadable_row_costs_only_that_row():
    """A 200,000-character field exceeds the csv module's field limit: that row is reported and
    the rows after it are still read."""
    text = "instrument,quantity\nBTC,1\n" + "X" * 200_000 + ",1\nETH,2\n"
    r = read_positions(text.encode())
    assert [(e.row, e.field) for e in r.errors] == [(2, "row")] and "field limit" in r.errors[0].message
    assert as_tuples(r.book) == [("BTC", 1.0, None), ("ETH", 2.0, None)]


def test_magnitude_bounds_are_inclusive():
    r = read_positions(b"instrument,quantity,entry_price\nETH,1e12,1e12\nETH,-1e-12,1e-12\nETH,1,0\n")
    assert r.ok and as_tuples(r.book) == [("ETH", 1e12, 1e12), ("ETH", -1e-12, 1e-12), ("ETH", 1.0, 0.0)]


def test_book_helpers():
    b = SAMPLE
    assert len(b) == 6
    assert [i.name for i in b.instruments] == ["BTC-25DEC26-95000-C", "XRP-27DEC24-0d625-P", "ETH-26MAR27",
                                                "BTC-PERPETUAL", "BTC"]
    assert b.underlyings == ("BTC", "XRP", "ETH")
    assert len(b.without(0)) == 5 and b.without(0).positions[0].name == "XRP-27DEC24-0d625-P"
    extra = Position(parse_instrument("ETH-PERPETUAL"), 1.0)
    assert b.plus(extra).positions[-1] == extra
    frame = b.to_frame()
    assert list(frame.columns) == ["instrument", "quantity", "entry_price"]
    assert frame["quantity"].sum() == pytest.approx(-7.5 + 1000 + 2 - 0.1 + 0.003 + 2)


def test_header_only_file_is_refused_not_read_as_an_empty_book():
    from engine.portfolio import parse_positions_text

    for text, fmt in (("instrument,quantity,entry_price\n", "csv"), ("instrument,quantity\n\n\n", "csv"),
                      ("[]", "json")):
        result = parse_positions_text(text, fmt=fmt)
        assert len(result.book) == 0 and not result.ok
        assert result.errors[0].row == 0 and "no positions" in result.errors[0].message


def test_unknown_columns_are_reported_as_ignored():
    from engine.portfolio import parse_positions_text

    result = parse_positions_text("instrument,quantity,side\nBTC-PERPETUAL,2,sell\n")
    assert result.ok and result.book.positions[0].quantity == 2.0  # 'side' does not flip the sign
    assert len(result.warnings) == 1 and "'side' ignored" in result.warnings[0]
    assert parse_positions_text("instrument,quantity,entry_price\nBTC-PERPETUAL,2,\n").warnings == []
    json_result = parse_positions_text('[{"instrument": "BTC-PERPETUAL", "quantity": 1, "note": "x"}]')
    assert "'note' ignored" in json_result.warnings[0]
