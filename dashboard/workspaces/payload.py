"""The whole state of a tab as one versioned JSON document: what a workspace, a share snapshot,
a session file and the autosave hold.

Version 2 (current)::

    {"format": "pmdash-workspace", "version": 2,
     "book":     BOOK_STORE value      {"name", "positions": [{"id", "instrument", "quantity", "entry_price"}]}
     "market":   MARKET_STORE value    (engine.market.market_to_dict, docs/methodology.md §11)
     "settings": SETTINGS_STORE value  {"spot_range", "spot_steps", "vol_range", "vol_steps", "horizons_days"}
     "account":  ACCOUNT_STORE value   {"collateral", "model", "params": {model: params_to_dict}}
                                       (+ optional "assets", "denomination": dashboard.stores.account)
     "liquidation": {"stress": LIQ_STRESS_STORE, "params": LIQ_PARAMS_STORE, "path": LIQ_PATH_STORE or null},
     "exchange":    {"settings": EX_SETTINGS_STORE, "upload": EX_UPLOAD_STORE or null}}

Version 1 held the four shell stores only, with book rows without their grid ``id``;
:func:`upgrade` numbers the rows and adds the Liquidation and Exchange pages' defaults.

Nothing read from outside is trusted: :func:`open_document` refuses a file larger than
:data:`MAX_PAYLOAD_BYTES`, one that is not JSON, not this format or from a newer version, and
then rebuilds every part through the same checks the stores' own transitions use
(``engine.portfolio.validate_record`` and the trial analysis of ``state.checked`` for the book,
``market_from_dict``, ``engine.Settings``, ``account.checked``, ``liquidation.settings_of`` …).
Any problem refuses the whole document, naming the part and field: the tab keeps its state.
"""
from __future__ import annotations

import base64
import copy
from dataclasses import dataclass, replace

import orjson
import pandas as pd

from engine.account import AccountError, load_account
from engine.liquidation.replay import validate_path
from engine.margin import MODELS, params_from_dict, params_to_dict
from engine.market import MarketError, market_from_dict, market_to_dict
from engine.portfolio import positions_from_records
from engine.samples import DEMO_BOOKS

from .. import guard, ids
from ..stores import account as account_state
from ..stores import exchange as exchange_state
from ..stores import liquidation as liquidation_state
from ..stores import session as state

FORMAT = "pmdash-workspace"
PAYLOAD_VERSION = 2
#: A document is kept in the browser tab's session storage (about 5 MB per site), next to the
#: undo history: 4 MB leaves room for both.
MAX_PAYLOAD_BYTES = 4_000_000

#: Where each part of a document lives in the browser: (part, sub-part or None) -> store id.
STORES: dict[tuple[str, str | None], str] = {
    ("book", None): ids.BOOK_STORE,
    ("market", None): ids.MARKET_STORE,
    ("settings", None): ids.SETTINGS_STORE,
    ("account", None): ids.ACCOUNT_STORE,
    ("liquidation", "stress"): ids.LIQ_STRESS_STORE,
    ("liquidation", "params"): ids.LIQ_PARAMS_STORE,
    ("liquidation", "path"): ids.LIQ_PATH_STORE,
    ("exchange", "settings"): ids.EX_SETTINGS_STORE,
    ("exchange", "upload"): ids.EX_UPLOAD_STORE,
}
#: The stores that live in the shell (every page has them); the others belong to one page.
SHELL_STORES = (ids.BOOK_STORE, ids.MARKET_STORE, ids.SETTINGS_STORE, ids.ACCOUNT_STORE)
SHELL_PARTS = ("book", "market", "settings", "account")
PAGE_STORES = tuple(s for s in STORES.values() if s not in SHELL_STORES)


class PayloadError(ValueError):
    """A document that cannot be opened; the message says why and names the part."""


@dataclass(frozen=True)
class Opened:
    """A checked document (``None`` when refused) and the problems found."""

    payload: dict | None
    problems: tuple[str, ...] = ()


def default_page_parts() -> dict:
    return {"liquidation": {"stress": dict(liquidation_state.DEFAULT_STRESS),
                            "params": copy.deepcopy(liquidation_state.DEFAULT_PARAMS), "path": None},
            "exchange": {"settings": dict(exchange_state.DEFAULT_SETTINGS), "upload": None}}


def default_payload() -> dict:
    """The demo desk book on the demo market, every setting at its default."""
    book, market, settings = state.default_stores()
    return {"format": FORMAT, "version": PAYLOAD_VERSION, "book": book, "market": market, "settings": settings,
            "account": account_state.default_account(), **default_page_parts()}


def from_stores(values: dict) -> dict:
    """A document from store values ``{store id: value}``; a page store the tab never showed
    (absent or ``None`` where the page's default is not ``None``) takes its default."""
    doc = default_payload()
    for (part, sub), store_id in STORES.items():
        value = values.get(store_id)
        if value is None and (sub is None or doc[part][sub] is not None):
            continue
        if sub is None:
            doc[part] = value
        else:
            doc[part][sub] = value
    return doc


def to_stores(doc: dict) -> dict:
    """``{store id: value}`` of a document."""
    return {store_id: doc[part] if sub is None else doc[part][sub] for (part, sub), store_id in STORES.items()}


def encode(doc: dict) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)


# ----------------------------------------------------------------------------- versions


def _v1_to_v2(doc: dict) -> dict:
    book = dict(doc["book"])
    book["positions"] = [dict(row, id=str(k)) for k, row in enumerate(book.get("positions") or [], start=1)]
    return {**doc, "version": 2, "book": book, **default_page_parts()}


#: version n -> the function that turns a version-n document into version n + 1.
UPGRADES = {1: _v1_to_v2}


def upgrade(doc: dict) -> dict:
    """A document of any earlier version as the current version (structure only; the values
    are checked afterwards by :func:`check`)."""
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise PayloadError(f"version: {version!r} is not a pmdash workspace version")
    if version > PAYLOAD_VERSION:
        raise PayloadError(f"version {version}: made by a newer pmdash (this one reads up to version "
                           f"{PAYLOAD_VERSION}); upgrade pmdash to open it")
    while doc["version"] < PAYLOAD_VERSION:
        try:
            doc = UPGRADES[doc["version"]](doc)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PayloadError(f"version {doc['version']} document is incomplete ({exc!r})") from None
    return doc


# ----------------------------------------------------------------------------- checks


def _book(raw, market: dict, settings: dict) -> dict:
    if not isinstance(raw, dict) or not isinstance(raw.get("positions"), list):
        raise PayloadError("book: expected {\"name\", \"positions\": [...]}")
    name = raw.get("name") or ""
    if not isinstance(name, str):
        raise PayloadError("book.name: expected text")
    result = positions_from_records(raw["positions"], state.market_of(market), name=name)
    if result.errors:
        shown = "; ".join(str(e) for e in result.errors[:5])
        more = f" (and {len(result.errors) - 5} more)" if len(result.errors) > 5 else ""
        raise PayloadError(f"book: {shown}{more}")
    outcome = state.replace_book(result.book, market, settings, "")
    if outcome.data is None:
        raise PayloadError(f"book: {'; '.join(outcome.problems)}")
    # Where the book came from (the demo picker shows it) and whether the user edited it.
    if raw.get("demo") is not None:
        if raw["demo"] not in DEMO_BOOKS:
            raise PayloadError(f"book.demo: {str(raw['demo'])[:40]!r} is not a demo book")
        outcome = replace(outcome, data=dict(outcome.data, demo=raw["demo"]))
    if raw.get("edited") is not None:
        if not isinstance(raw["edited"], bool):
            raise PayloadError("book.edited: expected true or false")
        outcome = replace(outcome, data=dict(outcome.data, edited=raw["edited"]))
    # Keep the grid's row ids when they are usable (whole numbers, unique), else rows 1…N.
    row_ids = [str(r.get("id", "")) for r in raw["positions"]]
    if all(i.isdigit() and len(i) < 10 for i in row_ids) and len(set(row_ids)) == len(row_ids):
        rows = zip(outcome.data["positions"], row_ids, strict=True)
        return dict(outcome.data, positions=[dict(r, id=i) for r, i in rows])
    return outcome.data


def _market(raw) -> dict:
    if not isinstance(raw, dict):
        raise PayloadError("market: expected an object")
    try:
        return market_to_dict(market_from_dict(raw))
    except (MarketError, KeyError, TypeError, ValueError) as exc:
        raise PayloadError(f"market: {exc}") from None


def _settings(raw) -> dict:
    try:
        return state.settings_data(state.settings_of(raw))
    except (KeyError, TypeError, ValueError) as exc:
        raise PayloadError(f"settings: {exc!s}") from None


def _account(raw, book: dict, market: dict) -> dict:
    if not isinstance(raw, dict):
        raise PayloadError("account: expected an object")
    collateral, model, params = raw.get("collateral"), raw.get("model"), raw.get("params", {})
    if not (guard.is_number(collateral) and collateral >= 0):
        raise PayloadError(f"account.collateral: {collateral!r} is not a number of USD ≥ 0")
    if model not in MODELS:
        raise PayloadError(f"account.model: {model!r} is not one of {', '.join(MODELS)}")
    if not isinstance(params, dict) or not set(params) <= set(MODELS):
        raise PayloadError(f"account.params: expected {{model: parameters}} for models among {', '.join(MODELS)}")
    checked_params = {}
    for name, values in params.items():
        try:
            checked_params[name] = params_to_dict(params_from_dict(name, values))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise PayloadError(f"account.params.{name}: {exc}") from None
    data = {"collateral": float(collateral), "model": model, "params": checked_params}
    if "assets" in raw or "denomination" in raw:
        try:
            engine = load_account({"cash": float(collateral), "collateral": raw.get("assets") or [],
                                   "denomination": raw.get("denomination", "USD")})
        except AccountError as exc:
            raise PayloadError(f"account.{exc}") from None
        data = account_state.with_engine_account(data, engine)
    outcome = account_state.checked(data, book, market, "")
    if outcome.data is None:
        raise PayloadError(f"account: {'; '.join(outcome.problems)}")
    return outcome.data


def _liquidation(raw) -> dict:
    if not isinstance(raw, dict):
        raise PayloadError("liquidation: expected an object")
    stress, params, path = raw.get("stress"), raw.get("params"), raw.get("path")
    if not isinstance(stress, dict):
        raise PayloadError("liquidation.stress: expected an object")
    shock = stress.get("spot_shock")
    outcome = liquidation_state.stress_from_controls(str(stress.get("mode")),
                                                     float(shock) * 100 if guard.is_number(shock) else None,
                                                     stress.get("collateral"))
    if outcome.data is None or not guard.is_number(shock):
        raise PayloadError(f"liquidation.stress: {'; '.join(outcome.problems) or 'spot_shock must be a number'}")
    if not isinstance(params, dict) or set(params) != set(liquidation_state.SECTIONS):
        raise PayloadError(f"liquidation.params: expected the sections {', '.join(liquidation_state.SECTIONS)}")
    try:
        liquidation_state.settings_of(params)
    except (ValueError, TypeError, KeyError) as exc:
        raise PayloadError(f"liquidation.params: {exc}") from None
    if path is not None:
        try:
            checked_path = validate_path(pd.DataFrame({"hours": path["hours"], "spot_shock": path["spot_shock"]}))
        except (ValueError, TypeError, KeyError) as exc:
            raise PayloadError(f"liquidation.path: {exc}") from None
        path = {"filename": str(path.get("filename") or "path.csv"), "hours": checked_path["hours"].tolist(),
                "spot_shock": checked_path["spot_shock"].tolist()}
    return {"stress": outcome.data, "params": copy.deepcopy(params), "path": path}


def _exchange(raw, market: dict) -> dict:
    if not isinstance(raw, dict) or not isinstance(raw.get("settings"), dict):
        raise PayloadError("exchange: expected {\"settings\": {...}, \"upload\": ...}")
    s = raw["settings"]
    shock = s.get("spot_shock")
    outcome = exchange_state.settings_from_controls(
        s.get("n_accounts"), s.get("seed"), float(shock) * 100 if guard.is_number(shock) else None, s.get("top_n"),
        s.get("impact_k"), s.get("turnover"), s.get("max_rounds"))
    if outcome.data is None or outcome.problems or not guard.is_number(shock):
        raise PayloadError(f"exchange.settings: {'; '.join(outcome.problems) or 'spot_shock must be a number'}")
    upload = raw.get("upload")
    if upload is not None:
        text = upload.get("text") if isinstance(upload, dict) else None
        if not isinstance(text, str):
            raise PayloadError("exchange.upload: expected {\"filename\", \"text\": accounts CSV}")
        contents = "data:text/csv;base64," + base64.b64encode(text.encode()).decode()
        upload, errors = exchange_state.read_upload(contents, str(upload.get("filename") or "accounts.csv"), market)
        if upload is None:
            raise PayloadError("exchange.upload: " + "; ".join(f"row {e['row']}, {e['field']}: {e['message']}"
                                                                 for e in errors[:5]))
    return {"settings": outcome.data, "upload": upload}


def check(doc: dict) -> dict:
    """The document rebuilt part by part through the stores' own checks (current version);
    PayloadError naming the part at the first problem."""
    market = _market(doc.get("market"))
    settings = _settings(doc.get("settings"))
    book = _book(doc.get("book"), market, settings)
    return {"format": FORMAT, "version": PAYLOAD_VERSION, "book": book, "market": market, "settings": settings,
            "account": _account(doc.get("account"), book, market),
            "liquidation": _liquidation(doc.get("liquidation")),
            "exchange": _exchange(doc.get("exchange"), market)}


def open_document(raw: bytes | str, source: str = "the file") -> Opened:
    """Parse, upgrade and check a document from outside (a session file, a database row, a
    share snapshot); never raises on bad input."""
    size = len(raw)
    if size > MAX_PAYLOAD_BYTES:
        return Opened(None, (f"{source} is {size / 1e6:.1f} MB, more than the {MAX_PAYLOAD_BYTES / 1e6:g} MB "
                             "a workspace may hold: nothing was opened",))
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Opened(None, (f"{source} is not JSON ({exc}): nothing was opened",))
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        return Opened(None, (f"{source} is not a pmdash workspace (no \"format\": \"{FORMAT}\"): nothing was opened",))
    try:
        return Opened(check(upgrade(doc)))
    except PayloadError as exc:
        return Opened(None, (f"{source}: {exc} — nothing was opened",))
