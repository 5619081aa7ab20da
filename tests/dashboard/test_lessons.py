"""Guided lessons: every shipped lesson loads and each step sets what it claims, checked against
the engine called directly and, where a text states a fact, against a hand computation; bad
lesson files are refused naming the field; capture → step → apply round-trips; the player's and
the Lessons page's callback bodies."""
import base64
import json
import math
import sys

import pytest
from components import text_of
from dash import no_update
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard import ids, lessons
from dashboard.figures.margin import RATIO_DANGER, RATIO_WARNING
from dashboard.lessons import player
from dashboard.stores import account
from dashboard.stores import exchange as ex
from dashboard.stores import liquidation as liq
from dashboard.stores import session as state
from engine import Settings, analyze
from engine.margin import MODELS
from engine.samples import demo_book, demo_market

SHIPPED = lessons.shipped()


@pytest.fixture(scope="module")
def states():
    return {key: lessons.resolve(lesson) for key, lesson in SHIPPED.items()}


def positions(book: dict) -> list[tuple]:
    return [(p["instrument"], p["quantity"], p["entry_price"]) for p in book["positions"]]


def demo(key: str) -> list[tuple]:
    return [(p.name, p.quantity, p.entry_price) for p in demo_book(key).positions]


def margins(s: lessons.StepState) -> dict:
    return account.margins(s.book, s.market, s.account)


def standard_im_by_hand(book_key: str) -> float:
    """Deribit standard IM of short options, per contract max(0.15 − OTM/S, 0.10)·S + mark
    (docs/methodology.md §6.1), long options nothing, with the marks the engine prices."""
    frame = analyze(demo_book(book_key), demo_market(), Settings()).positions
    total = 0.0
    for row in frame.itertuples():
        if row.quantity >= 0:
            continue
        otm = max(row.strike - row.spot, 0.0) if row.option_type == "C" else max(row.spot - row.strike, 0.0)
        total += -row.quantity * (max(0.15 - otm / row.spot, 0.10) * row.spot + row.mark)
    return total


# ----------------------------------------------------------------------------- every shipped lesson


def test_four_lessons_ship_and_each_step_resolves(states):
    assert list(SHIPPED) == ["01_naked_vs_condor", "02_one_book_every_model", "03_healthy_to_liquidated",
                             "04_exchange_cascade"]
    for key, lesson in SHIPPED.items():
        assert lesson["title"] and lesson["summary"]
        assert len(states[key]) == len(lesson["steps"]) >= 5
        for s in states[key]:
            assert s.text and s.title and s.page in lessons.PAGES
            # Every stored value is one its own store transition accepts unchanged.
            controls = lessons.stress_controls(s.settings)
            assert state.settings_from_controls(*controls, s.book, s.market).data == s.settings
            assert liq.stress_from_controls(*lessons.liquidation_controls(s.liquidation)).data == s.liquidation
            assert ex.settings_from_controls(*lessons.exchange_controls(s.exchange)).data == s.exchange
            assert account.checked(s.account, s.book, s.market, "").data == s.account
            assert state.try_analysis(s.book, s.market, s.settings)[1] is None


def _ids_in(component) -> set:
    found = set()
    if isinstance(component, list | tuple):
        for c in component:
            found |= _ids_in(c)
    elif hasattr(component, "to_plotly_json"):
        if isinstance(getattr(component, "id", None), str):
            found.add(component.id)
        found |= _ids_in(getattr(component, "children", None))
    return found


def test_each_highlight_is_on_the_page_the_step_shows(app_context, states):
    import dash

    from dashboard.layout import shell

    layouts = {p["path"]: p["layout"] for p in dash.page_registry.values()}
    shell_ids = _ids_in(shell())
    for key, steps in states.items():
        for k, s in enumerate(steps):
            if s.highlight:
                page_ids = _ids_in(layouts[s.page]() if callable(layouts[s.page]) else layouts[s.page])
                assert s.highlight in page_ids | shell_ids, f"{key} step {k}: {s.highlight} not on {s.page}"


def test_slider_limits_match_the_pages(app_context):
    def find(component, wanted):
        if isinstance(component, list | tuple):
            return next((f for c in component if (f := find(c, wanted)) is not None), None)
        if getattr(component, "id", None) == wanted:
            return component
        return find(getattr(component, "children", None), wanted) if hasattr(component, "to_plotly_json") else None

    pages = {name: sys.modules[f"dashboard.pages.{name}"].layout for name in ("liquidation", "exchange", "stress")}
    for page, control, limits in (("liquidation", ids.LIQ_SHOCK, lessons.LIQ_SHOCK_PCT),
                                  ("exchange", ids.EX_SHOCK, lessons.EX_SHOCK_PCT),
                                  ("stress", ids.SPOT_RANGE, lessons.SPOT_RANGE_PCT),
                                  ("stress", ids.VOL_RANGE, lessons.VOL_RANGE_PTS)):
        slider = find(pages[page], control)
        assert (slider.min, slider.max) == limits
    assert find(pages["stress"], ids.SPOT_RANGE).step == lessons.SPOT_RANGE_STEP
    assert find(pages["stress"], ids.VOL_RANGE).step == lessons.VOL_RANGE_STEP


# ----------------------------------------------------------------------------- lesson 1


def test_lesson_one_naked_strangle_vs_condor(states):
    s = states["01_naked_vs_condor"]
    assert positions(s[0].book) == demo("naked_short_strangle") and s[0].account["model"] == "standard"
    assert s[0].page == "/margin" and s[0].highlight == ids.MARGIN_TABLE
    naked = margins(s[0])
    assert naked["standard"].initial == pytest.approx(standard_im_by_hand("naked_short_strangle"), rel=1e-9)
    # Step 2: same book, risk-based; lower IM; the standard table's upper edge (Deribit's price_range
    # 0.16, docs/venues.md §3) with vol up binds, not an extended move.
    assert positions(s[1].book) == positions(s[0].book) and s[1].account["model"] == "risk_based"
    assert naked["risk_based"].initial < naked["standard"].initial
    assert naked["risk_based"].binding_scenario["BTC"] == "spot +16% vol up"
    naked_pnl = naked["risk_based"].scenario_pnl.set_index("scenario").pnl
    assert naked_pnl["spot +16% vol up"] < naked_pnl["spot +16% vol none"]
    assert (naked_pnl[naked_pnl.index.str.startswith("extended +")] > naked_pnl["spot +16% vol up"]).all()
    # Step 3: the condor; standard margin gives nothing for the wings.
    assert positions(s[2].book) == demo("short_iron_condor") and s[2].account["model"] == "standard"
    condor = margins(s[2])
    assert condor["standard"].initial == pytest.approx(naked["standard"].initial, rel=1e-12)
    # Step 4: risk-based on the condor: a fraction, bounded by the capped loss (width × contracts).
    assert s[3].account["model"] == "risk_based" and positions(s[3].book) == positions(s[2].book)
    width_loss = (80_000 - 65_000) * 10
    assert condor["risk_based"].initial <= width_loss
    assert condor["standard"].initial / condor["risk_based"].initial > 3
    # Step 5: the binding scenario is the rise with vol unchanged. The forward × 1.16 passes the 110,000
    # short call while the forward × 0.84 stays above the 80,000 short put; the wings more than halve the
    # book's vega, so at that edge vol up is no longer the worst cell.
    assert condor["risk_based"].binding_scenario["BTC"] == "spot +16% vol none"
    condor_pnl = condor["risk_based"].scenario_pnl.set_index("scenario").pnl
    assert condor_pnl["spot +16% vol up"] > condor_pnl["spot +16% vol none"]
    naked_now, condor_now = (analyze(demo_book(k), demo_market(), Settings())
                             for k in ("naked_short_strangle", "short_iron_condor"))
    forward = condor_now.positions.forward.iloc[0]
    assert forward * 1.16 > 110_000 and forward * 0.84 > 80_000
    assert 0 < condor_now.totals["vega_per_vol_pt"] / naked_now.totals["vega_per_vol_pt"] < 0.5
    assert s[4].highlight == ids.MARGIN_SCENARIOS
    # Step 6: Stress page; at expiry the loss is flat beyond the wings, at −(width × 10) − today's value.
    assert s[5].page == "/stress" and s[5].highlight == ids.PAYOFF
    a = state.analysis(s[5].book, s[5].market, s[5].settings)
    expiry = a.payoff[a.payoff["horizon"].str.startswith("expiry")]
    outside = expiry[(expiry.spot_shock < 65_000 / 95_000 - 1) | (expiry.spot_shock > 125_000 / 95_000 - 1)]
    assert len(outside) > 4
    assert outside.pnl.to_numpy() == pytest.approx(-width_loss - a.totals["value"], abs=1e-6)


# ----------------------------------------------------------------------------- lesson 2


def test_lesson_two_every_model_on_one_book(states):
    s = states["02_one_book_every_model"]
    assert all(positions(x.book) == demo("naked_short_strangle") for x in s)
    assert [x.account["model"] for x in s] == ["standard", "risk_based", "risk_based", "span", "tims",
                                              "greeks_based", "greeks_based"]
    first = margins(s[0])
    assert first["standard"].initial == pytest.approx(standard_im_by_hand("naked_short_strangle"), rel=1e-9)
    # Deribit (docs/venues.md §3): the standard table's edge binds; IM = worst loss + roll, MM = 0.8 × IM.
    assert account.preset(s[1].account) == "deribit" and account.preset(s[2].account) == "okx"
    deribit = first["risk_based"]
    assert deribit.binding_scenario["BTC"] == "spot +16% vol up"
    deribit_params = account.model_params(s[1].account, "risk_based")
    table = [x for x in deribit_params.scenarios if x.edge is None]
    extended = [x for x in deribit_params.scenarios if x.edge is not None]
    assert sorted({x.spot for x in table}) == pytest.approx([k * 0.04 for k in range(-4, 5)])
    assert sorted(x.spot for x in extended) == pytest.approx([-0.66, -0.33, 0.5, 1, 2, 3, 4, 5])
    assert deribit_params.extended_table.extended_dampener == 100_000
    assert deribit.initial == pytest.approx(deribit.components["scenario_loss"] + deribit.components["roll_shock"])
    assert deribit.maintenance == pytest.approx(0.8 * deribit.initial)
    # OKX: moves to ±12 % (±24 % vol unchanged at half weight), a smaller worst loss, IM = 1.3 × MM.
    okx = margins(s[2])
    okx_params = account.model_params(s[2].account, "risk_based")
    assert max(abs(x.spot) for x in okx_params.scenarios if x.weight == 1) == pytest.approx(0.12)
    assert {(x.spot, x.vol, x.weight) for x in okx_params.scenarios if x.weight != 1} == {(-0.24, "none", 0.5),
                                                                                         (0.24, "none", 0.5)}
    assert okx["risk_based"].binding_scenario["BTC"] == "spot +12% vol up"
    assert okx["risk_based"].components["scenario_loss"] < deribit.components["scenario_loss"]
    assert okx_params.margin.im_factor == 1.3
    assert okx["risk_based"].initial == pytest.approx(1.3 * okx["risk_based"].maintenance)
    assert deribit.initial < okx["risk_based"].initial < 1.2 * deribit.initial
    # SPAN: ±15 % scan, extremes ±30 % at 35 %; its vol scan (10 points) is far below Deribit's vol-up
    # for this 31-day expiry, σ·0.5·(30/31)^0.13 (docs/venues.md §2.2), with σ ≥ 0.5 here.
    span = account.model_params(s[3].account, "span")
    assert (span.price_scan_range, span.extreme_multiple, span.extreme_cover) == (0.15, 2.0, 0.35)
    vol = deribit_params.vol_shock
    assert span.vol_scan_range == 0.10 < 0.5 * vol.vol_range_up * (30 / 31) ** vol.long_term_power
    # ... and that vol rise is what makes the difference: without it Deribit's edge loses less than SPAN's scan.
    deribit_pnl = deribit.scenario_pnl.set_index("scenario").pnl
    scan = okx["span"].components["scanning_risk"]
    assert -deribit_pnl["spot +16% vol none"] < scan < -deribit_pnl["spot +16% vol up"]
    assert okx["span"].initial < okx["risk_based"].initial
    assert okx["tims"].initial == min(r.initial for r in okx.values())
    scenario_models = max(okx[m].initial for m in ("risk_based", "span", "tims"))
    assert scenario_models < okx["greeks_based"].initial < okx["standard"].initial
    assert okx["greeks_based"].initial > 0.8 * okx["standard"].initial
    assert "components" in dir(okx["span"]) and okx["span"].components


# ----------------------------------------------------------------------------- lesson 3


def test_lesson_three_healthy_to_liquidated(states):
    s = states["03_healthy_to_liquidated"]
    assert all(positions(x.book) == demo("naked_short_strangle") for x in s)
    assert all(x.account["collateral"] == 300_000 and x.account["model"] == "risk_based" for x in s)
    spots = [x.market["underlyings"]["BTC"]["spot"] for x in s]
    assert spots[:4] == pytest.approx([95_000, 95_000 * 1.15, 95_000 * 1.2, 95_000 * 1.25])
    h = [account.health(x.book, x.market, x.account) for x in s]
    # equity = collateral + the book's value at the step's market; ratio = MM ÷ equity
    for x, hx in zip(s[:3], h, strict=False):
        value = state.analysis(x.book, x.market, x.settings).totals["value"]
        assert hx.equity == pytest.approx(300_000 + value)
        assert hx.margin_ratio == pytest.approx(hx.maintenance / hx.equity)
    assert h[0].margin_ratio < RATIO_WARNING and not h[0].liquidatable
    assert h[0].distance_up_pct < h[0].distance_down_pct
    assert RATIO_WARNING <= h[1].margin_ratio < RATIO_DANGER
    assert h[1].equity < h[0].equity and h[1].maintenance > h[0].maintenance
    assert RATIO_DANGER - 0.1 < h[2].margin_ratio < RATIO_DANGER and h[2].distance_up_pct < 5
    assert h[3].liquidatable and h[3].equity < h[3].maintenance
    assert [x.page for x in s[3:]] == ["/liquidation"] * 4
    assert s[3].liquidation == liq.DEFAULT_STRESS
    _, plans = liq.plans(s[4].book, s[4].market, s[4].account, s[4].liquidation, liq.DEFAULT_PARAMS)
    optimised = plans["optimised"]
    assert optimised.status == "healthy" and optimised.total_cost > 0
    compare = liq.comparison(plans).set_index("policy")
    assert (compare["saved_by_optimised"] >= 0).all()
    assert liq.auction(optimised, liq.DEFAULT_PARAMS) is not None


# ----------------------------------------------------------------------------- lesson 4


def test_lesson_four_cascade(states):
    s = states["04_exchange_cascade"]
    assert all(x.page == "/exchange" for x in s)
    run = [(x.exchange, x.market, x.account) for x in s]

    def queue(k):
        return ex.summary(ex.queue("generated", run[k][0], None, run[k][1], run[k][2]))

    def cascade(k):
        return ex.cascade_result("generated", run[k][0], None, run[k][1], run[k][2])

    start = queue(0)
    assert 0 < start["liquidatable"] < 0.1 * start["accounts"]
    ratios = ex.queue("generated", run[0][0], None, run[0][1], run[0][2]).accounts["margin_ratio"]
    assert ratios.median() < 0.6
    assert queue(1)["liquidatable"] > start["liquidatable"]
    sweep = ex.sweep("generated", run[2][0], None, run[2][1], run[2][2]).set_index("spot_shock")
    assert sweep.loc[-0.5, "accounts"] > start["liquidatable"] and sweep.loc[0.5, "accounts"] > start["liquidatable"]
    with_impact, no_impact, deep = cascade(3), cascade(4), cascade(5)
    round0 = int(with_impact.rounds.loc[0, "new_liquidations"])
    assert s[3].exchange["spot_shock"] == -0.15 and s[4].exchange["impact_k"] == 0
    assert len(with_impact.liquidated) > round0 and with_impact.final_shock["BTC"] < -0.15
    assert len(no_impact.liquidated) == round0 and no_impact.final_shock["BTC"] == pytest.approx(-0.15)
    assert s[5].exchange["turnover"] == 5 * s[3].exchange["turnover"] and s[5].exchange["impact_k"] == 3
    assert round0 < len(deep.liquidated) < len(with_impact.liquidated)
    ranked = ex.queue("generated", run[6][0], None, run[6][1], run[6][2]).accounts["margin_ratio"].to_numpy()
    assert all(a >= b or math.isnan(b) for a, b in zip(ranked[:-1], ranked[1:], strict=True))


# ----------------------------------------------------------------------------- bad files


GOOD_STEP = {"text": "look here", "page": "/margin", "book": "naked_short_strangle"}


def problems_of(raw) -> tuple[str, ...]:
    with pytest.raises(lessons.LessonError) as err:
        lessons.resolve(lessons.parse(raw))
    return err.value.problems


@pytest.mark.parametrize("step, field", [
    ({"text": ""}, "steps[0].text"),
    ({"text": "x", "hightlight": "margin-table"}, "steps[0]: unknown field(s) hightlight"),
    ({"text": "x", "page": "/nowhere"}, "steps[0].page"),
    ({"text": "x", "highlight": "no-such-id"}, "steps[0].highlight"),
    ({"text": "x", "book": "no_such_book"}, "steps[0].book"),
    ({"text": "x", "book": {"positions": [{"instrument": "BTC-PERPETUAL", "quantity": 0}]}},
     "steps[0].book.positions[0].quantity"),
    ({"text": "x", "book": {"positions": [{"instrument": "XYZ-PERPETUAL", "quantity": 1}]}},
     "steps[0].book.positions[0].instrument"),
    ({"text": "x", "market": {"spot_shock": -1.5}}, "steps[0].market.spot_shock"),
    ({"text": "x", "market": {"valuation_time": "2026-11-24T08:00:00Z", "usd_rate": 0, "underlyings": {
        "BTC": {"spot": -5, "carry": 0, "smile": [{"expiry": "2026-12-25", "atm_vol": 0.5}]}}}},
     "steps[0].market.underlyings.BTC.spot"),
    ({"text": "x", "account": {"model": "spam"}}, "steps[0].account.model"),
    ({"text": "x", "account": {"preset": "nasdaq"}}, "steps[0].account.preset"),
    ({"text": "x", "account": {"collateral": -1}}, "steps[0].account.collateral"),
    ({"text": "x", "account": {"params": {"tims": {"range": "wide"}}}}, "steps[0].account.params.tims"),
    ({"text": "x", "settings": {"spot_range": 0.33}}, "steps[0].settings.spot_range"),
    ({"text": "x", "settings": {"spot_steps": 1}}, "steps[0].settings"),
    ({"text": "x", "liquidation": {"spot_shock": -0.75}}, "steps[0].liquidation.spot_shock"),
    ({"text": "x", "liquidation": {"mode": "panic"}}, "steps[0].liquidation"),
    ({"text": "x", "exchange": {"n_accounts": 10_000_000}}, "steps[0].exchange"),
    ({"text": "x", "exchange": {"spot_shock": 0.123}}, "steps[0].exchange.spot_shock"),
])
def test_a_bad_step_is_refused_naming_the_field(step, field):
    found = problems_of({"title": "t", "steps": [step]})
    assert any(p.startswith(field) for p in found), found


@pytest.mark.parametrize("raw, field", [
    ("{not json", "file: not JSON"),
    ([1, 2], "lesson: expected an object"),
    ({"steps": [GOOD_STEP]}, "title"),
    ({"title": "t", "steps": []}, "steps: expected a non-empty list"),
    ({"title": "t", "steps": [GOOD_STEP] * (lessons.MAX_STEPS + 1)}, "steps:"),
    ({"title": "t", "steps": [GOOD_STEP], "author": "me"}, "lesson: unknown field(s) author"),
])
def test_a_bad_file_is_refused_naming_the_field(raw, field):
    with pytest.raises(lessons.LessonError) as err:
        lessons.parse(raw)
    assert any(p.startswith(field) for p in err.value.problems), err.value.problems


def test_a_later_step_is_named_with_its_index():
    found = problems_of({"title": "t", "steps": [GOOD_STEP, {"text": "y"}, {"text": "z", "account": {"model": "x"}}]})
    assert found == ("steps[2].account.model: unknown margin model 'x'; choose one of " + ", ".join(MODELS),)


def upload(raw: bytes, name="lesson.json") -> str:
    return "data:application/json;base64," + base64.b64encode(raw).decode()


JSON = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                        st.sampled_from(sorted(lessons.STEP_KEYS | lessons.LESSON_KEYS | {"x"})), inner, max_size=5),
                    max_leaves=20)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["title", "summary", "steps", "x"]), JSON, max_size=4) | JSON)
def test_an_upload_never_raises(raw):
    lesson, found = lessons.read_upload(upload(json.dumps(raw).encode()), "fuzz.json")
    assert (lesson is None) == bool(found)


def test_a_bad_upload_payload_is_reported():
    assert lessons.read_upload("garbage", "x.json") == (None, ("x.json: could not be read as an uploaded file",))
    lesson, found = lessons.read_upload(upload(b"\xff\xfe not json"), "x.json")
    assert lesson is None and found[0].startswith("file: not JSON")


# ----------------------------------------------------------------------------- writing a lesson


def test_capture_then_apply_round_trips(states):
    source = states["02_one_book_every_model"][2]  # OKX preset
    custom_book = {"name": "hand-made", "positions": [
        {"id": "7", "instrument": "BTC-PERPETUAL", "quantity": -2.5, "entry_price": 95_100.0},
        {"id": "9", "instrument": "BTC-25DEC26-110000-C", "quantity": 3.0, "entry_price": None}]}
    shocked = lessons.resolve({"title": "t", "steps": [{"text": "x", "market": {"spot_shock": -0.1}}]})[0].market
    settings_ = dict(source.settings, spot_range=0.25, horizons_days=[0.0, 7.0])
    liq_stress = {"mode": "custom", "spot_shock": -0.2, "collateral": 150_000.0}
    exchange = dict(ex.DEFAULT_SETTINGS, spot_shock=-0.3, seed=4)
    cases = [
        (source.book, source.market, source.settings, source.account, None, None),
        (custom_book, shocked, settings_, dict(source.account, model="tims", collateral=1234.5), liq_stress, exchange),
    ]
    for book, market, settings_k, acct, lq, exch in cases:
        step = lessons.capture("Look at the table.", "/margin", book, market, settings_k, acct, lq, exch,
                         ids.MARGIN_TABLE, "A title")
        back = lessons.resolve(lessons.parse(lessons.to_json({"title": "mine", "steps": [step]})))[0]
        assert positions(back.book) == positions(book) and back.book["name"] == book["name"]
        assert back.market == market and back.settings == settings_k and back.account == acct
        assert back.liquidation == (lq or liq.DEFAULT_STRESS) and back.exchange == (exch or ex.DEFAULT_SETTINGS)
        assert (back.page, back.highlight, back.text, back.title) == ("/margin", ids.MARGIN_TABLE, "Look at the table.",
                                                                     "A title")
    # Readable: a demo book is written as its key, the demo market as "demo", a preset by name.
    step = lessons.capture("t", "/", source.book, source.market, source.settings, source.account)
    assert step["book"] == "naked_short_strangle" and step["market"] == "demo"
    assert step["account"] == {"collateral": 2_000_000.0, "model": "risk_based", "preset": "okx"}


def test_steps_carry_over_and_reorder():
    lesson = {"title": "t", "steps": [
        {"text": "a", "page": "/margin", "book": "covered_call", "account": {"model": "span", "collateral": 5e5}},
        {"text": "b", "account": {"model": "tims"}, "highlight": ids.MARGIN_TABLE},
        {"text": "c", "page": "/stress"}]}
    a, b, c = lessons.resolve(lessons.parse(lesson))
    assert b.book == a.book and b.account["collateral"] == 500_000 and b.page == "/margin" and b.highlight
    assert c.account["model"] == "tims" and c.highlight is None
    moved = lessons.move_step(lesson, 2, -5)
    assert [s["text"] for s in moved["steps"]] == ["c", "a", "b"]
    assert [s["text"] for s in lessons.move_step(lesson, 0, 1)["steps"]] == ["b", "a", "c"]
    assert [s["text"] for s in lessons.delete_step(lesson, 1)["steps"]] == ["a", "c"]
    # A step starts from the defaults, not from whatever was on screen.
    first = lessons.resolve({"title": "t", "steps": [{"text": "x"}]})[0]
    assert (first.book, first.account, first.page) == (state.default_stores()[0], account.default_account(), "/")


# ----------------------------------------------------------------------------- player and page callbacks


def test_player_navigation_and_card():
    playing = player.started("01_naked_vs_condor", SHIPPED["01_naked_vs_condor"])
    n = len(playing["lesson"]["steps"])
    assert player.navigate(ids.LESSON_BACK, playing)["step"] == 0
    second = player.navigate(ids.LESSON_NEXT, playing)
    assert second["step"] == 1
    hidden, progress, title, step_title, text, back_disabled, next_label = player.card(second)
    assert not hidden and progress == f"Step 2 of {n}" and not back_disabled and next_label == "Next ▶"
    assert text == SHIPPED["01_naked_vs_condor"]["steps"][1]["text"]
    last = dict(playing, step=n - 1)
    assert player.card(last)[-1] == "Finish ✓"
    assert player.navigate(ids.LESSON_NEXT, last) is None and player.navigate(ids.LESSON_EXIT, second) is None
    assert player.card(None)[0] is True


def test_player_applies_a_step_and_refuses_a_bad_one(states):
    playing = dict(player.started("k", SHIPPED["03_healthy_to_liquidated"]), step=3)
    s = states["03_healthy_to_liquidated"][3]
    assert player.apply(playing) == (s.book, s.market, s.settings, s.account, "/liquidation", {"key": "k", "step": 3},
                                     "")
    assert player.controls_of(playing, "liquidation") == ("none", 0, None)
    assert player.controls_of(playing, "margin") == (300_000.0, "risk_based", "deribit")
    bad = player.started("", {"title": "t", "steps": [{"text": "x", "account": {"model": "nope"}}]})
    out = player.apply(bad)
    assert out[:6] == (no_update,) * 6 and "steps[0].account.model" in text_of(out[6])


def test_lessons_page_save_and_finish(app_context):
    page = sys.modules["dashboard.pages.lessons"]
    book, market, settings_ = state.default_stores()
    stores = {"book": book, "market": market, "settings": settings_, "account": account.default_account()}
    draft, note = page.save_step(lessons.new_draft(), "  ", "", "/", None, stores, {})
    assert draft is no_update and "step text" in text_of(note)
    draft, note = page.save_step(lessons.new_draft(), "Read the strip.", "Start", "/greeks", ids.HEALTH_STRIP, stores,
                                 {"liquidation": liq.DEFAULT_STRESS})
    assert len(draft["steps"]) == 1 and draft["steps"][0]["page"] == "/greeks" and "step 1 saved" in text_of(note)
    assert "Read the strip." in text_of(page.step_items(draft))
    lesson, found = page.finished(draft, "My class", "")
    assert found == [] and lesson["title"] == "My class"
    assert page.finished(lessons.new_draft(), "x", "")[1] == ["steps: expected a non-empty list of steps"]


def test_lessons_page_upload(app_context):
    page = sys.modules["dashboard.pages.lessons"]
    text = lessons.to_json(SHIPPED["03_healthy_to_liquidated"]).encode()
    draft, note, title, summary, cleared = page.upload(upload(text), "lesson3.json")
    assert draft == SHIPPED["03_healthy_to_liquidated"] and title == draft["title"] and cleared is None
    assert "7 steps loaded" in text_of(note)
    bad = json.dumps({"title": "t", "steps": [{"text": "x", "page": "/nowhere"}]}).encode()
    draft, note, title, summary, cleared = page.upload(upload(bad), "bad.json")
    assert draft is no_update and title is no_update and "bad.json: steps[0].page" in text_of(note)
