"""The Exchange page's state: its stores, how they change, and its memoised engine calls.

Page-local stores (session storage: private to the tab, kept across visits):

* ``EX_SETTINGS_STORE``: ``{"n_accounts", "seed", "spot_shock" (fraction), "top_n",
  "impact_k", "turnover", "max_rounds"}`` — written only with values the engine accepted.
* ``EX_UPLOAD_STORE``: ``{"filename", "text", "accounts", "errors": [{"row", "field",
  "message"}]}`` — the last accounts CSV with at least one good account.

Every account is margined with the model (and parameters) selected on the Margin page, on the
market of the Book page.  The population, the queue at each shock, the shock sweep and the
cascade are memoised in the app's cache by the parameters they depend on, so moving the shock
back and forth or revisiting the page costs one engine run per distinct state.

With ``PMDASH_DASK_SCHEDULER`` set (:mod:`engine.liquidation.distributed`), a generated population
larger than one machine's cap (``MAX_ACCOUNTS``) is generated on the Dask cluster and its queue,
sweep and cascade run there, up to ``engine.limits.MAX_CLUSTER_ACCOUNTS`` accounts if the
workers' memory allows.  Such a population is drawn block by block on the workers (its own seeds):
it is not the one-machine population of the same seed.  The server keeps the last one on the
cluster (its partitions stay on the workers; a new one replaces it).
"""
from __future__ import annotations

import threading

import numpy as np
import pandas as pd

from engine.limits import MAX_CLUSTER_ACCOUNTS
from engine.liquidation import distributed
from engine.liquidation.queue import (
    CascadeParams,
    CascadeResult,
    Population,
    PopulationParams,
    QueueResult,
    cascade,
    generate_population,
    liquidatable_vs_shock,
    margin_queue,
    read_accounts,
)

from .. import guard
from . import session as state
from .account import model_params

#: Keeps every view responsive on a 2-core machine (a 100,000-account queue takes well under a second).
MAX_ACCOUNTS = 100_000
#: The accounts CSV is kept in the browser tab's session storage, which holds a few MB.
MAX_UPLOAD_BYTES = 2_000_000
MAX_TOP_N = 1_000
#: The spot shocks of the "liquidatable vs shock" chart (fractions).
SHOCK_GRID = tuple(np.round(np.linspace(-0.5, 0.5, 21), 10))
#: Big enough to show a distribution, small enough to be instant; the market as it is (no
#: shock) until the user moves it: with k = 3 and turnover 0.2 a −15 % shock visibly cascades
#: (about a fifth more accounts, spot a further ~5 % down).
DEFAULT_SETTINGS = {"n_accounts": 5_000, "seed": 0, "spot_shock": 0.0, "top_n": 100,
                    "impact_k": 3.0, "turnover": 0.2, "max_rounds": 30}


def max_accounts() -> int:
    """The largest population the page takes: ``MAX_ACCOUNTS`` on this machine, or
    ``MAX_CLUSTER_ACCOUNTS`` with a Dask scheduler configured (``PMDASH_DASK_SCHEDULER``)."""
    return MAX_CLUSTER_ACCOUNTS if distributed.scheduler_address() else MAX_ACCOUNTS


def settings_from_controls(n_accounts, seed, shock_pct, top_n, impact_k, turnover, max_rounds) -> state.Outcome:
    """The settings store value from the controls; a population above :func:`max_accounts` is
    capped (and said so), anything else the engine refuses leaves the store unchanged."""
    shown = {"number of accounts": n_accounts, "seed": seed, "top N": top_n, "max rounds": max_rounds}
    problems = [f"{name}: enter a whole number" for name, v in shown.items()
                if not (guard.is_number(v) and float(v).is_integer())]
    problems += [f"{name}: enter a number" for name, v in (("impact k", impact_k), ("turnover", turnover))
                 if not guard.is_number(v)]
    if problems:
        return state.Outcome(None, tuple(problems))
    warnings = ()
    cap = max_accounts()
    if n_accounts > cap:
        warnings = (f"the population is capped at {cap:,} accounts (asked for {int(n_accounts):,})",)
    data = {"n_accounts": int(min(n_accounts, cap)), "seed": int(seed),
            "spot_shock": float(shock_pct or 0.0) / 100.0, "top_n": int(top_n), "impact_k": float(impact_k),
            "turnover": float(turnover), "max_rounds": int(max_rounds)}
    try:
        # A cluster population is generated in blocks of at most a one-machine population.
        PopulationParams(n_accounts=min(data["n_accounts"], distributed.BLOCK_ACCOUNTS), seed=data["seed"]).validate()
        cascade_params(data)
        if not 1 <= data["top_n"] <= MAX_TOP_N:
            raise ValueError(f"top N must be 1…{MAX_TOP_N:,}")
    except ValueError as exc:
        return state.Outcome(None, (f"{exc} — nothing was changed",))
    return state.Outcome(data, warnings, "settings applied")


def checked_settings(settings) -> dict:
    """``settings`` if :func:`settings_from_controls` takes its values as they are (no cap, no
    correction); :class:`guard.StoreError` naming the problem otherwise."""
    fields = tuple(DEFAULT_SETTINGS)
    if not isinstance(settings, dict) or set(settings) != set(fields):
        raise guard.StoreError("exchange settings store: expected the fields " + ", ".join(fields))
    if not guard.is_number(settings["spot_shock"]):
        raise guard.StoreError(f"exchange settings store, spot_shock: expected a number, "
                               f"got {settings['spot_shock']!r:.40}")
    s = settings
    outcome = settings_from_controls(s["n_accounts"], s["seed"], s["spot_shock"] * 100.0, s["top_n"],
                                     s["impact_k"], s["turnover"], s["max_rounds"])
    if outcome.data is None or outcome.problems:
        raise guard.StoreError("exchange settings store: " + "; ".join(outcome.problems))
    return settings


def cascade_params(settings: dict) -> CascadeParams:
    return CascadeParams(impact_k=settings["impact_k"], turnover=settings["turnover"],
                         max_rounds=settings["max_rounds"]).validate()


def read_upload(contents: str, filename: str, market: dict) -> tuple[dict | None, list[dict]]:
    """(upload store value or None, row errors) of a ``dcc.Upload`` accounts CSV."""
    try:
        raw = state.upload_bytes(contents)
    except ValueError:
        raw = b""
    if len(raw) > MAX_UPLOAD_BYTES:
        return None, [{"row": 0, "field": "file", "message": f"larger than {MAX_UPLOAD_BYTES / 1e6:g} MB: this page "
                                                             "keeps the file in the browser tab"}]
    text = raw.decode("utf-8-sig", errors="replace")
    pop, errors = read_accounts(text, state.market_of(market))
    rows = [{"row": e.row, "field": e.field, "message": e.message} for e in errors]
    if pop is None:
        return None, rows
    return {"filename": filename, "text": text, "accounts": len(pop), "errors": rows}, rows


# ----------------------------------------------------------------------------- engine calls


def _source_key(source: str, settings: dict, upload: dict | None, market: dict, account: dict) -> list:
    """What a population depends on; ValueError when "uploaded" is chosen with nothing uploaded.
    The settings store is re-checked as the controls check it (a tampered store is refused)."""
    checked_settings(settings)
    guard.check_account(account), guard.check_market(market)
    if source == "uploaded" and not upload:
        raise ValueError("no accounts uploaded yet: drop a CSV above, or choose the generated population")
    model = account["model"]
    population = ["uploaded", upload["text"]] if source == "uploaded" else \
        ["generated", settings["n_accounts"], settings["seed"]]
    return [*population, market, model, account.get("params", {}).get(model)]


def on_cluster(source: str, settings: dict) -> bool:
    """Whether this population is generated and margined on the Dask cluster: a generated one
    above this machine's cap (only possible with a scheduler configured)."""
    return source == "generated" and settings["n_accounts"] > MAX_ACCOUNTS


def population(source: str, settings: dict, upload: dict | None, market: dict, account: dict) -> Population:
    """The generated population (its collateral is calibrated to the selected model's MM) or the
    uploaded accounts."""
    def run():
        market_obj = state.market_of(market)
        if source == "uploaded":
            return read_accounts(upload["text"], market_obj)[0]
        params = PopulationParams(n_accounts=settings["n_accounts"], seed=settings["seed"])
        return generate_population(market_obj, params, account["model"], model_params(account))

    return state.memoise("exchange-population", _source_key(source, settings, upload, market, account), run)


_cluster_lock = threading.Lock()
#: The Dask client of this server process and the last population placed on the cluster: a
#: client and futures cannot go into the results cache (it pickles what it keeps).
_cluster: dict = {}


def _connect():
    try:
        return distributed.connect()
    except (OSError, RuntimeError) as exc:  # unreachable scheduler (timeouts are OSErrors), Dask not installed
        raise ValueError(f"the Dask cluster ({distributed.SCHEDULER_ENV}) is not reachable: {exc}") from None


def cluster_population(settings: dict, market: dict, account: dict) -> distributed.ClusterPopulation:
    """The generated population of ``settings`` on the Dask cluster (generated there once;
    BudgetError if the cluster cannot hold it)."""
    key = state.content_hash(_source_key("generated", settings, None, market, account))
    with _cluster_lock:
        if _cluster.get("key") != key:
            client = _cluster.get("client") or _connect()
            _cluster.clear()  # the previous population's futures go: the workers release it
            _cluster["client"] = client
            params = PopulationParams(seed=settings["seed"])
            _cluster["population"] = distributed.generate_on_cluster(
                client, state.market_of(market), settings["n_accounts"], params, model=account["model"],
                margin_params=model_params(account))
            _cluster["key"] = key
        return _cluster["population"]


def queue(source: str, settings: dict, upload: dict | None, market: dict,
          account: dict) -> QueueResult | distributed.ClusterQueue:
    """Every account margined at the settings' spot shock and ranked, most under water first (on
    the cluster: its first ``MAX_TOP_N`` accounts, the totals and the ratio histogram)."""
    def run():
        if on_cluster(source, settings):
            return distributed.cluster_queue(cluster_population(settings, market, account), state.market_of(market),
                                             settings["spot_shock"], account["model"], model_params(account),
                                             top=MAX_TOP_N)
        pop = population(source, settings, upload, market, account)
        return margin_queue(pop, state.market_of(market), settings["spot_shock"], account["model"],
                            model_params(account))

    key = _source_key(source, settings, upload, market, account) + [settings["spot_shock"]]
    return state.memoise("exchange-queue", key, run)


def sweep(source: str, settings: dict, upload: dict | None, market: dict, account: dict) -> pd.DataFrame:
    """Accounts, notional and shortfall liquidatable at each shock of ``SHOCK_GRID``."""
    def run():
        if on_cluster(source, settings):
            return distributed.cluster_sweep(cluster_population(settings, market, account), state.market_of(market),
                                             SHOCK_GRID, account["model"], model_params(account))
        pop = population(source, settings, upload, market, account)
        return liquidatable_vs_shock(pop, state.market_of(market), SHOCK_GRID, account["model"], model_params(account))

    return state.memoise("exchange-sweep", _source_key(source, settings, upload, market, account), run)


def cascade_result(source: str, settings: dict, upload: dict | None, market: dict, account: dict) -> CascadeResult:
    """The cascade that starts from the settings' spot shock."""
    def run():
        if on_cluster(source, settings):
            return distributed.cluster_cascade(cluster_population(settings, market, account),
                                               state.market_of(market), settings["spot_shock"], account["model"],
                                               model_params(account), cascade_params(settings))
        pop = population(source, settings, upload, market, account)
        return cascade(pop, state.market_of(market), settings["spot_shock"], account["model"], model_params(account),
                       cascade_params(settings))

    key = _source_key(source, settings, upload, market, account) + [
        settings["spot_shock"], settings["impact_k"], settings["turnover"], settings["max_rounds"]]
    return state.memoise("exchange-cascade", key, run)


def summary(result: QueueResult | distributed.ClusterQueue) -> dict:
    """Headline figures of a queue: accounts, liquidatable, their notional and shortfall (USD)."""
    if isinstance(result, distributed.ClusterQueue):
        return {"accounts": result.accounts, "liquidatable": result.liquidatable,
                "notional_usd": result.notional_usd, "shortfall_usd": result.shortfall_usd}
    liq = result.liquidatable
    return {"accounts": len(result.accounts), "liquidatable": len(liq),
            "notional_usd": float(liq["notional_usd"].sum()), "shortfall_usd": float((liq["mm"] - liq["equity"]).sum())}


def top_rows(result: QueueResult | distributed.ClusterQueue, n: int) -> pd.DataFrame:
    """The first ``n`` accounts of the queue; an infinite margin ratio (no equity left) becomes
    NaN, which JSON can carry (as an empty cell)."""
    accounts = result.queue.accounts if isinstance(result, distributed.ClusterQueue) else result.accounts
    return accounts.head(n).replace(np.inf, np.nan)
