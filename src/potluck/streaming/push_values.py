"""Pushed columns as the types of a view's schema, with one rule for the SDK and HTTP.

- Timestamps: RFC 3339 / ISO 8601 text (`2026-11-01T00:00:00.5Z`, `2022-05-13 10:59:42+00:00`,
  `2026-11-01`; no offset means UTC; digits finer than microseconds are truncated), or numbers,
  which are epoch seconds (as in Feast and pandas `unit="s"`); years 1 to 9999 only.
- Floats: numbers, decimal text ("1.5", "-2e3") and the strings "NaN", "Infinity", "-Infinity".
  An integer must be exact in the type (at most 2**53 in magnitude for Float64, 2**24 for Float32);
  a fraction is rounded to the nearest value of the type, but a finite value too large for Float32
  is refused (it would become infinity).
- Integers: integers, integral floats (`3.0`) and decimal integer text (`"1001"`) within the type's
  range; a fraction (`1.5`) or a value out of range (`2**40` for Int32) is refused, never truncated.
- Booleans: booleans, and the text "true" / "false" in any case; numbers are refused.
- Booleans are never numbers: `True` for a number column is refused.
- Bytes: bytes, or base64 text (how the server answers them) when given as Python or JSON values.
A value that does not fit is an error naming the column, the first bad row, its value and the type.
"""

from __future__ import annotations

import base64
import math
import re
import struct
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from potluck.definitions.errors import RetrievalError
from potluck.definitions.types import PotluckType, is_basic
from potluck.online.time_range import EPOCH, MAX_US, MIN_US, RANGE_TEXT, describe, first_out_of_range

if TYPE_CHECKING:
    import pyarrow as pa

SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]{1,30}")  # longer text is out of every integer type's range
_DECIMAL_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_BOOL_TEXT = {"true": True, "false": False}
# Integers a float type holds exactly, every one of them (Arrow's safe cast uses the same bounds)
EXACT_INTEGER = {32: 2**24, 64: 2**53}
FLOAT32_MAX = 3.4028234663852886e38
TIMESTAMP_HINT = "RFC 3339 / ISO 8601 text (e.g. '2026-11-01T00:00:00Z') or epoch seconds, " + RANGE_TEXT
Column = Any  # a list of Python values, or a pyarrow Array / ChunkedArray


class BadValue(ValueError):
    """A value that does not fit the column's type; the message says what is expected."""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_time(value: Any) -> int | None:
    """One pushed time as microseconds since the epoch (None for null)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise BadValue(TIMESTAMP_HINT)
    if isinstance(value, datetime):
        stamp = value
    elif isinstance(value, date):
        stamp = datetime(value.year, value.month, value.day)
    elif isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise BadValue(TIMESTAMP_HINT)
        micros = round(value * 1_000_000) if isinstance(value, float) else value * 1_000_000
        if not MIN_US <= micros <= MAX_US:
            raise BadValue(TIMESTAMP_HINT)
        return int(micros)
    elif isinstance(value, str):
        text = value.strip()
        if "t" in text or "z" in text:  # RFC 3339 allows both in lower case
            text = text.upper()
        try:
            stamp = datetime.fromisoformat(text)
        except ValueError:
            raise BadValue(TIMESTAMP_HINT) from None
    else:
        raise BadValue(TIMESTAMP_HINT)
    try:
        stamp = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
        return (stamp - EPOCH) // datetime.resolution
    except OverflowError:
        raise BadValue(TIMESTAMP_HINT) from None


def _floating(bits: int) -> Callable[[Any], float | None]:
    exact = EXACT_INTEGER[bits]

    def convert(value: Any) -> float | None:
        if value is None:
            return None
        if isinstance(value, str):
            if value in SPECIAL_FLOATS:
                return SPECIAL_FLOATS[value]
            if not _DECIMAL_TEXT.fullmatch(value):
                raise BadValue('a number (or "NaN", "Infinity", "-Infinity")')
            value = float(value)
            if math.isinf(value):
                raise BadValue("a number within the range of a double")
        if isinstance(value, int) and not isinstance(value, bool):
            if -exact <= value <= exact:
                return float(value)
            raise BadValue(f"a number; integers only from -{exact} to {exact} are exact in this type")
        if isinstance(value, float):
            if bits == 32 and not _fits_float32(value):
                raise BadValue(f"a number within the range of a float (at most {FLOAT32_MAX:.6g} in magnitude)")
            return value
        raise BadValue('a number (or "NaN", "Infinity", "-Infinity")')

    return convert


def _fits_float32(value: float) -> bool:
    """Whether a double stays finite as a float (rounded to nearest, as Arrow's cast does)."""
    try:
        struct.pack("<f", value)
    except OverflowError:
        return False
    return True


def _integer(bits: int) -> Callable[[Any], int | None]:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def convert(value: Any) -> int | None:
        if value is None:
            return None
        text = isinstance(value, str) and _INTEGER_TEXT.fullmatch(value)
        if text or (isinstance(value, float) and value.is_integer()):
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            return value
        raise BadValue(f"an integer from {low} to {high}")

    return convert


def _bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _BOOL_TEXT:
        return _BOOL_TEXT[value.lower()]
    raise BadValue("true or false")


def _bytes(value: Any) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            pass
    raise BadValue("bytes as base64 text")


def _converter(target: pa.DataType) -> Callable[[Any], Any] | None:
    import pyarrow as pa

    if pa.types.is_binary(target) or pa.types.is_large_binary(target):
        return _bytes
    if pa.types.is_timestamp(target):
        return parse_time
    if pa.types.is_floating(target):
        return _floating(target.bit_width)
    if pa.types.is_integer(target):
        return _integer(target.bit_width)
    if pa.types.is_boolean(target):
        return _bool
    return None


def _python(values: list[Any], target: pa.DataType, where: Callable[[int, Any], str]) -> pa.Array:
    """Python values converted one by one; the first that does not fit is the error."""
    import pyarrow as pa

    convert = _converter(target)
    assert convert is not None
    out = []
    for i, value in enumerate(values):
        try:
            out.append(convert(value))
        except BadValue as err:
            raise RetrievalError(f"{where(i, value)}: expected {err}") from None
    if pa.types.is_timestamp(target):
        return pa.array(out, pa.int64()).cast(target)
    return pa.array(out, target)


def _python_lists(values: list[Any], target: pa.DataType, where: Callable[[int, Any], str]) -> pa.Array:
    """Python lists for an array feature, element by element by the rules of the element type."""
    import pyarrow as pa

    element = target.value_type
    convert = _converter(element)
    out: list[list[Any] | None] = []
    for i, value in enumerate(values):
        if value is None:
            out.append(None)
            continue
        if not isinstance(value, (list, tuple)):
            raise RetrievalError(f"{where(i, value)}: expected a list")
        try:
            out.append([convert(v) for v in value] if convert is not None else list(value))
        except BadValue as err:
            raise RetrievalError(f"{where(i, value)}: expected lists of {err}") from None
    storage = pa.list_(pa.int64()) if pa.types.is_timestamp(element) else target
    try:
        return pa.array(out, storage).cast(target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        bad = next((i for i, row in enumerate(out) if row is not None and not _fits(row, storage)), 0)
        raise RetrievalError(f"{where(bad, values[bad])}: expected a list of {element}") from None


def _needs_python(values: list[Any]) -> bool:
    """Whether Python values must be converted one by one: text, booleans, or integers mixed with
    floats (Arrow would make them all floats first, losing large integers)."""
    kinds = {type(v) for v in values if v is not None}
    return bool(kinds & {bool, str}) or (int in kinds and len(kinds) > 1)


def _fits(value: Any, storage: pa.DataType) -> bool:
    """Whether Arrow takes `value` as one value of type `storage`."""
    import pyarrow as pa

    try:
        pa.array([value], storage)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return False
    return True


def _is_text(arrow_type: pa.DataType) -> bool:
    import pyarrow as pa

    t = pa.types
    view = getattr(t, "is_string_view", None)
    return bool(t.is_string(arrow_type) or t.is_large_string(arrow_type) or (view is not None and view(arrow_type)))


def _kind_fits(source: pa.DataType, target: pa.DataType) -> bool:
    """Whether Arrow values of `source` may be cast to `target` (no booleans as numbers and back)."""
    import pyarrow as pa

    t = pa.types
    if t.is_null(source):
        return True
    if t.is_floating(target) or t.is_integer(target):
        return bool(t.is_integer(source) or t.is_floating(source) or t.is_decimal(source))
    if t.is_boolean(target):
        return bool(t.is_boolean(source))
    return True


def _text_times(values: Any, target: pa.DataType) -> pa.Array | None:
    """Text times parsed by Arrow when every value has an offset, or none has; None otherwise.

    The common forms in one vectorised pass; the rest (and every error) go value by value.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    for cast_to in (target, pa.timestamp("us")):
        try:
            parsed = pc.cast(values, cast_to)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        if first_out_of_range(parsed) is not None:
            return None
        return parsed if parsed.type.tz is not None else pc.assume_timezone(parsed, "UTC")
    return None


def _epoch_seconds(values: Any) -> pa.Array | None:
    """Epoch seconds as int64 microseconds in one vectorised pass; None if one is out of range."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        if pa.types.is_integer(values.type):
            micros = pc.multiply_checked(values.cast(pa.int64()), 1_000_000)
        else:
            scaled = pc.multiply(values.cast(pa.float64()), 1e6)
            if not pc.all(pc.is_finite(scaled)).as_py():  # nulls are skipped
                return None
            micros = pc.round(scaled).cast(pa.int64())
    except (pa.ArrowInvalid, OverflowError):
        return None
    return micros if first_out_of_range(micros) is None else None


def _arrow_time(values: Any, target: pa.DataType, where: Callable[[int, Any], str]) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    t = pa.types
    if _is_text(values.type):
        parsed = _text_times(values, target)
        return parsed if parsed is not None else _python(values.to_pylist(), target, where)
    if t.is_null(values.type):
        return pa.nulls(len(values), target)
    if t.is_timestamp(values.type) or t.is_date(values.type):
        if t.is_date(values.type):
            values = values.cast(pa.timestamp("s"))
        bad = first_out_of_range(values)
        if bad is not None:
            raise RetrievalError(f"{where(bad, describe(values, bad))}: expected a time {RANGE_TEXT}")
        if values.type.tz is None:
            values = pc.assume_timezone(values, "UTC")
        return pc.cast(values, target, safe=False)  # finer units are truncated to microseconds
    if t.is_integer(values.type) or t.is_floating(values.type):
        micros = _epoch_seconds(values)
        if micros is not None:
            return micros.cast(target)
        return _python(values.to_pylist(), target, where)  # names the first value out of range
    bad = next((i for i, v in enumerate(values.to_pylist()) if v is not None), 0)
    raise RetrievalError(f"{where(bad, values[bad].as_py())}: {values.type} values; expected {TIMESTAMP_HINT}")


def to_column(
    values: Column, target: pa.DataType, column: str, context: str, type_name: str, dtype: PotluckType | None = None
) -> pa.Array:
    """`values` (Python values or an Arrow column) as an Arrow array of `target` (the Arrow form of `dtype`)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def where(row: int, value: Any) -> str:
        return f"{context}: column '{column}' row {row}: {_show(value)} cannot be stored as {type_name}"

    if dtype is not None and not is_basic(dtype):
        from potluck.streaming.push_typed import typed_column

        return typed_column(dtype, values, where)

    convert = _converter(target)
    if isinstance(values, list) and (pa.types.is_list(target) or pa.types.is_large_list(target)):
        return _python_lists(values, target, where)
    if isinstance(values, list):
        if pa.types.is_timestamp(target):
            try:
                parsed = _text_times(pa.array(values, pa.string()), target)  # all text (or null)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                parsed = None
            return parsed if parsed is not None else _python(values, target, where)
        if convert is not None and _needs_python(values):
            return _python(values, target, where)
        try:
            values = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            if convert is not None:
                return _python(values, target, where)
            bad = next((i for i, v in enumerate(values) if not _fits(v, target)), 0)
            raise RetrievalError(f"{where(bad, values[bad])}: the values of the column do not agree") from None
    if pa.types.is_timestamp(target):
        return _arrow_time(values, target, where)
    if not _kind_fits(values.type, target):
        if convert is not None and _is_text(values.type):
            return _python(values.to_pylist(), target, where)
        bad = next((i for i, v in enumerate(values.to_pylist()) if v is not None), 0)
        raise RetrievalError(f"{where(bad, values[bad].as_py())} (the column holds {values.type} values)")
    try:
        cast = pc.cast(values, target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        if convert is not None:
            _python(values.to_pylist(), target, where)  # names the first value that does not fit
        bad = _first_uncastable(values, target)
        raise RetrievalError(f"{where(bad, values[bad].as_py())} (the column holds {values.type} values)") from None
    if pa.types.is_float32(target) and pa.types.is_floating(values.type) and _overflows(values, cast):
        _python(values.to_pylist(), target, where)  # names the first value too large for Float32
    return cast


def _overflows(values: Any, cast: Any) -> bool:
    """Whether a narrowing float cast turned a finite value into an infinity."""
    import pyarrow.compute as pc

    infinite = pc.sum(pc.is_inf(cast)).as_py() or 0
    return bool(infinite) and infinite != (pc.sum(pc.is_inf(values)).as_py() or 0)


def _first_uncastable(values: Any, target: pa.DataType) -> int:
    """The row of the first value that Arrow cannot cast to `target` (0 if each one alone can)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for i in range(len(values)):
        try:
            pc.cast(values.slice(i, 1), target, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            return i
    return 0
