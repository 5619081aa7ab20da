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
searched outward from s = 0 on a grid of ``search_steps`` points up to ±``search_range``: every
4th point first (both sides and today in one kernel call on a stack of the moved snapshots),
then the grid points between two coarse points where equity − MM reaches 0, or where the sum of
its values at both ends is within the largest change across that coarse interval or a
neighbouring one (a dip to 0 and back could fit there); the first grid interval where it changes sign is solved with
``scipy.optimize.brentq``.  None on a side means "none within ±search_range" (a dip narrower
than one grid step, or steeper than the coarse points show, can be missed).  An account that is
already liquidatable reports a move of 0 on both sides.
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
from .core import FUTURE_CODE, PERPETUAL_CODE, Kernel, MarginBook, Universe, evaluate_stacked, margin_book

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
    """Mark-to-market per position (USD) with instrument values ``values`` (per contract, last
    axis; leading axes broadcast); futures and perps against their entry price, or against
    today's value without one."""
    pos = mb.position_instrument
    kind = mb.arrays.kind[pos]
    ref = np.where(np.isnan(mb.entry_price), mb.universe.base[pos], mb.entry_price * mb.arrays.multiplier[pos])
    v = values[..., pos]
    return np.where((kind == FUTURE_CODE) | (kind == PERPETUAL_CODE), mb.quantity * (v - ref), mb.quantity * v)


def account_health(book: Book, market: Market, collateral, model: str | MarginModel = "risk_based", params=None, *,
                   search_range: float = 0.5, search_steps: int = 20,
                   arrays: InstrumentArrays | None = None, feeds: VenueFeeds | None = None,
                   prepared: AccountModel | None = None) -> AccountHealth:
    """Equity, IM, MM, margin ratio and liquidation prices of ``book`` (amounts in USD).

    ``collateral``: the account — an :class:`~engine.account.Account`, its JSON dict, or an old
    store's USD number.  Collateral tied to an underlying is repriced with it at every searched
    move (wrong-way: coin collateral falls with spot), both in equity and in the model's
    scenarios; a coin-margined account's requirement is converted at the moved spot.
    ``model``: a name with its ``params`` or a resolved MarginModel; ``arrays``: an existing
    InstrumentArrays of the book's instruments (e.g. ``Analysis.arrays``) to reuse; ``prepared``:
    the :func:`account_model` of this account, model and instruments, kept from before an edit
    of quantities or entry prices (the model is then not prepared again).
    """
    if not 0.0 < search_range < 1.0:
        raise ValueError(f"search_range must be in (0, 1) (got {search_range:g})")
    state = _states(book, market, collateral, model, params, arrays, feeds, prepared)
    mb, account, resolved = state.mb, state.prepared.account, state.prepared.model
    unds = mb.arrays.underlyings
    collateral_total = account.cash + collateral_values(account, unds, mb.universe.und_spot, state.prepared.feeds).total
    grid, shocks = _search_grid(search_range, search_steps)
    eq_s, im_s, mm_s = state.evaluate(shocks, keep=True)
    equity, im, mm = float(eq_s[0]), float(im_s[0]), float(mm_s[0])
    liquidatable = equity < mm

    down: float | None
    up: float | None
    if liquidatable:
        down = up = 0.0
    else:
        known = dict(zip(shocks.tolist(), (eq_s - mm_s).tolist(), strict=True))
        fine = _fine_points(known, -grid) + _fine_points(known, grid)
        if fine:
            eq_f, _, mm_f = state.evaluate(fine)
            known.update(zip(fine, (eq_f - mm_f).tolist(), strict=True))
        down = _first_crossing(state.gap, known, -grid)
        up = _first_crossing(state.gap, known, grid)
    und_spot = dict(zip(unds, map(float, mb.universe.und_spot), strict=True))

    def prices(shock):
        return None if shock is None else {u: s * (1.0 + shock) for u, s in und_spot.items()}

    ratio = float(margin_ratio(equity, mm))
    currency_spot = und_spot.get(account.denomination, 1.0)
    return AccountHealth(resolved.name, collateral_total, equity, im, mm, ratio, equity - im,
                         bool(liquidatable), down, up, prices(down), prices(up), und_spot, search_range,
                         account.denomination, currency_spot)


def account_requirement(book: Book, market: Market, collateral, model: str | MarginModel = "risk_based",
                        params=None, *, arrays: InstrumentArrays | None = None,
                        feeds: VenueFeeds | None = None, prepared: AccountModel | None = None
                        ) -> tuple[float, float, float]:
    """(equity, IM, MM) of the account in USD at today's market: what :func:`account_health`
    reports, without its search for liquidation prices (arguments as there)."""
    state = _states(book, market, collateral, model, params, arrays, feeds, prepared)
    equity, im, mm = state.evaluate([0.0], keep=True)
    return float(equity[0]), float(im[0]), float(mm[0])


def _states(book, market, collateral, model, params, arrays, feeds, prepared: AccountModel | None) -> _AccountStates:
    """The account's states, on ``prepared`` when given (it must be this account's, model's and
    instruments')."""
    _check_collateral(collateral)
    resolved = margin_model(model, params)
    if prepared is None:
        ab = account_book(book, market, collateral, feeds, arrays)
        return _AccountStates(ab.mb, AccountModel(ab, resolved))
    if load_account(collateral) != prepared.account or (feeds or VenueFeeds()) != prepared.feeds \
            or (resolved.name, resolved.params) != (prepared.model.name, prepared.model.params):
        raise ValueError("prepared is another account's or model's: rebuild it (account_model)")
    # The positions on the prepared instruments (ValueError "rebuild" when the book holds others).
    return _AccountStates(margin_book(book, market, prepared.universe.arrays), prepared)


def marked_values(universe: Universe, feeds: VenueFeeds | None, shock=0.0) -> np.ndarray:
    """Instrument values per contract with perpetuals at the venue's perp mark (moved by
    ``shock`` like spot, a fraction or one per instrument) where the feeds give one."""
    values = universe.base
    marks = (feeds.perp_mark if feeds is not None else {})
    arr = universe.arrays
    perp = np.flatnonzero(arr.kind == PERPETUAL_CODE)
    if not marks or not len(perp):
        return values
    values = values.copy()
    moves = np.broadcast_to(np.asarray(shock, dtype=float), values.shape)
    for i in perp:
        mark = marks.get(arr.underlyings[arr.und_index[i]])
        if mark is not None:
            values[i] = mark * (1.0 + moves[i]) * arr.multiplier[i]
    return values


#: The liquidation search evaluates every COARSE_STRIDE-th grid point first.
COARSE_STRIDE = 4


def _fine_points(known: dict, grid: np.ndarray) -> list[float]:
    """Grid points of one side (outward from 0) to evaluate between the coarse points held in
    ``known`` (gap at 0 and at the coarse points): those of every coarse interval, up to the
    first one ending at gap ≤ 0, where a crossing may lie — taking gap's variation inside a
    coarse interval [a, b] to be at most the largest change across it or a neighbouring
    coarse interval, a crossing needs gap(a) + gap(b) within that, or gap(b) ≤ 0."""
    coarse = [0.0] + [s for s in grid.tolist() if s in known]
    gaps = np.array([known[s] for s in coarse])
    change = np.abs(np.diff(gaps))
    points: list[float] = []
    for k in range(1, len(coarse)):
        reach = change[max(k - 2, 0):k + 1].max()  # intervals k − 1, k, k + 1 (1-based)
        if gaps[k] <= 0.0 or gaps[k - 1] + gaps[k] <= reach:
            inside = (np.abs(grid) > abs(coarse[k - 1])) & (np.abs(grid) < abs(coarse[k]))
            points += grid[inside].tolist()
        if gaps[k] <= 0.0:
            break
    return points


def _first_crossing(gap, known: dict, grid: np.ndarray) -> float | None:
    """First evaluated s along ``grid`` (outward from 0) where ``gap`` (> 0 at 0) reaches 0,
    refined by brentq from the evaluated point before it; None if there is none.  ``known``
    holds gap at 0 and at the evaluated grid points (the bracket's ends are not re-evaluated)."""
    prev = 0.0
    for s in grid.tolist():
        if s not in known:
            continue
        if known[s] <= 0.0:
            return float(brentq(lambda x: known[x] if x in known else gap(x), prev, s, xtol=1e-9))
        prev = s
    return None


@dataclass(frozen=True)
class _Snapshots:
    """The model prepared at k moved snapshots (see :class:`AccountModel`)."""

    kernel: Kernel
    copies: int
    to_usd: float
    charges: np.ndarray  # (k, 2) collateral IM and MM charges, cash units
    collateral: np.ndarray  # (k,) cash + collateral value, USD
    marked: np.ndarray  # (k, instruments) value per contract, perpetuals at the venue mark


class AccountModel:
    """A margin model prepared on one account's instruments, collateral and feeds with every spot
    moved by given fractions — what :func:`account_health` and :func:`account_requirement`
    compute before any quantity enters.  The stacks the search always evaluates (today, the coarse
    grid) are kept per tuple of moves (:attr:`KEPT` at most), so an edit of quantities or entry
    prices reuses them: pass the same AccountModel as ``prepared=`` (built by :func:`account_model`).
    A coin-margined account converts at each snapshot's own spot, so its snapshots are prepared one
    at a time."""

    KEPT = 4

    def __init__(self, ab, model: MarginModel):
        self.universe, self.account, self.feeds, self.model = ab.mb.universe, ab.account, ab.feeds, model
        self._kept: dict[tuple[float, ...], _Snapshots] = {}

    def warmed(self, search_range: float = 0.5, search_steps: int = 20) -> AccountModel:
        """This model with the stacks every search evaluates prepared now (today, and the coarse
        grid of :func:`account_health` with these arguments): its size is then its final one,
        for a cache that bounds its entries in bytes."""
        if not self.account.is_coin_margined:
            self.snapshots(np.zeros(1), keep=True)
            self.snapshots(_search_grid(search_range, search_steps)[1], keep=True)
        return self

    def snapshots(self, shocks: np.ndarray, keep: bool = False) -> _Snapshots:
        """The model prepared at ``shocks``; kept for the next call when ``keep`` (the moves every
        search evaluates, not those that depend on the book)."""
        key = tuple(shocks.tolist())
        found = self._kept.get(key)
        if found is None:
            found = self._prepare(shocks)
            if keep:
                if len(self._kept) >= self.KEPT:
                    self._kept.clear()  # one call, safe while other threads read
                self._kept[key] = found
        return found

    def _prepare(self, shocks: np.ndarray) -> _Snapshots:
        base, account, spec, params, k = self.universe, self.account, self.model.spec, self.model.params, len(shocks)
        unds = base.arrays.underlyings
        uni = base.stacked(shocks)
        values = [collateral_values(account, unds, base.und_spot, self.feeds, spot_shock=float(s)) for s in shocks]
        if k == 1:
            ctx = risk_based.margin_context(uni, account, self.feeds, values[0])
        else:  # not coin-margined: no conversion, only the risk-cancelling collateral per copy
            rc = np.concatenate([np.asarray(risk_based.margin_context(base, account, self.feeds, v).rc_value,
                                            dtype=float) for v in values])
            ctx = risk_based.MarginContext(self.feeds, rc, np.zeros(k * len(unds), dtype=bool))
        kernel = spec.prepare(uni, params, ctx) if spec.venue_aware else spec.prepare(uni, params)
        charges = np.array([risk_based.collateral_charges(account, v, params) for v in values]).reshape(k, 2)
        marked = marked_values(uni, self.feeds, np.repeat(shocks, base.n_instruments)).reshape(k, -1)
        return _Snapshots(kernel, k, 1.0 / ctx.usd_scale if spec.venue_aware else 1.0, charges,
                          account.cash + np.array([v.total for v in values]), marked)


def account_model(book: Book, market: Market, collateral, model: str | MarginModel = "risk_based", params=None, *,
                  arrays: InstrumentArrays | None = None, feeds: VenueFeeds | None = None) -> AccountModel:
    """The :class:`AccountModel` of ``book``'s instruments with this account (arguments as
    :func:`account_health`'s); it does not depend on the book's quantities or entry prices."""
    _check_collateral(collateral)
    return AccountModel(account_book(book, market, collateral, feeds, arrays), margin_model(model, params))


def _check_collateral(collateral) -> None:
    if collateral is None or isinstance(collateral, (str, bool)):
        raise AccountError(f"collateral: {collateral!r} is not a USD amount or an account")


def _search_grid(search_range: float, search_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """One side's grid (0, search_range], and today with the coarse points of both sides, the
    moves evaluated first in one kernel call."""
    grid = np.linspace(0.0, search_range, search_steps + 1)[1:]
    coarse = grid[COARSE_STRIDE - 1::COARSE_STRIDE] if search_steps % COARSE_STRIDE == 0 else \
        np.append(grid[COARSE_STRIDE - 1::COARSE_STRIDE], grid[-1])
    return grid, np.concatenate([[0.0], -coarse, coarse])


class _AccountStates:
    """An account's equity, IM and MM (USD) with every spot moved by given fractions: the book
    revalued in full at each moved snapshot on the model prepared by an :class:`AccountModel`."""

    def __init__(self, mb: MarginBook, prepared: AccountModel):
        self.mb, self.prepared = mb, prepared

    def gap(self, shock: float) -> float:
        equity, _, mm = self.evaluate([shock])
        return float(equity[0] - mm[0])

    def evaluate(self, shocks, keep: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(equity, IM, MM) arrays, one entry per shock (``keep``: see :meth:`AccountModel.snapshots`)."""
        shocks = np.asarray(shocks, dtype=float)
        one_by_one = self.prepared.account.is_coin_margined
        chunks = [shocks[k:k + 1] for k in range(len(shocks))] if one_by_one else [shocks]
        parts = [self._chunk(self.prepared.snapshots(c, keep)) for c in chunks]
        return tuple(np.concatenate([p[j] for p in parts]) for j in range(3))  # type: ignore[return-value]

    def _chunk(self, snap: _Snapshots):
        rows = evaluate_stacked(snap.kernel, self.mb.net, snap.copies)
        equity = snap.collateral + position_mtm(self.mb, snap.marked).sum(axis=-1)
        return (equity, rows[:, 0] * snap.to_usd + snap.charges[:, 0],
                rows[:, 1] * snap.to_usd + snap.charges[:, 1])


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
