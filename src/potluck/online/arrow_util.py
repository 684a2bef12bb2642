"""Small vectorised helpers that build per-row binary values from Arrow columns."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa


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
        out = pc.if_else(valid, out, pa.scalar(None, pa.binary()))
    return out


def u32_lengths(col: pa.Array) -> pa.Array:
    """Per row, the byte length of a binary value as 4 little-endian bytes (0 for null)."""
    import pyarrow.compute as pc

    lengths = pc.binary_length(col).fill_null(0).to_numpy(zero_copy_only=False)
    return fixed_binary(lengths.astype("<u4"), 4)


def join_rows(parts: list[pa.Array | pa.Scalar]) -> pa.Array:
    """Concatenate binary columns (and constant scalars) row by row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arrays = [p for p in parts if isinstance(p, pa.Array)]
    if len(parts) == 1 and arrays:
        return arrays[0]
    return pc.binary_join_element_wise(*parts, pa.scalar(b"", pa.binary()))


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
