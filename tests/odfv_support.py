"""A feature repository with on-demand feature views in each mode, for the on-demand tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

FEATURES = """\
from datetime import timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from potluck import (
    Entity, FeatureService, FeatureView, Field, FileSource, RequestSource, ValueType, on_demand_feature_view,
)
from potluck.types import Float64, Int64, String

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
stats = FeatureView(
    name="stats", entities=[driver], ttl=timedelta(0),
    schema=[Field(name="conv", dtype=Float64), Field(name="trips", dtype=Int64), Field(name="city", dtype=String)],
    source=FileSource(name="stats_source", path="data/stats.parquet", timestamp_field="ts"),
)
req = RequestSource(name="req", schema=[Field(name="bonus", dtype=Float64)])
OUT = [Field(name="score", dtype=Float64), Field(name="label", dtype=String)]


@on_demand_feature_view(sources=[stats[["conv", "city"]], req], schema=OUT, mode="pandas")
def scored_pandas(df: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame()
    out["score"] = df["conv"] * 2 + df["bonus"]
    out["label"] = df["stats__city"].astype("object").where(df["city"].notna(), None)
    return out


@on_demand_feature_view(sources=[stats[["conv", "city"]], req], schema=OUT, mode="python")
def scored_python(inputs: dict) -> dict:
    score = [None if c is None or b is None else c * 2 + b for c, b in zip(inputs["conv"], inputs["bonus"])]
    return {"score": score, "label": list(inputs["stats__city"])}


@on_demand_feature_view(sources=[stats[["conv", "city"]], req], schema=OUT, mode="python", singleton=True)
def scored_single(row: dict) -> dict:
    conv, bonus = row["conv"], row["bonus"]
    return {"score": None if conv is None or bonus is None else conv * 2 + bonus, "label": row["stats__city"]}


@on_demand_feature_view(sources=[stats[["conv", "city"]], req], schema=OUT, mode="arrow")
def scored_arrow(table: pa.Table) -> pa.Table:
    score = pc.add(pc.multiply(table["conv"], 2.0), table["bonus"])
    return pa.table({"score": score, "label": table["stats__city"]})


service = FeatureService(name="scored", features=[stats[["trips"]], scored_arrow[["score"]]])
"""

MODES = {"pandas": "scored_pandas", "python": "scored_python", "singleton": "scored_single", "arrow": "scored_arrow"}
TS = datetime(2024, 1, 1, tzinfo=UTC)
BASE_ROWS: list[tuple[int, float | None, int | None, str | None]] = [
    (1, 0.5, 3, "a"),
    (2, None, None, None),
    (3, 1e300, 7, ""),
]


def write_stats(root: Path, rows: list[tuple[int, float | None, int | None, str | None]]) -> None:
    pq.write_table(
        pa.table(
            {
                "driver_id": pa.array([r[0] for r in rows], pa.int64()),
                "ts": pa.array([TS] * len(rows), pa.timestamp("us", tz="UTC")),
                "conv": pa.array([r[1] for r in rows], pa.float64()),
                "trips": pa.array([r[2] for r in rows], pa.int64()),
                "city": pa.array([r[3] for r in rows], pa.string()),
            }
        ),
        root / "data" / "stats.parquet",
    )


def build(root: Path, features: str = FEATURES, online: str = "") -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "feature_store.yaml").write_text(f"project: odfv\nregistry: data/registry.db\n{online}")
    (root / "features.py").write_text(features)
    write_stats(root, BASE_ROWS)
    return root
