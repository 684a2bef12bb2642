"""JSON bodies with orjson: Feast's column-oriented online response, timestamps in RFC 3339 UTC.

JSON has no NaN or infinities (orjson writes them as null); in values they are written as Feast
writes them: the strings "NaN", "Infinity" and "-Infinity".
"""

from __future__ import annotations

import base64
import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from potluck.server.backend import OnlineResult

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC | orjson.OPT_SERIALIZE_NUMPY


def _default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Decimal):
        return str(value)  # Feast's JSON writes decimals as their text
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "as_py"):  # a pyarrow scalar
        return value.as_py()
    if hasattr(value, "item"):  # a numpy scalar orjson does not know
        return value.item()
    raise TypeError(f"cannot serialize {type(value).__name__}")


def dumps(body: Any) -> bytes:
    return orjson.dumps(body, option=_OPTIONS, default=_default)


def _non_finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, list):
        return json_values(value)
    return value


def json_values(values: list[Any]) -> list[Any]:
    """A column of values with non-finite floats as strings; other columns are returned as they are.

    A column holds one type, so only float (and list) columns are looked at, and a float column
    is copied only when its sum is not finite: `sum(filter(None, ...))` skips nulls and zeros in
    one pass in C, and NaN and infinities make the sum non-finite.
    """
    first = None
    for first in values:
        if first is not None:
            break
    if isinstance(first, list):
        return [_non_finite(v) for v in values]
    if not isinstance(first, float) or math.isfinite(sum(filter(None, values))):
        return values
    return [_non_finite(v) for v in values]


def online_body(result: OnlineResult, view_metadata: bool = False) -> bytes:
    """Feast's JSON answer; `view_metadata` adds `feature_view_metadata` (each view read, in order)."""
    results = [
        {
            "values": json_values(values),
            "statuses": statuses,
            "event_timestamps": [EPOCH if t is None else t for t in timestamps],
        }
        for values, statuses, timestamps in zip(result.values, result.statuses, result.event_timestamps, strict=True)
    ]
    metadata: dict[str, Any] = {"feature_names": result.feature_names}
    if view_metadata:
        # Feast also gives a version, but only for views under its versioning (none here): it omits zero
        names = dict.fromkeys(v for v in result.views or () if v is not None)
        metadata["feature_view_metadata"] = [{"name": name} for name in names]
    return dumps({"metadata": metadata, "results": results})
