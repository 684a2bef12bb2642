"""Materialization through the Spark engine into Redis: Potluck's Spark engine vs its local engine,
Feast 0.67's `spark.engine`, and a raw Redis pipeline floor, side by side on the same data.

    python benchmarks/spark_materialize.py --rows 11000000
    python benchmarks/spark_materialize.py --rows 1200000 --tools potluck-spark,raw

Tools (each its own process tree, on a private redis-server emptied between runs):
- `potluck`: the local engine (DuckDB picks the latest rows, this process writes them);
- `potluck-spark`: `batch_engine: spark.engine` (Spark picks the latest rows, its executors write them);
- `feast-spark`: Feast 0.67 with its Spark offline store (`SparkSource` over the same Parquet files)
  and `batch_engine: spark.engine` (needs pyspark in the Feast venv: `FEAST_EXTRAS=spark bash
  benchmarks/setup_feast.sh`);
- `raw`: DuckDB's latest rows written by hand with pipelined HSETs (`runners/raw_runner.py`).

Both Spark tools get the same settings (`SPARK_CONF`). Peak memory is the largest sum, sampled
every 0.2 s, of the resident sizes of every process working in the run's folder: the runner, the
driver JVM and the Python workers (reported apart as well). After the timed call each store reads the
online values of 2,000 sampled key pairs (not timed); they are compared with the local engine's, whose
latest rows are DuckDB's reference query.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import flush_private_redis, ratio, redis_server, run_child, table
from compare import compare_online
from generate import ALL_REFS, ensure_dataset, write_repo
from run import (
    DATA,
    RUNNERS,
    fresh,
    online_entities,
    save,
    source_rows,
    store_command,
    store_spec,
    warm_cache,
    window,
)

CHECK_KEYS = 2_000  # sampled (user, merchant) pairs whose online values are compared with the local engine's

TOOLS = ["potluck", "potluck-spark", "feast-spark", "raw"]
SPARK_CONF = {
    "spark.master": "local[2]",
    "spark.driver.memory": "2g",
    "spark.sql.shuffle.partitions": "8",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
}


def _conf_yaml(indent: str) -> str:
    return "".join(f"{indent}{k}: {json.dumps(v)}\n" for k, v in SPARK_CONF.items())


def potluck_spark_repo(dest: Path, data: Path, redis: str, partitions: int) -> Path:
    repo = write_repo(dest, "potluck", data, online="redis", redis=redis)
    with (repo / "feature_store.yaml").open("a") as f:
        f.write(f"batch_engine:\n  type: spark.engine\n  partitions: {partitions}\n  spark_conf:\n{_conf_yaml('    ')}")
    return repo


def feast_spark_repo(dest: Path, data: Path, redis: str, partitions: int) -> Path:
    repo = write_repo(dest, "feast", data, online="redis", redis=redis)
    features = (repo / "features.py").read_text()
    features = features.replace(
        "from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType",
        "from feast import Entity, FeatureService, FeatureView, Field, ValueType\n"
        "from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource",
    )
    features = features.replace("FileSource(", "SparkSource(file_format='parquet', ")
    (repo / "features.py").write_text(features)
    text = (repo / "feature_store.yaml").read_text()
    text = text.replace(
        "offline_store:\n  type: duckdb\n", f"offline_store:\n  type: spark\n  spark_conf:\n{_conf_yaml('    ')}"
    )
    text += f"batch_engine:\n  type: spark.engine\n  partitions: {partitions}\n"
    (repo / "feature_store.yaml").write_text(text)
    return repo


class TreeMemory:
    """The peak summed RSS of the processes whose working directory is `folder` (sampled)."""

    def __init__(self, folder: Path) -> None:
        self.folder = str(folder.resolve())
        self.peak_mb = 0.0
        self.at_peak: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        page_mb = os.sysconf("SC_PAGE_SIZE") / 2**20
        while not self._stop.wait(0.2):
            parts: dict[str, float] = {}
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    if os.readlink(f"/proc/{pid}/cwd") != self.folder:
                        continue
                    with open(f"/proc/{pid}/statm") as f:
                        rss = int(f.read().split()[1]) * page_mb
                    with open(f"/proc/{pid}/comm") as f:
                        comm = f.read().strip()
                except OSError:
                    continue
                kind = "jvm" if comm == "java" else "python"
                parts[kind] = parts.get(kind, 0.0) + rss
            total = sum(parts.values())
            if total > self.peak_mb:
                self.peak_mb, self.at_peak = total, parts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=11_000_000)
    p.add_argument("--tools", default=",".join(TOOLS))
    p.add_argument("--partitions", type=int, default=2, help="batch_engine.partitions of both Spark tools")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--timeout", type=float, default=3600)
    p.add_argument("--name", default=None)
    p.add_argument("--data-dir", type=Path, default=DATA)
    args = p.parse_args()
    tools = [t for t in args.tools.split(",") if t]
    # The data ends today, so the sampled keys' values are inside the views' ttl when read back.
    spec = store_spec(args.rows, args.seed, anchor=datetime.now(UTC).date().isoformat())
    data = ensure_dataset(spec, args.data_dir)
    name = args.name or f"spark_materialize_r{args.rows}"
    work = fresh(args.data_dir / "runs" / name)
    warm_cache(data)
    rows, entities = source_rows(data)
    start, end = window(spec)
    entities_file = work / "check_entities.json"
    entities_file.write_text(json.dumps(online_entities(data, spec, CHECK_KEYS, args.seed)))
    names = ["user_id", "merchant_id"] + [r.split(":", 1)[1] for r in ALL_REFS]
    runs: dict[str, dict[str, Any]] = {}
    load_start = list(os.getloadavg())
    with redis_server() as redis_url:
        for tool in tools:
            tdir = fresh(work / tool)
            result = tdir / "result.json"
            flush_private_redis(redis_url)
            print(f"[spark materialize] {tool} ...", flush=True)
            if tool == "raw":
                argv = [sys.executable, str(RUNNERS / "raw_runner.py"), "--data", str(data), "--result", str(result),
                        "materialize", "--backend", "redis", "--sqlite-path", str(tdir / "unused.db"),
                        "--redis", redis_url, "--start", start, "--end", end]  # fmt: skip
                env = dict(os.environ)
            else:
                if tool == "potluck":
                    repo = write_repo(tdir / "repo", "potluck", data, online="redis", redis=redis_url)
                elif tool == "potluck-spark":
                    repo = potluck_spark_repo(tdir / "repo", data, redis_url, args.partitions)
                else:
                    repo = feast_spark_repo(tdir / "repo", data, redis_url, args.partitions)
                argv, env = store_command(tool.split("-")[0], repo, result, ALL_REFS)
                argv += ["materialize", "--start", start, "--end", end,
                         "--entities", str(entities_file), "--dump", str(tdir / "dump.json")]  # fmt: skip
            env["SPARK_LOCAL_IP"] = "127.0.0.1"
            env["PYSPARK_PYTHON"] = argv[0]  # Spark's Python workers import the tool's own library
            with TreeMemory(tdir) as memory:
                run = run_child(argv, env=env, cwd=tdir, log=tdir / "log.txt", result=result, timeout_s=args.timeout)
            run.update(tool=tool, tree_peak_mb=round(memory.peak_mb, 1),
                       tree_at_peak_mb={k: round(v, 1) for k, v in memory.at_peak.items()})  # fmt: skip
            secs = run.get("seconds") if run.get("ok") else None
            run["rows_per_s"] = round(rows / secs) if secs else None
            if run.get("ok") and (tdir / "dump.json").exists():
                run["dump"] = str(tdir / "dump.json")
            runs[tool] = run
            print(f"  -> {secs} s, {run['rows_per_s']} rows/s, tree peak {run['tree_peak_mb']} MB"
                  + ("" if run.get("ok") else f"; error: {str(run.get('error'))[:300]}"), flush=True)  # fmt: skip
    # The local engine (DuckDB's latest rows, the reference query) is what every online value is compared with.
    reference = runs.get("potluck", {}).get("dump")
    for tool, run in runs.items():
        if reference and run.get("dump") and tool != "potluck":
            run["comparison"] = compare_online(Path(reference), Path(run["dump"]), names)
    headers = ["tool", "seconds", "rows/s", "peak MB (all processes)", "JVM MB", "Python MB", "x spark", "x raw",
               "equal"]  # fmt: skip
    spark_s = runs.get("potluck-spark", {}).get("seconds") if runs.get("potluck-spark", {}).get("ok") else None
    raw_s = runs.get("raw", {}).get("seconds") if runs.get("raw", {}).get("ok") else None
    lines = []
    for tool, run in runs.items():
        secs = run.get("seconds") if run.get("ok") else None
        at = run.get("tree_at_peak_mb", {})
        lines.append([tool, secs, run["rows_per_s"], run["tree_peak_mb"] if secs else None, at.get("jvm"),
                      at.get("python"), ratio(secs, spark_s), ratio(secs, raw_s),
                      "reference" if tool == "potluck" else (run.get("comparison") or {}).get("equal")])  # fmt: skip
    print(
        f"\nMaterialization into Redis: {rows:,} source rows, {entities:,} entities, Spark {SPARK_CONF['spark.master']}"
    )
    print(table(headers, lines))
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1, 5, 15 min) on {os.cpu_count()} cores")
    path = save(name, {"benchmark": "spark_materialize", "spec": spec.__dict__, "source_rows": rows,
                       "entities": entities, "spark_conf": SPARK_CONF, "check_keys": CHECK_KEYS,
                       "load_average_start": load_start, "load_average_end": list(load),
                       "runs": list(runs.values())})  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
