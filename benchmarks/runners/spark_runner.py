"""One historical retrieval on Spark (or DuckDB), in its own process: Potluck or Feast 0.67.

Usage: spark_runner.py TOOL REPO ENTITY_PARQUET RESULT_JSON OUTPUT_PARQUET
TOOL: potluck-spark | potluck-duckdb | feast-spark. Standard library at import time: the runner runs
in either virtual environment. The timed phase is `get_historical_features(...).to_arrow()`; the
driver JVM's peak RSS is read from /proc (VmHWM; at local[2] the executors run inside it).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

FEATURES = [
    f"user_stats:{name}"
    for name in (
        "txn_count_7d", "txn_count_30d", "amount_sum_7d", "amount_avg_30d", "amount_max_7d",
        "decline_rate_30d", "account_age_days", "risk_score", "segment", "home_country",
    )
]  # fmt: skip  (benchmarks/generate.py USER_FEATURES: this runner imports only the standard library)


def _jvm_peak_mb() -> float | None:
    """Peak RSS of the Java processes this process started (the Spark driver), in MB."""
    me = os.getpid()
    peak = None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        parent = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid:")), 0)
        if b"java" not in cmd or parent != me:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                value = int(line.split()[1]) / 1024
                peak = value if peak is None else max(peak, value)
    return peak


def main() -> None:
    tool, repo, entity_path, result_path, output_path = sys.argv[1:6]
    phases: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        import pyarrow.parquet as pq

        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _common import load_module

        lib = __import__("potluck" if tool.startswith("potluck") else "feast")
        phases["import_s"] = round(time.perf_counter() - t0, 3)
        t = time.perf_counter()
        defs = load_module(Path(repo) / "features.py")
        kinds = (lib.Entity, lib.FeatureView, lib.FeatureService)
        store = lib.FeatureStore(repo_path=repo)
        store.apply([v for v in vars(defs).values() if isinstance(v, kinds)])
        phases["apply_s"] = round(time.perf_counter() - t, 3)
        entity = pq.read_table(entity_path)
        entity_df = entity if tool.startswith("potluck") else entity.to_pandas()
        t = time.perf_counter()
        if tool.startswith("potluck") and tool.endswith("spark"):
            from potluck.offline.spark_session import spark_session

            # Started here, from the repository's spark_conf, so that the timed phase is the retrieval alone.
            spark_session(store.config.offline_store)
        elif tool.startswith("feast"):
            from feast.infra.offline_stores.contrib.spark_offline_store.spark import (
                get_spark_session_or_start_new_with_repoconfig,
            )

            get_spark_session_or_start_new_with_repoconfig(store.config.offline_store)
        phases["session_s"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        table = store.get_historical_features(entity_df=entity_df, features=FEATURES).to_arrow()
        seconds = time.perf_counter() - t
        pq.write_table(table, output_path)
        result = {"ok": True, "seconds": round(seconds, 3), "rows": table.num_rows, "phases": phases}
        result["jvm_peak_rss_mb"] = _jvm_peak_mb()
    except Exception as err:  # reported in the result, the harness shows it
        import traceback

        result = {"ok": False, "error": f"{type(err).__name__}: {err}", "trace": traceback.format_exc()[-3000:]}
    Path(result_path).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
