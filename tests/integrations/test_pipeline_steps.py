"""The orchestrator steps (`potluck.integrations.steps`) on the demo repository, against brute-force answers."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pipeline_support import FEATURES, KEY, TTL, day_interval, demo_store, latest_in, rows_in

from potluck import FeatureStore
from potluck.integrations.steps import (
    CheckFailed,
    Interval,
    StepError,
    freshness_status,
    materialize_interval,
    monitor_step,
    sample_keys,
    validate_online,
    validate_sources,
)


@pytest.fixture
def demo(tmp_path: Path) -> FeatureStore:
    return demo_store(tmp_path / "demo")


def test_validate_sources_counts_the_interval_rows(demo: FeatureStore) -> None:
    start, end = day_interval()
    summary = validate_sources(demo, Interval.of(start, end))
    assert summary["ok"]
    counted = {v["view"]: v["rows"] for v in summary["views"]}
    assert counted == {v: rows_in(demo.repo_path, v, start, end) for v in TTL}
    assert all(n > 0 for n in counted.values())


def test_validate_sources_reports_every_problem(demo: FeatureStore) -> None:
    start, end = day_interval()
    data = demo.repo_path / "data"
    table = pq.read_table(data / "user_stats.parquet")
    retyped = table.set_column(table.schema.get_field_index("txn_count_7d"), "txn_count_7d", pa.array(
        [str(v) for v in table.column("txn_count_7d").to_pylist()]))  # fmt: skip
    pq.write_table(retyped, data / "user_stats.parquet")
    (data / "merchant_stats.parquet").rename(data / "moved.parquet")
    with pytest.raises(CheckFailed) as failed:
        validate_sources(demo, Interval.of(start, end))
    report = str(failed.value)
    assert "field 'txn_count_7d' is declared Int64" in report
    assert "user_stats_source" in report
    assert "merchant_stats_source" in report
    assert "does not exist" in report
    assert failed.value.summary["ok"] is False
    assert len(failed.value.summary["problems"]) == 2


def test_validate_sources_needs_fresh_rows(demo: FeatureStore) -> None:
    future = datetime.now(UTC) + timedelta(days=3)
    with pytest.raises(CheckFailed) as failed:
        validate_sources(demo, Interval.of(future, future + timedelta(days=1)), ["user_stats"])
    assert "feature view 'user_stats': source 'user_stats_source' has 0 row(s)" in str(failed.value)
    start, end = day_interval()
    needed = rows_in(demo.repo_path, "user_stats", start, end)
    validate_sources(demo, Interval.of(start, end), ["user_stats"], min_rows=needed)
    with pytest.raises(CheckFailed, match=f"fewer than the {needed + 1} required"):
        validate_sources(demo, Interval.of(start, end), ["user_stats"], min_rows={"user_stats": needed + 1})


@pytest.mark.parametrize("incremental", [True, False])
def test_materialize_interval_writes_the_latest_rows(demo: FeatureStore, incremental: bool) -> None:
    start, end = day_interval()
    summary = materialize_interval(demo, Interval.of(start, end), incremental=incremental)
    assert summary["mode"] == ("incremental" if incremental else "full")
    assert summary["failed"] == []
    for entry in summary["views"]:
        view = entry["view"]
        lower = end - TTL[view] if incremental else start  # a first incremental run starts at end - ttl
        assert entry["start"] == lower.isoformat()
        expected = latest_in(demo.repo_path, view, lower, end)
        assert entry["rows"] == len(expected)
        _check_online(demo, view, expected)
    again = materialize_interval(demo, Interval.of(start, end), incremental=incremental)  # a retry: same state
    for entry in again["views"]:
        lower = end - TTL[entry["view"]] if incremental else start
        _check_online(demo, entry["view"], latest_in(demo.repo_path, entry["view"], lower, end))


def _check_online(store: FeatureStore, view: str, expected: object) -> None:
    import pandas as pd

    assert isinstance(expected, pd.DataFrame)
    now = datetime.now(UTC)
    keys = [int(k) for k in expected.index]
    got = store.get_online_features([f"{view}:{f}" for f in FEATURES[view]], {KEY[view]: keys}).to_dict()
    for i, key in enumerate(keys):
        row = expected.loc[key]
        age = now - row["event_timestamp"].to_pydatetime()
        if row["tied"] or abs(age - TTL[view]) < timedelta(minutes=5):
            continue  # a tie broken by position, or at the ttl's edge while the test runs
        for f in FEATURES[view]:
            want = None if age > TTL[view] or pd.isna(row[f]) else row[f]
            have = got[f][i]
            if isinstance(want, float):
                assert have is not None, (view, key, f)
                assert math.isclose(have, want, rel_tol=1e-6), (view, key, f, have, want)
            else:
                assert have == want, (view, key, f, have, want)


def test_materialize_names_the_failing_view_and_finishes_the_others(demo: FeatureStore) -> None:
    start, end = day_interval()
    (demo.repo_path / "data" / "merchant_stats.parquet").write_bytes(b"not parquet")
    with pytest.raises(StepError) as failed:
        materialize_interval(demo, Interval.of(start, end))
    assert not isinstance(failed.value, CheckFailed)  # worth a retry
    assert "feature view 'merchant_stats'" in str(failed.value)
    assert failed.value.summary["failed"] == ["merchant_stats"]
    done = {v["view"]: v for v in failed.value.summary["views"]}
    assert done["user_stats"]["rows"] == len(latest_in(demo.repo_path, "user_stats", end - TTL["user_stats"], end))


def test_validate_online_passes_then_names_a_planted_mismatch(demo: FeatureStore) -> None:
    start, end = day_interval()
    interval = Interval.of(start, end)
    with pytest.raises(CheckFailed, match="never materialized"):
        validate_online(demo, interval, ["user_stats"], sample=5)
    materialize_interval(demo, interval)
    summary = validate_online(demo, interval, sample=50, seed=3)
    assert summary["ok"]
    assert summary["differing"] == 0
    sampled = {v["view"]: v["sampled"] for v in summary["views"]}
    assert sampled == {"user_stats": 50, "merchant_stats": 50}
    assert summary["compared"] == 50 * 4 + 50 * 2

    keys = sample_keys(demo, demo.get_feature_view("user_stats"), interval, 50, 3).column("user_id").to_pylist()
    assert keys == sorted(keys)
    assert len(set(keys)) == 50
    latest = latest_in(demo.repo_path, "user_stats", end - TTL["user_stats"], end)
    key = next(k for k in keys if latest.loc[k, "event_timestamp"] < end - timedelta(minutes=1))
    row = latest.loc[key]
    demo.write_to_online_store("user_stats", {
        "user_id": [key], "event_timestamp": [end - timedelta(seconds=30)], "created": [end],
        "txn_count_7d": [int(row["txn_count_7d"]) + 1000], "avg_amount_30d": [row["avg_amount_30d"]],
        "country": [row["country"]], "is_premium": [bool(row["is_premium"])],
    })  # fmt: skip
    with pytest.raises(CheckFailed) as failed:
        validate_online(demo, interval, sample=50, seed=3)
    assert f"user_stats:txn_count_7d for user_id={key}: mismatch: online {int(row['txn_count_7d']) + 1000}" in str(
        failed.value
    )
    summary = failed.value.summary
    assert summary["differing"] == 1
    assert summary["examples"][0]["keys"] == {"user_id": key}
    assert summary["examples"][0]["offline"] == int(row["txn_count_7d"])
    assert summary["examples"][0]["cause"].startswith("online-only write")
    assert validate_online(demo, interval, sample=50, seed=3, max_mismatch_rate=0.01)["differing"] == 1


def test_monitor_step_fails_on_staleness_unless_told(demo: FeatureStore) -> None:
    start, end = day_interval()
    interval = Interval.of(start, end)
    demo.set_baseline("users", demo.compute_statistics("user_stats", end - timedelta(days=8), end - timedelta(days=1)))
    with pytest.raises(CheckFailed, match="feature view 'user_stats' is never materialized"):
        monitor_step(demo, interval, max_staleness=timedelta(days=2), send_alerts=False)
    materialize_interval(demo, interval)
    summary = monitor_step(demo, interval, max_staleness=timedelta(days=2), send_alerts=False)
    assert summary["baselines_checked"]
    assert summary["features_checked"] == 4
    assert not summary["drift"]
    assert summary["stale"] == []
    reported = monitor_step(demo, interval, max_staleness=timedelta(seconds=1), send_alerts=False, fail_on_drift=False)
    assert sorted(reported["stale"]) == ["merchant_stats", "user_stats"]


def test_freshness_status(demo: FeatureStore) -> None:
    start, end = day_interval()
    assert [s.status for s in freshness_status(demo, ["user_stats"], timedelta(days=2))] == ["never"]
    materialize_interval(demo, Interval.of(start, end))
    found = freshness_status(demo, None, timedelta(days=2))
    assert {s.view: s.status for s in found} == {"user_stats": "ok", "merchant_stats": "ok"}
    assert all(s.materialized_until == end.isoformat() for s in found)
    assert [s.status for s in freshness_status(demo, ["user_stats"])] == ["unchecked"]  # no limit configured
    with pytest.raises(Exception, match="user_stats"):
        freshness_status(demo, ["user_stat"])


def test_interval_of_an_airflow_context() -> None:
    from potluck.integrations.airflow.task import interval_of

    start, end = day_interval()
    assert interval_of({"data_interval_start": start, "data_interval_end": end}) == Interval(start, end)
    naive = interval_of({"data_interval_start": start.replace(tzinfo=None), "data_interval_end": end})
    assert naive.start == start
    moment = interval_of({"data_interval_start": None, "data_interval_end": None, "logical_date": end})
    assert moment.empty
    assert moment.end == end


def test_init_airflow_writes_the_dag_that_apply_skips(tmp_path: Path) -> None:
    store = demo_store(tmp_path / "demo", airflow=True)  # apply would fail importing airflow if it read the DAG
    dag = (tmp_path / "demo" / "airflow" / "potluck_feature_pipeline.py").read_text()
    assert f'os.environ.get("POTLUCK_REPO_PATH", {str(store.repo_path)!r})' in dag
    assert "airflow/" in (tmp_path / "demo" / ".potluckignore").read_text().split()
    assert {v.name for v in store.list_feature_views()} == {"user_stats", "merchant_stats"}


def test_operators_without_airflow_name_the_extra() -> None:
    import importlib.util

    if importlib.util.find_spec("airflow") is not None:
        pytest.skip("Airflow is installed in this environment")
    import potluck.integrations.airflow as integration

    with pytest.raises(ImportError, match=r"pip install 'potluck\[airflow\]'"):
        _ = integration.PotluckMaterializeOperator
