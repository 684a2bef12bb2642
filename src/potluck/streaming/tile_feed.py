"""Feeding tiles: pushed events merged into each entity's tile record, and backfills from the batch
source, both as compare-and-set loops over `SupportsTiles` (one home of the tile maths:
`potluck.aggregation.online_tiles`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from potluck.aggregation.online_tiles import (
    WATERMARK_KEY,
    Event,
    TileSpec,
    UpdateStats,
    apply_events,
    rebuild,
    watermarks,
)
from potluck.definitions.errors import BackendUnavailableError, RetrievalError
from potluck.online.protocol import OnlineStore, OnlineView, ReadRequest, SupportsTiles, TileWrite

if TYPE_CHECKING:
    import pyarrow as pa

# Compare-and-set rounds before giving up: each failed round means another writer changed the record.
MAX_ROUNDS = 50
ENTITIES_PER_ROUND = 2_000


@dataclass
class TileCounters:
    """Process totals since start (exported as metrics by the server)."""

    applied: int = 0
    late: int = 0
    behind_watermark: int = 0
    replayed: int = 0
    future_dropped: int = 0


COUNTERS = TileCounters()
_LOCK = threading.Lock()


def _count(stats: UpdateStats) -> None:
    with _LOCK:
        COUNTERS.applied += stats.applied
        COUNTERS.late += stats.late
        COUNTERS.behind_watermark += stats.behind_watermark
        COUNTERS.replayed += stats.replayed
        COUNTERS.future_dropped += stats.future_dropped


_KEEPS_TILES: dict[type, bool] = {}  # a runtime protocol check costs more than a small read


def tiles_of(store: OnlineStore, view: OnlineView) -> SupportsTiles:
    keeps = _KEEPS_TILES.get(type(store))
    if keeps is None:
        keeps = _KEEPS_TILES[type(store)] = isinstance(store, SupportsTiles)
    if not keeps:
        raise RetrievalError(
            f"feature view '{view.name}' has aggregations, but the online store {type(store).__name__} keeps no tiles; "
            "use the sqlite, redis or postgres online store"
        )
    return store  # type: ignore[return-value]


def now_micros() -> int:
    return time.time_ns() // 1000


def update_tiles(
    store: OnlineStore,
    view: OnlineView,
    spec: TileSpec,
    keys: Sequence[bytes],
    events: Sequence[Event],
    *,
    position: str | None = None,
    offsets: Sequence[tuple[str, int]] | None = None,
    now: int | None = None,
) -> UpdateStats:
    """Merge `events` (one per key in `keys`) into their entities' tiles, exactly once per `position`.

    Each entity's record is read, merged and written back by compare-and-set; records another
    writer changed meanwhile are read and merged again. With a `position`, an entity whose record
    already holds it is left alone, so a replayed push changes nothing. With `offsets` (one stream
    (partition, offset) per event, in offset order within a partition), an event at or below its
    partition's high-water offset in the record is skipped, so a replayed stream batch changes
    nothing either.
    """
    tiles = tiles_of(store, view)
    now = now_micros() if now is None else now
    by_key: dict[bytes, list[Event]] = {}
    at: dict[bytes, list[tuple[str, int]]] = {}
    for key, ev in zip(keys, events, strict=True):
        by_key.setdefault(key, []).append(ev)
    if offsets is not None:
        for key, pos in zip(keys, offsets, strict=True):
            at.setdefault(key, []).append(pos)
    stats = UpdateStats()
    pending = list(by_key)
    for start in range(0, len(pending), ENTITIES_PER_ROUND):
        _cas_loop(
            tiles,
            view,
            spec,
            pending[start : start + ENTITIES_PER_ROUND],
            lambda blob, key, marks, st: apply_events(
                spec,
                blob,
                by_key[key],
                now=now,
                position=position,
                marks=marks,
                arrival=now,
                stats=st,
                offsets=at[key] if offsets is not None else None,
            ),
            stats,
        )
    _count(stats)
    return stats


def _cas_loop(
    tiles: SupportsTiles,
    view: OnlineView,
    spec: TileSpec,
    keys: list[bytes],
    change: Any,
    stats: UpdateStats,
) -> None:
    for _ in range(MAX_ROUNDS):
        if not keys:
            return
        found = tiles.read_tiles([ReadRequest(view, [WATERMARK_KEY, *keys])])[0]
        marks = watermarks(found[0].blob if found[0] is not None else None)
        writes: list[TileWrite] = []
        per_key: dict[bytes, UpdateStats] = {}
        for key, record in zip(keys, found[1:], strict=True):
            per_key[key] = UpdateStats()
            blob = change(None if record is None else record.blob, key, marks, per_key[key])
            if blob is not None:
                writes.append(TileWrite(key, 0 if record is None else record.version, blob))
        applied = tiles.write_tiles(view, writes, spec.ttl_seconds)
        failed = {w.key for w, ok in zip(writes, applied, strict=True) if not ok}
        for key, st in per_key.items():
            if key not in failed:  # records another writer changed are merged again next round
                stats.applied += st.applied
                stats.late += st.late
                stats.behind_watermark += st.behind_watermark
                stats.replayed += st.replayed
                stats.future_dropped += st.future_dropped
        keys = [k for k in keys if k in failed]
    raise BackendUnavailableError(
        f"feature view '{view.name}': tile records kept changing under {MAX_ROUNDS} rounds of writes; try again"
    )


def set_watermarks(
    store: OnlineStore, view: OnlineView, spec: TileSpec, end: int, *, exact: bool = False
) -> dict[int, int]:
    """Raise the view's backfill watermark to `end` (aligned down to each hop unless `exact`); returns
    the marks in force. Marks only rise."""
    tiles = tiles_of(store, view)
    for _ in range(MAX_ROUNDS):
        found = tiles.read_tiles([ReadRequest(view, [WATERMARK_KEY])])[0][0]
        marks = watermarks(None if found is None else found.blob)
        new = {h: max(marks.get(h, -(2**63)), end if exact else (end // h) * h) for h in spec.groups}
        if new == marks:
            return marks
        blob = orjson.dumps({str(h): v for h, v in new.items()})
        if tiles.write_tiles(view, [TileWrite(WATERMARK_KEY, 0 if found is None else found.version, blob)], 0)[0]:
            return new
    raise BackendUnavailableError(f"feature view '{view.name}': the backfill watermark kept changing; try again")


def backfill(
    store: OnlineStore,
    view: OnlineView,
    spec: TileSpec,
    keys: Sequence[bytes],
    events: Sequence[Event],
    *,
    end: int | None = None,
    marks: dict[int, int] | None = None,
    now: int | None = None,
) -> int:
    """Rebuild the tiles up to the watermark of every entity in `keys` from its batch events (all of
    them, up to the watermark); returns the entities written. Running it again gives the same tiles.

    The watermark is `marks` when given (`set_watermarks`), else raised to `end` (hop-aligned) first.
    """
    tiles = tiles_of(store, view)
    now = now_micros() if now is None else now
    if marks is None:
        if end is None:
            raise ValueError("backfill needs `end` or `marks`")
        marks = set_watermarks(store, view, spec, end)
    by_key: dict[bytes, list[Event]] = {}
    for key, ev in zip(keys, events, strict=True):
        by_key.setdefault(key, []).append(ev)
    ordered = list(by_key)
    stats = UpdateStats()
    in_force = marks
    for start in range(0, len(ordered), ENTITIES_PER_ROUND):
        _cas_loop(
            tiles,
            view,
            spec,
            ordered[start : start + ENTITIES_PER_ROUND],
            lambda blob, key, _marks, _st: rebuild(spec, blob, by_key[key], marks=in_force, now=now),
            stats,
        )
    return len(ordered)


def events_from_table(view: OnlineView, spec: TileSpec, table: pa.Table) -> tuple[list[bytes], list[Event]]:
    """Encoded entity keys and events of rows with the join keys, `event_timestamp`,
    `created_timestamp` (optional) and the aggregated columns."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if table.num_rows == 0:
        return [], []
    key_columns = [table.column(k).to_pylist() for k in view.join_keys]
    encode = view.key_encoder.encode
    keys = [encode(list(vals)) for vals in zip(*key_columns, strict=True)]
    ts = pc.cast(table.column("event_timestamp"), pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_pylist()
    if "created_timestamp" in table.column_names:
        created = pc.cast(table.column("created_timestamp"), pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_pylist()
    else:
        created = [None] * table.num_rows
    values = []
    for col in spec.columns:
        column = table.column(col)
        if pa.types.is_timestamp(column.type):  # min, max and last of a time column are times
            column = pc.cast(column, pa.timestamp("us", tz="UTC"))
        elif pa.types.is_large_binary(column.type):
            column = pc.cast(column, pa.binary())
        values.append(column.to_pylist())
    rows = list(zip(*values, strict=True)) if values else [()] * table.num_rows
    return keys, [Event(t, c, tuple(v)) for t, c, v in zip(ts, created, rows, strict=True)]
