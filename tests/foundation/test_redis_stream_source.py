"""`RedisStreamSource`: its definition errors, registry round trip, exports, and apply of a repository using it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from repo_helpers import make_repo

import potluck
import potluck.data_source
from potluck import FeatureStore, FeatureView, FileSource, RedisStreamSource, StreamFeatureView
from potluck.data_format import JsonFormat
from potluck.definitions import DataSource
from potluck.definitions.errors import DefinitionError

BATCH = FileSource(name="tx_batch", path="data/tx.parquet", timestamp_field="ts")
GOOD: dict[str, Any] = {
    "name": "tx_stream",
    "stream": "events:tx",
    "connection_string": "localhost:6379,password=s3cret,db=2",
    "timestamp_field": "ts",
}


def test_round_trip_with_and_without_a_message_format() -> None:
    plain = RedisStreamSource(**GOOD)
    assert plain.source_type == "redis_stream"
    assert plain.message_format is None
    assert plain.value_field == "value"
    assert DataSource.from_spec(plain.to_spec()) == plain
    full = RedisStreamSource(
        **GOOD,
        created_timestamp_column="created",
        field_mapping={"uid": "user_id"},
        message_format=JsonFormat(schema_json="user_id bigint, amount double, ts timestamp"),
        value_field="payload",
        batch_source=BATCH,
        watermark_delay_threshold=timedelta(seconds=30),
        description="card transactions",
        tags={"team": "risk"},
        owner="risk@example.com",
    )
    again = DataSource.from_spec(full.to_spec())
    assert isinstance(again, RedisStreamSource)
    assert again == full
    assert again.to_spec() == full.to_spec()
    assert again.message_format == JsonFormat(schema_json="user_id bigint, amount double, ts timestamp")
    assert (again.value_field, again.watermark_delay_threshold) == ("payload", timedelta(seconds=30))
    assert again.batch_source == BATCH
    assert again.column_for("user_id") == "uid"


def test_exported_where_feast_repositories_look() -> None:
    assert potluck.RedisStreamSource is RedisStreamSource
    assert potluck.data_source.RedisStreamSource is RedisStreamSource
    assert "RedisStreamSource" in potluck.__all__


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stream": ""}, r"RedisStreamSource 'tx_stream': 'stream' is required"),
        ({"stream": 3}, r"RedisStreamSource 'tx_stream': 'stream' is required"),
        ({"connection_string": ""}, r"RedisStreamSource 'tx_stream': 'connection_string' is required"),
        ({"connection_string": "localhost:abc"}, r"'tx_stream': 'connection_string': bad port in 'localhost:abc'"),
        ({"connection_string": "password=x"}, r"'tx_stream': 'connection_string': no host:port given"),
        ({"connection_string": "h:1,db=x"}, r"'tx_stream': 'connection_string': db='x' must be a whole number"),
        ({"connection_string": "h:1,socket_timeout=0"}, r"socket_timeout='0' must be a positive number"),
        ({"connection_string": "h:1,h:2"}, r"'tx_stream': 'connection_string': give one server"),
        ({"message_format": "json"}, r"'tx_stream': 'message_format' must be None .*, got 'json'"),
        ({"value_field": ""}, r"'tx_stream': 'value_field' must name the entry field"),
        ({"timestamp_field": ""}, r"RedisStreamSource 'tx_stream'.*timestamp_field"),
        ({"field_mapping": {"a": 1}}, r"'tx_stream': 'field_mapping' must map source column names"),
        ({"batch_source": "data/x.parquet"}, r"'tx_stream': 'batch_source' must be a FileSource"),
        ({"watermark_delay_threshold": 5}, r"'tx_stream': 'watermark_delay_threshold' must be a non-negative"),
        ({"watermark_delay_threshold": timedelta(-1)}, r"'watermark_delay_threshold' must be a non-negative"),
        ({"tags": {"a": 1}}, r"RedisStreamSource 'tx_stream'.*tags"),
    ],
)
def test_bad_arguments_name_the_source_and_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        RedisStreamSource(**{**GOOD, **change})


def test_bad_name_is_refused() -> None:
    with pytest.raises(DefinitionError, match="RedisStreamSource"):
        RedisStreamSource(**{**GOOD, "name": ""})


def test_views_accept_it_like_a_kafka_source() -> None:
    from potluck import Aggregation, Entity, Field
    from potluck.types import Float64

    user = Entity(name="user", join_keys=["user_id"])
    src = RedisStreamSource(**GOOD, batch_source=BATCH)
    stream_view = StreamFeatureView(
        name="tx_stats",
        entities=[user],
        source=src,
        schema=[Field(name="amount", dtype=Float64)],
        aggregations=[Aggregation(column="amount", function="sum", time_window=timedelta(hours=1))],
        timestamp_field="ts",
    )
    assert StreamFeatureView.from_spec(stream_view.to_spec()) == stream_view
    plain = FeatureView(name="tx_last", entities=[user], source=src, schema=[Field(name="amount", dtype=Float64)])
    assert FeatureView.from_spec(plain.to_spec()) == plain


STREAM_REPO = """\
from datetime import timedelta

from potluck import Aggregation, Entity, Field, RedisStreamSource, StreamFeatureView
from potluck.types import Float64, Int64

user = Entity(name="user", join_keys=["user_id"])
tx = RedisStreamSource(
    name="tx_stream", stream="{stream}", connection_string="localhost:6379", timestamp_field="ts"
)
tx_stats = StreamFeatureView(
    name="tx_stats",
    entities=[user],
    source=tx,
    schema=[Field(name="user_id", dtype=Int64), Field(name="amount", dtype=Float64)],
    aggregations=[Aggregation(column="amount", function="sum", time_window=timedelta(hours=1))],
    timestamp_field="ts",
)
"""


def test_apply_and_plan_a_repository_with_a_stream_view_on_it(tmp_path: Path) -> None:
    make_repo(tmp_path, extra_files={"stream_features.py": STREAM_REPO.format(stream="events:tx")})
    store = FeatureStore(repo_path=tmp_path)
    store.apply()
    source = store.get_data_source("tx_stream")
    assert isinstance(source, RedisStreamSource)
    assert (source.stream, source.connection_string) == ("events:tx", "localhost:6379")
    view = store.get_stream_feature_view("tx_stats")
    assert isinstance(view.source, RedisStreamSource)
    assert view.feature_names == ["sum_amount_3600s"]
    assert not store.plan().has_changes
    (tmp_path / "stream_features.py").write_text(STREAM_REPO.format(stream="events:tx2"))
    plan = store.plan()
    changed = {(d.kind, d.name): {c.path: (c.old, c.new) for c in d.changes} for d in plan.diffs if d.changes}
    assert changed[("data_source", "tx_stream")]["stream"] == ("events:tx", "events:tx2")
    assert plan.breaking == []
    store.apply()
    assert store.get_data_source("tx_stream").stream == "events:tx2"  # type: ignore[attr-defined]
