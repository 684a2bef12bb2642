"""Pushed values of Map, Json, Struct, Set, Uuid, Decimal and the other non-native types.

One rule for the SDK and HTTP, value by value (these columns are not on a vectorised path):
- Map: an object of text keys and text values (Feast's Arrow form, map<string, string>).
- Json: any JSON value; text must itself be a JSON document (it is stored as given).
- Struct: an object with the declared fields (a missing field is null, an unknown one an error).
- Array / Set: a list (a Set's duplicates are dropped, first occurrence kept).
- Uuid / TimeUuid: a UUID or its text; Decimal: a Decimal, its text, an integer or a float (its shortest text).
- PdfBytes / ImageBytes: bytes, or base64 text (JSON cannot carry bytes).
- Scalars inside them follow the rules of push_values (times, numbers, booleans).
"""

from __future__ import annotations

import base64
import binascii
import decimal
import math
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from potluck.definitions.errors import RetrievalError
from potluck.definitions.types import Array, PotluckType, Set, Struct
from potluck.online.typed_values import json_text
from potluck.streaming.push_values import BadValue, _bool, _floating, _integer, parse_time

if TYPE_CHECKING:
    import pyarrow as pa

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INTS = {"Int32": _integer(32), "Int64": _integer(64)}


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise BadValue("text")


def _bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise BadValue("bytes or base64 text") from None
    raise BadValue("bytes or base64 text")


def _uuid(value: Any) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise BadValue("a UUID or its text (e.g. '12345678-1234-5678-1234-567812345678')")


def _decimal(value: Any) -> str:
    if isinstance(value, bool):
        raise BadValue("a decimal number or its text")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BadValue("a finite decimal number")
        value = repr(value)
    try:
        number = decimal.Decimal(value) if isinstance(value, (str, int, decimal.Decimal)) else None
    except decimal.InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise BadValue("a decimal number or its text (e.g. '12.34')")
    return str(number)


def _time(value: Any) -> datetime | None:
    micros = parse_time(value)
    return None if micros is None else _EPOCH + timedelta(microseconds=micros)


def _json(value: Any) -> str:
    try:
        return json_text(value)
    except (ValueError, TypeError):
        raise BadValue("a JSON value (text must be a JSON document)") from None


def _map(value: Any, absent_as_null: bool) -> list[tuple[str, str]]:
    if isinstance(value, list) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
        value = dict(value)
    if not isinstance(value, Mapping):
        raise BadValue("an object of text values")
    out = []
    for key, item in value.items():
        if item is None and absent_as_null:
            continue
        if not isinstance(key, str) or not isinstance(item, str):
            raise BadValue("an object of text values (a Map holds text; use Json or Struct for typed values)")
        out.append((key, item))
    return out


_SCALARS: dict[str, Callable[[Any], Any]] = {
    "String": _text,
    "Bytes": _bytes,
    "PdfBytes": _bytes,
    "ImageBytes": _bytes,
    "Bool": _bool,
    "Float32": _floating(32),
    "Float64": _floating(64),
    "UnixTimestamp": _time,
    "ZonedTimestamp": _time,
    "Json": _json,
    "Uuid": _uuid,
    "TimeUuid": _uuid,
    "Decimal": _decimal,
    **_INTS,
}


def coerce(dtype: PotluckType, value: Any, absent_as_null: bool = False) -> Any:
    """One pushed value in the Arrow form of `dtype`; BadValue says what was expected."""
    if value is None:
        return None
    if isinstance(dtype, Struct):
        if not isinstance(value, Mapping):
            raise BadValue(f"an object with fields {', '.join(k for k, _ in dtype.fields)}")
        names = {k for k, _ in dtype.fields}
        unknown = [k for k in value if k not in names]
        if unknown:
            raise BadValue(f"an object with fields {', '.join(sorted(names))} (not {unknown[0]!r})")
        return {k: coerce(t, value.get(k), absent_as_null) for k, t in dtype.fields}
    if isinstance(dtype, (Array, Set)):
        if not isinstance(value, (list, tuple, set, frozenset)):
            raise BadValue(f"a list of {dtype.base_type.name}")
        items = [coerce(dtype.base_type, v, absent_as_null) for v in value]
        return list(dict.fromkeys(items)) if isinstance(dtype, Set) else items
    if dtype.name == "Map":
        return _map(value, absent_as_null)
    return _SCALARS[dtype.name](value)


def typed_column(dtype: PotluckType, values: Any, where: Callable[[int, Any], str]) -> pa.Array:
    """Pushed values (Python values or an Arrow column) as an Arrow array of `dtype.to_arrow()`."""
    import pyarrow as pa

    # A DataFrame's dicts arrive as an Arrow struct holding every key seen: absent keys are null there.
    absent_as_null = hasattr(values, "type") and pa.types.is_struct(values.type)
    python = values.to_pylist() if hasattr(values, "to_pylist") else list(values)
    out = []
    for row, value in enumerate(python):
        try:
            out.append(coerce(dtype, value, absent_as_null))
        except BadValue as err:
            raise RetrievalError(f"{where(row, value)}: expected {err}") from None
    return pa.array(out, dtype.to_arrow())
