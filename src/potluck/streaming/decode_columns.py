"""Decoded messages' values as typed columns, by the push rules, with each bad value set apart.

A column is converted in one vectorised `to_column` call; when that refuses a value, a basic
scalar column is checked value by value with the rule's own converter, and then (and for the other
types) the rows are split in halves until every refused value stands alone, so each good value
gets exactly what the push rules give it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from potluck.definitions.errors import RetrievalError
from potluck.definitions.types import Array, Int64, Set, String, Struct, is_basic
from potluck.streaming.decode_plan import TIME_TYPE_NAME, Target, field_target
from potluck.streaming.push_values import BadValue, _converter, _show, to_column

if TYPE_CHECKING:
    import pyarrow as pa

_BYTES_TYPES = {"Bytes", "PdfBytes", "ImageBytes"}
_TIME_TYPES = {"UnixTimestamp", "ZonedTimestamp"}
_FIELD_MAP_BOOLS = {"1": "true", "0": "false"}
_BOOL_KINDS = {bool, type(None)}


def _article(type_name: str) -> str:
    return f"an {type_name}" if type_name[:1] in "AEIOU" else f"a {type_name}"


def bad_value_reason(column: str, value: Any, type_name: str, why: str = "") -> str:
    hint = why.split(": expected ", 1)[1] if ": expected " in why else ""
    text = f"field '{column}' is {_show(value)}, not {_article(type_name)}"
    return f"{text} (expected {hint})" if hint else text


def key_target(values: list[Any]) -> Target:
    """The type of a join key no schema declares: Int64 when its first value is an integer, else String."""
    first = next((v for v in values if v is not None), None)
    is_int = isinstance(first, int) and not isinstance(first, bool)
    return field_target(Int64 if is_int else String)


def _is_integer_text(text: str) -> bool:
    body = text[1:] if text[:1] in "+-" else text
    return body.isdigit() and body.isascii()


def field_map_value(raw: Any, target: Target) -> Any:
    """A Redis Streams field (bytes) as the Python value the push rules take for `target`.

    Text throughout; Bool also takes 1 / 0; a time also takes epoch seconds as digits; an Array,
    Set, Map or Struct is JSON text; an empty value is null except for String and Bytes.
    """
    if not isinstance(raw, bytes):
        return raw
    name = target.type_name
    if name in _BYTES_TYPES:
        return raw
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadValue("UTF-8 text") from None
    if text == "" and name != "String":
        return None
    if name == "Bool":
        return _FIELD_MAP_BOOLS.get(text, text)
    if name == TIME_TYPE_NAME or name in _TIME_TYPES:
        if _is_integer_text(text):
            return int(text)
        try:
            return float(text)
        except ValueError:
            return text
    if isinstance(target.dtype, (Array, Set, Struct)) or name == "Map":
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            raise BadValue(f"JSON text for {name}") from None
    return text


class ColumnConverter:
    """Converts one needed column's values, recording per row why a value was refused."""

    def __init__(self, column: str, target: Target, context: str) -> None:
        self.column = column
        self.target = target
        self.context = context

    def _convert(self, values: list[Any]) -> pa.Array:
        import pyarrow as pa

        t = self.target
        if pa.types.is_boolean(t.arrow) and set(map(type, values)) <= _BOOL_KINDS:
            return pa.array(values, t.arrow)  # booleans stay as they are (the push rules' slow path otherwise)
        dtype = t.dtype if t.dtype is not None and not is_basic(t.dtype) else None
        array = to_column(values, t.arrow, self.column, self.context, t.type_name, dtype)
        return array if array.type == t.arrow else array.cast(t.arrow)

    def convert(self, values: list[Any], bad: dict[int, str]) -> pa.Array:
        """All values as one array (null where refused); `bad` gets each refused row's reason."""
        import pyarrow as pa

        try:
            return self._convert(values)
        except (RetrievalError, pa.ArrowException, ValueError, TypeError, OverflowError):
            pass
        convert = _converter(self.target.arrow)
        if convert is not None and self.target.dtype is not None and is_basic(self.target.dtype):
            values = list(values)  # the rule value by value finds the bad ones in one pass
            for j, value in enumerate(values):
                try:
                    convert(value)
                except BadValue as err:
                    bad.setdefault(j, bad_value_reason(self.column, value, self.target.type_name, f": expected {err}"))
                    values[j] = None
        pieces: list[pa.Array] = []
        self._split(values, 0, len(values), pieces, bad)
        return pieces[0] if len(pieces) == 1 else pa.concat_arrays(pieces)

    def _split(self, values: list[Any], low: int, high: int, pieces: list[pa.Array], bad: dict[int, str]) -> None:
        import pyarrow as pa

        try:
            pieces.append(self._convert(values[low:high]))
            return
        except (RetrievalError, pa.ArrowException, ValueError, TypeError, OverflowError) as err:
            if high - low > 1:
                middle = (low + high) // 2
                self._split(values, low, middle, pieces, bad)
                self._split(values, middle, high, pieces, bad)
                return
            bad.setdefault(low, bad_value_reason(self.column, values[low], self.target.type_name, str(err)))
        pieces.append(pa.nulls(1, self.target.arrow))
