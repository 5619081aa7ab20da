"""Account stress beyond VaR: real crypto crashes replayed on the book, reverse stress and margin
explain (docs/methodology.md §5, §6, §8; the method is docs/var.md).

**Crash library** (``samples/crashes.json``, one file, each episode with its sources and what
could not be found): dated paths of spot moves and ATM implied vol per underlying, and the price
of a stable coin held as collateral.  Users add their own as a CSV (:func:`read_episode_csv`).

**Replay** (:func:`replay_episode`): at every point of an episode the book is revalued in full at
today's snapshot moved by the episode — spot × (1 + s_u) per underlying, every smile of u shifted
by Δσ_u (and its skew coefficient by Δskew_u when given) — with time held at today, so a
constant path changes nothing.  Equity = collateral + mark-to-market − stable-coin loss; IM and
MM come from the selected margin model (``engine.margin``) prepared at the moved snapshot;
margin ratio = MM / equity.  The first point where equity < MM is the liquidation moment, and
the liquidation plan (``engine.liquidation``) is run there to show what it would close.

**Reverse stress** (:func:`reverse_stress`): in the plane of a common spot move s (every
underlying) and a common ATM vol shift v, the liquidation boundary is where equity(s, v) =
MM(s, v).  The *most likely* breaking point minimises the Mahalanobis distance
d = √((s, v)·C⁻¹·(s, v)ᵀ), C the covariance of the average spot factor and the average vol
factor under the VaR factor model (``engine.var.RiskFactors``); its probability under the model
is the first-order (FORM, Hasofer–Lind) estimate P = Φ(−d) of crossing the boundary's tangent at
that point.  A stable-coin depeg is a third scenario for accounts holding stable collateral:
``stable_collateral_usd`` (USD face value) loses the depeg fraction; the depeg that alone
liquidates is (equity − MM) / stable_collateral_usd.  The account model has no stable-collateral
field yet, so it is an argument here.

**Margin explain** (:func:`margin_explain`): IM after − IM before split per position (the
margin model's Euler shares, which sum to each IM), per component and per scenario.
"""
from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from importlib import resources

import numpy as np
import pandas as pd
from scipy import stats
from scipy.optimize import brentq, minimize_scalar

from .liquidation import liquidation_plan
from .margin import MarginResult, ModelSpec, compute, model_spec
from .margin.account import margin_ratio, position_mtm
from .margin.core import MarginBook, Universe, evaluate, margin_book
from .market import Market
from .portfolio import Book
from .scenarios import InstrumentArrays
from .var import atm_vol

MAX_EPISODE_POINTS = 2_000


# ----------------------------------------------------------------------------- library


@dataclass(frozen=True)
class CrashEpisode:
    """One crash: series of [hours, value] per underlying — ``spot`` (fraction), ``vol_change``
    (ATM vol points as a decimal), ``vol_level`` (documented ATM level, decimal), ``skew_change``
    (change of the smile's skew coefficient) — and ``stable`` [hours, USD price]."""

    key: str
    title: str
    start: str
    summary: str
    spot: dict
    vol_change: dict = field(default_factory=dict)
    vol_level: dict = field(default_factory=dict)
    skew_change: dict = field(default_factory=dict)
    stable: tuple = ()
    sources: tuple = ()
    not_found: tuple = ()

    @property
    def underlyings(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(list(self.spot) + list(self.vol_change) + list(self.vol_level)))

    def hours(self) -> np.ndarray:
        pts = [p[0] for series in (*self.spot.values(), *self.vol_change.values(), *self.vol_level.values(),
                                   *self.skew_change.values()) for p in series]
        pts += [p[0] for p in self.stable] + [0.0]
        return np.unique(np.asarray(pts, dtype=float))

    def path(self, underlyings, market: Market | None = None, tenor_days: float = 30.0) -> pd.DataFrame:
        """The episode on ``underlyings``: columns hours, spot_<U>, vol_<U>, skew_<U>, stable.

        Series are interpolated linearly in hours and held flat after their last point; an
        underlying the episode does not list follows its first listed underlying; a vol level
        becomes a change from today's ATM vol (``market`` needed) starting at 0 at hour 0.
        """
        hours = self.hours()
        first = self.underlyings[0] if self.underlyings else None
        out = {"hours": hours}
        for u in underlyings:
            src = u if u in self.underlyings else first
            out[f"spot_{u}"] = _series(self.spot.get(src) or self.spot.get(first), hours)
            out[f"vol_{u}"] = self._vol(u, src, first, hours, market, tenor_days)
            out[f"skew_{u}"] = _series(self.skew_change.get(u) or self.skew_change.get(first), hours)
        out["stable"] = _series(self.stable, hours, default=1.0)
        return pd.DataFrame(out)

    def _vol(self, u, src, first, hours, market, tenor_days):
        for key in (u, src, first):
            if key in self.vol_change:
                return _series(self.vol_change[key], hours)
            if key in self.vol_level:
                if market is None:
                    raise ValueError(f"episode {self.key}: a documented vol level needs the market to set today's ATM")
                change = [(0.0, 0.0)] + [(h, lvl - atm_vol(market, u, tenor_days)) for h, lvl in self.vol_level[key]]
                return _series(change, hours)
        return np.zeros(len(hours))

    def to_dict(self) -> dict:
        """JSON-ready dict (the library's format); :func:`episode_from_dict` reads it back."""
        data = {"key": self.key, "title": self.title, "start": self.start, "summary": self.summary,
                "spot": self.spot, "atm_vol_change": self.vol_change, "atm_vol_level": self.vol_level,
                "skew_change": self.skew_change, "stable": [list(p) for p in self.stable],
                "sources": list(self.sources), "not_found": list(self.not_found)}
        return json.loads(json.dumps(data))


def _series(points, hours: np.ndarray, default: float = 0.0) -> np.ndarray:
    if not points:
        return np.full(len(hours), default)
    p = np.asarray(points, dtype=float)
    return np.interp(hours, p[:, 0], p[:, 1])


def episode_from_dict(data: dict) -> CrashEpisode:
    """Validate one episode dict (the library format); ValueError names the episode and field."""
    key = str(data.get("key") or "").strip()
    where = f"episode {key or '(no key)'}"
    if not key:
        raise ValueError(f"{where}: a key is needed")

    def series_map(name):
        raw = data.get(name) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{where}.{name}: must map underlyings to [hours, value] lists")
        return {str(u).upper(): _points(v, f"{where}.{name}.{u}") for u, v in raw.items()}

    spot = series_map("spot")
    for u, pts in spot.items():
        if any(v <= -1.0 for _, v in pts):
            raise ValueError(f"{where}.spot.{u}: a spot move must be above −1 (−100 %)")
    episode = CrashEpisode(key, str(data.get("title") or key), str(data.get("start") or ""),
                           str(data.get("summary") or ""), spot, series_map("atm_vol_change"),
                           series_map("atm_vol_level"), series_map("skew_change"),
                           tuple(_points(data.get("stable") or [], f"{where}.stable")),
                           tuple(data.get("sources") or ()), tuple(data.get("not_found") or ()))
    if not (episode.spot or episode.vol_change or episode.vol_level or episode.stable):
        raise ValueError(f"{where}: no spot, vol or stable-coin path")
    return episode


def _points(raw, where: str) -> list[tuple[float, float]]:
    try:
        pts = [(float(h), float(v)) for h, v in raw]
    except (TypeError, ValueError):
        raise ValueError(f"{where}: must be a list of [hours, value] pairs of numbers") from None
    if len(pts) > MAX_EPISODE_POINTS:
        raise ValueError(f"{where}: at most {MAX_EPISODE_POINTS} points")
    hours = [h for h, _ in pts]
    if any(not (math.isfinite(h) and math.isfinite(v)) for h, v in pts) or any(h < 0 for h in hours) \
            or bool(np.any(np.diff(hours) <= 0)):
        raise ValueError(f"{where}: hours must be finite, ≥ 0 and increasing; values finite")
    return pts


def load_library() -> dict[str, CrashEpisode]:
    """The shipped crash library, by key, in date order."""
    with resources.files("engine.samples").joinpath("crashes.json").open("r", encoding="utf-8") as f:
        data = json.load(f)
    return {e["key"]: episode_from_dict(e) for e in data["episodes"]}


def read_episode_csv(source, key: str = "custom", title: str = "Uploaded episode") -> CrashEpisode:
    """A user episode from CSV: ``hours`` then per underlying ``BTC`` (spot move, fraction),
    optional ``BTC_vol`` (ATM vol change, vol points as a decimal), ``BTC_skew`` (skew
    coefficient change) and ``stable`` (stable-coin price, USD).  Errors name the row and column."""
    text = source.read() if hasattr(source, "read") else source
    text = text.decode("utf-8-sig") if isinstance(text, bytes) else str(text)
    try:
        frame = pd.read_csv(io.StringIO(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ValueError(f"the episode is not a readable CSV: {exc}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if "hours" not in frame.columns:
        raise ValueError("an episode CSV needs an 'hours' column")
    values = {}
    for c in frame.columns:
        col = pd.to_numeric(frame[c], errors="coerce")
        bad = np.flatnonzero(~np.isfinite(col.to_numpy(float)))
        if len(bad):
            raise ValueError(f"row {bad[0] + 1}, column {c}: {frame[c].iloc[bad[0]]!r} is not a number")
        values[c] = col.to_numpy(float)
    hours = values.pop("hours")
    series: dict[str, dict] = {"spot": {}, "atm_vol_change": {}, "skew_change": {}}
    stable = []
    for c, v in values.items():
        pts = [[float(h), float(x)] for h, x in zip(hours, v, strict=True)]
        name = c.upper()
        if name == "STABLE":
            stable = pts
        elif name.endswith("_VOL"):
            series["atm_vol_change"][name[:-4]] = pts
        elif name.endswith("_SKEW"):
            series["skew_change"][name[:-5]] = pts
        else:
            series["spot"][name] = pts
    return episode_from_dict({"key": key, "title": title, "summary": "uploaded by the user", **series,
                              "stable": stable})


# ----------------------------------------------------------------------------- moved snapshots


def shocked_arrays(arr: InstrumentArrays, spot_shock, vol_shift, skew_shift=0.0) -> InstrumentArrays:
    """``arr`` at today's time with underlying u's spot × (1 + spot_shock[u]) and its whole vol
    surface moved by vol_shift[u] + skew_shift[u]·x, x = ln(K/F)/√T (per underlying, in
    ``arr.underlyings`` order), on any smile form (``SmileCoefficients.shifted``).  For
    quadratic slices this equals :func:`shocked_market` then ``instrument_arrays``, without
    re-reading the instruments."""
    U = len(arr.underlyings)
    s, v, k = (np.broadcast_to(np.asarray(x, dtype=float), (U,)) for x in (spot_shock, vol_shift, skew_shift))
    o = arr.option_index
    smile = arr.smile.shifted(v[arr.und_index[o]], k[arr.und_index[o]])
    return replace(arr, spot=arr.spot * (1.0 + s[arr.und_index]), smile=smile)


def shocked_market(market: Market, underlyings, spot_shock, vol_shift, skew_shift=0.0) -> Market:
    """``market`` with each of ``underlyings`` moved as in :func:`shocked_arrays` (the surface
    move is the underlying's ``vol_shift``/``skew_shift``, exact on every smile form)."""
    U = len(underlyings)
    s, v, k = (np.broadcast_to(np.asarray(x, dtype=float), (U,)) for x in (spot_shock, vol_shift, skew_shift))
    out = market
    for u, su, vu, ku in zip(underlyings, s, v, k, strict=True):
        m = market.underlying(u)
        out = out.replace_underlying(u, spot=m.spot * (1.0 + su), vol_shift=m.vol_shift + float(vu),
                                     skew_shift=m.skew_shift + float(ku))
    return out


@dataclass(frozen=True)
class _Account:
    """The book prepared once for many moved snapshots."""

    mb: MarginBook
    spec: ModelSpec
    params: object
    collateral: float
    stable_usd: float

    def state(self, spot, vol, skew=0.0, stable_price: float = 1.0) -> tuple[float, float, float]:
        """(equity, IM, MM) at the moved snapshot (USD)."""
        arr = shocked_arrays(self.mb.arrays, spot, vol, skew)
        uni = Universe(arr)
        im, mm = (float(x) for x in evaluate(self.spec.prepare(uni, self.params), self.mb.net)[:2])
        equity = self.collateral - self.stable_usd * (1.0 - stable_price) + float(position_mtm(self.mb, uni.base).sum())
        return equity, im, mm


def _account(book: Book, market: Market, collateral: float, model: str, params, stable_collateral_usd: float,
             arrays: InstrumentArrays | None) -> _Account:
    if not math.isfinite(collateral):
        raise ValueError(f"collateral must be a finite number (got {collateral!r})")
    if not (math.isfinite(stable_collateral_usd) and stable_collateral_usd >= 0.0):
        raise ValueError(f"stable_collateral_usd must be ≥ 0 (got {stable_collateral_usd!r})")
    spec = model_spec(model)
    return _Account(margin_book(book, market, arrays), spec, spec.resolve(params), float(collateral),
                    float(stable_collateral_usd))


# ----------------------------------------------------------------------------- replay


@dataclass(frozen=True)
class EpisodeReplay:
    """``path``: hours, spot_<U>, vol_<U>, stable, pnl, equity, im, mm, margin_ratio,
    liquidatable, per point (USD).  ``liquidation_hours``: the first point with equity < MM
    (None if never); ``plan``: the liquidation plan run there (a
    ``engine.liquidation.LiquidationPlan``) or None."""

    episode: CrashEpisode
    model: str
    path: pd.DataFrame
    liquidation_hours: float | None
    plan: object | None
    notes: tuple[str, ...] = ()

    @property
    def worst_pnl(self) -> float:
        return float(self.path["pnl"].min())


def replay_episode(book: Book, market: Market, episode: CrashEpisode, collateral: float, model: str = "risk_based",
                   params=None, *, stable_collateral_usd: float = 0.0, arrays: InstrumentArrays | None = None,
                   plan: bool = True) -> EpisodeReplay:
    """Walk ``episode`` on the book (see the module docstring); ``plan=False`` skips the
    liquidation plan at the liquidation moment."""
    acct = _account(book, market, collateral, model, params, stable_collateral_usd, arrays)
    unds = acct.mb.arrays.underlyings
    path = episode.path(unds, market)
    spot = path[[f"spot_{u}" for u in unds]].to_numpy(float)
    vol = path[[f"vol_{u}" for u in unds]].to_numpy(float)
    skew = path[[f"skew_{u}" for u in unds]].to_numpy(float)
    stable = path["stable"].to_numpy(float)
    rows = np.array([acct.state(spot[k], vol[k], skew[k], stable[k]) for k in range(len(path))])  # one per time step
    equity0 = acct.state(np.zeros(len(unds)), np.zeros(len(unds)))[0]
    out = path[["hours"] + [f"spot_{u}" for u in unds] + [f"vol_{u}" for u in unds] + ["stable"]].copy()
    out["equity"], out["im"], out["mm"] = rows[:, 0], rows[:, 1], rows[:, 2]
    out["pnl"] = out["equity"] - equity0
    with np.errstate(divide="ignore", invalid="ignore"):
        out["margin_ratio"] = margin_ratio(rows[:, 0], rows[:, 2])
    out["liquidatable"] = rows[:, 0] < rows[:, 2]
    hit = np.flatnonzero(out["liquidatable"].to_numpy())
    when = float(out["hours"].iloc[hit[0]]) if len(hit) else None
    notes = [f"{u} is not in this episode: it moves like {episode.underlyings[0]}"
             for u in unds if episode.underlyings and u not in episode.underlyings]
    liq = None
    if plan and len(hit):
        k = hit[0]
        m = shocked_market(market, unds, spot[k], vol[k], skew[k])
        liq = liquidation_plan(book, m, acct.collateral - acct.stable_usd * (1.0 - stable[k]), model, acct.params)
    return EpisodeReplay(episode, model, out, when, liq, tuple(notes))


# ----------------------------------------------------------------------------- reverse stress


@dataclass(frozen=True)
class ReverseStress:
    """The account over a common spot × vol plane.

    ``spot_shocks`` (S,), ``vol_shocks`` (V,) and ``gap`` (S, V) = equity − MM (USD) on the
    grid; ``boundary``: vol_shock, spot_down, spot_up (the spot move at which equity = MM at
    that vol shift, NaN when none within the grid's range); ``most_likely``: spot_shock,
    vol_shock, distance (Mahalanobis), probability (Φ(−d)), equity, mm — or None when the
    account cannot be broken inside the plane; ``depeg_to_liquidate``: the stable-coin loss
    (fraction of face) that alone liquidates, None without stable collateral."""

    spot_shocks: np.ndarray
    vol_shocks: np.ndarray
    gap: np.ndarray
    boundary: pd.DataFrame
    most_likely: dict | None
    depeg_to_liquidate: float | None
    plane_covariance: np.ndarray


def plane_covariance(factors) -> np.ndarray:
    """2 × 2 covariance of (average spot return, average ATM vol change) under ``factors``
    (an ``engine.var.RiskFactors``): Wᵀ·Σ·W with W averaging each block."""
    U = len(factors.underlyings)
    W = np.zeros((2 * U, 2))
    W[:U, 0] = W[U:, 1] = 1.0 / U
    return W.T @ factors.covariance @ W


def reverse_stress(book: Book, market: Market, collateral: float, factors, model: str = "risk_based", params=None,
                   *, stable_collateral_usd: float = 0.0, spot_range: float = 0.6, spot_steps: int = 25,
                   vol_range: float = 0.5, vol_steps: int = 11,
                   arrays: InstrumentArrays | None = None) -> ReverseStress:
    """The liquidation boundary and the most likely breaking point (module docstring).

    The gap is evaluated on a spot × vol grid (spot −``spot_range``…+``spot_range``, vol
    −``vol_range``…+``vol_range`` absolute points); along each vol level the first sign change
    outward from s = 0 on each side is solved with ``brentq``; the most likely point is the
    boundary point of least Mahalanobis distance, refined along the boundary between the grid
    neighbours of the best level by a bounded scalar search.
    """
    if not 0.0 < spot_range < 1.0 or not 0.0 < vol_range <= 2.0:
        raise ValueError("spot_range must be in (0, 1) and vol_range in (0, 2]")
    if not (3 <= spot_steps <= 101 and 3 <= vol_steps <= 41):
        raise ValueError("spot_steps must be 3…101 and vol_steps 3…41")
    acct = _account(book, market, collateral, model, params, stable_collateral_usd, arrays)

    def gap(s: float, v: float) -> float:
        eq, _, mm = acct.state(s, v)
        return eq - mm

    spots = np.linspace(-spot_range, spot_range, spot_steps)
    vols = np.linspace(-vol_range, vol_range, vol_steps)
    grid = np.array([[gap(s, v) for v in vols] for s in spots])  # one margin evaluation per cell
    side = [_crossings(gap, spots, grid[:, j], v) for j, v in enumerate(vols)]
    boundary = pd.DataFrame({"vol_shock": vols, "spot_down": [d for d, _ in side], "spot_up": [u for _, u in side]})
    C = plane_covariance(factors)
    Cinv = np.linalg.pinv(C)

    def distance(s, v):
        x = np.array([s, v])
        return float(math.sqrt(max(x @ Cinv @ x, 0.0)))

    most = _most_likely(boundary, gap, spots, vols, distance)
    if most is not None:
        eq, _, mm = acct.state(most["spot_shock"], most["vol_shock"])
        most.update(probability=float(stats.norm.sf(most["distance"])), equity=eq, mm=mm)
    depeg = None
    if acct.stable_usd > 0:
        eq0, _, mm0 = acct.state(0.0, 0.0)
        depeg = max(0.0, (eq0 - mm0) / acct.stable_usd)
    return ReverseStress(spots, vols, grid, boundary, most, depeg, C)


def _crossings(gap, spots, column, v) -> tuple[float, float]:
    """First root of gap(·, v) below and above s = 0 within the grid (NaN if none)."""
    mid = int(np.argmin(np.abs(spots)))
    out = []
    for order in (range(mid, 0, -1), range(mid, len(spots) - 1)):
        root = np.nan
        for k in order:
            a, b = (k - 1, k) if order.step < 0 else (k, k + 1)
            if column[a] == 0.0 or column[b] == 0.0 or np.sign(column[a]) != np.sign(column[b]):
                root = float(brentq(lambda s: gap(s, v), spots[a], spots[b], xtol=1e-9)) \
                    if np.sign(column[a]) != np.sign(column[b]) else float(spots[a] if column[a] == 0.0 else spots[b])
                break
        out.append(root)
    return out[0], out[1]


def _most_likely(boundary: pd.DataFrame, gap, spots, vols, distance) -> dict | None:
    best = None
    for col in ("spot_down", "spot_up"):
        for j, s in enumerate(boundary[col]):
            if np.isfinite(s) and (best is None or distance(s, vols[j]) < best[0]):
                best = (distance(s, vols[j]), col, j)
    if best is None:
        return None
    _, col, j = best
    lo, hi = vols[max(j - 1, 0)], vols[min(j + 1, len(vols) - 1)]

    def root_at(v):
        """The boundary's spot move at vol shift v on the same side, or NaN."""
        down = col == "spot_down"
        g0 = gap(0.0, v)
        edge = spots[0] if down else spots[-1]
        if g0 <= 0.0 or gap(edge, v) > 0.0:
            return np.nan
        return float(brentq(lambda s: gap(s, v), edge, 0.0, xtol=1e-9) if down
                     else brentq(lambda s: gap(s, v), 0.0, edge, xtol=1e-9))


    def objective(v):
        s = root_at(v)
        return distance(s, v) if np.isfinite(s) else np.inf

    s0 = float(boundary[col].iloc[j])
    candidates = [(distance(s0, vols[j]), s0, float(vols[j]))]
    if hi > lo:
        res = minimize_scalar(objective, bounds=(lo, hi), method="bounded", options={"xatol": 1e-4})
        s = root_at(res.x)
        if np.isfinite(s):
            candidates.append((distance(s, res.x), s, float(res.x)))
    d, s, v = min(candidates)
    return {"spot_shock": s, "vol_shock": v, "distance": d, "side": "down" if col == "spot_down" else "up"}


def depeg_scenario(book: Book, market: Market, collateral: float, stable_collateral_usd: float, depeg: float,
                   model: str = "risk_based", params=None, *, arrays: InstrumentArrays | None = None) -> dict:
    """The account after the stable coin loses ``depeg`` of its face (0.12: $1 → $0.88), spot
    and vol unchanged: equity, IM, MM, margin ratio, liquidatable."""
    if not 0.0 <= depeg <= 1.0:
        raise ValueError(f"depeg must be a fraction in [0, 1] (got {depeg!r})")
    acct = _account(book, market, collateral, model, params, stable_collateral_usd, arrays)
    U = len(acct.mb.arrays.underlyings)
    eq, im, mm = acct.state(np.zeros(U), np.zeros(U), 0.0, 1.0 - depeg)
    return {"equity": eq, "im": im, "mm": mm, "margin_ratio": margin_ratio(eq, mm),
            "liquidatable": eq < mm}


# ----------------------------------------------------------------------------- margin explain


@dataclass(frozen=True)
class MarginExplain:
    """IM after − IM before (USD) split three ways.

    ``by_position``: instrument, before, after, change of the Euler IM share (positions of the
    same instrument summed; the changes sum to ``change``); ``by_component``: component,
    before, after, change (the model's named pieces; how they combine is the model's formula);
    ``by_scenario``: underlying, scenario, weighted P&L before/after and change, binding
    before/after (empty for models without scenarios)."""

    model: str
    initial_before: float
    initial_after: float
    by_position: pd.DataFrame
    by_component: pd.DataFrame
    by_scenario: pd.DataFrame

    @property
    def change(self) -> float:
        return self.initial_after - self.initial_before


def margin_explain(before: MarginResult, after: MarginResult) -> MarginExplain:
    """Explain the IM change between two margin results of the same model."""
    if before.model != after.model:
        raise ValueError(f"explain compares one model: got {before.model} and {after.model}")

    def shares(r: MarginResult):
        return r.by_position.groupby("instrument", sort=False)["scaled"].sum()

    pos = pd.concat([shares(before).rename("before"), shares(after).rename("after")], axis=1).fillna(0.0)
    pos["change"] = pos["after"] - pos["before"]
    pos = pos.reset_index().rename(columns={"index": "instrument"}).sort_values("change", key=np.abs, ascending=False)
    names = list(dict.fromkeys(list(before.components) + list(after.components)))
    comp = pd.DataFrame({"component": names,
                         "before": [float(before.components.get(n, 0.0)) for n in names],
                         "after": [float(after.components.get(n, 0.0)) for n in names]})
    comp["change"] = comp["after"] - comp["before"]
    keys = ["underlying", "scenario"]
    sb, sa = before.scenario_pnl, after.scenario_pnl
    if len(sb) or len(sa):
        scen = pd.merge(sb[keys + ["weighted_pnl", "binding"]], sa[keys + ["weighted_pnl", "binding"]], on=keys,
                        how="outer", suffixes=("_before", "_after"))
        weighted = ["weighted_pnl_before", "weighted_pnl_after"]
        scen[weighted] = scen[weighted].fillna(0.0)
        scen[["binding_before", "binding_after"]] = scen[["binding_before", "binding_after"]].fillna(False).astype(bool)
        scen["change"] = scen["weighted_pnl_after"] - scen["weighted_pnl_before"]
    else:
        scen = pd.DataFrame(columns=keys + ["weighted_pnl_before", "binding_before", "weighted_pnl_after",
                                            "binding_after", "change"])
    return MarginExplain(before.model, before.initial, after.initial, pos.reset_index(drop=True), comp, scen)


def explain_change(book_before: Book, market_before: Market, book_after: Book, market_after: Market,
                   model: str = "risk_based", params_before=None, params_after=None) -> MarginExplain:
    """:func:`margin_explain` of two states: a trade (books differ), a market move (markets
    differ) or a parameter change (params differ)."""
    return margin_explain(compute(book_before, market_before, model, params_before),
                          compute(book_after, market_after, model, params_after))


def episode_start(episode: CrashEpisode) -> datetime | None:
    """The episode's start as a datetime (None when not given)."""
    return datetime.fromisoformat(episode.start.replace("Z", "+00:00")) if episode.start else None


__all__ = ["CrashEpisode", "EpisodeReplay", "MarginExplain", "ReverseStress", "depeg_scenario", "episode_from_dict",
           "episode_start", "explain_change", "load_library", "margin_explain", "plane_covariance",
           "read_episode_csv", "replay_episode", "reverse_stress", "shocked_arrays", "shocked_market"]
