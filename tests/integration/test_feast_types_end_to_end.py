"""Feast's Map, Json, Struct, Uuid, Decimal and list types end to end: historical, materialize, push, HTTP."""

from __future__ import annotations

import decimal
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from potluck import FeatureStore
from potluck.definitions.errors import PotluckError
from potluck.server import ServerSettings, create_app
from potluck.server.store_backend import StoreBackend
from tests_support import serve

FEATURES_PY = """\
from datetime import timedelta

from potluck import Entity, FeatureView, Field, FileSource, PushSource, ValueType
from potluck.types import Array, Bool, Bytes, Decimal, Json, Map, Struct, String, Int64, UnixTimestamp, Uuid

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
profile_push = PushSource(
    name="profile_push",
    batch_source=FileSource(name="profile_batch", path="data/profile", timestamp_field="event_timestamp"),
)
ADDRESS = Struct({"city": String, "zip": Int64})
profile = FeatureView(
    name="profile",
    entities=[user],
    ttl=timedelta(0),
    schema=[
        Field(name="prefs", dtype=Map),
        Field(name="doc", dtype=Json),
        Field(name="address", dtype=ADDRESS),
        Field(name="history", dtype=Array(ADDRESS)),
        Field(name="uid", dtype=Uuid),
        Field(name="balance", dtype=Decimal),
        Field(name="docs", dtype=Array(Json)),
        Field(name="seen", dtype=Array(UnixTimestamp)),
        Field(name="blobs", dtype=Array(Bytes)),
        Field(name="flags", dtype=Array(Bool)),
    ],
    source=profile_push,
)
"""

T0 = datetime(2026, 1, 1, tzinfo=UTC)
U1 = uuid.UUID("12345678-1234-5678-1234-567812345678")
ADDRESS = pa.struct([pa.field("city", pa.string()), pa.field("zip", pa.int64())])
# The Python form the SDK returns for user 1, and its Arrow form in training data.
ONLINE_1: dict[str, Any] = {
    "prefs": {"lang": "fr", "theme": "dark"},
    "doc": {"a": [1, 2, {"b": None}], "ok": True},
    "address": {"city": "Lyon", "zip": 69001},
    "history": [{"city": "Nice", "zip": None}, {"city": None, "zip": 6000}],
    "uid": U1,
    "balance": decimal.Decimal("1234.500000000"),
    "docs": [{"x": 1}, [2], "three"],
    "seen": [T0, T0 + timedelta(microseconds=1)],
    "blobs": [b"\x00\x01", b""],
    "flags": [True, False],
}


def _write_source(path: Path) -> None:
    table = pa.table(
        {
            "user_id": pa.array([1, 2], pa.int64()),
            "event_timestamp": pa.array([T0, T0], pa.timestamp("us", tz="UTC")),
            "prefs": pa.array([[("lang", "fr"), ("theme", "dark")], None], pa.map_(pa.string(), pa.string())),
            "doc": pa.array(['{"a": [1, 2, {"b": null}], "ok": true}', None], pa.string()),
            "address": pa.array([{"city": "Lyon", "zip": 69001}, None], ADDRESS),
            "history": pa.array([[{"city": "Nice", "zip": None}, {"city": None, "zip": 6000}], []], pa.list_(ADDRESS)),
            "uid": pa.array([str(U1), None]),
            "balance": pa.array([decimal.Decimal("1234.5"), None], pa.decimal128(20, 9)),
            "docs": pa.array([['{"x": 1}', "[2]", '"three"'], None], pa.list_(pa.string())),
            "seen": pa.array([[T0, T0 + timedelta(microseconds=1)], None], pa.list_(pa.timestamp("us", tz="UTC"))),
            "blobs": pa.array([[b"\x00\x01", b""], None], pa.list_(pa.binary())),
            "flags": pa.array([[True, False], None], pa.list_(pa.bool_())),
        }
    )
    path.mkdir(parents=True)
    pq.write_table(table, path / "part-0.parquet")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FeatureStore]:
    (tmp_path / "feature_store.yaml").write_text(
        "project: typed\nregistry: data/registry.db\nonline_store:\n  type: sqlite\n  path: data/online.db\n"
    )
    (tmp_path / "features.py").write_text(FEATURES_PY)
    _write_source(tmp_path / "data" / "profile")
    fs = FeatureStore(repo_path=tmp_path)
    fs.apply()
    yield fs
    fs.close()


FEATURES = [f"profile:{n}" for n in ONLINE_1]


def test_training_data_holds_the_arrow_forms(store: FeatureStore) -> None:
    entity = pa.table({"user_id": [1, 2], "event_timestamp": pa.array([T0, T0], pa.timestamp("us", tz="UTC"))})
    table = store.get_historical_features(entity, FEATURES).to_arrow()
    first = {n: table.column(n).to_pylist()[0] for n in ONLINE_1}
    assert first["prefs"] == [("lang", "fr"), ("theme", "dark")]
    assert first["doc"] == '{"a": [1, 2, {"b": null}], "ok": true}'
    assert first["address"] == {"city": "Lyon", "zip": 69001}
    assert first["history"] == ONLINE_1["history"]
    assert first["uid"] == str(U1)
    assert decimal.Decimal(first["balance"]) == decimal.Decimal("1234.5")
    assert first["docs"] == ['{"x": 1}', "[2]", '"three"']
    assert first["seen"] == ONLINE_1["seen"]
    assert first["blobs"] == ONLINE_1["blobs"]
    second = {n: table.column(n).to_pylist()[1] for n in ONLINE_1}
    assert second == {**dict.fromkeys(ONLINE_1), "history": []}


def test_materialized_values_come_back_intact(store: FeatureStore) -> None:
    store.materialize(T0 - timedelta(days=1), T0 + timedelta(days=1))
    served = store.get_online_features(FEATURES, [{"user_id": 1}, {"user_id": 2}]).to_dict()
    assert served == {
        "user_id": [1, 2],
        **{n: [v, [] if n == "history" else None] for n, v in ONLINE_1.items()},
    }


def _push_df() -> dict[str, list[Any]]:
    return {
        "user_id": [5],
        "event_timestamp": ["2026-02-01T00:00:00Z"],
        "prefs": [{"k": "v"}],
        "doc": ['{"pushed": [1.5]}'],
        "address": [{"city": "Paris"}],
        "history": [[{"city": "A", "zip": 1}]],
        "uid": ["A8098C1A-F86E-11DA-BD1A-00112444BE1E"],
        "balance": ["0.10"],
        "docs": [[{"y": 2}, "[3]"]],
        "seen": [["2026-02-01T00:00:00Z"]],
        "blobs": [["AAE="]],
        "flags": [[False]],
    }


PUSHED_ONLINE = {
    "prefs": {"k": "v"},
    "doc": {"pushed": [1.5]},
    "address": {"city": "Paris", "zip": None},
    "history": [{"city": "A", "zip": 1}],
    "uid": uuid.UUID("a8098c1a-f86e-11da-bd1a-00112444be1e"),
    "balance": decimal.Decimal("0.10"),
    "docs": [{"y": 2}, [3]],
    "seen": [datetime(2026, 2, 1, tzinfo=UTC)],
    "blobs": [b"\x00\x01"],  # text for bytes is base64, the form the server answers them in
    "flags": [False],
}


def test_sdk_push_online_and_offline(store: FeatureStore) -> None:
    store.push("profile_push", _push_df(), to="online_and_offline")
    served = store.get_online_features(FEATURES, [{"user_id": 5}]).to_dict()
    assert served == {"user_id": [5], **{n: [v] for n, v in PUSHED_ONLINE.items()}}
    entity = pa.table(
        {"user_id": [5], "event_timestamp": pa.array([T0 + timedelta(days=40)], pa.timestamp("us", tz="UTC"))}
    )
    table = store.get_historical_features(entity, FEATURES).to_arrow()
    assert table.column("prefs").to_pylist() == [[("k", "v")]]
    assert table.column("doc").to_pylist() == ['{"pushed": [1.5]}']
    assert table.column("address").to_pylist() == [{"city": "Paris", "zip": None}]
    assert table.column("uid").to_pylist() == ["a8098c1a-f86e-11da-bd1a-00112444be1e"]


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("prefs", {"k": 1}, "a Map holds text"),
        ("doc", "{not json", "a JSON value"),
        ("address", {"town": "x"}, "not 'town'"),
        ("address", {"city": "x", "zip": 1.5}, "an integer"),
        ("uid", "not-a-uuid", "a UUID"),
        ("balance", "12,5", "a decimal number"),
        ("history", {"city": "x"}, "a list of Struct"),
    ],
)
def test_bad_pushed_values_name_the_column_and_row(store: FeatureStore, column: str, value: Any, expected: str) -> None:
    df = _push_df()
    df[column] = [value]
    with pytest.raises(PotluckError, match=rf"column '{column}' row 0: .*{expected}"):
        store.push("profile_push", df, to="online")


def test_http_push_and_read_in_feasts_json_shapes(store: FeatureStore) -> None:
    app = create_app(StoreBackend(store), ServerSettings(auth="off"))
    df = {**_push_df(), "balance": [12.25], "uid": [str(U1)]}
    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        reply = http.post("/push", json={"push_source_name": "profile_push", "df": df, "to": "online"})
        assert reply.status_code == 200, reply.text
        bad = http.post(
            "/push", json={"push_source_name": "profile_push", "df": {**df, "doc": ["{oops"]}, "to": "online"}
        )
        assert bad.status_code == 422, bad.text
        assert "column 'doc' row 0" in bad.text
        reply = http.post("/get-online-features", json={"features": FEATURES, "entities": {"user_id": [5]}})
        assert reply.status_code == 200, reply.text
    body = reply.json()
    values = {
        name: column["values"][0]
        for name, column in zip(body["metadata"]["feature_names"], body["results"], strict=True)
    }
    assert values == {
        "user_id": 5,
        "prefs": {"k": "v"},
        "doc": '{"pushed":[1.5]}',  # Json is served as its text, as Feast's server does
        "address": {"city": "Paris", "zip": None},
        "history": [{"city": "A", "zip": 1}],
        "uid": str(U1),
        "balance": "12.25",
        "docs": ['{"y":2}', "[3]"],
        "seen": ["2026-02-01T00:00:00Z"],
        "blobs": ["AAE="],  # a round trip: base64 in, the same base64 out
        "flags": [False],
    }
