"""Feature view versions: recorded per applied definition, pinned with version="vN", read as view@vN."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from potluck import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
from potluck.definitions.errors import DefinitionError, PotluckError, RepositoryError, RetrievalError
from potluck.registry.sql import Change
from potluck.types import Float64, Int64

BASE = datetime(2024, 1, 1, tzinfo=UTC)
driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)


def _write(path: Path, rows: list[tuple[int, timedelta, float, int]]) -> None:
    pq.write_table(
        pa.table(
            {
                "driver_id": pa.array([r[0] for r in rows], pa.int64()),
                "ts": pa.array([BASE + r[1] for r in rows], pa.timestamp("us", tz="UTC")),
                "conv_rate": pa.array([r[2] for r in rows], pa.float64()),
                "trips": pa.array([r[3] for r in rows], pa.int64()),
            }
        ),
        path,
    )


def view(*, ttl_hours: int, path: str = "data/a.parquet", trips: bool = False, version: str = "latest") -> FeatureView:
    fields = [Field(name="conv_rate", dtype=Float64)] + ([Field(name="trips", dtype=Int64)] if trips else [])
    return FeatureView(
        name="stats",
        entities=[driver],
        ttl=timedelta(hours=ttl_hours),
        schema=fields,
        source=FileSource(name="stats_source", path=path, timestamp_field="ts"),
        version=version,
    )


@pytest.fixture(params=["sqlite", "postgres"])
def registry(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return "data/registry.db"
    return str(request.getfixturevalue("postgres_database"))


@pytest.fixture
def store(tmp_path: Path, registry: str) -> Iterator[FeatureStore]:
    (tmp_path / "data").mkdir()
    _write(tmp_path / "data/a.parquet", [(1, timedelta(0), 0.1, 1), (2, timedelta(0), 0.2, 2)])
    _write(tmp_path / "data/b.parquet", [(1, timedelta(0), 1.1, 11), (2, timedelta(0), 1.2, 12)])
    (tmp_path / "feature_store.yaml").write_text(
        f"project: versions\nregistry:\n  path: {registry}\n  cache_ttl_seconds: 0\n"
        "online_store:\n  path: data/online.db\n"
    )
    fs = FeatureStore(repo_path=tmp_path)
    yield fs
    fs.close()


def values(column: pd.Series) -> list[object]:
    return [None if pd.isna(x) else x for x in column.tolist()]


def numbers(store: FeatureStore) -> list[tuple[str, bool]]:
    return [(v["version"], v["current"]) for v in store.list_feature_view_versions("stats")]


def test_each_changed_definition_is_a_version_and_reapplying_adds_none(store: FeatureStore) -> None:
    store.apply([driver, view(ttl_hours=1)])
    assert store.get_feature_view("stats").current_version_number == 0
    store.apply([driver, view(ttl_hours=1)])
    assert numbers(store) == [("v0", True)]
    before = store._registry_store.version()
    store.apply([driver, view(ttl_hours=24, path="data/b.parquet", trips=True)])
    assert store._registry_store.version() == before + 1
    store.apply([driver, view(ttl_hours=24, path="data/b.parquet", trips=True)])
    assert numbers(store) == [("v0", False), ("v1", True)]
    assert store.get_feature_view("stats").current_version_number == 1
    (dumped,) = store.registry_dump()["objects"]["feature_view"]
    assert dumped["current_version_number"] == 1
    listed = store.list_feature_view_versions("stats")
    assert set(listed[0]) == {
        "version",
        "version_number",
        "feature_view_type",
        "created_timestamp",
        "version_id",
        "current",
    }
    assert listed[0]["created_timestamp"].tzinfo is not None
    assert listed[0]["version_id"] != listed[1]["version_id"]
    (updated,) = [c for c in store.registry_history()[0].changes if c["kind"] == "feature_view"]
    changed = {f["path"]: (f["old"], f["new"]) for f in updated.pop("fields")}
    assert updated == {"kind": "feature_view", "name": "stats", "action": "updated", "version": "v1"}
    assert changed["ttl_seconds"] == (3600.0, 86400.0)
    assert changed["source.path"] == ("data/a.parquet", "data/b.parquet")
    assert changed["features[trips].dtype"] == (None, "Int64")


def test_a_failing_apply_records_no_version(store: FeatureStore) -> None:
    store.apply([driver, view(ttl_hours=1)])
    registry = store._registry_store
    base = registry.version()
    edited = view(ttl_hours=2).to_spec()
    other = {**view(ttl_hours=1).to_spec(), "name": "other"}
    changes = [
        Change("feature_view", "stats", "updated", edited),
        Change("feature_view", "other", "created", other, pin=4),
    ]
    with pytest.raises(DefinitionError, match=r"FeatureView 'other': version='v4' does not exist"):
        registry.commit(base, changes)
    assert registry.version() == base
    assert numbers(store) == [("v0", True)]
    assert registry.feature_view_versions("other") == []
    store.refresh_registry()
    assert store.get_feature_view("stats").ttl == timedelta(hours=1)


ENTITY_ROWS = pd.DataFrame(
    {
        "driver_id": [1, 2, 2, 3],
        "event_timestamp": [BASE + timedelta(minutes=30), BASE + timedelta(hours=3), BASE, BASE],
        "label": [True, False, True, False],
    }
)


def test_training_data_reads_each_version_with_its_own_definition(store: FeatureStore) -> None:
    store.apply([driver, view(ttl_hours=1)])
    store.apply([driver, view(ttl_hours=24, path="data/b.parquet", trips=True)])
    wanted = ["stats@v0:conv_rate", "stats@v1:conv_rate", "stats@v1:trips", "stats:trips"]
    out = store.get_historical_features(ENTITY_ROWS, wanted, full_feature_names=True).to_df()
    assert list(out.columns) == [
        "driver_id",
        "event_timestamp",
        "label",
        "stats@v0__conv_rate",
        "stats@v1__conv_rate",
        "stats@v1__trips",
        "stats__trips",
    ]
    # v0: source a.parquet, ttl 1 h (driver 2 at +3 h is outside it); v1: b.parquet, ttl 24 h
    assert values(out["stats@v0__conv_rate"]) == [0.1, None, 0.2, None]
    assert values(out["stats@v1__conv_rate"]) == [1.1, 1.2, 1.2, None]
    assert values(out["stats@v1__trips"]) == [11, 12, 12, None]
    assert values(out["stats__trips"]) == [11, 12, 12, None]
    assert out["label"].tolist() == [True, False, True, False]
    short = store.get_historical_features(ENTITY_ROWS, ["stats@v0:conv_rate", "stats@v1:trips"]).to_df()
    assert list(short.columns)[-2:] == ["conv_rate", "trips"]
    with pytest.raises(RetrievalError, match=r"'conv_rate' is requested from both 'stats@v0' and 'stats@v1'"):
        store.get_historical_features(ENTITY_ROWS, ["stats@v0:conv_rate", "stats@v1:conv_rate"])
    with pytest.raises(PotluckError, match=r"feature view 'stats@v0' has no feature 'trips'"):
        store.get_historical_features(ENTITY_ROWS, ["stats@v0:trips"])
    with pytest.raises(RetrievalError, match=r"feature view 'stats' has no version v7 .* its versions are v0, v1"):
        store.get_historical_features(ENTITY_ROWS, ["stats@v7:trips"])
    with pytest.raises(RetrievalError, match=r"must be 'latest' or 'vN'"):
        store.get_historical_features(ENTITY_ROWS, ["stats@seven:trips"])


def test_online_serves_only_the_current_version(store: FeatureStore) -> None:
    store.apply([driver, view(ttl_hours=1)])
    store.apply([driver, view(ttl_hours=0, path="data/b.parquet", trips=True)])  # ttl 0: rows of 2024 stay fresh
    store.materialize(BASE - timedelta(days=1), BASE + timedelta(hours=1))
    with pytest.raises(RetrievalError, match=r"'stats' serves only its current version v1 online.*asks for v0"):
        store.get_online_features(["stats@v0:conv_rate"], [{"driver_id": 1}])
    for ref in ("stats@v1:trips", "stats@latest:trips", "stats:trips"):
        assert store.get_online_features([ref], [{"driver_id": 1}]).to_dict()["trips"] == [11]
    named = store.get_online_features(["stats@v1:trips"], [{"driver_id": 1}], full_feature_names=True).to_dict()
    assert named["stats@v1__trips"] == [11]


def _repo_file(store: FeatureStore, *, ttl_hours: int, version: str = "latest", trips: bool = False) -> None:
    fields = "[Field(name='conv_rate', dtype=Float64)" + (", Field(name='trips', dtype=Int64)]" if trips else "]")
    (store.repo_path / "features.py").write_text(
        "from datetime import timedelta\n"
        "from potluck import Entity, FeatureView, Field, FileSource, ValueType\n"
        "from potluck.types import Float64, Int64\n"
        "driver = Entity(name='driver', join_keys=['driver_id'], value_type=ValueType.INT64)\n"
        f"stats = FeatureView(name='stats', entities=[driver], ttl=timedelta(hours={ttl_hours}), schema={fields},\n"
        "    source=FileSource(name='stats_source', path='data/a.parquet', timestamp_field='ts'),"
        f" version={version!r})\n"
    )


def test_a_pin_makes_the_recorded_definition_current_again(store: FeatureStore) -> None:
    _repo_file(store, ttl_hours=1)
    store.apply()
    _repo_file(store, ttl_hours=24, trips=True)
    store.apply()
    _repo_file(store, ttl_hours=24, trips=True, version="v0")  # Feast's way: only version= changes
    plan = store.plan()
    (diff,) = [d for d in plan.diffs if d.kind == "feature_view"]
    assert diff.action == "updated"
    store.apply()
    current = store.get_feature_view("stats")
    assert (current.current_version_number, current.ttl, current.feature_names) == (
        0,
        timedelta(hours=1),
        ["conv_rate"],
    )
    assert numbers(store) == [("v0", True), ("v1", False)]
    assert not store.plan().has_changes  # re-applying the pinned repository changes nothing
    _repo_file(store, ttl_hours=1, version="v0")  # the body of v0 itself works as well
    assert not store.plan().has_changes
    _repo_file(store, ttl_hours=5, version="v0")
    with pytest.raises(RepositoryError, match=r"features.py: FeatureView 'stats'.*matches none of the view's applied"):
        store.plan()
    _repo_file(store, ttl_hours=5, version="v9")
    with pytest.raises(RepositoryError, match=r"version='v9' does not exist \(applied versions: v0, v1\).*'v2'"):
        store.plan()
    _repo_file(store, ttl_hours=5, version="version2")  # the next number declares that version
    store.apply()
    assert numbers(store) == [("v0", False), ("v1", False), ("v2", True)]
    assert store.get_feature_view("stats").ttl == timedelta(hours=5)


def test_no_promote_records_a_version_that_training_data_can_use(store: FeatureStore) -> None:
    store.apply([driver, view(ttl_hours=0)])
    store.materialize(BASE - timedelta(days=1), BASE + timedelta(hours=1))
    store.apply([driver, view(ttl_hours=24, path="data/b.parquet", trips=True)], no_promote=True)
    assert numbers(store) == [("v0", True), ("v1", False)]
    current = store.get_feature_view("stats")
    assert (current.current_version_number, current.feature_names) == (0, ["conv_rate"])
    assert store.get_online_features(["stats:conv_rate"], [{"driver_id": 1}]).to_dict()["conv_rate"] == [0.1]
    with pytest.raises(RetrievalError, match="current version v0 online"):
        store.get_online_features(["stats@v1:trips"], [{"driver_id": 1}])
    out = store.get_historical_features(ENTITY_ROWS, ["stats@v1:trips", "stats:conv_rate"]).to_df()
    assert values(out["trips"]) == [11, 12, 12, None]
    assert values(out["conv_rate"]) == [0.1, 0.2, 0.2, None]
    (recorded,) = [c for c in store.registry_history()[0].changes if c["kind"] == "feature_view"]
    changed = {f["path"]: (f["old"], f["new"]) for f in recorded.pop("fields")}
    assert recorded == {"kind": "feature_view", "name": "stats", "action": "recorded", "version": "v1"}
    assert changed["ttl_seconds"] == (0.0, 86400.0)
    store.apply([driver, view(ttl_hours=24, path="data/b.parquet", trips=True)])  # promotes v1, records nothing new
    assert numbers(store) == [("v0", False), ("v1", True)]


def test_a_registry_from_before_versions_gets_the_table_and_its_views_start_at_v0(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    _write(tmp_path / "data/a.parquet", [(1, timedelta(0), 0.1, 1)])
    (tmp_path / "feature_store.yaml").write_text("project: old\nregistry: data/registry.db\n")
    first = FeatureStore(repo_path=tmp_path)
    first.apply([driver, view(ttl_hours=1)])
    first.close()
    with sqlite3.connect(tmp_path / "data/registry.db") as db:  # as a registry written before versions
        db.execute("DROP TABLE potluck_feature_view_versions")
        (spec,) = db.execute("SELECT spec FROM potluck_registry_objects WHERE kind = 'feature_view'").fetchone()
        body = json.loads(spec)
        del body["current_version_number"]
        db.execute("UPDATE potluck_registry_objects SET spec = ? WHERE kind = 'feature_view'", (json.dumps(body),))
    store = FeatureStore(repo_path=tmp_path)
    assert store.get_feature_view("stats").current_version_number == 0
    assert numbers(store) == [("v0", True)]
    store.apply([driver, view(ttl_hours=2)])
    assert numbers(store) == [("v0", False), ("v1", True)]
    out = store.get_historical_features(ENTITY_ROWS.iloc[:1], ["stats@v0:conv_rate"]).to_df()
    assert values(out["conv_rate"]) == [0.1]
    store.close()


def test_the_server_answers_another_version_with_a_422_naming_the_current_one(tmp_path: Path) -> None:
    import httpx

    from potluck.server import ServerSettings, create_app
    from potluck.server.store_backend import StoreBackend
    from tests_support import serve

    (tmp_path / "data").mkdir()
    _write(tmp_path / "data/a.parquet", [(1, timedelta(0), 0.1, 1)])
    (tmp_path / "feature_store.yaml").write_text("project: served\nregistry: data/registry.db\n")
    store = FeatureStore(repo_path=tmp_path)
    store.apply([driver, view(ttl_hours=1)])
    store.apply([driver, view(ttl_hours=0)])
    store.materialize(BASE - timedelta(days=1), BASE + timedelta(hours=1))
    app = create_app(StoreBackend(store), ServerSettings(auth="off"))
    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        body = {"features": ["stats@v0:conv_rate"], "entities": {"driver_id": [1]}}
        reply = http.post("/get-online-features", json=body)
        assert reply.status_code == 422
        assert "serves only its current version v1 online" in reply.text
        body["features"] = ["stats@v1:conv_rate"]
        reply = http.post("/get-online-features", json={**body, "full_feature_names": True})
        assert reply.status_code == 200
        data = reply.json()
        assert data["metadata"]["feature_names"] == ["driver_id", "stats@v1__conv_rate"]
        assert data["results"][1]["values"] == [0.1]
    store.close()
