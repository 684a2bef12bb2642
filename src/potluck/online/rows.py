"""Turning an Arrow table of feature rows into what every store writes: key, times, blob."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from potluck.definitions.errors import PotluckError, RetrievalError
from potluck.online.arrow_util import as_array, as_numpy, fill_null, from_numpy
from potluck.online.protocol import OnlineView
from potluck.online.time_range import RANGE_TEXT, holds_times, row_out_of_range

if TYPE_CHECKING:
    import pyarrow as pa

EVENT_TIMESTAMP = "event_timestamp"
CREATED_TIMESTAMP = "created_timestamp"
INT64_MIN = -(2**63)


@dataclass
class EncodedRows:
    """Columns of encoded rows, as Arrow arrays (keys and blobs binary, times int64 microseconds)."""

    keys: pa.Array
    event_us: pa.Array
    created_us: pa.Array  # null when the row has no created timestamp
    blobs: pa.Array

    def __len__(self) -> int:
        return len(self.keys)

    def python(self) -> tuple[list[bytes], list[int], list[int | None], list[bytes]]:
        return (
            self.keys.to_pylist(),
            self.event_us.to_pylist(),
            self.created_us.to_pylist(),
            self.blobs.to_pylist(),
        )


def _micros(col: Any) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    col = as_array(col)
    if pa.types.is_timestamp(col.type) and col.type.tz is None:
        col = pc.assume_timezone(col, "UTC")
    return pc.cast(col, pa.timestamp("us", tz="UTC")).cast(pa.int64())


def _check_range(view: OnlineView, rows: pa.Table, column: str) -> None:
    """Times outside years 1 to 9999 could be written but never read back: refused."""
    found = row_out_of_range(rows.column(column))
    if found is not None:
        bad, shown = found
        raise RetrievalError(
            f"rows written to online view '{view.name}': {column} of row {bad} "
            f"({shown}) is outside the supported range ({RANGE_TEXT})"
        )


def check_times(view: OnlineView, rows: pa.Table) -> None:
    """Refuse rows holding a time (event, created or a feature) that no read could return."""
    names = set(rows.column_names)
    for name in (EVENT_TIMESTAMP, CREATED_TIMESTAMP):
        if name in names:
            _check_range(view, rows, name)
    for f in view.features:
        if f.name in names and holds_times(rows.column(f.name).type):
            _check_range(view, rows, f.name)


def encode_rows(view: OnlineView, rows: pa.Table) -> EncodedRows:
    """Encode keys and values of `rows`; rows with a null join key or event time are dropped."""
    import pyarrow as pa
    import pyarrow.compute as pc

    names = set(rows.column_names)
    missing = [k for k in (*view.join_keys, EVENT_TIMESTAMP) if k not in names]
    if missing:
        raise PotluckError(f"rows written to online view '{view.name}' lack the column(s) {', '.join(missing)}")
    n = rows.num_rows
    keys = view.key_encoder.encode_arrow([rows.column(k) for k in view.join_keys])
    check_times(view, rows)
    event = _micros(rows.column(EVENT_TIMESTAMP))
    created = _micros(rows.column(CREATED_TIMESTAMP)) if CREATED_TIMESTAMP in names else pa.nulls(n, pa.int64())
    columns = {f.name: rows.column(f.name) for f in view.features if f.name in names}
    blobs = view.row_codec.encode_arrow(columns, n)
    valid = pc.and_(keys.is_valid(), event.is_valid())
    if valid.false_count:
        keys, event, created, blobs = (pc.filter(a, valid) for a in (keys, event, created, blobs))
    return EncodedRows(keys, event, created, blobs)


def newest_per_key(rows: EncodedRows) -> EncodedRows:
    """One row per key: the one a sequence of newest-wins writes in batch order would leave."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(rows)
    if n < 2 or pc.count_distinct(rows.keys).as_py() == n:
        return rows
    table = pa.table(
        {
            "k": rows.keys,
            "e": rows.event_us,
            "c": fill_null(rows.created_us, INT64_MIN),
            "i": from_numpy(np.arange(n, dtype=np.int64)),
        }
    )
    order = pc.sort_indices(
        table, sort_keys=[("k", "ascending"), ("e", "descending"), ("c", "descending"), ("i", "descending")]
    )
    sorted_keys = pc.take(rows.keys, order)
    first = np.ones(n, dtype=bool)
    first[1:] = as_numpy(pc.not_equal(sorted_keys[1:], sorted_keys[:-1]))
    pick = from_numpy(as_numpy(order)[first])
    return EncodedRows(*(pc.take(a, pick) for a in (rows.keys, rows.event_us, rows.created_us, rows.blobs)))


def sorted_by_key(rows: EncodedRows) -> EncodedRows:
    """The rows in key order; rows of one key keep their batch order (the sort is stable)."""
    import pyarrow.compute as pc

    order = pc.sort_indices(rows.keys)
    return EncodedRows(*(pc.take(a, order) for a in (rows.keys, rows.event_us, rows.created_us, rows.blobs)))
