"""A `Map` feature over a Parquet column that pandas wrote as a struct (what Feast's own template data holds)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from potluck import FeatureStore
from potluck.definitions.errors import PotluckError

FEATURES_PY = """\
from datetime import timedelta

from potluck import Entity, FeatureView, Field, FileSource, PushSource
from potluck.types import Map

driver = Entity(name="driver", join_keys=["driver_id"])
source = FileSource(name="stats", path="data/stats.parquet", timestamp_field="event_timestamp")
push = PushSource(name="stats_push", batch_source=source)
stats = FeatureView(name="stats", entities=[driver], ttl=timedelta(0), schema=[Field(name="meta", dtype=Map)], source=push)
"""

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    (tmp_path / "data").mkdir()
    (tmp_path / "feature_store.yaml").write_text("project: maps\n")
    (tmp_path / "features.py").write_text(FEATURES_PY)
    frame = pd.DataFrame(
        {"driver_id": [1, 2], "event_timestamp": [T0, T0], "meta": [{"kind": "suv", "rating": "4.5"}, None]}
    )
    frame.to_parquet(tmp_path / "data" / "stats.parquet")
    assert pa.types.is_struct(pq.read_schema(tmp_path / "data" / "stats.parquet").field("meta").type)
    store = FeatureStore(repo_path=tmp_path)
    store.apply()
    return store


def test_struct_column_is_read_as_a_map(store: FeatureStore) -> None:
    entity_df = pd.DataFrame({"driver_id": [1, 2], "event_timestamp": [T0, T0]})
    training = store.get_historical_features(entity_df, ["stats:meta"]).to_arrow()
    assert training.column("meta").to_pylist() == [[("kind", "suv"), ("rating", "4.5")], None]
    store.materialize(T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    online = store.get_online_features(["stats:meta"], [{"driver_id": 1}, {"driver_id": 2}]).to_dict()
    assert online["meta"] == [{"kind": "suv", "rating": "4.5"}, None]


def test_pushed_maps_are_appended_to_the_struct_column(store: FeatureStore) -> None:
    later = T0 + timedelta(minutes=5)
    store.push(
        "stats_push", {"driver_id": [1], "event_timestamp": [later], "meta": [{"kind": "van"}]}, to="online_and_offline"
    )
    entity_df = pd.DataFrame({"driver_id": [1], "event_timestamp": [later]})
    training = store.get_historical_features(entity_df, ["stats:meta"]).to_arrow()
    assert dict(training.column("meta").to_pylist()[0]) == {"kind": "van", "rating": None}
    with pytest.raises(PotluckError, match=r"column 'meta' row 0 has map key\(s\) 'color'"):
        store.push(
            "stats_push", {"driver_id": [2], "event_timestamp": [later], "meta": [{"color": "red"}]}, to="offline"
        )
