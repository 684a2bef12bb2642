"""What every Potluck task shares: opening the repository, the run's interval, turning a step's outcome
into Airflow's (summary to XCom, a failed check as a failure without retries)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from potluck.definitions.durations import parse_duration
from potluck.definitions.errors import ConfigError
from potluck.integrations.steps import CheckFailed, Interval, StepError

if TYPE_CHECKING:
    from potluck.store import FeatureStore

REPO_ENV = "POTLUCK_REPO_PATH"
SUMMARY_KEY = "summary"


def _exceptions() -> tuple[type[Exception], type[Exception]]:
    """Airflow's (failure, failure without retries) exceptions, where this 3.x release keeps them."""
    try:
        from airflow.sdk.exceptions import AirflowException, AirflowFailException
    except ImportError:  # pragma: no cover - Airflow 3.0
        from airflow.exceptions import AirflowException, AirflowFailException
    return AirflowException, AirflowFailException


def open_store(task: str, repo_path: str | None, fs_yaml_file: str | None) -> FeatureStore:
    from potluck.store import FeatureStore

    path = repo_path or os.environ.get(REPO_ENV)
    if not path:
        raise ConfigError(
            f"task '{task}': no feature repository; pass repo_path=, or set the environment variable {REPO_ENV} "
            "(the example DAG also reads the Airflow Variable potluck_repo_path)"
        )
    return FeatureStore(repo_path=path, fs_yaml_file=fs_yaml_file or None)


def interval_of(context: Mapping[str, Any]) -> Interval:
    """The DAG run's data interval; a run without one (a trigger timetable) covers [run time, run time]."""
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start is None or end is None:
        dag_run = context.get("dag_run")
        moment = getattr(dag_run, "run_after", None) or context.get("logical_date")
        if moment is None:
            raise ConfigError("the DAG run has neither a data interval nor a run time; trigger it with a logical date")
        start = end = moment
    return Interval.of(start, end)


def duration(value: timedelta | str | None, what: str) -> timedelta | None:
    if value is None or isinstance(value, timedelta):
        return value
    try:
        return parse_duration(value)
    except Exception as err:
        raise ConfigError(f"{what}: {err}") from None


def run_step(task: Any, context: Mapping[str, Any], step: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run `step`; log and return its summary, or push it under XCom key `summary` and fail the task."""
    failure, no_retry = _exceptions()
    try:
        summary = step()
    except StepError as err:
        task.log.error("%s\nsummary: %s", err, json.dumps(err.summary, default=str))
        ti = context.get("ti")
        if ti is not None:
            ti.xcom_push(key=SUMMARY_KEY, value=err.summary)
        raise (no_retry if isinstance(err, CheckFailed) else failure)(str(err)) from None
    task.log.info("summary: %s", json.dumps(summary, default=str))
    return summary
