"""Account health and liquidation prices under a margin model (docs/methodology.md §6, §7).

    equity       = collateral + Σ mark-to-market   (options at value, long + / short −; futures and
                   perps at unrealised P&L against the entry price, 0 without one; spot at value)
    margin_ratio = MM / equity  (inf when equity ≤ 0; levels in HEALTH_LEVELS)
    available    = equity − IM
    liquidatable = equity < MM

Liquidation price: the spot move s (every underlying moved by the same fraction, so one number
describes a multi-underlying book; per-underlying prices are S_u·(1 + s)) at which
equity(s) = MM(s), everything else fixed: the book is revalued in full at the moved snapshot and
the model's maintenance margin is recomputed there (the smile keeps its moneyness
parametrisation; futures without an entry price keep today's mark as reference).  Each side is
searched outward from s = 0 on a grid of ``search_steps`` points up to ±``search_range``; the
first grid interval where equity − MM changes sign is solved with ``scipy.optimize.brentq``.
None on a side means "none within ±search_range" (a dip narrower than one grid step can be
missed).  An account that is already liquidatable reports a move of 0 on both sides.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from ..account import AccountError, VenueFeeds, collateral_values, load_account
from ..market import Market
from ..portfolio import Book
from ..scenarios import InstrumentArrays
from . import MarginModel, account_book, margin_model, risk_based
from .core import FUTURE_CODE, PERPETUAL_CODE, MarginBook, Universe, evaluate

# ----------------------------------------------------------------------------- ratio and health levels
#: Health levels of the margin ratio MM ÷ equity, the one definition every page uses: healthy
#: below 50 %, warning from 50 %, danger from 80 % (early warnings well before the exchange
#: acts: a dashboard choice, not an exchange rule), liquidatable once equity < MM (ratio above
#: 100 %), bankrupt when equity ≤ 0 (the ratio is infinite).
RATIO_WARNING = 0.5
RATIO_DANGER = 0.8
HEALTH_LEVELS = ("healthy", "warning", "danger", "liquidatable", "bankrupt")


def margin_ratio(equity, maintenance):
    """MM ÷ equity (fraction), +inf when equity ≤ 0; elementwise over arrays.

    >>> margin_ratio(200_000.0, 50_000.0), margin_ratio(-1.0, 50_000.0)
    (0.25, inf)
    """
    equity, maintenance = np.asarray(equity, dtype=float), np.asarray(maintenance, dtype=float)
    ratio = np.where(equity > 0, maintenance / np.where(equity > 0, equity, 1.0), np.inf)
    return ratio if ratio.ndim else float(ratio)


def health_status(equity, maintenance):
    """The level of :data:`HEALTH_LEVELS` of an account (USD); elementwise over arrays.

    >>> health_status(100.0, 49.0), health_status(100.0, 80.0), health_status(100.0, 101.0), health_status(0.0, 0.0)
    ('healthy', 'danger', 'liquidatable', 'bankrupt')
    """
    equity, maintenance = np.asarray(equity, dtype=float), np.asarray(maintenance, dtype=float)
    ratio = np.asarray(margin_ratio(equity, maintenance))
    level = np.select([equity <= 0, equity < maintenance, ratio >= RATIO_DANGER, ratio >= RATIO_WARNING],
                      list(HEALTH_LEVELS[:0:-1]), HEALTH_LEVELS[0])
    return level if level.ndim else str(level)


@dataclass(frozen=True)
class AccountHealth:
    """Health of one account (USD).  ``liquidation_shock_down``/``_up``: spot move (fraction,
    ≤ 0 / ≥ 0) at which equity = MM, None when none within ±``search_range``;
    ``liquidation_price_down``/``_up``: the spot of each underlying there."""

    model: str
    collateral: float
    equity: float
    initial: float
    maintenance: float
    margin_ratio: float
    available: float
    liquidatable: bool
    liquidation_shock_down: float | None
    liquidation_shock_up: float | None
    liquidation_price_down: dict | None
    liquidation_price_up: dict | None
    spot: dict
    search_range: float
    #: the account's denomination and its spot (USD per coin; 1 for USD): amount_coin = amount_USD / spot
    currency: str = "USD"
    currency_spot: float = 1.0

    def in_currency(self, usd: float) -> float:
        """A USD amount of this health in the account's denomination."""
        return usd / self.currency_spot

    @property
    def distance_down_pct(self) -> float | None:
        """Distance to the downside liquidation price, % of spot (positive)."""
        return None if self.liquidation_shock_down is None else -100.0 * self.liquidation_shock_down

    @property
    def distance_up_pct(self) -> float | None:
        return None if self.liquidation_shock_up is None else 100.0 * self.liquidation_shock_up

    @property
    def distance_down_price(self) -> dict | None:
        """Per underlying: spot − downside liquidation price (USD)."""
        if self.liquidation_price_down is None:
            return None
        return {u: self.spot[u] - p for u, p in self.liquidation_price_down.items()}

    @property
    def distance_up_price(self) -> dict | None:
        if self.liquidation_price_up is None:
            return None
        return {u: p - self.spot[u] for u, p in self.liquidation_price_up.items()}


def position_mtm(mb: MarginBook, values: np.ndarray) -> np.ndarray:
    """Mark-to-market per position (USD) with instrument values ``values`` (per contract);
    futures and perps against their entry price, or against today's value without one."""
    pos = mb.position_instrument
    kind = mb.arrays.kind[pos]
    ref = np.where(np.isnan(mb.entry_price), mb.universe.base[pos], mb.entry_price * mb.arrays.multiplier[pos])
    v = values[pos]
    return np.where((kind == FUTURE_CODE) | (kind == PERPETUAL_CODE), mb.quantity * (v - ref), mb.quantity * v)


def account_health(book: Book, market: Market, collateral, model: str | MarginModel = "risk_based", params=None, *,
                   search_range: float = 0.5, search_steps: int = 20,
                   arrays: InstrumentArrays | None = None, feeds: VenueFeeds | None = None) -> AccountHealth:
    """Equity, IM, MM, margin ratio and liquidation prices of ``book`` (amounts in USD).

    ``collateral``: the account — an :class:`~engine.account.Account`, its JSON dict, or an old
    store's USD number.  Collateral tied to an underlying is repriced with it at every searched
    move (wrong-way: coin collateral falls with spot), both in equity and in the model's
    scenarios; a coin-margined account's requirement is converted at the moved spot.
    ``model``: a name with its ``params`` or a resolved MarginModel; ``arrays``: an existing
    InstrumentArrays of the book's instruments (e.g. ``Analysis.arrays``) to reuse.
    """
    if not 0.0 < search_range < 1.0:
        raise ValueError(f"search_range must be in (0, 1) (got {search_range:g})")
    if collateral is None or isinstance(collateral, (str, bool)):
        raise AccountError(f"collateral: {collateral!r} is not a USD amount or an account")
    resolved = margin_model(model, params)
    spec, params = resolved.spec, resolved.params
    ab = account_book(book, market, collateral, feeds, arrays)
    mb, account = ab.mb, ab.account
    unds = mb.arrays.underlyings

    def state(shock: float):
        uni = mb.universe if shock == 0.0 else mb.universe.shocked(shock)
        values = collateral_values(account, unds, uni.und_spot, ab.feeds, spot_shock=0.0) if shock == 0.0 else \
            collateral_values(account, unds, mb.universe.und_spot, ab.feeds, spot_shock=shock)
        ctx = risk_based.margin_context(uni, account, ab.feeds, values)
        kernel = spec.prepare(uni, params, ctx) if spec.venue_aware else spec.prepare(uni, params)
        row = evaluate(kernel, mb.net)
        to_usd = 1.0 / ctx.usd_scale if spec.venue_aware else 1.0
        im_c, mm_c = risk_based.collateral_charges(account, values, params)
        equity = account.cash + values.total + float(position_mtm(mb, marked_values(uni, ab.feeds, shock)).sum())
        return equity, float(row[0]) * to_usd + im_c, float(row[1]) * to_usd + mm_c

    equity, im, mm = state(0.0)
    liquidatable = equity < mm

    def gap(shock: float) -> float:
        eq, _, mm_s = state(shock)
        return eq - mm_s

    down: float | None
    up: float | None
    if liquidatable:
        down = up = 0.0
    else:
        down = _first_crossing(gap, -search_range, search_steps)
        up = _first_crossing(gap, search_range, search_steps)
    und_spot = dict(zip(unds, map(float, mb.universe.und_spot), strict=True))

    def prices(shock):
        return None if shock is None else {u: s * (1.0 + shock) for u, s in und_spot.items()}

    ratio = float(margin_ratio(equity, mm))
    currency_spot = und_spot.get(account.denomination, 1.0)
    return AccountHealth(resolved.name, account.cash + ab.collateral.total, equity, im, mm, ratio, equity - im,
                         bool(liquidatable), down, up, prices(down), prices(up), und_spot, search_range,
                         account.denomination, currency_spot)


def marked_values(universe: Universe, feeds: VenueFeeds | None, shock: float = 0.0) -> np.ndarray:
    """Instrument values per contract with perpetuals at the venue's perp mark (moved by
    ``shock`` like spot) where the feeds give one."""
    values = universe.base
    marks = (feeds.perp_mark if feeds is not None else {})
    arr = universe.arrays
    perp = np.flatnonzero(arr.kind == PERPETUAL_CODE)
    if not marks or not len(perp):
        return values
    values = values.copy()
    for i in perp:
        mark = marks.get(arr.underlyings[arr.und_index[i]])
        if mark is not None:
            values[i] = mark * (1.0 + shock) * arr.multiplier[i]
    return values


def _first_crossing(gap, end: float, steps: int) -> float | None:
    """First s between 0 and ``end`` where ``gap`` (> 0 at 0) reaches 0, or None."""
    prev = 0.0
    for s in np.linspace(0.0, end, steps + 1)[1:]:
        if gap(s) <= 0.0:
            return float(brentq(gap, prev, s, xtol=1e-9))
        prev = s
    return None


def account_equity(mb: MarginBook, collateral, universe: Universe | None = None) -> float:
    """collateral + Σ mark-to-market at ``universe`` (default: the book's own snapshot).

    ``collateral``: USD, or an account (:func:`engine.account.load_account` input) whose assets
    are valued at ``universe``'s spots (an asset priced from an underlying the book does not hold
    must carry its own price)."""
    uni = mb.universe if universe is None else universe
    if isinstance(collateral, (int, float)) and not isinstance(collateral, bool):
        total = float(collateral)
    else:
        account = load_account(collateral)
        total = account.cash + collateral_values(account, uni.arrays.underlyings, uni.und_spot).total
    return total + float(position_mtm(mb, uni.base).sum())
