"""Small vectorised helpers that build per-row binary values from Arrow columns."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa


# `pa.scalar` and `pa.array` on Python or numpy values import pandas on first use (about half a
# second); the helpers below build the same objects from buffers, which never does.


@lru_cache(maxsize=256)
def bin_scalar(value: bytes | None) -> pa.Scalar:
    """A binary scalar (null for None)."""
    import numpy as np
    import pyarrow as pa

    if value is None:
        return pa.nulls(1, pa.binary())[0]
    offsets = pa.py_buffer(np.array([0, len(value)], dtype=np.int32).tobytes())
    return pa.Array.from_buffers(pa.binary(), 1, [None, offsets, pa.py_buffer(value)])[0]


def from_numpy(values: np.ndarray[Any, Any]) -> pa.Array:
    """A primitive Arrow array (no nulls) over a 1-d numpy array of int32, int64, uint8, uint64 or float64."""
    import numpy as np
    import pyarrow as pa

    types = {
        "int32": pa.int32(),
        "int64": pa.int64(),
        "uint8": pa.uint8(),
        "uint64": pa.uint64(),
        "float64": pa.float64(),
    }
    data = np.ascontiguousarray(values)
    return pa.Array.from_buffers(types[data.dtype.name], len(data), [None, pa.py_buffer(data)])


@lru_cache(maxsize=256)
def _fill_scalar(value: int | bytes, type_: pa.DataType) -> pa.Scalar:
    import numpy as np

    base = bin_scalar(value) if isinstance(value, bytes) else from_numpy(np.array([value], dtype=np.int64))[0]
    return base.cast(type_)


def fill_null(col: pa.Array, value: int | bytes) -> pa.Array:
    """`col.fill_null(value)` without building the fill value through `pa.scalar`."""
    import pyarrow.compute as pc

    if not col.null_count:
        return col
    out: pa.Array = pc.coalesce(col, _fill_scalar(value, col.type))
    return out


_NUMPY_TYPES = {
    "int8": "i1",
    "int16": "<i2",
    "int32": "<i4",
    "int64": "<i8",
    "uint8": "u1",
    "uint16": "<u2",
    "uint32": "<u4",
    "uint64": "<u8",
    "float": "<f4",
    "double": "<f8",
}


def as_numpy(col: pa.Array | pa.ChunkedArray) -> np.ndarray[Any, Any]:
    """The values of a fixed-width primitive or bool array as numpy, nulls as zero (False)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    col = as_array(col)
    is_bool = pa.types.is_boolean(col.type)
    if is_bool:
        col = pc.cast(col, pa.uint8())
    col = fill_null(col, 0)
    dtype = np.dtype(_NUMPY_TYPES[str(col.type)])
    buf = col.buffers()[1]
    if buf is None or not len(col):
        values = np.zeros(len(col), dtype=dtype)
    else:
        values = np.frombuffer(buf, dtype=dtype, count=len(col), offset=col.offset * dtype.itemsize)
    return values.view(np.bool_) if is_bool else values


def empty_binary() -> pa.Array:
    import pyarrow as pa

    return pa.nulls(0, pa.binary())


def fixed_binary(values: np.ndarray[Any, Any], width: int, valid: pa.Array | None = None) -> pa.Array:
    """A binary array whose row i is the `width` bytes of `values[i]` (a contiguous numpy array)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(values)
    data = pa.py_buffer(np.ascontiguousarray(values).tobytes())
    offsets = pa.py_buffer(np.arange(0, (n + 1) * width, width, dtype=np.int32).tobytes())
    out = pa.Array.from_buffers(pa.binary(), n, [None, offsets, data])
    if valid is not None and valid.false_count:
        out = pc.if_else(valid, out, bin_scalar(None))
    return out


def u32_lengths(col: pa.Array) -> pa.Array:
    """Per row, the byte length of a binary value as 4 little-endian bytes (0 for null)."""
    import pyarrow.compute as pc

    lengths = as_numpy(pc.binary_length(col))
    return fixed_binary(lengths.astype("<u4"), 4)


def join_rows(parts: list[pa.Array | pa.Scalar]) -> pa.Array:
    """Concatenate binary columns (and constant scalars) row by row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arrays = [p for p in parts if isinstance(p, pa.Array)]
    if len(parts) == 1 and arrays:
        return arrays[0]
    return pc.binary_join_element_wise(*parts, bin_scalar(b""))


def as_array(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    import pyarrow as pa

    if isinstance(col, pa.ChunkedArray):
        return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return col


def hex_binary(col: pa.Array) -> pa.Array:
    """Lowercase hex of every binary value (no nulls), vectorised."""
    import numpy as np
    import pyarrow as pa

    col = col.cast(pa.binary())
    n = len(col)
    _, offsets_buf, data_buf = col.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32)[col.offset : col.offset + n + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8)[offsets[0] : offsets[-1]] if n else np.zeros(0, np.uint8)
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    out = np.empty((len(data), 2), dtype=np.uint8)
    out[:, 0] = digits[data >> 4]
    out[:, 1] = digits[data & 0x0F]
    new_offsets = ((offsets - offsets[0]) * 2).astype(np.int32)
    return pa.Array.from_buffers(
        pa.binary(), n, [None, pa.py_buffer(new_offsets.tobytes()), pa.py_buffer(out.tobytes())]
    )


def concat_range(col: pa.Array, start: int, stop: int) -> memoryview:
    """The bytes of values start..stop-1 of a binary array without nulls, concatenated (no copy)."""
    import numpy as np

    _, offsets_buf, data_buf = col.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32, count=2, offset=4 * (col.offset + start))
    lo = int(offsets[0])
    hi = int(np.frombuffer(offsets_buf, dtype=np.int32, count=1, offset=4 * (col.offset + stop))[0])
    return memoryview(data_buf)[lo:hi]
