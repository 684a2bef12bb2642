"""Values of the types the row codec does not store natively (Map, Json, Struct, Set, Uuid, ...).

Each value has three forms, converted here by its declared type:
- the Python form the SDK returns (dict for Map and Struct, the parsed document for Json,
  `uuid.UUID`, `decimal.Decimal`, `set` for Set, `datetime` in UTC for timestamps);
- the Arrow form (`dtype.to_arrow()`: Json as JSON text, Uuid and Decimal as text, Map as
  map<string, string>, Struct as struct, Set as list);
- the stored form: a JSON document (bytes as base64, times as epoch microseconds, Json as its text,
  Uuid and Decimal as text), written by the row codec as UTF-8 in its variable-width section.
"""

from __future__ import annotations

import base64
import decimal
import json
import math
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from potluck.definitions.types import Array, PotluckType, PrimitiveType, Set, Struct

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BYTES = ("Bytes", "PdfBytes", "ImageBytes")
_TIMES = ("UnixTimestamp", "ZonedTimestamp")


def _micros(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // timedelta(microseconds=1)


def _pairs(value: Any) -> dict[str, Any]:
    """A Map value as a dict (Arrow gives a map as a list of key/value pairs)."""
    return dict(value.items() if isinstance(value, dict) else value)


def json_text(value: Any) -> str:
    """A Json value as JSON text: text is checked to be a JSON document, anything else is dumped."""
    if isinstance(value, str):
        json.loads(value)  # raises ValueError when it is not JSON
        return value
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def to_stored(dtype: PotluckType, value: Any) -> Any:
    """The JSON-ready stored form of one non-null value in its Python or Arrow form."""
    if value is None:
        return None
    if isinstance(dtype, Struct):
        return {k: to_stored(t, value.get(k)) for k, t in dtype.fields}
    if isinstance(dtype, (Array, Set)):
        return [to_stored(dtype.base_type, v) for v in value]
    name = dtype.name
    if name in _BYTES:
        return base64.b64encode(bytes(value)).decode("ascii")
    if name in _TIMES:
        return _micros(value)
    if name == "Map":
        return {str(k): v for k, v in _pairs(value).items()}
    if name == "Json":
        return json_text(value)
    if name in ("Uuid", "TimeUuid", "Decimal"):
        return str(value)
    return value


def from_stored(dtype: PotluckType, value: Any) -> Any:
    """The Python form of one value from its stored form."""
    if value is None:
        return None
    if isinstance(dtype, Struct):
        return {k: from_stored(t, value.get(k)) for k, t in dtype.fields}
    if isinstance(dtype, Array):
        return [from_stored(dtype.base_type, v) for v in value]
    if isinstance(dtype, Set):
        return {from_stored(dtype.base_type, v) for v in value}
    name = dtype.name
    if name in _BYTES:
        return base64.b64decode(value)
    if name in _TIMES:
        return _EPOCH + timedelta(microseconds=value)
    if name == "Json":
        return json.loads(value)
    if name in ("Uuid", "TimeUuid"):
        return uuid.UUID(value)
    if name == "Decimal":
        return decimal.Decimal(value)
    return value


def encode(dtype: PotluckType, value: Any) -> bytes:
    """The stored bytes of one non-null value."""
    return json.dumps(to_stored(dtype, value), separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decoder(dtype: PotluckType) -> Any:
    """A function from stored bytes to the Python form, for one type."""

    def decode(raw: bytes) -> Any:
        return from_stored(dtype, json.loads(raw))

    return decode


def to_arrow_form(dtype: PotluckType, value: Any) -> Any:
    """One Python-form value as Arrow takes it for `dtype.to_arrow()`."""
    if value is None:
        return None
    if isinstance(dtype, Struct):
        return {k: to_arrow_form(t, value.get(k)) for k, t in dtype.fields}
    if isinstance(dtype, (Array, Set)):
        return [to_arrow_form(dtype.base_type, v) for v in value]
    name = dtype.name
    if name == "Map":
        return list(_pairs(value).items())
    if name == "Json":  # the Python form is the parsed document: a str is a JSON string here
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    if name in ("Uuid", "TimeUuid", "Decimal"):
        return str(value)
    return value


def to_http_form(dtype: PotluckType, value: Any) -> Any:
    """One Python-form value as Feast's feature server writes it in JSON (Json as its text)."""
    if value is None:
        return None
    if isinstance(dtype, Struct):
        return {k: to_http_form(t, value.get(k)) for k, t in dtype.fields}
    if isinstance(dtype, (Array, Set)):
        return [to_http_form(dtype.base_type, v) for v in value]
    if isinstance(dtype, PrimitiveType) and dtype.name in ("Json", "Uuid", "TimeUuid", "Decimal"):
        return to_arrow_form(dtype, value)
    return value


def needs_http_form(dtype: PotluckType) -> bool:
    """Whether values of `dtype` differ between the SDK's Python form and Feast's JSON."""
    if isinstance(dtype, Struct):
        return any(needs_http_form(t) for _, t in dtype.fields)
    if isinstance(dtype, (Array, Set)):
        return needs_http_form(dtype.base_type)
    return dtype.name in ("Json", "Uuid", "TimeUuid", "Decimal")


def http_column(dtype: PotluckType, values: Sequence[Any]) -> list[Any]:
    """Python-form values as Feast's feature server writes them in JSON."""
    return [to_http_form(dtype, v) for v in values]


def column_to_arrow(dtype: PotluckType, values: Sequence[Any]) -> Any:
    """Python-form values as one Arrow array of `dtype.to_arrow()`."""
    import pyarrow as pa

    return pa.array([to_arrow_form(dtype, v) for v in values], type=dtype.to_arrow())


def to_wire(dtype: PotluckType, value: Any) -> Any:
    """One value in its Python or Arrow form as a feature server's push parser reads it from JSON.

    As the stored form, but times as RFC 3339 text and non-finite floats as "NaN"/"Infinity"/"-Infinity".
    """
    if value is None:
        return None
    if isinstance(dtype, Struct):
        return {k: to_wire(t, value.get(k)) for k, t in dtype.fields}
    if isinstance(dtype, (Array, Set)):
        return [to_wire(dtype.base_type, v) for v in value]
    if dtype.name in _TIMES:
        return (_EPOCH + timedelta(microseconds=_micros(value))).isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return to_stored(dtype, value)


def from_wire(dtype: PotluckType, value: Any) -> Any:
    """The Python form of one value as a feature server writes it in JSON (the inverse of `to_wire`)."""
    if value is None:
        return None
    if isinstance(dtype, Struct):
        return {k: from_wire(t, value.get(k)) for k, t in dtype.fields}
    if isinstance(dtype, Array):
        return [from_wire(dtype.base_type, v) for v in value]
    if isinstance(dtype, Set):
        return {from_wire(dtype.base_type, v) for v in value}
    if dtype.name in _TIMES:
        stamp = datetime.fromisoformat(value)
        return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
    if dtype.name in ("Float32", "Float64") and isinstance(value, str):
        return float(value.replace("Infinity", "inf"))
    if dtype.name == "Json" and not isinstance(value, str):
        return value  # a server that answers the parsed document
    return from_stored(dtype, value)
