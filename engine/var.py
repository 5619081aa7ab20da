"""Portfolio value at risk and expected shortfall (docs/methodology.md §8; the full method is docs/var.md).

Risk factors, per underlying u of the book (K = 2U factors, spot factors first):

* ``s_u`` the spot return over the horizon, a fraction (the shock convention of the revaluation
  kernel, docs/methodology.md §5: S → S·(1 + s));
* ``v_u`` the change of the underlying's ATM implied vol over the horizon, absolute vol points as a
  decimal (+0.05 = +5 points), applied as a parallel shift of its whole smile.

Their standard deviations over a horizon of h days come from the market (ATM implied vol of the
``tenor_days`` expiry, σ·√(h/365); vol of vol ``vol_of_vol``·σ_ATM·√(h/365)) or from a price
history (EWMA of daily log returns, λ = 0.94, RiskMetrics 1996); their correlation is a (K × K)
matrix the user may edit (default :func:`default_correlation`).

Methods, each giving VaR and ES at every confidence c (losses as positive USD):

* ``delta_normal``: P&L = aᵀx, x ~ N(0, Σ):  VaR_c = z_c·√(aᵀΣa),  ES_c = φ(z_c)/(1−c)·√(aᵀΣa)
  (Student-t with ν: the t quantile and ES scaled to unit variance);
* ``delta_gamma``: P&L = θ·h + aᵀx + ½xᵀGx (gamma, vanna, volga) with the moments of a quadratic form
  in normal variables and the Cornish–Fisher quantile (Zangari 1996; Jorion, *Value at Risk*, 3rd
  ed., §14.4); ES integrates that quantile over the tail;
* ``monte_carlo``: x drawn (normal or multivariate Student-t with ν, seeded), every instrument
  revalued in full by :func:`engine.scenarios.instrument_values` at the horizon, all paths at once;
* ``historical`` / ``filtered_historical``: the history's h-day moves as scenarios, revalued in
  full; filtered = daily moves divided by their EWMA vol and multiplied by today's (Barone-Adesi,
  Giannopoulos & Vosper 1999; Hull & White 1998).

Sample estimators (Monte Carlo, historical): with n scenarios sorted by P&L and k = ⌈n(1−c)⌉,
VaR = −L_(k) and ES = −mean(L_(1..k)), so ES ≥ VaR always.  Component VaR/ES by position are Euler
allocations (q_p·∂VaR/∂q_p) and sum to the total: closed form for delta-normal, finite difference of
the homogeneous Cornish–Fisher VaR for delta-gamma, tail averages of each position's P&L for the
sample methods.  The backtest compares one-day VaR forecasts with the book's P&L under each day's
realised move: exceptions, Kupiec (1995) POF and Christoffersen (1998) independence tests.
"""
from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass, field, replace
from functools import cached_property
from importlib import resources

import numpy as np
import pandas as pd
from scipy import special, stats

from .analysis import Analysis
from .market import Market
from .scenarios import DAYS_PER_YEAR, instrument_greeks, instrument_values, net_quantities, revaluation_pool

CONFIDENCES = (0.95, 0.99, 0.999)
METHODS = {
    "delta_normal": "Parametric delta-normal",
    "delta_gamma": "Parametric delta-gamma-vega (Cornish–Fisher)",
    "monte_carlo": "Monte Carlo, full revaluation",
    "historical": "Historical simulation",
    "filtered_historical": "Filtered historical simulation (EWMA)",
}
DISTRIBUTIONS = ("normal", "student_t")
EWMA_LAMBDA = 0.94
DEFAULT_VOL_OF_VOL = 1.0
DEFAULT_TENOR_DAYS = 30.0
#: Smallest spot return a scenario may apply (a −100 % move has no forward).
MIN_SPOT_SHOCK = -0.99
#: Paths per kernel call: ~2 MB temporaries per array stay in cache (2,500 paths were 1.6× slower).
_MC_CHUNK = 1_000


class HistoryError(ValueError):
    """A price history that cannot be used; the message names the row or column."""


# ----------------------------------------------------------------------------- risk factors


def factor_names(underlyings) -> tuple[str, ...]:
    return tuple(f"{u} spot" for u in underlyings) + tuple(f"{u} vol" for u in underlyings)


def default_correlation(n_underlyings: int, spot_spot: float = 0.8, spot_vol: float = -0.3,
                        vol_vol: float = 0.7) -> np.ndarray:
    """(2U × 2U) correlation: one value for every spot pair, spot–vol pair (own and cross
    underlying) and vol pair.  Defaults are our choice: BTC/ETH daily returns correlate ≈ 0.8 in
    the shipped history; implied vol rises as spot falls (negative spot–vol)."""
    U = n_underlyings
    c = np.empty((2 * U, 2 * U))
    c[:U, :U] = spot_spot
    c[U:, U:] = vol_vol
    c[:U, U:] = c[U:, :U] = spot_vol
    np.fill_diagonal(c, 1.0)
    return check_correlation(c)


def check_correlation(matrix, names=None) -> np.ndarray:
    """The matrix as a valid correlation (square, symmetric, unit diagonal, entries in [−1, 1],
    positive semi-definite), else ValueError naming the entry."""
    c = np.asarray(matrix, dtype=float)
    k = c.shape[0] if c.ndim == 2 else 0
    names = names or [str(i + 1) for i in range(k)]
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"the correlation matrix must be square (got shape {c.shape})")
    bad = np.argwhere(~np.isfinite(c))
    if len(bad):
        i, j = bad[0]
        raise ValueError(f"correlation {names[i]} / {names[j]} must be a number")
    for i, j in zip(*np.nonzero(np.abs(c - c.T) > 1e-9), strict=True):
        raise ValueError(f"correlation {names[i]} / {names[j]} ({c[i, j]:g}) differs from "
                         f"{names[j]} / {names[i]} ({c[j, i]:g}): the matrix must be symmetric")
    for i in np.flatnonzero(np.abs(np.diag(c) - 1.0) > 1e-9):
        raise ValueError(f"correlation {names[i]} / {names[i]} must be 1")
    for i, j in np.argwhere(np.abs(c) > 1.0):
        raise ValueError(f"correlation {names[i]} / {names[j]} ({c[i, j]:g}) must be in [−1, 1]")
    smallest = float(np.linalg.eigvalsh(c).min()) if k else 0.0
    if smallest < -1e-8:
        raise ValueError(f"the correlation matrix is not positive semi-definite (smallest eigenvalue "
                         f"{smallest:.3g}): some correlations contradict each other")
    return c


@dataclass(frozen=True)
class RiskFactors:
    """Spot-return and ATM-vol-change factors over ``horizon_days``: ``sigma`` (K,) standard
    deviations over the horizon (fraction for spot, vol points as a decimal for vol),
    ``correlation`` (K × K), ``source`` "market" or "history"."""

    underlyings: tuple[str, ...]
    sigma: np.ndarray
    correlation: np.ndarray
    horizon_days: float
    source: str = "market"

    @property
    def names(self) -> tuple[str, ...]:
        return factor_names(self.underlyings)

    @property
    def covariance(self) -> np.ndarray:
        return self.correlation * np.outer(self.sigma, self.sigma)

    def with_correlation(self, correlation) -> RiskFactors:
        return replace(self, correlation=check_correlation(correlation, list(self.names)))

    def cholesky(self) -> np.ndarray:
        """Lower factor L with L·Lᵀ = correlation (eigen-decomposition when only semi-definite)."""
        try:
            return np.linalg.cholesky(self.correlation)
        except np.linalg.LinAlgError:
            w, V = np.linalg.eigh(self.correlation)
            return V * np.sqrt(np.maximum(w, 0.0))

    def frame(self) -> pd.DataFrame:
        """Correlation matrix labelled by factor name (for the editor)."""
        return pd.DataFrame(self.correlation, index=list(self.names), columns=list(self.names))


def atm_vol(market: Market, underlying: str, tenor_days: float = DEFAULT_TENOR_DAYS) -> float:
    """ATM implied vol (decimal p.a.) of ``underlying`` at ``tenor_days``: smile vol at K = F."""
    T = tenor_days / DAYS_PER_YEAR
    F = market.forward(underlying, T)
    return float(np.ravel(market.vol(underlying, F, T))[0])


def market_factors(market: Market, underlyings, horizon_days: float = 1.0, correlation=None,
                   vol_of_vol: float = DEFAULT_VOL_OF_VOL, tenor_days: float = DEFAULT_TENOR_DAYS) -> RiskFactors:
    """Factors from the market: σ_spot = σ_ATM·√(h/365), σ_vol = vol_of_vol·σ_ATM·√(h/365).

    ``vol_of_vol`` is the annualised relative volatility of ATM vol (1.0: a 50 % ATM vol moves by
    about 2.6 points a day), our parameter; ``correlation`` defaults to :func:`default_correlation`.
    """
    _check_horizon(horizon_days)
    if not 0.0 <= vol_of_vol <= 10.0:
        raise ValueError(f"vol_of_vol must be in [0, 10] (got {vol_of_vol:g})")
    unds = tuple(underlyings)
    atm = np.array([atm_vol(market, u, tenor_days) for u in unds])
    root_h = math.sqrt(horizon_days / DAYS_PER_YEAR)
    sigma = np.concatenate([atm * root_h, vol_of_vol * atm * root_h])
    corr = (default_correlation(len(unds)) if correlation is None
            else check_correlation(correlation, list(factor_names(unds))))
    return RiskFactors(unds, sigma, corr, float(horizon_days), "market")


def _check_horizon(horizon_days: float):
    if not (isinstance(horizon_days, (int, float)) and 0 < horizon_days <= 365):
        raise ValueError(f"horizon must be in (0, 365] days (got {horizon_days!r})")


def _check_confidences(confidences) -> tuple[float, ...]:
    cs = tuple(float(c) for c in confidences)
    if not cs or any(not 0.5 <= c < 1.0 for c in cs):
        raise ValueError(f"confidence levels must be in [0.5, 1) (got {confidences!r})")
    return cs


# ----------------------------------------------------------------------------- history


@dataclass(frozen=True)
class PriceHistory:
    """Daily closes (USD) per underlying and, where given, an ATM vol index (decimal p.a.),
    indexed by date; ``label`` says where it comes from."""

    prices: pd.DataFrame
    vols: pd.DataFrame
    label: str = ""

    @property
    def underlyings(self) -> tuple[str, ...]:
        return tuple(self.prices.columns)

    def require(self, underlyings) -> None:
        missing = [u for u in underlyings if u not in self.prices.columns]
        if missing:
            raise HistoryError(f"the history has no column {', '.join(missing)} (it has "
                               f"{', '.join(self.prices.columns) or 'none'}): add a column per underlying of the book")

    def moves(self, underlyings, horizon_days: int = 1) -> tuple[np.ndarray, np.ndarray, pd.Index]:
        """Overlapping h-day spot returns (fractions) and ATM vol changes (decimal) per
        underlying, (n, U) each, and the end date of each move.  Vol changes are 0 where the
        history has no vol column."""
        self.require(underlyings)
        h = int(horizon_days)
        p = self.prices[list(underlyings)].to_numpy(float)
        if len(p) <= h:
            raise HistoryError(f"the history has {len(p)} rows: too short for a {h}-day horizon")
        spot = p[h:] / p[:-h] - 1.0
        vol = np.zeros_like(spot)
        for k, u in enumerate(underlyings):
            if u in self.vols.columns:
                v = self.vols[u].to_numpy(float)
                vol[:, k] = v[h:] - v[:-h]
        return spot, vol, self.prices.index[h:]


def read_history(source, label: str = "uploaded history") -> PriceHistory:
    """Read a history CSV: ``date,BTC,ETH[,BTC_vol,...]`` — one row per day, closes in USD,
    optional ATM vol index per underlying (decimal, or percent when above 3).

    ``source``: a path, file-like object or CSV text.  Rows are sorted by date; a bad date, a
    non-positive or non-numeric price, or a duplicate date raises HistoryError naming the row.
    """
    try:
        if isinstance(source, os.PathLike) or (isinstance(source, str) and os.path.isfile(source)):
            frame = pd.read_csv(source)
        else:
            text = source.read() if hasattr(source, "read") else source
            text = text.decode("utf-8-sig") if isinstance(text, bytes) else str(text)
            frame = pd.read_csv(io.StringIO(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise HistoryError(f"the history is not a readable CSV: {exc}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    date_col = next((c for c in frame.columns if c.lower() == "date"), None)
    if date_col is None:
        raise HistoryError("the history needs a 'date' column (YYYY-MM-DD)")
    dates = pd.to_datetime(frame[date_col], errors="coerce", utc=True)
    for row in np.flatnonzero(dates.isna().to_numpy())[:1]:
        raise HistoryError(f"row {row + 1}: date {frame[date_col].iloc[row]!r} is not a date (YYYY-MM-DD)")
    price_cols = [c for c in frame.columns if c != date_col and not c.upper().endswith("_VOL")]
    vol_cols = [c for c in frame.columns if c.upper().endswith("_VOL")]
    if not price_cols:
        raise HistoryError("the history needs one price column per underlying, e.g. BTC,ETH")
    values = {}
    for c in price_cols + vol_cols:
        col = pd.to_numeric(frame[c], errors="coerce")
        bad = np.flatnonzero(~(col > 0).to_numpy())
        if len(bad):
            raise HistoryError(f"row {bad[0] + 1}, column {c}: {frame[c].iloc[bad[0]]!r} is not a positive number")
        values[c] = col.to_numpy(float)
    index = pd.DatetimeIndex(dates).tz_convert(None).normalize()
    dup = index.duplicated()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        raise HistoryError(f"row {row + 1}: date {index[row].date()} appears twice")
    prices = pd.DataFrame({c.upper(): values[c] for c in price_cols}, index=index).sort_index()
    vols = pd.DataFrame({c[:-4].upper(): values[c] for c in vol_cols}, index=index).sort_index()
    vols = vols.apply(lambda s: s / 100.0 if s.max() > 3.0 else s)
    if len(prices) < 30:
        raise HistoryError(f"the history has {len(prices)} rows: at least 30 days are needed")
    return PriceHistory(prices, vols, label)


#: The shipped demo history: Yahoo Finance daily closes via exploratium/market-data (MIT, see
#: samples/history/LICENSE and README.md).
DEMO_HISTORY_FILES = {"BTC": "BTC-USD_daily_2020-06-27_2021-06-28.csv",
                      "ETH": "ETH-USD_daily_2020-06-27_2021-06-28.csv"}


def demo_history() -> PriceHistory:
    """Real BTC and ETH daily closes, 2020-06-27 to 2021-06-28 (no vol index)."""
    folder = resources.files("engine.samples").joinpath("history")
    closes = {}
    for u, name in DEMO_HISTORY_FILES.items():
        with folder.joinpath(name).open("r", encoding="utf-8") as f:
            frame = pd.read_csv(f, usecols=["Date", "Close"], parse_dates=["Date"])
        closes[u] = frame.set_index("Date")["Close"]
    prices = pd.DataFrame(closes).dropna().sort_index()
    return PriceHistory(prices, pd.DataFrame(index=prices.index),
                        "BTC/ETH daily closes 2020-06-27 – 2021-06-28 (Yahoo Finance via exploratium/market-data, MIT)")


def ewma_vol(returns: np.ndarray, lam: float = EWMA_LAMBDA, seed_days: int = 20) -> np.ndarray:
    """EWMA volatility σ_t of each column of ``returns`` (n, k), RiskMetrics recursion

        σ²_t = λ·σ²_{t−1} + (1 − λ)·r²_{t−1},   σ²_0 = mean(r²) of the first ``seed_days``,

    so σ_t uses returns before t only; row n is the forecast for the next day: shape (n + 1, k).

    >>> float(ewma_vol(np.array([[0.01], [0.01], [0.01]]), seed_days=3)[-1, 0])
    0.01
    """
    r = np.asarray(returns, dtype=float)
    if not 0.0 < lam < 1.0:
        raise ValueError(f"EWMA lambda must be in (0, 1) (got {lam:g})")
    var = np.empty((len(r) + 1,) + r.shape[1:])
    var[0] = np.mean(r[:seed_days] ** 2, axis=0)
    for t in range(len(r)):  # a recursion over days, not over paths or options
        var[t + 1] = lam * var[t] + (1.0 - lam) * r[t] ** 2
    return np.sqrt(var)


def history_factors(history: PriceHistory, underlyings, horizon_days: float = 1.0, lam: float | None = EWMA_LAMBDA,
                    vol_of_vol: float = DEFAULT_VOL_OF_VOL, market: Market | None = None,
                    correlation=None) -> RiskFactors:
    """Factors from the history's daily log returns: σ the EWMA forecast for tomorrow (``lam``;
    None: the sample standard deviation) × √h, correlation from the same weights.  Vol factors
    come from the history's vol columns, else from ``market`` with ``vol_of_vol`` (then their
    correlations are :func:`default_correlation`'s)."""
    _check_horizon(horizon_days)
    unds = tuple(underlyings)
    history.require(unds)
    logs = np.diff(np.log(history.prices[list(unds)].to_numpy(float)), axis=0)
    has_vol = all(u in history.vols.columns for u in unds)
    x = np.hstack([logs, np.diff(history.vols[list(unds)].to_numpy(float), axis=0)]) if has_vol else logs
    if lam is None:
        cov = np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])
    else:
        w = lam ** np.arange(len(x))[::-1]
        cov = (x * w[:, None]).T @ x / w.sum()
    sd = np.sqrt(np.diag(cov)) * math.sqrt(horizon_days)
    corr_hist = cov / np.outer(np.sqrt(np.diag(cov)), np.sqrt(np.diag(cov)))
    if has_vol:
        sigma, corr = sd, corr_hist
    else:
        if market is None:
            raise HistoryError("the history has no vol columns (e.g. BTC_vol): give the market for the vol factors")
        mkt = market_factors(market, unds, horizon_days, vol_of_vol=vol_of_vol)
        sigma = np.concatenate([sd, mkt.sigma[len(unds):]])
        corr = mkt.correlation.copy()
        corr[:len(unds), :len(unds)] = corr_hist
    corr = check_correlation(corr if correlation is None else correlation, list(factor_names(unds)))
    return RiskFactors(unds, sigma, corr, float(horizon_days), "history")


# ----------------------------------------------------------------------------- sensitivities


@dataclass(frozen=True)
class Exposures:
    """First and second order P&L sensitivities to the factors, per position (USD).

    ``first`` (P, K): ∂P&L/∂x — $delta (S·∂V/∂S) on the spot factor, vega per 1.00 of vol on the
    vol factor.  Second order terms of each position sit on its own underlying u: ``gamma``
    Γ·S² (∂²P&L/∂s²), ``vanna`` S·∂²V/∂S∂σ, ``volga`` ∂²V/∂σ²; ``theta`` USD per day.
    """

    underlyings: tuple[str, ...]
    und: np.ndarray  # (P,) underlying index of each position
    first: np.ndarray
    gamma: np.ndarray
    vanna: np.ndarray
    volga: np.ndarray
    theta: np.ndarray

    @property
    def n_factors(self) -> int:
        return 2 * len(self.underlyings)

    def second(self, weights: np.ndarray | None = None) -> np.ndarray:
        """(K × K) second-order matrix G of the book (or of positions scaled by ``weights``)."""
        w = np.ones(len(self.und)) if weights is None else weights
        U, K = len(self.underlyings), self.n_factors
        G = np.zeros((K, K))
        np.add.at(G, (self.und, self.und), w * self.gamma)
        np.add.at(G, (self.und, U + self.und), w * self.vanna)
        np.add.at(G, (U + self.und, self.und), w * self.vanna)
        np.add.at(G, (U + self.und, U + self.und), w * self.volga)
        return G

    def position_second(self) -> np.ndarray:
        """(P, K, K) second-order matrix of each position on its own."""
        P, U, K = len(self.und), len(self.underlyings), self.n_factors
        G = np.zeros((P, K, K))
        p = np.arange(P)
        G[p, self.und, self.und] = self.gamma
        G[p, self.und, U + self.und] = G[p, U + self.und, self.und] = self.vanna
        G[p, U + self.und, U + self.und] = self.volga
        return G


def exposures(analysis: Analysis) -> Exposures:
    """Factor exposures of every position of ``analysis`` (display Greeks converted to USD per
    unit factor: gamma_usd_1pct·100 = Γ·S², vega_per_vol_pt·100 = vega per 1.00, …)."""
    arr, pos, q = analysis.arrays, analysis.position_instrument, analysis.quantities
    g = instrument_greeks(arr)
    und = arr.und_index[pos]
    U = len(arr.underlyings)
    first = np.zeros((len(pos), 2 * U))
    first[np.arange(len(pos)), und] = q * g["delta_usd"][pos]
    first[np.arange(len(pos)), U + und] = q * g["vega_per_vol_pt"][pos] * 100.0
    return Exposures(arr.underlyings, und, first, q * g["gamma_usd_1pct"][pos] * 100.0,
                     q * g["vanna_per_vol_pt"][pos] * 100.0 * arr.spot[pos],
                     q * g["volga_per_vol_pt"][pos] * 1e4, q * g["theta_per_day"][pos])


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class VarResult:
    """VaR and ES (USD, losses positive) of one method at each of ``confidences``.

    ``component_var``/``component_es`` (C, P): Euler shares per position, each row summing to
    the total.  ``pnl``: the simulated or historical P&L sample (empty for parametric methods);
    ``standard_error`` (C,): of the sample VaR (binomial order-statistic interval), NaN for
    parametric; ``moments``: mean, std, skew, excess kurtosis of the P&L the method assumed.
    """

    method: str
    confidences: tuple[float, ...]
    horizon_days: float
    var: np.ndarray
    es: np.ndarray
    component_var: np.ndarray
    component_es: np.ndarray
    instruments: tuple[str, ...]
    position_underlying: tuple[str, ...]
    pnl: np.ndarray = field(default_factory=lambda: np.zeros(0))
    standard_error: np.ndarray = field(default_factory=lambda: np.zeros(0))
    moments: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def table(self) -> pd.DataFrame:
        se = self.standard_error if len(self.standard_error) else np.full(len(self.confidences), np.nan)
        return pd.DataFrame({"method": self.method, "confidence": self.confidences, "horizon_days": self.horizon_days,
                             "var": self.var, "es": self.es, "standard_error": se})

    def by_position(self, confidence: float) -> pd.DataFrame:
        k = self.confidence_index(confidence)
        return pd.DataFrame({"position": np.arange(len(self.instruments)), "instrument": self.instruments,
                             "underlying": self.position_underlying,
                             "component_var": self.component_var[k], "component_es": self.component_es[k]})

    def by_underlying(self, confidence: float) -> pd.DataFrame:
        return (self.by_position(confidence).groupby("underlying", sort=True)[["component_var", "component_es"]]
                .sum().reset_index())

    def confidence_index(self, confidence: float) -> int:
        k = int(np.argmin(np.abs(np.asarray(self.confidences) - confidence)))
        if abs(self.confidences[k] - confidence) > 1e-9:
            raise ValueError(f"confidence {confidence:g} was not computed (have {self.confidences})")
        return k


def _result(method, analysis, confidences, horizon_days, var, es, cvar, ces, **extra) -> VarResult:
    arr, pos = analysis.arrays, analysis.position_instrument
    unds = np.asarray(arr.underlyings, dtype=object)[arr.und_index[pos]] if len(pos) else np.zeros(0, dtype=object)
    return VarResult(method, tuple(confidences), float(horizon_days), np.asarray(var, float), np.asarray(es, float),
                     np.asarray(cvar, float), np.asarray(ces, float), tuple(arr.names[pos]), tuple(unds), **extra)


# ----------------------------------------------------------------------------- parametric


def _standard_quantile(c: float, distribution: str, nu: float) -> tuple[float, float]:
    """(q, es) of a unit-variance loss distribution at confidence c: VaR = q·σ, ES = es·σ."""
    if distribution == "normal":
        z = stats.norm.ppf(c)
        return float(z), float(stats.norm.pdf(z) / (1.0 - c))
    t = stats.t.ppf(c, nu)
    scale = math.sqrt((nu - 2.0) / nu)
    es = stats.t.pdf(t, nu) / (1.0 - c) * (nu + t * t) / (nu - 1.0)
    return float(t * scale), float(es * scale)


def _check_distribution(distribution: str, nu: float):
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {', '.join(DISTRIBUTIONS)} (got {distribution!r})")
    if distribution == "student_t" and not (isinstance(nu, (int, float)) and 2.0 < nu <= 1000.0):
        raise ValueError(f"Student-t degrees of freedom ν must be in (2, 1000] (got {nu!r})")


def delta_normal_var(analysis: Analysis, factors: RiskFactors, confidences=CONFIDENCES,
                     distribution: str = "normal", nu: float = 5.0) -> VarResult:
    """Delta-normal VaR/ES (zero mean): VaR_c = q_c·σ_P, σ_P = √(aᵀΣa), a the book's first-order
    exposures; component_p = q_c·a_pᵀΣa/σ_P (Euler, sums to VaR).

    E.g. one long BTC perp at 95,000 USD, σ = 50 % p.a., 1 day, 99 %: 2.3263·0.5·√(1/365)·95,000
    = 5,783.9 USD (tests/engine/test_var.py checks it by hand).
    """
    cs = _check_confidences(confidences)
    _check_distribution(distribution, nu)
    ex = _aligned(analysis, factors)
    cov = factors.covariance
    a = ex.first.sum(axis=0)
    sa = cov @ a
    sd = math.sqrt(max(float(a @ sa), 0.0))
    share = ex.first @ sa / sd if sd > 0 else np.zeros(len(ex.und))
    qs = np.array([_standard_quantile(c, distribution, nu) for c in cs])
    return _result("delta_normal", analysis, cs, factors.horizon_days, qs[:, 0] * sd, qs[:, 1] * sd,
                   qs[:, :1] * share[None], qs[:, 1:] * share[None],
                   moments={"mean": 0.0, "std": sd, "skew": 0.0, "excess_kurtosis": 0.0})


def _aligned(analysis: Analysis, factors: RiskFactors) -> Exposures:
    ex = exposures(analysis)
    if tuple(ex.underlyings) != tuple(factors.underlyings):
        raise ValueError(f"the factors are for {', '.join(factors.underlyings)}, the book has "
                         f"{', '.join(ex.underlyings)}: rebuild the factors for this book")
    return ex


def quadratic_moments(a: np.ndarray, G: np.ndarray, cov: np.ndarray, drift=0.0):
    """Mean, variance, skewness and excess kurtosis of L = drift + aᵀx + ½xᵀGx, x ~ N(0, Σ).

    With M = GΣ (cumulants of a quadratic form in normal variables, Mathai & Provost 1992):
    κ1 = drift + ½tr M,  κ2 = aᵀΣa + ½tr M²,  κ3 = 3aᵀΣGΣa + tr M³,
    κ4 = 12aᵀΣ(GΣ)²a + 3tr M⁴.  ``a`` (…, K) and ``G`` (…, K, K) may carry a leading batch axis.

    >>> m = quadratic_moments(np.zeros(1), np.array([[2.0]]), np.eye(1))  # L = x², a χ²(1)
    >>> [round(float(v), 6) for v in m]
    [1.0, 2.0, 2.828427, 12.0]
    """
    M = G @ cov
    M2 = M @ M
    tr = np.trace
    sa = a @ cov  # (…, K): Σa
    k1 = drift + 0.5 * tr(M, axis1=-2, axis2=-1)
    k2 = np.einsum("...i,...i->...", a, sa) + 0.5 * tr(M2, axis1=-2, axis2=-1)
    gsa = np.einsum("...ij,...j->...i", G, sa)
    k3 = 3.0 * np.einsum("...i,...i->...", sa, gsa) + tr(M2 @ M, axis1=-2, axis2=-1)
    sgsa = np.einsum("ij,...j->...i", cov, gsa)
    k4 = 12.0 * np.einsum("...i,...ij,...j->...", sa, G, sgsa) + 3.0 * tr(M2 @ M2, axis1=-2, axis2=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        skew = np.where(k2 > 0, k3 / np.maximum(k2, 1e-300) ** 1.5, 0.0)
        kurt = np.where(k2 > 0, k4 / np.maximum(k2, 1e-300) ** 2, 0.0)
    return k1, k2, skew, kurt


def cornish_fisher(z, skew, kurt):
    """Cornish–Fisher quantile of a standardised variable with skewness and excess kurtosis
    (Jorion, *Value at Risk* 3rd ed., eq. 14.25):

        z_cf = z + (z² − 1)·S/6 + (z³ − 3z)·K/24 − (2z³ − 5z)·S²/36

    >>> round(float(cornish_fisher(-2.326, 0.0, 0.0)), 3)
    -2.326
    """
    z = np.asarray(z, dtype=float)
    return (z + (z * z - 1.0) * skew / 6.0 + (z ** 3 - 3.0 * z) * kurt / 24.0
            - (2.0 * z ** 3 - 5.0 * z) * skew ** 2 / 36.0)


_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(48)


def _cf_var_es(mean, var, skew, kurt, c: float):
    """VaR and ES (losses positive) of the Cornish–Fisher distribution at confidence c;
    ES = −(1/(1−c))·∫₀^{1−c} q(u) du by 48-point Gauss–Legendre."""
    sd = np.sqrt(np.maximum(var, 0.0))
    alpha = 1.0 - c
    var_c = -(mean + sd * cornish_fisher(special.ndtri(alpha), skew, kurt))
    z_tail = special.ndtri(alpha * 0.5 * (_GL_NODES + 1.0))
    q = cornish_fisher(z_tail, np.asarray(skew)[..., None], np.asarray(kurt)[..., None])
    es_c = -(mean + sd * (q * (0.5 * _GL_WEIGHTS)).sum(axis=-1))
    return var_c, es_c


EULER_STEP = 1e-4


def delta_gamma_var(analysis: Analysis, factors: RiskFactors, confidences=CONFIDENCES) -> VarResult:
    """Delta-gamma-vega VaR/ES: the P&L θ·h + aᵀx + ½xᵀGx (gamma, vanna, volga on each
    underlying), its first four cumulants in closed form (:func:`quadratic_moments`) and the
    Cornish–Fisher quantile.  Components: the CF VaR is homogeneous of degree 1 in the
    positions, so q_p·∂VaR/∂q_p (one-sided difference, step 1e-4, all positions at once) sums
    to it; the small remainder is spread by scaling."""
    cs = _check_confidences(confidences)
    ex = _aligned(analysis, factors)
    cov = factors.covariance
    h = factors.horizon_days
    a, G, drift = ex.first.sum(axis=0), ex.second(), float(ex.theta.sum()) * h
    k1, k2, skew, kurt = quadratic_moments(a, G, cov, drift)
    # Every position shrunk by ε at once: a batch of P books.
    a_b = a[None] - EULER_STEP * ex.first
    G_b = G[None] - EULER_STEP * ex.position_second()
    b1, b2, bs, bk = quadratic_moments(a_b, G_b, cov, drift - EULER_STEP * ex.theta * h)
    var, es, cvar, ces = [], [], [], []
    for c in cs:
        v, e = _cf_var_es(k1, k2, skew, kurt, c)
        vb, eb = _cf_var_es(b1, b2, bs, bk, c)
        var.append(float(v))
        es.append(float(e))
        cvar.append(_scaled((v - vb) / EULER_STEP, float(v)))
        ces.append(_scaled((e - eb) / EULER_STEP, float(e)))
    notes: tuple[str, ...] = ()
    if abs(float(skew)) > 1.5 or float(kurt) > 8.0:
        notes = (f"the P&L is far from normal (skew {float(skew):.2f}, excess kurtosis {float(kurt):.1f}): the "
                 "Cornish–Fisher expansion is unreliable there, prefer Monte Carlo",)
    return _result("delta_gamma", analysis, cs, h, var, es, cvar, ces, notes=notes,
                   moments={"mean": float(k1), "std": math.sqrt(max(float(k2), 0.0)), "skew": float(skew),
                            "excess_kurtosis": float(kurt)})


def _scaled(contrib: np.ndarray, total: float) -> np.ndarray:
    s = contrib.sum()
    if abs(s) > 1e-12 * max(abs(total), 1.0):
        return contrib * (total / s)
    return np.full(len(contrib), total / max(len(contrib), 1))


# ----------------------------------------------------------------------------- full revaluation


def revalue_scenarios(analysis: Analysis, spot_shocks: np.ndarray, vol_shocks: np.ndarray,
                      horizon_days: float) -> np.ndarray:
    """P&L per contract of every instrument (n, N) under n scenarios of per-underlying spot
    returns and ATM vol shifts (n, U each), after ``horizon_days``; the paths are split over the
    revaluation threads, each slice one broadcast call of the kernel."""
    arr = analysis.arrays
    s = np.maximum(np.asarray(spot_shocks, dtype=float), MIN_SPOT_SHOCK)[:, arr.und_index]
    v = np.asarray(vol_shocks, dtype=float)[:, arr.und_index]
    h = horizon_days / DAYS_PER_YEAR
    base = instrument_values(arr)
    parts = np.array_split(np.arange(len(s)), max(1, math.ceil(len(s) / _MC_CHUNK)))
    with revaluation_pool() as pool:
        futures = [pool.submit(lambda idx: instrument_values(arr, s[idx], v[idx], h) - base, p) for p in parts]
        return np.concatenate([f.result() for f in futures], axis=0) if parts else np.zeros((0, len(arr)))


def sample_var(pnl: np.ndarray, confidence: float) -> tuple[float, float, int]:
    """(VaR, ES, k) of a P&L sample: k = ⌈n(1−c)⌉, VaR = −k-th smallest P&L, ES = −mean of the
    k smallest.

    >>> sample_var(np.arange(-50.0, 50.0), 0.95)
    (46.0, 48.0, 5)
    """
    n = len(pnl)
    k = max(1, math.ceil(round(n * (1.0 - confidence), 9)))
    part = np.partition(pnl, k - 1)[:k]
    return float(-part.max()), float(-part.mean()), k


def _sample_result(method, analysis, cs, horizon_days, inst_pnl: np.ndarray, notes=()) -> VarResult:
    pos, q = analysis.position_instrument, analysis.quantities
    net = net_quantities(pos, q, len(analysis.arrays))
    pnl = inst_pnl @ net
    order = np.argsort(pnl, kind="stable")
    n = len(pnl)
    var, es, cvar, ces, se = [], [], [], [], []
    for c in cs:
        v, e, k = sample_var(pnl, c)
        d = max(1, int(round(math.sqrt(n * (1.0 - c) * c))))
        lo, hi = max(0, k - 1 - d), min(n - 1, k - 1 + d)
        se.append(0.5 * (pnl[order[hi]] - pnl[order[lo]]))
        tail = order[:k]
        ces.append(-(inst_pnl[tail][:, pos] * q).mean(axis=0))
        window = order[lo:hi + 1]
        cvar.append(_scaled(-(inst_pnl[window][:, pos] * q).mean(axis=0), v))
        var.append(v)
        es.append(e)
    mean, sd = float(pnl.mean()), float(pnl.std())
    moments = {"mean": mean, "std": sd, "skew": float(stats.skew(pnl)) if sd > 0 else 0.0,
               "excess_kurtosis": float(stats.kurtosis(pnl)) if sd > 0 else 0.0}
    return _result(method, analysis, cs, horizon_days, var, es, cvar, ces, pnl=pnl,
                   standard_error=np.asarray(se), moments=moments, notes=tuple(notes))


def draw_factors(factors: RiskFactors, paths: int, seed: int = 7, distribution: str = "normal",
                 nu: float = 5.0) -> np.ndarray:
    """(paths × K) factor moves: L·z scaled by σ, z standard normal, or multivariate Student-t
    with ν (z·√((ν−2)/W), W ~ χ²_ν shared by the factors of a path: unit variance, tail
    dependence), from ``numpy.random.default_rng(seed)``."""
    _check_distribution(distribution, nu)
    if not (isinstance(paths, (int, np.integer)) and 100 <= paths <= 1_000_000):
        raise ValueError(f"paths must be a whole number in [100, 1,000,000] (got {paths!r})")
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((paths, len(factors.sigma)))
    if distribution == "student_t":
        z *= np.sqrt((nu - 2.0) / rng.chisquare(nu, paths))[:, None]
    return (z @ factors.cholesky().T) * factors.sigma


def monte_carlo_var(analysis: Analysis, factors: RiskFactors, confidences=CONFIDENCES, paths: int = 10_000,
                    seed: int = 7, distribution: str = "normal", nu: float = 5.0) -> VarResult:
    """Monte Carlo VaR/ES with full revaluation of every instrument at the horizon (time decay
    included) under ``paths`` correlated factor draws (:func:`draw_factors`)."""
    cs = _check_confidences(confidences)
    _aligned(analysis, factors)
    x = draw_factors(factors, paths, seed, distribution, nu)
    U = len(factors.underlyings)
    inst = revalue_scenarios(analysis, x[:, :U], x[:, U:], factors.horizon_days)
    return _sample_result("monte_carlo", analysis, cs, factors.horizon_days, inst)


def historical_scenarios(history: PriceHistory, underlyings, horizon_days: int = 1, filtered: bool = False,
                         lam: float = EWMA_LAMBDA) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    """Spot returns and vol changes (n, U each) of the history as scenarios.

    Plain: the overlapping h-day moves.  Filtered: daily log returns (and vol changes) divided
    by their EWMA σ_t and multiplied by tomorrow's forecast σ_{T+1}, scaled by √h (spot return
    e^{r} − 1)."""
    if not filtered:
        return history.moves(underlyings, horizon_days)
    spot1, vol1, dates = history.moves(underlyings, 1)
    r = np.log1p(spot1)
    sig = ewma_vol(r, lam)
    r_f = r / np.maximum(sig[:-1], 1e-12) * sig[-1] * math.sqrt(horizon_days)
    if np.any(vol1 != 0):
        sv = ewma_vol(vol1, lam)
        vol1 = vol1 / np.maximum(sv[:-1], 1e-12) * sv[-1] * math.sqrt(horizon_days)
    return np.expm1(r_f), vol1, dates


def historical_var(analysis: Analysis, history: PriceHistory, confidences=CONFIDENCES, horizon_days: int = 1,
                   filtered: bool = False, lam: float = EWMA_LAMBDA) -> VarResult:
    """Historical (or filtered historical) simulation with full revaluation of the book under
    every scenario of :func:`historical_scenarios`."""
    cs = _check_confidences(confidences)
    _check_horizon(horizon_days)
    if float(horizon_days) != int(horizon_days):
        raise ValueError(f"historical horizons are whole days (got {horizon_days!r})")
    unds = analysis.arrays.underlyings
    spot, vol, _ = historical_scenarios(history, unds, int(horizon_days), filtered, lam)
    notes = []
    if not all(u in history.vols.columns for u in unds):
        notes.append("the history has no vol index: implied vols are held flat in its scenarios")
    if len(spot) < 250:
        notes.append(f"only {len(spot)} scenarios: the {max(cs):.1%} quantile rests on very few of them")
    inst = revalue_scenarios(analysis, spot, vol, horizon_days)
    return _sample_result("filtered_historical" if filtered else "historical", analysis, cs, horizon_days, inst, notes)


def compute_var(analysis: Analysis, method: str, *, factors: RiskFactors | None = None,
                history: PriceHistory | None = None, confidences=CONFIDENCES, horizon_days: float = 1.0,
                paths: int = 10_000, seed: int = 7, distribution: str = "normal", nu: float = 5.0) -> VarResult:
    """One entry point for the five methods (names in :data:`METHODS`); ``factors`` default to
    the market's at ``horizon_days``; historical methods need ``history``."""
    if method not in METHODS:
        raise ValueError(f"unknown VaR method {method!r}; choose one of {', '.join(METHODS)}")
    if method in ("historical", "filtered_historical"):
        if history is None:
            raise ValueError(f"{METHODS[method]} needs a price history")
        return historical_var(analysis, history, confidences, int(horizon_days), method == "filtered_historical")
    factors = factors or market_factors(analysis.market, analysis.arrays.underlyings, horizon_days)
    if method == "delta_normal":
        return delta_normal_var(analysis, factors, confidences, distribution, nu)
    if method == "delta_gamma":
        return delta_gamma_var(analysis, factors, confidences)
    return monte_carlo_var(analysis, factors, confidences, paths, seed, distribution, nu)


# ----------------------------------------------------------------------------- backtest


def kupiec_pof(n: int, exceptions: int, p: float) -> tuple[float, float]:
    """Kupiec (1995) proportion-of-failures LR and its χ²(1) p-value:

        LR = −2·ln[(1−p)^{n−x}·p^x] + 2·ln[(1−x/n)^{n−x}·(x/n)^x]

    Exactly the expected number of exceptions gives LR = 0:

    >>> kupiec_pof(1000, 10, 0.01)
    (0.0, 1.0)
    """
    x = int(exceptions)
    if n <= 0 or not 0 <= x <= n or not 0.0 < p < 1.0:
        raise ValueError(f"need n > 0, 0 ≤ exceptions ≤ n and 0 < p < 1 (got {n}, {x}, {p})")
    rate = x / n
    ll0 = (n - x) * math.log1p(-p) + x * math.log(p)
    ll1 = _xlogy(n - x, 1.0 - rate) + _xlogy(x, rate)
    lr = max(0.0, -2.0 * (ll0 - ll1))
    return lr, float(stats.chi2.sf(lr, 1))


def _xlogy(a: float, b: float) -> float:
    return 0.0 if a == 0 else a * math.log(b)


@dataclass(frozen=True)
class Christoffersen:
    """Transition counts n_ij (state i then j; 1 = exception), LR_ind with its χ²(1) p-value and
    the conditional-coverage LR_cc = LR_pof + LR_ind with its χ²(2) p-value."""

    n00: int
    n01: int
    n10: int
    n11: int
    lr_ind: float
    p_ind: float
    lr_cc: float
    p_cc: float


def christoffersen(exceptions, p: float) -> Christoffersen:
    """Christoffersen (1998) independence test of an exception sequence (0/1), with
    π01 = n01/(n00+n01), π11 = n11/(n10+n11), π = (n01+n11)/(n00+n01+n10+n11):

        LR_ind = −2·ln[(1−π)^{n00+n10}·π^{n01+n11}] + 2·ln[(1−π01)^{n00}·π01^{n01}·(1−π11)^{n10}·π11^{n11}]
    """
    e = np.asarray(exceptions, dtype=int)
    prev, nxt = e[:-1], e[1:]
    n00 = int(((prev == 0) & (nxt == 0)).sum())
    n01 = int(((prev == 0) & (nxt == 1)).sum())
    n10 = int(((prev == 1) & (nxt == 0)).sum())
    n11 = int(((prev == 1) & (nxt == 1)).sum())
    total = n00 + n01 + n10 + n11
    pi = (n01 + n11) / total if total else 0.0
    pi01 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi11 = n11 / (n10 + n11) if n10 + n11 else 0.0
    ll0 = _xlogy(n00 + n10, 1.0 - pi) + _xlogy(n01 + n11, pi)
    ll1 = _xlogy(n00, 1.0 - pi01) + _xlogy(n01, pi01) + _xlogy(n10, 1.0 - pi11) + _xlogy(n11, pi11)
    lr_ind = max(0.0, -2.0 * (ll0 - ll1))
    lr_pof = kupiec_pof(len(e), int(e.sum()), p)[0] if len(e) else 0.0
    lr_cc = lr_pof + lr_ind
    return Christoffersen(n00, n01, n10, n11, lr_ind, float(stats.chi2.sf(lr_ind, 1)), lr_cc,
                          float(stats.chi2.sf(lr_cc, 2)))


@dataclass(frozen=True)
class Backtest:
    """Daily VaR forecasts against the book's P&L under each day's realised move.

    ``frame``: date, pnl (USD), var (USD, the forecast made the day before), exception (bool).
    """

    method: str
    confidence: float
    window: int
    frame: pd.DataFrame
    exceptions: int
    expected: float
    kupiec_lr: float
    kupiec_p: float
    christoffersen: Christoffersen


def backtest(analysis: Analysis, history: PriceHistory, confidence: float = 0.99, window: int = 250,
             method: str = "historical", lam: float = EWMA_LAMBDA) -> Backtest:
    """Backtest one-day VaR of today's book on the history (hypothetical P&L: the book held
    fixed, revalued in full under each day's realised move).

    ``historical``: VaR_t = the sample VaR of the previous ``window`` days' P&L.
    ``filtered_historical``: the same on P&L standardised by its own EWMA σ and rescaled by
    σ_t (filtering at the book level: one revaluation per day, not per day and scenario).
    """
    _check_confidences((confidence,))
    if method not in ("historical", "filtered_historical"):
        raise ValueError("the backtest runs historical or filtered_historical")
    spot, vol, dates = history.moves(analysis.arrays.underlyings, 1)
    if not 20 <= window <= len(spot) - 20:
        raise ValueError(f"window must be 20…{len(spot) - 20} days for this history of {len(spot)} moves "
                         f"(got {window})")
    net = net_quantities(analysis.position_instrument, analysis.quantities, len(analysis.arrays))
    pnl = revalue_scenarios(analysis, spot, vol, 1.0) @ net
    windows = np.lib.stride_tricks.sliding_window_view(pnl, window)[:-1]  # forecast for day window + t
    if method == "filtered_historical":
        sig = ewma_vol(pnl[:, None], lam)[:, 0]
        z = pnl / np.maximum(sig[:-1], 1e-12)
        windows = np.lib.stride_tricks.sliding_window_view(z, window)[:-1] * sig[window:-1, None]
    k = max(1, math.ceil(round(window * (1.0 - confidence), 9)))
    var = -np.partition(windows, k - 1, axis=1)[:, k - 1]
    realised = pnl[window:]
    exc = realised < -var
    frame = pd.DataFrame({"date": dates[window:], "pnl": realised, "var": var, "exception": exc})
    lr, p_val = kupiec_pof(len(exc), int(exc.sum()), 1.0 - confidence)
    return Backtest(method, confidence, window, frame, int(exc.sum()), len(exc) * (1.0 - confidence), lr, p_val,
                    christoffersen(exc.astype(int), 1.0 - confidence))


@dataclass(frozen=True)
class VarSummary:
    """Every method at every confidence side by side (``table``) and each method's result."""

    results: dict
    table: pd.DataFrame

    @cached_property
    def methods(self) -> tuple[str, ...]:
        return tuple(self.results)


def var_summary(analysis: Analysis, factors: RiskFactors | None = None, history: PriceHistory | None = None,
                confidences=CONFIDENCES, horizon_days: float = 1.0, paths: int = 10_000, seed: int = 7,
                distribution: str = "normal", nu: float = 5.0, methods=None) -> VarSummary:
    """:func:`compute_var` for each of ``methods`` (default: all, the historical ones only with a
    history) and one table of VaR/ES by method and confidence."""
    wanted = methods or [m for m in METHODS if history is not None or "historical" not in m]
    results = {m: compute_var(analysis, m, factors=factors, history=history, confidences=confidences,
                              horizon_days=horizon_days, paths=paths, seed=seed, distribution=distribution, nu=nu)
               for m in wanted}
    table = pd.concat([r.table() for r in results.values()], ignore_index=True)
    return VarSummary(results, table)


__all__ = ["Backtest", "CONFIDENCES", "Christoffersen", "DISTRIBUTIONS", "Exposures", "HistoryError", "METHODS",
           "PriceHistory", "RiskFactors", "VarResult", "VarSummary", "atm_vol", "backtest", "check_correlation",
           "christoffersen", "compute_var", "cornish_fisher", "default_correlation", "delta_gamma_var",
           "delta_normal_var", "demo_history", "draw_factors", "ewma_vol", "exposures", "factor_names",
           "historical_scenarios", "historical_var", "history_factors", "kupiec_pof", "market_factors",
           "monte_carlo_var", "quadratic_moments", "read_history", "revalue_scenarios", "sample_var", "var_summary"]
