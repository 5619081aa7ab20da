"""Pure functions from an ``engine.Analysis`` to plotly figures, testable without a browser."""
from .greeks import by_expiry, by_underlying, greeks_vs_spot, strike_profile
from .stress import pnl_vs_spot, selection_shapes, stress_heatmap, stress_surface

__all__ = ["by_expiry", "by_underlying", "greeks_vs_spot", "pnl_vs_spot", "selection_shapes",
           "stress_heatmap", "stress_surface", "strike_profile"]
