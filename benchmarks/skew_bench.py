"""A skew report over 1M logged rows of a feature service (2 views, 4 features) against 1M training rows.

    python benchmarks/skew_bench.py [--rows 1000000] [--sample 10000] [--data-dir DIR] [--out results/skew_1m.json]

The data: 100,000 users, a view `stats` (amount, count: 10 source rows per user over ten days) and a
view `risk` (score, level: one row per user); 1M logged rows written in the feature server's log
schema (values, `__timestamp`, `__status` per feature, `__log_timestamp`, `__request_id`); 1M training
rows `stats__amount`, ... . The report (`store.skew_report`) runs in its own process, measured by
_measure.py (peak RSS and CPU time of that process alone): the two profiles (training, served) and
the consistency check of `--sample` logged rows recomputed offline at their log time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
USERS = 100_000

FEATURES_PY = """\
from datetime import timedelta

from potluck import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from potluck.feature_logging import LoggingConfig
from potluck.infra.offline_stores.file_source import FileLoggingDestination
from potluck.types import Float64, Int64

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
stats = FeatureView(
    name="stats", entities=[user], ttl=timedelta(days=30),
    schema=[Field(name="amount", dtype=Float64), Field(name="count", dtype=Int64)],
    source=FileSource(name="stats_source", path="{data}/stats.parquet", timestamp_field="event_timestamp"),
)
risk = FeatureView(
    name="risk", entities=[user], ttl=timedelta(days=30),
    schema=[Field(name="score", dtype=Float64), Field(name="level", dtype=Int64)],
    source=FileSource(name="risk_source", path="{data}/risk.parquet", timestamp_field="event_timestamp"),
)
scored = FeatureService(
    name="scored", features=[stats, risk],
    logging_config=LoggingConfig(destination=FileLoggingDestination(path="{data}/logs")),
)
"""


def generate(data: Path, rows: int) -> None:
    import duckdb

    marker = data / ".ready"
    if marker.exists():
        return
    (data / "logs" / "__log_date=2026-01-10").mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SELECT setseed(0.42)")
    base = "TIMESTAMPTZ '2026-01-10 00:00:00+00'"
    con.execute(
        f"COPY (SELECT (range % {USERS}) + 1 AS user_id, {base} - to_microseconds(CAST(random() * 864e9 AS BIGINT)) "
        "AS event_timestamp, 50 + 10 * (random() + random() + random() - 1.5) AS amount, "
        f"CAST(floor(random() * 20) AS BIGINT) AS count FROM range({USERS * 10})) TO '{data}/stats.parquet' (FORMAT parquet)"
    )
    con.execute(
        f"COPY (SELECT range + 1 AS user_id, {base} - INTERVAL 2 DAY AS event_timestamp, random() AS score, "
        f"CAST(floor(random() * 5) AS BIGINT) AS level FROM range({USERS})) TO '{data}/risk.parquet' (FORMAT parquet)"
    )
    status = "CAST(CASE WHEN random() < 0.02 THEN 3 ELSE 1 END AS INTEGER)"
    served = f"{base} - INTERVAL 1 DAY"
    con.execute(
        f"COPY (SELECT CAST(floor(random() * {USERS}) + 1 AS BIGINT) AS user_id, "
        f"50 + 10 * (random() + random() + random() - 1.5) AS stats__amount, {served} AS stats__amount__timestamp, "
        f"{status} AS stats__amount__status, CAST(floor(random() * 20) AS BIGINT) AS stats__count, "
        f"{served} AS stats__count__timestamp, 1 AS stats__count__status, random() AS risk__score, "
        f"{base} - INTERVAL 2 DAY AS risk__score__timestamp, 1 AS risk__score__status, "
        f"CAST(floor(random() * 5) AS BIGINT) AS risk__level, {base} - INTERVAL 2 DAY AS risk__level__timestamp, "
        f"1 AS risk__level__status, {base} + to_microseconds(CAST(random() * 36e8 AS BIGINT)) AS __log_timestamp, "
        f"DATE '2026-01-10' AS __log_date, CAST(uuid() AS VARCHAR) AS __request_id FROM range({rows})) "
        f"TO '{data}/logs/__log_date=2026-01-10/part-0.parquet' (FORMAT parquet)"
    )
    con.execute(
        f"COPY (SELECT CAST(floor(random() * {USERS}) + 1 AS BIGINT) AS user_id, {base} AS event_timestamp, "
        "50 + 10 * (random() + random() + random() - 1.5) AS stats__amount, "
        "CAST(floor(random() * 20) AS BIGINT) AS stats__count, random() AS risk__score, "
        f"CAST(floor(random() * 5) AS BIGINT) AS risk__level FROM range({rows})) TO '{data}/training.parquet' (FORMAT parquet)"
    )
    marker.write_text("")


def phase(data: Path, workdir: Path, sample: int, out: Path) -> None:
    from potluck import FeatureStore

    (workdir / "feature_store.yaml").write_text("project: skewbench\nregistry: data/registry.db\n")
    (workdir / "features.py").write_text(FEATURES_PY.format(data=data))
    store = FeatureStore(repo_path=workdir)
    store.apply()
    began = time.perf_counter()
    report = store.skew_report("scored", str(data / "training.parquet"), sample=sample)
    seconds = time.perf_counter() - began
    out.write_text(
        json.dumps(
            {
                "seconds": seconds,
                "rows_logged": report.rows_logged,
                "rows_compared": report.rows_compared,
                "skewed": sorted(f"{f.view}:{f.feature}" for f in report.features if f.skew),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=10_000)
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "potluck-skew-bench")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "skew_1m.json")
    parser.add_argument("--phase", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--phase-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = (args.data_dir / str(args.rows)).resolve()
    if args.phase:
        phase(data, args.workdir, args.sample, args.phase_out)
        return
    data.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    generate(data, args.rows)
    print(f"data ready in {time.perf_counter() - began:.1f} s: {data}", flush=True)
    with tempfile.TemporaryDirectory() as workdir:
        usage, phase_out = Path(workdir) / "usage.json", Path(workdir) / "phase.json"
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--rows",
            str(args.rows),
            "--sample",
            str(args.sample),
        ]
        command += ["--data-dir", str(args.data_dir), "--phase", "--workdir", workdir, "--phase-out", str(phase_out)]
        load = os.getloadavg()
        subprocess.run([sys.executable, str(HERE / "_measure.py"), str(usage), "--", *command], check=True)
        measured = {**json.loads(phase_out.read_text()), **json.loads(usage.read_text())}
    measured["peak_rss_mb"] = round(measured.pop("maxrss_kb") / 1024, 1)
    results = {"rows": args.rows, "sample": args.sample, "cpus": os.cpu_count(), "load_average_at_start": load}
    results.update(measured)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
