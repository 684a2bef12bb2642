"""Feature repositories on each online store, for end-to-end tests through FeatureStore."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tests_support import POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, REDIS_HOST, REDIS_PORT, require_server

END = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
DRIVERS = 150

FEATURES_PY = """\
from datetime import timedelta

from potluck import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, ValueType
from potluck.types import Array, Float32, Float64, Int64, String

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
stats_source = FileSource(
    name="driver_stats_source", path="data/driver_stats.parquet", timestamp_field="event_timestamp",
    created_timestamp_column="created",
)
driver_stats = FeatureView(
    name="driver_stats",
    entities=[driver],
    ttl=timedelta(days=30),
    schema=[
        Field(name="conv_rate", dtype=Float64),
        Field(name="trips", dtype=Int64),
        Field(name="city", dtype=String),
        Field(name="scores", dtype=Array(Float32)),
    ],
    source=stats_source,
)
push_source = PushSource(
    name="driver_live",
    batch_source=FileSource(name="driver_live_batch", path="data/live", timestamp_field="event_timestamp"),
)
driver_live = FeatureView(
    name="driver_live",
    entities=[driver],
    ttl=timedelta(days=30),
    schema=[Field(name="lat", dtype=Float64), Field(name="status", dtype=String)],
    source=push_source,
)
service = FeatureService(name="driver_service", features=[driver_stats, driver_live[["lat"]]])
"""


def write_stats(path: Path, *, seed: int = 3, rows: int = 4000) -> None:
    rng = np.random.default_rng(seed)
    start = END - timedelta(days=10)
    seconds = rng.integers(0, 10 * 86400, rows)
    event = [start + timedelta(seconds=int(s)) for s in seconds]
    # ties: some rows share an event time with a later created time
    created = [e + timedelta(minutes=int(m)) for e, m in zip(event, rng.integers(0, 3, rows), strict=True)]
    pq.write_table(
        pa.table(
            {
                "driver_id": pa.array(rng.integers(1, DRIVERS + 1, rows), pa.int64()),
                "event_timestamp": pa.array(event, pa.timestamp("us", tz="UTC")),
                "created": pa.array(created, pa.timestamp("us", tz="UTC")),
                "conv_rate": pa.array(rng.random(rows), mask=rng.random(rows) < 0.05),
                "trips": pa.array(rng.integers(0, 100, rows), pa.int64()),
                "city": pa.array(rng.choice(["a", "b", "c"], rows)),
                "scores": pa.array([[float(x), 1.5] for x in rng.random(rows)], pa.list_(pa.float32())),
            }
        ),
        path,
    )


def online_yaml(kind: str, tag: str, endpoint: str | None = None) -> str:
    if kind == "sqlite":
        return "online_store:\n  type: sqlite\n  path: data/online.db\n"
    if kind == "redis":
        return (
            f"online_store:\n  type: redis\n  connection_string: {REDIS_HOST}:{REDIS_PORT}\n"
            f"  key_prefix: 'test_{tag}:'\n"
        )
    if kind == "dynamodb":  # `endpoint`: the moto server's
        return (
            f"online_store:\n  type: dynamodb\n  region: us-east-1\n  endpoint_url: {endpoint}\n"
            f"  table_name_template: 't{tag}.{{project}}.{{table_name}}'\n  consistent_reads: true\n"
        )
    return (
        f"online_store:\n  type: postgres\n  host: {POSTGRES_HOST}\n  port: {POSTGRES_PORT}\n"
        f"  database: test\n  user: {POSTGRES_USER}\n  db_schema: test_{tag}\n"
    )


def build_repo(root: Path, kind: str, endpoint: str | None = None) -> Path:
    tag = uuid.uuid4().hex[:10]
    (root / "data" / "live").mkdir(parents=True, exist_ok=True)
    yaml = online_yaml(kind, tag, endpoint)
    (root / "feature_store.yaml").write_text(f"project: p_{tag}\nregistry: data/registry.db\n" + yaml)
    (root / "features.py").write_text(FEATURES_PY)
    write_stats(root / "data" / "driver_stats.parquet")
    return root


def build_repo_on_port(root: Path, redis_port: int) -> Path:
    """A repository on a private redis-server listening on `redis_port` (loopback)."""
    build_repo(root, "redis")
    yaml_file = root / "feature_store.yaml"
    text = yaml_file.read_text()
    yaml_file.write_text(
        text.replace(f"connection_string: {REDIS_HOST}:{REDIS_PORT}", f"connection_string: 127.0.0.1:{redis_port}")
    )
    return root


def _require(kind: str) -> None:
    if kind == "redis":
        require_server("Redis", REDIS_HOST, REDIS_PORT)
    if kind == "postgres":
        require_server("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)


def _drop_postgres_schema(root: Path) -> None:
    import psycopg
    import yaml

    schema = yaml.safe_load((root / "feature_store.yaml").read_text())["online_store"]["db_schema"]
    dsn = f"host={POSTGRES_HOST} port={POSTGRES_PORT} user={POSTGRES_USER} dbname=test"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
