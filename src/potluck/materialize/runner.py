"""Materialization runs: per view, latest rows offline -> online, then the interval is recorded.

The interval is written to the registry only after the online writes returned (they are durable
when `write` returns). A run killed at any point leaves no record; running it again rewrites the
same latest rows, and newest-wins writes make that a no-op for rows already written, so the
online state equals that of one clean run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from potluck.definitions import FeatureView
from potluck.definitions.errors import RetrievalError
from potluck.materialize.local import materialize_view
from potluck.materialize.watermark import DEFAULT_MAX_CLOCK_SKEW, check_end, watermark
from potluck.offline.protocol import OfflineStore, ViewQuery
from potluck.online.protocol import OnlineStore, OnlineView
from potluck.registry.sql import SqlRegistryStore
from potluck.retrieval.plans import full_view_query, online_view
from potluck.streaming.on_demand_writes import StoredView, followups

if TYPE_CHECKING:
    import pyarrow as pa

DEFAULT_BATCH_ROWS = 50_000
log = logging.getLogger("potluck.materialize")


class BatchEngine(Protocol):
    """An engine that computes a view's latest rows and writes them to the online store itself.

    Views it does not handle (and views followed by stored on-demand views, and aggregation views
    unless it is a `TileEngine`) run on the local engine: latest rows from the offline store, written by this process.
    """

    name: str

    def handles(self, query: ViewQuery) -> bool: ...

    def write_latest(
        self,
        query: ViewQuery,
        target: OnlineView,
        start: datetime | None,
        end: datetime,
        *,
        batch_rows: int,
        on_progress: Callable[[int], None] | None = None,
    ) -> tuple[int, int]:
        """Write each key's latest row with start <= event_ts <= end, returning (rows written, rows read).

        Returns only once every row is durable; raises (naming the view) otherwise.
        """
        ...


@runtime_checkable
class TileEngine(BatchEngine, Protocol):
    """Capability: a batch engine that also backfills aggregation views' tiles itself."""

    def write_tiles(
        self,
        view: FeatureView,
        target: OnlineView,
        online: OnlineStore,
        end: datetime,
        *,
        repo_path: str,
        batch_rows: int,
        on_progress: Callable[[int], None] | None = None,
    ) -> int:
        """Backfill the view's tiles up to `end` (`materialize/tiles.py`'s rule), returning the events read.

        Returns only once every tile is written; raises (naming the view) otherwise.
        """
        ...


@dataclass(frozen=True)
class MaterializationResult:
    feature_view: str
    start: datetime | None
    end: datetime
    rows: int  # written to the online store (rows with a null join key are skipped)
    seconds: float
    rows_read: int | None = None  # latest rows per entity read from the offline store


ProgressFactory = Callable[[str], Callable[[int], None]]


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def incremental_start(
    view: FeatureView, registry: SqlRegistryStore, end: datetime, lookback: timedelta
) -> datetime | None:
    """Where an incremental run of `view` starts: its watermark, less the lookback."""
    mark = watermark(registry.materializations(view.name))
    if mark is not None:
        return mark - lookback
    if view.ttl > timedelta(0):
        return end - view.ttl
    return None


def materialize(
    views: Sequence[FeatureView],
    *,
    project: str,
    repo_path: str,
    offline: OfflineStore,
    online: OnlineStore,
    registry: SqlRegistryStore,
    start: datetime | None,
    end: datetime,
    incremental_lookback: timedelta | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: ProgressFactory | None = None,
    max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW,
    stored_for: Callable[[FeatureView], Sequence[StoredView]] | None = None,
    on_outcome: Callable[[str, BaseException | None], None] | None = None,
    engine: BatchEngine | None = None,
) -> list[MaterializationResult]:
    """Materialize each view; with `incremental_lookback` set, each view starts where it left off.

    An `end` more than `max_clock_skew` after now is refused before anything is written.
    `stored_for(view)`: the on-demand views stored at write time whose rows follow the view's
    (each slice's outputs are written after the slice, and before the interval is recorded).
    `on_outcome(view, error)` is told of each view's success (None) or failure; a failure still
    ends the run with its error. `engine`: the batch engine of the views it handles (else local).
    """
    end = utc(end)
    check_end(end, datetime.now(UTC), max_clock_skew)
    results = []
    for view in views:
        if not view.online:
            continue
        try:
            results.append(_one(view, project, repo_path, offline, online, registry, start, end,
                                incremental_lookback, batch_rows, progress, stored_for, engine))  # fmt: skip
        except Exception as err:
            if on_outcome is not None:
                on_outcome(view.name, err)
            raise
        if on_outcome is not None:
            on_outcome(view.name, None)
    return results


def _one(
    view: FeatureView,
    project: str,
    repo_path: str,
    offline: OfflineStore,
    online: OnlineStore,
    registry: SqlRegistryStore,
    start: datetime | None,
    end: datetime,
    incremental_lookback: timedelta | None,
    batch_rows: int,
    progress: ProgressFactory | None,
    stored_for: Callable[[FeatureView], Sequence[StoredView]] | None,
    engine: BatchEngine | None = None,
) -> MaterializationResult:
    view_start = (
        incremental_start(view, registry, end, incremental_lookback)
        if incremental_lookback is not None
        else (utc(start) if start is not None else None)
    )
    if view_start is not None and view_start > end:
        raise RetrievalError(f"materialize: start {view_start.isoformat()} is after end {end.isoformat()}")
    began = time.perf_counter()
    target = online_view(view, project)
    on_progress = progress(view.name) if progress else None
    if target.tiles is not None:  # an aggregation view: its tiles rebuilt from the events up to end
        online.create([target])
        read = _backfill(view, target, repo_path, offline, online, end, batch_rows, on_progress, engine)
        registry.record_materialization(view.name, view_start, end)
        seconds = time.perf_counter() - began
        return MaterializationResult(view.name, view_start, end, read, seconds, rows_read=read)
    stored = list(stored_for(view)) if stored_for is not None else []
    online.create([target, *(s.target for s in stored)])
    query = full_view_query(view, repo_path)
    if engine is not None and _engine_runs(engine, view, query, stored):
        rows, read = engine.write_latest(query, target, view_start, end, batch_rows=batch_rows, on_progress=on_progress)
        registry.record_materialization(view.name, view_start, end)
        seconds = time.perf_counter() - began
        return MaterializationResult(view.name, view_start, end, rows, seconds, rows_read=read)
    batches = _Counted(offline.latest_rows(query, view_start, end, batch_rows))
    write = _with_stored(view, online, stored) if stored else None
    rows = materialize_view(batches, online, target, batch_rows=batch_rows, on_progress=on_progress, write=write)
    registry.record_materialization(view.name, view_start, end)
    seconds = time.perf_counter() - began
    return MaterializationResult(view.name, view_start, end, rows, seconds, rows_read=batches.rows)


def _backfill(
    view: FeatureView,
    target: OnlineView,
    repo_path: str,
    offline: OfflineStore,
    online: OnlineStore,
    end: datetime,
    batch_rows: int,
    on_progress: Callable[[int], None] | None,
    engine: BatchEngine | None,
) -> int:
    """An aggregation view's tiles backfilled up to `end` by `engine` when it can, else here; events read."""
    from potluck.materialize.tiles import backfill_view

    if engine is not None:
        query = full_view_query(view, repo_path)
        if isinstance(engine, TileEngine) and engine.handles(query):
            return engine.write_tiles(
                view, target, online, end, repo_path=repo_path, batch_rows=batch_rows, on_progress=on_progress
            )
        why = "it has aggregations" if not isinstance(engine, TileEngine) else _unread(engine, query)
        log.warning("materialize '%s': runs on the local engine, not %s: %s", view.name, engine.name, why)
    return backfill_view(
        view, target, repo_path=repo_path, offline=offline, online=online, end=end, batch_rows=batch_rows,
        on_progress=on_progress,
    )  # fmt: skip


def _unread(engine: BatchEngine, query: ViewQuery) -> str:
    return f"its source '{query.source.name}' is {query.source.file_format}, which {engine.name} does not read"


def _engine_runs(engine: BatchEngine, view: FeatureView, query: ViewQuery, stored: Sequence[StoredView]) -> bool:
    """Whether `engine` materializes `view`; when it cannot, the local engine does, and the log says why."""
    if stored:
        why = "on-demand views stored at write time follow it"
    elif not engine.handles(query):
        why = _unread(engine, query)
    else:
        return True
    log.warning("materialize '%s': runs on the local engine, not %s: %s", view.name, engine.name, why)
    return False


def _with_stored(
    view: FeatureView, online: OnlineStore, stored: Sequence[StoredView]
) -> Callable[[OnlineView, pa.Table], int]:
    """A slice writer that writes the stored on-demand rows computed from the slice after it."""

    def write(target: OnlineView, rows: pa.Table) -> int:
        after = followups(view, rows, stored, online, None)
        written = online.write(target, rows)
        for follow in after:
            follow()
        return written

    return write


class _Counted:
    """Record batches passed through unchanged, counting their rows."""

    def __init__(self, batches: Iterable[pa.RecordBatch]) -> None:
        self._batches = batches
        self.rows = 0

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for batch in self._batches:
            self.rows += batch.num_rows
            yield batch
