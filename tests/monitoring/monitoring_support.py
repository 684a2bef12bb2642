"""A feature repository with a baseline week and a current week whose features drift in known ways."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

START = datetime(2026, 1, 1, tzinfo=UTC)
WEEK = timedelta(days=7)
ROWS = 20_000  # per week

FEATURES_PY = """\
from datetime import timedelta

from potluck import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from potluck.types import Array, Bool, Float64, Int64, String

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
source = FileSource(name="txn_source", path="data/txn.parquet", timestamp_field="event_timestamp")
txn = FeatureView(
    name="txn",
    entities=[user],
    ttl=timedelta(days=30),
    schema=[
        Field(name="stable", dtype=Float64),
        Field(name="stable_int", dtype=Int64),
        Field(name="mean_shift", dtype=Float64),
        Field(name="variance", dtype=Float64),
        Field(name="nulls", dtype=Float64),
        Field(name="outliers", dtype=Float64),
        Field(name="city", dtype=String),
        Field(name="channel", dtype=String),
        Field(name="flag", dtype=Bool),
        Field(name="items", dtype=Array(Int64)),
    ],
    source=source,
    tags={"monitoring.js_distance": "none"},
)
service = FeatureService(name="txn_service", features=[txn[["stable", "mean_shift", "city"]]])
"""

# feature -> the rules expected to fire on the current week at the default thresholds
SHIFTED = {
    "mean_shift": {"psi", "ks", "mean_change"},
    "variance": {"psi", "ks"},
    "nulls": {"null_rate_change"},
    "outliers": {"max_ratio"},
    "channel": {"psi", "unseen_category"},
}
STABLE = ("stable", "stable_int", "city", "flag", "items")


def week(rng: np.random.Generator, start: datetime, shifted: bool) -> pa.Table:
    n = ROWS
    seconds = rng.integers(0, int(WEEK.total_seconds()), n)
    outliers = rng.normal(10, 1, n)
    if shifted:
        outliers[rng.random(n) < 0.005] = 100.0
    channel = rng.choice(["web", "app", "pos"], n, p=[0.5, 0.3, 0.2]).astype(object)
    if shifted:
        channel[rng.random(n) < 0.2] = "voice"
    lengths = rng.poisson(3, n)
    return pa.table(
        {
            "user_id": pa.array(rng.integers(1, 5000, n), pa.int64()),
            "event_timestamp": pa.array(
                [start + timedelta(seconds=int(s)) for s in seconds], pa.timestamp("us", tz="UTC")
            ),
            "stable": rng.normal(10, 2, n),
            "stable_int": pa.array(rng.poisson(3, n), pa.int64()),
            "mean_shift": rng.normal(14 if shifted else 10, 2, n),
            "variance": rng.normal(10, 3 if shifted else 1, n),
            "nulls": pa.array(rng.normal(5, 1, n), mask=rng.random(n) < (0.2 if shifted else 0.01)),
            "outliers": outliers,
            "city": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
            "channel": channel,
            "flag": rng.random(n) < 0.3,
            "items": pa.array([list(range(k)) for k in lengths], pa.list_(pa.int64())),
        }
    )


def write_repo(root: Path, seed: int = 7, extra_yaml: str = "") -> Path:
    rng = np.random.default_rng(seed)
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "feature_store.yaml").write_text(
        "project: monitored\nregistry: data/registry.db\nonline_store:\n  path: data/online.db\n" + extra_yaml
    )
    (root / "features.py").write_text(FEATURES_PY)
    table = pa.concat_tables([week(rng, START, shifted=False), week(rng, START + WEEK, shifted=True)])
    pq.write_table(table, root / "data" / "txn.parquet", row_group_size=8192)
    return root
