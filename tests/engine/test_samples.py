"""Demo market, demo books and the reproducible book generator (engine/samples/).

Counts are worked out by hand from the shipped files and from the generator's documented rules.
"""
import math
from datetime import UTC, datetime
from importlib import resources

import numpy as np
import pytest

from engine import analyze
from engine.listing import listed_instruments
from engine.portfolio import read_positions, write_positions
from engine.samples import DEFAULT_BOOK, DEMO_BOOKS, demo_book, random_book


def test_demo_market(market):
    assert market.valuation_time == datetime(2026, 11, 24, 8, tzinfo=UTC)
    assert set(market.underlyings) == {"BTC", "ETH"}
    assert market.spot("BTC") == 95000.0 and market.spot("ETH") == 3400.0
    assert all(len(u.smile) == 7 for u in market.underlyings.values())
    assert all(market.expiry_years(s.expiry) > 0 for u in market.underlyings.values() for s in u.smile)


def test_every_demo_book_has_a_csv_and_back():
    files = {p.name[:-4] for p in resources.files("engine.samples").joinpath("books").iterdir()
             if p.name.endswith(".csv")}
    assert files == set(DEMO_BOOKS)
    assert DEFAULT_BOOK in DEMO_BOOKS


@pytest.mark.parametrize("key", sorted(DEMO_BOOKS))
def test_demo_books_load_clean_against_the_market(key, market):
    """Each shipped CSV imports with no row errors, also with the market checks (underlying known,
    not expired), and analyses without warnings."""
    with resources.files("engine.samples").joinpath(f"books/{key}.csv").open("rb") as f:
        raw = f.read()
    checked = read_positions(raw, market=market)
    assert checked.errors == []
    b = demo_book(key)
    assert len(b) == len(checked.book) == raw.decode().strip().count("\n")  # data rows = lines − header
    assert b.name == DEMO_BOOKS[key].title
    a = analyze(b, market)
    assert not a.warnings
    assert np.isfinite(a.stress_result.pnl).all()
    # Exporting and re-importing a demo book gives the same positions.
    again = read_positions(write_positions(b).encode(), market=market)
    assert [(p.name, p.quantity, p.entry_price) for p in again.book] == \
        [(p.name, p.quantity, p.entry_price) for p in b]


def test_desk_book_is_about_200_positions():
    assert len(demo_book("desk_book")) == 200


def test_iron_condor_is_the_strangle_plus_wings():
    """The condor's first two rows are the naked strangle: the wings are what it adds."""
    strangle = [(p.name, p.quantity) for p in demo_book("naked_short_strangle")]
    condor = [(p.name, p.quantity) for p in demo_book("short_iron_condor")]
    assert condor[:2] == strangle and len(condor) == 4
    assert all(q > 0 for _, q in condor[2:])


def test_unknown_demo_book():
    with pytest.raises(KeyError, match="unknown demo book"):
        demo_book("nope")


def test_listed_instruments(market):
    """Per underlying: 1 perp + per expiry (1 future + 21 strikes × call/put) = 1 + 7·43 = 302;
    BTC strikes step 5 000 (≈5 % of 95 000 rounded to 1/2/5·10ⁿ), ETH 200 (≈5 % of 3 400)."""
    listing = listed_instruments(market)
    assert len(listing) == 2 * 302
    assert len(set(listing)) == len(listing)
    for und, step in (("BTC", 5000.0), ("ETH", 200.0)):
        strikes = sorted({i.strike for i in listing if i.underlying == und and i.kind == "option"})
        assert np.allclose(np.diff(strikes), step)
        expiry = market.underlying(und).smile[2].expiry
        forward = market.spot(und) * math.exp(market.underlying(und).carry * market.expiry_years(expiry))
        ks = sorted(i.strike for i in listing if i.underlying == und and i.expiry_date == expiry and i.is_call)
        assert len(ks) == 21 and abs(ks[10] - forward) <= step / 2


def test_random_book_reproducible_and_shaped(market):
    a, b = random_book(500, seed=1, market=market), random_book(500, seed=1, market=market)
    assert [(p.name, p.quantity, p.entry_price) for p in a] == [(p.name, p.quantity, p.entry_price) for p in b]
    c = random_book(500, seed=2, market=market)
    assert [p.name for p in a] != [p.name for p in c]
    assert len(a) == 500
    assert sum(p.instrument.kind == "option" for p in a) == 400  # round(0.8·500)
    listing = set(listed_instruments(market))
    assert all(p.instrument in listing for p in a)
    assert all(p.quantity != 0 for p in a)
    assert all((p.entry_price is None) == (p.instrument.kind == "option") for p in a)
    assert read_positions(write_positions(a).encode(), market=market).errors == []
