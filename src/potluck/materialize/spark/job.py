"""Running one materialization job of the Spark engine: tasks over a DataFrame's partitions, their
progress passed on while they run, and a failure turned into one error naming the view."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

from potluck.definitions.errors import RetrievalError
from potluck.materialize.spark.executor import RESULT_SCHEMA

_PROGRESS_SECONDS = 0.5
_ERROR_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception)): (.+)$")


def run_tasks(
    frame: Any,
    task: Callable[..., Any],
    view_name: str,
    progress: Any,
    on_progress: Callable[[int], None] | None,
) -> list[Any]:
    """`task` over every partition of `frame` (`mapInArrow`, one `RESULT_SCHEMA` row per task);
    `progress` is the accumulator the tasks add to. Returns once every task succeeded."""
    stop = threading.Event()
    reporter = None
    if on_progress is not None:
        reporter = threading.Thread(target=_report, args=(progress, on_progress, stop), daemon=True)
        reporter.start()
    try:
        rows: list[Any] = frame.mapInArrow(task, RESULT_SCHEMA).collect()
        return rows
    except Exception as err:
        raise RetrievalError(
            f"materialize '{view_name}': the Spark job failed, nothing was recorded: {spark_cause(err)}"
        ) from None
    finally:
        stop.set()
        if reporter is not None:
            reporter.join()


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


def spark_cause(err: BaseException) -> str:
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
