"""Risk page: callback bodies and figures as plain functions, checked against the engine called
directly on the demo desk book."""
import base64
import sys

import numpy as np
import pytest
from components import text_of
from dash import no_update

from dashboard.figures import risk as figures
from dashboard.figures import stress_heatmap
from dashboard.stores import session as state
from dashboard.stores.account import default_account
from engine import analyze
from engine.crashes import load_library, replay_episode, reverse_stress
from engine.margin import compute
from engine.var import backtest, compute_var, demo_history, market_factors

NAMES = ["BTC spot", "ETH spot", "BTC vol", "ETH vol"]


@pytest.fixture(scope="module")
def page(app_context):
    return sys.modules["dashboard.pages.risk"]


@pytest.fixture(scope="module")
def desk(app_context):
    book, market, settings = state.default_stores()
    return book, market, settings, default_account()


def _upload(text: str) -> str:
    return "data:text/csv;base64," + base64.b64encode(text.encode()).decode()


def _vlines(fig):
    return sorted(s["x0"] for s in fig.layout.shapes)


def test_var_view_matches_the_engine(page, desk):
    book, market, settings, _ = desk
    table, hist, comps, msg = page.var_view(book, market, settings, None, None, "monte_carlo", 0.99, 1, 2_000,
                                            "normal", 5.0, "market")
    a = analyze(state.book_of(book), state.market_of(market))
    direct = compute_var(a, "monte_carlo", factors=market_factors(a.market, a.arrays.underlyings, 1), paths=2_000)
    k = direct.confidences.index(0.99)
    assert _vlines(hist) == pytest.approx(sorted([-direct.var[k], -direct.es[k]]))
    assert len(table.data[0].cells.values[0]) == 15  # five methods × three confidences
    bars = comps.data[1].x
    assert sum(bars) == pytest.approx(direct.var[k], rel=1e-9)  # shown positions + "others" = VaR
    assert "2,000 scenarios" in text_of(msg)


def test_var_view_refuses_bad_controls_and_keeps_the_charts(page, desk):
    book, market, settings, _ = desk
    out = page.var_view(book, market, settings, None, None, "monte_carlo", 0.99, 2.5, 50, "student_t", 2.0, "market")
    assert out[:3] == (no_update, no_update, no_update)
    text = text_of(out[3])
    assert "horizon" in text and "paths" in text and "ν" in text


def test_parametric_histogram_draws_the_assumed_density(page, desk):
    book, market, settings, _ = desk
    _, hist, _, _ = page.var_view(book, market, settings, None, None, "delta_normal", 0.95, 1, 1_000, "normal", 5.0,
                                  "market")
    assert hist.data[0].type == "scatter" and hist.data[0].fill == "tozeroy"


def test_backtest_view_marks_the_engines_exceptions(page, desk):
    book, market, settings, _ = desk
    fig = page.backtest_view(book, market, settings, None, "historical", 0.95)
    h = demo_history()
    bt = backtest(analyze(state.book_of(book), state.market_of(market)), h, 0.95, 181, "historical")
    assert len(fig.data[2].x) == bt.exceptions
    assert f"{bt.exceptions} exceptions" in fig.layout.title.text


def test_history_upload_good_and_bad(page, desk):
    book, market, settings, _ = desk
    rows = "\n".join(f"2024-01-{d:02d},{90_000 + 100 * d},{3_000 + d}" for d in range(1, 32))
    good = page.history_upload(_upload("date,BTC,ETH\n" + rows), "h.csv", book, market, settings)
    assert good.data["csv"].startswith("date,BTC,ETH") and "31 days" in good.note
    text = "date,BTC,ETH\n2024-01-01,1,2\n2024-01-02,x,2\n"
    bad = page.history_upload(_upload(text), "b.csv", book, market, settings)
    assert bad.data is None and "row 2, column BTC" in bad.problems[0]
    only_btc = page.history_upload(_upload("date,BTC\n" + "\n".join(r.rsplit(",", 1)[0] for r in rows.split("\n"))),
                                   "btc.csv", book, market, settings)
    assert only_btc.data is None and "no column ETH" in only_btc.problems[0]


def test_correlation_editor_is_symmetric_and_refuses_contradictions(page):
    ok = page.edit_correlation(None, NAMES, [{"rowIndex": 0, "colId": "1", "value": 0.5}])
    m = np.array(ok.data["matrix"])
    assert m[0, 1] == m[1, 0] == 0.5
    refused = page.edit_correlation(None, NAMES, [{"rowIndex": 0, "colId": "1", "value": -0.99}])
    assert refused.data is None and "positive semi-definite" in refused.problems[0]
    text = page.edit_correlation(None, NAMES, [{"rowIndex": 2, "colId": "0", "value": "high"}])
    assert text.data is None and "BTC vol / BTC spot" in text.problems[0]
    columns, rows = page.correlation_rows(NAMES, m)
    assert [c["headerName"] for c in columns[1:]] == NAMES and rows[1]["0"] == 0.5


def test_episode_upload_adds_a_choice(page):
    out = page.episode_upload(_upload("hours,BTC,BTC_vol\n0,0,0\n1,-0.3,0.4\n"), "my crash.csv", [])
    assert out.data[0]["key"] == "user:my crash"
    assert "user:my crash" in page.episodes(out.data)
    bad = page.episode_upload(_upload("hours,BTC\n0,0\n1,zz\n"), "bad.csv", out.data)
    assert bad.data is None and "row 2, column BTC" in bad.problems[0]
    options = page.episode_options(out.data)
    assert len(options) == len(load_library()) + 1


def test_replay_view_matches_the_engine_and_explains_to_the_worst_point(page, desk):
    book, market, _, acct = desk
    acct = dict(acct, collateral=300_000.0)
    fig, ex_fig, msg, sources = page.replay_view(book, market, acct, [], "covid_2020_03_12", 0)
    b, m = state.book_of(book), state.market_of(market)
    direct = replay_episode(b, m, load_library()["covid_2020_03_12"], 300_000.0, acct["model"], plan=False)
    equity = next(t for t in fig.data if t.name == "equity")
    assert list(equity.y) == pytest.approx(list(direct.path["equity"]))
    assert (direct.liquidation_hours is None) == (not fig.layout.shapes)
    # The waterfall starts at today's IM.
    assert ex_fig.data[0].y[0] == pytest.approx(compute(b, m, acct["model"]).initial)
    assert "ledgerprime" in str(sources).lower()
    if direct.liquidation_hours is not None:
        assert "liquidation plan" in text_of(msg)


def test_boundary_view_and_the_stress_page_overlay(page, desk):
    book, market, settings, acct = desk
    acct = dict(acct, collateral=400_000.0)
    fig, msg = page.boundary_view(book, market, settings, acct, None, None, "market", 1, 0)
    assert msg == "" and fig.data[0].type == "heatmap"
    a = analyze(state.book_of(book), state.market_of(market))
    rs = reverse_stress(state.book_of(book), state.market_of(market), 400_000.0,
                        market_factors(a.market, a.arrays.underlyings, 1), acct["model"])
    star = [t for t in fig.data if t.name == "most likely break"]
    if rs.most_likely is not None:
        assert star[0].x[0] == pytest.approx(100 * rs.most_likely["spot_shock"])
    overlay = figures.with_boundary(stress_heatmap(a, 0.0), rs)
    assert len(overlay.data) == len(stress_heatmap(a, 0.0).data) + len(figures.boundary_traces(rs))


def test_replay_chart_without_liquidation():
    from engine.crashes import episode_from_dict
    from engine.portfolio import Book
    from engine.samples import demo_market
    flat = episode_from_dict({"key": "flat", "title": "Flat", "spot": {"BTC": [[0, 0], [5, 0]]}})
    r = replay_episode(Book((), "empty"), demo_market(), flat, 1_000.0, "standard")
    fig = figures.replay_chart(r)
    assert "never liquidatable" in fig.layout.title.text and not fig.layout.shapes


def test_stressed_point_is_the_liquidation_moment_else_the_highest_ratio(page):
    from types import SimpleNamespace

    import pandas as pd
    path = pd.DataFrame({"hours": [0, 1, 2, 3], "margin_ratio": [0.9, 0.5, 0.7, 1.2],
                         "liquidatable": [False, False, False, True]})
    assert page.stressed_point(SimpleNamespace(path=path, liquidation_hours=3.0)) == 3
    calm = path.assign(margin_ratio=[0.9, 0.5, 0.7, 0.6], liquidatable=False)
    assert page.stressed_point(SimpleNamespace(path=calm, liquidation_hours=None)) == 2


def test_explain_notes_name_the_moved_components_and_binding_scenarios(page, desk):
    from engine.crashes import margin_explain
    book, market, _, _ = desk
    b, m = state.book_of(book), state.market_of(market)
    ex = margin_explain(compute(b, m, "risk_based"), compute(b, m.with_spot_shock(-0.3), "risk_based"))
    notes = " ".join(page.explain_notes(ex))
    biggest = ex.by_component.loc[ex.by_component["change"].abs().idxmax(), "component"]
    assert f"IM components: {biggest}" in notes
    changed = ex.by_scenario.groupby("underlying").apply(
        lambda r: r.loc[r["binding_before"], "scenario"].tolist() != r.loc[r["binding_after"], "scenario"].tolist())
    for u in changed[changed].index:
        assert f"{u} binding scenario" in notes
