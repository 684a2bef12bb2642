"""The example DAG run by Airflow itself (`airflow dags test`, SQLite metadata database), on the demo
repository: every task succeeds and its summary is in XCom; a planted online value fails the online check.

Airflow lives in its own virtual environment (tests/airflow_support.py); this process only reads the
results: the online store through Potluck, the task states and XComs from Airflow's SQLite database.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pipeline_support import FEATURES, KEY, TTL, latest_in, rows_in

from airflow_support import airflow_env
from potluck import FeatureStore
from potluck.integrations.steps import Interval, sample_keys

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # the first test installs Airflow (minutes)
DAG_ID = "potluck_feature_pipeline"
TASKS = ["validate_sources", "materialize", "wait_until_fresh", "validate_online", "monitor"]


@dataclass
class Pipeline:
    airflow: Path
    home: Path
    dags: Path
    repo: Path
    start: datetime
    end: datetime

    def run(self, logical_date: datetime, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.airflow), "dags", "test", DAG_ID, logical_date.isoformat()],
            check=False,
            capture_output=True,
            text=True,
            env=airflow_env(self.home, self.dags, **env),
            timeout=600,
        )

    def tasks(self, logical_date: datetime) -> dict[str, str]:
        with sqlite3.connect(self.home / "airflow.db") as db:
            rows = db.execute(
                "SELECT ti.task_id, ti.state FROM task_instance ti JOIN dag_run dr ON dr.run_id = ti.run_id "
                "AND dr.dag_id = ti.dag_id WHERE dr.dag_id = ? AND dr.logical_date = ?",
                (DAG_ID, _db_time(logical_date)),
            ).fetchall()
        return dict(rows)

    def xcoms(self, logical_date: datetime, key: str = "return_value") -> dict[str, Any]:
        with sqlite3.connect(self.home / "airflow.db") as db:
            rows = db.execute(
                "SELECT x.task_id, x.value FROM xcom x JOIN dag_run dr ON dr.id = x.dag_run_id "
                "WHERE dr.dag_id = ? AND dr.logical_date = ? AND x.key = ?",
                (DAG_ID, _db_time(logical_date), key),
            ).fetchall()
        return {task: json.loads(value) for task, value in rows}


def _db_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _potluck(*args: str, cwd: Path) -> None:
    subprocess.run([sys.executable, "-m", "potluck.cli", *args], check=True, cwd=cwd, capture_output=True)


@pytest.fixture(scope="module")
def pipeline(airflow_command: Path, tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    airflow = airflow_command
    root = tmp_path_factory.mktemp("airflow")
    home, dags = root / "home", root / "dags"
    home.mkdir()
    dags.mkdir()
    _potluck("init", "demo", "--airflow", cwd=root)
    repo = root / "demo"
    _potluck("apply", cwd=repo)
    shutil.copy(repo / "airflow" / "potluck_feature_pipeline.py", dags)  # it names this repository
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    store = FeatureStore(repo_path=repo)
    baseline = store.compute_statistics("user_stats", end - timedelta(days=8), end - timedelta(days=1))
    store.set_baseline("user_stats_week", baseline)  # so the monitor task checks drift, not only freshness
    store.close()
    migrate = subprocess.run(
        [str(airflow), "db", "migrate"], check=False, capture_output=True, text=True,
        env=airflow_env(home, dags), timeout=600,
    )  # fmt: skip
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
    return Pipeline(airflow, home, dags, repo, end - timedelta(days=1), end)


def test_example_dag_runs_every_task(pipeline: Pipeline) -> None:
    logical = pipeline.end + timedelta(hours=1)  # a daily run's data interval: the day before
    result = pipeline.run(logical)
    log = result.stdout + result.stderr
    (pipeline.home / "example-run.log").write_text(log)
    assert result.returncode == 0, log[-5000:]
    assert pipeline.tasks(logical) == dict.fromkeys(TASKS, "success")
    xcom = pipeline.xcoms(logical)
    assert set(xcom) == set(TASKS)

    sources = xcom["validate_sources"]
    assert (sources["start"], sources["end"]) == (pipeline.start.isoformat(), pipeline.end.isoformat())
    counted = {v["view"]: v["rows"] for v in sources["views"]}
    assert counted == {v: rows_in(pipeline.repo, v, pipeline.start, pipeline.end) for v in TTL}

    materialized = {v["view"]: v for v in xcom["materialize"]["views"]}
    assert xcom["materialize"]["mode"] == "incremental"
    store = FeatureStore(repo_path=pipeline.repo)
    now = datetime.now(UTC)
    for view, ttl in TTL.items():
        expected = latest_in(pipeline.repo, view, pipeline.end - ttl, pipeline.end)  # first run: from end - ttl
        assert materialized[view]["rows"] == len(expected)
        assert materialized[view]["end"] == pipeline.end.isoformat()
        keys = [int(k) for k in expected.index]
        online = store.get_online_features([f"{view}:{f}" for f in FEATURES[view]], {KEY[view]: keys}).to_dict()
        checked = 0
        for i, key in enumerate(keys):
            row = expected.loc[key]
            age = now - row["event_timestamp"].to_pydatetime()
            if row["tied"] or age > ttl - timedelta(minutes=5):
                continue  # a tie broken by position, or expired (or about to) at read time
            for feature in FEATURES[view]:
                want, have = row[feature], online[feature][i]
                if pd.isna(want):
                    assert have is None, (view, key, feature)
                elif isinstance(want, float):
                    assert have == pytest.approx(want, rel=1e-6), (view, key, feature)
                else:
                    assert have == want, (view, key, feature)
            checked += 1
        assert checked > len(keys) // 3
    store.close()

    assert [v["status"] for v in xcom["wait_until_fresh"]["views"]] == ["ok", "ok"]
    online = xcom["validate_online"]
    assert online["ok"]
    assert online["differing"] == 0
    assert online["compared"] == sum(min(100, len(latest_in(pipeline.repo, v, pipeline.start, pipeline.end)))
                                     * len(FEATURES[v]) for v in TTL)  # fmt: skip
    monitor = xcom["monitor"]
    assert monitor["baselines_checked"]
    assert monitor["features_checked"] == 4
    assert not monitor["drift"]
    assert monitor["stale"] == []


def test_validate_online_fails_on_a_planted_online_value(pipeline: Pipeline) -> None:
    store = FeatureStore(repo_path=pipeline.repo)
    interval = Interval.of(pipeline.start, pipeline.end)
    if not store.freshness() or any(f.materialized_until is None for f in store.freshness()):
        store.materialize_incremental(pipeline.end)  # when run alone: the state the first run leaves
    sampled = sample_keys(store, store.get_feature_view("user_stats"), interval, 100, 0).column("user_id").to_pylist()
    latest = latest_in(pipeline.repo, "user_stats", pipeline.end - TTL["user_stats"], pipeline.end)
    key = next(k for k in sampled if latest.loc[k, "event_timestamp"] < pipeline.end - timedelta(minutes=1))
    row = latest.loc[key]
    wrong = int(row["txn_count_7d"]) + 1000
    store.write_to_online_store(
        "user_stats",
        {
            "user_id": [key],
            "event_timestamp": [pipeline.end - timedelta(seconds=30)],
            "created": [pipeline.end],
            "txn_count_7d": [wrong],
            "avg_amount_30d": [row["avg_amount_30d"]],
            "country": [row["country"]],
            "is_premium": [bool(row["is_premium"])],
        },
    )  # fmt: skip  -- an online-only write: the offline store never saw it
    store.close()

    logical = pipeline.end + timedelta(hours=2)  # another run over the same day; the repository from the Variable
    result = pipeline.run(logical, AIRFLOW_VAR_POTLUCK_REPO_PATH=str(pipeline.repo))
    log = result.stdout + result.stderr
    (pipeline.home / "failed-run.log").write_text(log)
    assert result.returncode != 0
    assert pipeline.tasks(logical) == {
        "validate_sources": "success", "materialize": "success", "wait_until_fresh": "success",
        "validate_online": "failed", "monitor": "upstream_failed",
    }  # fmt: skip
    assert f"user_stats:txn_count_7d for user_id={key}: mismatch: online {wrong}" in log
    summary = pipeline.xcoms(logical, key="summary")["validate_online"]
    assert summary["ok"] is False
    assert summary["differing"] == 1
    example = summary["examples"][0]
    assert (example["view"], example["feature"], example["keys"]) == ("user_stats", "txn_count_7d", {"user_id": key})
    assert (example["online"], example["offline"]) == (wrong, int(row["txn_count_7d"]))
