"""Materialize of an aggregation view: its online tiles backfilled from the batch source.

The run raises the view's watermark to `end` (`tile_feed.set_watermarks`), then scans the batch
source's events that any window at `end` can reach (the longest window plus one hop before the
watermark; every event for a lifetime aggregation), key by key, and rebuilds each key's tiles up to
the watermark (`tile_feed.backfill`). Pushes count only after the watermark, so no event is counted
twice. A view that pushes can feed (a push source) gets a watermark on a hop boundary at or before
`end`, so no tile mixes batch and pushed events; events of its batch source after that boundary are
expected from pushes. A view no push can feed gets `end` itself. Rerunning (e.g. after a crash)
rebuilds the same tiles.

`plan_backfill` and `backfill_batches` are the two halves: the first runs once per view (the
watermark and the scan's bounds), the second wherever the events are (this process, or each task
of the Spark engine on its keys' events).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from potluck.aggregation.online_tiles import Event, TileSpec
from potluck.definitions import FeatureView
from potluck.definitions.errors import RetrievalError
from potluck.definitions.sources import PushSource
from potluck.offline.protocol import OfflineStore, SupportsEventScan
from potluck.online.protocol import OnlineStore, OnlineView
from potluck.retrieval.plans import full_view_query
from potluck.streaming import tile_feed
from potluck.streaming.tile_feed import backfill, events_from_table, set_watermarks

if TYPE_CHECKING:
    import pyarrow as pa

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _us(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(microseconds=1)


@dataclass(frozen=True)
class BackfillPlan:
    """One backfill of a view: the watermarks in force, the events to scan and the write time."""

    marks: dict[int, int]
    start: datetime | None  # scan events after this (None: all of them)
    end: datetime  # ... up to this
    now: int  # the tiles' write time, in microseconds


def plan_backfill(view: FeatureView, target: OnlineView, online: OnlineStore, end: datetime) -> BackfillPlan:
    """Raise the view's watermark to `end` and return what the scan and the rebuilds use."""
    spec = target.tiles
    assert spec is not None
    exact = not isinstance(view.source, PushSource)
    marks = set_watermarks(online, target, spec, _us(end), exact=exact)
    upper = max(marks.values(), default=_us(end))  # a rerun of an older end still fills up to the mark
    retention = spec.retention_us
    start = None if retention is None else _EPOCH + timedelta(microseconds=upper - retention - max(spec.groups))
    now = max(tile_feed.now_micros(), upper)
    return BackfillPlan(marks, start, _EPOCH + timedelta(microseconds=upper), now)


def backfill_batches(
    online: OnlineStore,
    target: OnlineView,
    spec: TileSpec,
    batches: Iterable[pa.RecordBatch],
    *,
    marks: dict[int, int],
    now: int,
    batch_rows: int,
    on_written: Callable[[int], None] | None = None,
) -> tuple[int, int]:
    """Rebuild the tiles of every key in `batches` (events grouped by key, in source order within a
    key, `events_from_table`'s columns); returns (events read, entities written).

    At most `batch_rows` events are held beyond the current key's; `on_written` gets the events of
    each written group.
    """
    import pyarrow as pa

    read = written = 0
    keys: list[bytes] = []
    events: list[Event] = []

    def flush(upto: int) -> None:
        nonlocal written
        if upto:
            written += backfill(online, target, spec, keys[:upto], events[:upto], marks=marks, now=now)
            del keys[:upto], events[:upto]
            if on_written is not None:
                on_written(upto)

    for whole in batches:
        for offset in range(0, whole.num_rows, batch_rows):
            batch = whole.slice(offset, batch_rows)
            batch_keys, batch_events = events_from_table(target, spec, pa.Table.from_batches([batch]))
            keys += batch_keys
            events += batch_events
            read += batch.num_rows
            # Keys arrive grouped: every key but the last one held is complete.
            cut = len(keys)
            while cut and keys[cut - 1] == keys[-1]:
                cut -= 1
            flush(cut)
    flush(len(keys))
    return read, written


def backfill_view(
    view: FeatureView,
    target: OnlineView,
    *,
    repo_path: str,
    offline: OfflineStore,
    online: OnlineStore,
    end: datetime,
    batch_rows: int,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Backfill the tiles of one aggregation view up to `end` in this process; returns the events read."""
    spec = target.tiles
    assert spec is not None
    if not isinstance(offline, SupportsEventScan):
        raise RetrievalError(
            f"materialize '{view.name}': the offline store {type(offline).__name__} cannot scan events for tiles"
        )
    plan = plan_backfill(view, target, online, end)
    query = full_view_query(view, repo_path)
    batches = offline.events(query, plan.start, plan.end, batch_rows)
    read, _ = backfill_batches(
        online, target, spec, batches, marks=plan.marks, now=plan.now, batch_rows=batch_rows, on_written=on_progress
    )
    return read
