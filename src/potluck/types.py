"""Feature types, importable as `from potluck.types import Int64, Array, Map, Struct, ...` (Feast's `feast.types`)."""

from potluck.definitions.types import (
    Array,
    Bool,
    Bytes,
    Decimal,
    Float32,
    Float64,
    ImageBytes,
    Int32,
    Int64,
    Json,
    Map,
    PdfBytes,
    PotluckType,
    PrimitiveType,
    Set,
    String,
    Struct,
    TimeUuid,
    UnixTimestamp,
    Uuid,
    ValueType,
    ZonedTimestamp,
    dtype_from_value_type,
)

FeastType = PotluckType
PrimitiveFeastType = PrimitiveType
from_value_type = dtype_from_value_type

__all__ = [
    "Array",
    "Bool",
    "Bytes",
    "Decimal",
    "FeastType",
    "Float32",
    "Float64",
    "ImageBytes",
    "Int32",
    "Int64",
    "Json",
    "Map",
    "PdfBytes",
    "PotluckType",
    "PrimitiveFeastType",
    "PrimitiveType",
    "Set",
    "String",
    "Struct",
    "TimeUuid",
    "UnixTimestamp",
    "Uuid",
    "ValueType",
    "ZonedTimestamp",
    "from_value_type",
]
