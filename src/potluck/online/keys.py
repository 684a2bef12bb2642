"""The canonical binary encoding of entity keys, shared by every online store.

See docs/entity-key-encoding.md for the byte layout. In short::

    key   := 0x01 count:u8 part*            (parts sorted by join-key name, UTF-8 bytewise)
    part  := name_len:u16le name:utf8 tag:u8 value
    tag 0x01 INT64      value := i64le      (Int32 and Int64 keys alike)
    tag 0x02 STRING     value := len:u32le utf8
    tag 0x03 BYTES      value := len:u32le raw
    tag 0x04 BOOL       value := u8 (0 or 1)
    tag 0x05 TIMESTAMP  value := i64le microseconds since the Unix epoch, UTC
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from potluck.definitions.errors import RetrievalError
from potluck.definitions.field import Field
from potluck.definitions.types import Array

if TYPE_CHECKING:
    import pyarrow as pa

FORMAT_VERSION = 1
TAG_INT64 = 0x01
TAG_STRING = 0x02
TAG_BYTES = 0x03
TAG_BOOL = 0x04
TAG_TIMESTAMP = 0x05

_TAGS = {
    "Int32": TAG_INT64,
    "Int64": TAG_INT64,
    "String": TAG_STRING,
    "Bytes": TAG_BYTES,
    "Bool": TAG_BOOL,
    "UnixTimestamp": TAG_TIMESTAMP,
}
_Q = struct.Struct("<q").pack
_I = struct.Struct("<I").pack
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class KeyTypeError(RetrievalError):
    """An entity key value does not match the declared type of its join key."""


def _int_value(value: Any) -> int:
    if type(value) is int:
        out = value
    elif isinstance(value, bool) or value is None:
        raise TypeError
    else:
        out = operator.index(value)  # numpy integers and other integral types
    if not _INT64_MIN <= out <= _INT64_MAX:
        raise TypeError
    return out


def _encode_int(value: Any) -> bytes:
    return _Q(_int_value(value))


def _encode_str(value: Any) -> bytes:
    if type(value) is not str:
        raise TypeError
    raw = value.encode("utf-8")
    return _I(len(raw)) + raw


def _encode_bytes(value: Any) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError
    raw = bytes(value)
    return _I(len(raw)) + raw


def _encode_bool(value: Any) -> bytes:
    if type(value) is not bool and type(value).__name__ != "bool_":
        raise TypeError
    return b"\x01" if value else b"\x00"


def _encode_timestamp(value: Any) -> bytes:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        delta = value - _EPOCH
        return _Q((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp
        return _encode_timestamp(value.to_pydatetime())
    raise TypeError


_ENCODERS: dict[int, Callable[[Any], bytes]] = {
    TAG_INT64: _encode_int,
    TAG_STRING: _encode_str,
    TAG_BYTES: _encode_bytes,
    TAG_BOOL: _encode_bool,
    TAG_TIMESTAMP: _encode_timestamp,
}


class KeyEncoder:
    """Encodes the entity keys of one view; values are given in the view's join-key order."""

    __slots__ = ("_encoders", "_fields", "_order", "_prefixes", "_single", "join_keys")

    def __init__(self, join_keys: Sequence[str], key_fields: Sequence[Field]) -> None:
        if len(join_keys) != len(key_fields) or not join_keys:
            raise ValueError("an online view needs one typed key field per join key")
        if len(join_keys) > 255:
            raise ValueError("an entity key may have at most 255 join keys")
        self.join_keys = tuple(join_keys)
        self._fields = tuple(key_fields)
        order = sorted(range(len(join_keys)), key=lambda i: join_keys[i].encode("utf-8"))
        self._order = tuple(order)
        prefixes: list[bytes] = []
        encoders: list[Callable[[Any], bytes]] = []
        for i in order:
            field = key_fields[i]
            if isinstance(field.dtype, Array) or field.dtype.name not in _TAGS:
                raise ValueError(
                    f"join key '{join_keys[i]}' has type {field.dtype.name}, which cannot be an entity key"
                )
            tag = _TAGS[field.dtype.name]
            name = join_keys[i].encode("utf-8")
            prefixes.append(struct.pack("<H", len(name)) + name + bytes([tag]))
            encoders.append(_ENCODERS[tag])
        prefixes[0] = bytes([FORMAT_VERSION, len(join_keys)]) + prefixes[0]
        self._prefixes = tuple(prefixes)
        self._encoders = tuple(encoders)
        self._single = len(join_keys) == 1

    def encode(self, values: Sequence[Any]) -> bytes:
        """The key of one entity; `values` in join-key order."""
        if self._single:
            try:
                return self._prefixes[0] + self._encoders[0](values[0])
            except (TypeError, ValueError):
                raise self._type_error(0, values[0]) from None
        parts: list[bytes] = []
        for pos, i in enumerate(self._order):
            try:
                parts.append(self._prefixes[pos] + self._encoders[pos](values[i]))
            except (TypeError, ValueError):
                raise self._type_error(i, values[i]) from None
        return b"".join(parts)

    def encode_column(self, column: Sequence[Any]) -> list[bytes]:
        """The keys of many entities of a single-join-key view, one value each."""
        if not self._single:
            return [self.encode((v,)) for v in column]
        prefix = self._prefixes[0]
        is_int = self._encoders[0] is _encode_int
        if is_int and len(column) == 1 and type(column[0]) is int and _INT64_MIN <= column[0] <= _INT64_MAX:
            return [prefix + _Q(column[0])]
        if is_int and all(type(v) is int for v in column):
            try:
                return [prefix + _Q(v) for v in column]
            except struct.error:
                pass  # out of range: the general path names the value
        encode = self._encoders[0]
        try:
            return [prefix + encode(v) for v in column]
        except (TypeError, ValueError):
            for v in column:
                self.encode((v,))  # raises KeyTypeError for the first bad value
            raise

    def _type_error(self, i: int, value: Any) -> KeyTypeError:
        field = self._fields[i]
        what = "a null" if value is None else f"{value!r} ({type(value).__name__})"
        return KeyTypeError(
            f"join key '{self.join_keys[i]}' is declared {field.dtype.name} but the entity row holds {what}"
        )

    def encode_arrow(self, columns: Sequence[pa.Array]) -> pa.Array:
        """Keys of many entities at once as a binary array (null where any key part is null)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        from potluck.online.arrow_util import as_numpy, bin_scalar, empty_binary, fixed_binary, u32_lengths

        n = len(columns[0])
        parts: list[pa.Array] = []
        for pos, i in enumerate(self._order):
            col = columns[i]
            if isinstance(col, pa.ChunkedArray):
                col = col.combine_chunks()
            tag = _TAGS[self._fields[i].dtype.name]
            parts.append(bin_scalar(self._prefixes[pos]))
            if tag in (TAG_INT64, TAG_TIMESTAMP):
                if tag == TAG_TIMESTAMP:
                    col = pc.cast(col, pa.timestamp("us", tz="UTC")).cast(pa.int64())
                vals = as_numpy(pc.cast(col, pa.int64()))
                parts.append(fixed_binary(vals.astype("<i8", copy=False), 8, col.is_valid()))
            elif tag == TAG_BOOL:
                vals = as_numpy(pc.cast(col, pa.uint8()))
                parts.append(fixed_binary(vals.astype("u1", copy=False), 1, col.is_valid()))
            else:
                col = pc.cast(col, pa.binary())
                parts.append(u32_lengths(col))
                parts.append(col)
        if n == 0:
            return empty_binary()
        return pc.binary_join_element_wise(*parts, bin_scalar(b""))

    def decode(self, key: bytes) -> dict[str, Any]:
        """The join-key values of an encoded key (for tools and tests; not on a hot path)."""
        return decode_key(key)


def decode_key(key: bytes) -> dict[str, Any]:
    """Decode any key in the canonical encoding into {join key: value}."""
    if not key or key[0] != FORMAT_VERSION:
        raise ValueError("not an entity key in format version 1")
    count, off = key[1], 2
    out: dict[str, Any] = {}
    for _ in range(count):
        (name_len,) = struct.unpack_from("<H", key, off)
        off += 2
        name = key[off : off + name_len].decode("utf-8")
        off += name_len
        tag = key[off]
        off += 1
        value: Any
        if tag in (TAG_INT64, TAG_TIMESTAMP):
            (value,) = struct.unpack_from("<q", key, off)
            off += 8
        elif tag == TAG_BOOL:
            value = key[off] == 1
            off += 1
        elif tag in (TAG_STRING, TAG_BYTES):
            (length,) = struct.unpack_from("<I", key, off)
            off += 4
            raw = key[off : off + length]
            off += length
            value = raw.decode("utf-8") if tag == TAG_STRING else raw
        else:
            raise ValueError(f"unknown entity key tag {tag}")
        out[name] = value
    if off != len(key):
        raise ValueError("trailing bytes after entity key")
    return out
