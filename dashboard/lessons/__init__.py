"""Guided lessons: a lesson is data (a JSON file), a sequence of steps that each set the app's state.

A lesson file (docs/lessons.md)::

    {"title": "Naked strangle vs iron condor", "summary": "…",
     "steps": [{"title": "…", "text": "what to look at, and why", "page": "/margin",
                "highlight": "margin-table",
                "book": "naked_short_strangle",             # a demo book key, or {"name", "positions"}
                "market": "demo",                            # or {"spot_shock": 0.1}, or a market JSON
                "account": {"model": "risk_based", "preset": "deribit", "collateral": 300000},
                "settings": {"horizons_days": [0, 7, 30]},   # SETTINGS_STORE fields
                "liquidation": {"mode": "custom", "spot_shock": -0.2},   # LIQ_STRESS_STORE fields
                "exchange": {"spot_shock": -0.15, "impact_k": 3.0}}]}    # EX_SETTINGS_STORE fields

A step lists only what it changes: ``book``, ``market``, ``page`` and each field of ``account``,
``settings``, ``liquidation`` and ``exchange`` carry over from the step before, and the first
step starts from the app's defaults (the demo desk book on the demo market, the default account,
stress grid and page settings), so a lesson shows the same thing to every class whatever was on
screen before.  ``highlight`` (a component id of ``dashboard.ids``) belongs to its step alone.

Here is the pure logic, testable without a browser: :func:`parse` checks a file's structure and
names every bad field (``steps[2].account.model: …``); :func:`resolve` turns the steps into the
store values each one sets, through the same transitions the stores use (``state``, ``account``,
``liquidation``, ``exchange``), so a step the engine refuses is named rather than written;
:func:`capture` turns the current stores back into a step, for a trainer writing a lesson
without code.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from engine.account import AccountError, load_account
from engine.margin import MODELS, default_params, params_from_dict, params_to_dict
from engine.market import MarketError, market_from_dict, market_to_dict
from engine.portfolio import Book, validate_record
from engine.samples import DEMO_BOOKS, demo_book, demo_market

from .. import guard, ids
from ..stores import account as acct
from ..stores import exchange as ex
from ..stores import liquidation as liq
from ..stores import session as state

#: Pages a step may show when no Dash app has registered its pages (scripts, tests).
PAGES = ("/", "/greeks", "/stress", "/margin", "/liquidation", "/exchange", "/report", "/lessons")
#: Every component id a step may highlight.
HIGHLIGHTS = frozenset(v for k, v in vars(ids).items() if k.isupper() and isinstance(v, str))
#: Limits that keep a file readable on screen and small in the browser's session storage.
MAX_STEPS = 60
MAX_TEXT = 1500
MAX_TITLE = 120
MAX_UPLOAD_BYTES = 1_000_000
#: Spot-shock slider ranges (whole %) of the Liquidation and Exchange pages: a step's shock must
#: be a value the slider can show.
LIQ_SHOCK_PCT = (-60, 60)
EX_SHOCK_PCT = (-50, 50)
#: Stress-grid slider ranges and steps of the Stress page (% of spot, vol points).
SPOT_RANGE_PCT, SPOT_RANGE_STEP = (5, 90), 5
VOL_RANGE_PTS, VOL_RANGE_STEP = (0, 100), 5

LESSON_KEYS = {"title", "summary", "steps", "version"}
STEP_KEYS = {"title", "text", "page", "highlight", "book", "market", "account", "settings", "liquidation", "exchange"}
ACCOUNT_KEYS = {"collateral", "assets", "denomination", "model", "preset", "params"}
SETTINGS_KEYS = {"spot_range", "spot_steps", "vol_range", "vol_steps", "horizons_days"}
LIQ_KEYS = set(liq.DEFAULT_STRESS)
EX_KEYS = set(ex.DEFAULT_SETTINGS)


class LessonError(ValueError):
    """A lesson file or step that cannot be used; ``problems`` each name the field."""

    def __init__(self, problems):
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True)
class StepState:
    """What one step sets: the store values (store formats of ``state``, ``account``,
    ``liquidation``, ``exchange``), the page path, the highlighted id and the step's text."""

    title: str
    text: str
    page: str
    highlight: str | None
    book: dict
    market: dict
    settings: dict
    account: dict
    liquidation: dict
    exchange: dict


def known_pages() -> tuple[str, ...]:
    """:data:`PAGES` and any other page the running app registered (``dash.page_registry``)."""
    import dash

    return tuple(dict.fromkeys(PAGES + tuple(p["path"] for p in dash.page_registry.values())))


# ----------------------------------------------------------------------------- structure


def _text(problems: list, where: str, value, required: bool, limit: int) -> None:
    if value in (None, "") and not required:
        return
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}: enter a non-empty text")
    elif len(value) > limit:
        problems.append(f"{where}: {len(value)} characters, at most {limit}")


def _keys(problems: list, where: str, value, allowed: set, what: str) -> bool:
    """True when ``value`` is an object whose keys are all ``allowed``; else says why."""
    if not isinstance(value, dict):
        problems.append(f"{where}: expected an object ({what})")
        return False
    unknown = sorted(set(value) - allowed)
    if unknown:
        problems.append(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
        return False
    return True


def _step_structure(problems: list, where: str, step) -> None:
    if not _keys(problems, where, step, STEP_KEYS, "a step"):
        return
    _text(problems, f"{where}.text", step.get("text"), True, MAX_TEXT)
    _text(problems, f"{where}.title", step.get("title"), False, MAX_TITLE)
    if "page" in step and (not isinstance(step["page"], str) or step["page"] not in known_pages()):
        problems.append(f"{where}.page: {step['page']!r} is not a page; choose one of {', '.join(known_pages())}")
    highlight = step.get("highlight")
    if highlight is not None and (not isinstance(highlight, str) or highlight not in HIGHLIGHTS):
        problems.append(f"{where}.highlight: {step['highlight']!r} is not a component id of the dashboard")
    book = step.get("book")
    if isinstance(book, str) and book not in DEMO_BOOKS:
        problems.append(f"{where}.book: unknown demo book {book!r}; choose one of {', '.join(DEMO_BOOKS)}")
    elif "book" in step and not isinstance(book, str) and _keys(problems, f"{where}.book", book, {"name", "positions"},
                                                                 "a demo key or a book") \
            and not isinstance(book.get("positions"), list):
        problems.append(f"{where}.book.positions: expected a list of positions")
    market = step.get("market")
    if "market" in step and market != "demo" and not isinstance(market, dict):
        problems.append(f"{where}.market: expected \"demo\", {{\"spot_shock\": fraction}} or a market object")
    for key, allowed in (("account", ACCOUNT_KEYS), ("settings", SETTINGS_KEYS), ("liquidation", LIQ_KEYS),
                         ("exchange", EX_KEYS)):
        if key in step:
            _keys(problems, f"{where}.{key}", step[key], allowed, f"fields of {key}")


def parse(raw) -> dict:
    """The lesson of ``raw`` (JSON text or bytes, or the decoded object), its structure checked:
    title, steps, each step's text, page, highlight and the kinds of its state fields.
    LessonError lists every problem, each naming its field.  The values themselves are checked
    by :func:`resolve`."""
    if isinstance(raw, bytes | bytearray):
        raw = bytes(raw).decode("utf-8-sig", errors="replace")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise LessonError([f"file: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"]) from None
    problems: list[str] = []
    if not _keys(problems, "lesson", raw, LESSON_KEYS, "title, summary, steps"):
        raise LessonError(problems)
    _text(problems, "title", raw.get("title"), True, MAX_TITLE)
    _text(problems, "summary", raw.get("summary"), False, MAX_TEXT)
    steps = raw.get("steps")
    if not isinstance(steps, list) or not steps:
        problems.append("steps: expected a non-empty list of steps")
    elif len(steps) > MAX_STEPS:
        problems.append(f"steps: {len(steps)} steps, at most {MAX_STEPS}")
    else:
        for k, step in enumerate(steps):
            _step_structure(problems, f"steps[{k}]", step)
    if problems:
        raise LessonError(problems)
    return {"title": raw["title"].strip(), "summary": (raw.get("summary") or "").strip(), "steps": steps}


def read_upload(contents: str | None, filename: str | None) -> tuple[dict | None, tuple[str, ...]]:
    """(lesson, problems) of a ``dcc.Upload`` payload: the lesson only when it parses and every
    step resolves; never raises."""
    try:
        raw = state.upload_bytes(contents)
    except ValueError:
        return None, (f"{filename or 'file'}: could not be read as an uploaded file",)
    if len(raw) > MAX_UPLOAD_BYTES:
        return None, (f"{filename}: larger than {MAX_UPLOAD_BYTES / 1e6:g} MB",)
    try:
        lesson = parse(raw)
        resolve(lesson)
    except LessonError as exc:
        return None, exc.problems
    return lesson, ()


# ----------------------------------------------------------------------------- state of each step


def start_state() -> StepState:
    """The app's defaults, where every lesson starts."""
    book, market, settings = state.default_stores()
    return StepState("", "", "/", None, book, market, settings, acct.default_account(),
                     dict(liq.DEFAULT_STRESS), dict(ex.DEFAULT_SETTINGS))


def _market(where: str, spec, previous: dict) -> dict:
    if spec is None:
        return previous
    if spec == "demo":
        return market_to_dict(demo_market())
    if set(spec) == {"spot_shock"}:
        shock = spec["spot_shock"]
        if not (guard.is_number(shock) and -1 < shock <= 10):
            raise LessonError([f"{where}.market.spot_shock: a fraction above −1 (−0.1 = −10 %), got {shock!r}"])
        return market_to_dict(demo_market().with_spot_shock(float(shock)))
    try:
        return market_to_dict(market_from_dict(spec))
    except MarketError as exc:
        raise LessonError([f"{where}.market.{exc}"]) from None


def _book(where: str, spec, previous: dict, market: dict) -> dict:
    if spec is None:
        # The previous book must still be valid on a changed market (e.g. not expired).
        spec = {"name": previous.get("name", ""), "positions": previous["positions"]}
        if previous.get("demo"):  # a demo book carried over stays that demo book (the picker shows it)
            spec = previous["demo"]
    if isinstance(spec, str):
        return state.demo_book_data(spec)
    problems, positions = [], []
    market_obj = state.market_of(market)
    for k, record in enumerate(spec["positions"]):
        if not isinstance(record, dict):
            problems.append(f"{where}.book.positions[{k}]: expected an object with instrument and quantity")
            continue
        errors: list = []
        position = validate_record(record, k, market_obj, errors)
        problems += [f"{where}.book.positions[{k}].{e.field}: {e.message}" for e in errors]
        if position is not None:
            positions.append(position)
    if problems:
        raise LessonError(problems)
    return state.book_data(Book(tuple(positions), str(spec.get("name") or "lesson book")))


def _settings(where: str, spec: dict, previous: dict, book: dict, market: dict) -> dict:
    data = {**previous, **spec}
    problems = []
    spot_pct, vol_pts = _pct(data["spot_range"]), _pct(data["vol_range"])
    if spot_pct is None or not (SPOT_RANGE_PCT[0] <= spot_pct <= SPOT_RANGE_PCT[1]) or spot_pct % SPOT_RANGE_STEP:
        problems.append(f"{where}.settings.spot_range: a multiple of {SPOT_RANGE_STEP / 100:g} from "
                        f"{SPOT_RANGE_PCT[0] / 100:g} to {SPOT_RANGE_PCT[1] / 100:g} (the Stress page's slider)")
    if vol_pts is None or not (VOL_RANGE_PTS[0] <= vol_pts <= VOL_RANGE_PTS[1]) or vol_pts % VOL_RANGE_STEP:
        problems.append(f"{where}.settings.vol_range: a multiple of {VOL_RANGE_STEP / 100:g} from "
                        f"{VOL_RANGE_PTS[0] / 100:g} to {VOL_RANGE_PTS[1] / 100:g} (the Stress page's slider)")
    horizons = data["horizons_days"]
    if not isinstance(horizons, list) or not all(guard.is_number(h) for h in horizons):
        problems.append(f"{where}.settings.horizons_days: a list of days, e.g. [0, 7, 30]")
    if problems:
        raise LessonError(problems)
    outcome = state.settings_from_controls(spot_pct, data["spot_steps"], vol_pts, data["vol_steps"],
                                           horizons_text(horizons), book, market)
    if outcome.data is None:
        raise LessonError([f"{where}.settings: {p}" for p in outcome.problems])
    return outcome.data


def _pct(fraction) -> int | None:
    """A fraction as whole per cent (0.15 -> 15), or None when it is not one."""
    if not guard.is_number(fraction):
        return None
    pct = round(fraction * 100, 6)
    return int(pct) if float(pct).is_integer() else None


def horizons_text(days) -> str:
    """The Stress page's horizons box for a list of days: ``[0, 7.5]`` -> ``'0, 7.5'``."""
    return ", ".join(f"{d:g}" for d in days)


def _account(where: str, spec: dict, previous: dict, book: dict, market: dict, check: bool) -> dict:
    data = dict(previous, params=dict(previous.get("params", {})))
    if "collateral" in spec:
        if not (guard.is_number(spec["collateral"]) and spec["collateral"] >= 0):
            raise LessonError([f"{where}.account.collateral: USD, 0 or more (got {spec['collateral']!r})"])
        data["collateral"] = float(spec["collateral"])
    if "assets" in spec or "denomination" in spec:
        try:
            engine = load_account({"cash": data["collateral"],
                                   "collateral": spec.get("assets", previous.get("assets")) or [],
                                   "denomination": spec.get("denomination", previous.get("denomination", "USD"))})
        except AccountError as exc:
            raise LessonError([f"{where}.account.{exc}"]) from None
        data = acct.with_engine_account(data, engine)
    if "model" in spec:
        if spec["model"] not in MODELS:
            raise LessonError([f"{where}.account.model: unknown margin model {spec['model']!r}; choose one of "
                               f"{', '.join(MODELS)}"])
        data["model"] = spec["model"]
    data = _account_params(where, spec, data)
    if check:
        outcome = acct.checked(data, book, market, "")
        if outcome.data is None:
            raise LessonError([f"{where}.account: {p}" for p in outcome.problems])
    return data


def _account_params(where: str, spec: dict, data: dict) -> dict:
    """``data`` with the step's risk-based preset, then its explicit parameters, each validated."""
    if "preset" in spec:
        try:
            data = acct.with_params(data, "risk_based", default_params("risk_based", spec["preset"]))
        except ValueError as exc:
            raise LessonError([f"{where}.account.preset: {exc}"]) from None
    params = spec.get("params") or {}
    if not isinstance(params, dict):
        raise LessonError([f"{where}.account.params: expected an object {{model: parameters}}"])
    for model, values in params.items():
        try:
            if model not in MODELS:
                raise ValueError(f"unknown margin model {model!r}")
            data = acct.with_params(data, model, params_from_dict(model, values))
        except (ValueError, TypeError, AttributeError) as exc:
            raise LessonError([f"{where}.account.params.{model}: {exc}"]) from None
    return data


def _liquidation(where: str, spec: dict, previous: dict) -> dict:
    data = {**previous, **spec}
    pct = _pct(data["spot_shock"])
    if pct is None or not LIQ_SHOCK_PCT[0] <= pct <= LIQ_SHOCK_PCT[1]:
        raise LessonError([f"{where}.liquidation.spot_shock: a whole per cent from {LIQ_SHOCK_PCT[0] / 100:g} to "
                           f"{LIQ_SHOCK_PCT[1] / 100:g} (the Liquidation page's slider), got {data['spot_shock']!r}"])
    outcome = liq.stress_from_controls(data["mode"], pct, data["collateral"])
    if outcome.data is None:
        raise LessonError([f"{where}.liquidation: {p}" for p in outcome.problems])
    return outcome.data


def _exchange(where: str, spec: dict, previous: dict) -> dict:
    data = {**previous, **spec}
    pct = _pct(data["spot_shock"])
    if pct is None or not EX_SHOCK_PCT[0] <= pct <= EX_SHOCK_PCT[1]:
        raise LessonError([f"{where}.exchange.spot_shock: a whole per cent from {EX_SHOCK_PCT[0] / 100:g} to "
                           f"{EX_SHOCK_PCT[1] / 100:g} (the Exchange page's slider), got {data['spot_shock']!r}"])
    outcome = ex.settings_from_controls(*exchange_controls(dict(data, spot_shock=pct / 100)))
    if outcome.data is None or outcome.problems:
        raise LessonError([f"{where}.exchange: {p}" for p in outcome.problems])
    return outcome.data


def next_state(where: str, step: dict, previous: StepState, check: bool = True) -> StepState:
    """The state after ``step`` (a structurally valid step) from ``previous``; LessonError names
    the field the engine or a store transition refused.  ``check=False`` skips the engine trials
    (for re-deriving a state already checked)."""
    market = _market(where, step.get("market"), previous.market)
    book = _book(where, step.get("book"), previous.book, market) if check or "book" in step else previous.book
    settings = _settings(where, step.get("settings") or {}, previous.settings, book, market) if check \
        else {**previous.settings, **(step.get("settings") or {})}
    return StepState(
        title=step.get("title") or "", text=step["text"], page=step.get("page", previous.page),
        highlight=step.get("highlight"), book=book, market=market, settings=settings,
        account=_account(where, step.get("account") or {}, previous.account, book, market, check),
        liquidation=_liquidation(where, step.get("liquidation") or {}, previous.liquidation),
        exchange=_exchange(where, step.get("exchange") or {}, previous.exchange))


def resolve(lesson: dict, upto: int | None = None, check: bool = True) -> list[StepState]:
    """The state of every step (or of steps 0…``upto``), each from the one before."""
    states, current = [], start_state()
    steps = lesson["steps"] if upto is None else lesson["steps"][:upto + 1]
    for k, step in enumerate(steps):
        current = next_state(f"steps[{k}]", step, current, check)
        states.append(current)
    return states


def step_state(lesson: dict, k: int, check: bool = True) -> StepState:
    """The state step ``k`` sets (clamped to the lesson's steps)."""
    k = max(0, min(int(k), len(lesson["steps"]) - 1))
    return resolve(lesson, k, check)[k]


# ----------------------------------------------------------------------------- page controls


def stress_controls(settings: dict) -> tuple:
    """Stress page controls showing ``settings``: spot range %, spot steps, vol range (vol
    points), vol steps, horizons text."""
    return (_pct(settings["spot_range"]), settings["spot_steps"], _pct(settings["vol_range"]), settings["vol_steps"],
            horizons_text(settings["horizons_days"]))


def liquidation_controls(stress: dict) -> tuple:
    """Liquidation page controls showing a stress store value: mode, shock %, collateral."""
    return stress["mode"], _pct(stress["spot_shock"]), stress["collateral"]


def exchange_controls(settings: dict) -> tuple:
    """Exchange page controls showing a settings store value, in the order of
    ``exchange.settings_from_controls``: accounts, seed, shock %, top N, k, turnover, rounds."""
    return (settings["n_accounts"], settings["seed"], _pct(settings["spot_shock"]), settings["top_n"],
            settings["impact_k"], settings["turnover"], settings["max_rounds"])


def margin_controls(account: dict) -> tuple:
    """Margin page controls showing an account: collateral, model, preset."""
    return account["collateral"], account["model"], acct.preset(account)


# ----------------------------------------------------------------------------- shipped lessons


def shipped() -> dict[str, dict]:
    """The lessons shipped beside this module, by file name (``01_naked_vs_condor``), in order."""
    files = sorted((f for f in resources.files(__package__).iterdir() if f.name.endswith(".json")),
                   key=lambda f: f.name)
    return {f.name[:-len(".json")]: parse(f.read_text(encoding="utf-8")) for f in files}


# ----------------------------------------------------------------------------- writing a lesson


def _demo_key(book: dict) -> str | None:
    content = [(p["instrument"], p["quantity"], p["entry_price"]) for p in book["positions"]]
    for key in DEMO_BOOKS:
        demo = state.book_data(demo_book(key))
        if demo["name"] == book.get("name") and \
                content == [(p["instrument"], p["quantity"], p["entry_price"]) for p in demo["positions"]]:
            return key
    return None


def _account_step(account: dict) -> dict:
    params = dict(account.get("params", {}))
    step = {"collateral": account["collateral"], "model": account["model"]}
    if account.get("assets"):
        step["assets"] = account["assets"]
    if account.get("denomination", "USD") != "USD":
        step["denomination"] = account["denomination"]
    stored = params.get("risk_based")
    name = (stored or {}).get("preset")
    if stored is not None and name in MODELS["risk_based"].presets and \
            stored == params_to_dict(default_params("risk_based", name)):
        step["preset"] = params.pop("risk_based")["preset"]
    if params:
        step["params"] = params
    return step


def capture(text: str, page: str, book: dict, market: dict, settings: dict, account: dict,
            liquidation: dict | None = None, exchange: dict | None = None, highlight: str | None = None,
            title: str = "") -> dict:
    """A step that sets the given stores (the app's current state) and shows ``page``: a demo
    book is written as its key and the demo market as ``"demo"``, so the file stays readable.
    The Liquidation and Exchange settings are left out when not given (never visited)."""
    step: dict[str, Any] = {"title": title.strip()} if title and title.strip() else {}
    step["text"] = text
    step["page"] = page
    if highlight:
        step["highlight"] = highlight
    step["book"] = _demo_key(book) or {"name": book.get("name", ""), "positions": [
        {"instrument": p["instrument"], "quantity": p["quantity"], "entry_price": p["entry_price"]}
        for p in book["positions"]]}
    step["market"] = "demo" if market == market_to_dict(demo_market()) else market
    step["account"] = _account_step(account)
    step["settings"] = {k: settings[k] for k in SETTINGS_KEYS}
    if liquidation:
        step["liquidation"] = {k: liquidation[k] for k in LIQ_KEYS}
    if exchange:
        step["exchange"] = {k: exchange[k] for k in EX_KEYS}
    return step


def new_draft() -> dict:
    return {"title": "My lesson", "summary": "", "steps": []}


def move_step(lesson: dict, k: int, offset: int) -> dict:
    """The lesson with step ``k`` moved by ``offset`` places (clamped at the ends)."""
    steps = list(lesson["steps"])
    if not 0 <= k < len(steps):
        return lesson
    target = max(0, min(len(steps) - 1, k + offset))
    steps.insert(target, steps.pop(k))
    return dict(lesson, steps=steps)


def delete_step(lesson: dict, k: int) -> dict:
    return dict(lesson, steps=[s for j, s in enumerate(lesson["steps"]) if j != k])


def to_json(lesson: dict) -> str:
    """The file text of a lesson (what Download saves and Upload reads back)."""
    return json.dumps({"title": lesson["title"], "summary": lesson.get("summary", ""), "steps": lesson["steps"]},
                      indent=2, ensure_ascii=False) + "\n"
