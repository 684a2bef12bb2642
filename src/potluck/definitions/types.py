"""The value types of features and entity keys, and their Arrow equivalents."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa


class ValueType(enum.Enum):
    """Entity value types, numbered as in Feast so existing repositories keep working."""

    UNKNOWN = 0
    BYTES = 1
    STRING = 2
    INT32 = 3
    INT64 = 4
    DOUBLE = 5
    FLOAT = 6
    BOOL = 7
    UNIX_TIMESTAMP = 8
    BYTES_LIST = 11
    STRING_LIST = 12
    INT32_LIST = 13
    INT64_LIST = 14
    DOUBLE_LIST = 15
    FLOAT_LIST = 16
    BOOL_LIST = 17
    UNIX_TIMESTAMP_LIST = 18
    NULL = 19


@dataclass(frozen=True)
class PrimitiveType:
    """A scalar feature type such as `Int64` or `String`."""

    name: str
    value_type: ValueType

    def to_arrow(self) -> pa.DataType:
        import pyarrow as pa

        return {
            "Bytes": pa.binary(),
            "String": pa.string(),
            "Bool": pa.bool_(),
            "Int32": pa.int32(),
            "Int64": pa.int64(),
            "Float32": pa.float32(),
            "Float64": pa.float64(),
            "UnixTimestamp": pa.timestamp("us", tz="UTC"),
        }[self.name]

    def to_value_type(self) -> ValueType:
        return self.value_type

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return self.name


Bytes = PrimitiveType("Bytes", ValueType.BYTES)
String = PrimitiveType("String", ValueType.STRING)
Bool = PrimitiveType("Bool", ValueType.BOOL)
Int32 = PrimitiveType("Int32", ValueType.INT32)
Int64 = PrimitiveType("Int64", ValueType.INT64)
Float32 = PrimitiveType("Float32", ValueType.FLOAT)
Float64 = PrimitiveType("Float64", ValueType.DOUBLE)
UnixTimestamp = PrimitiveType("UnixTimestamp", ValueType.UNIX_TIMESTAMP)

PRIMITIVES: dict[str, PrimitiveType] = {
    t.name: t for t in (Bytes, String, Bool, Int32, Int64, Float32, Float64, UnixTimestamp)
}

_LIST_OF: dict[ValueType, ValueType] = {
    ValueType.BYTES: ValueType.BYTES_LIST,
    ValueType.STRING: ValueType.STRING_LIST,
    ValueType.INT32: ValueType.INT32_LIST,
    ValueType.INT64: ValueType.INT64_LIST,
    ValueType.DOUBLE: ValueType.DOUBLE_LIST,
    ValueType.FLOAT: ValueType.FLOAT_LIST,
    ValueType.BOOL: ValueType.BOOL_LIST,
    ValueType.UNIX_TIMESTAMP: ValueType.UNIX_TIMESTAMP_LIST,
}


@dataclass(frozen=True)
class Array:
    """A list of a primitive type, e.g. `Array(Float32)` for an embedding."""

    base_type: PrimitiveType

    def __post_init__(self) -> None:
        if not isinstance(self.base_type, PrimitiveType):
            raise TypeError(f"Array(...) takes a primitive type such as Int64 or String, got {self.base_type!r}")

    @property
    def name(self) -> str:
        return f"Array({self.base_type.name})"

    def to_arrow(self) -> pa.DataType:
        import pyarrow as pa

        return pa.list_(self.base_type.to_arrow())

    def to_value_type(self) -> ValueType:
        return _LIST_OF[self.base_type.value_type]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return self.name


PotluckType = PrimitiveType | Array

_VALUE_TYPE_TO_DTYPE: dict[ValueType, PotluckType] = {
    **{t.value_type: t for t in PRIMITIVES.values()},
    **{lt: Array(next(p for p in PRIMITIVES.values() if p.value_type == vt)) for vt, lt in _LIST_OF.items()},
}


def dtype_from_name(name: str) -> PotluckType:
    """Parse a type name as written by `PotluckType.name` (`Int64`, `Array(String)`)."""
    if name in PRIMITIVES:
        return PRIMITIVES[name]
    if name.startswith("Array(") and name.endswith(")") and name[6:-1] in PRIMITIVES:
        return Array(PRIMITIVES[name[6:-1]])
    known = ", ".join([*list(PRIMITIVES), "Array(<type>)"])
    raise ValueError(f"unknown type '{name}'; known types: {known}")


def dtype_from_value_type(value_type: ValueType) -> PotluckType:
    try:
        return _VALUE_TYPE_TO_DTYPE[value_type]
    except KeyError:
        raise ValueError(f"value type {value_type.name} has no feature type") from None


def dtype_from_arrow(arrow_type: pa.DataType) -> PotluckType | None:
    """The feature type that stores values of an Arrow column, or None if there is none."""
    import pyarrow as pa
    import pyarrow.types as pt

    if pt.is_list(arrow_type) or pt.is_large_list(arrow_type):
        inner = dtype_from_arrow(arrow_type.value_type)
        return Array(inner) if isinstance(inner, PrimitiveType) else None
    if pt.is_dictionary(arrow_type):
        return dtype_from_arrow(arrow_type.value_type)
    checks: list[tuple[bool, PrimitiveType]] = [
        (pt.is_boolean(arrow_type), Bool),
        (pt.is_int8(arrow_type) or pt.is_int16(arrow_type) or pt.is_int32(arrow_type), Int32),
        (pt.is_uint8(arrow_type) or pt.is_uint16(arrow_type), Int32),
        (pt.is_int64(arrow_type) or pt.is_uint32(arrow_type), Int64),
        (pt.is_float16(arrow_type) or pt.is_float32(arrow_type), Float32),
        (pt.is_float64(arrow_type) or pt.is_decimal(arrow_type), Float64),
        (pt.is_string(arrow_type) or pt.is_large_string(arrow_type), String),
        (arrow_type == pa.string_view() if hasattr(pa, "string_view") else False, String),
        (pt.is_binary(arrow_type) or pt.is_large_binary(arrow_type), Bytes),
        (pt.is_fixed_size_binary(arrow_type), Bytes),
        (pt.is_timestamp(arrow_type) or pt.is_date(arrow_type), UnixTimestamp),
    ]
    for matched, dtype in checks:
        if matched:
            return dtype
    return None


def is_compatible(declared: PotluckType, actual: pa.DataType) -> bool:
    """Whether a source column of Arrow type `actual` can feed a field declared `declared`."""
    found = dtype_from_arrow(actual)
    if found is None:
        return False
    if found == declared:
        return True
    widening = {
        (Int32, Int64),
        (Int32, Float64),
        (Int64, Float64),
        (Float32, Float64),
        (Int32, Float32),
        (Float64, Float32),
        (Int64, Int32),
    }
    if isinstance(declared, PrimitiveType) and isinstance(found, PrimitiveType):
        return (found, declared) in widening
    if isinstance(declared, Array) and isinstance(found, Array):
        return (found.base_type, declared.base_type) in widening
    return False
