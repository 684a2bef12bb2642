"""The online store follows the registry even when it is down during an apply.

Deleting a view while Redis is down commits the registry and owes the online drop; a view
re-created under the same name reads a fresh namespace (never the old rows), and the next apply
finishes the drop once Redis is back.
"""

from __future__ import annotations

import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from potluck import FeatureStore
from tests_support import free_port, run_cli, start_redis_server

START = datetime(2023, 12, 31, tzinfo=UTC)
END = datetime(2024, 1, 2, tzinfo=UTC)

YAML = """\
project: sync_project
registry: data/registry.db
provider: local
online_store:
  type: {online}
"""

ENTITY = """\
from potluck import Entity, FileSource, ValueType

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
source = FileSource(name="driver_source", path="data/driver.parquet", timestamp_field="ts")
"""

VIEW = """\
from potluck import FeatureView, Field
from potluck.types import Float64{extra_import}

from entities import driver, source

driver_stats = FeatureView(name="driver_stats", entities=[driver], schema=[{fields}], source=source)
"""

CONV = 'Field(name="conv_rate", dtype=Float64)'


def _repo(root: Path, online: str) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "feature_store.yaml").write_text(YAML.format(online=online))
    (root / "entities.py").write_text(ENTITY)
    base = datetime(2024, 1, 1, tzinfo=UTC)
    pq.write_table(
        pa.table(
            {
                "driver_id": pa.array([1, 2], pa.int64()),
                "ts": pa.array([base, base + timedelta(hours=1)], pa.timestamp("us", tz="UTC")),
                "conv_rate": [0.1, 0.2],
                "trips": pa.array([10, 20], pa.int64()),
            }
        ),
        root / "data" / "driver.parquet",
    )
    return root


def _define_view(root: Path, fields: str = CONV) -> None:
    extra = ", Int64" if "Int64" in fields else ""
    (root / "views.py").write_text(VIEW.format(fields=fields, extra_import=extra))


def _conv_rate(root: Path) -> tuple[list[object], list[str]]:
    store = FeatureStore(repo_path=root)
    try:
        response = store.get_online_features(["driver_stats:conv_rate"], [{"driver_id": 1}, {"driver_id": 2}])
        data = response.to_dict()
        statuses = [s.name if hasattr(s, "name") else str(s) for s in response.statuses["conv_rate"]]
        return data["conv_rate"], statuses
    finally:
        store.close()


def _keys(port: int, prefix: str) -> list[bytes]:
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        return sorted(client.scan_iter(match=prefix + "*"))
    finally:
        client.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait()


def test_delete_while_redis_is_down_then_recreate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    prefix = f"sync-{uuid.uuid4().hex[:8]}:"
    online = (
        f'redis\n  connection_string: "127.0.0.1:{port},socket_timeout=2,socket_connect_timeout=2"\n'
        f'  key_prefix: "{prefix}"'
    )
    root = _repo(tmp_path / "repo", online)
    _define_view(root)
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    persist = ("--appendonly", "yes", "--appendfsync", "always")
    proc = start_redis_server(port, redis_dir, *persist)
    try:
        assert run_cli(capsys, "-c", str(root), "apply")[0] == 0
        FeatureStore(repo_path=root).materialize(START, END)
        assert _conv_rate(root) == ([0.1, 0.2], ["PRESENT", "PRESENT"])
        old_keys = _keys(port, prefix)
        assert len(old_keys) == 2

        _stop(proc)  # Redis dies; the view is deleted meanwhile
        (root / "views.py").unlink()
        code, out, err = run_cli(capsys, "-c", str(root), "apply", "--allow-breaking")
        assert (code, err) == (0, "")
        assert "online cleanup pending" in out
        assert "Applied" in out
        assert FeatureStore(repo_path=root).materialization_intervals("driver_stats") == []

        _define_view(root)  # and created again under the same name, Redis still down
        code, out, err = run_cli(capsys, "-c", str(root), "apply")
        assert (code, err) == (0, "")
        assert "online cleanup pending" in out

        proc = start_redis_server(port, redis_dir, *persist)  # back, with the old rows
        assert _keys(port, prefix) == old_keys
        # the re-created view has no materialized rows: the old ones are not served
        assert _conv_rate(root) == ([None, None], ["NOT_FOUND", "NOT_FOUND"])

        code, out, err = run_cli(capsys, "-c", str(root), "apply")
        assert (code, err) == (0, "")
        assert "No changes" in out
        assert "pending" not in out
        assert _keys(port, prefix) == []  # the owed drop is done

        FeatureStore(repo_path=root).materialize(START, END)
        assert _conv_rate(root) == ([0.1, 0.2], ["PRESENT", "PRESENT"])
        assert len(_keys(port, prefix)) == 2
    finally:
        _stop(proc)


@pytest.mark.parametrize("registry", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_reshaped_view_starts_empty_and_its_watermark_restarts(
    tmp_path: Path, registry: str, request: pytest.FixtureRequest
) -> None:
    root = _repo(tmp_path / "repo", 'sqlite\n  path: "data/online.db"')
    if registry == "postgres":
        url = request.getfixturevalue("postgres_database")
        yaml = (root / "feature_store.yaml").read_text().replace("data/registry.db", url)
        (root / "feature_store.yaml").write_text(yaml)
    _define_view(root)
    store = FeatureStore(repo_path=root)
    store.apply()
    store.materialize(START, END)
    assert len(store.materialization_intervals("driver_stats")) == 1
    assert _conv_rate(root)[1] == ["PRESENT", "PRESENT"]

    _define_view(root, CONV + ', Field(name="trips", dtype=Int64)')
    plan = store.apply()
    assert plan.warnings == []
    assert store.materialization_intervals("driver_stats") == []
    assert _conv_rate(root) == ([None, None], ["NOT_FOUND", "NOT_FOUND"])
    store.materialize(START, END)
    assert _conv_rate(root) == ([0.1, 0.2], ["PRESENT", "PRESENT"])

    # a change that keeps the online shape keeps the rows
    (root / "views.py").write_text(
        (root / "views.py").read_text().replace("source=source)", 'source=source, description="d")')
    )
    assert store.apply().counts()["updated"] == 1
    assert _conv_rate(root)[1] == ["PRESENT", "PRESENT"]
    assert store._pending.list() == []  # the drop of the first generation is done
    store.teardown()
    store.close()


def test_view_created_after_a_teardown_never_reads_rows_from_before_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import redis

    port = free_port()
    prefix = f"td-{uuid.uuid4().hex[:8]}:"
    online = f'redis\n  connection_string: "127.0.0.1:{port},socket_timeout=2"\n  key_prefix: "{prefix}"'
    root = _repo(tmp_path / "repo", online)
    _define_view(root)
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    proc = start_redis_server(port, redis_dir)
    try:
        assert run_cli(capsys, "-c", str(root), "apply")[0] == 0
        FeatureStore(repo_path=root).materialize(START, END)
        client = redis.Redis(host="127.0.0.1", port=port)
        client.save()  # a snapshot on disk that still holds these rows
        client.close()
        assert run_cli(capsys, "-c", str(root), "teardown", "--yes")[0] == 0
        assert _keys(port, prefix) == []
        _stop(proc)
        proc = start_redis_server(port, redis_dir)  # restarted from the snapshot: the old rows are back
        assert len(_keys(port, prefix)) == 2

        assert run_cli(capsys, "-c", str(root), "apply")[0] == 0  # the same view, created again
        assert _conv_rate(root) == ([None, None], ["NOT_FOUND", "NOT_FOUND"])
        FeatureStore(repo_path=root).materialize(START, END)
        assert _conv_rate(root) == ([0.1, 0.2], ["PRESENT", "PRESENT"])
    finally:
        _stop(proc)
