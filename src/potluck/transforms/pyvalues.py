"""Python values checked against a declared type without building Arrow arrays (python-mode views).

For the plain Python scalars whose Arrow round trip is the identity (after int -> float for the
float type), `py_column` gives the list the Arrow path would give: `pa.array(values,
type).to_pylist()`. Anything else (other types, other Python classes, out-of-range integers)
answers None, and the caller takes the Arrow path, which converts or rejects it as always.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from potluck.definitions.types import PotluckType, PrimitiveType

_INT64 = (-(2**63), 2**63 - 1)
_INT32 = (-(2**31), 2**31 - 1)
_EXACT_IN_DOUBLE = 2**53  # Arrow rejects a larger integer as a float


def _ints(bounds: tuple[int, int]) -> Callable[[Sequence[Any]], list[Any] | None]:
    lo, hi = bounds

    def check(values: Sequence[Any]) -> list[Any] | None:
        for v in values:
            if v is not None and (type(v) is not int or v < lo or v > hi):
                return None
        return list(values)

    return check


def _floats(values: Sequence[Any]) -> list[Any] | None:
    out = list(values)
    for i, v in enumerate(out):
        t = type(v)
        if t is float or v is None:
            continue
        if t is not int or not -_EXACT_IN_DOUBLE <= v <= _EXACT_IN_DOUBLE:
            return None
        out[i] = float(v)
    return out


def _exact(kind: type) -> Callable[[Sequence[Any]], list[Any] | None]:
    def check(values: Sequence[Any]) -> list[Any] | None:
        for v in values:
            if v is not None and type(v) is not kind:
                return None
        return list(values)

    return check


_CHECKS: dict[str, Callable[[Sequence[Any]], list[Any] | None]] = {  # by type name
    "Int64": _ints(_INT64),
    "Int32": _ints(_INT32),
    "Float64": _floats,
    "String": _exact(str),
    "Bool": _exact(bool),
    "Bytes": _exact(bytes),
}


Check = Callable[[Sequence[Any]], list[Any] | None]


def py_check(dtype: PotluckType) -> Check | None:
    """The check of `py_column` for `dtype`, None for a type only the Arrow path converts."""
    return _CHECKS.get(dtype.name) if isinstance(dtype, PrimitiveType) else None


def py_column(dtype: PotluckType, values: Any, check: Check | None = None) -> list[Any] | None:
    """`values` as the declared type's Python values, or None when only the Arrow path can tell."""
    check = check or py_check(dtype)
    if check is None or type(values) is not list:
        return None
    return check(values)
