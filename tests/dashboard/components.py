"""Helpers for reading Dash component trees in callback tests."""


def text_of(component) -> str:
    """All text inside a Dash component tree."""
    if component is None or isinstance(component, (str, int, float)):
        return "" if component is None else str(component)
    if isinstance(component, (list, tuple)):
        return " ".join(text_of(c) for c in component)
    return text_of(getattr(component, "children", None))
