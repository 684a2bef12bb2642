"""The Spark engine's driver side: one Spark job per view, recorded by the runner once it succeeded."""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from potluck.definitions.errors import RetrievalError
from potluck.materialize.spark.executor import RESULT_SCHEMA, TaskHook, WriteTask
from potluck.offline.protocol import OfflineStore, ViewQuery
from potluck.offline.sql import Sql
from potluck.online.protocol import OnlineView

if TYPE_CHECKING:
    from potluck.offline.spark_store import SparkOfflineStore
    from potluck.repo.config import RepoConfig, SparkEngineConfig

log = logging.getLogger("potluck.materialize")
_PROGRESS_SECONDS = 0.5
_ERROR_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception)): (.+)$")
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
            raise RetrievalError(f"materialize '{query.view_name}': Spark refused the query: {_cause(err)}") from None
        frame = _spread(frame, self.config.partitions, store.spark)
        progress = store.spark.sparkContext.accumulator(0)
        # A copy without the driver's cached helpers: each worker derives its own encoders.
        task = WriteTask(self.repo_config, dataclasses.replace(target), batch_rows, progress, self.task_hook)
        log.info(
            "materialize '%s': Spark job started (%s partitions)", query.view_name, self.config.partitions or "auto"
        )
        stop = threading.Event()
        reporter = None
        if on_progress is not None:
            reporter = threading.Thread(target=_report, args=(progress, on_progress, stop), daemon=True)
            reporter.start()
        try:
            results = frame.mapInArrow(task, RESULT_SCHEMA).collect()
        except Exception as err:
            raise RetrievalError(
                f"materialize '{query.view_name}': the Spark job failed, nothing was recorded: {_cause(err)}"
            ) from None
        finally:
            stop.set()
            if reporter is not None:
                reporter.join()
        written = sum(int(r["rows"]) for r in results)
        read = sum(int(r["rows_read"]) for r in results)
        log.info("materialize '%s': %d rows written by %d Spark tasks", query.view_name, written, len(results))
        return written, read

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


def _report(progress: Any, on_progress: Callable[[int], None], stop: threading.Event) -> None:
    """Pass the rows the executors reported (as their tasks end) to `on_progress`, until `stop`."""
    seen = 0
    while True:
        done = stop.wait(_PROGRESS_SECONDS)
        value = int(progress.value)
        if value > seen:
            on_progress(value - seen)
            seen = value
        if done:
            return


def _cause(err: BaseException) -> str:
    """The root cause of a Spark error in one line (the last `XError: message` line of its text)."""
    text = str(err)
    if "No module named 'potluck'" in text or "No module named 'pyarrow'" in text:
        return (
            "the executors' Python cannot import potluck or pyarrow; set spark.pyspark.python (or PYSPARK_PYTHON) "
            "to an interpreter with potluck installed"
        )
    found = [m for m in (_ERROR_LINE.match(line) for line in text.splitlines()) if m]
    if found:
        return f"{found[-1].group(1).rsplit('.', 1)[-1]}: {found[-1].group(2)}"
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0].strip() if lines else type(err).__name__
