"""Soak test of the feature server under mixed load with a backend frozen midway (loopback only).

Starts a private redis-server (the online store), a registry (a SQLite file, or a fresh PostgreSQL
database), and `potluck serve` with authentication on. Then, for --minutes, client processes run
side by side:

- 2 readers: POST /get-online-features (1-10 entities), --read-interval apart;
- 2 pushers: POST /push to online_and_offline, each writer owning its own entities, one new event
  time per push, remembering every acknowledged (200) write;
- 2 scrapers: GET /metrics every 100 ms;
- 1 admin: POST /materialize-incremental every 2 s, remembering every acknowledged run;
- 1 prober: GET /health every 20 ms, timing each answer.

Midway the backend named by --freeze (the Redis server, the registry's PostgreSQL backends, or
both) is stopped with SIGSTOP for --freeze-seconds, then resumed with SIGCONT. Afterwards the
acknowledged writes are checked: every pushed row is online (or superseded by a newer one of
the same entity) and in the offline files, and every acknowledged materialization is recorded.

    python benchmarks/soak.py --registry sqlite --minutes 3 --freeze redis
    python benchmarks/soak.py --registry postgres --minutes 3 --freeze both \\
        --out benchmarks/results/soak_postgres.json

Pass: no 5xx other than 503 (a backend is unavailable; retryable), 503s only while a backend is
frozen or just after, no transport errors, the server alive at the end, /health p99 under 10 ms,
and every acknowledged write present.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
POTLUCK = str(Path(sys.executable).with_name("potluck"))
PG_ADMIN = os.environ.get("POTLUCK_SOAK_PG", "host=127.0.0.1 port=5432 user=postgres dbname=test")
ENTITIES_PER_PUSHER = 200

FEATURES_PY = """\
from datetime import timedelta

from potluck import Entity, FeatureView, Field, FileSource, PushSource, ValueType
from potluck.types import Float64, Int64

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
live = PushSource(
    name="driver_live",
    batch_source=FileSource(name="driver_live_batch", path="data/live", timestamp_field="event_timestamp"),
)
driver_live = FeatureView(
    name="driver_live",
    entities=[driver],
    ttl=timedelta(days=30),
    schema=[Field(name="seq", dtype=Int64), Field(name="value", dtype=Float64)],
    source=live,
)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@contextmanager
def private_redis(workdir: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not on PATH")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_port(port)
        yield proc, port
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.terminate()
        proc.wait(10)


@contextmanager
def registry_url(kind: str, repo: Path) -> Iterator[tuple[str, str | None]]:
    if kind == "sqlite":
        yield "data/registry.db", None
        return
    import psycopg

    name = f"potluck_soak_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}", name
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def registry_backends(database: str) -> list[int]:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,)).fetchall()
    return [int(r[0]) for r in rows]


def cli(repo: Path, *args: str) -> str:
    done = subprocess.run([POTLUCK, "-c", str(repo), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"potluck {' '.join(args)} failed: {done.stderr}")
    return done.stdout


# -- client roles (each in its own process) ------------------------------------------------------
def _client(key: str) -> Any:
    import httpx

    # Load generators yield the CPU to the server and the /health prober: on a small machine the
    # clients share its cores, and in production they would run elsewhere.
    os.nice(10)

    return httpx.Client(headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"}, timeout=30.0)


def _record(log: list[list[Any]], started: float, status: int | str, seconds: float) -> None:
    log.append([round(started, 3), status, round(seconds * 1000, 3)])


def _timed(log: list[list[Any]], send: Callable[..., Any], url: str, **options: Any) -> int | str:
    """`send(url, **options)`: log its start, status (or error class) and time; return the status."""
    started = time.time()
    try:
        status: int | str = send(url, **options).status_code
    except Exception as err:
        status = type(err).__name__
    _record(log, started, status, time.time() - started)
    return status


def role_reader(url: str, key: str, stop_at: float, out: str, seed: int, interval: float) -> None:
    rng = random.Random(seed)
    log: list[list[Any]] = []
    with _client(key) as http:
        while time.time() < stop_at:
            ids = [rng.randrange(1, 2 * ENTITIES_PER_PUSHER + 1) for _ in range(rng.randint(1, 10))]
            body = {"features": ["driver_live:seq", "driver_live:value"], "entities": {"driver_id": ids}}
            _timed(log, http.post, f"{url}/get-online-features", json=body)
            time.sleep(interval)
    Path(out).write_text(json.dumps({"log": log}))


def role_pusher(url: str, key: str, stop_at: float, out: str, first_id: int) -> None:
    log: list[list[Any]] = []
    acked: list[list[Any]] = []
    seq = 0
    base = datetime.now(UTC) - timedelta(hours=1)
    with _client(key) as http:
        while time.time() < stop_at:
            seq += 1
            driver = first_id + seq % ENTITIES_PER_PUSHER
            stamp = (base + timedelta(microseconds=seq)).isoformat()
            body = {
                "push_source_name": "driver_live",
                "df": {"driver_id": [driver], "event_timestamp": [stamp], "seq": [seq], "value": [seq / 7]},
                "to": "online_and_offline",
            }
            status = _timed(log, http.post, f"{url}/push", json=body)
            if status == 200:
                acked.append([driver, seq, stamp])
            time.sleep(0.01)
    Path(out).write_text(json.dumps({"log": log, "acked": acked}))


def role_scraper(url: str, key: str, stop_at: float, out: str) -> None:
    log: list[list[Any]] = []
    with _client(key) as http:
        while time.time() < stop_at:
            _timed(log, http.get, f"{url}/metrics")
            time.sleep(0.1)
    Path(out).write_text(json.dumps({"log": log}))


def role_admin(url: str, key: str, stop_at: float, out: str) -> None:
    log: list[list[Any]] = []
    acked = 0
    with _client(key) as http:
        while time.time() < stop_at:
            body = {"end_ts": datetime.now(UTC).isoformat()}
            status = _timed(log, http.post, f"{url}/materialize-incremental", json=body)
            acked += status == 200
            time.sleep(2)
    Path(out).write_text(json.dumps({"log": log, "acked": acked}))


def _health_once(sock: socket.socket, request: bytes) -> int:
    """One GET /health on a keep-alive socket; returns the status (the body is read to its end)."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next((int(v) for k, _, v in (x.partition(":") for x in lines[1:]) if k.lower() == "content-length"), 0)
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        body += chunk
    return int(lines[0].split(" ", 2)[1])


def role_prober(url: str, stop_at: float, out: str) -> None:
    # A raw keep-alive socket: an HTTP client library's own overhead (about 1-3 ms per request
    # here) would hide the server's answer time this probe is for.
    host, port = url.removeprefix("http://").split(":")
    request = f"GET /health HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    log: list[list[Any]] = []
    sock: socket.socket | None = None
    while time.time() < stop_at:
        t0 = time.time()
        p0 = time.perf_counter()
        try:
            if sock is None:
                sock = socket.create_connection((host, int(port)), timeout=30)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            status: int | str = _health_once(sock, request)
        except Exception as err:
            status = type(err).__name__
            if sock is not None:
                sock.close()
            sock = None
        _record(log, t0, status, time.perf_counter() - p0)
        time.sleep(0.02)
    if sock is not None:
        sock.close()
    Path(out).write_text(json.dumps({"log": log}))


# -- the run --------------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarize(logs: list[list[Any]], frozen: tuple[float, float], grace: float) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    outside: dict[str, int] = {}
    for started, status, _ms in logs:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        if status != 200 and not (frozen[0] - 1 <= started <= frozen[1] + grace):
            outside[str(status)] = outside.get(str(status), 0) + 1
    latencies = [ms for _, status, ms in logs if status == 200]
    during = [ms for started, status, ms in logs if status == 200 and frozen[0] <= started <= frozen[1]]
    return {
        "p99_ms_while_frozen": percentile(during, 0.99),
        "requests": len(logs),
        "statuses": statuses,
        "non_200_outside_freeze": outside,
        "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies) if latencies else None,
    }


def check_writes(repo: Path, acked: list[list[Any]]) -> dict[str, Any]:
    import pyarrow.dataset as ds

    sys.path.insert(0, str(BENCH.parent / "src"))
    from potluck import FeatureStore

    latest: dict[int, tuple[int, str]] = {}
    for driver, seq, stamp in acked:
        if driver not in latest or seq > latest[driver][0]:
            latest[driver] = (seq, stamp)
    store = FeatureStore(repo_path=repo)
    try:
        ids = sorted(latest)
        online = store.get_online_features(["driver_live:seq"], {"driver_id": ids}).to_dict()
        lost_online = [d for d, s in zip(ids, online["seq"], strict=True) if s is None or s < latest[d][0]]
        files = list((repo / "data" / "live").glob("**/*.parquet"))
        offline_seqs: set[tuple[int, int]] = set()
        if files:
            table = ds.dataset([str(f) for f in files], format="parquet").to_table(columns=["driver_id", "seq"])
            offline_seqs = set(zip(table.column("driver_id").to_pylist(), table.column("seq").to_pylist(), strict=True))
        lost_offline = [a for a in acked if (a[0], a[1]) not in offline_seqs]
        intervals = len(store.materialization_intervals("driver_live"))
    finally:
        store.close()
    return {
        "acked_pushes": len(acked),
        "entities": len(latest),
        "missing_online": len(lost_online),
        "missing_offline": len(lost_offline),
        "offline_files": len(files),
        "recorded_intervals": intervals,
    }


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def sample_rss(pid: int, stop_at: float, out: list[list[float]]) -> None:
    while time.time() < stop_at:
        value = rss_mb(pid)
        if value is not None:
            out.append([round(time.time(), 1), round(value, 1)])
        time.sleep(10)


def freeze(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, sig)


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="potluck-soak-"))
    repo = work / "repo"
    (repo / "data" / "live").mkdir(parents=True)
    (repo / "features.py").write_text(FEATURES_PY)
    with private_redis(work) as (redis_proc, redis_port), registry_url(args.registry, repo) as (reg, database):
        (repo / "feature_store.yaml").write_text(
            f"project: soak\nregistry: {reg}\n"
            f"online_store:\n  type: redis\n  connection_string: 127.0.0.1:{redis_port}\n"
        )
        cli(repo, "apply")
        keys = {
            role: json.loads(cli(repo, "auth", "create-key", "--role", role, "-o", "json"))["key"]
            for role in ("reader", "writer", "admin", "metrics")
        }
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server_log = (work / "server.log").open("w")
        server = subprocess.Popen(
            [POTLUCK, "-c", str(repo), "serve", "--host", "127.0.0.1", "--port", str(port), "--auth", "on",
             "--no-access-log"],
            stdout=server_log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_port(port)
            rss_start = rss_mb(server.pid)
            seconds = args.minutes * 60
            stop_at = time.time() + seconds
            outs = {name: str(work / f"{name}.json") for name in
                    ("reader1", "reader2", "pusher1", "pusher2", "scraper1", "scraper2", "admin", "prober")}  # fmt: skip
            ctx = mp.get_context("spawn")
            procs = [
                ctx.Process(
                    target=role_reader, args=(url, keys["reader"], stop_at, outs["reader1"], 1, args.read_interval)
                ),
                ctx.Process(
                    target=role_reader, args=(url, keys["reader"], stop_at, outs["reader2"], 2, args.read_interval)
                ),
                ctx.Process(target=role_pusher, args=(url, keys["writer"], stop_at, outs["pusher1"], 1)),
                ctx.Process(
                    target=role_pusher, args=(url, keys["writer"], stop_at, outs["pusher2"], 1 + ENTITIES_PER_PUSHER)
                ),
                ctx.Process(target=role_scraper, args=(url, keys["metrics"], stop_at, outs["scraper1"])),
                ctx.Process(target=role_scraper, args=(url, keys["metrics"], stop_at, outs["scraper2"])),
                ctx.Process(target=role_admin, args=(url, keys["admin"], stop_at, outs["admin"])),
                ctx.Process(target=role_prober, args=(url, stop_at, outs["prober"])),
            ]
            for p in procs:
                p.start()
            rss_samples: list[list[float]] = []
            sampler = threading.Thread(
                target=sample_rss, args=(server.pid, stop_at, rss_samples), name="rss-sampler", daemon=True
            )
            sampler.start()
            time.sleep(max(0.0, seconds / 2 - args.freeze_seconds / 2))
            targets: list[int] = []
            if args.freeze in ("redis", "both"):
                targets.append(redis_proc.pid)
            if args.freeze in ("registry", "both") and database is not None:
                targets.extend(registry_backends(database))
            frozen_from = time.time()
            freeze(targets, signal.SIGSTOP)
            time.sleep(args.freeze_seconds)
            freeze(targets, signal.SIGCONT)
            frozen_until = time.time()
            for p in procs:
                p.join(seconds + 120)
            alive = server.poll() is None
            rss_end = rss_mb(server.pid)
            sampler.join(10)
        finally:
            server.terminate()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
            server_log.close()
        results = {name: json.loads(Path(path).read_text()) for name, path in outs.items() if Path(path).exists()}
        window = (frozen_from, frozen_until)
        grace = args.grace_seconds
        acked = [a for name in ("pusher1", "pusher2") for a in results.get(name, {}).get("acked", [])]
        writes = check_writes(repo, acked)
        writes["acked_materializations"] = results.get("admin", {}).get("acked", 0)
        by_role = {
            "get-online-features": summarize(results["reader1"]["log"] + results["reader2"]["log"], window, grace),
            "push": summarize(results["pusher1"]["log"] + results["pusher2"]["log"], window, grace),
            "metrics": summarize(results["scraper1"]["log"] + results["scraper2"]["log"], window, grace),
            "materialize-incremental": summarize(results["admin"]["log"], window, grace),
            "health": summarize(results["prober"]["log"], window, grace),
        }
        errors_5xx = {
            role: {s: n for s, n in r["statuses"].items() if s.isdigit() and int(s) >= 500 and s != "503"}
            for role, r in by_role.items()
        }
        transport = {role: {s: n for s, n in r["statuses"].items() if not s.isdigit()} for role, r in by_role.items()}
        health_p99 = by_role["health"]["p99_ms"]
        passed = (
            alive
            and not any(errors_5xx.values())
            and not any(transport.values())
            and not any(r["non_200_outside_freeze"] for r in by_role.values())
            and health_p99 is not None
            and health_p99 < 10
            and by_role["health"]["statuses"].get("200", 0) == by_role["health"]["requests"]
            and writes["missing_online"] == 0
            and writes["missing_offline"] == 0
            and writes["recorded_intervals"] >= writes["acked_materializations"]
        )
        shutil.rmtree(work, ignore_errors=True)
        return {
            "registry": args.registry,
            "freeze": args.freeze,
            "minutes": args.minutes,
            "freeze_seconds": args.freeze_seconds,
            "read_interval": args.read_interval,
            "server_alive": alive,
            "server_rss_mb": {"start": rss_start, "end": rss_end, "every_10s": [r for _, r in rss_samples]},
            "routes": by_role,
            "5xx_other_than_503": errors_5xx,
            "transport_errors": transport,
            "writes": writes,
            "passed": passed,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registry", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--freeze", choices=["redis", "registry", "both", "none"], default="redis")
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--freeze-seconds", type=float, default=20.0)
    parser.add_argument("--grace-seconds", type=float, default=5.0, help="503s allowed this long after resuming.")
    parser.add_argument(
        "--read-interval", type=float, default=0.005, help="seconds each reader waits between reads (0: back to back)"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
