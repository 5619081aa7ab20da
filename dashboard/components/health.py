"""The account-health strip in the header of every page: equity, IM, MM, available, the margin
ratio gauge under the selected model, and the distance to liquidation.  Filled by two shell
callbacks (:func:`dashboard.layout.register_callbacks`) from the stores."""
from __future__ import annotations

import logging

from dash import dcc, html

from engine.margin.account import RATIO_DANGER, RATIO_WARNING, health_status, margin_ratio

from .. import ids
from ..figures.margin import model_label
from ..format import money, ratio_text, usd
from ..stores.account import currency_of, headline, health, model_params

log = logging.getLogger(__name__)


def health_strip() -> html.Div:
    """The account's health in the header of every page: the figures (:func:`health_items`) and
    the distance to liquidation (:func:`liquidation_items`), filled by two callbacks so that the
    figures do not wait for the slower search for liquidation prices."""
    return html.Div([html.Div(id=ids.HEALTH_STRIP, className="health-now"),
                     html.Div(id=ids.HEALTH_LIQUIDATION, className="health-liquidation")],
                    className="strip health-strip")


def _liquidation_side(arrow: str, sign: str, pct: float | None, prices: dict | None, distance: dict | None,
                      search: float) -> list:
    """One side of the distance to liquidation: the move in % and each underlying's price there."""
    if pct is None:
        return [f"{arrow} ", html.B(f"none within ±{search * 100:g} %")]
    where = ", ".join(f"{u} {usd(p)} ({sign}{usd(abs(distance[u]))})" for u, p in prices.items())
    return [f"{arrow} ", html.B(f"{sign}{pct:.1f} %"), f" ({where})"]


def gauge(ratio: float, level: str) -> html.Span:
    """A small bar of the margin ratio (full at 100 %) in the colour of its health ``level``,
    marks at the warning and danger levels."""
    fill = min(ratio, 1.0) * 100.0
    return html.Span([
        html.Span(className=f"gauge-fill {level}", style={"width": f"{fill:.1f}%"}),
        html.Span(className="gauge-mark", style={"left": f"{RATIO_WARNING * 100:g}%"}),
        html.Span(className="gauge-mark", style={"left": f"{RATIO_DANGER * 100:g}%"}),
    ], className="gauge", title=f"green below {RATIO_WARNING * 100:g} %, amber below {RATIO_DANGER * 100:g} %, "
                                f"red from {RATIO_DANGER * 100:g} %; liquidatable when equity < MM (above 100 %), "
                                "bankrupt when equity ≤ 0")


def health_items(book: dict, market: dict, account: dict):
    """Equity, IM, MM, available and the margin-ratio gauge under the selected model, and an alert
    when the account is liquidatable or bankrupt."""
    try:
        equity, im, mm = headline(book, market, account)
    except Exception as exc:  # the UI boundary: show the problem in the strip, never break the page
        log.exception("account health failed")
        return [html.Span(f"account health unavailable: {exc}", className="strip-warning")]
    level, ratio = health_status(equity, mm), margin_ratio(equity, mm)
    label = model_label(account["model"], model_params(account))
    currency, spot = currency_of(market, account)

    def amount(x: float) -> str:  # the account's currency, USD beside a coin
        return money(x, currency, spot)

    items = [
        dcc.Link(["Account · ", html.B(label)], href="/margin", className="health-link"),
        html.Span(["equity ", html.B(amount(equity), id=ids.HEALTH_EQUITY)]),
        html.Span(["IM ", html.B(amount(im))]),
        html.Span(["MM ", html.B(amount(mm))]),
        html.Span(["available ", html.B(amount(equity - im), className="negative" if equity < im else "")]),
        html.Span(["margin ratio ", gauge(ratio, level), html.B(ratio_text(ratio), className=f"level-{level}")],
                  className="health-ratio"),
    ]
    if level == "bankrupt":
        items.append(html.Span("BANKRUPT: equity ≤ 0", className="health-alert"))
    elif level == "liquidatable":
        items.append(html.Span("LIQUIDATABLE: equity < MM", className="health-alert"))
    return items


def liquidation_items(book: dict, market: dict, account: dict):
    """The distance to liquidation (down and up, % of spot and the spot price per underlying)
    under the selected model; nothing when the account is liquidatable already."""
    try:
        h = health(book, market, account)
    except Exception:  # the figures' callback reports the problem
        log.exception("account health failed")
        return []
    if h.liquidatable:
        return []
    down = _liquidation_side("↓", "−", h.distance_down_pct, h.liquidation_price_down, h.distance_down_price,
                             h.search_range)
    up = _liquidation_side("↑", "+", h.distance_up_pct, h.liquidation_price_up, h.distance_up_price, h.search_range)
    return [html.Span(["liquidation ", *down, " · ", *up], title="spot move of every underlying at which "
                      "equity = MM, and the spot price there (distance from today in USD)")]
