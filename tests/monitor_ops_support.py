"""A small feature repository for monitoring tests: three views, one of them stale, one broken."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

NOW = datetime.now(UTC).replace(microsecond=0)

FEATURES_PY = """\
from datetime import timedelta

from potluck import Entity, FeatureView, Field, FileSource, ValueType
from potluck.types import Float64, Int64, String

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)


def view(name, tags=None):
    source = FileSource(name=f"{name}_source", path=f"data/{name}.parquet", timestamp_field="event_timestamp")
    return FeatureView(
        name=name,
        entities=[user],
        ttl=timedelta(days=30),
        schema=[Field(name="age", dtype=Float64), Field(name="spend", dtype=Float64), Field(name="city", dtype=String),
                Field(name="visits", dtype=Int64)],
        source=source,
        tags=tags or {},
    )


users = view("users", {"potluck.max_staleness": "1h"})
orders = view("orders")
clicks = view("clicks", {"potluck.max_staleness": "none"})
"""


def write_rows(path: Path, *, seed: int, rows: int = 2000, shift: float = 0.0, days: int = 20) -> None:
    rng = np.random.default_rng(seed)
    start = NOW - timedelta(days=days)
    seconds = rng.integers(0, days * 86400, rows)
    pq.write_table(
        pa.table(
            {
                "user_id": pa.array(rng.integers(1, 200, rows), pa.int64()),
                "event_timestamp": pa.array(
                    [start + timedelta(seconds=int(s)) for s in seconds], pa.timestamp("us", tz="UTC")
                ),
                "age": pa.array(rng.normal(40 + shift, 10, rows)),
                "spend": pa.array(rng.gamma(2.0, 50.0, rows)),
                "city": pa.array(rng.choice(["paris", "lyon", "nice"], rows)),
                "visits": pa.array(rng.integers(0, 30, rows), pa.int64()),
            }
        ),
        path,
    )


def build_repo(root: Path, extra_yaml: str = "") -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:10]
    (root / "feature_store.yaml").write_text(
        f"project: mon_{tag}\nregistry: data/registry.db\nonline_store:\n  type: sqlite\n  path: data/online.db\n"
        + extra_yaml
    )
    (root / "features.py").write_text(FEATURES_PY)
    for i, name in enumerate(("users", "orders", "clicks")):
        write_rows(root / "data" / f"{name}.parquet", seed=i)
    return root
