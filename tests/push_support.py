"""A small feature repository with a push source, on SQLite, for the push input tests."""

from __future__ import annotations

from pathlib import Path

FEATURES_PY = """\
from datetime import timedelta

from potluck import Entity, FeatureView, Field, FileSource, PushSource, ValueType
from potluck.types import Bool, Float64, Int64, String

rider = Entity(name="rider", join_keys=["rider_id"], value_type=ValueType.INT64)
live = PushSource(
    name="rider_live",
    batch_source=FileSource(name="rider_live_batch", path="data/live", timestamp_field="event_timestamp"),
)
rider_live = FeatureView(
    name="rider_live",
    entities=[rider],
    ttl=timedelta(0),
    schema=[
        Field(name="speed", dtype=Float64),
        Field(name="trips", dtype=Int64),
        Field(name="active", dtype=Bool),
        Field(name="zone", dtype=String),
    ],
    source=live,
)
"""


def build_push_repo(root: Path, online_yaml: str = "online_store:\n  type: sqlite\n  path: data/online.db\n") -> Path:
    (root / "data" / "live").mkdir(parents=True, exist_ok=True)
    (root / "feature_store.yaml").write_text("project: pushing\nregistry: data/registry.db\n" + online_yaml)
    (root / "features.py").write_text(FEATURES_PY)
    return root


def row(**overrides: object) -> dict[str, list[object]]:
    """One valid row as columns, with some columns replaced."""
    base: dict[str, list[object]] = {
        "rider_id": [7],
        "event_timestamp": ["2026-11-01T00:00:00Z"],
        "speed": [1.5],
        "trips": [3],
        "active": [True],
        "zone": ["north"],
    }
    base.update({k: [v] if not isinstance(v, list) else v for k, v in overrides.items()})
    return base
