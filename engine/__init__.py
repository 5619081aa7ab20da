"""Portfolio-margin risk engine: pure numpy/scipy/pandas, no UI.

Public API (docs/methodology.md §11)::

    from engine.pricing import black76_price, black76_greeks
    from engine.instruments import parse_instrument
    from engine.market import load_market, save_market
    from engine.portfolio import read_positions
    from engine.account import load_account, account_to_dict, feeds_from_market_dict
    from engine import analyze
"""
from .account import Account, AccountError, account_to_dict, feeds_from_market_dict, load_account
from .analysis import Analysis, Settings, analyze
from .instruments import Instrument, InstrumentError, parse_instrument
from .market import Market, MarketError, load_market, save_market
from .portfolio import Book, Position, PositionsImport, RowError, read_positions, write_positions

__all__ = ["Account", "AccountError", "Analysis", "Book", "Instrument", "InstrumentError", "Market", "MarketError",
           "Position", "PositionsImport", "RowError", "Settings", "account_to_dict", "analyze",
           "feeds_from_market_dict", "load_account", "load_market", "parse_instrument",
           "read_positions", "save_market", "write_positions"]
