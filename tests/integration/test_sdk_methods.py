"""FeatureStore methods with Feast's signatures, and push inputs, on every online store (and over HTTP)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from integration_support import END
from test_server_e2e import served

from potluck import FeatureStore
from potluck.definitions.errors import DefinitionError, NotFoundError, RetrievalError
from potluck.online.protocol import ReadRequest
from potluck.retrieval.plans import online_view

WHEN = (pd.Timestamp(END) - pd.Timedelta(hours=2)).isoformat()
LIVE = ["driver_live:lat", "driver_live:status"]


def _store(repo_factory: Callable[[], Path]) -> FeatureStore:
    store = FeatureStore(repo_path=repo_factory())
    store.apply()
    return store


def _live_rows(store: FeatureStore) -> pa.Table:
    return pq.read_table(store.repo_path / "data" / "live").sort_by("driver_id")


def test_request_fields_are_not_echoed_by_the_sdk_or_http(repo_factory: Callable[[], Path]) -> None:
    store = _store(repo_factory)
    store.push("driver_live", {"driver_id": [1], "event_timestamp": [WHEN], "lat": [1.5], "status": ["on"]})
    rows = [{"driver_id": 1, "request_amount": 5.0, "note": "x"}]
    response = store.get_online_features(["driver_live:lat"], rows)
    assert list(response.to_dict()) == ["driver_id", "lat"]
    assert list(response.to_df().columns) == ["driver_id", "lat"]
    assert response.to_arrow().column_names == ["driver_id", "lat"]
    with served(store, auth="off") as url, httpx.Client(base_url=url, timeout=10) as http:
        body = {"features": ["driver_live:lat"], "entities": {"driver_id": [1], "request_amount": [5.0]}}
        data = http.post("/get-online-features", json=body).json()
    assert data["metadata"]["feature_names"] == ["driver_id", "lat"]
    assert data["results"][1]["values"] == [1.5]
    store.close()


def test_push_ignores_undeclared_columns_online_and_keeps_batch_columns_offline(
    repo_factory: Callable[[], Path],
) -> None:
    store = _store(repo_factory)
    # the batch source already holds a column the view does not declare ('note')
    first = pd.DataFrame(
        {
            "driver_id": pd.Series([9], dtype="int64"),
            "event_timestamp": [pd.Timestamp(END) - pd.Timedelta(days=1)],
            "lat": [0.5],
            "status": ["old"],
            "note": ["seed"],
        }
    )
    first.to_parquet(store.repo_path / "data" / "live" / "part-0.parquet", index=False)
    with_note = {"driver_id": [1], "event_timestamp": [WHEN], "lat": [1.5], "status": ["on"], "note": ["n1"]}
    assert store.push("driver_live", {**with_note, "junk": ["typo?"]}, to="online_and_offline") == 1
    without_note = {"driver_id": [2], "event_timestamp": [WHEN], "lat": [2.5], "status": ["off"]}
    assert store.push("driver_live", without_note, to="online_and_offline") == 1
    read = store.get_online_features(LIVE, {"driver_id": [1, 2]}).to_dict()
    assert read == {"driver_id": [1, 2], "lat": [1.5, 2.5], "status": ["on", "off"]}
    offline = _live_rows(store)
    assert offline.column_names == ["driver_id", "event_timestamp", "lat", "status", "note"]
    assert offline.column("note").to_pylist() == ["n1", None, "seed"]
    # a bad value in a kept batch column is refused before anything is written
    bad = {**with_note, "driver_id": [3], "note": [{"not": "text"}]}
    with pytest.raises(RetrievalError, match="column 'note' row 0"):
        store.push("driver_live", bad, to="online_and_offline")
    assert store.get_online_features(LIVE, {"driver_id": [3]}).statuses["lat"] == ["NOT_FOUND"]
    store.close()


def test_a_scalar_column_is_repeated_for_every_row(repo_factory: Callable[[], Path]) -> None:
    store = _store(repo_factory)
    assert store.push("driver_live", {"driver_id": [1, 2], "event_timestamp": WHEN, "lat": 1.0, "status": "on"}) == 2
    assert store.push("driver_live", {"driver_id": 3, "event_timestamp": WHEN, "lat": 3.0, "status": "x"}) == 1
    read = store.get_online_features(LIVE, {"driver_id": [1, 2, 3]}).to_dict()
    assert read["lat"] == [1.0, 1.0, 3.0]
    assert read["status"] == ["on", "on", "x"]
    with pytest.raises(RetrievalError, match=r"same number of values \('driver_id': 2, 'lat': 3\)"):
        store.push("driver_live", {"driver_id": [1, 2], "event_timestamp": WHEN, "lat": [1.0] * 3, "status": "on"})
    store.close()


def test_http_push_takes_scalars_lossless_text_and_refuses_lossy_values(repo_factory: Callable[[], Path]) -> None:
    store = _store(repo_factory)
    with served(store, auth="off") as url, httpx.Client(base_url=url, timeout=10) as http:
        body: dict[str, Any] = {
            "push_source_name": "driver_live",
            # a key as text, an integer for a Float64, one timestamp for both rows, an extra column
            "df": {"driver_id": ["1001", 1002], "event_timestamp": WHEN, "lat": [2, "1.5"], "status": "on", "x": 1},
        }
        reply = http.post("/push", json=body)
        assert reply.status_code == 200, reply.text
        assert reply.json() == {"status": "ok", "rows": 2}
        lossy = {**body, "df": {**body["df"], "driver_id": [1003, 1.5]}}
        refused = http.post("/push", json=lossy)
        assert refused.status_code == 422
        message = refused.json()["error"]["message"]
        assert "column 'driver_id' row 1: 1.5 cannot be stored as Int64" in message
        nested = http.post("/push", json={**body, "df": {**body["df"], "lat": {"a": 1}}})
        assert nested.status_code == 422
    read = store.get_online_features(["driver_live:lat"], {"driver_id": [1001, 1002, 1003]}).to_dict()
    assert read["lat"] == [2.0, 1.5, None]
    store.close()


def test_write_to_online_store_and_offline_store(repo_factory: Callable[[], Path]) -> None:
    store = _store(repo_factory)
    frame = pd.DataFrame({"driver_id": [5], "event_timestamp": [pd.Timestamp(WHEN)], "lat": [4.5], "status": ["on"]})
    assert store.write_to_online_store("driver_live", frame) == 1
    assert store.write_to_online_store("driver_live", inputs={"driver_id": [6], "event_timestamp": [WHEN],
                                                              "lat": [6.5], "status": ["on"]}) == 1  # fmt: skip
    assert store.get_online_features(["driver_live:lat"], {"driver_id": [5, 6]}).to_dict()["lat"] == [4.5, 6.5]
    with pytest.raises(RetrievalError, match="either 'df' or 'inputs'"):
        store.write_to_online_store("driver_live", frame, inputs=frame)
    with pytest.raises(NotFoundError, match="driver_liv"):
        store.write_to_online_store("driver_liv", frame)

    stamp = pd.Timestamp(END) - pd.Timedelta(days=3)
    rows = pd.DataFrame(
        {  # columns in another order than the file's, without its created column
            "trips": [77],
            "city": ["z"],
            "conv_rate": [0.25],
            "scores": [[1.0, 2.0]],
            "event_timestamp": [stamp],
            "driver_id": [10_001],
        }
    )
    assert store.write_to_offline_store("driver_stats", rows, reorder_columns=False) == 1
    written = pq.read_table(store.repo_path / "data" / "driver_stats.parquet")
    assert written.column_names == ["driver_id", "event_timestamp", "created", "conv_rate", "trips", "city", "scores"]
    entity = pd.DataFrame({"driver_id": [10_001], "event_timestamp": [stamp + pd.Timedelta(minutes=1)]})
    training = store.get_historical_features(entity, ["driver_stats:trips", "driver_stats:city"]).to_df()
    assert training[["trips", "city"]].to_dict("records") == [{"trips": 77, "city": "z"}]
    store.close()


def test_push_async_writes_off_the_event_loop(repo_factory: Callable[[], Path]) -> None:
    store = _store(repo_factory)
    rows = {"driver_id": [8], "event_timestamp": [WHEN], "lat": [8.5], "status": ["on"]}
    assert asyncio.run(store.push_async("driver_live", rows, to="online", transform_on_write=True)) == 1
    assert store.get_online_features(["driver_live:lat"], {"driver_id": [8]}).to_dict()["lat"] == [8.5]
    with pytest.raises(TypeError, match="bogus"):
        asyncio.run(store.push_async("driver_live", rows, bogus=1))
    store.close()


def test_delete_feature_view_and_service_go_through_the_registry_and_drop_online_rows(
    repo_factory: Callable[[], Path],
) -> None:
    store = _store(repo_factory)
    store.push("driver_live", {"driver_id": [1], "event_timestamp": [WHEN], "lat": [1.5], "status": ["on"]})
    old = online_view(store.get_feature_view("driver_live"), store.project)
    key = old.key_encoder.encode([1])
    assert store._online.read([ReadRequest(old, [key])])[0].rows[0] is not None
    with pytest.raises(DefinitionError, match=r"used by feature service.*'driver_service'"):
        store.delete_feature_view("driver_live")
    before = store.registry_snapshot().version
    store.delete_feature_service("driver_service")
    assert [s.name for s in store.list_feature_services()] == []
    store.delete_feature_view("driver_live")
    assert [v.name for v in store.list_all_feature_views()] == ["driver_stats"]
    assert store.registry_snapshot().version == before + 2  # one registry version per delete
    assert store._online.read([ReadRequest(old, [key])])[0].rows[0] is None
    with pytest.raises(NotFoundError, match="driver_live"):
        store.delete_feature_view("driver_live")
    store.close()


def test_materialization_intervals_come_from_the_registry(repo_factory: Callable[[], Path]) -> None:
    store = _store(repo_factory)
    start = END - timedelta(days=20)
    store.materialize(start, END - timedelta(days=1), ["driver_stats"])
    store.materialize_incremental(END, ["driver_stats"])
    view = store.get_feature_view("driver_stats")
    first, second = view.materialization_intervals
    assert first[0] == start
    assert first[1] == END - timedelta(days=1)
    assert second.start_date == END - timedelta(days=1)
    assert second.end_date == END
    assert all(t.utcoffset() == timedelta(0) for t in (*first, *second))
    assert first.start_date.tzinfo is UTC
    listed = {v.name: v.materialization_intervals for v in store.list_feature_views()}
    assert listed == {"driver_live": [], "driver_stats": [first, second]}
    # the registry's cached object is not changed by reading the intervals
    assert store.registry_snapshot().get("feature_view", "driver_stats").materialization_intervals == []  # type: ignore[attr-defined]
    store.close()


def test_allow_cache_false_reads_the_registry_now(repo_factory: Callable[[], Path]) -> None:
    store = _store(repo_factory)
    other = FeatureStore(repo_path=store.repo_path)
    assert store.get_feature_service("driver_service", allow_cache=True).name == "driver_service"
    other.delete_feature_service("driver_service")
    assert store.get_feature_service("driver_service", allow_cache=True).name == "driver_service"  # cached
    with pytest.raises(NotFoundError, match="driver_service"):
        store.get_feature_service("driver_service")  # Feast's default: allow_cache=False
    assert store.list_entities(allow_cache=True, tags=None)[0].name == "driver"
    assert store.get_entity("driver", allow_registry_cache=True).join_key == "driver_id"
    names = [s.name for s in store.list_data_sources(allow_cache=False)]
    assert names == ["driver_live", "driver_stats_source"]
    assert store.get_feature_server_endpoint() is None
    other.close()
    store.close()


def test_online_response_to_dict_with_event_timestamps(repo_factory: Callable[[], Path]) -> None:
    store = _store(repo_factory)
    store.push("driver_live", {"driver_id": [1], "event_timestamp": [WHEN], "lat": [1.5], "status": ["on"]})
    response = store.get_online_features(LIVE, [{"driver_id": 1}, {"driver_id": 2}])
    seconds = int(pd.Timestamp(WHEN).timestamp())
    assert response.to_dict(include_event_timestamps=True) == {
        "driver_id": [1, 2],
        "driver_id__ts": [0, 0],
        "lat": [1.5, None],
        "lat__ts": [seconds, 0],
        "status": ["on", None],
        "status__ts": [seconds, 0],
    }
    table = response.to_arrow(include_event_timestamps=True)
    assert table.schema.field("lat__ts").type == pa.int64()
    assert table.schema.field("lat").type == pa.float64()
    frame = response.to_df(include_event_timestamps=True)
    assert str(frame["lat__ts"].dtype) == "int64"
    assert str(frame["driver_id"].dtype) == "int64"
    store.close()
