"""Margin models (docs/methodology.md §6): one entry point, five models, the same result type.

    compute(book, market, model, params=None, *, arrays=None, account=None, feeds=None) -> MarginResult
    margin_model(model, params=None) -> MarginModel (a model resolved with validated params)
    compute_all(book, market, models=None, params=None, *, arrays=None, account=None, feeds=None)
    default_params(model, preset=None) -> frozen params dataclass (published defaults)
    summary(results) -> DataFrame: model, initial, maintenance, capital_efficiency

``model`` is a name with its ``params`` or a resolved :class:`MarginModel`, everywhere the
engine takes a margin model.  Each :class:`ModelSpec` carries the model's titles, source and
params type, whose fields carry unit, description and range (:mod:`.params`); a result's
``waterfall`` builds its IM up step by step (:mod:`.waterfall`).

Models (``MODELS``): ``standard`` (Deribit standard, per position), ``risk_based`` (scenario
engine; presets deribit, derive, okx, paradex as data; docs/venues.md), ``span`` (SPAN-style, CME
method), ``tims`` (OCC TIMS / Rule 4210), ``greeks_based`` (SIMM-style).  Each module's docstring
states its source, formula and parameters.  Capital efficiency = standard IM ÷ model IM.

``account`` (:mod:`engine.account`: cash, collateral, denomination) adds collateral haircuts to
every model and, in ``risk_based``, risk-cancelling collateral in the scenarios, the venue feeds'
contingencies and coin measurement; ``result.currency`` names the unit.

Account health, liquidation prices (:mod:`.account`), what-if and optimal hedges
(:mod:`.whatif`) and the exchange-wide account margins (:func:`.risk_based.account_margins`)
use the same prepared models.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
import pandas as pd

from ..account import Account, AccountError, CollateralValues, VenueFeeds, collateral_values, load_account
from ..instruments import parse_instrument
from ..market import Market
from ..portfolio import Book
from ..scenarios import InstrumentArrays
from . import greeks_based, risk_based, span, standard, tims
from .core import Kernel, MarginBook, Universe, margin_book
from .params import from_dict
from .result import MarginResult, build_result, scale_to_total


@dataclass(frozen=True)
class ModelSpec:
    """A margin model: what it is called, where its defaults come from, its params type, default
    params and kernel factory.  The dashboard's model tables derive from these fields and from
    :func:`~.params.describe` of ``params_type``.

    ``short_name``: for axes and tables; ``title``: for menus; ``source``: where the defaults of
    a model without presets come from (one or two sentences for the UI); ``no_grid``: why the
    model has no scenario grid (empty when it has one).
    """

    name: str
    title: str
    short_name: str
    params_type: type[Any]
    defaults: Callable[[str | None], Any]
    prepare: Callable[..., Kernel]
    presets: tuple[str, ...] = ()
    source: str = ""
    no_grid: str = ""
    #: prepare takes the account context (collateral moving with spot, venue feeds, coin units)
    venue_aware: bool = False

    def resolve(self, params: Any = None) -> Any:
        """``params`` (None: the defaults) checked for type and validated (ValueError)."""
        params = self.defaults(None) if params is None else params
        if not isinstance(params, self.params_type):
            raise ValueError(f"{self.name} takes {self.params_type.__name__}, got {type(params).__name__}")
        try:
            hash(params)
        except TypeError:  # a list or dict inside: validated every time
            return self._validate(params)
        return _validated(self, params)

    def _validate(self, params: Any) -> Any:
        try:
            params.validate()
        except TypeError:  # a check compared a non-number: name the fields that are text
            text = [f"{f.name} must be a number (got {getattr(params, f.name)!r})" for f in fields(params)
                    if isinstance(getattr(params, f.name), str) and f.name != "preset"]
            raise ValueError(f"{self.name} parameters: " + ("; ".join(text) or "values must be numbers")) from None
        return params

    def label(self, params=None) -> str:
        """Short name, with the preset of a model that has presets (``Risk-based (okx)``)."""
        preset = getattr(params, "preset", None)
        return f"{self.short_name} ({preset})" if preset else self.short_name


@functools.lru_cache(maxsize=256)
def _validated(spec: ModelSpec, params: Any) -> Any:
    """Frozen params validated once: every edit of a book resolves the same parameters again."""
    return spec._validate(params)


def _no_preset_defaults(model: str, cls: type, preset: str | None):
    if preset is not None:
        raise ValueError(f"{model} has no presets (got {preset!r})")
    return cls()


def _no_presets(model: str, cls: type):
    # A partial of a module function, not a closure: a resolved model pickles (shared caches).
    return functools.partial(_no_preset_defaults, model, cls)


def _risk_based_defaults(preset: str | None):
    return risk_based.load_preset(preset or "deribit")


MODELS: dict[str, ModelSpec] = {s.name: s for s in (
    ModelSpec("standard", "Standard margin (Deribit, per position)", "Standard", standard.StandardParams,
              _no_presets("standard", standard.StandardParams), standard.prepare,
              source="Deribit standard margin for linear options and futures, base tier: each position on its own.",
              no_grid="Standard margin has no scenarios: it charges every position on its own by formula "
                      "(short options a % of spot plus the mark, futures a % of notional)."),
    ModelSpec("risk_based", "Risk-based portfolio margin", "Risk-based", risk_based.RiskBasedParams,
              _risk_based_defaults, risk_based.prepare,
              risk_based.preset_names(),
              source="Each venue's published parameters, one preset per venue (the preset names its source; "
                     "docs/venues.md).", venue_aware=True),
    ModelSpec("span", "SPAN-style (CME method)", "SPAN-style", span.SpanParams, _no_presets("span", span.SpanParams),
              span.prepare,
              source="CME SPAN's structure (16 scenarios, extreme moves at 35 %; McMillan ch. 34). Scan ranges, "
                     "spread rate and minimum are illustrative for BTC/ETH: CME publishes them per product daily."),
    ModelSpec("tims", "OCC TIMS / Rule 4210", "TIMS", tims.TimsParams, _no_presets("tims", tims.TimsParams),
              tims.prepare,
              source="OCC TIMS / FINRA Rule 4210(g): 10 valuation points over ±15 %. The ±10 vol-point shifts are "
                     "this engine's choice; the $0.375 minimum per contract is not checked against the rule text."),
    ModelSpec("greeks_based", "SIMM-style", "SIMM-style", greeks_based.SimmParams,
              _no_presets("greeks_based", greeks_based.SimmParams), greeks_based.prepare,
              source="ISDA SIMM equity parameters (residual risk weight 33 % for 10 days, vega 0.45, HVR "
                     "0.60); crypto has no SIMM bucket, so each underlying is its own.",
              no_grid="The SIMM-style model has no scenarios: it aggregates delta, vega and curvature "
                      "sensitivities with risk weights and correlations."),
)}


def model_spec(model: str) -> ModelSpec:
    try:
        return MODELS[model]
    except (KeyError, TypeError):
        raise ValueError(f"unknown margin model {model!r}; choose one of {', '.join(MODELS)}") from None


@dataclass(frozen=True)
class MarginModel:
    """A margin model with its validated parameters: the value engine functions take instead of
    a ``(model name, params)`` pair, so that parameters are resolved and validated once.

    ``MarginModel(spec, params)`` validates ``params`` (None: the published defaults);
    :func:`margin_model` builds one from a name.
    """

    spec: ModelSpec
    params: Any = None

    def __post_init__(self):
        object.__setattr__(self, "params", self.spec.resolve(self.params))

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def label(self) -> str:
        return self.spec.label(self.params)

    def prepare(self, universe: Universe) -> Kernel:
        """The model's kernel on ``universe``'s instruments."""
        return self.spec.prepare(universe, self.params)


def margin_model(model: str | MarginModel, params=None) -> MarginModel:
    """``model`` resolved: a model name with its ``params`` (None: defaults), validated; an
    already resolved :class:`MarginModel` is returned as it is (``params`` must then be None)."""
    if isinstance(model, MarginModel):
        if params is not None:
            raise ValueError("params are given with a model name, not with a resolved MarginModel")
        return model
    return MarginModel(model_spec(model), params)


def default_params(model: str, preset: str | None = None):
    """The published default parameters of ``model`` (for risk_based: of ``preset``,
    default "deribit")."""
    return model_spec(model).defaults(preset)


def params_to_dict(params) -> dict:
    """JSON-ready dict of a params dataclass (tuples become lists); :func:`params_from_dict`
    reads it back."""
    if isinstance(params, risk_based.RiskBasedParams):
        return params.to_dict()
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(params).items()}


def params_from_dict(model: str, data: dict):
    """The params of ``model`` from :func:`params_to_dict`'s output, validated.

    Every bad input is a ValueError naming the field: an unknown field, a wrong shape (a list
    where a number belongs, a number where a list belongs, not an object at all) or a bad value.
    """
    spec = model_spec(model)
    if not isinstance(data, dict):
        raise ValueError(f"{model} parameters: expected an object of name: value (got {data!r:.60})")
    if spec.params_type is risk_based.RiskBasedParams:
        try:
            params = risk_based.params_from_dict(data, data.get("preset", "custom"))
        except (TypeError, AttributeError) as exc:  # a wrong shape inside the nested groups
            raise ValueError(f"{model} parameters: {exc}") from None
    else:
        params = from_dict(spec.params_type, data, model)
    return spec.resolve(params)


@dataclass(frozen=True)
class AccountBook:
    """A book with its account on one universe: the vectorised book, the account, the feeds,
    the collateral values (cash units) and the risk-based context."""

    mb: MarginBook
    account: Account
    feeds: VenueFeeds
    collateral: CollateralValues
    context: risk_based.MarginContext

    def kernel(self, spec: ModelSpec, params, universe: Universe | None = None) -> Kernel:
        uni = self.mb.universe if universe is None else universe
        return spec.prepare(uni, params, self.context) if spec.venue_aware else spec.prepare(uni, params)

    def charges(self, params) -> tuple[float, float]:
        """(IM, MM) collateral charges in the result's currency."""
        im, mm = risk_based.collateral_charges(self.account, self.collateral, params)
        return im * self.context.usd_scale, mm * self.context.usd_scale


def account_book(book: Book, market: Market, account=None, feeds: VenueFeeds | None = None,
                 arrays: InstrumentArrays | None = None) -> AccountBook:
    """Vectorise ``book`` with ``account`` (an :class:`~engine.account.Account`, its JSON dict, an
    old store's USD number or None: no collateral).  An underlying that only collateral refers to
    joins the universe (at zero quantity) so its risk-cancelling value has scenarios."""
    account = Account() if account is None else load_account(account)
    feeds = feeds or VenueFeeds()
    extra = tuple(dict.fromkeys(
        parse_instrument(c.underlying) for c in account.collateral
        if c.underlying is not None and c.underlying in market.underlyings and c.underlying not in book.underlyings))
    if account.is_coin_margined and account.denomination in market.underlyings \
            and account.denomination not in book.underlyings:
        extra += (parse_instrument(account.denomination),)
    reuse = arrays is not None and (not extra or set(extra) <= set(arrays.instruments))
    mb = margin_book(book, market, arrays if reuse else None, extra_instruments=extra)
    uni = mb.universe
    for k, c in enumerate(account.collateral):
        if c.price is None and c.underlying not in uni.arrays.underlyings:
            raise AccountError(f"collateral[{k}].underlying: no market data for {c.underlying!r}")
    values = collateral_values(account, uni.arrays.underlyings, uni.und_spot, feeds)
    return AccountBook(mb, account, feeds, values, risk_based.margin_context(uni, account, feeds, values))


def _scaled(r: MarginResult, scale: float) -> MarginResult:
    """Every amount of ``r`` × ``scale`` (USD → the account's coin)."""
    def frame(df, columns):
        out = df.copy()
        cols = [c for c in columns if c in out.columns]
        out[cols] = out[cols] * scale
        return out

    return replace(r, initial=r.initial * scale, maintenance=r.maintenance * scale,
                   components={k: v * scale for k, v in r.components.items()},
                   details={k: v * scale for k, v in r.details.items()},
                   scenario_pnl=frame(r.scenario_pnl, ("pnl", "weighted_pnl")),
                   attribution=replace(r.attribution, scale=r.attribution.scale * scale),
                   by_underlying=frame(r.by_underlying, [c for c in r.by_underlying.columns if c != "underlying"]))


def _result(model: MarginModel, ab: AccountBook) -> MarginResult:
    spec, params = model.spec, model.params
    r = build_result(spec.name, params, ab.kernel(spec, params), ab.mb)
    scale = 1.0 if spec.venue_aware else ab.context.usd_scale
    im_c, mm_c = ab.charges(params)
    if scale != 1.0:
        r = _scaled(r, scale)
    return replace(r, initial=r.initial + im_c, maintenance=r.maintenance + mm_c,
                   details=dict(r.details, collateral_initial=im_c, collateral_maintenance=mm_c),
                   currency=ab.account.denomination)


def compute(book: Book, market: Market, model: str | MarginModel, params=None, *,
            arrays: InstrumentArrays | None = None, account=None, feeds: VenueFeeds | None = None) -> MarginResult:
    """Margin of ``book`` under ``model`` (docs/methodology.md §6, docs/venues.md).

    ``model``: a name with ``params``, the model's params dataclass (None: published defaults;
    invalid values raise ValueError with a message for the user), or a resolved
    :class:`MarginModel`.  ``arrays``: an existing InstrumentArrays of the
    book's instruments (e.g. ``Analysis.arrays``) to reuse.  ``account``: collateral and
    denomination (:mod:`engine.account`; None: USD cash only, the requirement of the book
    alone); its haircut charges are added to IM and MM (``details`` names them).  ``feeds``:
    the venue's oracle values (:class:`~engine.account.VenueFeeds`).  Amounts are in
    ``result.currency``.
    """
    return _result(margin_model(model, params), account_book(book, market, account, feeds, arrays))


def compute_all(book: Book, market: Market, models=None, params: dict | None = None, *,
                arrays: InstrumentArrays | None = None, account=None,
                feeds: VenueFeeds | None = None) -> dict[str, MarginResult]:
    """Every model (or ``models``: names or resolved :class:`MarginModel`) side by side on one
    vectorised book; ``params`` maps a model name to its params (missing: defaults)."""
    params = params or {}
    resolved = [m if isinstance(m, MarginModel) else margin_model(m, params.get(m)) for m in (models or MODELS)]
    ab = account_book(book, market, account, feeds, arrays)
    return {m.name: _result(m, ab) for m in resolved}


def summary(results: dict[str, MarginResult]) -> pd.DataFrame:
    """One row per model: initial, maintenance (USD) and capital efficiency = standard IM ÷
    model IM (NaN without a standard result or when the model's IM is 0)."""
    std = results.get("standard")
    rows = []
    for name, r in results.items():
        eff = std.initial / r.initial if std is not None and r.initial > 0 else np.nan
        rows.append({"model": name, "title": MODELS[name].title if name in MODELS else name,
                     "initial": r.initial, "maintenance": r.maintenance, "capital_efficiency": eff})
    return pd.DataFrame(rows, columns=["model", "title", "initial", "maintenance", "capital_efficiency"])


__all__ = ["MODELS", "AccountBook", "MarginModel", "MarginResult", "ModelSpec", "account_book", "compute",
           "compute_all", "default_params", "margin_model", "model_spec", "params_from_dict", "params_to_dict",
           "scale_to_total", "summary"]
