"""Closed-form liquidation amount for one linear position (Drift protocol-v2 style; docs/methodology.md §9).

Source: Drift protocol-v2, ``calculate_base_asset_amount_to_cover_margin_shortage`` in
programs/drift/src/math/liquidation.rs, and Drift's liquidation documentation.

Parameters: shortage in USD (margin requirement − total collateral, > 0 when liquidatable);
margin_ratio, liquidator_fee and if_fee as fractions (0.10 = 10 %); price in USD per unit of
the base asset (oracle price); the result is in base units (contracts / coins).

Derivation. Liquidating b units at price P:
  * frees margin requirement       b·P·margin_ratio,
  * costs collateral               b·P·liquidator_fee   (the liquidator takes the position at a
                                                        discount of that fraction of notional),
  * and                            b·P·if_fee           (the insurance-fund fee, also charged to the
                                                        liquidated account on the notional).
The shortage is covered when the net improvement equals it,

    b·P·(margin_ratio − liquidator_fee − if_fee) = shortage
    ⇒  b = shortage / (P·(margin_ratio − liquidator_fee − if_fee)),

which is Drift's divisor P·(mr − lf) − P·if_fee written out. Published cases (shortage $10,
price $100, margin ratio 10 %): no fee 10/(100·0.10) = 1.0; 1 % liquidator fee 10/(100·0.09) =
10/9; 1 % + 1 % insurance-fund fee 10/(100·0.08) = 1.25. (The "quote oracle price" of Drift's
newer code is 1 for a USD-settled book.)
"""
from __future__ import annotations

import numpy as np

__all__ = ["liquidation_amount"]


def liquidation_amount(shortage, margin_ratio, price, liquidator_fee=0.0, if_fee=0.0):
    """Base amount to liquidate to cover a margin shortage: shortage / (P·(mr − lf − if_fee)).

    shortage: USD (≤ 0 → nothing to liquidate → 0). margin_ratio, liquidator_fee, if_fee:
    fractions. price: USD per base unit (its absolute value is used, as in Drift). Returns base
    units; +inf where the divisor is ≤ 0 — fees eat the whole margin released, so no amount
    suffices (Drift returns u64::MAX: liquidate everything). Vectorised (numpy broadcasting).

    >>> [round(float(liquidation_amount(10.0, 0.10, 100.0, *fees)), 6)
    ...  for fees in [(0, 0), (0.01, 0), (0.01, 0.01)]]
    [1.0, 1.111111, 1.25]
    """
    shortage = np.asarray(shortage, dtype=float)
    divisor = np.abs(np.asarray(price, dtype=float)) * (
        np.asarray(margin_ratio, dtype=float)
        - np.asarray(liquidator_fee, dtype=float)
        - np.asarray(if_fee, dtype=float)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        amount = np.where(divisor > 0, shortage / divisor, np.inf)
    return np.where(shortage > 0, amount, 0.0)[()]
