"""Importers of files saved from venues' public and private APIs (docs/market.md §Venue import)."""
from .deribit import (
                      ExpiryFit,
                      VenueError,
                      VenueMarket,
                      book_from_positions,
                      fit_expiry,
                      market_from_book_summary,
                      response_rows,
                      split_book_summary,
)

__all__ = ["ExpiryFit", "VenueError", "VenueMarket", "book_from_positions", "fit_expiry", "market_from_book_summary",
           "response_rows", "split_book_summary"]
