"""Feature servers side by side: `potluck serve` vs `feast serve`, same data, same client, loopback only.

    python benchmarks/server_bench.py                         # redis + sqlite, 2 workers, 20 s per run
    python benchmarks/server_bench.py --backends redis --duration 5 --soak 0   # quick check

For each backend (a private redis-server on a free loopback port, and SQLite) the workload's data is
generated (`--rows` feature rows, 5/6 of them user rows), applied and materialized with both tools
(benchmarks/runners/store_runner.py), then each tool's server is started in turn on a free loopback
port with the same worker count and loaded by `wrk` (keep-alive connections, POST bodies from
benchmarks/server_wrk.lua): 1 and 100 entity rows per request, 12 features over 2 views, in Feast's
JSON (both servers accept it), at each concurrency (1 connection = sequential latency). Each run is
bounded by `--duration`; a longer soak of Potluck (`--soak` seconds, a mix of 1- and 100-entity
requests) samples the server's RSS every `--soak-interval` seconds. The client's own CPU time and the
server processes' CPU time are measured for every run, so a saturated client would show.

Before loading, one 100-entity answer of each server is compared cell by cell; the comparison and
every figure are written to benchmarks/results/<name>.json and printed as tables.

With `--logging-rates 0,0.1,1.0` only Potluck runs: one server, one feature service of the same 12
features per rate (`feature_service` in the bodies) whose `logging_config` samples that share of
the requests to Parquet (rate 0: no logging_config). For each scenario the rates take turns,
`--logging-rounds` times (waiting for the log queue to drain between runs), and the medians of
each rate are compared with rate 0's (`logging_overhead` in the JSON).

Requires `wrk` (Debian/Ubuntu: `apt-get install -y wrk`; macOS: `brew install wrk`), `redis-server`
on PATH for the redis backend, and the Feast venv (`bash benchmarks/setup_feast.sh`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import (
    BENCH,
    FEAST_PYTHON,
    feast_env,
    feast_missing,
    free_port,
    potluck_env,
    ratio,
    redis_server,
    run_child,
    table,
)
from generate import ONLINE_REFS, Spec, ensure_dataset, write_repo
from run import DATA, fresh, online_entities, save, store_command, store_spec, window

WRK_SCRIPT = BENCH / "server_wrk.lua"
TOOLS = ("potluck", "feast", "floor")
CLK_TCK = os.sysconf("SC_CLK_TCK")
POTLUCK_CLI = "import sys; from potluck.cli.main import main; sys.exit(main())"


# --------------------------------------------------------------------------------------------- procfs


def _ppid_map() -> dict[int, int]:
    out: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(entry.name)] = int(fields[1])
    return out


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants (the server's master and worker processes)."""
    parents = _ppid_map()
    tree, frontier = [root], [root]
    while frontier:
        children = [p for p, pp in parents.items() if pp in frontier]
        tree += children
        frontier = children
    return [p for p in tree if Path(f"/proc/{p}").exists()]


def rss_mb(pids: list[int]) -> float:
    total_kb = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
                    break
        except OSError:
            continue
    return round(total_kb / 1024, 1)


def cpu_seconds(pids: list[int]) -> float:
    ticks = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / CLK_TCK


# --------------------------------------------------------------------------------------------- request bodies


def body_line(pairs: list[list[int]], start: int, per_request: int, service: str | None = None) -> str:
    chunk = [pairs[(start + j) % len(pairs)] for j in range(per_request)]
    wanted: dict[str, Any] = {"feature_service": service} if service else {"features": ONLINE_REFS}
    body = {
        **wanted,
        "entities": {"user_id": [u for u, _ in chunk], "merchant_id": [m for _, m in chunk]},
    }
    return json.dumps(body, separators=(",", ":"))


def write_bodies(path: Path, pairs: list[list[int]], sizes: list[int], count: int, service: str | None = None) -> Path:
    """`count` request bodies, the i-th with sizes[i % len(sizes)] entity rows, walking through `pairs`."""
    lines, at = [], 0
    for i in range(count):
        n = sizes[i % len(sizes)]
        lines.append(body_line(pairs, at, n, service))
        at += n
    path.write_text("\n".join(lines) + "\n")
    return path


def post_json(url: str, body: bytes, timeout: float = 30.0) -> dict[str, Any]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return dict(json.loads(resp.read()))


def columns(answer: dict[str, Any]) -> dict[str, list[Any]]:
    names = answer["metadata"]["feature_names"]
    return {n: r["values"] for n, r in zip(names, answer["results"], strict=True)}


def same_value(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-9)
    return bool(a == b)


def compare_answers(ref: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    a, b = columns(ref), columns(other)
    out: dict[str, Any] = {
        "same_names": sorted(a) == sorted(b),
        "same_order": list(a) == list(b),
        "cells": 0,
        "mismatches": {},
    }
    for name in a:
        if name not in b:
            out["mismatches"][name] = "missing"
            continue
        bad = sum(not same_value(x, y) for x, y in zip(a[name], b[name], strict=False))
        bad += abs(len(a[name]) - len(b[name]))
        out["cells"] += len(a[name])
        if bad:
            out["mismatches"][name] = bad
    statuses = [s for r in ref["results"] for s in r["statuses"]]
    out["present_fraction"] = round(statuses.count("PRESENT") / len(statuses), 4) if statuses else None
    out["equal"] = out["same_names"] and not out["mismatches"]
    return out


# --------------------------------------------------------------------------------------------- servers


def server_command(tool: str, repo: Path, port: int, workers: int, feast_max_requests: int) -> list[str]:
    if tool == "floor":
        return [
            sys.executable, "-m", "uvicorn", "floor_app:app", "--app-dir", str(BENCH), "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers), "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
    if tool == "potluck":
        return [
            sys.executable, "-c", POTLUCK_CLI, "--chdir", str(repo), "serve", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers), "--auth", "off", "--no-access-log",
        ]  # fmt: skip
    return [
        str(FEAST_PYTHON.parent / "feast"), "-c", str(repo), "serve", "--host", "127.0.0.1",
        "--port", str(port), "--workers", str(workers), "--no-access-log",
        "--max-requests", str(feast_max_requests),
    ]  # fmt: skip


@contextmanager
def running_server(
    tool: str, argv: list[str], port: int, log: Path, wait_s: float
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server in its own session, wait until it answers, stop it (that session only) on exit."""
    env = feast_env() if tool == "feast" else potluck_env()
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        path = "/health" if tool == "feast" else "/ready"
        deadline = time.monotonic() + wait_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{tool} server exited with {proc.returncode}; log: {log.read_text()[-1500:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{tool} server not ready after {wait_s:.0f} s; log: {log.read_text()[-1500:]}")
            time.sleep(0.2)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the session this server leads
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def wait_workers(proc: subprocess.Popen[bytes], workers: int, timeout_s: float = 60.0) -> list[int]:
    """The server's process tree once all its workers are up (master + workers when workers > 1)."""
    deadline = time.monotonic() + timeout_s
    while True:
        tree = process_tree(proc.pid)
        if workers == 1 or len(tree) >= workers + 1 or time.monotonic() > deadline:
            return tree
        time.sleep(0.2)


# --------------------------------------------------------------------------------------------- wrk


def run_wrk(
    port: int,
    bodies: Path,
    connections: int,
    duration_s: float,
    threads: int,
    pids: list[int],
    sample_every_s: float | None = None,
) -> dict[str, Any]:
    """One bounded wrk run; adds client CPU (wait4 of wrk), server CPU and RSS (procfs) to wrk's report."""
    threads = max(1, min(threads, connections))
    argv = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s:g}s", "--timeout", "10s",
        "-s", str(WRK_SCRIPT), f"http://127.0.0.1:{port}", "--", str(bodies),
    ]  # fmt: skip
    rss_samples: list[tuple[float, float]] = []
    rss_start = rss_mb(pids)
    cpu_start = cpu_seconds(pids)
    t0 = time.monotonic()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        next_sample = t0
        hard_stop = t0 + duration_s + 60
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            now = time.monotonic()
            if sample_every_s and now >= next_sample:
                rss_samples.append((round(now - t0, 1), rss_mb(pids)))
                next_sample += sample_every_s
            if now > hard_stop:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        wall = time.monotonic() - t0
        out.seek(0)
        text = out.read().decode(errors="replace")
    cpu_server = cpu_seconds(pids) - cpu_start
    rss_end = rss_mb(pids)
    if sample_every_s:
        rss_samples.append((round(wall, 1), rss_end))
    line = next((ln for ln in text.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk produced no report (exit {os.waitstatus_to_exitcode(status)}): {text[-1500:]}")
    report = json.loads(line[len("WRKJSON ") :])
    lat = report["latency_us"]
    seconds = report["duration_us"] / 1e6
    errors = sum(report["errors"].values())
    client_cpu = usage.ru_utime + usage.ru_stime
    return {
        "connections": connections,
        "wrk_threads": threads,
        "seconds": round(seconds, 2),
        "requests": report["requests"],
        "errors": errors,
        "error_kinds": report["errors"],
        "requests_per_s": round(report["requests"] / seconds, 1),
        "p50_ms": lat["p50"] / 1000,
        "p90_ms": lat["p90"] / 1000,
        "p99_ms": lat["p99"] / 1000,
        "p999_ms": lat["p999"] / 1000,
        "mean_ms": round(lat["mean"] / 1000, 3),
        "max_ms": lat["max"] / 1000,
        "mb_received": round(report["bytes"] / 2**20, 1),
        "client_cpu_cores": round(client_cpu / wall, 3),
        "server_cpu_cores": round(cpu_server / wall, 3),
        "server_cpu_ms_per_request": round(cpu_server * 1000 / report["requests"], 3) if report["requests"] else None,
        "server_processes": len(pids),
        "rss_mb_start": rss_start,
        "rss_mb_end": rss_end,
        **({"rss_mb_samples": rss_samples} if sample_every_s else {}),
        "load_avg_1m_after": round(os.getloadavg()[0], 2),
        "command": shlex.join(argv),
    }


# --------------------------------------------------------------------------------------------- one tool


def prepare_store(
    tool: str, backend: str, data: Path, spec: Spec, tdir: Path, redis_url: str, timeout_s: float
) -> tuple[Path, dict[str, Any]]:
    """Write the tool's repository and apply + materialize it (in its own process)."""
    repo = write_repo(tdir / "repo", tool, data, online=backend, redis=redis_url)
    start, end = window(spec)
    argv, env = store_command(tool, repo, tdir / "materialize.json", ONLINE_REFS)
    argv += ["materialize", "--start", start, "--end", end]
    run = run_child(
        argv, env=env, cwd=tdir, log=tdir / "materialize.log", result=tdir / "materialize.json", timeout_s=timeout_s
    )
    if not run.get("ok"):
        raise RuntimeError(f"{tool}/{backend} materialization failed: {run.get('error')}")
    return repo, {"seconds": run.get("seconds"), "wall_s": run.get("wall_s"), "peak_rss_mb": run.get("peak_rss_mb")}


def bench_tool(
    args: argparse.Namespace,
    tool: str,
    backend: str,
    repo: Path,
    tdir: Path,
    bodies: dict[str, Path],
    check_body: bytes,
) -> dict[str, Any]:
    port = free_port()
    argv = server_command(tool, repo, port, args.workers, args.feast_max_requests)
    result: dict[str, Any] = {"tool": tool, "backend": backend, "workers": args.workers, "command": shlex.join(argv)}
    started = time.monotonic()
    with running_server(tool, argv, port, tdir / "server.log", args.start_timeout) as proc:
        result["startup_s"] = round(time.monotonic() - started, 2)
        pids = wait_workers(proc, args.workers)
        result["server_pids"] = pids
        result["rss_mb_idle"] = rss_mb(pids)
        url = f"http://127.0.0.1:{port}/get-online-features"
        result["answer"] = post_json(url, check_body)
        if tool == "potluck":  # what the floor server answers (one real answer per request size)
            result["answers_by_size"] = {
                n: post_json(url, bodies[str(n)].read_bytes().split(b"\n", 1)[0]) for n in args.entity_sizes
            }
        runs = []
        for n in args.entity_sizes:
            for conns in args.concurrency_levels:
                run_wrk(port, bodies[str(n)], conns, args.warmup, args.wrk_threads, pids)  # warm-up, discarded
                run = run_wrk(port, bodies[str(n)], conns, args.duration, args.wrk_threads, pids)
                run["entities_per_request"] = n
                run["requests_per_s_per_worker"] = round(run["requests_per_s"] / args.workers, 1)
                runs.append(run)
                print(
                    f"  {tool:<7} {backend:<6} {n:>3} ent x{conns:<3} {run['requests_per_s']:>9,.0f} req/s  "
                    f"p50 {run['p50_ms']:.3f} ms  p99 {run['p99_ms']:.3f} ms  errors {run['errors']}  "
                    f"client {run['client_cpu_cores']:.2f} / server {run['server_cpu_cores']:.2f} cores "
                    f"({run['server_cpu_ms_per_request']} ms/req)  "
                    f"RSS {run['rss_mb_start']} -> {run['rss_mb_end']} MB",
                    flush=True,
                )
        result["runs"] = runs
        if tool == "potluck" and backend in args.soak_backends and args.soak > 0:
            print(f"  potluck {backend} soak: {args.soak:.0f} s, mixed bodies, x{args.soak_connections}", flush=True)
            soak = run_wrk(
                port, bodies["mixed"], args.soak_connections, args.soak, args.wrk_threads, pids, args.soak_interval
            )
            samples = [r for _, r in soak["rss_mb_samples"]]
            half = samples[len(samples) // 2 :]
            soak["rss_mb_min"], soak["rss_mb_max"] = min(samples), max(samples)
            soak["rss_mb_growth_second_half"] = round(half[-1] - half[0], 1) if half else None
            print(
                f"    {soak['requests_per_s']:,.0f} req/s  p99 {soak['p99_ms']:.3f} ms  errors {soak['errors']}  "
                f"RSS {soak['rss_mb_start']} -> {soak['rss_mb_end']} MB (min {soak['rss_mb_min']}, "
                f"max {soak['rss_mb_max']})",
                flush=True,
            )
            result["soak"] = soak
        result["answer_after"] = post_json(url, check_body)
        if tool == "potluck":
            result["feature_log"] = feature_log_metrics(port)
        result["rss_mb_final"] = rss_mb(pids)
        result["alive_pids_after"] = [p for p in pids if Path(f"/proc/{p}").exists()]
        result["stable_after"] = compare_answers(result["answer"], result["answer_after"])["equal"]
    return result


def feature_log_metrics(port: int) -> dict[str, float]:
    """The server's feature log counters (summed over its services) from /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("potluck_feature_log_") and not line.startswith("#"):
            name = line.split("{", 1)[0].split(" ", 1)[0]
            out[name] = out.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


# --------------------------------------------------------------------------------------------- logging

LOGGING_PY = """

from potluck.feature_logging import LoggingConfig
from potluck.infra.offline_stores.file_source import FileLoggingDestination
"""
SERVICE_PY = """
{name} = FeatureService(
    name={name!r},
    features=[user_stats[{user_features!r}], merchant_stats],
    {logging}
)
"""


def service_name(rate: float) -> str:
    return "logged_" + f"{rate:g}".replace(".", "_")


def add_logged_services(repo: Path, rates: list[float], logs: Path) -> None:
    """One feature service of the 12 features per sample rate (rate 0: no logging_config), applied."""
    user_features = [ref.split(":", 1)[1] for ref in ONLINE_REFS if ref.startswith("user_stats:")]
    text = (repo / "features.py").read_text() + LOGGING_PY
    for rate in rates:
        destination = f"FileLoggingDestination(path={str(logs / service_name(rate))!r})"
        logging = f"logging_config=LoggingConfig(destination={destination}, sample_rate={rate})," if rate > 0 else ""
        text += SERVICE_PY.format(name=service_name(rate), user_features=user_features, logging=logging)
    (repo / "features.py").write_text(text)
    argv = [sys.executable, "-c", POTLUCK_CLI, "--chdir", str(repo), "apply"]
    subprocess.run(argv, env=potluck_env(), check=True, capture_output=True)


def parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(p).num_rows for p in path.rglob("*.parquet"))


def wait_log_drained(port: int, timeout_s: float = 60.0) -> None:
    """Until the server's log queue is empty, so one rate's writing does not overlap the next run."""
    deadline = time.monotonic() + timeout_s
    while feature_log_metrics(port).get("potluck_feature_log_queue_rows", 0.0) > 0 and time.monotonic() < deadline:
        time.sleep(0.2)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def bench_logging(
    args: argparse.Namespace, backend: str, data: Path, spec: Spec, work: Path, pairs: list[list[int]]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One Potluck server with a feature service per sample rate; for each scenario the rates take
    turns, `--logging-rounds` times, so that the load of a shared machine falls on all of them alike."""
    rates = args.logging_rates
    materialized: dict[str, Any] = {}
    bodies = {
        (rate, n): write_bodies(
            work / f"bodies_{service_name(rate)}_{n}.jsonl", pairs, [n], max(20, len(pairs) // n), service_name(rate)
        )
        for rate in rates
        for n in args.entity_sizes
    }
    runs: dict[float, list[dict[str, Any]]] = {rate: [] for rate in rates}
    with ExitStack() as stack:
        tdir = fresh(work / f"potluck-{backend}-logging")
        redis_url = stack.enter_context(redis_server()) if backend == "redis" else ""
        print(f"[server] potluck/{backend}: apply + materialize ...", flush=True)
        repo, materialized[f"potluck/{backend}"] = prepare_store(
            "potluck", backend, data, spec, tdir, redis_url, args.timeout
        )
        logs = fresh(tdir / "logs")
        add_logged_services(repo, rates, logs)
        port = free_port()
        argv = server_command("potluck", repo, port, args.workers, args.feast_max_requests)
        server: dict[str, Any] = {"tool": "potluck", "backend": backend, "workers": args.workers}
        server["command"] = shlex.join(argv)
        with running_server("potluck", argv, port, tdir / "server.log", args.start_timeout) as proc:
            pids = wait_workers(proc, args.workers)
            server["rss_mb_idle"] = rss_mb(pids)
            url = f"http://127.0.0.1:{port}/get-online-features"
            check = max(args.entity_sizes)
            answers = {rate: post_json(url, bodies[(rate, check)].read_bytes().split(b"\n", 1)[0]) for rate in rates}
            first = answers[rates[0]]
            server["answers_equal_across_services"] = all(compare_answers(first, a)["equal"] for a in answers.values())
            for n in args.entity_sizes:
                for conns in args.concurrency_levels:
                    for rate in rates:  # warm-up, discarded
                        run_wrk(port, bodies[(rate, n)], conns, args.warmup, args.wrk_threads, pids)
                    for round_no in range(args.logging_rounds):
                        for rate in rates:
                            wait_log_drained(port)
                            pids = process_tree(proc.pid)  # the server and its log writer process
                            run = run_wrk(port, bodies[(rate, n)], conns, args.duration, args.wrk_threads, pids)
                            run |= {"entities_per_request": n, "sample_rate": rate, "round": round_no}
                            runs[rate].append(run)
                            print(
                                f"  rate {rate:<4g} {n:>3} ent x{conns:<3} round {round_no}: "
                                f"{run['requests_per_s']:>9,.0f} req/s  p50 {run['p50_ms']:.3f} ms  "
                                f"p99 {run['p99_ms']:.3f} ms  errors {run['errors']}  "
                                f"server {run['server_cpu_cores']:.2f} cores ({run['server_cpu_ms_per_request']} ms/req)",
                                flush=True,
                            )
            wait_log_drained(port)
            server["feature_log"] = feature_log_metrics(port)
            server["rss_mb_final"] = rss_mb(process_tree(proc.pid))
        # the server has stopped: what its shutdown flushed is on disk too
        server["logged_rows_in_files"] = {f"{rate:g}": parquet_rows(logs / service_name(rate)) for rate in rates}
        server["log_files"] = len(list(logs.rglob("*.parquet")))
    results = []
    for rate in rates:
        summary: list[dict[str, Any]] = []
        for n in args.entity_sizes:
            for conns in args.concurrency_levels:
                mine = [r for r in runs[rate] if r["entities_per_request"] == n and r["connections"] == conns]
                summary.append(
                    {
                        "entities_per_request": n,
                        "connections": conns,
                        "requests_per_s": round(median([r["requests_per_s"] for r in mine]), 1),
                        "p50_ms": round(median([r["p50_ms"] for r in mine]), 3),
                        "p99_ms": round(median([r["p99_ms"] for r in mine]), 3),
                        "errors": sum(r["errors"] for r in mine),
                        "rounds": len(mine),
                    }
                )
        results.append(
            {**server, "sample_rate": rate, "service": service_name(rate), "runs": summary, "raw_runs": runs[rate]}
        )
    return results, materialized


def logging_overhead(results: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]], dict[str, Any]]:
    """Each rate against rate 0 of the same backend: median throughput ratio and p99 difference per scenario."""
    headers = ["backend", "rate", "ent", "conns", "req/s", "x rate 0", "p50 ms", "p99 ms", "+p99 ms", "errors"]
    rows: list[list[Any]] = []
    pairs: list[dict[str, Any]] = []
    base = {r["backend"]: r for r in results if r.get("sample_rate") == 0 and r.get("runs")}
    for r in results:
        if not r.get("runs") or r["backend"] not in base:
            continue
        ref = {(x["entities_per_request"], x["connections"]): x for x in base[r["backend"]]["runs"]}
        for run in r["runs"]:
            key = (run["entities_per_request"], run["connections"])
            b = ref.get(key)
            if b is None:
                continue
            pair = {
                "backend": r["backend"],
                "sample_rate": r["sample_rate"],
                "entities_per_request": key[0],
                "connections": key[1],
                "rps_ratio": ratio(run["requests_per_s"], b["requests_per_s"]),
                "p99_delta_ms": round(run["p99_ms"] - b["p99_ms"], 3),
            }
            pairs.append(pair)
            rows.append(
                [
                    r["backend"], r["sample_rate"], key[0], key[1], run["requests_per_s"], pair["rps_ratio"],
                    run["p50_ms"], run["p99_ms"], pair["p99_delta_ms"], run["errors"],
                ]
            )  # fmt: skip
    at_full = [p for p in pairs if p["sample_rate"] == 1.0]
    goal: dict[str, Any] = {"pairs": pairs}
    if at_full:
        goal["rate_1_rps_ratio_min"] = min(p["rps_ratio"] for p in at_full)
        goal["rate_1_p99_delta_ms_max"] = max(p["p99_delta_ms"] for p in at_full)
        goal["rate_1_within_10pct_throughput"] = goal["rate_1_rps_ratio_min"] >= 0.9
        goal["rate_1_within_0_2ms_p99"] = goal["rate_1_p99_delta_ms_max"] <= 0.2
    return headers, rows, goal


def main_logging(args: argparse.Namespace) -> int:
    spec = store_spec(args.rows, args.seed, anchor=datetime.now(UTC).date().isoformat())
    data = ensure_dataset(spec, args.data_dir)
    work = fresh(args.data_dir / "runs" / args.name)
    pairs = online_entities(data, spec, 2_000, args.seed)
    results: list[dict[str, Any]] = []
    materialized: dict[str, Any] = {}
    t_start = time.monotonic()
    for backend in args.backends:
        found, mat = bench_logging(args, backend, data, spec, work, pairs)
        results += found
        materialized |= mat
    headers, rows, goal = logging_overhead(results)
    print(
        f"\nFeature logging, {args.workers} worker(s), {args.duration:g} s per run, median of "
        f"{args.logging_rounds} interleaved rounds; x = against rate 0"
    )
    print(table(headers, rows))
    for r in results[:1]:
        print(
            f"  rows in files by rate: {r['logged_rows_in_files']}; {r['log_files']} files; "
            f"server counters {json.dumps(r.get('feature_log', {}))}"
        )
    print(f"targets: {json.dumps({k: v for k, v in goal.items() if k != 'pairs'})}")
    path = save(
        args.name,
        {
            "benchmark": "server_logging",
            "spec": spec.__dict__,
            "features": ONLINE_REFS,
            "feature_services": {f"{r:g}": service_name(r) for r in args.logging_rates},
            "settings": {k: v for k, v in vars(args).items() if k not in ("data_dir",)}
            | {"data_dir": str(args.data_dir), "command": shlex.join([sys.executable, *sys.argv])},
            "client": "wrk "
            + subprocess.run(["wrk", "--version"], check=False, capture_output=True, text=True).stdout.split("\n")[0],
            "materialize": materialized,
            "results": results,
            "logging_overhead": goal,
            "total_s": round(time.monotonic() - t_start, 1),
        },
    )
    print(f"wrote {path}")
    failed = any("error" in r or any(x["errors"] for x in r.get("runs", [])) for r in results)
    return 1 if failed else 0


# --------------------------------------------------------------------------------------------- reporting


def side_by_side(results: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]], list[dict[str, Any]]]:
    headers = [
        "backend", "ent", "conns",
        "potluck req/s", "feast req/s", "x",
        "potluck /worker", "feast /worker",
        "potluck p50", "feast p50", "potluck p99", "feast p99", "x p99",
        "cpu ms/req P/F", "x cpu", "errors P/F", "client cpu P/F", "server cpu P/F",
        "floor req/s", "floor p50", "floor p99",
    ]  # fmt: skip
    rows: list[list[Any]] = []
    pairs: list[dict[str, Any]] = []
    by = {(r["tool"], r["backend"]): r for r in results if r.get("runs")}
    floor = next((r for r in results if r["tool"] == "floor" and r.get("runs")), None)
    floor_runs = {(r["entities_per_request"], r["connections"]): r for r in (floor or {}).get("runs", [])}
    for backend in dict.fromkeys(r["backend"] for r in results):
        pot, fst = by.get(("potluck", backend)), by.get(("feast", backend))
        if pot is None:
            continue
        f_runs = {(r["entities_per_request"], r["connections"]): r for r in (fst or {}).get("runs", [])}
        for p in pot["runs"]:
            key = (p["entities_per_request"], p["connections"])
            f = f_runs.get(key, {})
            fl = floor_runs.get(key, {})
            pair = {
                "backend": backend,
                "entities_per_request": key[0],
                "connections": key[1],
                "rps_ratio": ratio(p["requests_per_s"], f.get("requests_per_s")),
                "rps_per_worker_ratio": ratio(p["requests_per_s_per_worker"], f.get("requests_per_s_per_worker")),
                "p50_ratio": ratio(p["p50_ms"], f.get("p50_ms")),
                "p99_ratio": ratio(p["p99_ms"], f.get("p99_ms")),
                "cpu_per_request_ratio": ratio(p["server_cpu_ms_per_request"], f.get("server_cpu_ms_per_request")),
            }
            pairs.append(pair)
            rows.append(
                [
                    backend, key[0], key[1],
                    p["requests_per_s"], f.get("requests_per_s"), pair["rps_ratio"],
                    p["requests_per_s_per_worker"], f.get("requests_per_s_per_worker"),
                    p["p50_ms"], f.get("p50_ms"), p["p99_ms"], f.get("p99_ms"), pair["p99_ratio"],
                    f"{p['server_cpu_ms_per_request']:.2f}/{f.get('server_cpu_ms_per_request', float('nan')):.2f}",
                    pair["cpu_per_request_ratio"],
                    f"{p['errors']}/{f.get('errors', '-')}",
                    f"{p['client_cpu_cores']:.2f}/{f.get('client_cpu_cores', float('nan')):.2f}",
                    f"{p['server_cpu_cores']:.2f}/{f.get('server_cpu_cores', float('nan')):.2f}",
                    fl.get("requests_per_s"), fl.get("p50_ms"), fl.get("p99_ms"),
                ]
            )  # fmt: skip
    return headers, rows, pairs


def targets(results: list[dict[str, Any]], pairs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    pot_redis = next((r for r in results if r["tool"] == "potluck" and r["backend"] == "redis" and r.get("runs")), None)
    if pot_redis:
        single = {r["connections"]: r["p99_ms"] for r in pot_redis["runs"] if r["entities_per_request"] == 1}
        out["single_entity_p99_ms_redis_by_connections"] = single
        if 1 in single:
            out["single_entity_p99_under_2ms_sequential"] = single[1] < 2.0
    floor = next((r for r in results if r["tool"] == "floor" and r.get("runs")), None)
    if floor:
        out["floor_single_entity_p99_ms_by_connections"] = {
            r["connections"]: r["p99_ms"] for r in floor["runs"] if r["entities_per_request"] == 1
        }
    per_worker = [p["rps_per_worker_ratio"] for p in pairs if p["rps_per_worker_ratio"] is not None]
    if per_worker:
        out["rps_per_worker_ratio_min"] = min(per_worker)
        out["rps_per_worker_ratio_max"] = max(per_worker)
        out["rps_per_worker_at_least_5x_everywhere"] = min(per_worker) >= 5.0
    return out


# --------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", default="redis,sqlite")
    p.add_argument(
        "--tools",
        default="potluck,feast,floor",
        help="potluck, feast, floor (an ASGI app without feature work under the same uvicorn: the floor)",
    )
    p.add_argument("--rows", type=int, default=120_000, help="feature rows (100k user + 20k merchant by default)")
    p.add_argument("--workers", type=int, default=2, help="server worker processes, the same for both tools")
    p.add_argument("--entities", default="1,100", help="entity rows per request, one scenario each")
    p.add_argument("--concurrency", default="1,8,32", help="keep-alive connections, one scenario each")
    p.add_argument("--duration", type=float, default=20.0, help="seconds per scenario (at most 600)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of discarded load before each scenario")
    p.add_argument("--soak", type=float, default=180.0, help="seconds of the Potluck soak run; 0 skips it")
    p.add_argument("--soak-backends", default="redis", help="backends the soak runs on")
    p.add_argument("--soak-connections", type=int, default=32)
    p.add_argument("--soak-interval", type=float, default=5.0, help="seconds between RSS samples in the soak")
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (1 keeps the client off the 2nd core)")
    p.add_argument(
        "--feast-max-requests",
        type=int,
        default=0,
        help="feast serve --max-requests; 0 (no worker recycling) is Feast's best case, its default is 1000",
    )
    p.add_argument("--start-timeout", type=float, default=120.0, help="seconds a server may take to get ready")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds allowed for each materialization")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--data-dir", type=Path, default=DATA)
    p.add_argument("--name", default="server", help="result name: benchmarks/results/NAME.json")
    p.add_argument(
        "--logging-rates",
        default="",
        help="e.g. 0,0.1,1.0: Potluck only, a logged feature service at each sample rate (0: not logged)",
    )
    p.add_argument("--logging-rounds", type=int, default=3, help="interleaved rounds per scenario (logging mode)")
    args = p.parse_args(argv)
    args.logging_rates = [float(r) for r in args.logging_rates.split(",") if r.strip()]
    for rate in args.logging_rates:
        if not 0 <= rate <= 1:
            p.error(f"sample rate {rate} is not in [0, 1]")
    if args.logging_rates and 0 not in args.logging_rates:
        p.error("--logging-rates must include 0 (the reference)")
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    args.tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    args.entity_sizes = [int(n) for n in args.entities.split(",") if n.strip()]
    args.concurrency_levels = [int(n) for n in args.concurrency.split(",") if n.strip()]
    args.soak_backends = [b.strip() for b in args.soak_backends.split(",") if b.strip()]
    args.duration = min(args.duration, 600.0)
    args.soak = min(args.soak, 1800.0)
    for t in args.tools:
        if t not in TOOLS:
            p.error(f"unknown tool {t!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: `apt-get install -y wrk` (Debian/Ubuntu) or `brew install wrk`")
    if args.logging_rates:
        return main_logging(args)
    if "feast" in args.tools and (msg := feast_missing()):
        raise SystemExit(msg)
    # Served values must be fresher than the views' ttl, so the data ends today (UTC).
    spec = store_spec(args.rows, args.seed, anchor=datetime.now(UTC).date().isoformat())
    data = ensure_dataset(spec, args.data_dir)
    work = fresh(args.data_dir / "runs" / args.name)
    pairs = online_entities(data, spec, 2_000, args.seed)
    bodies = {
        str(n): write_bodies(work / f"bodies_{n}.jsonl", pairs, [n], max(20, len(pairs) // n))
        for n in args.entity_sizes
    }
    # The soak mixes 9 single-entity requests to 1 of 100 entities.
    bodies["mixed"] = write_bodies(work / "bodies_mixed.jsonl", pairs, [1] * 9 + [100], 2_000)
    check_body = body_line(pairs, 0, 100).encode()

    results: list[dict[str, Any]] = []
    materialized: dict[str, Any] = {}
    t_start = time.monotonic()
    for backend in args.backends:
        with ExitStack() as stack:
            for tool in (t for t in args.tools if t != "floor"):
                key = f"{tool}/{backend}"
                tdir = fresh(work / f"{tool}-{backend}")
                # One private redis-server per tool so neither sees the other's keys.
                redis_url = stack.enter_context(redis_server()) if backend == "redis" else ""
                print(f"[server] {key}: apply + materialize ...", flush=True)
                try:
                    repo, mat = prepare_store(tool, backend, data, spec, tdir, redis_url, args.timeout)
                    materialized[key] = mat
                    print(
                        f"[server] {key}: materialized in {mat['seconds']} s; serving with {args.workers} workers",
                        flush=True,
                    )
                    results.append(bench_tool(args, tool, backend, repo, tdir, bodies, check_body))
                except Exception as err:
                    print(f"[server] {key}: FAILED: {err}", flush=True)
                    results.append({"tool": tool, "backend": backend, "error": str(err)})

    if "floor" in args.tools:
        reference = next((r for r in results if r["tool"] == "potluck" and "answers_by_size" in r), None)
        tdir = fresh(work / "floor")
        for size, answer in (reference["answers_by_size"] if reference else {"1": {}}).items():
            (tdir / f"answer_{size}.json").write_bytes(json.dumps(answer).encode())
        os.environ["FLOOR_ANSWERS_DIR"] = str(tdir)
        print("[server] floor: an ASGI app without feature work, same uvicorn and client", flush=True)
        try:
            results.append(bench_tool(args, "floor", "-", tdir, tdir, bodies, check_body))
        except Exception as err:
            print(f"[server] floor: FAILED: {err}", flush=True)
            results.append({"tool": "floor", "backend": "-", "error": str(err)})

    for backend in args.backends:
        by = {r["tool"]: r for r in results if r["backend"] == backend and "answer" in r}
        if "potluck" in by and "feast" in by:
            by["feast"]["comparison_with_potluck"] = compare_answers(by["potluck"]["answer"], by["feast"]["answer"])
    for r in results:
        r.pop("answer", None)
        r.pop("answer_after", None)
        r.pop("answers_by_size", None)

    headers, rows, ratios = side_by_side(results)
    print(
        f"\nFeature servers, {args.workers} workers each, {len(ONLINE_REFS)} features over 2 views, "
        f"{args.duration:g} s per run; latency in ms; x = Potluck / Feast; cpu in cores "
        f"(machine: {os.cpu_count()} cores shared by client and server)"
    )
    print(table(headers, rows))
    for r in results:
        if "error" in r:
            print(f"  {r['tool']}/{r['backend']}: FAILED: {r['error']}")
        else:
            cmp = r.get("comparison_with_potluck")
            print(
                f"  {r['tool']}/{r['backend']}: RSS idle {r['rss_mb_idle']} MB, final {r['rss_mb_final']} MB, "
                f"{len(r['server_pids'])} processes, started in {r['startup_s']} s"
                + (f"; answers equal to Potluck's: {cmp['equal']} ({cmp['cells']} cells)" if cmp else "")
            )
    goal = targets(results, ratios)
    print(f"targets: {json.dumps(goal)}")
    path = save(
        args.name,
        {
            "benchmark": "server",
            "spec": spec.__dict__,
            "features": ONLINE_REFS,
            "settings": {k: v for k, v in vars(args).items() if k not in ("data_dir",)}
            | {"data_dir": str(args.data_dir), "command": shlex.join([sys.executable, *sys.argv])},
            "client": "wrk "
            + subprocess.run(["wrk", "--version"], check=False, capture_output=True, text=True).stdout.split("\n")[0],
            "materialize": materialized,
            "results": results,
            "ratios_potluck_over_feast": ratios,
            "targets": goal,
            "total_s": round(time.monotonic() - t_start, 1),
        },
    )
    print(f"wrote {path}")
    failed = any("error" in r or any(x["errors"] for x in r.get("runs", [])) for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
