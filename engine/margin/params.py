"""Parameter metadata for the margin models: each field carries its unit, description and range.

A params dataclass declares its numeric fields with :func:`param`; the description, unit and valid
range then live with the field, and every consumer derives from them:

* :func:`check_ranges` validates every declared field (one convention for all params types;
  cross-field rules such as IM ≥ MM stay in the class's ``validate``);
* :func:`describe` lists the fields for a parameter editor or the docs;
* :func:`from_dict` builds a params dataclass from JSON data, refusing a wrong shape with a
  ValueError naming the field (ranges are then :func:`check_ranges`' job).

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
    that is not a finite number inside its range; a tuple field's range applies to each element
    (reported as ``name[k]``, k from 1)."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        info = param_info(f)
        if info is not None:
            lo = -float("inf") if info.lo is None else info.lo
            hi = float("inf") if info.hi is None else info.hi
            items = enumerate(value, start=1) if isinstance(value, tuple) else [(0, value)]
            for k, item in items:
                check.range(f"{prefix}{f.name}[{k}]" if k else prefix + f.name, item, lo, hi, open_lo=info.lo_open)
        elif is_dataclass(value) and not isinstance(value, type):
            check_ranges(value, check, prefix=f"{prefix}{f.name}.")


def _nested_type(f: Field):
    """The params dataclass a field holds (via its default factory), or None."""
    if f.default_factory is MISSING:
        return None
    sub = type(f.default_factory())
    return sub if is_dataclass(sub) else None


def from_dict(cls, data, model: str, prefix: str = ""):
    """An instance of the params dataclass ``cls`` from JSON ``data`` (a dict of field: value;
    missing fields keep their defaults), not yet validated.

    Shapes are checked here, one convention for every params type: ``data`` must be a dict
    without unknown keys; a tuple field takes a list (or tuple) of numbers, a nested params
    dataclass a dict, every other field a single value.  A wrong shape raises ValueError naming
    the field; a wrong value (text, out of range) is left for ``validate``.
    """
    if not isinstance(data, dict):
        where = f" {prefix.rstrip('.')}" if prefix else ""
        raise ValueError(f"{model} parameters{where}: expected an object of name: value (got {data!r:.60})")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(str(k) for k in set(data) - set(known))
    if unknown:
        raise ValueError(f"{model}: unknown parameter(s) {', '.join(prefix + k for k in unknown)}")
    values = {}
    for name, value in data.items():
        f, path = known[name], prefix + name
        nested = _nested_type(f)
        if nested is not None:
            values[name] = from_dict(nested, value, model, f"{path}.")
        elif isinstance(f.default, tuple):
            if not isinstance(value, (list, tuple)) or any(isinstance(v, (list, tuple, dict)) for v in value):
                raise ValueError(f"{model} parameters: {path} must be a list of numbers (got {value!r:.60})")
            values[name] = tuple(value)
        elif isinstance(value, (list, tuple, dict)):
            raise ValueError(f"{model} parameters: {path} must be a single value (got {value!r:.60})")
        else:
            values[name] = value
    return cls(**values)


__all__ = ["ParamInfo", "check_ranges", "describe", "from_dict", "param", "param_info"]
