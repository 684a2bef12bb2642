"""The row codec: all feature values of one (view, entity) row in one compact binary blob.

Encoding is vectorised over Arrow columns (no Python object per value on the write path);
decoding is a few `struct` calls per row. See docs/entity-key-encoding.md for the layout::

    row   := 0x01 schema:u32le nulls:ceil(F/8) fixed* var*
    fixed := each fixed-width feature in view order (zeros when null):
             Int32 i32le | Int64 i64le | Float32 f32le | Float64 f64le | Bool u8 |
             UnixTimestamp i64le (microseconds since the epoch, UTC)
    var   := each variable-width feature in view order: len:u32le payload
             String utf8 | Bytes raw | Array(T) count:u32le flags:u8 [validity] elements |
             any other type (Map, Json, Struct, Set, Uuid, ...) a JSON document (online/typed_values.py)
"""

from __future__ import annotations

import operator
import struct
import zlib
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from potluck.definitions.field import Field
from potluck.definitions.types import Array, PotluckType, PrimitiveType, is_basic
from potluck.online import typed_values

if TYPE_CHECKING:
    import pyarrow as pa

ROW_FORMAT_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIXED = {"Int32": "i", "Int64": "q", "Float32": "f", "Float64": "d", "Bool": "?", "UnixTimestamp": "q"}
_NP = {
    "Int32": "<i4",
    "Int64": "<i8",
    "Float32": "<f4",
    "Float64": "<f8",
    "Bool": "u1",
    "UnixTimestamp": "<i8",
}
_U32 = struct.Struct("<I")
_Q = struct.Struct("<q")


def schema_id(features: Sequence[Field]) -> int:
    """A fingerprint of the feature names and types; rows written under another schema are ignored."""
    text = "|".join(f"{f.name}:{f.dtype.name}" for f in features)
    return zlib.crc32(text.encode("utf-8")) & 0xFFFFFFFF


def micros_to_datetime(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def datetime_to_micros(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# ---------------------------------------------------------------- arrays (Python side)


def _encode_array_py(base: PrimitiveType, items: Sequence[Any]) -> bytes:
    """Array payload from Python values (used when elements hold nulls)."""
    count = len(items)
    nulls = [v is None for v in items]
    head = _U32.pack(count)
    if any(nulls):
        bits = sum(1 << i for i, is_null in enumerate(nulls) if not is_null)
        head += b"\x01" + bits.to_bytes((count + 7) // 8, "little")
    else:
        head += b"\x00"
    name = base.name
    if name in _FIXED:
        code = _FIXED[name]
        if name == "UnixTimestamp":
            vals = [0 if v is None else datetime_to_micros(v) for v in items]
        else:
            vals = [(False if name == "Bool" else 0) if v is None else v for v in items]
        return head + struct.pack(f"<{count}{code}", *vals)
    parts = [head]
    for v in items:
        raw = b"" if v is None else (v.encode("utf-8") if name == "String" else bytes(v))
        parts.append(_U32.pack(len(raw)) + raw)
    return b"".join(parts)


def _decode_array(base: str, payload: bytes) -> list[Any]:
    (count,) = _U32.unpack_from(payload, 0)
    off = 5
    valid: int | None = None
    if payload[4] & 1:
        nbytes = (count + 7) // 8
        valid = int.from_bytes(payload[off : off + nbytes], "little")
        off += nbytes
    out: list[Any]
    if base in _FIXED:
        out = list(struct.unpack_from(f"<{count}{_FIXED[base]}", payload, off))
        if base == "UnixTimestamp":
            out = [_EPOCH + timedelta(microseconds=v) for v in out]
    else:
        out = []
        for _ in range(count):
            (n,) = _U32.unpack_from(payload, off)
            raw = payload[off + 4 : off + 4 + n]
            off += 4 + n
            out.append(raw.decode("utf-8") if base == "String" else raw)
    if valid is not None:
        out = [v if (valid >> i) & 1 else None for i, v in enumerate(out)]
    return out


# ---------------------------------------------------------------- codec


class RowCodec:
    """Encodes Arrow columns into row blobs and decodes blobs into value lists, for one view."""

    def __init__(self, features: Sequence[Field]) -> None:
        self.features = tuple(features)
        self.names = tuple(f.name for f in features)
        self.schema_id = schema_id(features)
        self.header = bytes([ROW_FORMAT_VERSION]) + self.schema_id.to_bytes(4, "little")
        self._nb = (len(features) + 7) // 8
        fixed = [i for i, f in enumerate(features) if isinstance(f.dtype, PrimitiveType) and f.dtype.name in _FIXED]
        var = [i for i in range(len(features)) if i not in fixed]
        self._fixed_idx = tuple(fixed)
        self._var_idx = tuple(var)
        self._fixed = struct.Struct("<" + "".join(_FIXED[features[i].dtype.name] for i in fixed))
        self._fixed_start = 5 + self._nb
        self._var_start = self._fixed_start + self._fixed.size
        self._var_kinds = tuple(self._kind(features[i].dtype) for i in var)
        self._typed = {
            pos: typed_values.decoder(features[i].dtype) for pos, i in enumerate(var) if self._var_kinds[pos] == "c"
        }
        order = fixed + var  # position in the decoded tuple -> feature index
        perm = [order.index(i) for i in range(len(features))]
        self._identity = perm == list(range(len(features)))
        self._perm = operator.itemgetter(*perm) if len(perm) > 1 else None
        self._ts_idx = tuple(
            i for i, f in enumerate(features) if isinstance(f.dtype, PrimitiveType) and f.dtype.name == "UnixTimestamp"
        )
        self.decode = self._compile_decoder()  # type: ignore[method-assign,assignment]

    def _compile_decoder(self) -> Callable[[bytes], list[Any] | None]:
        """`decode` specialised to this schema: straight-line code, no per-field dispatch.

        Same result as `decode_generic`; reads are dominated by this function, so it is
        generated once per codec from the schema (only integers and fixed names enter the text).
        """
        lines = [
            "def decode(blob):",
            "    if blob[:5] != header:",
            "        return None",
            f"    v = unpack_fixed(blob, {self._fixed_start})",
        ]
        if self._var_idx:
            lines.append(f"    o = {self._var_start}")
        for pos, kind in enumerate(self._var_kinds):
            lines.append("    (n,) = unpack_len(blob, o)")
            lines.append("    o += 4")
            if kind == "String":
                lines.append(f"    x{pos} = blob[o : o + n].decode('utf-8')")
            elif kind == "Bytes":
                lines.append(f"    x{pos} = blob[o : o + n]")
            elif kind == "c":
                lines.append(f"    x{pos} = typed{pos}(blob[o : o + n]) if n else None")
            else:
                lines.append(f"    x{pos} = decode_array({kind[2:]!r}, blob[o : o + n]) if n else []")
            lines.append("    o += n")
        fixed_pos = {i: k for k, i in enumerate(self._fixed_idx)}
        var_pos = {i: k for k, i in enumerate(self._var_idx)}
        items = [f"v[{fixed_pos[i]}]" if i in fixed_pos else f"x{var_pos[i]}" for i in range(len(self.features))]
        lines.append(f"    out = [{', '.join(items)}]")
        for i in self._ts_idx:
            lines.append(f"    out[{i}] = epoch + timedelta(microseconds=out[{i}])")
        if self._nb == 1:
            lines.append("    nulls = blob[5]")
        else:
            lines.append(f"    nulls = int.from_bytes(blob[5 : {5 + self._nb}], 'little')")
        lines += [
            "    while nulls:",
            "        low = nulls & -nulls",
            "        out[low.bit_length() - 1] = None",
            "        nulls ^= low",
            "    return out",
        ]
        scope: dict[str, Any] = {
            "header": self.header,
            "unpack_fixed": self._fixed.unpack_from,
            "unpack_len": _U32.unpack_from,
            "decode_array": _decode_array,
            "epoch": _EPOCH,
            "timedelta": timedelta,
            **{f"typed{pos}": decode for pos, decode in self._typed.items()},
        }
        exec(compile("\n".join(lines), f"<potluck row decoder {self.schema_id:08x}>", "exec"), scope)
        decoder: Callable[[bytes], list[Any] | None] = scope["decode"]
        return decoder

    @staticmethod
    def _kind(dtype: PotluckType) -> str:
        if not is_basic(dtype):
            return "Bytes" if dtype.name in ("PdfBytes", "ImageBytes") else "c"
        if isinstance(dtype, Array):
            return "a:" + dtype.base_type.name
        return dtype.name

    # ------------------------------------------------------------ decode

    def decode(self, blob: bytes) -> list[Any] | None:
        """All feature values of one row in view order, or None if the blob is of another schema.

        Replaced per instance by the compiled decoder; this generic form is its reference.
        """
        return self.decode_generic(blob)

    def decode_generic(self, blob: bytes) -> list[Any] | None:
        """`decode` by interpretation of the schema (the reference for the compiled decoder)."""
        if not blob.startswith(self.header):
            return None
        vals: list[Any] | tuple[Any, ...] = self._fixed.unpack_from(blob, self._fixed_start)
        if self._var_idx:
            off = self._var_start
            extra: list[Any] = []
            for pos, kind in enumerate(self._var_kinds):
                (n,) = _U32.unpack_from(blob, off)
                raw = blob[off + 4 : off + 4 + n]
                off += 4 + n
                if kind == "String":
                    extra.append(raw.decode("utf-8"))
                elif kind == "Bytes":
                    extra.append(raw)
                elif kind == "c":
                    extra.append(self._typed[pos](raw) if n else None)
                else:
                    extra.append(_decode_array(kind[2:], raw) if n else [])
            vals = (*vals, *extra)
        if self._identity:
            out = list(vals)
        else:
            assert self._perm is not None
            out = list(self._perm(vals))
        for i in self._ts_idx:
            out[i] = _EPOCH + timedelta(microseconds=out[i])
        nulls = blob[5] if self._nb == 1 else int.from_bytes(blob[5 : 5 + self._nb], "little")
        while nulls:
            low = nulls & -nulls
            out[low.bit_length() - 1] = None
            nulls ^= low
        return out

    # ------------------------------------------------------------ encode

    def encode_arrow(self, columns: Mapping[str, pa.Array | pa.ChunkedArray], num_rows: int) -> pa.Array:
        """One binary blob per row; a feature missing from `columns` is null in every row."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        from potluck.online.arrow_util import (
            as_array,
            as_numpy,
            bin_scalar,
            empty_binary,
            fill_null,
            fixed_binary,
            join_rows,
            u32_lengths,
        )

        n = num_rows
        if n == 0:
            return empty_binary()
        cols: list[pa.Array | None] = [as_array(columns[f.name]) if f.name in columns else None for f in self.features]
        fields: list[tuple[Any, ...]] = [("h", "u1", (5,)), ("n", "u1", (self._nb,))]
        fields += [(f"f{i}", _NP[self.features[i].dtype.name]) for i in self._fixed_idx]
        rec = np.zeros(n, dtype=np.dtype(fields))
        rec["h"] = np.frombuffer(self.header, dtype="u1")
        bitmap = np.zeros((n, self._nb), dtype="u1")
        for i, col in enumerate(cols):
            if col is None:
                bitmap[:, i // 8] |= np.uint8(1 << (i % 8))
            elif col.null_count:
                mask = as_numpy(col.is_null())
                bitmap[:, i // 8] |= mask.astype("u1") << np.uint8(i % 8)
        rec["n"] = bitmap
        for i in self._fixed_idx:
            col = cols[i]
            if col is None:
                continue
            rec[f"f{i}"] = self._fixed_numpy(self.features[i].dtype.name, col)
        parts: list[pa.Array | pa.Scalar] = [fixed_binary(rec.view("u1").reshape(n, -1), rec.dtype.itemsize)]
        for pos, i in enumerate(self._var_idx):
            col = cols[i]
            dtype = self.features[i].dtype
            if col is None:
                parts.append(bin_scalar(b"\x00\x00\x00\x00"))
                continue
            if self._var_kinds[pos] == "c":
                payload = self._encode_typed(dtype, col)
            elif isinstance(dtype, Array):
                assert isinstance(dtype.base_type, PrimitiveType)
                payload = self._encode_list(dtype.base_type, col)
            else:
                payload = fill_null(pc.cast(col, pa.binary()), b"")
            parts += [u32_lengths(payload), payload]
        return join_rows(parts)

    @staticmethod
    def _encode_typed(dtype: PotluckType, col: pa.Array) -> pa.Array:
        import pyarrow as pa

        encode = typed_values.encode
        try:
            blobs = [b"" if v is None else encode(dtype, v) for v in col.to_pylist()]
        except (ValueError, TypeError, AttributeError) as err:
            raise ValueError(f"a value does not fit {dtype.name}: {err}") from None
        return pa.array(blobs, pa.binary())

    @staticmethod
    def _fixed_numpy(name: str, col: pa.Array) -> Any:
        import pyarrow as pa
        import pyarrow.compute as pc

        from potluck.online.arrow_util import as_numpy

        if name == "UnixTimestamp":
            col = pc.cast(col, pa.timestamp("us", tz="UTC")).cast(pa.int64())
        elif name == "Bool":
            col = pc.cast(col, pa.bool_()).cast(pa.uint8())
        elif name in ("Float32", "Float64"):
            col = pc.cast(col, pa.float32() if name == "Float32" else pa.float64(), safe=False)
        else:
            col = pc.cast(col, pa.int32() if name == "Int32" else pa.int64())
        return as_numpy(col)

    def _encode_list(self, base: PrimitiveType, col: pa.Array) -> pa.Array:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        from potluck.online.arrow_util import (
            as_numpy,
            bin_scalar,
            fixed_binary,
            from_numpy,
            join_rows,
            u32_lengths,
        )

        col = pc.cast(col, pa.list_(base.to_arrow()), safe=base.name not in ("Float32", "Float64"))
        flat = pc.list_flatten(col)
        if flat.null_count:
            return pa.array(
                [None if v is None else _encode_array_py(base, v) for v in col.to_pylist()], pa.binary()
            ).fill_null(b"")
        counts = as_numpy(pc.list_value_length(col)).astype(np.int64)
        ends = np.cumsum(counts)
        starts = np.concatenate(([0], ends)).astype(np.int64)
        name = base.name
        if name in _FIXED:
            size = np.dtype(_NP[name]).itemsize
            values = self._fixed_numpy(name, flat).astype(_NP[name], copy=False)
            data = pa.py_buffer(np.ascontiguousarray(values).tobytes())
            offsets = pa.py_buffer((starts * size).astype(np.int32).tobytes())
            elements = pa.Array.from_buffers(pa.binary(), len(col), [None, offsets, data])
        else:
            flat_bin = pc.cast(flat, pa.binary())
            encoded = join_rows([u32_lengths(flat_bin), flat_bin])
            lists = pa.ListArray.from_arrays(from_numpy(starts.astype(np.int32)), encoded)
            elements = pc.binary_join(lists, bin_scalar(b""))
        payload = join_rows([fixed_binary(counts.astype("<u4"), 4), bin_scalar(b"\x00"), elements])
        if col.null_count:
            payload = pc.if_else(col.is_valid(), payload, bin_scalar(b""))
        return payload
