"""JSON bodies with orjson: Feast's column-oriented online response, timestamps in RFC 3339 UTC."""

from __future__ import annotations

import base64
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
        return float(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "as_py"):  # a pyarrow scalar
        return value.as_py()
    if hasattr(value, "item"):  # a numpy scalar orjson does not know
        return value.item()
    raise TypeError(f"cannot serialize {type(value).__name__}")


def dumps(body: Any) -> bytes:
    return orjson.dumps(body, option=_OPTIONS, default=_default)


def online_body(result: OnlineResult) -> bytes:
    results = [
        {
            "values": values,
            "statuses": statuses,
            "event_timestamps": [EPOCH if t is None else t for t in timestamps],
        }
        for values, statuses, timestamps in zip(result.values, result.statuses, result.event_timestamps, strict=True)
    ]
    return dumps({"metadata": {"feature_names": result.feature_names}, "results": results})
