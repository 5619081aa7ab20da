"""Reusable page parts: a layout block with its transitions and callbacks."""
