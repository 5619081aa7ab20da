"""Numbers as text: USD amounts, percentages of spot, the margin ratio.

The one place that turns numbers into words, used by stores (notes), components, pages and figures
alike, so that the same figure reads the same everywhere.  Negative values carry a true minus sign
(U+2212), as typeset, not a hyphen.
"""
from __future__ import annotations

import math

NO_EQUITY = "∞ (equity ≤ 0)"


def ratio_text(ratio: float) -> str:
    """The margin ratio in %, or that there is no equity left (an infinite ratio)."""
    return NO_EQUITY if math.isinf(ratio) else f"{ratio * 100:.1f} %"


def shock_label(shock: float) -> str:
    """A spot shock (fraction) in % with a true minus sign, and no sign at zero: ``0 %``,
    ``+15 %``, ``−15 %``."""
    pct = round(shock * 100.0, 1)
    return "0 %" if pct == 0 else f"{pct:+.4g} %".replace("-", "−")


def usd(x: float) -> str:
    """``-1234.5`` -> ``'−$1,235'`` (true minus sign, whole dollars); NaN (unknown) -> ``'n/a'``."""
    if x != x:
        return "n/a"
    return ("−" if x < 0 else "") + f"${abs(x):,.0f}"


#: Symbols of the coins an account can be denominated in (engine.account.DENOMINATIONS).
COIN_SYMBOLS = {"BTC": "₿", "ETH": "Ξ"}


def usd_short(x: float) -> str:
    """``1_170_000`` -> ``'$1.17 M'``: three significant figures with k / M / B."""
    if x != x:
        return "n/a"
    size, suffix = abs(x), ""
    for scale, name in ((1e9, " B"), (1e6, " M"), (1e3, " k")):
        if size >= scale:
            size, suffix = size / scale, name
            break
    return ("−" if x < 0 else "") + f"${size:.3g}{suffix}"


def money(amount_usd: float, currency: str = "USD", spot: float = 1.0) -> str:
    """A USD amount in the account's ``currency`` (``spot``: USD per coin) with USD beside:
    ``'₿12.345 ($1.17 M)'``; a USD account shows :func:`usd`."""
    if currency == "USD":
        return usd(amount_usd)
    coin = amount_usd / spot
    return ("−" if coin < 0 else "") + f"{COIN_SYMBOLS.get(currency, currency + ' ')}{abs(coin):,.3f} " \
        f"({usd_short(amount_usd)})"
