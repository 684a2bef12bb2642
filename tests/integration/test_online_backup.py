"""Online snapshots, restores and rebuilds on SQLite, Redis and PostgreSQL (round trip: DynamoDB too): byte for byte per row and tile record,
resumable after SIGKILL, newest-wins unless --overwrite, refusing another project, rebuild after a wipe."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from integration_support import DRIVERS, END

from potluck import FeatureStore
from potluck.backup.online_snapshot import iter_rows, online_views, restore, take
from potluck.definitions.errors import BackupError
from tests_support import run_cli

AGGREGATION_PY = """
from potluck import Aggregation, StreamFeatureView

trips_push = PushSource(
    name="trips_push",
    batch_source=FileSource(name="trips_source", path="data/trips.parquet", timestamp_field="event_timestamp"),
)
driver_trips = StreamFeatureView(
    name="driver_trips", entities=[driver], source=trips_push, timestamp_field="event_timestamp",
    schema=[Field(name="fare", dtype=Float64)],
    aggregations=[
        Aggregation(column="fare", function="sum", time_window=timedelta(hours=6)),
        Aggregation(column="fare", function="count", time_window=timedelta(days=2)),
    ],
)
"""
PLAIN = ["driver_stats:conv_rate", "driver_stats:trips", "driver_stats:city", "driver_stats:scores"]
WINDOWED = ["driver_trips:sum_fare_21600s", "driver_trips:count_fare_172800s"]
IDS = list(range(1, DRIVERS + 3))
# The round trip on every store that lists its rows; DynamoDB (moto, one request at a time) only there.
EVERY_STORE = pytest.mark.parametrize(
    "online_kind",
    [
        "sqlite",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("postgres", marks=pytest.mark.postgres),
        "dynamodb",
    ],
    indirect=True,
)


def _trips(path: Path) -> None:
    rng = np.random.default_rng(5)
    n = 1500
    start = END - timedelta(days=3)
    pq.write_table(
        pa.table(
            {
                "driver_id": pa.array(rng.integers(1, DRIVERS + 1, n), pa.int64()),
                "event_timestamp": pa.array(
                    [start + timedelta(minutes=int(m)) for m in rng.integers(0, 3 * 24 * 60, n)],
                    pa.timestamp("us", tz="UTC"),
                ),
                "fare": pa.array(rng.uniform(3, 60, n).round(2)),
            }
        ),
        path,
    )


def filled(make: Callable[..., Path], name: str = "repo") -> FeatureStore:
    """A repository with a plain view and an aggregation view materialized, and rows pushed to a third."""
    root = make(name)
    (root / "features.py").write_text((root / "features.py").read_text() + AGGREGATION_PY)
    _trips(root / "data" / "trips.parquet")
    store = FeatureStore(repo_path=root)
    store.apply()
    store.materialize(END - timedelta(days=60), END, ["driver_stats", "driver_trips"])
    store.write_to_online_store(
        "driver_live",
        pa.table(
            {
                "driver_id": pa.array([1, 2, 3], pa.int64()),
                "event_timestamp": pa.array([END] * 3, pa.timestamp("us", tz="UTC")),
                "lat": [1.5, None, 3.25],
                "status": ["on", "off", "on"],
            }
        ),
    )
    return store


def stored(store: FeatureStore) -> dict[str, Any]:
    """Every stored row (key, event and created times, value blob) and tile record of every online view."""
    online: Any = store._online
    out: dict[str, Any] = {}
    for view in online_views(store):
        rows = [c for chunk in online.scan_rows(view, None, 10_000) for c in zip(*chunk.python(), strict=True)]
        out[view.name] = rows
        if view.tiles is not None:
            out[view.name + "#tiles"] = [
                tuple(r.values()) for chunk in online.scan_tiles(view, None, 10_000) for r in chunk.to_pylist()
            ]
    return out


def served(store: FeatureStore) -> dict[str, Any]:
    response = store.get_online_features([*PLAIN, *WINDOWED, "driver_live:lat"], {"driver_id": IDS})
    out = dict(response.to_dict())
    out.update({f"{k}__status": [s.value for s in v] for k, v in response.statuses.items()})
    return out


def wipe(store: FeatureStore) -> None:
    store._online.teardown(online_views(store))


def check_listing(store: FeatureStore, state: dict[str, Any]) -> None:
    """The scan lists exactly the keys the views hold (one per driver with rows), in byte order."""
    by_view = {v.name: v for v in online_views(store)}
    data = pq.read_table(store.repo_path / "data" / "driver_stats.parquet").column("driver_id").to_pylist()
    encoder = by_view["driver_stats"].key_encoder
    want = sorted(encoder.encode_arrow([pa.array(sorted(set(data)), pa.int64())]).to_pylist())
    assert [r[0] for r in state["driver_stats"]] == want
    assert len(state["driver_live"]) == 3
    assert len(state["driver_trips#tiles"]) > DRIVERS * 0.9
    online: Any = store._online
    for cut in (0, 1, 77, len(want) - 1):  # a scan continues after a key: what resumes a snapshot
        after = [
            r for c in online.scan_rows(by_view["driver_stats"], want[cut], 30) for r in zip(*c.python(), strict=True)
        ]
        assert after == state["driver_stats"][cut + 1 :]
    tiles = state["driver_trips#tiles"]
    after = [
        tuple(r.values()) for c in online.scan_tiles(by_view["driver_trips"], tiles[5][0], 30) for r in c.to_pylist()
    ]
    assert after == tiles[6:]


@EVERY_STORE
def test_snapshot_and_restore_are_byte_for_byte(repo_factory: Callable[..., Path], tmp_path: Path) -> None:
    store = filled(repo_factory)
    before, answers = stored(store), served(store)
    check_listing(store, before)
    manifest = take(store, tmp_path / "snap", chunk_rows=40)
    entries = {e.name: e for e in manifest.views}
    assert entries["driver_stats"].parts["rows"].rows == len(before["driver_stats"])
    assert len(entries["driver_stats"].parts["rows"].chunks) == -(-len(before["driver_stats"]) // 40)
    assert entries["driver_trips"].parts["tiles"].rows == len(before["driver_trips#tiles"])
    listed = [
        r for t in iter_rows(tmp_path / "snap", "driver_stats") for r in zip(*t.to_pydict().values(), strict=True)
    ]
    assert listed == before["driver_stats"]
    wipe(store)
    assert all(not rows for rows in stored(store).values())
    result = restore(store, tmp_path / "snap")
    assert {v.view: v.rows for v in result.views} == {n: len(r) for n, r in before.items() if "#" not in n}
    assert stored(store) == before
    assert served(store) == answers
    store.close()


def test_restore_keeps_newer_rows_unless_overwrite(repo_factory: Callable[..., Path], tmp_path: Path) -> None:
    store = filled(repo_factory)
    take(store, tmp_path / "snap", chunk_rows=100)
    before = stored(store)
    newer = {
        "driver_id": pa.array([1, DRIVERS + 1], pa.int64()),  # a changed row and a new one
        "event_timestamp": pa.array([END + timedelta(minutes=5)] * 2, pa.timestamp("us", tz="UTC")),
        "lat": [9.0, 8.0],
        "status": ["new", "new"],
    }
    store.write_to_online_store("driver_live", pa.table(newer))
    after_write = stored(store)
    restore(store, tmp_path / "snap")  # newest wins: the newer rows stay
    assert stored(store) == after_write
    assert served(store)["lat"][0] == 9.0
    result = restore(store, tmp_path / "snap", overwrite=True)  # exactly the snapshot again
    assert not result.resumed
    assert stored(store) == before
    store.close()


def test_restore_refuses_another_project_unless_told(repo_factory: Callable[..., Path], tmp_path: Path) -> None:
    source = filled(repo_factory, "a")
    take(source, tmp_path / "snap")
    want = stored(source)
    other = FeatureStore(repo_path=repo_factory("b"))
    (other.repo_path / "features.py").write_text(source.repo_path.joinpath("features.py").read_text())
    other.apply()
    with pytest.raises(BackupError, match=rf"of project '{source.project}', not of '{other.project}'"):
        restore(other, tmp_path / "snap")
    assert all(not rows for rows in stored(other).values())
    restore(other, tmp_path / "snap", allow_other_project=True)
    assert stored(other) == want  # same definitions, same bytes: only the namespace differs
    source.close()
    other.close()


def test_refusals_name_what_to_do(repo_factory: Callable[..., Path], tmp_path: Path) -> None:
    store = filled(repo_factory)
    take(store, tmp_path / "snap", ["driver_live"])
    with pytest.raises(BackupError, match="already holds a complete snapshot"):
        take(store, tmp_path / "snap")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x").write_text("x")
    with pytest.raises(BackupError, match="is not empty and holds no snapshot"):
        take(store, tmp_path / "junk")
    chunk = next((tmp_path / "snap").glob("*/rows-000000.parquet"))
    chunk.write_bytes(chunk.read_bytes()[:-3] + b"xyz")
    with pytest.raises(BackupError, match="does not match its checksum"):
        restore(store, tmp_path / "snap")
    store.close()


def _potluck(root: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "potluck.cli", "-c", str(root), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _kill_when(proc: subprocess.Popen[bytes], ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 120
    while not ready():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
        assert time.monotonic() < deadline, "no progress recorded"
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def _chunks(folder: Path) -> int:
    try:
        data = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return 0
    return sum(len(p["chunks"]) for v in data["views"] for p in v["parts"].values())


# SQLite and Redis: the two ways a scan continues after a key (a keyset query; a sorted SCAN). PostgreSQL's
# keyset query is SQLite's, and `check_listing` runs it from a key on every store.
@pytest.mark.parametrize("online_kind", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)], indirect=True)
def test_snapshot_and_restore_killed_midway_continue(repo_factory: Callable[..., Path], tmp_path: Path) -> None:
    store = filled(repo_factory)
    before = stored(store)
    snap = tmp_path / "snap"
    views = ["driver_stats", "driver_live"]  # three rows per file: about 50 files, some seconds of work to interrupt
    args = ("online", "snapshot", str(snap), "--chunk-rows", "3", "--no-progress", *(f"--view={v}" for v in views))
    proc = _potluck(store.repo_path, *args)
    _kill_when(proc, lambda: _chunks(snap) >= 10)
    manifest = json.loads((snap / "manifest.json").read_text())
    assert not manifest["complete"], "the snapshot finished before it was killed"
    run_chunks = _chunks(snap)
    take(store, snap, views)  # continues with the recorded chunk size
    assert _chunks(snap) == sum(-(-len(before[v]) // 3) for v in views)  # every row once, in full chunks
    assert _chunks(snap) > run_chunks
    listed = [r for t in iter_rows(snap, "driver_stats") for r in zip(*t.to_pydict().values(), strict=True)]
    assert listed == before["driver_stats"]
    wipe(store)
    progress = snap / "restore-progress.json"
    proc = _potluck(store.repo_path, "online", "restore", str(snap), "--overwrite", "--no-progress")

    def restored_some() -> bool:
        try:
            done = json.loads(progress.read_text())["done"]
        except (OSError, ValueError, KeyError):
            return False
        return sum(sum(parts.values()) for parts in done.values()) >= 10

    _kill_when(proc, restored_some)
    assert progress.exists(), "the restore finished before it was killed"
    result = restore(store, snap, overwrite=True)
    assert result.resumed
    assert not progress.exists()
    assert {v: rows for v, rows in stored(store).items() if v in views} == {v: before[v] for v in views}
    store.close()


def test_rebuild_after_a_wipe_gives_the_materialized_state(
    repo_factory: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    store = filled(repo_factory)
    want_rows, want_served = stored(store), served(store)
    wipe(store)
    assert served(store)["trips__status"] == ["NOT_FOUND"] * len(IDS)
    code, out, err = run_cli(capsys, "-c", str(store.repo_path), "online", "rebuild", "--no-progress")
    assert code == 0, err
    assert "Rebuilt" in out
    assert "Freshness" in out
    got = stored(store)
    assert got["driver_stats"] == want_rows["driver_stats"]  # the same latest rows, the same bytes
    assert not got["driver_live"]  # pushed rows have no offline rows to rebuild from
    answers = served(store)
    for name in [*(p.split(":")[1] for p in PLAIN), "sum_fare_21600s", "count_fare_172800s"]:
        assert answers[name] == want_served[name], name
    store.close()


def test_rebuild_exits_1_when_a_view_is_still_stale(
    repo_factory: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    store = filled(repo_factory)
    root = store.repo_path
    features = (root / "features.py").read_text()
    # a view whose limit no run can meet: staleness is measured from the newest recorded end
    (root / "features.py").write_text(
        features.replace(
            "    source=stats_source,\n)",
            '    source=stats_source,\n    tags={"potluck.max_staleness": "0.000001s"},\n)',
        )
    )
    store.apply()
    code, out, _ = run_cli(capsys, "-c", str(root), "online", "rebuild", "--view", "driver_stats", "--no-progress")
    assert code == 1
    assert "still stale: driver_stats" in out
    store.close()
