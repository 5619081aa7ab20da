"""Deribit-style instrument names (engine/instruments.py, docs/methodology.md §2).

Expected fields are read off the names by hand using Deribit's convention: DMMMYY expiry at
08:00 UTC, ``d`` as the decimal point of a strike, ``C``/``P`` for call/put.
"""
from datetime import UTC, datetime

import pytest

from engine.instruments import InstrumentError, parse_instrument


def utc8(y, m, d):
    return datetime(y, m, d, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize("text,underlying,expiry,strike,is_call,canonical", [
    ("BTC-27DEC24-60000-C", "BTC", utc8(2024, 12, 27), 60000.0, True, "BTC-27DEC24-60000-C"),
    ("ETH-5JAN25-3200-P", "ETH", utc8(2025, 1, 5), 3200.0, False, "ETH-5JAN25-3200-P"),
    ("eth-05jan25-3200-p", "ETH", utc8(2025, 1, 5), 3200.0, False, "ETH-5JAN25-3200-P"),
    ("XRP-27DEC24-0d625-C", "XRP", utc8(2024, 12, 27), 0.625, True, "XRP-27DEC24-0d625-C"),
    ("xrp-27dec24-0D625-c", "XRP", utc8(2024, 12, 27), 0.625, True, "XRP-27DEC24-0d625-C"),
    ("SOL-1MAR28-187d5-P", "SOL", utc8(2028, 3, 1), 187.5, False, "SOL-1MAR28-187d5-P"),
    ("  Btc-29Feb28-100000-C ", "BTC", utc8(2028, 2, 29), 100000.0, True, "BTC-29FEB28-100000-C"),
    ("BTC-31JUL26-95000-P", "BTC", utc8(2026, 7, 31), 95000.0, False, "BTC-31JUL26-95000-P"),
])
def test_option_names(text, underlying, expiry, strike, is_call, canonical):
    """1- and 2-digit days (a leading zero is dropped on output), decimal strikes, any case."""
    inst = parse_instrument(text)
    assert inst.kind == "option" and inst.is_option and not inst.is_linear
    assert (inst.underlying, inst.expiry, inst.strike, inst.is_call, inst.name) == \
        (underlying, expiry, strike, is_call, canonical)
    assert inst.expiry_date == expiry.date()
    # The canonical name parses back to the same instrument.
    assert parse_instrument(inst.name) == inst


@pytest.mark.parametrize("text,underlying,expiry,canonical", [
    ("BTC-27DEC24", "BTC", utc8(2024, 12, 27), "BTC-27DEC24"),
    ("eth-3jan25", "ETH", utc8(2025, 1, 3), "ETH-3JAN25"),
    ("ETH-03JAN25", "ETH", utc8(2025, 1, 3), "ETH-3JAN25"),
])
def test_future_names(text, underlying, expiry, canonical):
    inst = parse_instrument(text)
    assert (inst.kind, inst.underlying, inst.expiry, inst.name) == ("future", underlying, expiry, canonical)
    assert inst.strike is None and inst.is_call is None and inst.is_linear


@pytest.mark.parametrize("text,kind,underlying,canonical", [
    ("BTC-PERPETUAL", "perpetual", "BTC", "BTC-PERPETUAL"),
    ("eth-perpetual", "perpetual", "ETH", "ETH-PERPETUAL"),
    ("BTC", "spot", "BTC", "BTC"),
    ("btc-usd", "spot", "BTC", "BTC-USD"),
    ("ETH-USDC", "spot", "ETH", "ETH-USDC"),
])
def test_perpetual_and_spot_names(text, kind, underlying, canonical):
    inst = parse_instrument(text)
    assert (inst.kind, inst.underlying, inst.name) == (kind, underlying, canonical)
    assert inst.expiry is None and inst.strike is None and inst.expiry_date is None and inst.is_linear


def test_settlement_and_multiplier_explicit():
    """docs/methodology.md §1: USD-linear by default, one contract = one unit unless a multiplier is given."""
    inst = parse_instrument("BTC-27DEC24-60000-C")
    assert (inst.settlement, inst.multiplier) == ("USD", 1.0)
    assert parse_instrument("BTC-27DEC24-60000-C", multiplier=0.1).multiplier == 0.1


def test_names_are_hashable_and_equal_by_value():
    assert parse_instrument("btc-5jan25-60000-c") == parse_instrument("BTC-05JAN25-60000-C")
    assert len({parse_instrument("BTC-PERPETUAL"), parse_instrument("btc-perpetual")}) == 1


EXPECTED_FORM = "UNDERLYING-DMMMYY-STRIKE-C|P"


@pytest.mark.parametrize("text,fragment", [
    ("BTC-27XYZ24-60000-C", "XYZ"),            # unknown month
    ("BTC-27XYZ24", "XYZ"),                    # unknown month, future form
    ("BTC-31FEB25-60000-C", "31FEB25"),        # not a calendar date
    ("BTC-29FEB25", "29FEB25"),                # 2025 is not a leap year
    ("BTC-0JAN25-60000-C", "0JAN25"),          # day zero
    ("BTC-27DEC24-60000", "60000"),            # missing C/P
    ("BTC-27DEC24--C", "BTC-27DEC24--C"),      # missing strike
    ("BTC--60000-C", "BTC--60000-C"),          # missing expiry
    ("-27DEC24-60000-C", "-27DEC24-60000-C"),  # missing underlying
    ("BTC-27DEC24-0-C", "BTC-27DEC24-0-C"),    # zero strike
    ("BTC-27DEC24-0d0-P", "BTC-27DEC24-0D0-P"),
    ("BTC-27DEC24-60000-X", "60000-X"),        # neither call nor put
    ("BTC-27DEC24-6e4-C", "6E4"),
    ("BTC-PERP", "BTC-PERP"),
    ("BTC-EUR", "BTC-EUR"),
    ("BTC 27DEC24", "BTC 27DEC24"),
])
def test_bad_names_raise_with_text_and_expected_form(text, fragment):
    """The message names the offending text and says what form was expected."""
    with pytest.raises(InstrumentError) as info:
        parse_instrument(text)
    msg = str(info.value)
    assert fragment.upper() in msg.upper()
    assert EXPECTED_FORM in msg


@pytest.mark.parametrize("value", ["", "   ", None, 60000, 1.5, ["BTC"]])
def test_empty_or_non_string_names(value):
    with pytest.raises(InstrumentError) as info:
        parse_instrument(value)
    msg = str(info.value)
    assert EXPECTED_FORM in msg
    if not isinstance(value, str):
        assert repr(value) in msg
    else:
        assert "empty" in msg


def test_instrument_error_is_a_value_error():
    """Callers that catch ValueError (form validation, CSV import) also catch bad names."""
    with pytest.raises(ValueError):
        parse_instrument("NOT A NAME")


@pytest.mark.parametrize("text,fragment", [
    ("BTC-27DEC24-" + "9" * 400 + "-C", "longer than 64"),        # a 400-digit strike
    ("BTC-27DEC24-9999999999999-C", "strike"),                      # 1e13 USD > MAX_PRICE
    ("BTC-27DEC24-0d00000000000001-C", "strike"),                   # 1e-14: below MIN_MAGNITUDE
    ("BTC-27DEC24-0d12345678901-C", "decimals"),                    # 11 decimals would not round-trip
    ("BTC-\u0662\u0667DEC24-60000-C", "non-ASCII"),                 # Arabic-Indic digits 27
    ("BTC-27DEC24-\uff16\uff10000-C", "non-ASCII"),                 # full-width digits
    ("\u0411TC-PERPETUAL", "non-ASCII"),                            # Cyrillic Б
])
def test_absurd_names_refused(text, fragment):
    """Each is refused with a message saying why (docs/methodology.md §2: strikes are USD > 0)."""
    with pytest.raises(InstrumentError) as info:
        parse_instrument(text)
    assert fragment in str(info.value)
    assert len(str(info.value)) < 400          # a huge name is clipped, not echoed whole


def test_strike_at_the_bounds_accepted():
    """1e12 USD and ten decimals are the largest and finest strikes a name can carry."""
    assert parse_instrument("BTC-27DEC24-1000000000000-C").strike == 1e12
    assert parse_instrument("XRP-27DEC24-0d0000000001-C").strike == 1e-10


@pytest.mark.parametrize("multiplier", [0, -1, float("nan"), float("inf"), 1e308, 5e-324, True, "10", None])
def test_bad_multiplier_refused(multiplier):
    with pytest.raises(InstrumentError) as info:
        parse_instrument("BTC-PERPETUAL", multiplier=multiplier)
    assert "BTC-PERPETUAL" in str(info.value) and "multiplier" in str(info.value)
