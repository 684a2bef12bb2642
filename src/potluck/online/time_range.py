"""The times every store can hold and serve: years 1 to 9999 (what a Python datetime can hold)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_US = (datetime(1, 1, 1, tzinfo=UTC) - EPOCH) // datetime.resolution
MAX_US = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - EPOCH) // datetime.resolution
RANGE_TEXT = "between years 1 and 9999"
_PER_US = {"s": 1_000_000, "ms": 1_000, "us": 1}


def first_out_of_range(values: pa.Array | pa.ChunkedArray) -> int | None:
    """The index of the first time outside years 1 to 9999, None if all fit.

    `values` is a timestamp column of any unit, or int64 microseconds since the epoch.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(values) == values.null_count:
        return None
    low, high = MIN_US, MAX_US
    if pa.types.is_timestamp(values.type):
        unit = values.type.unit
        if unit == "ns":
            return None  # int64 nanoseconds span the years 1677 to 2262
        low, high = -(-MIN_US // _PER_US[unit]), MAX_US // _PER_US[unit]
        values = values.cast(pa.int64())
    bounds = pc.min_max(values)
    if low <= bounds["min"].as_py() and bounds["max"].as_py() <= high:
        return None
    bad = pc.or_(pc.less(values, low), pc.greater(values, high))
    return int(pc.index(bad, True).as_py())


def describe(values: pa.Array | pa.ChunkedArray, index: int) -> str:
    """A time that may not fit a datetime, as its raw count since the epoch (e.g. '253402300800 s')."""
    import pyarrow as pa

    unit = values.type.unit if pa.types.is_timestamp(values.type) else "us"
    return f"{values.cast(pa.int64())[index].as_py()} {unit} since 1970-01-01"


def holds_times(arrow_type: pa.DataType) -> bool:
    """A timestamp type, or a list of timestamps (an `Array(UnixTimestamp)` feature)."""
    import pyarrow as pa

    t = pa.types
    if t.is_list(arrow_type) or t.is_large_list(arrow_type):
        return bool(t.is_timestamp(arrow_type.value_type))
    return bool(t.is_timestamp(arrow_type))


def row_out_of_range(values: pa.Array | pa.ChunkedArray) -> tuple[int, str] | None:
    """The first row holding a time outside years 1 to 9999 and that time described, or None.

    `values` is a column for which `holds_times` is true; in a list column the row is the list's.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_timestamp(values.type):
        bad = first_out_of_range(values)
        return None if bad is None else (bad, describe(values, bad))
    lists = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    elements = pc.list_flatten(lists)
    bad = first_out_of_range(elements)
    if bad is None:
        return None
    row = pc.list_parent_indices(lists)[bad].as_py()
    return int(row), describe(elements, bad)
