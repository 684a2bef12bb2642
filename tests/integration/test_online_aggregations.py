"""Aggregation views end to end on SQLite: push (with an idempotency key) feeds the tiles, and online
reads (SDK, async SDK, HTTP) serve their outputs beside a plain view's features in one request."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from potluck import FeatureStore

FEATURES_PY = """\
from datetime import timedelta

from potluck import Entity, FeatureView, Field, FileSource, PushSource, ValueType
from potluck.aggregation import Aggregation
from potluck.definitions.aggregation_views import StreamFeatureView
from potluck.types import Float64, Int64

rider = Entity(name="rider", join_keys=["rider_id"], value_type=ValueType.INT64)
live = PushSource(
    name="rides",
    batch_source=FileSource(name="rides_batch", path="data/rides", timestamp_field="event_timestamp"),
)
ride_stats = StreamFeatureView(
    name="ride_stats",
    entities=[rider],
    source=live,
    timestamp_field="event_timestamp",
    schema=[Field(name="fare", dtype=Float64)],
    aggregations=[
        Aggregation(column="fare", function="count", time_window=timedelta(hours=1)),
        Aggregation(column="fare", function="sum", time_window=timedelta(days=1)),
        Aggregation(column="fare", function="max"),
    ],
)
plain = FeatureView(
    name="rider_plain",
    entities=[rider],
    ttl=timedelta(0),
    schema=[Field(name="fare", dtype=Float64)],
    source=live,
)
"""

FEATURES = ["ride_stats:count_fare_3600s", "ride_stats:sum_fare_86400s", "ride_stats:max_fare", "rider_plain:fare"]


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    (tmp_path / "data" / "rides").mkdir(parents=True)
    (tmp_path / "feature_store.yaml").write_text(
        "project: aggs\nregistry: data/registry.db\nonline_store:\n  type: sqlite\n  path: data/online.db\n"
    )
    (tmp_path / "features.py").write_text(FEATURES_PY)
    fs = FeatureStore(repo_path=tmp_path)
    fs.apply()
    return fs


def _rows(now: datetime) -> dict[str, list[object]]:
    stamps = [now - timedelta(minutes=5), now - timedelta(hours=3), now - timedelta(minutes=1)]
    return {"rider_id": [1, 1, 2], "event_timestamp": stamps, "fare": [10.0, 5.0, 7.5]}


def _definitions(root: Path) -> dict[str, object]:
    scope: dict[str, object] = {}
    exec(compile(FEATURES_PY, str(root / "features.py"), "exec"), scope)
    return scope


def test_push_path_feeds_tiles_once_per_key_and_reads_mix(tmp_path: Path) -> None:
    """The push path with the declared views (as the registry must hand them over)."""
    from potluck.online.sqlite import SqliteOnlineStore
    from potluck.repo.config import SqliteOnlineStoreConfig
    from potluck.repo.resolve import resolve_definitions
    from potluck.retrieval.online import OnlineSelection, get_online_features
    from potluck.retrieval.plans import online_view
    from potluck.streaming.push import PushMode, push

    defs = _definitions(tmp_path)
    declared = [d for d in defs.values() if hasattr(d, "kind") and not isinstance(d, type)]
    resolved = {d.name: d for d in resolve_definitions(declared, None, lambda _s: None, lambda _o: "<test>", "aggs")}  # type: ignore[arg-type, attr-defined]
    views = [resolved["ride_stats"], resolved["rider_plain"]]
    assert views[0].aggregations
    online = SqliteOnlineStore(SqliteOnlineStoreConfig(), path=tmp_path / "online.db")
    now = datetime.now(UTC)
    for _ in range(2):
        push(defs["live"], views, _rows(now), PushMode.ONLINE, project="aggs", repo_path=str(tmp_path),
             online=online, offline=None, idempotency_key="batch-1")  # fmt: skip
    selections = []
    for view in views:
        target = online_view(view, "aggs")  # type: ignore[arg-type]
        names = tuple(f.name for f in target.features)
        selections.append(OnlineSelection(target, names, names))
    got = get_online_features(online, selections, [{"rider_id": 1}, {"rider_id": 2}, {"rider_id": 3}]).to_dict()
    assert got["count_fare_3600s"] == [1, 1, None]
    assert got["sum_fare_86400s"] == [15.0, 7.5, None]
    assert got["max_fare"] == [10.0, 7.5, None]
    assert got["fare"] == [10.0, 7.5, None]  # the plain view: newest row
    online.close()


def test_push_feeds_tiles_and_reads_mix_with_plain_views(store: FeatureStore) -> None:
    now = datetime.now(UTC)
    assert store.push("rides", _rows(now), idempotency_key="batch-1") == 3
    store.push("rides", _rows(now), idempotency_key="batch-1")  # a replay: the tiles count it once
    got = store.get_online_features(FEATURES, [{"rider_id": 1}, {"rider_id": 2}, {"rider_id": 3}]).to_dict()
    assert got["count_fare_3600s"] == [1, 1, None]
    assert got["sum_fare_86400s"] == [15.0, 7.5, None]
    assert got["max_fare"] == [10.0, 7.5, None]
    assert got["fare"] == [10.0, 7.5, None]  # the plain view: newest row
    statuses = store.get_online_features(FEATURES, [{"rider_id": 3}]).statuses
    assert statuses["count_fare_3600s"] == ["NOT_FOUND"]
    again = asyncio.run(store.get_online_features_async(FEATURES, [{"rider_id": 1}])).to_dict()
    assert again["sum_fare_86400s"] == [15.0]
    store.push("rides", _rows(now))  # without a key, a second push counts again
    assert store.get_online_features(FEATURES, [{"rider_id": 1}]).to_dict()["sum_fare_86400s"] == [30.0]
    store.close()


def test_http_push_with_idempotency_key(store: FeatureStore) -> None:
    import httpx

    from potluck.server import ServerSettings, create_app
    from potluck.server.store_backend import StoreBackend
    from tests_support import serve

    now = datetime.now(UTC)
    rows = {k: [v.isoformat() if isinstance(v, datetime) else v for v in col] for k, col in _rows(now).items()}
    app = create_app(StoreBackend(store), ServerSettings(auth="off"))
    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(2):
            body = {"push_source_name": "rides", "df": rows, "idempotency_key": "k1"}
            assert client.post("/push", json=body).status_code == 200
        read = client.post("/get-online-features", json={"features": FEATURES, "entities": {"rider_id": [1]}})
        assert read.status_code == 200, read.text
        names = read.json()["metadata"]["feature_names"]
        values = dict(zip(names, [r["values"][0] for r in read.json()["results"]], strict=True))
        assert values["sum_fare_86400s"] == 15.0
        bad = client.post("/push", json={"push_source_name": "rides", "df": rows, "idempotency_key": ""})
        assert bad.status_code == 422
        # 30 days old: out of the hour and day windows, kept by the lifetime max (never dropped).
        old = {**rows, "event_timestamp": [(now - timedelta(days=30)).isoformat()] * 3}
        assert client.post("/push", json={"push_source_name": "rides", "df": old}).status_code == 200
        counters = {
            line.split('"')[1]: float(line.split()[-1])
            for line in client.get("/metrics").text.splitlines()
            if line.startswith("potluck_tile_events_total{")
        }
        assert set(counters) == {"applied", "late", "behind_watermark", "future_dropped"}
        assert counters["applied"] >= 6
        schema = client.get("/openapi.json").json()
        push_body = schema["components"]["schemas"]["PushRequest"]["properties"]
        assert "idempotency_key" in push_body
    store.close()


def test_min_max_last_of_a_time_column_are_times(tmp_path: Path) -> None:
    import pyarrow as pa

    from potluck.aggregation.online_tiles import TileAggregation, TileSpec, read_values
    from potluck.definitions.field import Field
    from potluck.online.protocol import OnlineView, ReadRequest
    from potluck.online.sqlite import SqliteOnlineStore
    from potluck.repo.config import SqliteOnlineStoreConfig
    from potluck.streaming.tile_feed import events_from_table, update_tiles
    from potluck.types import Int64, UnixTimestamp

    spec = TileSpec(
        tuple(TileAggregation.of("seen", f, timedelta(days=1), timedelta(hours=1), f) for f in ("min", "max", "last"))
    )
    features = tuple(Field(name=f, dtype=UnixTimestamp) for f in ("min", "max", "last"))
    view = OnlineView(
        "p", "times", ("rider_id",), (Field(name="rider_id", dtype=Int64),), features, timedelta(0), tiles=spec
    )
    online = SqliteOnlineStore(SqliteOnlineStoreConfig(), path=tmp_path / "online.db")
    online.create([view])
    now = datetime(2024, 5, 1, 12, tzinfo=UTC)
    seen = [now - timedelta(hours=3), now - timedelta(days=9), now - timedelta(hours=1)]
    table = pa.table(
        {
            "rider_id": [1, 1, 1],
            "event_timestamp": pa.array(
                [now - timedelta(minutes=m) for m in (30, 20, 10)], pa.timestamp("us", tz="UTC")
            ),
            "seen": pa.array([s.replace(tzinfo=None) for s in seen], pa.timestamp("ms")),  # naive: UTC
        }
    )
    keys, events = events_from_table(view, spec, table)
    now_us = int(now.timestamp() * 1_000_000)
    update_tiles(online, view, spec, keys, events, now=now_us)
    record = online.read_tiles([ReadRequest(view, keys[:1])])[0][0]
    assert record is not None
    assert read_values(spec, record.blob, now_us) == [seen[1], seen[2], seen[2]]
    online.close()


ON_DEMAND_PY = """

from potluck import on_demand_feature_view


@on_demand_feature_view(
    sources=[ride_stats[["count_fare_3600s", "sum_fare_86400s"]]],
    schema=[Field(name="fare_per_recent_ride", dtype=Float64)],
    mode="python",
)
def fare_per_recent_ride(inputs: dict) -> dict:
    return {
        "fare_per_recent_ride": [
            None if s is None or not c else s / c for c, s in zip(inputs["count_fare_3600s"], inputs["sum_fare_86400s"])
        ]
    }
"""


def test_an_on_demand_view_over_window_outputs_is_the_same_online_and_offline(tmp_path: Path) -> None:
    import pyarrow as pa

    (tmp_path / "data" / "rides").mkdir(parents=True)
    (tmp_path / "feature_store.yaml").write_text(
        "project: aggs\nregistry: data/registry.db\nonline_store:\n  type: sqlite\n  path: data/online.db\n"
    )
    (tmp_path / "features.py").write_text(FEATURES_PY + ON_DEMAND_PY)
    store = FeatureStore(repo_path=tmp_path)
    store.apply()
    now = datetime.now(UTC).replace(microsecond=0)
    store.push("rides", _rows(now), to="online_and_offline")
    refs = ["fare_per_recent_ride:fare_per_recent_ride", *FEATURES]
    online = store.get_online_features(refs, [{"rider_id": 1}, {"rider_id": 2}, {"rider_id": 3}]).to_dict()
    assert online["fare_per_recent_ride"] == [15.0, 7.5, None]
    entity = pa.table(
        {"rider_id": pa.array([1, 2, 3], pa.int64()), "event_timestamp": pa.array([now] * 3, pa.timestamp("us", "UTC"))}
    )
    offline = store.get_historical_features(entity, refs).to_arrow().to_pydict()
    for name in ["fare_per_recent_ride", "count_fare_3600s", "sum_fare_86400s", "max_fare"]:
        assert offline[name] == online[name], name
    store.close()


def test_a_view_stored_at_write_time_cannot_read_window_outputs(tmp_path: Path) -> None:
    from potluck.definitions.errors import RepositoryError

    (tmp_path / "data" / "rides").mkdir(parents=True)
    (tmp_path / "feature_store.yaml").write_text(
        "project: aggs\nregistry: data/registry.db\nonline_store:\n  type: sqlite\n  path: data/online.db\n"
    )
    stored = ON_DEMAND_PY.replace('mode="python",', 'mode="python", write_to_online_store=True,')
    assert stored != ON_DEMAND_PY
    (tmp_path / "features.py").write_text(FEATURES_PY + stored)
    store = FeatureStore(repo_path=tmp_path)
    with pytest.raises(RepositoryError, match="cannot read the windowed aggregations of 'ride_stats'"):
        store.plan()
    store.close()
