"""Liquidation engine (DESIGN §7): execution schedule, Dutch auction, closed-form amounts.

Sources: Almgren & Chriss (2000) for ``schedule``; Derive v2-core ``DutchAuction.sol`` for
``auction``; Drift protocol-v2 ``math/liquidation.rs`` for ``amounts``. Each module's docstring
states its formulas, parameters and units.
"""
from .amounts import liquidation_amount
from .auction import (
    DERIVE_MAINNET,
    DERIVE_TEST,
    AuctionFill,
    AuctionParams,
    AuctionResult,
    BidderPopulation,
    auction_discount,
    bidder_population,
    buffer_margin,
    insolvent_payout,
    max_fraction,
    simulate_auction,
    time_at_discount,
)
from .schedule import EfficientFrontier, ExecutionSchedule, almgren_chriss_schedule, efficient_frontier

__all__ = [
    # schedule
    "ExecutionSchedule",
    "EfficientFrontier",
    "almgren_chriss_schedule",
    "efficient_frontier",
    # auction
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
    # amounts
    "liquidation_amount",
]
