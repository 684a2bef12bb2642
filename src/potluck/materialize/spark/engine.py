"""The Spark engine's driver side: one Spark job per view, recorded by the runner once it succeeded."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from potluck.definitions import FeatureView
from potluck.definitions.errors import RetrievalError
from potluck.materialize.spark.executor import TaskHook, WriteTask
from potluck.materialize.spark.job import run_tasks, spark_cause
from potluck.offline.protocol import OfflineStore, ViewQuery
from potluck.offline.sql import Sql
from potluck.online.protocol import OnlineStore, OnlineView
from potluck.retrieval.plans import full_view_query

if TYPE_CHECKING:
    from potluck.offline.spark_store import SparkOfflineStore
    from potluck.repo.config import RepoConfig, SparkEngineConfig

log = logging.getLogger("potluck.materialize")
# Source kinds Spark reads: files of these formats, tables and queries (`offline/spark_sources.py`).
_FILE_FORMATS = ("parquet", "csv", "json", "avro")


class SparkEngine:
    """Materializes the views whose source Spark reads; the runner asks `handles` first.

    Sources are read, and the latest-rows query built, by the Spark offline store: the configured
    one when `offline_store.type` is spark, else one over the same (active or new) Spark session.
    """

    name = "spark.engine"

    def __init__(
        self,
        config: SparkEngineConfig,
        repo_config: RepoConfig,
        *,
        offline: OfflineStore | None = None,
        task_hook: TaskHook | None = None,
    ) -> None:
        self.config = config
        self.repo_config = repo_config
        self.task_hook = task_hook  # for tests and instrumentation; runs in the executors
        self._offline = offline
        self._store: SparkOfflineStore | None = None

    @property
    def store(self) -> SparkOfflineStore:
        if self._store is None:
            from potluck.offline.spark_config import SparkOfflineStoreConfig
            from potluck.offline.spark_store import SparkOfflineStore

            if isinstance(self._offline, SparkOfflineStore):
                self._store = self._offline
            else:
                self._store = SparkOfflineStore(SparkOfflineStoreConfig(spark_conf=dict(self.config.spark_conf)))
        return self._store

    def handles(self, query: ViewQuery) -> bool:
        source = query.source
        return bool(source.table or source.query) or source.file_format in _FILE_FORMATS

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
        """Write each key's latest row with start <= event_ts <= end from the executors; (written, read)."""
        store = self.store
        temp: list[str] = []
        try:
            return self._run(
                store, store.latest_rows_query(query, start, end, temp), query, target, batch_rows, on_progress
            )
        finally:
            store.drop_views(temp)

    def _run(
        self,
        store: SparkOfflineStore,
        sql: Sql,
        query: ViewQuery,
        target: OnlineView,
        batch_rows: int,
        on_progress: Callable[[int], None] | None,
    ) -> tuple[int, int]:
        try:
            frame = store.sql(sql)
        except Exception as err:
            raise RetrievalError(
                f"materialize '{query.view_name}': Spark refused the query: {spark_cause(err)}"
            ) from None
        frame = _spread(frame, self.config.partitions, store.spark)
        progress = store.spark.sparkContext.accumulator(0)
        # A copy without the driver's cached helpers: each worker derives its own encoders.
        task = WriteTask(self.repo_config, dataclasses.replace(target), batch_rows, progress, self.task_hook)
        log.info(
            "materialize '%s': Spark job started (%s partitions)", query.view_name, self.config.partitions or "auto"
        )
        results = run_tasks(frame, task, query.view_name, progress, on_progress)
        written = sum(int(r["rows"]) for r in results)
        read = sum(int(r["rows_read"]) for r in results)
        log.info("materialize '%s': %d rows written by %d Spark tasks", query.view_name, written, len(results))
        return written, read

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
        """Backfill an aggregation view's tiles up to `end` from the executors (`spark/tiles.py`); events read."""
        from potluck.materialize.spark.tiles import write_tiles

        query = full_view_query(view, repo_path)
        return write_tiles(self, view, query, target, online, end, batch_rows=batch_rows, on_progress=on_progress)

    def close(self) -> None:
        """Nothing to release: the SparkContext is shared and outlives the engine."""


def _spread(frame: Any, partitions: int, spark: Any) -> Any:
    """`frame` written by `partitions` tasks (0: as the plan leaves it). The latest rows come out of
    one shuffle into `spark.sql.shuffle.partitions` partitions: up to that many, they are merged
    without another shuffle (`coalesce`); more take a second, round-robin one."""
    if not partitions:
        return frame
    shuffled = int(spark.conf.get("spark.sql.shuffle.partitions", "200"))
    return frame.coalesce(partitions) if partitions <= shuffled else frame.repartition(partitions)
