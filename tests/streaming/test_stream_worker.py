"""The stream worker end to end on Redis Streams (the machine's Redis) into SQLite and Redis online
stores: plain and aggregation views, late, out-of-order and bad messages, the offline log, replays
and an online store outage, each checked against a brute-force computation over the produced events."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aggregation_reference import close, expected
from potluck import FeatureStore
from potluck.streaming.sources.redis_streams import entry_offset
from tests_support import free_port, require_server, start_redis_server

SECOND = 1_000_000
RIDERS = list(range(1, 9))
WINDOWS = {  # output -> (function, window, hop) in microseconds
    "count_fare_3600s": ("count", 3600 * SECOND, 300 * SECOND),
    "sum_fare_86400s": ("sum", 86400 * SECOND, 3600 * SECOND),
    "max_fare_86400s": ("max", 86400 * SECOND, 3600 * SECOND),
}
FEATURES = ["rider_fare:fare", *(f"ride_stats:{name}" for name in WINDOWS)]

FEATURES_PY = """\
from datetime import timedelta

from potluck import Entity, FeatureView, Field, FileSource, RedisStreamSource, ValueType
from potluck.aggregation import Aggregation
from potluck.data_format import JsonFormat
from potluck.definitions.aggregation_views import StreamFeatureView
from potluck.types import Float64

rider = Entity(name="rider", join_keys=["rider_id"], value_type=ValueType.INT64)
rides = RedisStreamSource(
    name="rides",
    stream="{stream}",
    connection_string="127.0.0.1:6379",
    timestamp_field="event_timestamp",
    message_format=JsonFormat(schema_json="rider_id integer, event_timestamp timestamp, fare double"),
    batch_source=FileSource(name="rides_log", path="data/rides", timestamp_field="event_timestamp"),
)
ride_stats = StreamFeatureView(
    name="ride_stats",
    entities=[rider],
    source=rides,
    timestamp_field="event_timestamp",
    schema=[Field(name="fare", dtype=Float64)],
    aggregations=[
        Aggregation(column="fare", function="count", time_window=timedelta(hours=1)),
        Aggregation(column="fare", function="sum", time_window=timedelta(days=1)),
        Aggregation(column="fare", function="max", time_window=timedelta(days=1)),
    ],
)
rider_fare = FeatureView(name="rider_fare", entities=[rider], ttl=timedelta(0), schema=[Field(name="fare", dtype=Float64)], source=rides)
"""


@pytest.fixture
def stream_name() -> Iterator[str]:
    require_server("Redis", "127.0.0.1", 6379)
    import redis

    name = f"potluck-test-{uuid.uuid4().hex[:10]}"
    yield name
    client = redis.Redis(host="127.0.0.1", port=6379)
    client.delete(name, *client.keys(f"{name}:*"))
    client.close()


def make_repo(root: Path, stream: str, online: str = "  type: sqlite\n  path: data/online.db\n") -> FeatureStore:
    (root / "data" / "rides").mkdir(parents=True, exist_ok=True)
    (root / "feature_store.yaml").write_text(
        f"project: rides\nregistry: data/registry.db\nonline_store:\n{online}"
        "stream:\n  batch_size: 40\n  batch_interval_seconds: 0.2\n"
    )
    (root / "features.py").write_text(FEATURES_PY.replace("{stream}", stream))
    store = FeatureStore(repo_path=root)
    store.apply()
    return store


def make_events(seed: int, now: datetime, n: int = 240) -> list[dict[str, Any]]:
    """Events out of time order: most in the last 50 minutes, some 70 min to 20 h old, a few 3 days
    old (late: behind every window). Times avoid window edges, so any read in the next minutes sees
    the same window contents; every time is distinct."""
    rng = random.Random(seed)
    base = int(now.timestamp() * SECOND)
    events = []
    for i in range(n):
        kind = rng.random()
        if kind < 0.03:
            age = 3 * 86400 * SECOND + rng.randint(0, 3600) * SECOND
        elif kind < 0.25:
            age = rng.randint(70 * 60, 20 * 3600) * SECOND
        else:
            age = rng.randint(1, 50 * 60) * SECOND
        events.append({"key": rng.choice(RIDERS), "ts": base - age - i, "value": float(rng.randint(-50, 500)) / 4})
    return events


def payload(e: dict[str, Any]) -> bytes:
    ts = datetime.fromtimestamp(e["ts"] / SECOND, UTC).isoformat()
    return json.dumps({"rider_id": e["key"], "event_timestamp": ts, "fare": e["value"]}).encode()


BAD = [b"not json", b'{"event_timestamp": "2026-01-01T00:00:00Z", "fare": 1.0}', b'{"rider_id": 1, "fare": 2.0}']


def produce(stream: str, messages: list[bytes]) -> list[int]:
    """XADD each message as the `value` field; returns their offsets as the plugin numbers them."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379)
    pipe = client.pipeline(transaction=False)
    for m in messages:
        pipe.xadd(stream, {"value": m})
    ids = pipe.execute()
    client.close()
    return [entry_offset(raw) for raw in ids]


def mixed(events: list[dict[str, Any]], seed: int) -> tuple[list[bytes], list[int]]:
    """The events' payloads with the bad messages spread among them, and the bad ones' indexes."""
    rng = random.Random(seed)
    messages = [payload(e) for e in events]
    bad_at = []
    for bad in BAD * 2:
        at = rng.randint(0, len(messages))
        messages.insert(at, bad)
    bad_at = [i for i, m in enumerate(messages) if m in BAD]
    return messages, bad_at


def online_state(store: FeatureStore) -> dict[str, list[Any]]:
    rows = [{"rider_id": r} for r in [*RIDERS, 99]]
    return store.get_online_features(FEATURES, rows).to_dict()


def check_against_brute_force(store: FeatureStore, events: list[dict[str, Any]]) -> int:
    """Online values and training data at the same time equal the brute force; returns that time."""
    t_read = int(time.time() * SECOND)
    got = online_state(store)
    for i, rider in enumerate(RIDERS):
        mine = [e for e in events if e["key"] == rider]
        newest = max(mine, key=lambda e: e["ts"])["value"] if mine else None
        assert got["fare"][i] == newest, (rider, got["fare"][i], newest)
        for name, (function, window, hop) in WINDOWS.items():
            want = expected(
                [{**e, "created": None, "arrival": 0} for e in events], rider, t_read, function, window, hop
            )
            assert close(got[name][i], want), (rider, name, got[name][i], want)
    assert [got[name][-1] for name in ["fare", *WINDOWS]] == [None, None, None, None]  # never seen
    import pandas as pd

    when = datetime.fromtimestamp(t_read / SECOND, UTC)
    entity_df = pd.DataFrame({"rider_id": RIDERS, "event_timestamp": [when] * len(RIDERS)})
    training = store.get_historical_features(entity_df, FEATURES).to_df().sort_values("rider_id")
    for name in ["fare", *WINDOWS]:
        offline = [None if pd.isna(v) else float(v) for v in training[name]]
        online = [None if v is None else float(v) for v in got[name][: len(RIDERS)]]
        assert all(close(a, b) for a, b in zip(offline, online, strict=True)), (name, offline, online)
    return t_read


def offline_log(root: Path) -> Counter[tuple[int, int, float]]:
    import pyarrow.parquet as pq

    rows: Counter[tuple[int, int, float]] = Counter()
    for path in sorted((root / "data" / "rides").glob("*.parquet")):
        table = pq.read_table(path).to_pydict()
        for rider, ts, fare in zip(table["rider_id"], table["event_timestamp"], table["fare"], strict=True):
            rows[(rider, int(ts.timestamp() * SECOND), fare)] += 1
    return rows


def produced(events: list[dict[str, Any]]) -> Counter[tuple[int, int, float]]:
    return Counter((e["key"], e["ts"], e["value"]) for e in events)


def dead_offsets(root: Path) -> list[int]:
    from potluck.streaming.dead_letter import read_dead_letters

    return sorted(read_dead_letters(str(root / "data" / "dead_letter"), source="rides").column("offset").to_pylist())


def test_worker_writes_online_offline_and_dead_letters_exactly_once(tmp_path: Path, stream_name: str) -> None:
    now = datetime.now(UTC)
    events = make_events(1, now)
    messages, bad_at = mixed(events, 2)
    offsets = produce(stream_name, messages)
    store = make_repo(tmp_path, stream_name)
    summary = store.run_stream(exit_when_idle=1.0)
    late = sum(1 for e in events if now.timestamp() * SECOND - e["ts"] > 2 * 86400 * SECOND)
    assert late > 0
    assert summary["messages"] == len(messages)
    assert summary["dead_letters"] == len(bad_at)
    assert summary["late"] == late
    assert summary["written"]["rider_fare"] == len(events)
    assert summary["written"]["ride_stats"] == len(events) - late
    check_against_brute_force(store, events)
    assert offline_log(tmp_path) == produced(events)
    assert dead_offsets(tmp_path) == sorted(offsets[i] for i in bad_at)

    # A replay of everything (the group's position reset): nothing changes, nothing is duplicated.
    import redis

    before = online_state(store)
    client = redis.Redis(host="127.0.0.1", port=6379)
    client.xgroup_setid(stream_name, "potluck-rides", "0")
    client.close()
    again = store.run_stream(exit_when_idle=1.0)
    assert again["messages"] == len(messages)
    assert again["replayed"] == len(events)  # every event of the tiles skipped by its offset
    assert again["late"] == 0
    assert online_state(store) == before
    assert offline_log(tmp_path) == produced(events)
    assert dead_offsets(tmp_path) == sorted(offsets[i] for i in bad_at)

    # More events after the replay are applied.
    more = make_events(3, datetime.now(UTC), n=60)
    produce(stream_name, [payload(e) for e in more])
    store.run_stream(exit_when_idle=1.0)
    check_against_brute_force(store, events + more)
    assert offline_log(tmp_path) == produced(events + more)
    store.close()


def test_uncommitted_offline_files_are_rewritten_not_duplicated(tmp_path: Path, stream_name: str) -> None:
    """Files a killed run wrote past the committed position are removed before those events come again."""
    import pyarrow.parquet as pq

    events = make_events(5, datetime.now(UTC), n=80)
    produce(stream_name, [payload(e) for e in events])
    store = make_repo(tmp_path, stream_name)
    store.run_stream(exit_when_idle=1.0)
    files = sorted((tmp_path / "data" / "rides").glob("stream-*.parquet"))
    assert len(files) >= 2
    # As if a run had written the last batch's file again under a later offset and died before committing:
    ghost = files[-1].with_name(files[-1].name[:-28] + f"{10**19:020d}.parquet")
    pq.write_table(pq.read_table(files[-1]), ghost)
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379)
    client.xgroup_setid(stream_name, "potluck-rides", "0")
    client.close()
    store.run_stream(exit_when_idle=1.0)
    assert not ghost.exists()
    assert offline_log(tmp_path) == produced(events)
    store.close()


def test_online_store_outage_pauses_and_loses_nothing(tmp_path: Path, stream_name: str) -> None:
    """The online store (a private redis-server) frozen mid-run, then thawed: the final state equals
    the brute force, and the batch in hand was retried, not dropped nor committed early."""
    port = free_port()
    server = start_redis_server(port, tmp_path)
    try:
        online = f"  type: redis\n  connection_string: 127.0.0.1:{port},socket_timeout=0.5,socket_connect_timeout=0.5\n"
        store = make_repo(tmp_path / "repo", stream_name, online)
        events = make_events(9, datetime.now(UTC), n=300)
        chunks = [events[i : i + 10] for i in range(0, len(events), 10)]
        produce(stream_name, [payload(e) for e in chunks[0]])
        result: dict[str, Any] = {}

        def work() -> None:
            result.update(store.run_stream(exit_when_idle=3.0))

        worker = threading.Thread(target=work)
        worker.start()
        for i, chunk in enumerate(chunks[1:]):
            if i == 8:
                os.kill(server.pid, signal.SIGSTOP)
            if i == 20:
                os.kill(server.pid, signal.SIGCONT)
            produce(stream_name, [payload(e) for e in chunk])
            time.sleep(0.1)
        worker.join(120)
        assert not worker.is_alive()
        assert result["pauses"] >= 1
        assert result["dead_letters"] == 0
        check_against_brute_force(store, events)
        store.close()
    finally:
        os.kill(server.pid, signal.SIGCONT)
        server.kill()
        server.wait()


def test_cli_runs_as_a_subprocess_with_exit_codes(tmp_path: Path, stream_name: str) -> None:
    import subprocess
    import sys

    events = make_events(11, datetime.now(UTC), n=50)
    produce(stream_name, [payload(e) for e in events])
    store = make_repo(tmp_path, stream_name)
    potluck = [str(Path(sys.executable).with_name("potluck")), "-c", str(tmp_path), "stream", "run"]
    done = subprocess.run(
        [*potluck, "--exit-when-idle", "1", "-o", "json"], check=False, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["messages"], summary["written"]["rider_fare"], summary["stopped_by"]) == (50, 50, "idle")
    check_against_brute_force(store, events)
    unknown = subprocess.run([*potluck, "-v", "rider_far"], check=False, capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 1
    assert "rider_far" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    store.close()


def test_exit_when_idle_ends_as_unavailable_when_the_source_stays_unreachable(
    tmp_path: Path, stream_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import potluck.streaming.worker as worker_module

    monkeypatch.setattr(worker_module, "UNAVAILABLE_AFTER", 1.0)
    dead = free_port()  # nothing listens there
    store = make_repo(tmp_path, stream_name)
    (tmp_path / "features.py").write_text(
        FEATURES_PY.replace("{stream}", stream_name).replace("127.0.0.1:6379", f"127.0.0.1:{dead}")
    )
    store.apply()
    began = time.monotonic()
    summary = store.run_stream(exit_when_idle=0.5)
    assert summary["stopped_by"] == "unavailable"
    assert summary["messages"] == 0
    assert time.monotonic() - began < 60  # it ended on its own rather than waiting for the source forever
    store.close()
