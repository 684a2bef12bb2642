"""Online tiles of windowed aggregations: what a tile record holds, how updates merge into it and
how a read at time t finalizes it (docs/semantics.md, "Online tiles").

One record per (view, entity key), replaced by compare-and-set (`SupportsTiles`), holds:

- per hop h of the view, tiles k (covering `(k * h, (k + 1) * h]`, `rule.tile_index`), each a
  partial aggregate per aggregated column: count, sum, mean and M2 (Welford, merged by Chan's
  formula), min, max and the last value with its order key (event time, created time, arrival);
- a lifetime base per column, into which tiles older than the longest window are folded when a
  lifetime aggregation needs them;
- the idempotency marks (source positions) already applied, each with its write time;
- the time of the last write.

The view's backfill watermark (per hop: tiles before it are rebuilt from the batch source, and
pushes only count after it) is one more record under a reserved key.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson

from potluck.aggregation.rule import canonical_function, micros, tile_index, window_tiles

# The record of the view's backfill watermark: a key no entity encoding produces (they never start with 0x00 0xff).
WATERMARK_KEY = b"\x00\xffwatermark"
# The hop of the tiles that feed lifetime aggregations when the view has no windowed one.
LIFETIME_HOP = 3_600_000_000

# A partial: [count, sum, mean, m2, min, max, last_order, last_value]; last_order is
# [event_us, created_us or None, arrival_us, arrival_index].
Partial = list[Any]


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

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a.column for a in self.aggregations))

    @property
    def retention_us(self) -> int | None:
        """How long a record lives without writes: the longest window plus one hop (None: forever)."""
        if self.lifetime_columns:
            return None
        return max((h * (self.reach[h] + 1) for h in self.groups), default=0)

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
    applied: int = 0  # events merged into tiles
    late: int = 0  # events older than the longest window plus one hop: dropped
    behind_watermark: int = 0  # events at or before the backfill watermark: the batch source has them
    replayed: int = 0  # entity updates skipped because their position was already applied


# ---------------------------------------------------------------- partials


def _order(p: Partial) -> tuple[Any, ...]:
    o = p[6]
    return (o[0], -(2**63) if o[1] is None else o[1], o[2], o[3])


def new_partial(value: Any, order: list[Any]) -> Partial:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [1, value, float(value), 0.0, value, value, order, value]
    return [1, None, None, None, value, value, order, value]


def merge(a: Partial | None, b: Partial | None) -> Partial | None:
    """The partial of the union of two disjoint event sets."""
    if a is None:
        return b
    if b is None:
        return a
    n = a[0] + b[0]
    if a[1] is None or b[1] is None:
        total, mean, m2 = None, None, None
    else:
        total = a[1] + b[1]
        delta = b[2] - a[2]
        mean = a[2] + delta * b[0] / n
        m2 = a[3] + b[3] + delta * delta * a[0] * b[0] / n
    last = b if _order(b) >= _order(a) else a
    return [n, total, mean, m2, min(a[4], b[4]), max(a[5], b[5]), last[6], last[7]]


def finalize(function: str, p: Partial | None) -> Any:
    """The value of `function` over a partial (None: no non-null value in the window)."""
    if function == "count":
        return 0 if p is None else p[0]
    if p is None:
        return None
    if function == "sum":
        return p[1]
    if function == "mean":
        return p[2]
    if function == "min":
        return p[4]
    if function == "max":
        return p[5]
    if function == "last":
        return p[7]
    if p[0] < 2 or p[3] is None:
        return None
    variance = max(p[3], 0.0) / (p[0] - 1)
    return variance if function == "variance" else math.sqrt(variance)


# ---------------------------------------------------------------- records


def decode(blob: bytes | None) -> dict[str, Any]:
    if blob is None:
        return {"w": 0, "m": {}, "g": {}, "b": {}}
    record: dict[str, Any] = orjson.loads(blob)
    return record


def encode(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record)


def watermarks(blob: bytes | None) -> dict[int, int]:
    """hop -> watermark (microseconds) from the watermark record."""
    return {} if blob is None else {int(h): int(v) for h, v in orjson.loads(blob).items()}


def _expire(spec: TileSpec, record: dict[str, Any], now: int) -> None:
    """Drop tiles no read at or after `now` needs; lifetime columns fold them into the base first."""
    base = record["b"]
    for hop_text, tiles in record["g"].items():
        hop = int(hop_text)
        if hop not in spec.groups:
            continue
        first = spec.keep_from(hop, now)
        for k_text in [k for k in tiles if int(k) < first]:
            old = tiles.pop(k_text)
            if hop == spec.lifetime_hop:
                for col in spec.lifetime_columns:
                    base[col] = merge(base.get(col), old.get(col))
    retention = spec.retention_us
    marks = record["m"]
    horizon = now - (retention if retention is not None else 7 * 86_400_000_000)
    for mark in [m for m, at in marks.items() if at < horizon]:
        del marks[mark]


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
) -> bytes | None:
    """The record after merging `events` of one entity; None when `position` was already applied."""
    record = decode(blob)
    if position is not None and position in record["m"]:
        stats.replayed += 1
        return None
    _expire(spec, record, now)
    columns = spec.columns
    index = {c: i for i, c in enumerate(columns)}
    base = record["b"]
    for i, ev in enumerate(events):
        order = [ev.ts, ev.created, arrival, i]
        behind = late = False
        kept = 0  # hops whose tiles (or the lifetime base) took the event
        for hop, cols in spec.groups.items():
            if ev.ts <= marks.get(hop, -(2**63)):
                behind = True
                continue
            k = tile_index(ev.ts, hop)
            expired = k < spec.keep_from(hop, now)
            tiles = record["g"].setdefault(str(hop), {})
            kept += not expired or hop == spec.lifetime_hop
            for col in cols:
                lifetime = hop == spec.lifetime_hop and col in spec.lifetime_columns
                if expired and not lifetime:
                    late = True
                    continue
                value = ev.values[index[col]]
                if value is None:
                    continue
                if expired:
                    base[col] = merge(base.get(col), new_partial(value, order))
                else:
                    tile = tiles.setdefault(str(k), {})
                    tile[col] = merge(tile.get(col), new_partial(value, order))
        if behind:
            stats.behind_watermark += 1
        elif late and not kept:
            stats.late += 1
        else:
            stats.applied += 1
    if position is not None:
        record["m"][position] = now
    record["w"] = now
    return encode(record)


def rebuild(spec: TileSpec, blob: bytes | None, events: Sequence[Event], *, marks: dict[int, int], now: int) -> bytes:
    """The record with every tile before each hop's watermark rebuilt from `events` (the batch
    source's events of the entity up to the watermark); tiles from the watermark on are kept."""
    record = decode(blob)
    fresh = decode(None)
    stats = UpdateStats()
    # Built as pushes into an empty record (no watermark), then spliced in below each watermark.
    built = decode(apply_events(spec, None, events, now=now, position=None, marks={}, arrival=0, stats=stats))
    for hop in spec.groups:
        first_kept = marks.get(hop, -(2**63)) // hop  # tiles k >= this start after the watermark
        old = record["g"].get(str(hop), {})
        new = {k: v for k, v in built["g"].get(str(hop), {}).items() if int(k) < first_kept}
        new.update({k: v for k, v in old.items() if int(k) >= first_kept})
        fresh["g"][str(hop)] = new
    fresh["b"] = built["b"]
    fresh["m"] = record["m"]
    fresh["w"] = now
    _expire(spec, fresh, now)
    return encode(fresh)


def read_values(spec: TileSpec, blob: bytes, t: int) -> list[Any]:
    """The value of every aggregation of the spec at time t (aggregation order)."""
    record = decode(blob)
    groups = record["g"]
    out: list[Any] = []
    for a in spec.aggregations:
        if a.window is None or a.hop is None:
            hop = spec.lifetime_hop
            assert hop is not None
            tiles = groups.get(str(hop), {})
            head = tile_index(t, hop)
            p = record["b"].get(a.column)
            for k_text, tile in tiles.items():
                if int(k_text) <= head:
                    p = merge(p, tile.get(a.column))
        else:
            tiles = groups.get(str(a.hop), {})
            p = None
            for k in window_tiles(t, a.window, a.hop):
                tile = tiles.get(str(k))
                if tile is not None:
                    p = merge(p, tile.get(a.column))
        out.append(finalize(a.function, p))
    return out


def seen(spec: TileSpec, blob: bytes, t: int) -> bool:
    """Whether a stored record still counts as a seen key at t (within the retention of its last write)."""
    retention = spec.retention_us
    if retention is None:
        return True
    return bool(decode(blob)["w"] + retention + max(spec.groups) >= t)


def group_events(keys: Iterable[bytes], events: Iterable[Event]) -> dict[bytes, list[Event]]:
    out: dict[bytes, list[Event]] = {}
    for key, ev in zip(keys, events, strict=True):
        out.setdefault(key, []).append(ev)
    return out
