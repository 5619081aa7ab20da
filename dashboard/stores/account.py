"""The account around the book: collateral, the selected margin model and its parameters.

Per-user state in one more ``dcc.Store`` (``ids.ACCOUNT_STORE``, session storage), JSON::

    {"collateral": 2000000.0,          # USD cash (the engine account's ``cash``)
     "assets": [{"asset": "BTC", "amount": 2.3, "underlying": "BTC", "im_haircut": 0.05,
                 "mm_haircut": 0.25, "risk_cancelling": false, "confidence": 1.0}],
                                       # collateral assets (engine.account JSON ``collateral``)
     "denomination": "USD",            # or "BTC"/"ETH": a coin-margined account
     "model": "risk_based",            # one of engine.margin.MODELS
     "params": {"risk_based": {...}}}  # engine.margin.params_to_dict of each model the user
                                       # edited; a model not listed uses its published defaults

``assets`` and ``denomination`` are optional: an old store (USD ``collateral`` only) is a USD
account with that cash and no collateral assets.  :func:`engine_account` turns a store into the
engine's :class:`~engine.account.Account`; every engine call passes it (and the venue feeds of
the market store, :func:`feeds`), never just a USD number.

The Margin page writes it; the health strip, the Margin page and the Liquidation page read it.
Every engine call here is memoised by content in the app's flask-caching cache (``state``), so
the strip on every page and the pages themselves share one computation per state.

The transitions below work like ``state``'s: each returns a ``state.Outcome`` whose ``data`` is
the new account, or ``None`` (keep the current one) with the engine's message when the change is
refused, so a bad parameter never reaches the store and every page keeps its last good result.

The header's account-health strip (:func:`health_strip`, in ``layout.HEADER_STRIPS``) lives here
too: it is the account's summary on every page.
"""
from __future__ import annotations

import json
import logging
import math

from engine.account import (
    Account,
    VenueFeeds,
    account_to_dict,
    collateral_values,
    feeds_from_market_dict,
    load_account,
)
from engine.margin import MODELS, compute_all, default_params, params_from_dict, params_to_dict
from engine.margin.account import AccountHealth, AccountModel, account_health, account_model, account_requirement
from engine.margin.whatif import HedgePlan, WhatIf, optimal_hedge, what_if
from engine.portfolio import Book, validate_record
from engine.samples import demo_book

from .. import guard
from ..format import usd
from . import session as state

log = logging.getLogger(__name__)

DEFAULT_COLLATERAL = 2_000_000.0
DEFAULT_MODEL = "risk_based"
#: The preset ``default_params("risk_based")`` returns.
DEFAULT_PRESET = default_params("risk_based").preset
#: A new scenario row of the risk-based editor: no move, vol unchanged, full weight.
NEW_SCENARIO = {"spot": 0.0, "vol": "none", "weight": 1.0}
#: Fields of a params dict that have their own editor (the preset choice, the scenario table).
OWN_EDITOR = ("preset", "scenarios")


def default_account() -> dict:
    return {"collateral": DEFAULT_COLLATERAL, "model": DEFAULT_MODEL, "params": {}}


def engine_account(account: dict) -> Account:
    """The engine account of a store value (raises AccountError naming the field)."""
    return load_account({"cash": account["collateral"], "collateral": account.get("assets") or [],
                         "denomination": account.get("denomination", "USD")})


def with_engine_account(account: dict, engine: Account) -> dict:
    """A store value holding ``engine`` (cash, assets, denomination) with the rest of ``account``."""
    data = account_to_dict(engine)
    return dict(account, collateral=data["cash"], assets=data["collateral"], denomination=data["denomination"])


def account_key(account: dict) -> list:
    """The part of a store value the account's figures depend on (memo keys)."""
    return [account["collateral"], account.get("assets") or [], account.get("denomination", "USD")]


def collateral_usd(market: dict, account: dict, spot_shock: float = 0.0) -> float:
    """Cash + every collateral asset's value (USD) with every spot × (1 + ``spot_shock``): coin
    collateral falls with its coin."""
    engine = engine_account(account)
    if not engine.collateral:
        return engine.cash
    unds = market.get("underlyings", {})
    values = collateral_values(engine, list(unds), [u["spot"] for u in unds.values()], feeds(market), spot_shock)
    return engine.cash + values.total


def currency_of(market: dict, account: dict) -> tuple[str, float]:
    """(denomination, its spot in USD per coin; 1 for USD) of the account on the market."""
    denomination = account.get("denomination", "USD")
    if denomination == "USD":
        return "USD", 1.0
    return denomination, float(market["underlyings"][denomination]["spot"])


def feeds(market: dict) -> VenueFeeds:
    """The venue feed fields (confidences, stable price, perp mark) of a market store value."""
    return feeds_from_market_dict(market)


def model_params(account: dict, model: str | None = None):
    """Params object of ``model`` (default: the selected one); raises ValueError if invalid."""
    model = model or account["model"]
    stored = account.get("params", {}).get(model)
    return default_params(model) if stored is None else params_from_dict(model, stored)


def preset(account: dict) -> str:
    """The published preset the risk-based parameters start from."""
    stored = account.get("params", {}).get("risk_based") or {}
    name = stored.get("preset", DEFAULT_PRESET)
    return name if name in MODELS["risk_based"].presets else DEFAULT_PRESET


def published_params(account: dict, model: str):
    """The published defaults of ``model`` (risk-based: of the account's preset)."""
    return default_params(model, preset(account) if MODELS[model].presets else None)


def with_params(account: dict, model: str, params) -> dict:
    """A new account value with ``params`` (validated) stored for ``model``."""
    checked_params = params_from_dict(model, params_to_dict(params))
    return dict(account, params={**account.get("params", {}), model: params_to_dict(checked_params)})


# ----------------------------------------------------------------------------- engine calls


def margins(book: dict, market: dict, account: dict) -> dict:
    """All models side by side on the book: {model: MarginResult} (in the account's denomination)."""
    guard.check_account(account)
    params_json = account.get("params", {})

    def run():
        params = {m: model_params(account, m) for m in MODELS}
        book_obj = state.book_of(book)
        return compute_all(book_obj, state.market_of(market), params=params,
                           arrays=state.instruments_of(book_obj, market), account=engine_account(account),
                           feeds=feeds(market))

    return state.memoise("margins", [book, market, params_json, *account_key(account)], run)


def _prepared(book_obj: Book, market: dict, account: dict) -> AccountModel:
    """The selected model prepared on the book's instruments with the account
    (``engine.margin.account.account_model``), memoised by the instrument names, the market and
    the account: an edit of quantities or entry prices reuses it."""
    model = account["model"]
    return state.memoise(
        "account-model", [state.instrument_key(book_obj), market, *account_key(account), model,
                          account.get("params", {}).get(model)],
        lambda: account_model(book_obj, state.market_of(market), engine_account(account), model,
                              model_params(account, model), arrays=state.instruments_of(book_obj, market),
                              feeds=feeds(market)).warmed())


def _account_call(function, book: dict, market: dict, account: dict):
    """``function`` (account_health or account_requirement) of the selected model on the
    prepared account."""
    book_obj = state.book_of(book)
    model = account["model"]
    return function(book_obj, state.market_of(market), engine_account(account), model, model_params(account, model),
                    feeds=feeds(market), prepared=_prepared(book_obj, market, account))


def health(book: dict, market: dict, account: dict) -> AccountHealth:
    """Equity, IM, MM, ratio and liquidation prices for the selected model."""
    guard.check_account(account)
    model = account["model"]
    return state.memoise("health", [book, market, *account_key(account), model, account.get("params", {}).get(model)],
                         lambda: _account_call(account_health, book, market, account))


def headline(book: dict, market: dict, account: dict) -> tuple[float, float, float]:
    """(equity, IM, MM) of the selected model, USD: what :func:`health` reports, without its
    search for liquidation prices, so that the header follows an edit at once."""
    guard.check_account(account)
    model = account["model"]
    return state.memoise("headline", [book, market, *account_key(account), model,
                                      account.get("params", {}).get(model)],
                         lambda: _account_call(account_requirement, book, market, account))


def hedge(book: dict, market: dict, account: dict) -> HedgePlan:
    """The perpetual per underlying that minimises the selected model's IM (``optimal_hedge``)."""
    guard.check_account(account)
    model = account["model"]

    def run():
        return optimal_hedge(state.book_of(book), state.market_of(market), model, model_params(account, model))

    return state.memoise("hedge", [book, market, model, account.get("params", {}).get(model)], run)


def trial_trade(book: dict, market: dict, account: dict, instrument, quantity) -> tuple[WhatIf | None, tuple[str, ...]]:
    """(IM/MM before and after adding ``quantity`` of ``instrument``, problems): the trade is
    checked like a new book row (name, underlying with market data, not expired, non-zero)."""
    errors = []
    market_obj = state.market_of(market)
    position = validate_record({"instrument": instrument, "quantity": quantity}, 1, market_obj, errors)
    if position is None:
        return None, tuple(f"{e.field}: {e.message}" for e in errors)
    model = account["model"]
    return what_if(state.book_of(book), market_obj, [position], model, model_params(account, model)), ()


#: Demo books that show the point of portfolio margin (explained on the Margin page).
EXAMPLE_BOOKS = ("naked_short_strangle", "short_iron_condor", "delta_hedged_long_straddle", "covered_call")


def examples(market: dict, account: dict) -> list[dict]:
    """Standard and selected-model IM of the :data:`EXAMPLE_BOOKS` on the current market."""
    guard.check_account(account), guard.check_market(market)
    model = account["model"]

    def run():
        params = {model: model_params(account, model)}
        rows = []
        for key in EXAMPLE_BOOKS:
            book = demo_book(key)
            results = compute_all(book, state.market_of(market), ["standard", model], params)
            rows.append({"book": book.name, "standard": results["standard"].initial,
                         "model": results[model].initial})
        return rows

    return state.memoise("margin-examples", [market, model, account.get("params", {}).get(model)], run)


# ----------------------------------------------------------------------------- transitions


def checked(data: dict, book: dict, market: dict, note: str) -> state.Outcome:
    """Commit the account ``data`` only if every model and the health of the selected one
    compute on the current book (the trial also warms the cache for the next render)."""
    try:
        margins(book, market, data)
        health(book, market, data)
    except Exception as exc:  # the UI boundary: report any engine failure, keep the last good state
        log.exception("margin computation failed")
        return state.Outcome(None, (f"the engine refused the change, nothing was applied: {exc}",))
    return state.Outcome(data, (), note)


def set_collateral(account: dict, book: dict, market: dict, value) -> state.Outcome:
    """Collateral in USD from the text box (thousands separators allowed)."""
    try:
        amount = float(str(value).replace(",", "").replace("$", "").strip())
    except ValueError:
        amount = math.nan
    if not (math.isfinite(amount) and amount >= 0):
        return state.Outcome(None, (f"collateral must be a number of USD, 0 or more (got {value!r}); "
                                    "the last good value is kept",))
    if amount == account["collateral"]:
        return state.Outcome(None)
    return checked(dict(account, collateral=amount), book, market, f"collateral set to {usd(amount)}")


def select_model(account: dict, book: dict, market: dict, model: str) -> state.Outcome:
    if model not in MODELS:
        return state.Outcome(None, (f"unknown margin model {model!r}",))
    if model == account["model"]:
        return state.Outcome(None)
    return checked(dict(account, model=model), book, market, f"margin model: {MODELS[model].title}")


def select_preset(account: dict, book: dict, market: dict, name: str) -> state.Outcome:
    """Load a risk-based preset's published parameters (replacing any edits of them)."""
    if name == preset(account):
        return state.Outcome(None)
    try:
        params = default_params("risk_based", name)
    except ValueError as exc:
        return state.Outcome(None, (str(exc),))
    return checked(with_params(account, "risk_based", params), book, market,
                   f"risk-based preset {name}: published parameters loaded")


def reset_params(account: dict, book: dict, market: dict, model: str) -> state.Outcome:
    """Back to the published defaults of ``model`` (risk-based: of its current preset)."""
    others = {k: v for k, v in account.get("params", {}).items() if k != model}
    data = dict(account, params=others)
    if MODELS[model].presets and preset(account) != DEFAULT_PRESET:
        data = with_params(data, model, published_params(account, model))
    return checked(data, book, market, f"{MODELS[model].title}: published defaults restored")


def _flatten(data: dict, prefix: str = ""):
    for key, value in data.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        elif prefix or key not in OWN_EDITOR:
            yield f"{prefix}{key}", value


def _cell(value):
    """Grid text of a parameter: lists as JSON (``[-0.1, 0.1]``), numbers as they are."""
    return json.dumps(value) if isinstance(value, list) else value


def param_rows(account: dict, model: str) -> list[dict]:
    """Rows of the parameter grid of ``model``: id (dotted path, e.g. ``vol_shock.range_up``),
    value and published default; lists are JSON text."""
    published = dict(_flatten(params_to_dict(published_params(account, model))))
    return [{"id": path, "value": _cell(value), "default": _cell(published[path])}
            for path, value in _flatten(params_to_dict(model_params(account, model)))]


def scenario_rows(account: dict) -> list[dict]:
    """Rows of the risk-based scenario grid: id (position in the list), spot, vol, weight."""
    return [dict(s, id=str(k)) for k, s in enumerate(params_to_dict(model_params(account, "risk_based"))["scenarios"])]


def _as_float(name: str, value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number (got {value!r})") from None


def parse_value(name: str, value, like):
    """A grid cell as the type of the parameter's current value ``like``: a list (JSON text), an
    integer or a float.  Only the type is checked here; ranges are the engine's."""
    if isinstance(like, list):
        try:
            parsed = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, list):
            raise ValueError(f"{name} must be a list like {json.dumps(like)} (got {value!r})")
        return parsed
    number = _as_float(name, value)
    return int(number) if isinstance(like, int) and number.is_integer() else number


def _store_params(account: dict, book: dict, market: dict, model: str, data: dict, note: str) -> state.Outcome:
    try:
        params = params_from_dict(model, data)
    except ValueError as exc:
        return state.Outcome(None, (f"{exc} — nothing was changed",))
    return checked(with_params(account, model, params), book, market, note)


def set_param(account: dict, book: dict, market: dict, model: str, path: str, value) -> state.Outcome:
    """Set one parameter (dotted ``path`` of :func:`param_rows`) from a grid cell."""
    data = params_to_dict(model_params(account, model))
    *parents, leaf = path.split(".")
    target = data
    for key in parents:
        target = target.get(key, {})
    if leaf not in target:
        return state.Outcome(None, (f"{model}: unknown parameter {path}",))
    try:
        target[leaf] = parse_value(path, value, target[leaf])
    except ValueError as exc:
        return state.Outcome(None, (f"{model} parameters: {exc} — nothing was changed",))
    return _store_params(account, book, market, model, data, f"{path} = {_cell(target[leaf])}")


def set_params(account: dict, book: dict, market: dict, model: str, changes: list[dict]) -> state.Outcome:
    """Apply parameter-grid edits (``cellValueChanged``: rowId = dotted path, value), all or
    nothing."""
    current, notes = account, []
    for change in changes:
        outcome = set_param(current, book, market, model, str(change.get("rowId")), state.edited_value(change))
        if outcome.data is None:
            return outcome
        current, notes = outcome.data, notes + [outcome.note]
    return state.Outcome(current, (), "; ".join(notes))


SCENARIO_FIELDS = {"spot": "spot shock", "weight": "weight"}


def set_scenarios(account: dict, book: dict, market: dict, scenarios: list[dict], note: str) -> state.Outcome:
    data = params_to_dict(model_params(account, "risk_based"))
    return _store_params(account, book, market, "risk_based", dict(data, scenarios=scenarios), note)


def edit_scenarios(account: dict, book: dict, market: dict, changes: list[dict]) -> state.Outcome:
    """Apply scenario-grid edits (``cellValueChanged``: rowId = list position, colId, value);
    numbers are parsed here, everything else is the engine's check."""
    scenarios = [dict(s) for s in params_to_dict(model_params(account, "risk_based"))["scenarios"]]
    for change in changes:
        k, field, value = int(change["rowId"]), change["colId"], state.edited_value(change)
        if field in SCENARIO_FIELDS:
            try:
                value = _as_float(f"scenario {k + 1} {SCENARIO_FIELDS[field]}", value)
            except ValueError as exc:
                return state.Outcome(None, (f"risk_based parameters: {exc} — nothing was changed",))
        scenarios[k][field] = value
    return set_scenarios(account, book, market, scenarios, f"{len(changes)} scenario edit(s) applied")


def add_scenario(account: dict, book: dict, market: dict) -> state.Outcome:
    scenarios = params_to_dict(model_params(account, "risk_based"))["scenarios"] + [dict(NEW_SCENARIO)]
    return set_scenarios(account, book, market, scenarios, "scenario added (no move, vol unchanged): edit it")


def delete_scenarios(account: dict, book: dict, market: dict, row_ids) -> state.Outcome:
    doomed = {int(i) for i in row_ids or ()}
    if not doomed:
        return state.Outcome(None, ("select the scenarios to delete first (tick their boxes)",))
    scenarios = [s for k, s in enumerate(params_to_dict(model_params(account, "risk_based"))["scenarios"])
                 if k not in doomed]
    return set_scenarios(account, book, market, scenarios, f"deleted {len(doomed)} scenario(s)")


def add_hedge(book: dict, market: dict, settings: dict, account: dict) -> state.Outcome:
    """Add the optimal hedge's trades to the book, each through ``state.add_position`` (so they
    are validated like any new row); the book is unchanged unless all are accepted."""
    plan = hedge(book, market, account)
    if not plan.trades:
        return state.Outcome(None, ("no hedge lowers the initial margin of this book: nothing to add",))
    data = book
    for trade in plan.trades:
        outcome = state.add_position(data, market, settings, trade.name, trade.quantity, None)
        if outcome.data is None:
            return outcome
        data = outcome.data
    trades = ", ".join(f"{t.name} × {t.quantity:,.4f}" for t in plan.trades)
    return state.Outcome(data, (), f"added {trades}: IM {usd(plan.initial_before)} → {usd(plan.initial_after)}")
