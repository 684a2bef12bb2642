"""Feature types, importable as `from potluck.types import Int64, Array, ...`."""

from potluck.definitions.types import (
    Array,
    Bool,
    Bytes,
    Float32,
    Float64,
    Int32,
    Int64,
    PotluckType,
    PrimitiveType,
    String,
    UnixTimestamp,
    ValueType,
)

__all__ = [
    "Array",
    "Bool",
    "Bytes",
    "Float32",
    "Float64",
    "Int32",
    "Int64",
    "PotluckType",
    "PrimitiveType",
    "String",
    "UnixTimestamp",
    "ValueType",
]
