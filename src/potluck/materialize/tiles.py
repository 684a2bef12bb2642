"""Materialize of an aggregation view: its online tiles backfilled from the batch source.

The run raises the view's watermark to `end` (`tile_feed.set_watermarks`), then scans the batch
source's events that any window at `end` can reach (the longest window plus one hop before the
watermark; every event for a lifetime aggregation), key by key, and rebuilds each key's tiles up to
the watermark (`tile_feed.backfill`). Pushes count only after the watermark, so no event is counted
twice. A view that pushes can feed (a push source) gets a watermark on a hop boundary at or before
`end`, so no tile mixes batch and pushed events; events of its batch source after that boundary are
expected from pushes. A view no push can feed gets `end` itself. Rerunning (e.g. after a crash)
rebuilds the same tiles.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from potluck.aggregation.online_tiles import Event
from potluck.definitions import FeatureView
from potluck.definitions.errors import RetrievalError
from potluck.definitions.sources import PushSource
from potluck.offline.protocol import OfflineStore, SupportsEventScan
from potluck.online.protocol import OnlineStore, OnlineView
from potluck.retrieval.plans import full_view_query
from potluck.streaming import tile_feed
from potluck.streaming.tile_feed import backfill, events_from_table, set_watermarks

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _us(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(microseconds=1)


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
    """Backfill the tiles of one aggregation view up to `end`; returns the events read."""
    spec = target.tiles
    assert spec is not None
    if not isinstance(offline, SupportsEventScan):
        raise RetrievalError(
            f"materialize '{view.name}': the offline store {type(offline).__name__} cannot scan events for tiles"
        )
    exact = not isinstance(view.source, PushSource)
    marks = set_watermarks(online, target, spec, _us(end), exact=exact)
    upper = max(marks.values(), default=_us(end))  # a rerun of an older end still fills up to the mark
    retention = spec.retention_us
    start = None if retention is None else _EPOCH + timedelta(microseconds=upper - retention - max(spec.groups))
    now = max(tile_feed.now_micros(), upper)
    scanned = 0
    keys: list[bytes] = []
    events: list[Event] = []

    def flush(upto: int) -> None:
        if upto:
            backfill(online, target, spec, keys[:upto], events[:upto], marks=marks, now=now)
            del keys[:upto], events[:upto]

    import pyarrow as pa

    query = full_view_query(view, repo_path)
    for batch in offline.events(query, start, _EPOCH + timedelta(microseconds=upper), batch_rows):
        batch_keys, batch_events = events_from_table(target, spec, pa.Table.from_batches([batch]))
        keys += batch_keys
        events += batch_events
        scanned += batch.num_rows
        if on_progress is not None:
            on_progress(batch.num_rows)
        # Keys arrive grouped: every key but the last one of the batch is complete.
        cut = len(keys)
        while cut and keys[cut - 1] == keys[-1]:
            cut -= 1
        flush(cut)
    flush(len(keys))
    return scanned
