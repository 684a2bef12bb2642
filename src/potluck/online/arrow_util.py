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
    import numpy as np
    import pyarrow as pa
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
