"""Feature logging of SDK reads: `store.get_online_features(feature_service, ...)` logs as the server does.

A real repository on SQLite, real writer processes; the files are read back with pyarrow.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from test_feature_logging import FEATURES, logged_repo, logging_server, read_logs, server_yaml, wait_for

from potluck import FeatureStore
from potluck.feature_logs import FeatureLogger
from potluck.feature_logs.sdk import SdkFeatureLog

CODES = {"PRESENT": 1, "NULL_VALUE": 2, "NOT_FOUND": 3, "OUTSIDE_MAX_AGE": 4}


def seeded(store: FeatureStore, seed: int, **settings: Any) -> SdkFeatureLog:
    """The store's feature log with seeded sampling (the draws can be replayed)."""
    feature_log = SdkFeatureLog(store, rng=random.Random(seed), **settings)
    store.__dict__["_feature_log"] = feature_log
    return feature_log


def test_sampled_reads_are_logged_with_values_statuses_and_times(tmp_path: Path) -> None:
    root = logged_repo(tmp_path / "repo", rate=0.3)
    store = FeatureStore(repo_path=root)
    service = store.get_feature_service("logged")
    seed, requests = 7, 240
    seeded(store, seed, flush_rows=50, flush_interval=0.2)
    answers: dict[int, dict[str, Any]] = {}
    started = datetime.now(UTC)

    async def read_async(rows: list[dict[str, int]]) -> Any:
        return await store.get_online_features_async(service, rows)

    for i in range(requests):
        rows = [{"driver_id": i % 150 + 1}, {"driver_id": 10_000 + i}]  # 10_000 + i: not found, names the call
        if i % 3 == 2:
            response = asyncio.run(read_async(rows))
        else:
            response = store.get_online_features(service if i % 2 else "logged", rows, full_feature_names=i % 2 == 0)
        answers[i] = {"values": response.to_dict(), "statuses": response.statuses, "times": response.event_timestamps}
    store.get_online_features(["driver_stats:trips"], [{"driver_id": 1}])  # by references: never logged
    store.close()  # writes what is queued
    finished = datetime.now(UTC)

    draws = random.Random(seed)
    expected = {i for i in range(requests) if draws.random() < 0.3}
    mean, sd = requests * 0.3, math.sqrt(requests * 0.3 * 0.7)
    assert abs(len(expected) - mean) < 4 * sd
    rows = read_logs(root / "logs").to_pylist()
    assert len(rows) == 2 * len(expected)
    by_request: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_request.setdefault(r["__request_id"], []).append(r)
    logged = {max(r["driver_id"] for r in group) - 10_000: group for group in by_request.values()}
    assert set(logged) == expected  # exactly the seeded draws, each with its two entity rows
    statuses_seen: set[int] = set()
    for i, group in logged.items():
        group.sort(key=lambda r: r["driver_id"])
        answer = answers[i]
        assert len({r["__log_timestamp"] for r in group}) == 1
        for j, r in enumerate(group):
            assert started <= r["__log_timestamp"] <= finished
            assert r["__log_date"] == r["__log_timestamp"].date()
            for full in FEATURES:
                short = full if i % 3 != 2 and i % 2 == 0 else full.split("__", 1)[1]
                assert r[full] == answer["values"][short][j], (i, full)
                status = answer["statuses"][short][j]
                assert r[f"{full}__status"] == CODES[status]
                statuses_seen.add(CODES[status])
                served_at = answer["times"][short][j]
                assert r[f"{full}__timestamp"] == (None if status == "NOT_FOUND" else served_at)
    assert statuses_seen >= {1, 3}
    assert store.feature_log_stats().logged_rows == {}  # closed: a new log starts empty
    assert not list((root / "logs").rglob(".*"))


def test_full_queue_drops_and_counts_and_reads_go_on(tmp_path: Path) -> None:
    root = logged_repo(tmp_path / "repo", rate=1.0)
    server_yaml(root, feature_log_queue_rows=5, feature_log_flush_rows=10**9, feature_log_flush_interval_seconds=3600)
    store = FeatureStore(repo_path=root)
    service = store.get_feature_service("logged")
    for i in range(20):
        assert store.get_online_features(service, [{"driver_id": i + 1}]).to_dict()["driver_id"] == [i + 1]
    stats = store.feature_log_stats()
    assert (stats.dropped_rows, stats.queued_rows) == ({"logged": 15}, 5)
    store.close()
    assert read_logs(root / "logs").num_rows == 5
    assert sorted(read_logs(root / "logs").column("driver_id").to_pylist()) == [1, 2, 3, 4, 5]


def test_logging_switched_off_in_the_settings(tmp_path: Path) -> None:
    root = logged_repo(tmp_path / "repo", rate=1.0)
    server_yaml(root, feature_log_enabled="false")
    store = FeatureStore(repo_path=root)
    store.get_online_features(store.get_feature_service("logged"), [{"driver_id": 1}])
    store.close()
    assert not (root / "logs").exists()


def test_on_demand_outputs_and_request_data_are_logged_as_the_server_logs_them(tmp_path: Path) -> None:
    from test_feature_logging import ODFV_SERVICE

    from odfv_support import FEATURES as ODFV_FEATURES
    from odfv_support import build

    root = build(tmp_path / "repo", ODFV_FEATURES + ODFV_SERVICE)
    store = FeatureStore(repo_path=root)
    store.apply()
    store.materialize(datetime(2023, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))
    requests = [[(1, 0.25), (2, 1.0)], [(3, None), (99, 2.0)], [(1, None)], [(2, 0.5), (3, 1.5), (1, 4.0)]]
    for rows in requests:
        entities = {"driver_id": [d for d, _ in rows], "bonus": [b for _, b in rows]}
        store.get_online_features("logged", entities, full_feature_names=True)
    store.close()
    by_sdk = read_logs(root / "logs")
    for path in (root / "logs").rglob("*.parquet"):
        path.unlink()
    logger = FeatureLogger(queue_rows=1000, flush_rows=10**9, flush_interval=3600)
    with logging_server(root, logger) as http:
        for rows in requests:
            entities = {"driver_id": [d for d, _ in rows], "bonus": [b for _, b in rows]}
            body = {"feature_service": "logged", "entities": entities, "full_feature_names": True}
            answer = http.post("/get-online-features", json=body)
            assert answer.status_code == 200, answer.text
    by_server = read_logs(root / "logs")
    assert by_sdk.schema == by_server.schema
    assert by_sdk.column_names[:2] == ["driver_id", "bonus"]
    own = {"__request_id", "__log_timestamp", "__log_date"}

    def content(table: Any) -> list[tuple[Any, ...]]:
        return sorted(tuple(repr(v) for k, v in r.items() if k not in own) for r in table.to_pylist())

    assert content(by_sdk) == content(by_server)
    assert by_sdk.num_rows == sum(len(r) for r in requests)


SDK_LOOP = """
import sys, time
from potluck import FeatureStore

store = FeatureStore(repo_path=sys.argv[1])
service = store.get_feature_service("logged")
rows = [{{"driver_id": d}} for d in range(1, 101)]
for i in range({calls}):
    store.get_online_features(service, rows)
print("done", flush=True)
{tail}
"""


def run_sdk(root: Path, calls: int, tail: str = "") -> subprocess.Popen[str]:
    script = root / "sdk_loop.py"
    script.write_text(textwrap.dedent(SDK_LOOP.format(calls=calls, tail=tail)))
    return subprocess.Popen(
        [sys.executable, str(script), str(root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_interpreter_exit_writes_what_is_queued(tmp_path: Path) -> None:
    root = logged_repo(tmp_path / "repo", rate=1.0)
    server_yaml(root, feature_log_flush_rows=10**6, feature_log_flush_interval_seconds=3600)
    proc = run_sdk(root, 7)  # never closes its store: the exit hook writes the queue
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    table = read_logs(root / "logs")
    assert table.num_rows == 700
    assert len(set(table.column("__request_id").to_pylist())) == 7


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:  # the thread ended meanwhile
            continue
    return found


@pytest.mark.slow
def test_sigkill_mid_logging_leaves_only_whole_files(tmp_path: Path) -> None:
    root = logged_repo(tmp_path / "repo", rate=1.0)
    server_yaml(root, feature_log_flush_rows=200, feature_log_flush_interval_seconds=0.01)
    proc = run_sdk(root, 10**9)
    try:
        wait_for(lambda: len(list((root / "logs").rglob("*.parquet"))) >= 15, "too few log files")
        writers = _children(proc.pid)
        assert writers, "no writer process"
        for pid in [*writers, proc.pid]:  # the writer too: it may be halfway through a file
            os.kill(pid, signal.SIGKILL)
        proc.wait(10)
        wait_for(lambda: not any(Path(f"/proc/{p}").exists() for p in writers), "the writer is still running")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
    files = list((root / "logs").rglob("*.parquet"))
    assert len(files) >= 15
    for path in files:  # every visible file is whole: it reads, and holds whole requests
        table = pq.read_table(path)
        assert table.num_rows > 0
        assert table.num_rows % 100 == 0, path
    assert read_logs(root / "logs").num_rows == sum(pq.read_metadata(p).num_rows for p in files)
    leftovers = [p for p in (root / "logs").rglob(".*") if p.is_file()]
    assert all(p.name.endswith(".parquet.tmp") for p in leftovers)  # at most the file being written
