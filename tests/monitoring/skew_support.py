"""A logged feature service on a real store, its served values written by the real server in process.

Views (one row per user unless said): `stats` (10 rows per user over ten days, ttl 30 days),
`live` (a push source; its offline rows 20 days old), `short` (ttl 2 hours; its offline rows 3
hours old, so expired when served). Training data: `get_historical_features` of the service at
random times of the last nine days. Faults are planted by the tests.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from potluck import FeatureStore
from potluck.feature_logs import FeatureLogger
from potluck.server.app import create_app
from potluck.server.settings import ServerSettings
from potluck.server.store_backend import StoreBackend
from tests_support import REDIS_HOST, REDIS_PORT, serve

USERS = 400
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
END = NOW - timedelta(hours=1)

FEATURES_PY = """\
from datetime import timedelta

from potluck import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, ValueType
from potluck.feature_logging import LoggingConfig
from potluck.infra.offline_stores.file_source import FileLoggingDestination
from potluck.types import Float64, Int64

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
stats = FeatureView(
    name="stats",
    entities=[user],
    ttl=timedelta(days=30),
    schema=[Field(name="amount", dtype=Float64), Field(name="count", dtype=Int64)],
    source=FileSource(
        name="stats_source", path="data/stats.parquet", timestamp_field="event_timestamp",
        created_timestamp_column="created"{mapping},
    ),
)
live = FeatureView(
    name="live",
    entities=[user],
    ttl=timedelta(days=30),
    schema=[Field(name="score", dtype=Float64)],
    source=PushSource(
        name="live_push",
        batch_source=FileSource(name="live_batch", path="data/live", timestamp_field="event_timestamp"),
    ),
)
short = FeatureView(
    name="short",
    entities=[user],
    ttl=timedelta(hours=2),
    schema=[Field(name="level", dtype=Float64)],
    source=FileSource(name="short_source", path="data/short", timestamp_field="event_timestamp"),
)
scored = FeatureService(
    name="scored",
    features=[stats, live, short],
    logging_config=LoggingConfig(destination=FileLoggingDestination(path="logs"), sample_rate=1.0),
)
"""
REMAPPED = ', field_mapping={"amount_v2": "amount"}'


def _online_yaml(kind: str) -> str:
    if kind == "redis":
        tag = uuid.uuid4().hex[:10]
        return (
            f"online_store:\n  type: redis\n  connection_string: {REDIS_HOST}:{REDIS_PORT}\n"
            f"  key_prefix: 'test_skew_{tag}:'\n"
        )
    return "online_store:\n  type: sqlite\n  path: data/online.db\n"


def write_repo(root: Path, kind: str = "sqlite", seed: int = 11) -> Path:
    rng = np.random.default_rng(seed)
    for folder in ("data/live", "data/short"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    (root / "feature_store.yaml").write_text(f"project: skew_{tag}\nregistry: data/registry.db\n" + _online_yaml(kind))
    (root / "features.py").write_text(FEATURES_PY.format(mapping=""))
    rows = USERS * 10
    event = [END - timedelta(days=10) + timedelta(seconds=int(s)) for s in rng.integers(0, 10 * 86400, rows)]
    amount = rng.normal(50, 10, rows)
    pq.write_table(
        pa.table(
            {
                "user_id": pa.array(np.repeat(np.arange(1, USERS + 1), 10), pa.int64()),
                "event_timestamp": pa.array(event, pa.timestamp("us", tz="UTC")),
                "created": pa.array([e + timedelta(minutes=1) for e in event], pa.timestamp("us", tz="UTC")),
                "amount": amount,
                "amount_v2": amount * 3,
                "count": pa.array(rng.integers(0, 20, rows), pa.int64()),
            }
        ),
        root / "data" / "stats.parquet",
    )
    users = pa.array(np.arange(1, USERS + 1), pa.int64())
    pq.write_table(
        pa.table(
            {
                "user_id": users,
                "event_timestamp": pa.array([END - timedelta(days=20)] * USERS, pa.timestamp("us", tz="UTC")),
                "score": rng.normal(0.5, 0.1, USERS),
            }
        ),
        root / "data" / "live" / "part-0.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "user_id": users,
                "event_timestamp": pa.array([END - timedelta(hours=2)] * USERS, pa.timestamp("us", tz="UTC")),
                "level": rng.normal(5, 1, USERS),
            }
        ),
        root / "data" / "short" / "part-0.parquet",
    )
    return root


def prepare(root: Path) -> FeatureStore:
    """Apply and materialize everything up to END."""
    store = FeatureStore(repo_path=root)
    store.apply()
    store.materialize(END - timedelta(days=30), END)
    return store


def write_training(store: FeatureStore, path: Path, rows: int = 4000, seed: int = 5) -> Path:
    rng = np.random.default_rng(seed)
    entity = pa.table(
        {
            "user_id": pa.array(rng.integers(1, USERS + 1, rows), pa.int64()),
            "event_timestamp": pa.array(
                [END - timedelta(days=9) + timedelta(seconds=int(s)) for s in rng.integers(0, 8 * 86400, rows)],
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )
    job = store.get_historical_features(entity, store.get_feature_service("scored"), full_feature_names=True)
    job.to_parquet(str(path))
    return path


def serve_and_log(root: Path, users: range = range(1, USERS + 1), batch: int = 20) -> None:
    """Every user read once through feature service `scored` on the real server, logged at rate 1."""
    store = FeatureStore(repo_path=root)
    logger = FeatureLogger(queue_rows=100_000, flush_rows=200, flush_interval=0.2, rng=random.Random(1))
    app = create_app(StoreBackend(store), ServerSettings(), feature_log=logger)
    ids = list(users)
    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        for i in range(0, len(ids), batch):
            body = {
                "feature_service": "scored",
                "entities": {"user_id": ids[i : i + batch]},
                "full_feature_names": True,
            }
            response = http.post("/get-online-features", json=body)
            assert response.status_code == 200, response.text
    logger.close()
    store.close()
