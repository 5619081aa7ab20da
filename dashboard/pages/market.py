"""Market page: load and save the market (Market JSON, Deribit book-summary files, or the live
public snapshot), add underlyings and expiries, choose each expiry's smile form, fit SVI to the
imported quotes, move the valuation time; and the vol surface of one underlying (smiles fitted
vs marks, ATM term structure, forwards vs spot, arbitrage warnings, 3-D surface).

Each action is a plain function returning a ``state.Outcome`` (tested without a browser); the
callbacks only route them.  Only markets the engine accepts with the current book reach
``MARKET_STORE``; the imported quotes and fit quality live in this page's own session store.
"""
from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

import dash
import pandas as pd
import requests
from dash import Input, Output, State, callback, dcc, html, no_update

from engine.market import (
    FORMS,
    POINTS,
    QUADRATIC,
    SVI_FORM,
    MarketError,
    convert_slice,
    load_market,
    market_from_dict,
    market_text,
    market_to_dict,
    parse_json,
    save_market,
    surface_arbitrage,
)
from engine.scenarios import roll_book
from engine.venues import VenueError, book_from_positions, fit_expiry, market_from_book_summary, split_book_summary

from .. import guard, ids
from ..components import committed, frame_rows, grid, number_column, panel, user_action
from ..figures import surface
from ..stores import session as state

dash.register_page(__name__, path="/market", name="Market", order=0.5, title="Market · Portfolio-margin risk")

STORES = (State(ids.BOOK_STORE, "data"), State(ids.MARKET_STORE, "data"), State(ids.SETTINGS_STORE, "data"))
DERIBIT_URL = "https://www.deribit.com/api/v2/public/get_book_summary_by_currency"
FETCH_TIMEOUT_S = 5.0
EDITABLE: dict[str, Any] = {"editable": True, "cellClass": "cell-editable", "cellDataType": False}

SLICE_COLUMNS = [
    {"field": "underlying", "headerName": "Underlying", "width": 110},
    {"field": "expiry", "headerName": "Expiry", "width": 120},
    number_column("days", "Days", ",.1f", width=90),
    {"field": "form", "headerName": "Smile form", "width": 130, "cellEditor": "agSelectCellEditor",
     "cellEditorParams": {"values": list(FORMS)}, **EDITABLE},
    number_column("forward", "Forward (USD, blank: curve)", ",.6~f", flex=1, **EDITABLE),
    number_column("rate", "Rate (0.05 = 5 %, blank: USD rate)", ",.4~f", flex=1, **EDITABLE),
    number_column("atm_vol_pct", "ATM vol (%)", ",.2f", width=110),
    {"field": "parameters", "headerName": "Parameters", "flex": 2},
]
FIT_COLUMNS = [
    {"field": "underlying", "headerName": "Underlying", "width": 110},
    {"field": "expiry", "headerName": "Expiry", "width": 120},
    {"field": "form", "headerName": "Form", "width": 90},
    number_column("quotes", "Strikes", ",.0f", width=90),
    number_column("forward", "Forward (USD)", ",.6~f", flex=1),
    number_column("rmse_pts", "RMSE (vol pts)", ",.3f", flex=1),
    number_column("max_pts", "Max error (vol pts)", ",.3f", flex=1),
    {"field": "butterfly_free", "headerName": "Butterfly-free", "width": 120},
]
ROLL_COLUMNS = [
    {"field": "instrument", "headerName": "Settled", "flex": 2},
    {"field": "expiry", "headerName": "Expiry", "width": 120},
    number_column("quantity", "Quantity", ",.6~f", flex=1),
    number_column("entry_price", "Entry (USD)", ",.2f", flex=1),
    number_column("settlement_price", "Settlement price (USD)", ",.6~f", flex=1),
    number_column("cash", "Cash (USD)", ",.2f", flex=1),
    number_column("pnl", "P&L vs entry (USD)", ",.2f", flex=1),
]


def layout(**_):
    return html.Div([
        dcc.Store(id=ids.MKT_QUOTES_STORE, storage_type="session"),
        panel("Market file", html.Div([
            dcc.Upload(id=ids.MKT_UPLOAD, multiple=True, className="upload", max_size=guard.UPLOAD_MAX_BYTES,
                       children=html.Div(["Drop or ", html.A("choose"), " Market JSON or Deribit book-summary files "
                                          "(options and futures together; ",
                                          guard.size_text(guard.UPLOAD_MAX_BYTES), " each)"])),
            html.Button("Download Market JSON", id=ids.MKT_DOWNLOAD_BUTTON, className="button"),
            dcc.Download(id=ids.MKT_DOWNLOAD),
            dcc.Dropdown(id=ids.MKT_FETCH_CURRENCY, options=["BTC", "ETH", "USDC"], value="BTC", clearable=False,
                         style={"width": "110px"}),
            html.Button("Fetch Deribit snapshot", id=ids.MKT_FETCH, className="button"),
            dcc.Upload(id=ids.MKT_POSITIONS_UPLOAD, className="upload", max_size=guard.UPLOAD_MAX_BYTES,
                       children=html.Div(["Drop a Deribit ", html.Code("private/get_positions"), " file as the book (",
                                          guard.size_text(guard.UPLOAD_MAX_BYTES), ")"])),
        ], className="controls"), html.Div(id=ids.MKT_MESSAGE, role="status"),
            how_to="A Market JSON replaces the market. A Deribit public/get_book_summary_by_currency response "
                   "(kind=option and/or kind=future, saved from the API with or without its jsonrpc wrapper) "
                   "sets its underlyings' spot (index), per-expiry forwards, futures and perp marks and fitted "
                   "SVI smiles, and the valuation time of the snapshot; other underlyings are kept. A positions "
                   "file replaces the book (futures in coin from size_currency: their size is USD)."),
        panel("Valuation time", html.Div([
            dcc.Input(id=ids.MKT_TIME, type="text", className="input", debounce=True,
                      placeholder="YYYY-MM-DDTHH:MM:SSZ"),
            html.Button("Move valuation time", id=ids.MKT_TIME_APPLY, className="button"),
        ], className="controls"), grid(ids.MKT_ROLL_REPORT, ROLL_COLUMNS, height=None, filters=False),
            how_to="Options and futures expiring on the way settle into cash at their intrinsic value on spot "
                   "(futures at spot against their entry price) and leave the book; each expiry's implied "
                   "carry and vols are kept, so forwards roll down towards spot — the stress grid's horizon rule."),
        panel("Underlyings and expiries", html.Div([
            dcc.Input(id=ids.MKT_ADD_NAME, placeholder="underlying, e.g. SOL", className="input"),
            dcc.Input(id=ids.MKT_ADD_SPOT, placeholder="spot USD", className="input"),
            dcc.Input(id=ids.MKT_ADD_CARRY, placeholder="carry (0.05 = 5 %)", className="input"),
            html.Button("Add underlying", id=ids.MKT_ADD_UNDERLYING, className="button"),
        ], className="controls"), html.Div([
            dcc.Dropdown(id=ids.MKT_ADD_EXPIRY_UNDERLYING, placeholder="underlying", style={"width": "130px"}),
            dcc.Input(id=ids.MKT_ADD_EXPIRY_DATE, placeholder="expiry YYYY-MM-DD", className="input"),
            dcc.Dropdown(id=ids.MKT_ADD_EXPIRY_FORM, options=list(FORMS), value=QUADRATIC, clearable=False,
                         style={"width": "130px"}),
            dcc.Input(id=ids.MKT_ADD_EXPIRY_VOL, placeholder="ATM vol (0.6 = 60 %)", className="input"),
            html.Button("Add expiry", id=ids.MKT_ADD_EXPIRY, className="button"),
            html.Button("Fit SVI to these quotes", id=ids.MKT_FIT, className="button"),
        ], className="controls"), grid(ids.MKT_SLICE_GRID, SLICE_COLUMNS, height=360),
            grid(ids.MKT_FIT_GRID, FIT_COLUMNS, height=None, filters=False),
            how_to="Change an expiry's smile form in the grid: the new form is fitted to the current smile. "
                   "\"Fit SVI to these quotes\" refits every expiry that has imported quotes (≥ 6 strikes) and "
                   "turns the others into SVI fitted to their current smile; the fit table gives the error "
                   "against the marks in vol points."),
        panel("Vol surface", html.Div([
            dcc.Dropdown(id=ids.MKT_SURFACE_UNDERLYING, clearable=False, style={"width": "140px"}),
        ], className="controls"), html.Div(id=ids.MKT_ARBITRAGE),
            dcc.Graph(id=ids.MKT_SMILE_FIG),
            html.Div([dcc.Graph(id=ids.MKT_TERM_FIG), dcc.Graph(id=ids.MKT_FORWARD_FIG)],
                                                      className="two-col"),
            dcc.Graph(id=ids.MKT_SURFACE_FIG),
            how_to="Lines are the smiles the pricer uses, dots the venue's marks with their bid–ask range. Red "
                   "marks static arbitrage: a butterfly (negative density g(k) < 0) at an expiry, or a calendar "
                   "(total variance falling from one expiry to the next). They are reported, never altered."),
    ])


# ----------------------------------------------------------------------------- actions


def _payload(contents: str) -> bytes:
    try:
        return state.upload_bytes(contents)
    except ValueError:
        return b""


def _fit_rows(fits) -> list[dict]:
    return [{"underlying": f.underlying, "expiry": f.expiry, "form": f.form, "quotes": f.quotes,
             "forward": f.forward, "rmse_pts": 100 * f.rmse_vol, "max_pts": 100 * f.max_error_vol,
             "butterfly_free": "yes" if f.butterfly_free else "NO"} for f in fits]


def _quotes_data(vm) -> dict:
    return {"quotes": frame_rows(vm.quotes), "fits": _fit_rows(vm.fits)}


def _merge(market: dict, venue_market) -> dict:
    """The venue's underlyings replace the same ones, the others are kept; its time applies."""
    imported = market_to_dict(venue_market)
    return dict(market, valuation_time=imported["valuation_time"],
                underlyings={**market["underlyings"], **imported["underlyings"]})


def import_venue(option_rows: list, other_rows: list, book: dict, market: dict, settings: dict, what: str):
    """(Outcome for MARKET_STORE, quotes store value or None) from Deribit book-summary rows."""
    try:
        vm = market_from_book_summary(option_rows or None, other_rows or None)
    except (VenueError, MarketError) as e:
        return state.Outcome(None, (f"{what}: {e}",)), None
    problems = tuple(f"{what}: {e}" for e in vm.errors[:20])
    data = _merge(market, vm.market)
    fitted = ", ".join(f"{f.underlying} {f.expiry} {f.form}" for f in vm.fits[:6])
    note = (f"{what}: {', '.join(vm.market.underlyings)} at {data['valuation_time']}; "
            f"{len(vm.fits)} expiries ({fitted}{'…' if len(vm.fits) > 6 else ''})")
    outcome = state.checked(data, book, data, settings, note, problems + tuple(vm.notes[:10]))
    return outcome, (_quotes_data(vm) if outcome.data is not None else None)


def load_files(contents_list, filenames, book: dict, market: dict, settings: dict):
    """Uploaded files: one Market JSON replaces the market; Deribit responses are pooled and
    imported together (so an option and a future file make one snapshot)."""
    option_rows, other_rows, names = [], [], []
    for contents, name in zip(contents_list or [], filenames or [], strict=False):
        try:
            data = parse_json(market_text(_payload(contents)), name)
        except MarketError as e:
            return state.Outcome(None, (str(e),)), None
        if isinstance(data, dict) and "underlyings" in data:
            try:
                new = market_to_dict(load_market(data))
            except MarketError as e:
                return state.Outcome(None, (f"{name}: {e} — the market was not changed",)), None
            return state.checked(new, book, new, settings, f"loaded the market {name}"), {}
        rows = data.get("result", data) if isinstance(data, dict) else data
        opts, others = split_book_summary(rows if isinstance(rows, list) else [rows])
        option_rows += opts
        other_rows += others
        names.append(name)
    if not names:
        return state.Outcome(None, ("no file received",)), None
    return import_venue(option_rows, other_rows, book, market, settings, " + ".join(names))


def load_positions(contents, filename, book: dict, market: dict, settings: dict) -> state.Outcome:
    """A Deribit ``private/get_positions`` file as the new book; any bad row refuses the whole file."""
    result = book_from_positions(_payload(contents), state.market_of(market), name=filename or "Deribit positions")
    if result.errors:
        return state.Outcome(None, tuple(str(e) for e in result.errors[:20])
                             + (f"{filename}: the book was not changed",))
    return state.replace_book(result.book, market, settings, f"loaded {len(result.book)} positions from {filename}")


def fetch_snapshot(currency: str, get=requests.get) -> tuple[list, list]:
    """Option and future rows of Deribit's public book summary for ``currency`` (no API key).
    Raises VenueError with a plain message when the venue cannot be reached in 5 s."""
    out = []
    for kind in ("option", "future"):
        try:
            reply = get(DERIBIT_URL, params={"currency": currency, "kind": kind}, timeout=FETCH_TIMEOUT_S)
            reply.raise_for_status()
            out.append(reply.json())
        except requests.RequestException as e:
            raise VenueError(f"could not reach Deribit within {FETCH_TIMEOUT_S:g} s — no network from this "
                             f"server? Save the response in a browser and upload it instead ({type(e).__name__})"
                             ) from None
        except ValueError:
            raise VenueError("Deribit answered with something that is not JSON") from None
    return out[0].get("result", []), out[1].get("result", [])


def fetch(currency, book, market, settings, get=requests.get):
    try:
        options, futures = fetch_snapshot(currency or "BTC", get)
    except VenueError as e:
        return state.Outcome(None, (str(e),)), None
    return import_venue(options, futures, book, market, settings, f"Deribit {currency} live")


def _parse_when(text) -> datetime:
    try:
        when = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        raise MarketError(f"valuation_time: {str(text)[:40]!r} is not an ISO-8601 time") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def move_time(text, book: dict, market: dict, settings: dict):
    """(book Outcome, market data or None, settled rows): the time roll of ``engine.scenarios.roll_book``."""
    try:
        when = _parse_when(text)
        roll = roll_book(state.book_of(book), state.market_of(market), when)
    except MarketError as e:
        return state.Outcome(None, (str(e),)), None, []
    new_book = dict(state.book_data(roll.book), name=book.get("name", ""))
    new_market = market_to_dict(roll.market)
    settled = len(roll.settled)
    note = (f"valuation time {new_market['valuation_time']}: {settled} position(s) settled, cash "
            f"{roll.cash:,.2f} USD" if settled else f"valuation time {new_market['valuation_time']}: nothing expired")
    outcome = state.checked(new_book, new_book, new_market, settings, note)
    return outcome, (new_market if outcome.data is not None else None), frame_rows(roll.settled)


def add_underlying(name, spot, carry, book: dict, market: dict, settings: dict) -> state.Outcome:
    key = str(name or "").strip().upper()
    if key in market["underlyings"]:
        return state.Outcome(None, (f"underlyings.{key}: already in the market",))
    candidate = dict(market, underlyings={**market["underlyings"], key: {"spot": spot, "carry": carry or 0.0,
                                                                         "smile": []}})
    try:
        data = market_to_dict(market_from_dict(candidate))
    except MarketError as e:
        return state.Outcome(None, (f"{e} — the market was not changed",))
    return state.checked(data, book, data, settings, f"added {key} (spot {data['underlyings'][key]['spot']:g})")


def add_expiry(underlying, expiry, form, vol, book: dict, market: dict, settings: dict) -> state.Outcome:
    """A flat smile at ``vol`` in the chosen form (SVI: a = σ²T, b = 0; points: one point at the forward)."""
    if underlying not in market["underlyings"]:
        return state.Outcome(None, ("underlying: choose one of the market's underlyings first",))
    try:
        m = market_from_dict(market)
        atm = float(vol)
        day = date.fromisoformat(str(expiry).strip())
        if not (atm > 0 and math.isfinite(atm)):
            raise ValueError
    except MarketError as e:
        return state.Outcome(None, (str(e),))
    except (TypeError, ValueError):
        return state.Outcome(None, ("expiry must be YYYY-MM-DD and ATM vol a positive number (0.6 = 60 %)",))
    T = m.expiry_years(day)
    if T <= 0:
        return state.Outcome(None, (f"expiry {day}: not after the valuation time {market['valuation_time']}",))
    if form == SVI_FORM:
        smile: dict = {"svi": {"a": atm * atm * T, "b": 0.0, "rho": 0.0, "m": 0.0, "sigma": 0.1}}
    elif form == POINTS:
        smile = {"points": [[float(m.forward(underlying, T)), atm]]}
    else:
        smile = {"atm_vol": atm}
    candidate = json.loads(json.dumps(market))
    candidate["underlyings"][underlying]["smile"].append({"expiry": day.isoformat(), **smile})
    try:
        data = market_to_dict(market_from_dict(candidate))
    except MarketError as e:
        return state.Outcome(None, (f"{e} — the market was not changed",))
    return state.checked(data, book, data, settings, f"added {underlying} {day} ({form}, {atm:.0%})")


def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def edit_slices(changes, book: dict, market: dict, settings: dict) -> state.Outcome:
    """Grid edits: ``form`` converts the slice (fitted to its current smile), ``forward`` and
    ``rate`` set or (blank) clear the expiry's own value."""
    try:
        m = market_from_dict(market)
        unds = {name: list(u.smile) for name, u in m.underlyings.items()}
        for change in changes or []:
            und, expiry = str(change.get("rowId")).rsplit("|", 1)
            k = next(i for i, s in enumerate(unds[und]) if s.expiry.isoformat() == expiry)
            field, value = change.get("colId"), state.edited_value(change)
            if field == "form":
                unds[und][k] = convert_slice(m, und, unds[und][k], str(value))
            elif field in ("forward", "rate"):
                unds[und][k] = replace(unds[und][k], **{field: None if _blank(value) else value})
        for und, slices in unds.items():
            m = m.replace_underlying(und, smile=tuple(slices))
        new = market_to_dict(market_from_dict(market_to_dict(m)))  # validates the typed values
    except (MarketError, StopIteration, KeyError, ValueError) as e:
        return state.Outcome(None, (f"{e} — the market was not changed",))
    return state.checked(new, book, new, settings, f"{len(changes or [])} smile edit(s) applied")


def fit_to_quotes(quotes_data: dict | None, book: dict, market: dict, settings: dict):
    """Refit every live expiry as SVI: to its imported quotes when there are any, else to its
    current smile.  (Outcome, new quotes store value with the fit table)."""
    m = market_from_dict(market)
    quotes = pd.DataFrame((quotes_data or {}).get("quotes") or [])
    fits, notes = [], []
    fitted = m
    try:
        for name, u in m.underlyings.items():
            slices = []
            for s in u.smile:
                T = m.expiry_years(s.expiry)
                q = quotes[(quotes["underlying"] == name) & (quotes["expiry"] == s.expiry.isoformat())] \
                    if len(quotes) else quotes
                if T > 0 and len(q):
                    one, fit = fit_expiry(name, s.expiry, q["strike"], q["option_type"] == "C", q["mark_iv"],
                                          float(q["forward"].median()), float(q["rate"].median()), T, notes)
                    fits.append(fit)
                    slices.append(one)
                else:
                    slices.append(convert_slice(m, name, s, SVI_FORM) if T > 0 else s)
            fitted = fitted.replace_underlying(name, smile=tuple(slices))
    except MarketError as e:
        return state.Outcome(None, (f"{e} — the market was not changed",)), None
    data = market_to_dict(fitted)
    outcome = state.checked(data, book, data, settings, f"SVI fitted: {len(fits)} expiries to quotes, "
                            f"the others to their current smile", tuple(notes))
    return outcome, dict(quotes_data or {}, fits=_fit_rows(fits))


def slice_rows(market: dict) -> list[dict]:
    m = market_from_dict(market)
    rows = []
    for name, u in m.underlyings.items():
        for s in u.smile:
            T = m.expiry_years(s.expiry)
            atm = float(surface._slice_vols(m, name, s, T, [0.0])[0]) if T > 0 else None
            if s.svi is not None:
                params = ", ".join(f"{k} {v:.4g}" for k, v in s.svi.__dict__.items())
            elif s.points:
                params = f"{len(s.points)} points, K {s.points[0][0]:,.6g}…{s.points[-1][0]:,.6g}"
            else:
                params = f"atm {s.atm_vol:.4g}, skew {s.skew:.4g}, curvature {s.curvature:.4g}"
            rows.append({"id": f"{name}|{s.expiry.isoformat()}", "underlying": name, "expiry": s.expiry.isoformat(),
                         "days": T * 365, "form": s.form, "forward": s.forward, "rate": s.rate,
                         "atm_vol_pct": atm, "parameters": params})
    return rows


def surface_view(market: dict, quotes_data: dict | None, underlying: str | None):
    """(arbitrage panel, smile, term structure, forwards, 3-D surface figures) of one underlying."""
    m = market_from_dict(market)
    und = underlying if underlying in m.underlyings else next(iter(m.underlyings))
    quotes = pd.DataFrame((quotes_data or {}).get("quotes") or [])
    quotes = quotes[quotes["underlying"] == und] if len(quotes) else None
    warnings = surface_arbitrage(m, [und])
    alarm = (html.Div([html.Strong(f"{len(warnings)} static-arbitrage warning(s): "),
                       html.Ul([html.Li(str(w)) for w in warnings])], className="msg msg-error", role="alert")
             if warnings else html.Div(f"{und}: no static arbitrage found on the checked grid", className="msg msg-ok"))
    return (alarm, surface.smile_figure(m, und, quotes, warnings), surface.term_structure_figure(m, und, warnings),
            surface.forwards_figure(m, und), surface.surface_figure(m, und, quotes))


# ----------------------------------------------------------------------------- callbacks


class MarketView(NamedTuple):
    """What :func:`render` fills, one field an output of the callback (:data:`OUTPUTS`)."""

    slice_rows: Any
    fit_rows: Any
    surface_options: Any
    surface_choice: Any
    expiry_underlyings: Any
    valuation_time: Any
    arbitrage: Any
    smile: Any
    term: Any
    forward: Any
    surface: Any


OUTPUTS = MarketView(
    Output(ids.MKT_SLICE_GRID, "rowData"), Output(ids.MKT_FIT_GRID, "rowData"),
    Output(ids.MKT_SURFACE_UNDERLYING, "options"), Output(ids.MKT_SURFACE_UNDERLYING, "value"),
    Output(ids.MKT_ADD_EXPIRY_UNDERLYING, "options"), Output(ids.MKT_TIME, "value"),
    Output(ids.MKT_ARBITRAGE, "children"),
    Output(ids.MKT_SMILE_FIG, "figure"), Output(ids.MKT_TERM_FIG, "figure"), Output(ids.MKT_FORWARD_FIG, "figure"),
    Output(ids.MKT_SURFACE_FIG, "figure"))


@callback(*OUTPUTS, Input(ids.MARKET_STORE, "data"), Input(ids.MKT_QUOTES_STORE, "data"),
          Input(ids.MKT_SURFACE_UNDERLYING, "value"))
def render(market, quotes_data, underlying) -> MarketView:
    names = list(market["underlyings"])
    und = underlying if underlying in names else names[0]
    fits = (quotes_data or {}).get("fits") or []
    return MarketView(slice_rows(market), fits, names, und, names, market["valuation_time"],
                      *surface_view(market, quotes_data, und))


@callback(Output(ids.MARKET_STORE, "data", allow_duplicate=True),
          Output(ids.MKT_MESSAGE, "children", allow_duplicate=True),
          Output(ids.MKT_QUOTES_STORE, "data", allow_duplicate=True), Output(ids.MKT_UPLOAD, "contents"),
          Input(ids.MKT_UPLOAD, "contents"), State(ids.MKT_UPLOAD, "filename"), *STORES, prevent_initial_call=True)
def upload(contents, filenames, book, market, settings):
    user_action(contents)
    outcome, quotes = load_files(contents, filenames, book, market, settings)
    return (*committed(outcome), no_update if quotes is None else quotes, None)


@callback(Output(ids.BOOK_STORE, "data", allow_duplicate=True),
          Output(ids.MKT_MESSAGE, "children", allow_duplicate=True),
          Output(ids.MKT_POSITIONS_UPLOAD, "contents"),
          Input(ids.MKT_POSITIONS_UPLOAD, "contents"), State(ids.MKT_POSITIONS_UPLOAD, "filename"), *STORES,
          prevent_initial_call=True)
def upload_positions(contents, filename, book, market, settings):
    user_action(contents)
    return (*committed(load_positions(contents, filename, book, market, settings)), None)


@callback(Output(ids.MARKET_STORE, "data", allow_duplicate=True),
          Output(ids.MKT_MESSAGE, "children", allow_duplicate=True),
          Output(ids.MKT_QUOTES_STORE, "data", allow_duplicate=True),
          Input(ids.MKT_FETCH, "n_clicks"), State(ids.MKT_FETCH_CURRENCY, "value"), *STORES, prevent_initial_call=True)
def fetch_live(n_clicks, currency, book, market, settings):
    user_action(n_clicks)
    outcome, quotes = fetch(currency, book, market, settings)
    return (*committed(outcome), no_update if quotes is None else quotes)


@callback(Output(ids.MKT_DOWNLOAD, "data"), Input(ids.MKT_DOWNLOAD_BUTTON, "n_clicks"),
          State(ids.MARKET_STORE, "data"), prevent_initial_call=True)
def download(n_clicks, market):
    user_action(n_clicks)
    return dcc.send_string(save_market(market_from_dict(market)), "market.json")


@callback(Output(ids.BOOK_STORE, "data", allow_duplicate=True), Output(ids.MARKET_STORE, "data", allow_duplicate=True),
          Output(ids.MKT_MESSAGE, "children", allow_duplicate=True), Output(ids.MKT_ROLL_REPORT, "rowData"),
          Input(ids.MKT_TIME_APPLY, "n_clicks"), State(ids.MKT_TIME, "value"), *STORES, prevent_initial_call=True)
def roll(n_clicks, when, book, market, settings):
    user_action(n_clicks)
    outcome, new_market, settled = move_time(when, book, market, settings)
    data, note = committed(outcome)
    return data, (no_update if new_market is None else new_market), note, settled


@callback(Output(ids.MARKET_STORE, "data", allow_duplicate=True),
          Output(ids.MKT_MESSAGE, "children", allow_duplicate=True),
          Input(ids.MKT_ADD_UNDERLYING, "n_clicks"), State(ids.MKT_ADD_NAME, "value"), State(ids.MKT_ADD_SPOT, "value"),
          State(ids.MKT_ADD_CARRY, "value"), *STORES, prevent_initial_call=True)
def add_underlying_clicked(n_clicks, name, spot, carry, book, market, settings):
    user_action(n_clicks)
    return committed(add_underlying(name, spot, carry, book, market, settings))


@callback(Output(ids.MARKET_STORE, "data", allow_duplicate=True),
          Output(ids.MKT_MESSAGE, "children", allow_duplicate=True),
          Input(ids.MKT_ADD_EXPIRY, "n_clicks"), State(ids.MKT_ADD_EXPIRY_UNDERLYING, "value"),
          State(ids.MKT_ADD_EXPIRY_DATE, "value"), State(ids.MKT_ADD_EXPIRY_FORM, "value"),
          State(ids.MKT_ADD_EXPIRY_VOL, "value"), *STORES, prevent_initial_call=True)
def add_expiry_clicked(n_clicks, underlying, expiry, form, vol, book, market, settings):
    user_action(n_clicks)
    return committed(add_expiry(underlying, expiry, form, vol, book, market, settings))


@callback(Output(ids.MARKET_STORE, "data", allow_duplicate=True),
          Output(ids.MKT_MESSAGE, "children", allow_duplicate=True),
          Output(ids.MKT_SLICE_GRID, "rowData", allow_duplicate=True),
          Input(ids.MKT_SLICE_GRID, "cellValueChanged"), *STORES, prevent_initial_call=True)
def edit_slice_cells(changes, book, market, settings):
    user_action(changes)
    outcome = edit_slices(changes, book, market, settings)
    return (*committed(outcome), slice_rows(market) if outcome.data is None else no_update)


@callback(Output(ids.MARKET_STORE, "data", allow_duplicate=True),
          Output(ids.MKT_MESSAGE, "children", allow_duplicate=True),
          Output(ids.MKT_QUOTES_STORE, "data", allow_duplicate=True),
          Input(ids.MKT_FIT, "n_clicks"), State(ids.MKT_QUOTES_STORE, "data"), *STORES, prevent_initial_call=True)
def fit_clicked(n_clicks, quotes_data, book, market, settings):
    user_action(n_clicks)
    outcome, quotes = fit_to_quotes(quotes_data, book, market, settings)
    return (*committed(outcome), no_update if quotes is None else quotes)

