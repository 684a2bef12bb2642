"""Online tiles of windowed aggregations: what a tile record holds, how updates merge into it and
how a read at time t finalizes it (docs/semantics.md, "Online tiles").

One record per (view, entity key), replaced by compare-and-set (`SupportsTiles`), holds
(`potluck.aggregation.tile_record`):

- per hop h of the view, tiles k (covering `(k * h, (k + 1) * h]`, `rule.tile_index`), each a
  partial aggregate per aggregated column (`potluck.aggregation.partials`, the one home of the
  merge and finalize maths);
- a lifetime base per column, into which tiles older than the longest window are folded when a
  lifetime aggregation needs them;
- events that were in the future when written, kept apart until they are due;
- the idempotency marks (push positions) already applied, each with its write time;
- per stream partition, the highest offset applied (the stream worker's exactly-once marks);
- the time of the last write.

The view's backfill watermark (per hop: tiles before it are rebuilt from the batch source, and
pushes only count after it) is one more record under a reserved key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson

from potluck.aggregation.partials import ALL_FIELDS, FIELDS_READ, LastKey, Partial, merge, merge_all
from potluck.aggregation.rule import canonical_function, in_window, micros, tile_index, window_tiles
from potluck.aggregation.tile_columns import KeyTiles, Merged
from potluck.aggregation.tile_record import Block, RecordView, Slot, TileRecord, written_at
from potluck.aggregation.tile_record import decode as decode_record
from potluck.aggregation.tile_record import encode as encode_record
from potluck.aggregation.tile_record import view as view_record

# The record of the view's backfill watermark: a key no entity encoding produces (they never start with 0x00 0xff).
WATERMARK_KEY = b"\x00\xffwatermark"
# The hop of the tiles that feed lifetime aggregations when the view has no windowed one.
LIFETIME_HOP = 3_600_000_000


@dataclass(frozen=True)
class TileAggregation:
    """One aggregation as the tiles see it: times in microseconds, `window=None` for a lifetime."""

    column: str
    function: str
    window: int | None
    hop: int | None
    output: str

    @staticmethod
    def of(column: str, function: str, window: timedelta | None, hop: timedelta | None, output: str) -> TileAggregation:
        return TileAggregation(
            column,
            canonical_function(function),
            None if window is None else micros(window),
            None if hop is None else micros(hop),
            output,
        )


@dataclass(frozen=True)
class TileSpec:
    """The tile layout of a view: which columns each hop's tiles aggregate and how long they live."""

    aggregations: tuple[TileAggregation, ...]
    groups: dict[int, tuple[str, ...]] = field(init=False)  # hop -> columns
    reach: dict[int, int] = field(init=False)  # hop -> tiles before the head that reads can need
    lifetime_hop: int | None = field(init=False)
    lifetime_columns: tuple[str, ...] = field(init=False)
    _columns: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _seen_span: int | None = field(init=False, repr=False, compare=False)
    # (column, window, hop) -> the fields of a merged partial its functions read (`partials.FIELDS_READ`)
    window_fields: dict[tuple[str, int | None, int | None], frozenset[str]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        groups: dict[int, list[str]] = {}
        reach: dict[int, int] = {}
        for a in self.aggregations:
            if a.window is None or a.hop is None:
                continue
            cols = groups.setdefault(a.hop, [])
            if a.column not in cols:
                cols.append(a.column)
            reach[a.hop] = max(reach.get(a.hop, 0), a.window // a.hop)
        lifetime = list(dict.fromkeys(a.column for a in self.aggregations if a.window is None))
        lifetime_hop = (min(groups) if groups else LIFETIME_HOP) if lifetime else None
        if lifetime_hop is not None:
            cols = groups.setdefault(lifetime_hop, [])
            cols.extend(c for c in lifetime if c not in cols)
            reach.setdefault(lifetime_hop, 0)
        object.__setattr__(self, "groups", {h: tuple(c) for h, c in groups.items()})
        object.__setattr__(self, "reach", reach)
        object.__setattr__(self, "lifetime_hop", lifetime_hop)
        object.__setattr__(self, "lifetime_columns", tuple(lifetime))
        object.__setattr__(self, "_columns", tuple(dict.fromkeys(a.column for a in self.aggregations)))
        reads: dict[tuple[str, int | None, int | None], frozenset[str]] = {}
        for a in self.aggregations:
            window = (a.column, a.window, a.hop)
            reads[window] = reads.get(window, frozenset()) | FIELDS_READ[a.function]
        object.__setattr__(self, "window_fields", reads)
        retention = self.retention_us
        object.__setattr__(self, "_seen_span", None if retention is None else retention + max(self.groups, default=0))

    @property
    def columns(self) -> tuple[str, ...]:
        return self._columns

    @property
    def retention_us(self) -> int | None:
        """How long a record lives without writes: the longest window plus one hop (None: forever)."""
        if self.lifetime_columns:
            return None
        return max((h * (self.reach[h] + 1) for h in self.groups), default=0)

    @property
    def seen_span(self) -> int | None:
        """How long after its last write a record still counts as a seen key (None: forever)."""
        return self._seen_span

    @property
    def ttl_seconds(self) -> int:
        """The backend expiry of a record (0: none); one hop of slack past the retention."""
        retention = self.retention_us
        if retention is None:
            return 0
        return -(-(retention + max(self.groups)) // 1_000_000)

    def keep_from(self, hop: int, now: int) -> int:
        """The first tile of `hop` a read at or after `now` can need; older tiles are expired."""
        return (now // hop) - self.reach[hop]


@dataclass(frozen=True)
class Event:
    """One event of one entity: times in microseconds, one value per `TileSpec.columns` (None: null)."""

    ts: int
    created: int | None
    values: tuple[Any, ...]


@dataclass
class UpdateStats:
    applied: int = 0  # events merged into tiles (or kept as future events)
    late: int = 0  # events older than the longest window plus one hop: dropped
    behind_watermark: int = 0  # events at or before the backfill watermark: the batch source has them
    replayed: int = 0  # entity updates (pushes) or events (streams) skipped: their position was already applied
    future_dropped: int = 0  # future events beyond MAX_PENDING per key: dropped


# ---------------------------------------------------------------- partials in slots

# Each event of one write gets its own arrival, later than any earlier write's: the write time
# (microseconds) shifted left, plus the event's position in the write.
ARRIVAL_SHIFT = 10
# Future events kept per key; more are dropped and counted.
MAX_PENDING = 1_000


def arrival_of(now: int, index: int) -> int:
    return (now << ARRIVAL_SHIFT) + min(index, (1 << ARRIVAL_SHIFT) - 1)


def _fold(slot: Slot, column: str, p: Partial) -> None:
    """Merge `p` (newer events) into the slot's partial of `column`."""
    if p.count == 0:
        return
    old = slot.get(column)
    slot[column] = p if old is None else merge(p, old)


# ---------------------------------------------------------------- records


def watermarks(blob: bytes | None) -> dict[int, int]:
    """hop -> watermark (microseconds) from the watermark record."""
    return {} if blob is None else {int(h): int(v) for h, v in orjson.loads(blob).items()}


def _expire(spec: TileSpec, record: TileRecord, now: int) -> None:
    """Drop tiles no read at or after `now` needs; lifetime columns fold them into the base first."""
    for hop, cols in record.tiles.items():
        if hop not in spec.groups:
            continue
        first = spec.keep_from(hop, now)
        for col, block in cols.items():
            dropped = block.drop_before(first)
            if hop == spec.lifetime_hop and col in spec.lifetime_columns:
                for p in dropped:
                    _fold(record.base, col, p)
    if not record.tiles.keys() <= spec.groups.keys():
        for hop in [h for h in record.tiles if h not in spec.groups]:
            del record.tiles[hop]  # a hop the view no longer has
    if record.marks:
        retention = spec.retention_us
        horizon = now - (retention if retention is not None else 7 * 86_400_000_000)
        for mark in [m for m, at in record.marks.items() if at < horizon]:
            del record.marks[mark]


def _partials(spec: TileSpec, ev: Event, arrival: int) -> Slot:
    """One single-event partial per column with a non-null value."""
    key = LastKey(ev.ts, ev.created, arrival)
    return {
        col: Partial.of(value, key) for col, value in zip(spec.columns, ev.values, strict=True) if value is not None
    }


def _place(
    spec: TileSpec,
    record: TileRecord,
    ts: int,
    slot: Slot,
    marks: dict[int, int],
    now: int,
    stats: UpdateStats,
    batch: dict[tuple[int, str, int], Partial],
) -> None:
    """Merge one event (its single-event partials) into `batch` (hop, column, tile -> partial of this
    write's events) or the lifetime base of every hop."""
    behind = late = False
    kept = 0  # hops whose tiles (or the lifetime base) took the event
    for hop, cols in spec.groups.items():
        if ts <= marks.get(hop, -(2**63)):
            behind = True
            continue
        k = tile_index(ts, hop)
        expired = k < spec.keep_from(hop, now)
        kept += not expired or hop == spec.lifetime_hop
        for col in cols:
            p = slot.get(col)
            lifetime = hop == spec.lifetime_hop and col in spec.lifetime_columns
            if expired and not lifetime:
                late = True
                continue
            if p is None:
                continue
            if expired:
                _fold(record.base, col, p)
            else:
                old = batch.get((hop, col, k))
                batch[(hop, col, k)] = p if old is None else merge(p, old)
    if behind:
        stats.behind_watermark += 1
    elif late and not kept:
        stats.late += 1
    else:
        stats.applied += 1


def _store(record: TileRecord, batch: dict[tuple[int, str, int], Partial]) -> None:
    """Fold one write's tile partials into the record's blocks, one merge per touched tile."""
    for (hop, col, k), p in batch.items():
        block = record.block(hop, col)
        old = block.get(k)
        block.put(k, p if old is None else merge(p, old))


def apply_events(
    spec: TileSpec,
    blob: bytes | None,
    events: Sequence[Event],
    *,
    now: int,
    position: str | None,
    marks: dict[int, int],
    arrival: int,
    stats: UpdateStats,
    offsets: Sequence[tuple[str, int]] | None = None,
) -> bytes | None:
    """The record after merging `events` of one entity; None when `position` was already applied
    (or every event's stream offset was).

    Events after `now` are kept apart (pending) until a later write finds them due; `arrival`
    is the write time that orders ties (`arrival_of`). `offsets`, one (partition, offset) per
    event, are stream positions: an event at or below its partition's mark in the record is
    skipped as replayed, and each mark rises to the highest offset taken.
    """
    record = decode_record(blob)
    if position is not None and position in record.marks:
        stats.replayed += 1
        return None
    if offsets is not None:
        events = _unapplied(record, events, offsets, stats)
        if not events:
            return None
    _expire(spec, record, now)
    batch: dict[tuple[int, str, int], Partial] = {}
    if record.pending:
        due = [(ts, s) for ts, s in record.pending if ts <= now]
        record.pending = [(ts, s) for ts, s in record.pending if ts > now]
        ignored = UpdateStats()  # pending events were counted when they were written
        for ts, s in due:
            _place(spec, record, ts, s, marks, now, ignored, batch)
    for i, ev in enumerate(events):
        slot = _partials(spec, ev, arrival_of(arrival, i))
        if ev.ts <= now:
            _place(spec, record, ev.ts, slot, marks, now, stats, batch)
        elif len(record.pending) < MAX_PENDING:
            record.pending.append((ev.ts, slot))
            stats.applied += 1
        else:
            stats.future_dropped += 1
    _store(record, batch)
    if position is not None:
        record.marks[position] = now
    record.written = max(record.written, now)
    return encode_record(record)


def _unapplied(
    record: TileRecord, events: Sequence[Event], offsets: Sequence[tuple[str, int]], stats: UpdateStats
) -> list[Event]:
    """The events whose stream offset is past their partition's mark; the marks rise to every offset seen."""
    marks = record.offsets
    seen = dict(marks)
    fresh: list[Event] = []
    for ev, (partition, offset) in zip(events, offsets, strict=True):
        if offset <= marks.get(partition, -1):
            stats.replayed += 1
            continue
        fresh.append(ev)
        if offset > seen.get(partition, -1):
            seen[partition] = offset
    record.offsets = seen
    return fresh


def rebuild(spec: TileSpec, blob: bytes | None, events: Sequence[Event], *, marks: dict[int, int], now: int) -> bytes:
    """The record with every tile up to the one holding each hop's watermark rebuilt from `events`
    (the batch source's events of the entity up to the watermark); later tiles are kept. A
    watermark on a hop boundary (`set_watermarks` without `exact`) ends a tile, so no tile mixes
    batch and pushed events."""
    record = decode_record(blob)
    stats = UpdateStats()
    # Built as pushes into an empty record (no watermark), then spliced in below each watermark.
    built = decode_record(apply_events(spec, None, events, now=now, position=None, marks={}, arrival=0, stats=stats))
    fresh = TileRecord(
        written=max(record.written, now),
        marks=record.marks,
        base=built.base,
        pending=record.pending,
        offsets=record.offsets,
    )
    for hop, cols in spec.groups.items():
        mark = marks.get(hop)
        first_kept = -(2**63) if mark is None else tile_index(mark, hop) + 1  # tiles after the watermark's
        fresh.tiles[hop] = {}
        for col in cols:
            new = {k: p for k, p in _tiles(built, hop, col).items() if k < first_kept}
            new.update({k: p for k, p in _tiles(record, hop, col).items() if k >= first_kept})
            fresh.tiles[hop][col] = Block.of(new)
    _expire(spec, fresh, now)
    return encode_record(fresh)


def _tiles(record: TileRecord, hop: int, column: str) -> dict[int, Partial]:
    block = record.tiles.get(hop, {}).get(column)
    return {} if block is None else block.partials()


def read_values(spec: TileSpec, blob: bytes, t: int) -> list[Any]:
    """The value of every aggregation of the spec at time t (aggregation order)."""
    return read_many(spec, [blob], t)[0]


def read_many(spec: TileSpec, blobs: Sequence[bytes], t: int) -> list[list[Any]]:
    """The values of every aggregation of the spec at time t for each record (aggregation order);
    each window is merged for all records at once (`potluck.aggregation.tile_columns`), only in
    the fields its functions read."""
    parts = [view_record(b) for b in blobs]
    fields = spec.window_fields
    columns: list[list[Any]] = []
    merged: dict[tuple[str, int | None, int | None], Merged] = {}  # functions of one window share a merge
    joined: dict[tuple[int, str], KeyTiles] = {}  # windows of one hop share the joined blocks
    for a in spec.aggregations:
        window = (a.column, a.window, a.hop)
        m = merged.get(window)
        if m is None:
            m = merged[window] = _merge_window(spec, parts, a, t, joined, fields[window])
        columns.append(m.finalize(a.function))
    return [list(row) for row in zip(*columns, strict=True)] if columns else [[] for _ in blobs]


def _merge_window(
    spec: TileSpec,
    parts: list[RecordView],
    a: TileAggregation,
    t: int,
    joined: dict[tuple[int, str], KeyTiles],
    fields: frozenset[str],
) -> Merged:
    lifetime = a.window is None
    if a.window is None or a.hop is None:
        hop = spec.lifetime_hop
        assert hop is not None
        first, last = -(2**63), tile_index(t, hop)
    else:
        hop = a.hop
        tiles = window_tiles(t, a.window, a.hop)
        first, last = tiles.start, tiles.stop - 1
    tiles_of = joined.get((hop, a.column))
    if tiles_of is None:
        tiles_of = joined[(hop, a.column)] = KeyTiles([p.tiles.get(hop, {}).get(a.column) for p in parts])
    extras = [i for i, p in enumerate(parts) if p.pending or (lifetime and p.base)]
    m = tiles_of.merge(first, last, ALL_FIELDS if extras else fields)  # merging more takes whole partials
    for i in extras:
        p = parts[i]
        extra = [s[a.column] for ts, s in p.pending if a.column in s and in_window(ts, t, a.window, a.hop)]
        if lifetime and a.column in p.base:
            extra.append(p.base[a.column])
        if extra:
            m.put(i, merge_all([m.partial(i), *extra]))
    return m


def seen(spec: TileSpec, blob: bytes, t: int) -> bool:
    """Whether a stored record still counts as a seen key at t (within the retention of its last write)."""
    span = spec.seen_span
    return span is None or written_at(blob) + span >= t


def group_events(keys: Iterable[bytes], events: Iterable[Event]) -> dict[bytes, list[Event]]:
    out: dict[bytes, list[Event]] = {}
    for key, ev in zip(keys, events, strict=True):
        out.setdefault(key, []).append(ev)
    return out
