"""What an on-demand feature view adds to a read: Potluck vs Feast 0.67, same repository, same data, one run.

    python benchmarks/odfv_bench.py                                  # everything, sqlite, both tools
    python benchmarks/odfv_bench.py --parts online --skip-feast --calls-1 500   # quick check

The repository is the workload's (benchmarks/generate.py) plus a request source `txn` (`amount`,
Float64) and one on-demand view per mode, `odfv_<mode>`, each computing

    amount_ratio = amount / (1 + |user_stats:amount_avg_30d|) + merchant_stats:merchant_avg_ticket / 100

(modes: python, python singleton, pandas, arrow; Feast 0.67 has no arrow mode). Three parts:

- online: in process, `get_online_features(12 features).to_dict()` against the same call plus
  `odfv_<mode>:amount_ratio`, in turns on the same entity rows (1 and 100 per call);
- http: the same two bodies against `potluck serve` and `feast serve` (1 worker each, loopback,
  one keep-alive connection, requests in turns);
- offline: `get_historical_features` over `--offline-rows` entity rows with and without the
  on-demand view, each in its own process (seconds and peak RSS).

The added cost is the on-demand read's figure minus the plain read's (medians and p99s of each).
Every on-demand output is checked against the formula over the plain read's values.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import shlex
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent / "runners"))
from _common import percentiles
from _harness import (
    FEAST_PYTHON,
    RUNNERS,
    feast_env,
    feast_missing,
    free_port,
    potluck_env,
    redis_server,
    run_child,
    table,
)
from generate import ONLINE_REFS, ensure_dataset, write_repo
from run import DATA, fresh, historical_spec, online_entities, save, store_spec, window
from server_bench import running_server, server_command, wait_workers

POTLUCK_MODES = ["python", "singleton", "pandas", "arrow"]
FEAST_MODES = ["python", "singleton", "pandas"]
OUTPUT = "amount_ratio"

ODFV_PY = """

# -- on-demand views (benchmarks/odfv_bench.py) --------------------------------------------------
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from {lib} import RequestSource
from {lib}.on_demand_feature_view import on_demand_feature_view

txn = RequestSource(name="txn", schema=[Field(name="amount", dtype=Float64)])
ODFV_SOURCES = [user_stats[["amount_avg_30d"]], merchant_stats[["merchant_avg_ticket"]], txn]
ODFV_SCHEMA = [Field(name="amount_ratio", dtype=Float64)]


@on_demand_feature_view(sources=ODFV_SOURCES, schema=ODFV_SCHEMA, mode="python")
def odfv_python(inputs):
    out = []
    for a, avg, t in zip(inputs["amount"], inputs["amount_avg_30d"], inputs["merchant_avg_ticket"]):
        out.append(None if a is None or avg is None or t is None else a / (1.0 + abs(avg)) + t / 100.0)
    return {{"amount_ratio": out}}


@on_demand_feature_view(sources=ODFV_SOURCES, schema=ODFV_SCHEMA, mode="python", singleton=True)
def odfv_singleton(row):
    a, avg, t = row["amount"], row["amount_avg_30d"], row["merchant_avg_ticket"]
    return {{"amount_ratio": None if a is None or avg is None or t is None else a / (1.0 + abs(avg)) + t / 100.0}}


@on_demand_feature_view(sources=ODFV_SOURCES, schema=ODFV_SCHEMA, mode="pandas")
def odfv_pandas(df):
    out = pd.DataFrame()
    a, avg, t = (df[c].astype("float64") for c in ("amount", "amount_avg_30d", "merchant_avg_ticket"))
    out["amount_ratio"] = a / (1.0 + avg.abs()) + t / 100.0
    return out
"""

ARROW_PY = """

@on_demand_feature_view(sources=ODFV_SOURCES, schema=ODFV_SCHEMA, mode="arrow")
def odfv_arrow(table):
    scaled = pc.divide(table["amount"], pc.add(pc.abs(table["amount_avg_30d"]), 1.0))
    return pa.table({"amount_ratio": pc.add(scaled, pc.divide(table["merchant_avg_ticket"], 100.0))})
"""


def modes_of(tool: str) -> list[str]:
    return POTLUCK_MODES if tool == "potluck" else FEAST_MODES


def odfv_repo(dest: Path, tool: str, data: Path, offline: str, online: str, redis: str) -> Path:
    repo = write_repo(dest, tool, data, offline=offline, online=online, redis=redis)
    text = ODFV_PY.format(lib=tool) + (ARROW_PY if "arrow" in modes_of(tool) else "")
    with (repo / "features.py").open("a") as f:
        f.write(text)
    return repo


def runner(tool: str, repo: Path, result: Path) -> tuple[list[str], dict[str, str]]:
    python = str(FEAST_PYTHON) if tool == "feast" else sys.executable
    env = feast_env() if tool == "feast" else potluck_env()
    argv = [
        python, str(RUNNERS / "odfv_runner.py"), "--lib", tool, "--repo", str(repo), "--result", str(result),
        "--features", json.dumps(ONLINE_REFS), "--modes", ",".join(modes_of(tool)),
    ]  # fmt: skip
    return argv, env


def child(argv: list[str], env: dict[str, str], tdir: Path, label: str, timeout_s: float) -> dict[str, Any]:
    result = Path(argv[argv.index("--result") + 1])
    run = run_child(argv, env=env, cwd=tdir, log=tdir / f"{label}.log", result=result, timeout_s=timeout_s)
    if not run.get("ok"):
        print(f"  {label} FAILED: {run.get('error')}", flush=True)
    return run


# --------------------------------------------------------------------------------------------- added cost


def added(plain: dict[str, float], odfv: dict[str, float]) -> dict[str, Any]:
    """The on-demand read's latency figures minus the plain read's, in microseconds."""
    return {
        "plain_p50_us": round(plain["p50_ms"] * 1e3, 1),
        "odfv_p50_us": round(odfv["p50_ms"] * 1e3, 1),
        "added_p50_us": round((odfv["p50_ms"] - plain["p50_ms"]) * 1e3, 1),
        "plain_p99_us": round(plain["p99_ms"] * 1e3, 1),
        "odfv_p99_us": round(odfv["p99_ms"] * 1e3, 1),
        "added_p99_us": round((odfv["p99_ms"] - plain["p99_ms"]) * 1e3, 1),
        "ratio_p50": round(odfv["p50_ms"] / plain["p50_ms"], 3) if plain["p50_ms"] else None,
    }


def added_rows(
    latency: dict[str, dict[str, dict[str, float]]], cpu: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Per entity count and mode, the added wall time, and the added CPU: `cpu` maps entity count to
    variant to CPU us per request (over HTTP), else the variants' CPU percentiles (in process)."""
    rows = []
    for size, variants in latency.items():
        for mode, lat in variants.items():
            if mode == "plain":
                continue
            row = {"entities": int(size), "mode": mode, **added(variants["plain"], lat)}
            spent = (cpu or {}).get(size, {})
            if spent and mode in spent:
                plain = spent["plain"]
                odfv = spent[mode]
                if isinstance(plain, dict):  # percentiles in ms
                    plain, odfv = plain["p50_ms"] * 1e3, odfv["p50_ms"] * 1e3
                row["plain_cpu_us"], row["odfv_cpu_us"] = round(plain, 1), round(odfv, 1)
                row["added_cpu_us"] = round(odfv - plain, 1)
            rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------- parts


def prepare_online(args: argparse.Namespace) -> tuple[Any, Path, list[list[int]]]:
    from datetime import UTC, datetime

    spec = store_spec(args.rows, args.seed, anchor=datetime.now(UTC).date().isoformat())  # fresh for the ttl
    data = ensure_dataset(spec, args.data_dir)
    return spec, data, online_entities(data, spec, 2_000, args.seed)


def bench_online(args: argparse.Namespace, work: Path, redis_url: str) -> list[dict[str, Any]]:
    spec, data, pairs = prepare_online(args)
    start, end = window(spec)
    entities = work / "entities.json"
    entities.write_text(json.dumps(pairs))
    out = []
    for backend in args.backend_list:
        for tool in args.tool_list:
            tdir = fresh(work / f"online-{tool}-{backend}")
            print(f"[online] {tool}/{backend} ...", flush=True)
            repo = odfv_repo(tdir / "repo", tool, data, "duckdb", backend, redis_url)
            argv, env = runner(tool, repo, tdir / "result.json")
            argv += [
                "online", "--start", start, "--end", end, "--entities", str(entities), "--dump",
                str(tdir / "dump.json"), "--calls-1", str(args.calls_1), "--calls-100", str(args.calls_100),
            ]  # fmt: skip
            argv.append("--plain-with-amount")
            run = child(argv, env, tdir, "online", args.timeout)
            run.update(tool=tool, backend=backend, dump=str(tdir / "dump.json"))
            if run.get("ok"):
                run["added"] = added_rows(run["latency"], run.get("cpu_latency"))
            out.append(run)
    compare_dumps(out)
    return out


def compare_dumps(runs: list[dict[str, Any]]) -> None:
    """Feast's on-demand outputs against Potluck's, cell by cell, per mode."""
    for backend in {r["backend"] for r in runs}:
        ref = next((r for r in runs if r["tool"] == "potluck" and r["backend"] == backend and r.get("ok")), None)
        if ref is None:
            continue
        mine = json.loads(Path(ref["dump"]).read_text())
        for run in runs:
            if run is ref or run["backend"] != backend or not run.get("ok"):
                continue
            theirs = json.loads(Path(run["dump"]).read_text())
            run["vs_potluck"] = {
                m: sum(not _same(a, b) for a, b in zip(mine[m], theirs[m], strict=False))
                + abs(len(mine[m]) - len(theirs[m]))
                for m in theirs
                if m in mine and m != "plain"
            }


def _same(a: Any, b: Any) -> bool:
    a = None if isinstance(a, float) and math.isnan(a) else a
    b = None if isinstance(b, float) and math.isnan(b) else b
    if a is None or b is None:
        return a is None and b is None
    return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(a)))


def http_bodies(
    pairs: list[list[int]], modes: list[str], size: int, count: int, with_amount: bool
) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for variant in ["plain", *modes]:
        features = ONLINE_REFS if variant == "plain" else [*ONLINE_REFS, f"odfv_{variant}:{OUTPUT}"]
        bodies = []
        for i in range(count):
            chunk = [pairs[(i * size + j) % len(pairs)] for j in range(size)]
            entities: dict[str, list[Any]] = {"user_id": [u for u, _ in chunk], "merchant_id": [m for _, m in chunk]}
            if variant != "plain" or with_amount:
                entities["amount"] = [10.0 + ((i * size + j) % 500) for j in range(size)]
            bodies.append(json.dumps({"features": features, "entities": entities}, separators=(",", ":")).encode())
        out[variant] = bodies
    return out


def server_cpu_ns(pids: list[int]) -> int:
    """CPU time of every thread of the server's processes, in nanoseconds (schedstat: no tick rounding)."""
    total = 0
    for pid in pids:
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
    return total


def time_http(
    port: int, bodies: dict[str, list[bytes]], warmup: int, pids: list[int], block: int = 50
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Every variant's bodies in turns, `block` requests at a time, over one keep-alive connection:
    per-variant latency figures, and the server's CPU microseconds per request of each variant."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    samples: dict[str, list[float]] = {v: [] for v in bodies}
    cpu_ns = dict.fromkeys(bodies, 0)
    counted = dict.fromkeys(bodies, 0)
    count = len(next(iter(bodies.values())))
    clock = time.perf_counter
    try:
        for start in range(0, count, block):
            for variant, items in bodies.items():
                c0 = server_cpu_ns(pids)
                for i in range(start, min(start + block, count)):
                    t0 = clock()
                    conn.request("POST", "/get-online-features", items[i], headers)
                    resp = conn.getresponse()
                    payload = resp.read()
                    took = clock() - t0
                    if resp.status != 200:
                        raise RuntimeError(f"{variant}: HTTP {resp.status}: {payload[:300]!r}")
                    if i >= warmup:
                        samples[variant].append(took)
                if start >= warmup:
                    cpu_ns[variant] += server_cpu_ns(pids) - c0
                    counted[variant] += min(start + block, count) - start
    finally:
        conn.close()
    cpu = {v: round(cpu_ns[v] / counted[v] / 1e3, 1) for v in bodies if counted[v]}
    return {v: percentiles(s) for v, s in samples.items()}, cpu


def bench_http(args: argparse.Namespace, work: Path, redis_url: str) -> list[dict[str, Any]]:
    spec, data, pairs = prepare_online(args)
    start, end = window(spec)
    out = []
    for backend in args.backend_list:
        for tool in args.tool_list:
            tdir = fresh(work / f"http-{tool}-{backend}")
            print(f"[http] {tool}/{backend} ...", flush=True)
            repo = odfv_repo(tdir / "repo", tool, data, "duckdb", backend, redis_url)
            argv, env = runner(tool, repo, tdir / "materialize.json")
            run = child([*argv, "materialize", "--start", start, "--end", end], env, tdir, "materialize", args.timeout)
            result: dict[str, Any] = {"tool": tool, "backend": backend, "ok": False}
            if not run.get("ok"):
                result["error"] = run.get("error")
                out.append(result)
                continue
            port = free_port()
            cmd = server_command(tool, repo, port, 1, 1_000_000)
            result["command"] = shlex.join(cmd)
            try:
                with running_server(tool, cmd, port, tdir / "server.log", 120) as proc:
                    pids = wait_workers(proc, 1)
                    latency, cpu = {}, {}
                    for size, calls in ((1, args.http_calls_1), (100, args.http_calls_100)):
                        if calls > 0:
                            bodies = http_bodies(pairs, modes_of(tool), size, calls + args.warmup, True)
                            latency[str(size)], cpu[str(size)] = time_http(port, bodies, args.warmup, pids)
                result.update(ok=True, latency=latency, server_cpu_us=cpu, added=added_rows(latency, cpu))
            except Exception as err:  # one tool failing must not lose the other's figures
                result["error"] = f"{type(err).__name__}: {err}"[:1500]
                print(f"  FAILED: {result['error']}", flush=True)
            out.append(result)
    return out


def offline_entity_file(data: Path) -> Path:
    """The workload's entity dataframe plus the request field `amount`."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = data / "entity_df_odfv.parquet"
    if not path.exists():
        t = pq.read_table(data / "entity_df.parquet")
        amount = pc.add(pc.multiply(pc.cast(pc.bit_wise_and(t["row_id"], 1023), pa.float64()), 0.5), 1.0)
        pq.write_table(t.append_column("amount", amount), path)
    return path


def bench_offline(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    spec = historical_spec(args.offline_rows, args.offline_rows, args.seed)
    data = ensure_dataset(spec, args.data_dir)
    entity = offline_entity_file(data)
    out = []
    for tool in args.tool_list:
        tdir = fresh(work / f"offline-{tool}")
        repo = odfv_repo(tdir / "repo", tool, data, "duckdb", "sqlite", "")
        for mode in [None, *args.offline_modes_of(tool)]:
            label = mode or "plain"
            print(f"[offline] {tool} {label} ...", flush=True)
            argv, env = runner(tool, repo, tdir / f"{label}.json")
            argv += ["historical", "--entity", str(entity), "--out", str(tdir / f"{label}.parquet")]
            if mode:
                argv += ["--odfv", mode]
            run = child(argv, env, tdir, label, args.timeout)
            (tdir / f"{label}.parquet").unlink(missing_ok=True)
            out.append({"tool": tool, "mode": label, **run})
    for run in out:
        base = next((r for r in out if r["tool"] == run["tool"] and r["mode"] == "plain" and r.get("ok")), None)
        if base and run.get("ok") and run["mode"] != "plain":
            run["added_s"] = round(run["seconds"] - base["seconds"], 3)
            run["added_peak_rss_mb"] = round(run["peak_rss_mb"] - base["peak_rss_mb"], 1)
    return out


# --------------------------------------------------------------------------------------------- report


def print_added(title: str, runs: list[dict[str, Any]]) -> None:
    rows = []
    for run in runs:
        for a in run.get("added", []):
            rows.append([
                run["tool"], run["backend"], a["entities"], a["mode"], a["plain_p50_us"], a["odfv_p50_us"],
                a["added_p50_us"], a["plain_p99_us"], a["odfv_p99_us"], a["added_p99_us"], a["ratio_p50"],
                a.get("plain_cpu_us"), a.get("odfv_cpu_us"), a.get("added_cpu_us"),
            ])  # fmt: skip
    headers = ["tool", "backend", "entities", "mode", "plain p50 us", "odfv p50 us", "+p50 us",
               "plain p99 us", "odfv p99 us", "+p99 us", "x p50", "plain CPU us", "odfv CPU us", "+CPU us"]  # fmt: skip
    print(f"\n{title}\n{table(headers, rows)}")
    for run in runs:
        if not run.get("ok"):
            print(f"  {run['tool']}/{run['backend']} failed: {run.get('error')}")
        if run.get("function_alone_us"):
            print(f"  {run['tool']}/{run['backend']} the function alone, 1 row, us: {run['function_alone_us']}")
        if run.get("checks"):
            print(f"  {run['tool']}/{run['backend']} output checks: {run['checks']}")
        if run.get("vs_potluck"):
            print(f"  {run['tool']}/{run['backend']} cells differing from Potluck's: {run['vs_potluck']}")


def print_offline(runs: list[dict[str, Any]], rows_in: int) -> None:
    rows = [
        [r["tool"], r["mode"], r.get("seconds"), r.get("added_s"), r.get("peak_rss_mb"), r.get("added_peak_rss_mb"),
         r.get("rows"), (r.get("checks") or {}).get("mismatches")]
        for r in runs
    ]  # fmt: skip
    headers = ["tool", "on-demand view", "seconds", "+s", "peak RSS MB", "+MB", "rows out", "mismatches"]
    print(f"\nTraining data: {rows_in:,} entity rows, 12 features (+1 on-demand)\n{table(headers, rows)}")
    for r in runs:
        if not r.get("ok"):
            print(f"  {r['tool']} {r['mode']} failed: {r.get('error')}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", default="online,http,offline")
    p.add_argument("--tools", default="potluck,feast")
    p.add_argument("--skip-feast", action="store_true")
    p.add_argument("--backends", default="sqlite", help="online stores: sqlite,redis")
    p.add_argument("--rows", type=int, default=120_000, help="feature rows materialized for the online parts")
    p.add_argument("--calls-1", type=int, default=3000)
    p.add_argument("--calls-100", type=int, default=300)
    p.add_argument("--http-calls-1", type=int, default=2000)
    p.add_argument("--http-calls-100", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--offline-rows", type=int, default=1_000_000, help="entity rows (and user_stats rows)")
    p.add_argument("--offline-modes", default="python,singleton,pandas,arrow")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--name", default="odfv")
    p.add_argument("--data-dir", type=Path, default=DATA)
    args = p.parse_args()
    args.data_dir = args.data_dir.resolve()
    args.tool_list = [t for t in args.tools.split(",") if t and not (args.skip_feast and t == "feast")]
    if "feast" in args.tool_list and (msg := feast_missing()):
        raise SystemExit(msg)
    args.backend_list = [b for b in args.backends.split(",") if b]
    wanted = [m for m in args.offline_modes.split(",") if m]
    args.offline_modes_of = lambda tool: [m for m in wanted if m in modes_of(tool)]
    parts = [x for x in args.parts.split(",") if x]
    work = fresh(args.data_dir / "runs" / args.name)
    payload: dict[str, Any] = {"benchmark": "odfv", "features": ONLINE_REFS, "argv": sys.argv[1:]}
    t0 = time.perf_counter()
    redis_ctx = redis_server() if "redis" in args.backend_list and {"online", "http"} & set(parts) else None
    redis_url = redis_ctx.__enter__() if redis_ctx else ""
    try:
        if "online" in parts:
            payload["online"] = bench_online(args, work, redis_url)
            print_added("Added by the on-demand view, in process (to_dict() included)", payload["online"])
        if "http" in parts:
            payload["http"] = bench_http(args, work, redis_url)
            print_added("Added by the on-demand view, over HTTP (1 connection, 1 worker)", payload["http"])
    finally:
        if redis_ctx:
            redis_ctx.__exit__(None, None, None)
    if "offline" in parts and args.offline_rows > 0:
        payload["offline"] = bench_offline(args, work)
        print_offline(payload["offline"], args.offline_rows)
    path = save(args.name if args.name.startswith("odfv") else f"odfv_{args.name}", payload)
    print(f"wrote {path} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
