"""Fuzzing the entry points that read user input (hypothesis).

Properties: each entry point raises nothing but its documented error type (``read_positions``,
``positions_from_records`` and ``read_accounts`` raise nothing at all: bad rows come back as
errors), rows that are valid are never lost among hostile ones, and every accepted number is
finite and within engine.limits.  Each test is bounded (``max_examples``, ``deadline``); the file
runs in a few seconds.  Test names carry the function they fuzz.
"""
import contextlib
import csv
import io
import json
import math

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine import limits
from engine.instruments import InstrumentError, parse_instrument
from engine.liquidation.queue import read_accounts
from engine.margin import MODELS, model_spec, params_from_dict, params_to_dict
from engine.market import MarketError, load_market, market_to_dict
from engine.portfolio import positions_from_records, read_positions
from engine.samples import demo_market, listed_instruments

MARKET = demo_market()
LISTED = [i.name for i in listed_instruments(MARKET)] + ["BTC", "ETH-USD", "BTC-PERPETUAL"]
FUZZ = settings(max_examples=60, deadline=2_000, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Hostile values: absurd magnitudes, odd spellings, wrong types, other scripts' digits.
HOSTILE_TEXT = st.sampled_from(["1e308", "-1e308", "5e-324", "1__0", "_1", "nan", "inf", "-Infinity", "0x10",
                                "1" * 400, "\u0661\u0660", "\uff11", "true", "", " ", "1,5", "1e", "--1",
                                "BTC-27DEC24-" + "9" * 400 + "-C", "\u0000", "\r", '"', "=cmd|' /C calc'!A0"])
ANY_TEXT = st.one_of(HOSTILE_TEXT, st.text(max_size=30))
JSON_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10**500, max_value=10**500),
                        st.floats(allow_nan=True, allow_infinity=True), ANY_TEXT)
JSON_VALUE = st.recursive(JSON_SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                               st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                          max_leaves=8)
GOOD_QTY = st.one_of(st.integers(-10**6, 10**6).filter(bool).map(float),
                     st.floats(-1e6, 1e6).filter(lambda x: abs(x) >= 1e-6))
GOOD_ROW = st.tuples(st.sampled_from(LISTED), GOOD_QTY,
                    st.one_of(st.none(), st.just(0.0), st.floats(1e-6, 1e6)))
BAD_ROW = st.tuples(ANY_TEXT, ANY_TEXT, ANY_TEXT)


def _bounded(book):
    for p in book:
        assert math.isfinite(p.quantity) and limits.MIN_MAGNITUDE <= abs(p.quantity) <= limits.MAX_QUANTITY
        assert p.entry_price is None or (math.isfinite(p.entry_price) and 0 <= p.entry_price <= limits.MAX_PRICE)
        strike = p.instrument.strike
        assert strike is None or limits.MIN_MAGNITUDE <= strike <= limits.MAX_PRICE


def _kept(result, rows, good):
    """Every good row (1-based data row → (name, qty, entry)) is in the book, in order, unreported."""
    bad_rows = {e.row for e in result.errors}
    assert not bad_rows & set(good)
    book = [(p.name, p.quantity, p.entry_price) for p in result.book]
    it = iter(book)
    for r in sorted(good):
        name, qty, entry = good[r]
        expected = (parse_instrument(name).name, qty, entry)
        assert any(b == expected for b in it), f"good row {r} {expected} lost"


@FUZZ
@given(rows=st.lists(st.tuples(st.booleans(), GOOD_ROW, BAD_ROW), max_size=12),
       newline=st.sampled_from(["\n", "\r\n", "\r"]))
def test_fuzz_read_positions_csv(rows, newline):
    buf = io.StringIO(newline="")
    # Every field quoted: a CR or LF inside a field is then data, not a line end.
    writer = csv.writer(buf, lineterminator=newline, quoting=csv.QUOTE_ALL)
    writer.writerow(["instrument", "quantity", "entry_price"])
    good = {}
    for r, (is_good, g, b) in enumerate(rows, start=1):
        if is_good:
            writer.writerow([g[0], repr(g[1]), "" if g[2] is None else repr(g[2])])
            good[r] = g
        else:
            writer.writerow(b)
    result = read_positions(buf.getvalue().encode())
    _bounded(result.book)
    _kept(result, rows, good)


@FUZZ
@given(rows=st.lists(st.tuples(st.booleans(), GOOD_ROW, JSON_VALUE), max_size=12), wrap=st.booleans())
def test_fuzz_read_positions_json(rows, wrap):
    records, good = [], {}
    for r, (is_good, g, junk) in enumerate(rows, start=1):
        if is_good:
            records.append({"instrument": g[0], "quantity": g[1], "entry_price": g[2]})
            good[r] = g
        else:
            records.append(junk if not isinstance(junk, dict) else {"instrument": junk.get("a"), **junk})
    text = json.dumps({"positions": records} if wrap else records)
    result = read_positions(text.encode())
    _bounded(result.book)
    _kept(result, rows, good)


@FUZZ
@given(data=st.binary(max_size=300))
def test_fuzz_read_positions_bytes(data):
    """Arbitrary bytes: a result, never an exception."""
    result = read_positions(data)
    _bounded(result.book)
    assert all(e.row >= 0 and e.field and e.message for e in result.errors)


@FUZZ
@given(records=st.lists(st.one_of(JSON_VALUE, st.dictionaries(
    st.sampled_from(["instrument", "quantity", "entry_price", "x"]),
    st.one_of(JSON_SCALAR, st.sampled_from(LISTED)), max_size=4)), max_size=10))
def test_fuzz_positions_from_records(records):
    result = positions_from_records(records, market=MARKET)
    _bounded(result.book)
    assert len(result.book) + len({e.row for e in result.errors}) == len(records)


NAME_PIECES = st.sampled_from(["BTC", "btc", "ETH", "X", "-", "27DEC24", "5JAN27", "31FEB27", "60000", "0d625",
                               "C", "P", "PERPETUAL", "USD", "d", "9" * 30, "\u0662", "\uff10", " ", "e4", "."])


@FUZZ
@given(name=st.one_of(st.text(max_size=40), st.lists(NAME_PIECES, max_size=8).map("".join),
                      st.lists(NAME_PIECES, max_size=7).map("-".join), JSON_SCALAR))
def test_fuzz_parse_instrument(name):
    try:
        inst = parse_instrument(name)
    except InstrumentError:
        return
    assert parse_instrument(inst.name) == inst  # canonical names round-trip
    assert inst.strike is None or limits.MIN_MAGNITUDE <= inst.strike <= limits.MAX_PRICE


ACCOUNT_ROW = st.tuples(st.sampled_from(["a", "b", "c"]), st.one_of(st.floats(0, 1e6).map(repr), ANY_TEXT),
                        st.one_of(st.sampled_from(LISTED), ANY_TEXT), st.one_of(GOOD_QTY.map(repr), ANY_TEXT),
                        st.one_of(st.just(""), ANY_TEXT))


@FUZZ
@given(rows=st.lists(ACCOUNT_ROW, max_size=10), newline=st.sampled_from(["\n", "\r\n"]))
def test_fuzz_read_accounts(rows, newline):
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator=newline, quoting=csv.QUOTE_ALL)
    writer.writerow(["account", "collateral", "instrument", "quantity", "entry_price"])
    writer.writerows(rows)
    pop, errors = read_accounts(buf.getvalue(), MARKET)
    assert pop is not None or errors
    if pop is not None:
        assert set(pop.account_ids) <= {"a", "b", "c"} | {f"row{k}" for k in range(1, 11)}


BASE_MARKET = market_to_dict(MARKET)


def _replace_at(data, keys, value):
    """``data`` with the node found by walking ``keys`` (indices into sorted dict keys or into
    lists, modulo their length) replaced by ``value``."""
    node = data
    for k in keys[:-1]:
        if isinstance(node, dict | list) and node:
            node = node[sorted(node)[k % len(node)]] if isinstance(node, dict) else node[k % len(node)]
    if isinstance(node, dict) and node:
        node[sorted(node)[keys[-1] % len(node)]] = value
    elif isinstance(node, list) and node:
        node[keys[-1] % len(node)] = value
    return data


def _mutated_market(path_and_value):
    """The demo market with one field replaced by a hostile value."""
    keys, value = path_and_value
    return _replace_at(json.loads(json.dumps(BASE_MARKET)), keys, value)


MARKET_INPUT = st.one_of(
    st.tuples(st.lists(st.integers(0, 50), min_size=1, max_size=5), JSON_VALUE).map(_mutated_market),
    st.dictionaries(st.text(max_size=10), JSON_VALUE, max_size=4))


@FUZZ
@given(data=MARKET_INPUT, as_text=st.booleans())
@example(data=_mutated_market(([2], 10**400)), as_text=True)  # usd_rate beyond float range (issue #11)
@example(data=_mutated_market(([2], 10**400)), as_text=False)
def test_fuzz_load_market(data, as_text):
    """load_market raises MarketError only (JSON text or a parsed dict)."""
    with contextlib.suppress(MarketError):
        load_market(json.dumps(data) if as_text else data)


@FUZZ
@given(data=st.one_of(st.binary(max_size=200), st.binary(max_size=200).map(lambda b: b"{" + b)))
@example(data=b"{\xff}")                              # not UTF-8
@example(data=b"[" * 100_000 + b"]" * 100_000)     # nested too deeply for json
def test_fuzz_load_market_bytes(data):
    """A file-like object of arbitrary bytes: MarketError only."""
    with contextlib.suppress(MarketError):
        load_market(io.BytesIO(data))


def _mutated_params(model_keys_value):
    model, keys, value = model_keys_value
    return model, _replace_at(params_to_dict(model_spec(model).resolve(None)), keys, value)


@FUZZ
@given(case=st.one_of(
    st.tuples(st.sampled_from(list(MODELS)), st.lists(st.integers(0, 30), min_size=1, max_size=4),
              JSON_VALUE).map(_mutated_params),
    st.tuples(st.sampled_from(list(MODELS)), JSON_VALUE)))
def test_fuzz_params_from_dict(case):
    """params_from_dict raises ValueError only (naming the field)."""
    model, data = case
    with contextlib.suppress(ValueError):
        params_from_dict(model, data)
