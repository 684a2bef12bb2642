"""A daily feature pipeline on Potluck (Airflow 3.x; `pip install 'potluck[airflow,monitoring]'`).

    validate_sources -> materialize -> wait_until_fresh -> validate_online -> monitor

Each run covers its data interval (the previous day, UTC): the sources must exist, match the
registered definitions and hold rows for the day; materialization continues from each view's
watermark up to the interval's end; the online store must then serve what the offline store says
for sampled keys; last, drift against the saved baselines and each view's staleness are checked.
Every task is safe to retry, and each pushes a summary to XCom (its return value; a failed check
pushes it under the key `summary` and fails without retries).

The feature repository: the Airflow Variable `potluck_repo_path`, else the environment variable
POTLUCK_REPO_PATH, else the path written below by `potluck init --airflow`.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, chain

try:
    from airflow.sdk import CronDataIntervalTimetable
except ImportError:  # Airflow 3.0
    from airflow.timetables.interval import CronDataIntervalTimetable

from potluck.integrations.airflow import (
    PotluckFreshnessSensor,
    PotluckMaterializeOperator,
    PotluckMonitorOperator,
    PotluckValidateOnlineOperator,
    PotluckValidateSourcesOperator,
)

DEFAULT_REPO_PATH = os.environ.get("POTLUCK_REPO_PATH", "")
# Rendered when each task runs, so the Variable is not read while the scheduler parses this file.
REPO_PATH = "{{ var.value.get('potluck_repo_path', params.repo_path) }}"
MAX_STALENESS = "36h"  # one daily interval, plus half a day for a late run

with DAG(
    dag_id="potluck_feature_pipeline",
    description="Validate sources, materialize incrementally, validate the online store, monitor",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,  # incremental runs go in order
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    params={"repo_path": DEFAULT_REPO_PATH},
    tags=["potluck", "features"],
) as dag:
    validate_sources = PotluckValidateSourcesOperator(task_id="validate_sources", repo_path=REPO_PATH, min_rows=1)
    materialize = PotluckMaterializeOperator(task_id="materialize", repo_path=REPO_PATH, incremental=True)
    wait_until_fresh = PotluckFreshnessSensor(
        task_id="wait_until_fresh",
        repo_path=REPO_PATH,
        max_staleness=MAX_STALENESS,
        poke_interval=60,
        timeout=2 * 3600,
    )
    validate_online = PotluckValidateOnlineOperator(
        task_id="validate_online", repo_path=REPO_PATH, sample=100, seed=0, tolerance=1e-6
    )
    monitor = PotluckMonitorOperator(
        task_id="monitor", repo_path=REPO_PATH, max_staleness=MAX_STALENESS, fail_on_drift=True
    )
    chain(validate_sources, materialize, wait_until_fresh, validate_online, monitor)
