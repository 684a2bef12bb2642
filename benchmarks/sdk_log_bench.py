"""In-process cost of feature logging on `store.get_online_features`: logged vs unlogged service.

Two feature services over the same view (10 features, SQLite online store), one with a
`logging_config` (sample_rate 1.0: every call logged), read in alternating rounds. Reports the
median wall time per call of each and the difference, plus the rows written by the writer process.

    .venv/bin/python benchmarks/sdk_log_bench.py [--calls 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

FEATURES_PY = """
from datetime import timedelta
from potluck import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from potluck.feature_logging import LoggingConfig
from potluck.infra.offline_stores.file_source import FileLoggingDestination
from potluck.types import Float64

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
source = FileSource(name="src", path="data/stats.parquet", timestamp_field="event_timestamp")
stats = FeatureView(name="stats", entities=[user], ttl=timedelta(days=30),
                    schema=[Field(name=f"f{i}", dtype=Float64) for i in range(10)], source=source)
plain = FeatureService(name="plain", features=[stats])
logged = FeatureService(name="logged", features=[stats], logging_config=LoggingConfig(
    destination=FileLoggingDestination(path="logs"), sample_rate=1.0))
"""


def build(root: Path, users: int) -> None:
    (root / "data").mkdir(parents=True)
    (root / "feature_store.yaml").write_text(
        "project: bench\nregistry: data/registry.db\nonline_store:\n  type: sqlite\n  path: data/online.db\n"
        "feature_server:\n  feature_log_queue_rows: 1000000\n"
    )
    (root / "features.py").write_text(FEATURES_PY)
    rng = np.random.default_rng(0)
    now = datetime.now(UTC)
    columns = {f"f{i}": rng.random(users) for i in range(10)}
    pq.write_table(
        pa.table(
            {"user_id": np.arange(users), "event_timestamp": pa.array([now - timedelta(hours=1)] * users), **columns}
        ),
        root / "data" / "stats.parquet",
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from potluck import FeatureStore

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        users = 1000
        build(root, users)
        store = FeatureStore(repo_path=root)
        store.apply()
        store.materialize(datetime.now(UTC) - timedelta(days=2), datetime.now(UTC))
        services = {name: store.get_feature_service(name) for name in ("plain", "logged")}
        rows = [[{"user_id": i % users}] for i in range(args.calls)]
        for service in services.values():  # warm up (plans, the writer process)
            for r in rows[:500]:
                store.get_online_features(service, r)
        per_call: dict[str, list[float]] = {name: [] for name in services}
        for _ in range(args.rounds):
            for name, service in services.items():
                started = time.perf_counter()
                for r in rows:
                    store.get_online_features(service, r)
                per_call[name].append((time.perf_counter() - started) / args.calls * 1e6)
        stats = store.feature_log_stats()
        store.close()
        plain, logged = (statistics.median(per_call[n]) for n in ("plain", "logged"))
        print(f"calls per round {args.calls}, rounds {args.rounds}, 1 entity, 10 features, SQLite")
        print(f"plain service:  {plain:7.1f} us per call (median of rounds)")
        print(
            f"logged service: {logged:7.1f} us per call; logging adds {logged - plain:5.1f} us ({logged / plain:.2f}x)"
        )
        written = stats.logged_rows.get("logged", 0)
        print(f"rows written while reading {written}, dropped {stats.dropped_rows.get('logged', 0)}")


if __name__ == "__main__":
    main()
