"""Derive (formerly Lyra v2) Dutch liquidation auction (docs/methodology.md §7, §9).

Source: Derive's v2-core ``DutchAuction.sol`` (github.com/derivexyz/v2-core, src/liquidation/) and
its documentation. All amounts are USD of the account's cash asset; times are seconds since the
auction started; discounts and fractions are decimals (0.9 = 90 %).

Solvent auction (account mark-to-market MtM > 0, maintenance excess MM' < 0):

    discount  d(t) = start − (start − fast_cutoff)·t/fast          for 0 ≤ t < fast
                   = fast_cutoff·(1 − (t − fast)/slow)              for fast ≤ t ≤ fast + slow
                   = 0                                             afterwards
    price of the whole book  = d(t)·MtM
    buffer margin            BM = MM' + buffer·(MM' − MtM)          (MM' = equity − MM)
    max fraction             f = BM / (BM − MtM·d − R·(1 − d))      R = cash already received

A bid buys a fraction f ≤ f_max of the book and pays price × fraction; the auction ends once
BM ≥ 0. Insolvent auction (MtM ≤ 0 at the start, or the solvent auction reached d = 0 with
MM' < 0): the insurance fund pays the bidder to take the book. Here (docs/methodology.md §7) the
whole-book price rises in magnitude linearly from min(MtM, 0) to MM' over the insolvent phase,
i.e. the fund's payout grows from max(−MtM, 0) to −MM' and then stays there. (The on-chain
contract steps its payout from 0 to BM × a scalar instead; this ramp, our definition, starts at the
book's fair value, which no rational bidder would undercut.)

Post-fill model (the one the max-fraction formula is exact for — derived, not assumed):
the account holds the original book scaled by φ (fraction of the original left, φ₀ = 1) plus the
cash R received from bidders. With MtM₀, MM'₀, BM₀ the original book's figures and a static market,

    account MtM = φ·MtM₀ + R,   MM' = φ·MM'₀ + R,   BM = φ·BM₀ + R

(the requirement MtM − MM' scales with φ; cash carries none). A bid for fraction f of the
*current* book (excluding R — the cash stays in the account, as in the contract) at discount d pays
d·(MtM − R)·f = d·MtM₀·(φf): the whole-original-book price d·MtM₀ times the fraction of the
original book taken. Then φ ← φ(1 − f), R ← R + d·(MtM − R)·f, hence

    BM_after = BM + f·(d·MtM + (1 − d)·R − BM),

which is 0 exactly at f = BM / (BM − MtM·d − R·(1 − d)) — the contract's formula, with MtM and
BM the account figures including R. So a bid capped by f_max ends the auction (BM = 0) and a
smaller bid leaves it running with a smaller shortfall.

Reference (Derive's test parameters, docs/methodology.md §9): MM' = −100, MtM = 300 → BM = −140,
f_max(t = 0) = 140/440 = 31.8 %; at t = 300 s: d = 0.9, price 270, f_max = 140/410 = 34.1 %,
the bidder pays price × fraction = 270 × 0.3415 ≈ 92.2.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "AuctionParams",
    "DERIVE_TEST",
    "DERIVE_MAINNET",
    "auction_discount",
    "time_at_discount",
    "buffer_margin",
    "max_fraction",
    "insolvent_payout",
    "BidderPopulation",
    "bidder_population",
    "AuctionFill",
    "AuctionResult",
    "simulate_auction",
]


@dataclass(frozen=True)
class AuctionParams:
    """Dutch-auction parameters. Defaults are Derive's contract-test values.

    start: discount at t = 0 (fraction of MtM). fast_cutoff: discount at the end of the fast
    phase. fast_seconds, slow_seconds, insolvent_seconds: phase lengths, s. buffer: the buffer
    percentage in BM = MM' + buffer·(MM' − MtM) (0 liquidates to MM, ≈0.3 towards IM).
    """

    start: float = 1.0
    fast_cutoff: float = 0.8
    fast_seconds: float = 600.0
    slow_seconds: float = 7200.0
    insolvent_seconds: float = 3600.0
    buffer: float = 0.10

    def __post_init__(self):
        if not (0.0 <= self.fast_cutoff <= self.start <= 1.0):
            raise ValueError("need 0 <= fast_cutoff <= start <= 1")
        if min(self.fast_seconds, self.slow_seconds, self.insolvent_seconds) < 0:
            raise ValueError("phase lengths must be >= 0 seconds")
        if self.slow_seconds == 0 and self.fast_cutoff > 0:
            raise ValueError("slow_seconds must be > 0 unless fast_cutoff is 0")
        if self.buffer < 0:
            raise ValueError("buffer must be >= 0")

    @property
    def solvent_seconds(self) -> float:
        """Length of the solvent (fast + slow) auction, s."""
        return self.fast_seconds + self.slow_seconds


#: Derive's contract-test parameters (docs/methodology.md §9).
DERIVE_TEST = AuctionParams()
#: Derive mainnet parameters (docs/methodology.md §9): start 0.95, cutoff 0.70, fast 15 min, slow 12 h,
#: insolvent 60 min, buffer 15 %.
DERIVE_MAINNET = AuctionParams(
    start=0.95,
    fast_cutoff=0.70,
    fast_seconds=15 * 60.0,
    slow_seconds=12 * 3600.0,
    insolvent_seconds=60 * 60.0,
    buffer=0.15,
)


def auction_discount(t, params: AuctionParams = DERIVE_TEST):
    """Solvent-auction discount d(t) (fraction of MtM) at t seconds after the start; vectorised.

    Linear from ``start`` to ``fast_cutoff`` over the fast phase, then to 0 over the slow phase,
    0 afterwards; t < 0 is treated as 0. Non-increasing in t.

    >>> auction_discount([0, 300, 600, 4200, 7800, 9000])
    array([1. , 0.9, 0.8, 0.4, 0. , 0. ])
    """
    t = np.maximum(np.asarray(t, dtype=float), 0.0)
    p = params
    fast = p.fast_seconds
    # safe denominators: a zero-length phase never selects its branch's ramp
    fast_frac = t / fast if fast > 0 else np.ones_like(t)
    slow_frac = (t - fast) / p.slow_seconds if p.slow_seconds > 0 else np.ones_like(t)
    d = np.where(
        t < fast,
        p.start - (p.start - p.fast_cutoff) * fast_frac,
        p.fast_cutoff * (1.0 - np.clip(slow_frac, 0.0, 1.0)),
    )
    return d[()]


def time_at_discount(discount, params: AuctionParams = DERIVE_TEST):
    """First time (s) at which d(t) ≤ ``discount``; the inverse of ``auction_discount``.

    0 for discount ≥ start; +inf for discount ≤ 0 (a solvent auction never offers the book
    free: at d = 0 it is over and the contract rejects bids). Vectorised.

    >>> time_at_discount([1.0, 0.9, 0.8, 0.4, 0.0])
    array([   0.,  300.,  600., 4200.,   inf])
    """
    r = np.asarray(discount, dtype=float)
    p = params
    drop_fast = p.start - p.fast_cutoff
    with np.errstate(divide="ignore", invalid="ignore"):
        t_fast = p.fast_seconds * (p.start - r) / drop_fast if drop_fast > 0 else np.zeros_like(r)
        t_slow = p.fast_seconds + p.slow_seconds * (p.fast_cutoff - r) / p.fast_cutoff
    t = np.where(
        r >= p.start,
        0.0,
        np.where(r >= p.fast_cutoff, t_fast, np.where(r > 0, t_slow, np.inf)),
    )
    return t[()]


def buffer_margin(mm_excess, mtm, params: AuctionParams = DERIVE_TEST):
    """Buffer margin BM = MM' + buffer·(MM' − MtM), USD; vectorised.

    mm_excess: MM' = equity − maintenance requirement, USD (negative when under water).
    mtm: mark-to-market of the account, USD. MM' − MtM = −requirement, so BM is the excess over
    the requirement grossed up by (1 + buffer): the target the auction liquidates to.
    """
    mm = np.asarray(mm_excess, dtype=float)
    return (mm + params.buffer * (mm - np.asarray(mtm, dtype=float)))[()]


def max_fraction(mm_excess, mtm, discount, cash_received=0.0, params: AuctionParams = DERIVE_TEST):
    """Largest fraction of the current book a bid may take: f = BM / (BM − MtM·d − R·(1 − d)).

    mm_excess MM' and mtm MtM are the *account* figures (USD) including the cash R
    (``cash_received``, USD) already paid in by earlier bidders; discount d as a fraction.
    Buying exactly f brings BM to 0 (see the module docstring). Returns a fraction in [0, 1]:
    0 when BM ≥ 0 (nothing to liquidate — the contract clamps BM at 0); 1 when no fraction can
    restore BM (the sale brings in no more than it releases, e.g. MtM ≤ 0 — an insolvent book,
    for which the cap does not apply). Vectorised over all arguments.

    >>> round(float(max_fraction(-100.0, 300.0, 1.0)), 4)   # 140 / 440
    0.3182
    """
    mtm = np.asarray(mtm, dtype=float)
    d = np.asarray(discount, dtype=float)
    R = np.asarray(cash_received, dtype=float)
    bm = np.asarray(buffer_margin(mm_excess, mtm, params), dtype=float)
    denom = bm - mtm * d - R * (1.0 - d)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = bm / denom
    # denom < bm < 0 ⇔ the sale adds value (d·MtM + (1 − d)·R > 0); then 0 < ratio < 1.
    f = np.where(bm >= 0, 0.0, np.where(denom < bm, ratio, 1.0))
    return np.clip(f, 0.0, 1.0)[()]


def insolvent_payout(t, mtm, mm_excess, params: AuctionParams = DERIVE_TEST):
    """Insurance-fund payout (USD, ≥ 0) to a bidder taking the whole book, t s into the insolvent phase.

    The book's (negative) price moves linearly from min(MtM, 0) to MM' over
    ``insolvent_seconds`` and then stays at MM': payout = −[P₀ + (MM' − P₀)·min(t/L, 1)],
    P₀ = min(MtM, 0). For an insolvent book (MtM < 0) this rises from −MtM to −MM'. Vectorised.

    >>> insolvent_payout([0, 1800, 3600, 7200], mtm=-50.0, mm_excess=-130.0)
    array([ 50.,  90., 130., 130.])
    """
    t = np.maximum(np.asarray(t, dtype=float), 0.0)
    L = params.insolvent_seconds
    frac = np.clip(t / L, 0.0, 1.0) if L > 0 else np.ones_like(t)
    p0 = np.minimum(np.asarray(mtm, dtype=float), 0.0)
    price = p0 + (np.asarray(mm_excess, dtype=float) - p0) * frac
    return np.maximum(-price, 0.0)[()]


@dataclass(frozen=True)
class BidderPopulation:
    """Liquidators watching the auction.

    reservation: per bidder, the discount (fraction of MtM) at or below which the book is worth
    buying — the bidder values the book at MtM − (1 − r)·|MtM|, i.e. r·MtM for a solvent book;
    a reservation ≤ 0 means the bidder only takes the book if paid (insolvent phase).
    capacity: per bidder, the most of the *original* book (fraction, > 0) they will take in total.
    """

    reservation: np.ndarray
    capacity: np.ndarray

    def __post_init__(self):
        r = np.atleast_1d(np.asarray(self.reservation, dtype=float))
        c = np.atleast_1d(np.asarray(self.capacity, dtype=float))
        if r.shape != c.shape or r.ndim != 1:
            raise ValueError("reservation and capacity must be 1-d arrays of the same length")
        if not (np.all(np.isfinite(r)) and np.all(np.isfinite(c))) or np.any(c <= 0) or np.any(r > 1):
            raise ValueError("reservations must be finite and <= 1, capacities finite and > 0")
        object.__setattr__(self, "reservation", r)
        object.__setattr__(self, "capacity", np.minimum(c, 1.0))

    @property
    def n(self) -> int:
        return int(self.reservation.size)


def bidder_population(
    n: int,
    seed: int = 0,
    *,
    reservation_mean: float = 0.85,
    reservation_concentration: float = 40.0,
    capacity_min: float = 0.05,
    capacity_max: float = 0.5,
) -> BidderPopulation:
    """A reproducible population of n bidders from ``numpy.random.default_rng(seed)``.

    Reservation discounts ~ Beta(m·k, (1 − m)·k) with mean m = ``reservation_mean`` and
    concentration k (sd ≈ √(m(1 − m)/(k + 1)), ≈ 0.056 by default), so they lie in (0, 1).
    Capacities ~ Uniform(capacity_min, capacity_max), fractions of the original book.
    These are modelling defaults, not published figures.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    if not (0 < reservation_mean < 1) or reservation_concentration <= 0:
        raise ValueError("need 0 < reservation_mean < 1 and reservation_concentration > 0")
    if not (0 < capacity_min <= capacity_max <= 1):
        raise ValueError("need 0 < capacity_min <= capacity_max <= 1")
    rng = np.random.default_rng(seed)
    m, k = reservation_mean, reservation_concentration
    reservation = rng.beta(m * k, (1.0 - m) * k, size=n)
    capacity = rng.uniform(capacity_min, capacity_max, size=n)
    return BidderPopulation(reservation=reservation, capacity=capacity)


@dataclass(frozen=True)
class AuctionFill:
    """One executed bid.

    time: s since the auction start. bidder: index into the population. phase: "fast", "slow" or
    "insolvent". discount: d at the bid (NaN in the insolvent phase). price: USD for 100 % of the
    original book at that moment (d·MtM₀ when solvent; negative — paid to the bidder — when
    insolvent). fraction_of_current / fraction_of_original: share of the book taken.
    cash_paid: bidder → account, USD (= price × fraction_of_original when solvent).
    fund_payout: insurance fund → bidder, USD. The ``*_after`` fields are the account's MtM, MM'
    and BM (USD) after the fill.
    """

    time: float
    bidder: int
    phase: str
    discount: float
    price: float
    fraction_of_current: float
    fraction_of_original: float
    cash_paid: float
    fund_payout: float
    mtm_after: float
    mm_excess_after: float
    buffer_margin_after: float


@dataclass(frozen=True)
class AuctionResult:
    """Outcome of ``simulate_auction``.

    Price path on a time grid t (s): discount (NaN in the insolvent phase), price (USD for the
    whole original book: d·MtM₀ when solvent, from min(MtM₀, 0) to MM'₀ when insolvent),
    fund_payout_path (USD the fund would pay for the whole original book, 0 outside the insolvent
    phase), phase (str per grid point). fills: executed bids in time order.
    fraction_left: of the original book. cash_received: R, USD. ended: the auction terminated
    (BM ≥ 0 after a solvent fill, or MM' ≥ 0 / book fully taken in the insolvent phase).
    outcome: "restored", "closed" (insolvent book fully taken over), "unresolved" (no bidder
    finished it within the schedule) or "not_liquidatable" (MM' ≥ 0 at the start).
    end_time: s (NaN if not ended). insolvent_start: s (NaN if no insolvent phase).
    fund_payout: total USD owed to bidders by the insurance fund; fund_shortfall: the part beyond
    ``insurance_fund`` (socialised loss). mtm, mm_excess, buffer_margin: the account at the end.
    """

    t: np.ndarray
    discount: np.ndarray
    price: np.ndarray
    fund_payout_path: np.ndarray
    phase: np.ndarray
    fills: tuple[AuctionFill, ...]
    fraction_left: float
    cash_received: float
    ended: bool
    outcome: str
    end_time: float
    insolvent_start: float
    fund_payout: float
    fund_shortfall: float
    mtm: float
    mm_excess: float
    buffer_margin: float
    params: AuctionParams = field(default=DERIVE_TEST)

    @property
    def fills_frame(self) -> pd.DataFrame:
        """The fills as a DataFrame, one row per fill (columns = ``AuctionFill`` fields)."""
        cols = list(AuctionFill.__dataclass_fields__)
        return pd.DataFrame([[getattr(f, c) for c in cols] for f in self.fills], columns=cols)

    @property
    def path_frame(self) -> pd.DataFrame:
        """The price path as a DataFrame (t, discount, price, fund_payout, phase)."""
        return pd.DataFrame(
            {"t": self.t, "discount": self.discount, "price": self.price,
             "fund_payout": self.fund_payout_path, "phase": self.phase}
        )


def simulate_auction(
    mtm: float,
    mm_excess: float,
    params: AuctionParams = DERIVE_TEST,
    bidders: BidderPopulation | None = None,
    *,
    insurance_fund: float = np.inf,
    n_points: int = 301,
) -> AuctionResult:
    """Run one Dutch auction of a book against a bidder population.

    mtm: the account's mark-to-market MtM₀ at the start, USD. mm_excess: its maintenance excess
    MM'₀ = equity − MM, USD (must be ≤ mtm: the requirement is non-negative). bidders: a
    ``BidderPopulation`` (default: ``bidder_population(20, seed=0)``). insurance_fund: USD
    available to pay insolvent-phase bidders; beyond it the payout is a socialised loss.
    n_points: grid points for the price path (phase boundaries and fill times are added).

    Model (static market; see the module docstring for the post-fill algebra):
    * MtM₀ > 0 — solvent auction. Bidder i arrives when d(t) first reaches its reservation r_i,
      t_i = ``time_at_discount(r_i)``; arrivals are processed in time order (ties by index). It
      buys min(f_max, remaining capacity / φ) of the current book at d(t_i); the auction ends when
      BM ≥ 0 (always after a bid capped at f_max). If d reaches 0 with MM' < 0 it converts to an
      insolvent auction at t = fast + slow (as the contract's ``convertToInsolventAuction``).
    * MtM₀ ≤ 0 — insolvent auction from t = 0. The whole-original-book price falls linearly from
      min(MtM₀, 0) to MM'₀ (the fund's payout rises); bidder i takes what it can (no f_max cap)
      once the price ≤ its value MtM₀ − (1 − r_i)·|MtM₀|; the fund pays −price × fraction of
      the original book taken. Ends when the book is fully taken or the account's MM' ≥ 0.
    Each bidder is processed once per phase (it either fills its capacity or ends the auction).
    """
    mtm0 = float(mtm)
    mm0 = float(mm_excess)
    if not (np.isfinite(mtm0) and np.isfinite(mm0)):
        raise ValueError("mtm and mm_excess must be finite")
    tol = 1e-12 * max(1.0, abs(mtm0), abs(mm0))
    if mm0 > mtm0 + tol:
        raise ValueError("mm_excess cannot exceed mtm (the maintenance requirement is >= 0)")
    if bidders is None:
        bidders = bidder_population(20, seed=0)
    if n_points < 2:
        raise ValueError("n_points must be >= 2")
    run = _Auction(mtm0, mm0, float(buffer_margin(mm0, mtm0, params)), bidders.capacity.copy(), tol)
    insolvent_start = np.nan
    if mm0 >= 0:
        # The contract only starts an auction below maintenance margin.
        run.end("not_liquidatable", 0.0)
    elif mtm0 > 0:
        _solvent_phase(run, params, bidders.reservation)
        if not run.ended and run.figures()[1] < 0:
            insolvent_start = params.solvent_seconds
    else:
        insolvent_start = 0.0
    if not run.ended and np.isfinite(insolvent_start):
        _insolvent_phase(run, params, bidders.reservation, insolvent_start)
    t, discount, price, fund_path, phase = _price_path(mtm0, mm0, params, insolvent_start,
                                                       [f.time for f in run.fills], n_points)
    acct_mtm, acct_mm, acct_bm = run.figures()
    return AuctionResult(
        t=t, discount=discount, price=price, fund_payout_path=fund_path, phase=phase,
        fills=tuple(run.fills), fraction_left=run.phi, cash_received=run.R, ended=run.ended, outcome=run.outcome,
        end_time=float(run.end_time), insolvent_start=float(insolvent_start),
        fund_payout=run.fund_total, fund_shortfall=max(0.0, run.fund_total - insurance_fund),
        mtm=acct_mtm, mm_excess=acct_mm, buffer_margin=acct_bm, params=params,
    )


@dataclass
class _Auction:
    """A running auction: the original book's MtM₀, MM'₀, BM₀ (USD), the fraction φ of it still
    in the account, the cash R received, each bidder's capacity left, the fills so far and how
    it ended (module docstring: account MtM = φ·MtM₀ + R, MM' = φ·MM'₀ + R, BM = φ·BM₀ + R)."""

    mtm0: float
    mm0: float
    bm0: float
    cap_left: np.ndarray
    tol: float
    phi: float = 1.0
    R: float = 0.0
    fund_total: float = 0.0
    fills: list = field(default_factory=list)
    ended: bool = False
    outcome: str = "unresolved"
    end_time: float = np.nan

    def figures(self) -> tuple[float, float, float]:
        """The account's (MtM, MM', BM), USD."""
        return self.phi * self.mtm0 + self.R, self.phi * self.mm0 + self.R, self.phi * self.bm0 + self.R

    def end(self, outcome: str, time: float) -> None:
        self.ended, self.outcome, self.end_time = True, outcome, time

    def fill(self, time: float, bidder: int, phase: str, discount: float, price: float, f_current: float,
             taken: float, cash: float, payout: float) -> None:
        """Bidder takes ``taken`` of the original book (``f_current`` of the current one), paying
        ``cash`` to the account or receiving ``payout`` from the fund."""
        self.phi -= taken
        self.R += cash
        self.cap_left[bidder] -= taken
        self.fund_total += payout
        acct_mtm, acct_mm, acct_bm = self.figures()
        self.fills.append(AuctionFill(
            time=time, bidder=bidder, phase=phase, discount=discount, price=price, fraction_of_current=f_current,
            fraction_of_original=taken, cash_paid=cash, fund_payout=payout, mtm_after=acct_mtm,
            mm_excess_after=acct_mm, buffer_margin_after=acct_bm,
        ))


def _solvent_phase(run: _Auction, params: AuctionParams, reservation: np.ndarray) -> None:
    """Bidders in order of arrival (d(t) reaching their reservation, ties by index), each buying
    min(f_max, capacity left) at d(t); ends when BM ≥ 0."""
    arrival = np.asarray(time_at_discount(reservation, params), dtype=float)
    for i in np.lexsort((np.arange(len(reservation)), arrival)):
        t_i = float(arrival[i])
        if not np.isfinite(t_i):
            break  # sorted: everyone after waits for a free (or paid) book
        d = float(auction_discount(t_i, params))
        acct_mtm, acct_mm, _ = run.figures()
        f_max = float(max_fraction(acct_mm, acct_mtm, d, run.R, params))
        f = min(f_max, run.cap_left[i] / run.phi, 1.0)
        if f <= 0:
            continue
        taken = f * run.phi
        # = d·(MtM − R)·f: the whole-book price × the fraction of the original book taken
        run.fill(t_i, int(i), "fast" if t_i < params.fast_seconds else "slow", d, d * run.mtm0, f, taken,
                 cash=d * run.mtm0 * taken, payout=0.0)
        # a bid capped at f_max brings BM to 0 exactly; the tolerance absorbs rounding
        if f >= f_max or run.figures()[2] >= -run.tol:
            run.end("restored", t_i)
            return


def _insolvent_phase(run: _Auction, params: AuctionParams, reservation: np.ndarray, start: float) -> None:
    """From ``start`` (s) the whole-original-book price moves from min(MtM₀, 0) to MM'₀; each
    bidder takes what it can once the price is at or below its value of the book, paid by the
    fund; ends when the book is gone or MM' ≥ 0."""
    # Prices per whole original book: the remaining book is φ·(original) so its ramp
    # φ·min(MtM₀,0) → φ·MM'₀ is the same line per unit of original book.
    p0, p1, L = min(run.mtm0, 0.0), run.mm0, params.insolvent_seconds
    value = run.mtm0 - (1.0 - reservation) * abs(run.mtm0)  # bidder's value of the original book
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(value >= p0, 0.0,
                     np.where(value >= p1, L * (p0 - value) / (p0 - p1) if p0 > p1 else 0.0, np.inf))
    for i in np.lexsort((np.arange(len(reservation)), s)):
        s_i = float(s[i])
        if not np.isfinite(s_i):
            break
        if run.cap_left[i] <= 0:
            continue
        price = p0 + (p1 - p0) * (min(s_i / L, 1.0) if L > 0 else 1.0)
        taken = min(run.cap_left[i], run.phi)
        # price ≤ 0 here; abs avoids a −0.0 payout
        run.fill(start + s_i, int(i), "insolvent", np.nan, price, taken / run.phi, taken,
                 cash=0.0, payout=abs(price) * taken)
        if run.phi <= 1e-12:
            run.phi = 0.0
            run.end("closed", start + s_i)
            return
        if run.figures()[1] >= -run.tol:
            run.end("restored", start + s_i)
            return


def _price_path(mtm0: float, mm0: float, params: AuctionParams, insolvent_start: float, fill_times,
                n_points: int):
    """(t, discount, price, fund payout, phase) on a grid over the phases that happened, with the
    phase boundaries and fill times added; vectorised."""
    solvent_len = params.solvent_seconds if mtm0 > 0 else 0.0
    insolvent = bool(np.isfinite(insolvent_start))
    horizon = solvent_len + (params.insolvent_seconds if insolvent else 0.0)
    extra = [params.fast_seconds, solvent_len] if mtm0 > 0 else []
    grid = np.unique(np.concatenate([np.linspace(0.0, horizon, n_points), np.asarray(extra, dtype=float),
                                     np.asarray(fill_times, dtype=float)]))
    grid = grid[grid <= horizon]
    if insolvent:
        in_insolvent = grid >= insolvent_start
        if mtm0 > 0:
            in_insolvent &= grid > insolvent_start  # the boundary point belongs to d = 0
    else:
        in_insolvent = np.zeros(grid.shape, dtype=bool)
    d_grid = np.asarray(auction_discount(grid, params), dtype=float)
    s_grid = grid - (insolvent_start if insolvent else 0.0)
    payout_grid = np.asarray(insolvent_payout(s_grid, mtm0, mm0, params), dtype=float)
    discount = np.where(in_insolvent, np.nan, d_grid)
    price = np.where(in_insolvent, -payout_grid, d_grid * mtm0)
    fund_path = np.where(in_insolvent, payout_grid, 0.0)
    phase = np.where(in_insolvent, "insolvent", np.where(grid < params.fast_seconds, "fast", "slow"))
    return grid, discount, price, fund_path, phase
