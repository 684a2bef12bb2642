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


def make_rows(*, seed: int, count: int = 2000, shift: float = 0.0, days: int = 20, offset_days: int = 0) -> pa.Table:
    """`count` rows with event times in the `days` days that end `offset_days` ago; `age` moved by `shift`."""
    rng = np.random.default_rng(seed)
    start = NOW - timedelta(days=days + offset_days)
    seconds = rng.integers(0, days * 86400, count)
    return pa.table(
        {
            "user_id": pa.array(rng.integers(1, 200, count), pa.int64()),
            "event_timestamp": pa.array(
                [start + timedelta(seconds=int(s)) for s in seconds], pa.timestamp("us", tz="UTC")
            ),
            "age": pa.array(rng.normal(40 + shift, 10, count)),
            "spend": pa.array(rng.gamma(2.0, 50.0, count)),
            "city": pa.array(rng.choice(["paris", "lyon", "nice"], count)),
            "visits": pa.array(rng.integers(0, 30, count), pa.int64()),
        }
    )


def build_repo(root: Path, extra_yaml: str = "", *, drift_age: float = 0.0) -> Path:
    """With `drift_age`, the users view's `age` moves by that much in the last 10 days (20 to 10 days ago: not)."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:10]
    (root / "feature_store.yaml").write_text(
        f"project: mon_{tag}\nregistry: data/registry.db\nonline_store:\n  type: sqlite\n  path: data/online.db\n"
        + extra_yaml
    )
    (root / "features.py").write_text(FEATURES_PY)
    for i, name in enumerate(("users", "orders", "clicks")):
        table = make_rows(seed=i)
        if name == "users" and drift_age:
            table = pa.concat_tables(
                [make_rows(seed=i, days=10, offset_days=10), make_rows(seed=i + 10, days=10, shift=drift_age)]
            )
        pq.write_table(table, root / "data" / f"{name}.parquet")
    return root
