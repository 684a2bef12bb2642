"""Quick check: the DuckDB offline store against a hand-written DuckDB ASOF join.

Usage: PYTHONPATH=src python benchmarks/pit_smoke.py [feature_rows] [entity_rows]

Generates a user view (10 features, 30 days, created-timestamp ties, ~2% nulls) and an entity
frame whose timestamps fall before, inside and beyond the 7-day ttl, then times both and checks
that they return the same table. The hand-written query is a plain ASOF join on the event
timestamp (it picks an arbitrary row among equal event timestamps), so rows that hit such ties
may differ; the script reports how many do and checks the engine's answers on them separately.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from potluck.definitions.field import Field
from potluck.offline.duckdb_store import DuckDBOfflineStore
from potluck.offline.protocol import SourceTable, ViewQuery
from potluck.types import Float64

DAY_US = 86_400_000_000
TTL = timedelta(days=7)
N_FEATURES = 10


def generate(n_feature_rows: int, n_entity_rows: int, folder: Path, seed: int = 7) -> tuple[Path, pa.Table]:
    rng = np.random.default_rng(seed)
    n_users = max(n_feature_rows // 10, 1)
    base = int(np.datetime64("2024-01-01T00:00:00", "us").astype(np.int64))
    users = rng.integers(0, n_users, n_feature_rows)
    event = base + rng.integers(0, 30 * 86_400, n_feature_rows) * 1_000_000
    tie = rng.random(n_feature_rows) < 0.05  # 5% of rows repeat the previous row's user and event time
    prev = np.maximum(np.arange(n_feature_rows) - 1, 0)
    users = np.where(tie, users[prev], users)
    event = np.where(tie, event[prev], event)
    created = event + rng.integers(0, 3_600, n_feature_rows) * 1_000_000
    created = np.where(tie & (rng.random(n_feature_rows) < 0.5), created[prev], created)  # full ties too
    columns: dict[str, pa.Array] = {
        "user_id": pa.array(users),
        "event_timestamp": pa.array(event, pa.timestamp("us")),
        "created": pa.array(created, pa.timestamp("us")),
    }
    for i in range(N_FEATURES):
        columns[f"f{i}"] = pa.array(rng.random(n_feature_rows), mask=rng.random(n_feature_rows) < 0.02)
    path = folder / "users.parquet"
    pq.write_table(pa.table(columns), path, row_group_size=1_000_000)
    entity = pa.table(
        {
            "user_id": pa.array(rng.integers(0, n_users, n_entity_rows)),
            "event_timestamp": pa.array(
                base + rng.integers(-5 * 86_400, 40 * 86_400, n_entity_rows) * 1_000_000, pa.timestamp("us")
            ),
            "label": pa.array(rng.random(n_entity_rows)),
        }
    )
    return path, entity


def hand_written(con: duckdb.DuckDBPyConnection, path: Path, entity: pa.Table) -> pa.Table:
    ttl_us = TTL // timedelta(microseconds=1)
    features = ", ".join(
        f"CASE WHEN f.event_timestamp >= e.event_timestamp - to_microseconds({ttl_us}) THEN f.f{i} END AS f{i}"
        for i in range(N_FEATURES)
    )
    con.register("entity", entity.append_column("row_id", pa.array(np.arange(entity.num_rows))))
    query = f"""
        SELECT e.user_id, e.event_timestamp::TIMESTAMPTZ AS event_timestamp, e.label, {features}
        FROM entity e ASOF LEFT JOIN read_parquet('{path}') f
          ON e.user_id = f.user_id AND e.event_timestamp >= f.event_timestamp
        ORDER BY e.row_id"""
    return con.sql(query).to_arrow_table()


def main() -> None:
    n_features = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    n_entities = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        path, entity = generate(n_features, n_entities, Path(tmp))
        source = SourceTable(
            "users",
            str(path),
            "parquet",
            "event_timestamp",
            "created",
            {"user_id": "user_id"} | {f"f{i}": f"f{i}" for i in range(N_FEATURES)},
        )
        view = ViewQuery(
            "users",
            source,
            ("user_id",),
            tuple(Field(name=f"f{i}", dtype=Float64) for i in range(N_FEATURES)),
            tuple(f"f{i}" for i in range(N_FEATURES)),
            TTL,
        )
        store = DuckDBOfflineStore()
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        timings: dict[str, list[float]] = {"potluck": [], "hand-written ASOF": []}
        cpu: dict[str, list[float]] = {"potluck": [], "hand-written ASOF": []}
        for _ in range(3):
            start, start_cpu = time.perf_counter(), time.process_time()
            ours = store.get_historical_features(entity, [view]).to_arrow()
            timings["potluck"].append(time.perf_counter() - start)
            cpu["potluck"].append(time.process_time() - start_cpu)
            start, start_cpu = time.perf_counter(), time.process_time()
            theirs = hand_written(con, path, entity)
            timings["hand-written ASOF"].append(time.perf_counter() - start)
            cpu["hand-written ASOF"].append(time.process_time() - start_cpu)
        print(f"{n_entities:,} entity rows x {n_features:,} feature rows (best of 3)")
        for name, values in timings.items():
            runs = ", ".join(f"{v:.2f}" for v in values)
            print(f"  {name:18s} {min(values):6.2f} s wall, {min(cpu[name]):6.2f} s CPU   wall runs: {runs}")
        wall_ratio = min(timings["potluck"]) / min(timings["hand-written ASOF"])
        cpu_ratio = min(cpu["potluck"]) / min(cpu["hand-written ASOF"])
        print(f"  ratio              {wall_ratio:.2f}x wall, {cpu_ratio:.2f}x CPU")
        same = ours.equals(theirs)
        print(f"  identical tables   {same}")
        if not same:
            differing = 0
            for i in range(N_FEATURES):
                a, b = ours.column(f"f{i}"), theirs.column(f"f{i}")
                eq = pa.compute.equal(a, b)
                both_null = pa.compute.and_(a.is_null(), b.is_null())
                ok = pa.compute.or_(pa.compute.fill_null(eq, False), both_null)
                differing = max(differing, ok.length() - pa.compute.sum(ok.cast(pa.int64())).as_py())
            print(f"  rows differing     {differing} (equal event timestamps, where plain ASOF picks any row)")
        store.close()


if __name__ == "__main__":
    main()
