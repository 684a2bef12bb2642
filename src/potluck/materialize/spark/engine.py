"""The Spark engine's driver side: one Spark job per view, recorded by the runner once it succeeded."""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from potluck.definitions.errors import RetrievalError
from potluck.materialize.spark import sources
from potluck.materialize.spark.executor import RESULT_SCHEMA, TaskHook, WriteTask
from potluck.offline.protocol import ViewQuery
from potluck.offline.sql import SPARK, latest_rows_sql
from potluck.online.protocol import OnlineView

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from potluck.repo.config import RepoConfig, SparkEngineConfig

log = logging.getLogger("potluck.materialize")
_PROGRESS_SECONDS = 0.5
_ERROR_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception)): (.+)$")


class SparkEngine:
    """Materializes views whose source Spark reads (Parquet files); the runner asks `handles` first."""

    name = "spark.engine"

    def __init__(self, config: SparkEngineConfig, repo_config: RepoConfig, *, task_hook: TaskHook | None = None):
        self.config = config
        self.repo_config = repo_config
        self.task_hook = task_hook  # for tests and instrumentation; runs in the executors
        self._session: SparkSession | None = None

    @property
    def session(self) -> SparkSession:
        if self._session is None:
            from potluck.materialize.spark.session import engine_session

            self._session = engine_session(self.config.spark_conf)
        return self._session

    def handles(self, query: ViewQuery) -> bool:
        return sources.readable(query)

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
        session = self.session
        source = sources.source_input(session, query)
        if source is None:
            return 0, 0
        sql = latest_rows_sql(SPARK, query, source, _aware(start), _utc(end))
        try:
            frame = session.sql(sql.text, args=list(sql.params))
        except Exception as err:
            raise RetrievalError(f"materialize '{query.view_name}': Spark refused the query: {_cause(err)}") from None
        if self.config.partitions:
            frame = frame.repartition(self.config.partitions)
        progress = session.sparkContext.accumulator(0)
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


def _aware(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


def _utc(value: datetime) -> datetime:
    """A UTC instant: Spark reads a naive datetime parameter in the machine's local time zone."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


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
