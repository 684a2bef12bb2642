"""Feature logging of the feature server: sampled reads of a feature service end up in Parquet files.

A real repository on SQLite, served by the real app in process (and by a real `potluck serve`
process for the kill and shutdown tests); the files are read back with pyarrow.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from integration_support import END, build_repo

from potluck import FeatureStore
from potluck.feature_logs import FeatureLogger
from potluck.server.app import create_app
from potluck.server.settings import ServerSettings
from potluck.server.store_backend import StoreBackend
from tests_support import free_port, serve, wait_healthy

LOGGED_SERVICE = """
from potluck.feature_logging import LoggingConfig
from potluck.infra.offline_stores.file_source import FileLoggingDestination

logged = FeatureService(
    name="logged",
    features=[driver_stats[["conv_rate", "trips", "city"]], driver_live[["lat"]]],
    logging_config=LoggingConfig(destination=FileLoggingDestination(path={path!r}{partition}), sample_rate={rate}),
)
"""

FEATURES = [
    "driver_stats__conv_rate",
    "driver_stats__trips",
    "driver_stats__city",
    "driver_live__lat",
]


def logged_repo(root: Path, *, rate: float, path: str = "logs", partition_by: list[str] | None = None) -> Path:
    build_repo(root, "sqlite")
    partition = "" if partition_by is None else f", partition_by={partition_by!r}"
    with (root / "features.py").open("a") as out:
        out.write(LOGGED_SERVICE.format(path=path, partition=partition, rate=rate))
    store = FeatureStore(repo_path=root)
    store.apply()
    store.materialize(END - timedelta(days=60), END, ["driver_stats"])
    store.push(
        "driver_live", {"driver_id": [1, 2], "event_timestamp": [END, END], "lat": [1.5, 2.5], "status": ["a", "b"]}
    )
    return root


@contextmanager
def logging_server(root: Path, logger: FeatureLogger, **settings: Any) -> Iterator[httpx.Client]:
    store = FeatureStore(repo_path=root)
    app = create_app(StoreBackend(store), ServerSettings(**settings), feature_log=logger)
    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        yield http
    logger.close()


def read_logs(path: Path) -> pa.Table:
    """Every log file under `path` (hidden temporary files are skipped, as every reader does)."""
    return ds.dataset(path, format="parquet", ignore_prefixes=["."]).to_table()


def metric(text: str, name: str, service: str | None = "logged") -> float:
    label = f'{{feature_service="{service}"}}' if service else ""
    for line in text.splitlines():
        if line.startswith(f"{name}{label} "):
            return float(line.split()[-1])
    raise AssertionError(f"{name}{label} not in /metrics")


def read(http: httpx.Client, drivers: list[int], request_id: str | None = None) -> dict[str, Any]:
    headers = {"X-Request-ID": request_id} if request_id else {}
    body = {"feature_service": "logged", "entities": {"driver_id": drivers}, "full_feature_names": True}
    response = http.post("/get-online-features", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_sampled_share_is_logged_with_values_statuses_and_times(tmp_path: Path) -> None:
    root = logged_repo(tmp_path / "repo", rate=0.3)
    seed, requests = 20240601, 300
    logger = FeatureLogger(queue_rows=100_000, flush_rows=50, flush_interval=0.2, rng=random.Random(seed))
    answers: dict[str, dict[str, Any]] = {}
    started = datetime.now(UTC)
    with logging_server(root, logger) as http:
        for i in range(requests):
            drivers = [i % 150 + 1, 10_000 + i] if i % 2 else [i % 150 + 1]  # 10_000+: not found
            answers[f"req-{i}"] = read(http, drivers, f"req-{i}")
        # A read by feature references is not a feature service read: never logged.
        refs = {"features": ["driver_stats:trips"], "entities": {"driver_id": [1]}}
        assert http.post("/get-online-features", json=refs, headers={"X-Request-ID": "by-refs"}).status_code == 200
    finished = datetime.now(UTC)

    draws = random.Random(seed)
    expected = {f"req-{i}" for i in range(requests) if draws.random() < 0.3}
    # The share sampled is within binomial tolerance (4 standard deviations) ...
    mean, sd = requests * 0.3, math.sqrt(requests * 0.3 * 0.7)
    assert abs(len(expected) - mean) < 4 * sd
    table = read_logs(root / "logs")
    rows = table.to_pylist()
    # ... and exactly the seeded draws are the requests logged, every entity row of each.
    assert {r["__request_id"] for r in rows} == expected
    assert len(rows) == sum(len(answers[r]["results"][0]["values"]) for r in expected)

    schema = pq.read_schema(next((root / "logs").rglob("*.parquet")))
    ts = pa.timestamp("us", tz="UTC")
    assert [(f.name, f.type) for f in schema] == [
        ("driver_id", pa.int64()),
        ("driver_stats__conv_rate", pa.float64()),
        ("driver_stats__conv_rate__timestamp", ts),
        ("driver_stats__conv_rate__status", pa.int32()),
        ("driver_stats__trips", pa.int64()),
        ("driver_stats__trips__timestamp", ts),
        ("driver_stats__trips__status", pa.int32()),
        ("driver_stats__city", pa.string()),
        ("driver_stats__city__timestamp", ts),
        ("driver_stats__city__status", pa.int32()),
        ("driver_live__lat", pa.float64()),
        ("driver_live__lat__timestamp", ts),
        ("driver_live__lat__status", pa.int32()),
        ("__log_timestamp", ts),
        ("__log_date", pa.date32()),
        ("__request_id", pa.string()),
    ]
    codes = {"PRESENT": 1, "NOT_FOUND": 3, "OUTSIDE_MAX_AGE": 4}
    by_request: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_request.setdefault(r["__request_id"], []).append(r)
    statuses_seen: set[int] = set()
    for request_id, logged in by_request.items():
        answer = answers[request_id]
        columns = dict(zip(answer["metadata"]["feature_names"], answer["results"], strict=True))
        logged.sort(key=lambda r: columns["driver_id"]["values"].index(r["driver_id"]))
        assert [r["driver_id"] for r in logged] == columns["driver_id"]["values"]
        assert len({r["__log_timestamp"] for r in logged}) == 1
        for row_index, r in enumerate(logged):
            assert started <= r["__log_timestamp"] <= finished
            assert r["__log_date"] == r["__log_timestamp"].date()
            for name in FEATURES:
                served = columns[name]
                assert r[name] == served["values"][row_index], (request_id, name)
                assert r[f"{name}__status"] == codes[served["statuses"][row_index]]
                statuses_seen.add(r[f"{name}__status"])
                stamp = served["event_timestamps"][row_index]
                if served["statuses"][row_index] == "NOT_FOUND":
                    assert r[f"{name}__timestamp"] is None
                else:
                    assert r[f"{name}__timestamp"] == datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert statuses_seen >= {1, 3}
    # Hive-style folders by log date; nothing else (no leftover temporary file) in them.
    folders = {p.parent.name for p in (root / "logs").rglob("*") if p.is_file()}
    assert folders <= {f"__log_date={d}" for d in {started.date(), finished.date()}}
    assert not list((root / "logs").rglob(".*"))


def test_partition_by_join_key(tmp_path: Path) -> None:
    root = logged_repo(tmp_path / "repo", rate=1.0, partition_by=["driver_id"])
    logger = FeatureLogger(queue_rows=1000, flush_rows=1000, flush_interval=3600)
    with logging_server(root, logger) as http:
        read(http, [1, 2, 1])
        read(http, [3])
    files = sorted(p.relative_to(root / "logs") for p in (root / "logs").rglob("*.parquet"))
    today = date.today().isoformat()
    assert [f.parts[:2] for f in files] == [(f"__log_date={today}", f"driver_id={d}") for d in (1, 2, 3)]
    assert sorted(pq.read_table(root / "logs" / files[0]).column("driver_id").to_pylist()) == [1, 1]


def test_logging_switched_off_in_the_server_settings(tmp_path: Path) -> None:
    root = logged_repo(tmp_path / "repo", rate=1.0)
    logger = FeatureLogger(queue_rows=1000, flush_rows=1, flush_interval=0.05)
    with logging_server(root, logger, feature_log_enabled=False) as http:
        read(http, [1])
    assert logger.stats().logged_rows == {}
    assert not (root / "logs").exists()


def test_full_queue_drops_and_counts_while_every_request_succeeds(tmp_path: Path) -> None:
    root = logged_repo(tmp_path / "repo", rate=1.0)
    # The writer only writes at shutdown: the queue holds 5 rows, the rest is dropped.
    logger = FeatureLogger(queue_rows=5, flush_rows=10**9, flush_interval=3600)
    with logging_server(root, logger) as http:
        for i in range(20):
            read(http, [i + 1])
        text = http.get("/metrics").text
        assert metric(text, "potluck_feature_log_dropped_rows_total") == 15
        assert metric(text, "potluck_feature_log_queue_rows", None) == 5
    stats = logger.stats()
    assert stats.logged_rows == {"logged": 5}
    assert stats.queued_rows == 0
    assert read_logs(root / "logs").num_rows == 5


def test_unwritable_destination_is_counted_and_serving_goes_on(tmp_path: Path) -> None:
    root = logged_repo(tmp_path / "repo", rate=1.0, path="data/driver_stats.parquet/logs")  # under a file
    logger = FeatureLogger(queue_rows=1000, flush_rows=1, flush_interval=0.05)
    with logging_server(root, logger) as http:
        for i in range(10):
            read(http, [i + 1])
        deadline = time.monotonic() + 10
        while logger.stats().queued_rows and time.monotonic() < deadline:
            time.sleep(0.02)
        text = http.get("/metrics").text
        assert metric(text, "potluck_feature_log_flush_errors_total") >= 1
        assert metric(text, "potluck_feature_log_dropped_rows_total") == 10
        read(http, [1])  # still answering
    assert logger.stats().logged_rows == {}


def wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + 60  # a writer process starts in seconds, more on a busy machine
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_a_killed_writer_process_is_counted_and_replaced(tmp_path: Path) -> None:
    from potluck.feature_logs.process import ProcessWriter

    root = logged_repo(tmp_path / "repo", rate=1.0)
    writer = ProcessWriter()
    logger = FeatureLogger(queue_rows=1000, flush_rows=1, flush_interval=0.05, writer=writer)
    with logging_server(root, logger) as http:
        read(http, [1])
        wait_for(lambda: logger.stats().logged_rows.get("logged") == 1, "the first request was not logged")
        first = writer.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: writer.pid is None, "the writer process did not die")
        for i in range(5):
            read(http, [i + 1])  # answered while the writer is down
        wait_for(lambda: logger.stats().logged_rows.get("logged", 0) >= 2, "logging did not resume")
        assert writer.pid not in (None, first)
    stats = logger.stats()
    # every row is accounted for: written, or dropped by a write that failed (and counted)
    assert stats.logged_rows["logged"] + stats.dropped_rows.get("logged", 0) == 6
    assert bool(stats.dropped_rows.get("logged")) == bool(stats.flush_errors.get("logged"))
    assert writer.pid is None  # closed with the app


# --------------------------------------------------------------------------------------------- a real process


def child_pids(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return children


def start_serve(root: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "potluck.cli", "-c", str(root), "serve", "--port", str(port), "--no-access-log"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def server_yaml(root: Path, **settings: object) -> None:
    lines = "".join(f"  {k}: {v}\n" for k, v in settings.items())
    with (root / "feature_store.yaml").open("a") as out:
        out.write("feature_server:\n" + lines)


@pytest.mark.slow
def test_sigkill_mid_logging_leaves_no_half_written_file(tmp_path: Path) -> None:
    root = logged_repo(tmp_path / "repo", rate=1.0)
    server_yaml(root, feature_log_flush_rows=20, feature_log_flush_interval_seconds=0.01)
    port = free_port()
    proc = start_serve(root, port)
    stop = threading.Event()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            wait_healthy(http, proc)

            def load() -> None:
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                    while not stop.is_set():
                        try:
                            read(client, list(range(1, 101)))
                        except (httpx.TransportError, AssertionError):
                            return

            workers = [threading.Thread(target=load) for _ in range(3)]
            for w in workers:
                w.start()
            deadline = time.monotonic() + 30
            while len(list((root / "logs").rglob("*.parquet"))) < 20 and time.monotonic() < deadline:
                time.sleep(0.05)
            writers = child_pids(proc.pid)  # its log writer process
            assert writers, "no writer process"
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            stop.set()
            for w in workers:
                w.join(15)
            # The writer finishes the batch it was sent, then ends at end of input: it leaves no process behind.
            wait_for(
                lambda: not any(Path(f"/proc/{pid}").exists() for pid in writers), "the writer outlived the server"
            )
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    files = list((root / "logs").rglob("*.parquet"))
    assert len(files) >= 20
    for path in files:  # every visible file is whole: it reads, and holds whole requests
        table = pq.read_table(path)
        assert table.num_rows > 0, path
        assert table.num_rows % 100 == 0, path
    assert read_logs(root / "logs").num_rows == sum(pq.read_metadata(p).num_rows for p in files)


@pytest.mark.slow
def test_graceful_shutdown_writes_what_is_queued(tmp_path: Path) -> None:
    root = logged_repo(tmp_path / "repo", rate=1.0)
    # Nothing would be written before the shutdown: only the shutdown writes these rows.
    server_yaml(root, feature_log_flush_rows=1_000_000, feature_log_flush_interval_seconds=3600)
    port = free_port()
    proc = start_serve(root, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            wait_healthy(http, proc)
            for i in range(25):
                read(http, [i + 1, i + 2], f"shutdown-{i}")
        assert not list((root / "logs").rglob("*.parquet"))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once shut down
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    table = read_logs(root / "logs")
    assert table.num_rows == 50
    assert set(table.column("__request_id").to_pylist()) == {f"shutdown-{i}" for i in range(25)}


def test_a_request_whose_values_do_not_convert_is_left_out_alone(tmp_path: Path) -> None:
    from potluck.feature_logs.writer import write_records
    from potluck.server.serialize import online_body
    from potluck.server.store_backend import log_spec

    root = logged_repo(tmp_path / "repo", rate=1.0)
    store = FeatureStore(repo_path=root)
    spec = log_spec(store, "logged")
    assert spec is not None
    backend = StoreBackend(store)

    async def answers() -> list[bytes]:
        found = [await backend.get_online_features(None, "logged", {"driver_id": [i, i + 1]}, True) for i in (1, 5)]
        return [online_body(r) for r in found]

    good = asyncio.run(answers())
    # A join key that is not an Int64 (what a lenient client library might send): its request alone is left out.
    bad = good[0].replace(b'"values":[1,2]', b'"values":["x","y"]', 1)
    assert bad != good[0]
    records = [
        (spec, "good-0", time.time(), 2, good[0], None),
        (spec, "bad", time.time(), 2, bad, None),
        (spec, "good-1", time.time(), 2, good[1], None),
    ]
    assert write_records(spec, records) == 2
    table = read_logs(root / "logs")
    assert sorted(table.column("__request_id").to_pylist()) == ["good-0", "good-0", "good-1", "good-1"]
    assert sorted(table.column("driver_id").to_pylist()) == [1, 2, 5, 6]


ODFV_SERVICE = """
from potluck.feature_logging import LoggingConfig
from potluck.infra.offline_stores.file_source import FileLoggingDestination

logged = FeatureService(
    name="logged",
    features=[stats[["trips"]], scored_python, scored_arrow[["score"]]],
    logging_config=LoggingConfig(destination=FileLoggingDestination(path="logs"), sample_rate=1.0),
)
"""


def test_services_with_on_demand_views_log_their_outputs_and_request_data(tmp_path: Path) -> None:
    """Each output is logged with its own value and status; the request fields the views read are
    logged by name (Feast's log schema), next to the join keys."""
    from odfv_support import BASE_ROWS, build
    from odfv_support import FEATURES as ODFV_FEATURES

    root = build(tmp_path / "repo", ODFV_FEATURES + ODFV_SERVICE)
    store = FeatureStore(repo_path=root)
    store.apply()
    store.materialize(datetime(2023, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))
    stats = {d: (conv, trips, city) for d, conv, trips, city in BASE_ROWS}
    # (driver, bonus): a null bonus with found inputs is a null score (NULL_VALUE) but a present label
    requests = [[(1, 0.25), (2, 1.0)], [(3, None), (99, 2.0)], [(1, None)], [(2, 0.5), (3, 1.5), (1, 4.0)]]
    logger = FeatureLogger(queue_rows=1000, flush_rows=10**9, flush_interval=3600)
    answers = {}
    with logging_server(root, logger) as http:
        for i, rows in enumerate(requests):
            body = {
                "feature_service": "logged",
                "entities": {"driver_id": [d for d, _ in rows], "bonus": [b for _, b in rows]},
                "full_feature_names": True,
            }
            response = http.post("/get-online-features", json=body, headers={"X-Request-ID": f"r{i}"})
            assert response.status_code == 200, response.text
            answers[f"r{i}"] = response.json()
    table = read_logs(root / "logs")
    outputs = ["stats__trips", "scored_python__score", "scored_python__label", "scored_arrow__score"]
    names = table.column_names
    assert names[:2] == ["driver_id", "bonus"]
    assert table.schema.field("bonus").type == pa.float64()
    for name in outputs:
        assert [f"{name}", f"{name}__timestamp", f"{name}__status"] == names[names.index(name) : names.index(name) + 3]
    codes = {"PRESENT": 1, "NULL_VALUE": 2, "NOT_FOUND": 3}
    logged = sorted(table.to_pylist(), key=lambda r: (r["__request_id"], r["driver_id"]))
    expected = []
    for i, rows in enumerate(requests):
        answer = answers[f"r{i}"]
        served = dict(zip(answer["metadata"]["feature_names"], answer["results"], strict=True))
        for j, (driver, bonus) in enumerate(rows):
            found = driver in stats
            conv, trips, city = stats.get(driver, (None, None, None))
            score = None if conv is None or bonus is None else conv * 2 + bonus
            row: dict[str, Any] = {"__request_id": f"r{i}", "driver_id": driver, "bonus": bonus}
            by_hand = {
                "stats__trips": (trips, "PRESENT" if found else "NOT_FOUND"),
                "scored_python__score": (score, "NOT_FOUND" if not found else "PRESENT" if score is not None else "NULL_VALUE"),
                "scored_python__label": (city, "NOT_FOUND" if not found else "PRESENT" if city is not None else "NULL_VALUE"),
                "scored_arrow__score": (score, "NOT_FOUND" if not found else "PRESENT" if score is not None else "NULL_VALUE"),
            }  # fmt: skip
            for name, (value, status) in by_hand.items():
                assert served[name]["values"][j] == value, (name, j)
                assert served[name]["statuses"][j] == status, (name, j)
                row[name] = value
                row[f"{name}__status"] = codes[status]
            expected.append(row)
    expected.sort(key=lambda r: (r["__request_id"], r["driver_id"]))
    assert [{k: r[k] for k in expected[0]} for r in logged] == expected
    # Computed outputs are served at epoch zero (Feast's convention), and logged so; not found: no time.
    for r in logged:
        for name in outputs[1:]:
            zero = datetime(1970, 1, 1, tzinfo=UTC)
            assert r[f"{name}__timestamp"] == (None if r[f"{name}__status"] == 3 else zero)
