"""Parameter metadata for the margin models: each field carries its unit, description and range.

A params dataclass declares its numeric fields with :func:`param`; the description, unit and valid
range then live with the field, and every consumer derives from them:

* :func:`check_ranges` validates every declared field (one convention for all params types;
  cross-field rules such as IM ≥ MM stay in the class's ``validate``);
* :func:`describe` lists the fields for a parameter editor or the docs.

Example::

    @dataclass(frozen=True)
    class StandardParams:
        option_im_rate: float = param(0.15, unit="fraction of spot",
                                      description="short option IM rate", lo=0.0, hi=10.0)
"""
from __future__ import annotations

from dataclasses import MISSING, Field, dataclass, field, fields, is_dataclass
from typing import Any

from .core import ParamCheck

_KEY = "pmdash"


@dataclass(frozen=True)
class ParamInfo:
    """What a user needs to know about one parameter.  ``lo``/``hi`` bound the value (``lo_open``:
    the lower bound itself is refused); ``None`` means unbounded on that side."""

    name: str
    unit: str
    description: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    group: str = ""

    @property
    def range_text(self) -> str:
        lo = "−∞" if self.lo is None else f"{self.lo:g}"
        hi = "∞" if self.hi is None else f"{self.hi:g}"
        return f"{'(' if self.lo_open else '['}{lo}, {hi}]"


def param(default, *, unit: str, description: str, lo: float | None = None, hi: float | None = None,
          lo_open: bool = False, group: str = "") -> Any:
    """A dataclass field with its :class:`ParamInfo` in the field metadata (typed ``Any``, as
    ``dataclasses.field`` is, so ``x: float = param(...)`` type-checks)."""
    info = dict(unit=unit, description=description, lo=lo, hi=hi, lo_open=lo_open, group=group)
    return field(default=default, metadata={_KEY: info})


def param_info(f: Field) -> ParamInfo | None:
    """The :class:`ParamInfo` of a field declared with :func:`param` (None for other fields)."""
    meta = f.metadata.get(_KEY)
    return None if meta is None else ParamInfo(name=f.name, **meta)


def describe(cls_or_obj) -> list[ParamInfo]:
    """Every declared parameter of a params dataclass (type or instance), in field order;
    nested params dataclasses are listed with a ``group.name`` prefix."""
    out: list[ParamInfo] = []
    for f in fields(cls_or_obj):
        info = param_info(f)
        if info is not None:
            out.append(info)
            continue
        sub = f.type if isinstance(f.type, type) else None
        if sub is None and f.default_factory is not MISSING:
            sub = type(f.default_factory())
        if sub is not None and is_dataclass(sub):
            out += [ParamInfo(**{**i.__dict__, "name": f"{f.name}.{i.name}", "group": i.group or f.name})
                    for i in describe(sub)]
    return out


def check_ranges(obj, check: ParamCheck, prefix: str = "") -> None:
    """Add to ``check`` every declared field of ``obj`` (recursing into nested params dataclasses)
    that is not a finite number inside its range."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        info = param_info(f)
        if info is not None:
            check.range(prefix + f.name, value, -float("inf") if info.lo is None else info.lo,
                        float("inf") if info.hi is None else info.hi, open_lo=info.lo_open)
        elif is_dataclass(value) and not isinstance(value, type):
            check_ranges(value, check, prefix=f"{prefix}{f.name}.")


__all__ = ["ParamInfo", "check_ranges", "describe", "param", "param_info"]
