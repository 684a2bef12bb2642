"""Feature logs as data: `write_logged_features`, retention (`potluck logs prune`) and statistics over them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from test_feature_logging import logged_repo, read_logs

from potluck import FeatureStore
from potluck.definitions.errors import RetrievalError
from potluck.feature_logging import LoggingConfig
from potluck.infra.offline_stores.file_source import FileLoggingDestination
from tests_support import run_cli

TS = pa.timestamp("us", tz="UTC")
FEATURES = {
    "driver_stats__conv_rate": pa.float64(),
    "driver_stats__trips": pa.int64(),
    "driver_stats__city": pa.string(),
    "driver_live__lat": pa.float64(),
}


def log_rows(log_times: list[datetime], seed: int = 1) -> pa.Table:
    """Rows in Feast's log schema with random values (about 10% not found) at the given log times."""
    rng = np.random.default_rng(seed)
    n = len(log_times)
    found = rng.random(n) > 0.1
    columns: dict[str, pa.Array] = {"driver_id": pa.array(rng.integers(1, 150, n), pa.int64())}
    values = {
        "driver_stats__conv_rate": rng.normal(0.5, 0.2, n),
        "driver_stats__trips": rng.integers(0, 100, n),
        "driver_stats__city": rng.choice(["a", "b", "c"], n),
        "driver_live__lat": rng.normal(40, 3, n),
    }
    for name, dtype in FEATURES.items():
        columns[name] = pa.array([v.item() if f else None for v, f in zip(values[name], found, strict=True)], dtype)
        columns[name + "__timestamp"] = pa.array([t - timedelta(minutes=5) if f else None for t, f in zip(log_times, found, strict=True)], TS)  # fmt: skip
        columns[name + "__status"] = pa.array([1 if f else 3 for f in found], pa.int32())
    columns["__log_timestamp"] = pa.array(log_times, TS)
    columns["__request_id"] = pa.array([uuid.uuid4().hex for _ in log_times])
    return pa.table(columns)


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    return FeatureStore(repo_path=logged_repo(tmp_path / "repo", rate=1.0))


def test_write_logged_features_round_trip_and_errors(store: FeatureStore) -> None:
    # noon, so that the minutes subtracted below never cross into another day
    now = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    rows = log_rows([now - timedelta(days=d % 3, minutes=d) for d in range(60)])
    written = store.write_logged_features(rows, source=store.get_feature_service("logged"))
    assert {p.parent.name for p in written} == {f"__log_date={(now - timedelta(days=d)).date()}" for d in range(3)}
    back = read_logs(store.repo_path / "logs")
    key = ["__request_id"]
    expected = rows.append_column(
        "__log_date", pa.array([t.date() for t in rows.column("__log_timestamp").to_pylist()], pa.date32())
    )
    assert (
        back.select(expected.column_names)
        .sort_by([(k, "ascending") for k in key])
        .equals(expected.sort_by([(k, "ascending") for k in key]))
    )
    # a pandas frame and a Parquet path are taken too; another destination with logging_config
    other = LoggingConfig(destination=FileLoggingDestination(path="elsewhere"))
    store.write_logged_features(rows.to_pandas(), "logged", logging_config=other)
    assert read_logs(store.repo_path / "elsewhere").num_rows == 60
    store.write_logged_features(str(store.repo_path / "elsewhere"), "logged")
    assert read_logs(store.repo_path / "logs").num_rows == 120

    with pytest.raises(
        RetrievalError, match=r"missing column\(s\) 'driver_live__lat__status'.*unknown column\(s\) 'extra'"
    ):
        store.write_logged_features(rows.drop_columns(["driver_live__lat__status"]).append_column("extra", rows.column("driver_id")), "logged")  # fmt: skip
    bad = rows.set_column(rows.column_names.index("driver_stats__trips"), "driver_stats__trips", pa.array(["x"] * 60))
    with pytest.raises(RetrievalError, match="column 'driver_stats__trips' is string and does not convert to int64"):
        store.write_logged_features(bad, "logged")
    with pytest.raises(RetrievalError, match="logs must be a pyarrow Table"):
        store.write_logged_features([1, 2], "logged")


def test_prune_removes_exactly_the_old_log_days(store: FeatureStore, capsys: pytest.CaptureFixture[str]) -> None:
    now = datetime.now(UTC)
    ages = [40, 31, 29, 0]
    store.write_logged_features(log_rows([now - timedelta(days=a) for a in ages for _ in range(3)]), "logged")
    folders = lambda: sorted(p.name for p in (store.repo_path / "logs").iterdir())  # noqa: E731
    before = folders()
    repo = str(store.repo_path)
    code, out, _ = run_cli(capsys, "-c", repo, "logs", "prune", "--older-than", "30d", "--dry-run", "-o", "json")
    assert code == 0
    old = [f"__log_date={(now - timedelta(days=a)).date()}" for a in (40, 31)]
    assert [Path(r["folder"]).name for r in json.loads(out)] == old
    assert folders() == before
    code, out, _ = run_cli(capsys, "-c", repo, "logs", "prune", "--older-than", "30d", "--feature-service", "logged")
    assert code == 0
    assert "Removed 2 log day(s)" in out
    assert folders() == [f for f in before if f not in old]
    assert read_logs(store.repo_path / "logs").num_rows == 6
    code, _, err = run_cli(
        capsys, "-c", repo, "logs", "prune", "--older-than", "30d", "--feature-service", "driver_service"
    )
    assert code == 1
    assert "feature service 'driver_service' has no logging_config" in err


def test_statistics_over_logs_equal_a_brute_force_computation(
    store: FeatureStore, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    times = [now - timedelta(hours=h % 96, seconds=h) for h in range(3000)]
    rows = log_rows(times, seed=5)
    store.write_logged_features(rows, "logged")
    start, end = now - timedelta(hours=48), now
    profile = store.compute_log_statistics("logged", start, end)
    assert profile.source == "logs:logged"
    inside = [i for i, t in enumerate(times) if start <= t <= end]
    by_name = {(f.view, f.name): f for f in profile.features}
    assert set(by_name) == {tuple(n.split("__")) for n in FEATURES}
    for name in ("driver_stats__conv_rate", "driver_stats__trips", "driver_live__lat"):
        column = rows.column(name).to_pylist()
        values = np.array([column[i] for i in inside if column[i] is not None], dtype=float)
        stats = by_name[tuple(name.split("__"))]
        assert stats.count == len(inside)
        assert stats.nulls == len(inside) - len(values)
        assert stats.mean == pytest.approx(values.mean(), rel=1e-9)
        assert stats.stddev == pytest.approx(values.std(ddof=1), rel=1e-9)
        assert (stats.min, stats.max) == (values.min(), values.max())
    city = rows.column("driver_stats__city").to_pylist()
    counts: dict[str, int] = {}
    for i in inside:
        if city[i] is not None:
            counts[city[i]] = counts.get(city[i], 0) + 1
    assert dict(by_name[("driver_stats", "city")].top) == counts

    # the CLI: a baseline of served values, then a run of the log against it (same rows: no drift)
    repo = str(store.repo_path)
    window = ["--start", start.isoformat(), "--end", end.isoformat()]
    code, out, err = run_cli(capsys, "-c", repo, "monitor", "baseline", "--logs", "--feature-service", "logged", "--name", "served", *window, "-o", "json")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["profile"]["source"] == "logs:logged"
    code, out, err = run_cli(capsys, "-c", repo, "monitor", "run", "-b", "served", "--logs", "--feature-service", "logged", *window, "-o", "json", "--no-alerts")  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["drift"] is False
    assert {(f["view"], f["feature"]) for f in report["features"]} == set(by_name)
