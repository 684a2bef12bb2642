"""The Spark engine's aggregation views: each key's tiles rebuilt by the executors from its events.

The driver raises the view's backfill watermark and fixes the scan's bounds and the write time
(`materialize.tiles.plan_backfill`, as the local engine does). One Spark job then scans the
events any window at the watermark can reach (the offline store's event scan, `sql/events.py`),
hash-partitions them by the join keys and sorts each partition by key and source position, so
every key's events are in one task, in offline order; each task rebuilds and writes its keys'
tiles (`spark/tile_task.py`). The runner records the interval only after the job, every
partition, succeeded.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from potluck.definitions import FeatureView
from potluck.definitions.errors import RetrievalError
from potluck.materialize.spark.job import run_tasks, spark_cause
from potluck.materialize.spark.tile_task import TileTask
from potluck.materialize.tiles import plan_backfill
from potluck.offline.protocol import ViewQuery
from potluck.online.protocol import OnlineStore, OnlineView

if TYPE_CHECKING:
    from potluck.materialize.spark.engine import SparkEngine

log = logging.getLogger("potluck.materialize")
_POSITION = "__potluck_event_pos"


def write_tiles(
    engine: SparkEngine,
    view: FeatureView,
    query: ViewQuery,
    target: OnlineView,
    online: OnlineStore,
    end: datetime,
    *,
    batch_rows: int,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Backfill the tiles of `view` up to `end` from the executors; returns the events read."""
    from pyspark.sql import functions as F

    if batch_rows < 1:
        raise ValueError("batch_rows must be at least 1")
    plan = plan_backfill(view, target, online, end)
    store = engine.store
    temp: list[str] = []
    try:
        try:
            frame = store.sql(store.events_query(query, plan.start, plan.end, temp, position=_POSITION))
        except Exception as err:
            raise RetrievalError(f"materialize '{view.name}': Spark refused the query: {spark_cause(err)}") from None
        keys = [F.col(f"`{k}`") for k in query.join_keys]
        grouped = (
            frame.repartition(engine.config.partitions, *keys) if engine.config.partitions else frame.repartition(*keys)
        )
        grouped = grouped.sortWithinPartitions(*keys, F.col(_POSITION))
        progress = store.spark.sparkContext.accumulator(0)
        # A copy without the driver's cached helpers: each worker derives its own encoders.
        task = TileTask(
            engine.repo_config, dataclasses.replace(target), plan.marks, plan.now, batch_rows, _POSITION,
            progress, engine.task_hook,
        )  # fmt: skip
        log.info("materialize '%s': Spark tile job started", view.name)
        results = run_tasks(grouped, task, view.name, progress, on_progress)
    finally:
        store.drop_views(temp)
    read = sum(int(r["rows_read"]) for r in results)
    keys_written = sum(int(r["rows"]) for r in results)
    log.info(
        "materialize '%s': tiles of %d keys from %d events, by %d Spark tasks",
        view.name, keys_written, read, len(results),
    )  # fmt: skip
    return read
