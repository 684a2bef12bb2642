"""Historical retrieval on Spark local[2]: Potluck's Spark store vs Feast 0.67's Spark store, and Potluck on DuckDB.

Same data (benchmarks/generate.py: the user view, 10 features, created-timestamp ties, nulls, entity
rows inside, before and beyond the ttl), same Spark settings for both Spark runs (`SPARK_CONF`), each
run its own process. Results are compared row by row (by `row_id`) against Potluck on DuckDB, which
the contract suite checks against the brute-force reference. Reported: retrieval time, process peak
RSS, the Spark driver JVM's peak RSS (executors run inside it at local[2]).

Usage:
  python benchmarks/offline_spark.py --entity-rows 1000000 --user-rows 10000000
  python benchmarks/offline_spark.py --entity-rows 100000 --user-rows 1000000 --tools potluck-spark,potluck-duckdb
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import BENCH, FEAST_PYTHON, feast_env, feast_missing, fmt, potluck_env, ratio, run_child, table
from generate import USER_FEATURES, USER_TTL, Spec, ensure_dataset

SPARK_CONF = {
    "spark.master": "local[2]",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.driver.memory": "3g",
}
TOOLS = ("potluck-spark", "feast-spark", "potluck-duckdb")

FEATURES_PY = """\
from datetime import timedelta

from {lib} import Entity, FeatureView, Field, ValueType
from {lib}.types import Float32, Float64, Int64, String
{source_import}

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
user_stats_source = {source}
user_stats = FeatureView(
    name="user_stats",
    entities=[user],
    ttl=timedelta(seconds={ttl}),
    schema=[
        Field(name="user_id", dtype=Int64),
{fields}
    ],
    source=user_stats_source,
    online=True,
)
"""


def write_repo(dest: Path, tool: str, data: Path) -> Path:
    """Potluck keeps its FileSource (it runs unchanged on Spark); Feast's Spark store needs a SparkSource."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "data").mkdir(exist_ok=True)
    lib = tool.split("-", maxsplit=1)[0]
    path = str((data / "user_stats.parquet").resolve())
    if tool == "feast-spark":
        source_import = "from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource"
        source = (
            f'SparkSource(name="user_stats_source", path={path!r}, file_format="parquet", '
            'timestamp_field="event_timestamp", created_timestamp_column="created_timestamp")'
        )
    else:
        source_import = f"from {lib} import FileSource"
        source = (
            f'FileSource(name="user_stats_source", path={path!r}, '
            'timestamp_field="event_timestamp", created_timestamp_column="created_timestamp")'
        )
    fields = "\n".join(f'        Field(name="{n}", dtype={k}),' for n, k in USER_FEATURES)
    (dest / "features.py").write_text(
        FEATURES_PY.format(
            lib=lib, source_import=source_import, source=source, ttl=int(USER_TTL.total_seconds()), fields=fields
        )
    )
    if tool.endswith("spark"):
        conf = "".join(f'    {k}: "{v}"\n' for k, v in SPARK_CONF.items())
        offline = f"offline_store:\n  type: spark\n  spark_conf:\n{conf}"
    else:
        offline = "offline_store:\n  type: duckdb\n"
    (dest / "feature_store.yaml").write_text(
        "project: bench_spark\nregistry: data/registry.db\nprovider: local\n"
        f"{offline}online_store:\n  type: sqlite\n  path: data/online_store.db\n"
        "entity_key_serialization_version: 3\n"
    )
    return dest


def compare(path: Path, reference: Path) -> dict[str, Any]:
    """Rows missing, extra and differing (by row_id) against the reference result."""
    import pyarrow.parquet as pq

    names = ["row_id", *(n for n, _ in USER_FEATURES)]
    got = pq.read_table(path).select(names).sort_by("row_id").to_pylist()
    want = pq.read_table(reference).select(names).sort_by("row_id").to_pylist()
    by_id = {r["row_id"]: r for r in got}
    missing = sum(1 for r in want if r["row_id"] not in by_id)
    differing = sum(1 for r in want if r["row_id"] in by_id and by_id[r["row_id"]] != r)
    return {"exact": missing == 0 and differing == 0 and len(got) == len(want), "rows": len(got),
            "missing": missing, "differing": differing}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--entity-rows", type=int, default=1_000_000)
    p.add_argument("--user-rows", type=int, default=10_000_000)
    p.add_argument("--tools", default=",".join(TOOLS))
    p.add_argument("--timeout", type=float, default=3600)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--name", default=None)
    args = p.parse_args()
    spec = Spec(args.entity_rows, args.user_rows, max(1, args.user_rows // 10), max(1, args.user_rows // 10),
                max(1, args.user_rows // 200), seed=args.seed)  # fmt: skip
    data = ensure_dataset(spec, BENCH / "data")
    runs = BENCH / "data" / "runs" / f"spark_{spec.name}"
    runs.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    tools = [t for t in args.tools.split(",") if t]
    for tool in sorted(tools, key=lambda t: t != "potluck-duckdb"):  # the reference first
        if tool.startswith("feast") and feast_missing():
            results[tool] = {"ok": False, "error": feast_missing()}
            continue
        repo = write_repo(runs / "repos" / tool, tool, data)
        python = str(FEAST_PYTHON) if tool.startswith("feast") else sys.executable
        env = feast_env() if tool.startswith("feast") else potluck_env()
        out = runs / f"{tool}.parquet"
        argv = [python, str(BENCH / "runners" / "spark_runner.py"), tool, str(repo), str(data / "entity_df.parquet"),
                str(runs / f"{tool}.json"), str(out)]  # fmt: skip
        results[tool] = run_child(argv, env=env, cwd=repo, log=runs / f"{tool}.log", result=runs / f"{tool}.json",
                                  timeout_s=args.timeout)  # fmt: skip
        print(tool, json.dumps({k: v for k, v in results[tool].items() if k != "trace"}), flush=True)
    reference = runs / "potluck-duckdb.parquet"
    for tool, r in results.items():
        if r.get("ok") and reference.exists():
            r["check"] = compare(runs / f"{tool}.parquet", reference)
    base = results.get("potluck-spark", {}).get("seconds")
    rows = [
        [tool, fmt(r.get("seconds")), fmt(ratio(r.get("seconds"), base)), fmt(r.get("peak_rss_mb"), 0),
         fmt(r.get("jvm_peak_rss_mb"), 0), "yes" if r.get("check", {}).get("exact") else r.get("error", "no")[:60]]
        for tool, r in results.items()
    ]  # fmt: skip
    print(f"\nhistorical on Spark local[2]: {spec.entity_rows:,} entity rows x {spec.user_rows:,} feature rows")
    print(table(["tool", "seconds", "x potluck-spark", "python peak MB", "JVM peak MB", "exact"], rows))
    name = args.name or f"offline_spark_e{spec.entity_rows}_u{spec.user_rows}"
    (BENCH / "results").mkdir(exist_ok=True)
    (BENCH / "results" / f"{name}.json").write_text(json.dumps({"spec": spec.__dict__, "results": results}, indent=2))


if __name__ == "__main__":
    main()
