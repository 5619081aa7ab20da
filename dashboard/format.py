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
