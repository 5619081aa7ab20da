"""Exchange queue and cascade (docs/methodology.md §7): the sparse batch margin agrees with margining each
account on its own, the ranking follows the stated order, and the cascade is monotone and stops."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.liquidation.queue import (
    CascadeParams,
    PopulationParams,
    cascade,
    generate_population,
    liquidatable_vs_shock,
    margin_queue,
    merge_queue,
    queue_order,
    queue_rows,
    read_accounts,
    validate_account_row,
)
from engine.margin import compute
from engine.margin.account import account_health
from engine.portfolio import Book, Position


@pytest.fixture(scope="module")
def pop(market):
    return generate_population(market, PopulationParams(n_accounts=300, positions=8, seed=11))


def _account_book(pop, row):
    q = pop.quantities.getrow(row)
    return Book(tuple(Position(pop.instruments[j], float(v), None) for j, v in zip(q.indices, q.data, strict=True)))


def test_population_is_reproducible(market):
    a = generate_population(market, PopulationParams(n_accounts=50, seed=3))
    b = generate_population(market, PopulationParams(n_accounts=50, seed=3))
    c = generate_population(market, PopulationParams(n_accounts=50, seed=4))
    assert (a.quantities != b.quantities).nnz == 0 and np.array_equal(a.cash, b.cash)
    assert (a.quantities != c.quantities).nnz > 0


def test_batch_margin_matches_single_account_margin(market, pop):
    """IM/MM from the sparse batch == engine.margin.compute on each account's own book; equity ==
    account_health's equity with the same cash (options at value, linear at price − entry)."""
    q = margin_queue(pop, market).accounts.set_index("account")
    for row in (0, 7, 123, 299):
        book = _account_book(pop, row)
        r = compute(book, market, "risk_based")
        acc = q.loc[pop.account_ids[row]]
        assert acc["im"] == pytest.approx(r.initial, rel=1e-9, abs=1e-6)
        assert acc["mm"] == pytest.approx(r.maintenance, rel=1e-9, abs=1e-6)
        # cash folds the entry cost of linear positions: equity = cash + Σ q·price.
        health = account_health(book, market, 0.0)
        lin_price = sum(p.quantity * v for p, v in zip(book.positions, _prices(book, market), strict=True)
                        if p.instrument.kind != "option")
        assert acc["equity"] == pytest.approx(pop.cash[row] + health.equity + lin_price, rel=1e-9)


def _prices(book, market):
    from engine.scenarios import instrument_arrays, instrument_values
    arr = instrument_arrays(book.instruments, market)
    values = dict(zip(arr.instruments, instrument_values(arr), strict=True))
    return [values[p.instrument] for p in book.positions]


def test_ranking_most_under_water_first(market, pop):
    acc = margin_queue(pop, market, -0.15).accounts
    ratio = np.nan_to_num(acc["margin_ratio"].to_numpy(), posinf=1e300)  # equity ≤ 0 ranks first
    assert (np.diff(ratio) <= 1e-12).all()
    ties = np.flatnonzero(np.diff(ratio) == 0)
    assert (acc["notional_usd"].to_numpy()[ties] >= acc["notional_usd"].to_numpy()[ties + 1]).all()
    assert (acc["liquidatable"] == (acc["equity"] < acc["mm"])).all()
    assert list(acc["rank"]) == list(range(1, len(acc) + 1))


def test_queue_order_by_hand():
    """Six accounts ranked by hand: equity ≤ 0 first (ratio +inf), the larger notional first, and
    accounts tied on both in row order."""
    equity = np.array([100.0, -5.0, 200.0, 50.0, 0.0, 100.0])
    mm = np.array([50.0, 10.0, 100.0, 40.0, 10.0, 50.0])
    notional = np.array([1_000.0, 300.0, 2_000.0, 500.0, 300.0, 1_000.0])
    # ratios: 0.5, inf, 0.5, 0.8, inf, 0.5 → inf (rows 1, 4: same notional, row order), 0.8 (row 3),
    # 0.5 (row 2 with 2,000 of notional, then rows 0 and 5 with 1,000 each, in row order).
    expected = [1, 4, 3, 2, 0, 5]
    frame = merge_queue([queue_rows(np.array([f"a{k}" for k in range(6)], dtype=object),
                                    (equity, mm * 1.5, mm, notional))])
    assert list(frame["account"]) == [f"a{k}" for k in expected]
    assert list(frame["rank"]) == [1, 2, 3, 4, 5, 6]
    assert list(frame["liquidatable"]) == [True, True, False, False, False, False]
    assert frame["margin_ratio"].tolist() == [np.inf, np.inf, 0.8, 0.5, 0.5, 0.5]
    ratio = np.array([0.5, np.inf, 0.5, 0.8, np.inf, 0.5])
    for top in range(7):  # a cut inside a tie keeps the row order
        assert queue_order(ratio, notional, top).tolist() == expected[:top]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0.0, 0.25, 0.5, 1.0, 3.0, np.inf]), st.sampled_from([1.0, 2.0, 7.0])),
                min_size=1, max_size=40),
       st.integers(0, 45))
def test_queue_order_is_a_sort_on_ratio_notional_row(accounts, top):
    """queue_order == Python's sort on (−ratio, −notional, row), whole or cut at ``top``."""
    ratio = np.array([r for r, _ in accounts])
    notional = np.array([n for _, n in accounts])
    expected = sorted(range(len(accounts)), key=lambda i: (-ratio[i], -notional[i], i))
    assert queue_order(ratio, notional).tolist() == expected
    assert queue_order(ratio, notional, top).tolist() == expected[:top]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0.5, 1.0, np.inf, np.nan]), st.sampled_from([1.0, 2.0, np.nan])),
                min_size=1, max_size=30),
       st.integers(1, 35))
def test_queue_order_puts_nan_last_as_numpy_sorts(accounts, top):
    """A NaN ratio or notional (never from valid inputs) sorts last, as numpy's stable lexsort puts it."""
    ratio = np.array([r for r, _ in accounts])
    notional = np.array([n for _, n in accounts])
    expected = np.lexsort((-notional, -ratio)).tolist()
    assert queue_order(ratio, notional).tolist() == expected
    assert queue_order(ratio, notional, top).tolist() == expected[:top]


def test_shock_sweep_counts(market, pop):
    sweep = liquidatable_vs_shock(pop, market, [-0.3, 0.0, 0.3])
    for s, n in zip(sweep["spot_shock"], sweep["accounts"], strict=True):
        assert n == int(margin_queue(pop, market, s).accounts["liquidatable"].sum())


def test_cascade_is_monotone_and_stops(market, pop):
    result = cascade(pop, market, -0.2, cascade_params=CascadeParams(impact_k=3.0, turnover=0.05))
    r = result.rounds
    assert (np.diff(r["cumulative"]) >= 0).all()
    assert r["new_liquidations"].iloc[-1] == 0 or len(r) == CascadeParams().max_rounds + 1
    assert r["cumulative"].iloc[-1] == len(result.liquidated) == len(set(result.liquidated))
    # Each round moves spot in the direction of the flow it unloads.
    for und in ("BTC", "ETH"):
        moves = np.diff(r[f"shock_{und}"])
        flows = r[f"flow_{und}"].to_numpy()[:-1]
        assert (np.sign(moves[np.abs(flows) > 0]) == np.sign(flows[np.abs(flows) > 0])).all()


def test_no_impact_no_cascade(market, pop):
    """With k = 0 the first round's liquidations move nothing, so the cascade stops at once."""
    r = cascade(pop, market, -0.2, cascade_params=CascadeParams(impact_k=0.0)).rounds
    assert len(r) <= 2 and (r["new_liquidations"].iloc[1:] == 0).all()


def test_read_accounts_reports_bad_rows(market):
    text = ("account,collateral,instrument,quantity,entry_price\n"
            "a,10000,BTC-PERPETUAL,-1,95000\n"
            "a,,BTC-25DEC26-100000-C,2,\n"
            "b,5000,NOPE-1,1,\n"
            "b,5000,ETH-PERPETUAL,ten,\n"
            "c,7000,SOL-PERPETUAL,1,\n")
    pop, errors = read_accounts(text, market)
    assert [(e.row, e.field) for e in errors] == [(3, "instrument"), (4, "quantity"), (5, "instrument")]
    assert list(pop.account_ids) == ["a"]
    assert pop.collateral[0] == 10_000.0
    assert pop.cash[0] == pytest.approx(10_000.0 + 95_000.0)  # short perp entered at 95,000


def test_read_accounts_header_error(market):
    pop, errors = read_accounts("who,what\n1,2\n", market)
    assert pop is None and errors[0].row == 0 and "account" in errors[0].message


def test_read_accounts_checks_rows_like_a_book(market):
    """The accounts file uses the book's row validator: an expired option (valuation
    2026-11-24 08:00 UTC, expiry 2026-11-20 08:00) and a negative entry price are refused, and so
    is negative collateral."""
    text = ("account,collateral,instrument,quantity,entry_price\n"
            "a,10000,BTC-20NOV26-100000-C,1,\n"
            "a,10000,BTC-PERPETUAL,1,-5\n"
            "b,-3,ETH-PERPETUAL,1,\n"
            "c,,ETH-PERPETUAL,2,3000\n"
            "c,2500,ETH-PERPETUAL,1,\n")
    pop, errors = read_accounts(text, market)
    assert [(e.row, e.field) for e in errors] == [(1, "instrument"), (2, "entry_price"), (3, "collateral")]
    assert "expired" in errors[0].message
    assert list(pop.account_ids) == ["c"]
    assert pop.collateral[0] == 2500.0  # the first row that states a collateral
    assert pop.quantities.toarray().tolist() == [[3.0]]


def test_validate_account_row(market):
    errors = []
    row = validate_account_row({"account": "", "collateral": "100", "instrument": "BTC-PERPETUAL",
                                "quantity": "2", "entry_price": ""}, 7, market, errors)
    assert not errors and row.account == "row7" and row.collateral == 100.0 and row.position.quantity == 2.0
    assert validate_account_row({"account": "x", "collateral": "lots", "instrument": "BTC-PERPETUAL",
                                 "quantity": "0"}, 8, market, errors) is None
    assert [(e.row, e.field) for e in errors] == [(8, "quantity"), (8, "collateral")]


CSV_CELLS = st.one_of(st.sampled_from(["BTC-PERPETUAL", "ETH-25DEC26", "BTC-20NOV26-100000-C", "BTC-25DEC26-100000-P",
                                       "NOPE", "", "1", "-2.5", "0", "nan", "inf", "1e400", "x", '"', ","]),
                      st.text(max_size=6))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(CSV_CELLS, min_size=0, max_size=6), max_size=6),
       header=st.sampled_from(["account,collateral,instrument,quantity,entry_price", "account,collateral,instrument",
                               "Account, Collateral ,INSTRUMENT,quantity", ""]))
def test_fuzz_read_accounts_never_raises(market, rows, header):
    """Any CSV text gives a population and/or row errors naming a row and field, never an exception."""
    text = "\n".join([header] + [",".join(r) for r in rows])
    pop, errors = read_accounts(text, market)
    assert all(e.row >= 0 and e.field and e.message for e in errors)
    if pop is None:
        assert errors
    else:
        assert np.isfinite(pop.cash).all() and (pop.collateral >= 0).all()
        assert pop.quantities.shape == (len(pop.account_ids), len(pop.instruments))
