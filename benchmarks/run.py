"""Side-by-side benchmarks: Potluck vs Feast (pinned, own venv) vs the raw backend by hand.

    python benchmarks/run.py historical --entity-rows 1000000 --feature-rows 1000000
    python benchmarks/run.py materialize --rows 1200000
    python benchmarks/run.py online
    python benchmarks/run.py all --size small

Every tool runs in its own subprocess (peak RSS is per run). Data is generated once and cached under
benchmarks/data/; results are printed as a table and written to benchmarks/results/<name>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import (
    BENCH,
    FEAST_PYTHON,
    RUNNERS,
    feast_env,
    feast_missing,
    flush_private_redis,
    potluck_env,
    ratio,
    redis_server,
    run_child,
    table,
)
from compare import compare_historical, compare_online
from generate import (
    ALL_REFS,
    MERCHANT_FEATURES,
    ONLINE_REFS,
    USER_FEATURES,
    Spec,
    ensure_dataset,
    write_repo,
)

DATA = BENCH / "data"
RESULTS = BENCH / "results"
HISTORICAL_TOOLS = ["potluck", "raw", "feast-duckdb", "feast-file"]
STORE_TOOLS = ["potluck", "raw", "feast"]
SIZES = {
    "small": {"entity_rows": 100_000, "feature_rows": 100_000, "mat_rows": 120_000, "online_rows": 120_000},
    "medium": {
        "entity_rows": 1_000_000,
        "feature_rows": 1_000_000,
        "mat_rows": 1_200_000,
        "online_rows": 120_000,
    },
    "large": {
        "entity_rows": 1_000_000,
        "feature_rows": 10_000_000,
        "mat_rows": 11_000_000,
        "online_rows": 1_200_000,
    },
}


# --------------------------------------------------------------------------------------------- specs


def historical_spec(entity_rows: int, feature_rows: int, seed: int) -> Spec:
    merchant_rows = max(1, feature_rows // 10)
    return Spec(
        entity_rows=entity_rows,
        user_rows=feature_rows,
        merchant_rows=merchant_rows,
        users=max(1, feature_rows // 10),
        merchants=max(1, merchant_rows // 20),
        seed=seed,
    )


def store_spec(rows: int, seed: int, anchor: str | None = None) -> Spec:
    """`rows` feature rows: 5/6 user rows (10 per user), 1/6 merchant rows (20 per merchant)."""
    user_rows = rows * 5 // 6
    merchant_rows = rows - user_rows
    spec = Spec(
        entity_rows=1_000,
        user_rows=user_rows,
        merchant_rows=merchant_rows,
        users=max(1, user_rows // 10),
        merchants=max(1, merchant_rows // 20),
        seed=seed,
    )
    if anchor:
        spec = Spec(**{**spec.__dict__, "anchor": anchor})
    return spec


# --------------------------------------------------------------------------------------------- tools


def selected(tools_arg: str | None, all_tools: list[str], skip_feast: bool, historical: bool) -> list[str]:
    wanted = all_tools if not tools_arg else [t.strip() for t in tools_arg.split(",") if t.strip()]
    out: list[str] = []
    for t in wanted:
        if historical and t == "feast":
            out += ["feast-duckdb", "feast-file"]
        elif t not in all_tools:
            raise SystemExit(f"unknown tool {t!r}; choose from {', '.join([*all_tools, 'feast'])}")
        else:
            out.append(t)
    if skip_feast:
        out = [t for t in out if not t.startswith("feast")]
    return list(dict.fromkeys(out))


def store_command(tool: str, repo: Path, result: Path, refs: list[str]) -> tuple[list[str], dict[str, str]]:
    lib = "feast" if tool.startswith("feast") else "potluck"
    python = str(FEAST_PYTHON) if lib == "feast" else sys.executable
    env = feast_env() if lib == "feast" else potluck_env()
    argv = [
        python,
        str(RUNNERS / "store_runner.py"),
        "--lib",
        lib,
        "--repo",
        str(repo),
        "--result",
        str(result),
        "--features",
        json.dumps(refs),
    ]
    return argv, env


def fresh(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def warm_cache(data: Path) -> None:
    for f in sorted(data.glob("*.parquet")):
        with f.open("rb") as fh:
            while fh.read(1 << 24):
                pass


def machine() -> dict[str, Any]:
    mem_gb = None
    with contextlib.suppress(ValueError, OSError):
        mem_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return {
        "cpus": os.cpu_count(),
        "memory_gb": mem_gb,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_avg": os.getloadavg(),
    }


def save(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {
        "name": name,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **payload,
    }
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path


def failed(tool: str, message: str) -> dict[str, Any]:
    return {"tool": tool, "ok": False, "error": message}


# --------------------------------------------------------------------------------------------- historical


def bench_historical(args: argparse.Namespace) -> dict[str, Any]:
    spec = historical_spec(args.entity_rows, args.feature_rows, args.seed)
    data = ensure_dataset(spec, args.data_dir)
    name = args.name or f"historical_e{args.entity_rows}_f{args.feature_rows}"
    work = fresh(args.data_dir / "runs" / name)
    tools = selected(args.tools, HISTORICAL_TOOLS, args.skip_feast, historical=True)
    warm_cache(data)
    entity = data / "entity_df.parquet"
    runs: dict[str, dict[str, Any]] = {}
    for tool in tools:
        tdir = fresh(work / tool)
        out, result = tdir / "result.parquet", tdir / "result.json"
        print(f"[historical] {tool} ...", flush=True)
        if tool == "raw":
            argv = [
                sys.executable,
                str(RUNNERS / "raw_runner.py"),
                "--data",
                str(data),
                "--result",
                str(result),
                "historical",
                "--entity",
                str(entity),
                "--out",
                str(out),
            ]
            env = dict(os.environ)
        else:
            if tool.startswith("feast") and (msg := feast_missing()):
                runs[tool] = failed(tool, msg)
                continue
            offline = "file" if tool == "feast-file" else "duckdb"
            repo = write_repo(tdir / "repo", tool.split("-")[0], data, offline=offline)
            argv, env = store_command(tool, repo, result, ALL_REFS)
            argv += ["historical", "--entity", str(entity), "--out", str(out)]
        runs[tool] = {
            "tool": tool,
            **run_child(argv, env=env, cwd=tdir, log=tdir / "log.txt", result=result, timeout_s=args.timeout),
        }
        runs[tool]["output"] = str(out)
        print(f"  -> {summary(runs[tool])}", flush=True)
    reference = next((t for t in ("potluck", "raw") if runs.get(t, {}).get("ok")), None)
    features = USER_FEATURES + MERCHANT_FEATURES
    for run in runs.values():
        if run.get("ok") and reference:
            run["comparison"] = compare_historical(Path(runs[reference]["output"]), Path(run["output"]), features)
            run["compared_with"] = reference
    if not args.keep_outputs:
        for run in runs.values():
            if "output" in run:
                Path(run["output"]).unlink(missing_ok=True)
    base = {t: runs[t].get("seconds") for t in ("potluck", "raw") if runs.get(t, {}).get("ok")}
    headers = [
        "tool",
        "seconds",
        "CPU s",
        "peak RSS MB",
        "rows",
        "equal",
        "bad cells",
        "missing rows",
        "in order",
        "x potluck",
        "x raw",
    ]
    rows = []
    for tool, run in runs.items():
        cmp = run.get("comparison", {})
        rows.append(
            [
                tool,
                run.get("seconds"),
                run.get("cpu_s") if run.get("ok") else None,
                run.get("peak_rss_mb") if run.get("ok") else None,
                run.get("rows"),
                cmp.get("equal"),
                cmp.get("mismatching_cells"),
                cmp.get("missing_rows"),
                cmp.get("in_input_order"),
                ratio(run.get("seconds"), base.get("potluck")),
                ratio(run.get("seconds"), base.get("raw")),
            ]
        )
    print(
        f"\nHistorical retrieval: {spec.entity_rows:,} entity rows x {spec.user_rows:,} user rows "
        f"+ {spec.merchant_rows:,} merchant rows; reference for equality: {reference or 'none'}"
    )
    print(table(headers, rows))
    print_errors(runs)
    path = save(
        name,
        {
            "benchmark": "historical",
            "spec": spec.__dict__,
            "reference": reference,
            "runs": list(runs.values()),
        },
    )
    print(f"wrote {path}")
    return {"name": name, "runs": runs}


def summary(run: dict[str, Any]) -> str:
    if not run.get("ok"):
        return f"FAILED: {run.get('error')}"
    bits = [f"{run.get('seconds', run.get('wall_s'))} s", f"peak RSS {run['peak_rss_mb']} MB"]
    if "rows" in run:
        bits.append(f"{run['rows']:,} rows")
    return ", ".join(bits)


def print_errors(runs: dict[str, dict[str, Any]]) -> None:
    for tool, run in runs.items():
        if not run.get("ok"):
            print(f"  {tool}: FAILED: {run.get('error')}" + (f" (log: {run['log']})" if run.get("log") else ""))


# --------------------------------------------------------------------------------------------- materialize


def source_rows(data: Path) -> tuple[int, int]:
    import duckdb

    con = duckdb.connect()
    rows = entities = 0
    for view, key in (("user_stats", "user_id"), ("merchant_stats", "merchant_id")):
        r, e = con.execute(
            f"SELECT count(*), count(DISTINCT {key}) FROM read_parquet('{data / view}.parquet')"
        ).fetchone()
        rows, entities = rows + r, entities + e
    return rows, entities


def window(spec: Spec) -> tuple[str, str]:
    return ((spec.start - timedelta(days=1)).isoformat(), spec.end.isoformat())


def store_runs(
    args: argparse.Namespace, mode: str, spec: Spec, data: Path, work: Path, extra: list[str]
) -> dict[str, dict[str, Any]]:
    """Run `mode` (materialize or online) for each selected tool and backend."""
    tools = selected(args.tools, STORE_TOOLS, args.skip_feast, historical=False)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    start, end = window(spec)
    refs = ONLINE_REFS if mode == "online" else ALL_REFS
    runs: dict[str, dict[str, Any]] = {}
    redis_ctx = redis_server() if "redis" in backends else None
    redis_url = redis_ctx.__enter__() if redis_ctx else ""
    try:
        for backend in backends:
            for tool in tools:
                key = f"{tool}/{backend}"
                tdir = fresh(work / f"{tool}-{backend}")
                result = tdir / "result.json"
                print(f"[{mode}] {key} ...", flush=True)
                if backend == "redis":
                    flush_private_redis(redis_url)
                if tool == "raw":
                    argv = [
                        sys.executable,
                        str(RUNNERS / "raw_runner.py"),
                        "--data",
                        str(data),
                        "--result",
                        str(result),
                        mode,
                        "--backend",
                        backend,
                        "--sqlite-path",
                        str(tdir / "online_raw.db"),
                        "--redis",
                        redis_url or "-",
                        "--start",
                        start,
                        "--end",
                        end,
                    ]
                    env = dict(os.environ)
                else:
                    if tool == "feast" and (msg := feast_missing()):
                        runs[key] = failed(key, msg)
                        continue
                    repo = write_repo(tdir / "repo", tool, data, online=backend, redis=redis_url)
                    argv, env = store_command(tool, repo, result, refs)
                    argv += [mode, "--start", start, "--end", end]
                argv += [a.replace("{dump}", str(tdir / "dump.json")) for a in extra]
                run = run_child(argv, env=env, cwd=tdir, log=tdir / "log.txt", result=result, timeout_s=args.timeout)
                runs[key] = {"tool": tool, "backend": backend, **run}
                if mode == "online":
                    runs[key]["dump"] = str(tdir / "dump.json")
                print(f"  -> {summary(runs[key])}", flush=True)
    finally:
        if redis_ctx:
            redis_ctx.__exit__(None, None, None)
    return runs


def bench_materialize(args: argparse.Namespace) -> dict[str, Any]:
    spec = store_spec(args.rows, args.seed)
    data = ensure_dataset(spec, args.data_dir)
    name = args.name or f"materialize_r{args.rows}"
    work = fresh(args.data_dir / "runs" / name)
    warm_cache(data)
    rows, entities = source_rows(data)
    runs = store_runs(args, "materialize", spec, data, work, [])
    headers = ["tool", "backend", "seconds", "rows/s", "peak RSS MB", "x potluck", "x raw"]
    table_rows = []
    for run in runs.values():
        secs = run.get("seconds") if run.get("ok") else None
        run["source_rows"], run["entities"] = rows, entities
        run["rows_per_s"] = round(rows / secs) if secs else None
        pot = runs.get(f"potluck/{run.get('backend')}", {})
        raw = runs.get(f"raw/{run.get('backend')}", {})
        table_rows.append(
            [
                run["tool"],
                run.get("backend"),
                secs,
                run["rows_per_s"],
                run.get("peak_rss_mb") if secs else None,
                ratio(secs, pot.get("seconds") if pot.get("ok") else None),
                ratio(secs, raw.get("seconds") if raw.get("ok") else None),
            ]
        )
    print(f"\nMaterialization: {rows:,} source rows, {entities:,} entities (rows/s counts source rows)")
    print(table(headers, table_rows))
    print_errors(runs)
    path = save(
        name,
        {
            "benchmark": "materialize",
            "spec": spec.__dict__,
            "source_rows": rows,
            "entities": entities,
            "runs": list(runs.values()),
        },
    )
    print(f"wrote {path}")
    return {"name": name, "runs": runs}


# --------------------------------------------------------------------------------------------- online


def online_entities(data: Path, spec: Spec, count: int, seed: int) -> list[list[int]]:
    """Entity pairs whose latest rows are at most a day old at the anchor, so every tool serves values."""
    import duckdb
    import numpy as np

    con = duckdb.connect()
    since = (spec.end - timedelta(days=1)).isoformat()
    ids = []
    for view, key in (("user_stats", "user_id"), ("merchant_stats", "merchant_id")):
        ids.append(
            [
                r[0]
                for r in con.execute(
                    f"SELECT {key} FROM read_parquet('{data / view}.parquet') GROUP BY 1 "
                    f"HAVING max(event_timestamp) >= '{since}'::TIMESTAMPTZ ORDER BY 1"
                ).fetchall()
            ]
        )
    rng = np.random.default_rng(seed)
    users = rng.choice(ids[0], count)
    merchants = rng.choice(ids[1], count)
    return [[int(u), int(m)] for u, m in zip(users, merchants, strict=True)]


def bench_online(args: argparse.Namespace) -> dict[str, Any]:
    # Served values must be fresher than the views' ttl, so the data ends today (UTC).
    anchor = datetime.now(UTC).date().isoformat()
    spec = store_spec(args.rows, args.seed, anchor=anchor)
    data = ensure_dataset(spec, args.data_dir)
    name = args.name or f"online_r{args.rows}"
    work = fresh(args.data_dir / "runs" / name)
    entities_file = work / "entities.json"
    entities_file.write_text(json.dumps(online_entities(data, spec, 2_000, args.seed)))
    extra = [
        "--entities",
        str(entities_file),
        "--dump",
        "{dump}",
        "--calls-1",
        str(args.calls_1),
        "--calls-100",
        str(args.calls_100),
        "--calls-1000",
        str(args.calls_1000),
    ]
    runs = store_runs(args, "online", spec, data, work, extra)
    names = ["user_id", "merchant_id"] + [r.split(":", 1)[1] for r in ONLINE_REFS]
    for backend in {r.get("backend") for r in runs.values()}:
        ref_key = next((k for k in (f"potluck/{backend}", f"raw/{backend}") if runs.get(k, {}).get("ok")), None)
        for run in runs.values():
            if run.get("backend") == backend and run.get("ok") and ref_key:
                run["compared_with"] = ref_key
                run["comparison"] = compare_online(Path(runs[ref_key]["dump"]), Path(run["dump"]), names)
    headers = [
        "tool",
        "backend",
        "entities",
        "p50 ms",
        "p99 ms",
        "mean ms",
        "x potluck p50",
        "x raw p50",
        "equal",
    ]
    table_rows = []
    for run in runs.values():
        for size, lat in (run.get("latency") or {}).items():
            pot = (runs.get(f"potluck/{run['backend']}", {}).get("latency") or {}).get(size, {})
            raw = (runs.get(f"raw/{run['backend']}", {}).get("latency") or {}).get(size, {})
            table_rows.append(
                [
                    run["tool"],
                    run["backend"],
                    int(size),
                    lat["p50_ms"],
                    lat["p99_ms"],
                    lat["mean_ms"],
                    ratio(lat["p50_ms"], pot.get("p50_ms")),
                    ratio(lat["p50_ms"], raw.get("p50_ms")),
                    run.get("comparison", {}).get("equal"),
                ]
            )
    print(
        f"\nOnline reads in process: {len(ONLINE_REFS)} features over 2 views; store of "
        f"{spec.user_rows + spec.merchant_rows:,} rows materialized first (not timed)"
    )
    print(table(headers, table_rows))
    print_errors(runs)
    path = save(
        name,
        {"benchmark": "online", "spec": spec.__dict__, "features": ONLINE_REFS, "runs": list(runs.values())},
    )
    print(f"wrote {path}")
    return {"name": name, "runs": runs}


# --------------------------------------------------------------------------------------------- cli


def main() -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--tools",
        help="comma list; historical: potluck,raw,feast-duckdb,feast-file (feast = "
        "both); materialize/online: potluck,raw,feast",
    )
    common.add_argument("--skip-feast", action="store_true", help="run only potluck and raw")
    common.add_argument("--backends", default="sqlite,redis", help="online stores for materialize/online")
    common.add_argument("--seed", type=int, default=42)
    common.add_argument("--timeout", type=float, default=900, help="seconds before a run is stopped")
    common.add_argument("--name", help="result name (default from the sizes)")
    common.add_argument("--data-dir", type=Path, default=DATA)
    common.add_argument("--keep-outputs", action="store_true", help="keep historical result Parquet files")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("historical", parents=[common])
    h.add_argument("--entity-rows", type=int, default=1_000_000)
    h.add_argument("--feature-rows", type=int, default=1_000_000, help="user_stats rows (merchant: a tenth)")
    m = sub.add_parser("materialize", parents=[common])
    m.add_argument("--rows", type=int, default=1_200_000, help="feature rows over both views")
    o = sub.add_parser("online", parents=[common])
    o.add_argument("--rows", type=int, default=120_000, help="feature rows materialized before reading")
    a = sub.add_parser("all", parents=[common])
    a.add_argument("--size", choices=sorted(SIZES), default="small")
    for parser in (o, a):
        parser.add_argument("--calls-1", type=int, default=2000)
        parser.add_argument("--calls-100", type=int, default=200)
        parser.add_argument("--calls-1000", type=int, default=30)
    args = p.parse_args()
    args.data_dir = args.data_dir.resolve()
    t0 = time.perf_counter()
    if args.cmd == "historical":
        bench_historical(args)
    elif args.cmd == "materialize":
        bench_materialize(args)
    elif args.cmd == "online":
        bench_online(args)
    else:
        size = SIZES[args.size]
        prefix = args.name or f"all_{args.size}"
        for sub_cmd, fn, extra in (
            (
                "historical",
                bench_historical,
                {"entity_rows": size["entity_rows"], "feature_rows": size["feature_rows"]},
            ),
            ("materialize", bench_materialize, {"rows": size["mat_rows"]}),
            ("online", bench_online, {"rows": size["online_rows"]}),
        ):
            fn(argparse.Namespace(**{**vars(args), **extra, "name": f"{prefix}_{sub_cmd}"}))
    print(f"done in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
