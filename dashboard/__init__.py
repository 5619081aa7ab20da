"""Dash web app over the engine: Book, Greeks and Stress pages (``python -m dashboard``)."""
