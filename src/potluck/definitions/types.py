"""The value types of features and entity keys, and their Arrow equivalents.

Scalars (`Int64`, `String`, `Map`, `Json`, `Uuid`, `Decimal`, ...), `Array(T)`, `Set(T)` and
`Struct({name: T, ...})`, with Feast's names. A type's `name` is its stored form in the registry
(`Array(Int64)`, `Struct({a: Int64, b: String})`) and `dtype_from_name` reads it back.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa


class ValueType(enum.Enum):
    """Value types, numbered as in Feast so existing repositories keep working."""

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
    MAP = 20
    MAP_LIST = 21
    BYTES_SET = 22
    STRING_SET = 23
    INT32_SET = 24
    INT64_SET = 25
    DOUBLE_SET = 26
    FLOAT_SET = 27
    BOOL_SET = 28
    UNIX_TIMESTAMP_SET = 29
    PDF_BYTES = 30
    IMAGE_BYTES = 31
    JSON = 32
    JSON_LIST = 33
    STRUCT = 34
    STRUCT_LIST = 35
    UUID = 36
    TIME_UUID = 37
    UUID_LIST = 38
    TIME_UUID_LIST = 39
    UUID_SET = 40
    TIME_UUID_SET = 41
    VALUE_LIST = 42
    VALUE_SET = 43
    DECIMAL = 44
    DECIMAL_LIST = 45
    DECIMAL_SET = 46
    SCALAR_MAP = 47
    ZONED_TIMESTAMP = 48


@functools.cache
def _arrow_of(name: str) -> pa.DataType:
    import pyarrow as pa

    if name in ("Bytes", "PdfBytes", "ImageBytes"):
        return pa.binary()
    if name in ("String", "Uuid", "TimeUuid", "Decimal"):
        return pa.string()  # Feast's Arrow form of UUIDs and decimals: their text
    if name in ("UnixTimestamp", "ZonedTimestamp"):
        return pa.timestamp("us", tz="UTC")
    if name == "Map":
        return pa.map_(pa.string(), pa.string())
    if name == "Json":
        return pa.large_string()
    return {
        "Bool": pa.bool_(),
        "Int32": pa.int32(),
        "Int64": pa.int64(),
        "Float32": pa.float32(),
        "Float64": pa.float64(),
    }[name]


@dataclass(frozen=True)
class PrimitiveType:
    """A scalar feature type such as `Int64`, `String`, `Map` or `Json`."""

    name: str
    value_type: ValueType

    def to_arrow(self) -> pa.DataType:
        return _arrow_of(self.name)

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
PdfBytes = PrimitiveType("PdfBytes", ValueType.PDF_BYTES)
ImageBytes = PrimitiveType("ImageBytes", ValueType.IMAGE_BYTES)
Map = PrimitiveType("Map", ValueType.MAP)
Json = PrimitiveType("Json", ValueType.JSON)
Uuid = PrimitiveType("Uuid", ValueType.UUID)
TimeUuid = PrimitiveType("TimeUuid", ValueType.TIME_UUID)
Decimal = PrimitiveType("Decimal", ValueType.DECIMAL)
ZonedTimestamp = PrimitiveType("ZonedTimestamp", ValueType.ZONED_TIMESTAMP)

# The scalars the row codec stores natively (and entity keys may use).
BASIC: tuple[PrimitiveType, ...] = (Bytes, String, Bool, Int32, Int64, Float32, Float64, UnixTimestamp)

PRIMITIVES: dict[str, PrimitiveType] = {
    t.name: t for t in (*BASIC, PdfBytes, ImageBytes, Map, Json, Uuid, TimeUuid, Decimal, ZonedTimestamp)
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
    ValueType.MAP: ValueType.MAP_LIST,
    ValueType.JSON: ValueType.JSON_LIST,
    ValueType.UUID: ValueType.UUID_LIST,
    ValueType.TIME_UUID: ValueType.TIME_UUID_LIST,
    ValueType.DECIMAL: ValueType.DECIMAL_LIST,
    ValueType.PDF_BYTES: ValueType.BYTES_LIST,
    ValueType.IMAGE_BYTES: ValueType.BYTES_LIST,
}

_SET_OF: dict[ValueType, ValueType] = {
    ValueType.BYTES: ValueType.BYTES_SET,
    ValueType.STRING: ValueType.STRING_SET,
    ValueType.INT32: ValueType.INT32_SET,
    ValueType.INT64: ValueType.INT64_SET,
    ValueType.DOUBLE: ValueType.DOUBLE_SET,
    ValueType.FLOAT: ValueType.FLOAT_SET,
    ValueType.BOOL: ValueType.BOOL_SET,
    ValueType.UNIX_TIMESTAMP: ValueType.UNIX_TIMESTAMP_SET,
    ValueType.UUID: ValueType.UUID_SET,
    ValueType.TIME_UUID: ValueType.TIME_UUID_SET,
    ValueType.DECIMAL: ValueType.DECIMAL_SET,
}


class Struct:
    """Named, typed fields in one value: `Struct({"city": String, "visits": Int64})`."""

    __slots__ = ("fields",)

    fields: tuple[tuple[str, PotluckType], ...]

    def __init__(self, fields: Mapping[str, PotluckType]) -> None:
        if not isinstance(fields, Mapping) or not fields:
            raise TypeError("Struct(...) takes a non-empty dict of field name -> type, e.g. Struct({'a': Int64})")
        items: list[tuple[str, PotluckType]] = []
        for key, dtype in fields.items():
            if not isinstance(key, str) or not key.strip() or any(c in key for c in ":,{}()"):
                raise TypeError(
                    f"Struct field name {key!r} must be non-empty text without ':', ',', braces or brackets"
                )
            if not isinstance(dtype, (PrimitiveType, Array, Set, Struct)):
                raise TypeError(f"Struct field '{key}' must have a type from potluck.types, got {dtype!r}")
            items.append((key.strip(), dtype))
        object.__setattr__(self, "fields", tuple(items))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Struct is immutable")

    @property
    def name(self) -> str:
        return "Struct({" + ", ".join(f"{k}: {t.name}" for k, t in self.fields) + "})"

    def to_arrow(self) -> pa.DataType:
        import pyarrow as pa

        return pa.struct([pa.field(k, t.to_arrow()) for k, t in self.fields])

    def to_value_type(self) -> ValueType:
        return ValueType.STRUCT

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Struct) and self.fields == other.fields

    def __hash__(self) -> int:
        return hash(("Struct", self.fields))

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Array:
    """A list of values of one type, e.g. `Array(Float32)` for an embedding or `Array(Struct({...}))`."""

    base_type: PotluckType

    def __post_init__(self) -> None:
        ok = isinstance(self.base_type, (Array, Set, Struct)) or (
            isinstance(self.base_type, PrimitiveType) and self.base_type is not ZonedTimestamp
        )
        if not ok:
            raise TypeError(
                f"Array(...) takes a type such as Int64, String, Map or Struct({{...}}), got {self.base_type!r}"
            )

    @property
    def name(self) -> str:
        return f"Array({self.base_type.name})"

    def to_arrow(self) -> pa.DataType:
        import pyarrow as pa

        return pa.list_(self.base_type.to_arrow())

    def to_value_type(self) -> ValueType:
        base = self.base_type
        if isinstance(base, Struct):
            return ValueType.STRUCT_LIST
        if isinstance(base, (Array, Set)):
            return ValueType.VALUE_LIST
        return _LIST_OF[base.value_type]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Set:
    """Distinct values of one scalar type, e.g. `Set(String)`; stored as a list in Arrow."""

    base_type: PotluckType

    def __post_init__(self) -> None:
        if not isinstance(self.base_type, PrimitiveType) or self.base_type.value_type not in _SET_OF:
            raise TypeError(f"Set(...) takes a scalar type such as Int64, String or Uuid, got {self.base_type!r}")

    @property
    def name(self) -> str:
        return f"Set({self.base_type.name})"

    def to_arrow(self) -> pa.DataType:
        import pyarrow as pa

        return pa.list_(self.base_type.to_arrow())

    def to_value_type(self) -> ValueType:
        assert isinstance(self.base_type, PrimitiveType)
        return _SET_OF[self.base_type.value_type]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return self.name


PotluckType = PrimitiveType | Array | Set | Struct
TYPE_CLASSES = (PrimitiveType, Array, Set, Struct)


def is_basic(dtype: PotluckType) -> bool:
    """Whether the row codec stores this type natively (basic scalars and flat arrays of them)."""
    if isinstance(dtype, Array):
        return dtype.base_type in BASIC
    return dtype in BASIC


def _value_type_map() -> dict[ValueType, PotluckType]:
    out: dict[ValueType, PotluckType] = {}
    for t in PRIMITIVES.values():
        out.setdefault(t.value_type, t)
        if t.value_type in _LIST_OF:
            out.setdefault(_LIST_OF[t.value_type], Array(t))
        if t.value_type in _SET_OF:
            out.setdefault(_SET_OF[t.value_type], Set(t))
    return out


_VALUE_TYPE_TO_DTYPE = _value_type_map()


# ---------------------------------------------------------------- names


def _tokens(text: str) -> Iterator[str]:
    word = ""
    for ch in text:
        if ch in "(){},:":
            if word.strip():
                yield word.strip()
            word = ""
            yield ch
        else:
            word += ch
    if word.strip():
        yield word.strip()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.items = list(_tokens(text))
        self.pos = 0

    def fail(self) -> ValueError:
        known = ", ".join([*PRIMITIVES, "Array(<type>)", "Set(<type>)", "Struct({<name>: <type>, ...})"])
        return ValueError(f"unknown type '{self.text}'; known types: {known}")

    def take(self, expected: str | None = None) -> str:
        if self.pos >= len(self.items) or (expected is not None and self.items[self.pos] != expected):
            raise self.fail()
        self.pos += 1
        return self.items[self.pos - 1]

    def parse(self) -> PotluckType:
        word = self.take()
        try:
            if word in ("Array", "Set"):
                self.take("(")
                inner = self.parse()
                self.take(")")
                return Array(inner) if word == "Array" else Set(inner)
            if word == "Struct":
                self.take("(")
                self.take("{")
                fields: dict[str, PotluckType] = {}
                while True:
                    key = self.take()
                    self.take(":")
                    fields[key] = self.parse()
                    if self.take() == "}":
                        break
                self.take(")")
                return Struct(fields)
        except TypeError:
            raise self.fail() from None
        if word in PRIMITIVES:
            return PRIMITIVES[word]
        raise self.fail()


def dtype_from_name(name: str) -> PotluckType:
    """Parse a type name as written by `PotluckType.name` (`Int64`, `Array(String)`, `Struct({a: Int64})`)."""
    parser = _Parser(name)
    dtype = parser.parse()
    if parser.pos != len(parser.items):
        raise parser.fail()
    return dtype


def dtype_from_value_type(value_type: ValueType) -> PotluckType:
    try:
        return _VALUE_TYPE_TO_DTYPE[value_type]
    except KeyError:
        raise ValueError(f"value type {value_type.name} has no feature type") from None


# ---------------------------------------------------------------- Arrow


def dtype_from_arrow(arrow_type: pa.DataType) -> PotluckType | None:
    """The feature type that stores values of an Arrow column, or None if there is none."""
    import pyarrow as pa
    import pyarrow.types as pt

    if pt.is_map(arrow_type):
        text = (pa.string(), pa.large_string())
        return Map if arrow_type.key_type in text and arrow_type.item_type in text else None
    if pt.is_struct(arrow_type):
        fields = {}
        for i in range(arrow_type.num_fields):
            inner = dtype_from_arrow(arrow_type.field(i).type)
            if inner is None:
                return None
            fields[arrow_type.field(i).name] = inner
        try:
            return Struct(fields) if fields else None
        except TypeError:
            return None
    if pt.is_list(arrow_type) or pt.is_large_list(arrow_type):
        element = dtype_from_arrow(arrow_type.value_type)
        return Array(element) if element is not None else None
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


_WIDENING = {
    (Int32, Int64),
    (Int32, Float64),
    (Int64, Float64),
    (Float32, Float64),
    (Int32, Float32),
    (Float64, Float32),
    (Int64, Int32),
}


def _scalar_compatible(declared: PrimitiveType, actual: pa.DataType) -> bool:
    import pyarrow.types as pt

    name = declared.name
    text = pt.is_string(actual) or pt.is_large_string(actual)
    if name in ("Json", "Uuid", "TimeUuid"):
        return bool(text or (name != "Json" and pt.is_fixed_size_binary(actual) and actual.byte_width == 16))
    if name == "Decimal":
        return bool(text or pt.is_decimal(actual) or pt.is_integer(actual))
    if name in ("PdfBytes", "ImageBytes"):
        return bool(pt.is_binary(actual) or pt.is_large_binary(actual))
    if name == "ZonedTimestamp":
        return bool(pt.is_timestamp(actual))
    found = dtype_from_arrow(actual)
    return found == declared or (isinstance(found, PrimitiveType) and (found, declared) in _WIDENING)


def is_compatible(declared: PotluckType, actual: pa.DataType) -> bool:
    """Whether a source column of Arrow type `actual` can feed a field declared `declared`."""
    import pyarrow.types as pt

    if isinstance(declared, Struct):
        if not pt.is_struct(actual):
            return False
        columns = {actual.field(i).name: actual.field(i).type for i in range(actual.num_fields)}
        return all(k in columns and is_compatible(t, columns[k]) for k, t in declared.fields)
    if isinstance(declared, (Array, Set)):
        if not (pt.is_list(actual) or pt.is_large_list(actual)):
            return False
        return is_compatible(declared.base_type, actual.value_type)
    if declared is Map:
        # a struct column (how pandas writes dicts to Parquet) is read as a map of its fields
        if pt.is_struct(actual):
            return all(
                isinstance(dtype_from_arrow(actual.field(i).type), PrimitiveType)
                and not (pt.is_struct(actual.field(i).type) or pt.is_map(actual.field(i).type))
                for i in range(actual.num_fields)
            )
        return dtype_from_arrow(actual) == Map
    return _scalar_compatible(declared, actual)
