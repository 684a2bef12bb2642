"""A feature repository with on-demand views stored at write time, for their tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

FEATURES = """\
from datetime import timedelta

import pandas as pd

from potluck import (
    Entity, FeatureView, Field, FileSource, PushSource, RequestSource, ValueType, on_demand_feature_view,
)
from potluck.types import Float64, Int64

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
live = PushSource(name="stats_push", batch_source=FileSource(name="stats_batch", path="data/live", timestamp_field="ts"))
stats = FeatureView(
    name="stats", entities=[driver], ttl=timedelta(0),
    schema=[Field(name="conv", dtype=Float64), Field(name="trips", dtype=Int64)], source=live,
)
extra = FeatureView(
    name="extra", entities=[driver], ttl=timedelta(0), schema=[Field(name="weight", dtype=Float64)],
    source=FileSource(name="extra_source", path="data/extra.parquet", timestamp_field="ts"),
)


@on_demand_feature_view(
    sources=[stats[["conv", "trips"]]], schema=[Field(name="score", dtype=Float64)], mode="python",
    write_to_online_store=True,
)
def stored_score(inputs: dict) -> dict:
    if any(t == -1 for t in inputs["trips"]):
        raise ValueError("trips of -1")
    return {"score": [None if c is None else c * 2 + (t or 0) for c, t in zip(inputs["conv"], inputs["trips"])]}


@on_demand_feature_view(
    sources=[stats[["conv"]], extra], schema=[Field(name="combo", dtype=Float64)], mode="pandas",
    write_to_online_store=True,
)
def stored_combo(df: pd.DataFrame) -> pd.DataFrame:
    if (df["conv"] == -1.0).any():
        raise ValueError("conv of -1")
    return pd.DataFrame({"combo": df["conv"].fillna(0.0) * 10 + df["weight"].fillna(0.0)})


@on_demand_feature_view(
    sources=[stats[["conv"]], extra], schema=[Field(name="summed", dtype=Float64)], mode="python",
)
def read_time_sum(inputs: dict) -> dict:
    return {"summed": [None if c is None or w is None else c + w for c, w in zip(inputs["conv"], inputs["weight"])]}
"""

REQUEST_VIEW = """

req = RequestSource(name="req", schema=[Field(name="bonus", dtype=Float64)])


@on_demand_feature_view(
    sources=[stats[["conv"]], req], schema=[Field(name="boosted", dtype=Float64)], mode="python",
    write_to_online_store=True,
)
def stored_bonus(inputs: dict) -> dict:
    return {"boosted": [c + b for c, b in zip(inputs["conv"], inputs["bonus"])]}
"""

TS0 = datetime(2024, 1, 1, tzinfo=UTC)
EXTRA_IDS = range(0, 100_000, 7)  # drivers with an `extra` row (weight = id / 7)


def score(conv: float | None, trips: int | None) -> float | None:
    return None if conv is None else conv * 2 + (trips or 0)


def combo(conv: float | None, weight: float | None) -> float:
    return (conv or 0.0) * 10 + (weight or 0.0)


def weight_of(driver: int) -> float | None:
    return driver / 7 if driver % 7 == 0 else None


def build(root: Path, online: str, features: str = FEATURES) -> Path:
    (root / "data" / "live").mkdir(parents=True, exist_ok=True)
    (root / "feature_store.yaml").write_text(f"project: stored\nregistry: data/registry.db\n{online}")
    (root / "features.py").write_text(features)
    ids = list(EXTRA_IDS)
    pq.write_table(
        pa.table(
            {
                "driver_id": pa.array(ids, pa.int64()),
                "ts": pa.array([TS0] * len(ids), pa.timestamp("us", tz="UTC")),
                "weight": pa.array([weight_of(i) for i in ids], pa.float64()),
            }
        ),
        root / "data" / "extra.parquet",
    )
    return root


def rows(ids: list[int], ts: list[datetime], conv: list[float | None], trips: list[int | None]) -> dict[str, Any]:
    return {"driver_id": ids, "ts": ts, "conv": conv, "trips": trips}


def push_worker(root: str, batches: list[dict[str, Any]]) -> None:
    """Push each batch (for the tests' writer processes)."""
    from potluck import FeatureStore

    store = FeatureStore(repo_path=root)
    try:
        for batch in batches:
            store.push("stats_push", batch)
            print("pushed", flush=True)
    finally:
        store.close()
