"""Declaring stream and batch feature views with aggregations: outputs, specs, and errors naming the view."""

from __future__ import annotations

import warnings
from datetime import timedelta

import pytest

from potluck import (
    Aggregation,
    BatchFeatureView,
    Entity,
    FeatureView,
    Field,
    FileSource,
    KafkaSource,
    PushSource,
    StreamFeatureView,
    stream_feature_view,
)
from potluck.data_format import AvroFormat, JsonFormat
from potluck.definitions import DEFINITION_KINDS
from potluck.definitions.aggregation_views import TransformationNotAppliedWarning
from potluck.definitions.errors import DefinitionError
from potluck.types import Float32, Float64, Int32, Int64, String

USER = Entity(name="user", join_keys=["user_id"])
FILE = FileSource(name="tx", path="tx.parquet", timestamp_field="ts", created_timestamp_column="created")
PUSH = PushSource(name="tx_push", batch_source=FILE)
SCHEMA = [Field(name="amount", dtype=Float32), Field(name="items", dtype=Int32), Field(name="city", dtype=String)]


def _aggs() -> list[Aggregation]:
    return [
        Aggregation(column="amount", function="sum", time_window=timedelta(hours=1)),
        Aggregation(column="amount", function="avg", time_window=timedelta(days=7)),
        Aggregation(column="items", function="sum", time_window=timedelta(days=30), slide_interval=timedelta(days=1)),
        Aggregation(column="items", function="count"),
        Aggregation(column="city", function="last", time_window=timedelta(hours=1), name="last_city"),
        Aggregation(column="amount", function="stddev", time_window=timedelta(hours=1)),
    ]


def _stream(**kw: object) -> StreamFeatureView:
    args: dict[str, object] = {
        "name": "tx_stats",
        "entities": [USER],
        "source": PUSH,
        "schema": SCHEMA,
        "aggregations": _aggs(),
        "timestamp_field": "ts",
    }
    args.update(kw)
    return StreamFeatureView(**args)  # type: ignore[arg-type]


def test_outputs_names_and_types() -> None:
    view = _stream()
    assert [(f.name, f.dtype) for f in view.features] == [
        ("sum_amount_3600s", Float64),
        ("avg_amount_604800s", Float64),
        ("sum_items_2592000s", Int64),
        ("count_items", Int64),
        ("last_city", String),
        ("stddev_amount_3600s", Float64),
    ]
    assert [f.name for f in view.input_fields] == ["amount", "items", "city"]
    assert [a.hop for a in view.aggregations] == [
        timedelta(minutes=5),
        timedelta(hours=1),
        timedelta(days=1),
        None,
        timedelta(minutes=5),
        timedelta(minutes=5),
    ]
    assert isinstance(view, FeatureView)
    assert view.kind == "stream_feature_view"
    assert DEFINITION_KINDS["stream_feature_view"] is StreamFeatureView


def test_specs_round_trip() -> None:
    view = _stream(tiling_hop_size=timedelta(minutes=10), tags={"a": "b"})
    again = StreamFeatureView.from_spec(view.to_spec())
    assert again == view
    assert again.to_spec() == view.to_spec()
    batch = BatchFeatureView(name="b", entities=[USER], source=FILE, schema=SCHEMA, aggregations=_aggs())
    restored = FeatureView.from_spec(batch.to_spec())  # stored under the feature view kind
    assert type(restored) is BatchFeatureView
    assert restored == batch
    assert restored.feature_names == batch.feature_names
    plain = BatchFeatureView(name="p", entities=[USER], source=FILE, schema=SCHEMA)
    assert plain.feature_names == ["amount", "items", "city"]
    assert type(FeatureView.from_spec(plain.to_spec())) is BatchFeatureView


def test_tiling_hop_size_is_the_views_default_hop() -> None:
    view = _stream(tiling_hop_size=timedelta(minutes=10))
    assert view.aggregations[0].hop == timedelta(minutes=10)
    assert view.aggregations[2].hop == timedelta(days=1)  # its own slide_interval wins


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"aggregations": [Aggregation(column="amount", function="median", time_window=timedelta(hours=1))]},
            r"StreamFeatureView 'tx_stats': aggregations\[0\] \(amount\): unknown aggregation function 'median'; "
            "use one of count, sum, mean",
        ),
        (
            {"aggregations": [Aggregation("amount", "sum", timedelta(hours=1), timedelta(minutes=7))]},
            r"'tx_stats'.*not a multiple of slide_interval",
        ),
        (
            {"aggregations": [Aggregation(column="amont", function="sum")]},
            r"'tx_stats'.*column 'amont', which the view's schema does not declare.*Did you mean 'amount'",
        ),
        ({"timestamp_field": ""}, r"'tx_stats': its aggregations need a timestamp field.*the source's is 'ts'"),
        ({"source": FILE}, r"'tx_stats': 'source' must be a PushSource, KafkaSource or RedisStreamSource"),
        (
            {"aggregations": [Aggregation(column="city", function="sum")]},
            r"'tx_stats'.*function 'sum' cannot aggregate a String column",
        ),
        (
            {"aggregations": [Aggregation("amount", "sum"), Aggregation("amount", "sum")]},
            r"'tx_stats': two aggregations have the output name 'sum_amount'",
        ),
        (
            {"aggregations": [Aggregation("amount", "sum", name="user_id")]},
            r"'tx_stats': aggregation output 'user_id' has the name of a join key",
        ),
    ],
)
def test_invalid_combinations_name_the_view(change: dict[str, object], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        _stream(**change)


def test_batch_view_refuses_transformations() -> None:
    with pytest.raises(DefinitionError, match="BatchFeatureView 'b': transformations"):
        BatchFeatureView(name="b", entities=[USER], source=FILE, schema=SCHEMA, udf=len)


def transactions(df: object) -> object:
    return df


def test_decorator_records_the_function_and_warns_it_is_not_run() -> None:
    with pytest.warns(TransformationNotAppliedWarning, match="'transactions' is not run"):
        view = stream_feature_view(
            entities=[USER], source=PUSH, schema=SCHEMA, aggregations=_aggs(), timestamp_field="ts"
        )(transactions)
    assert view.name == "transactions"
    assert view.udf is transactions
    assert StreamFeatureView.from_spec(view.to_spec()).to_spec()["udf_name"] == "transactions"


def test_kafka_source() -> None:
    fmt = JsonFormat(schema_json="user_id bigint, amount float, ts timestamp")
    src = KafkaSource(
        name="k",
        kafka_bootstrap_servers="localhost:9092",
        topic="tx",
        timestamp_field="ts",
        message_format=fmt,
        batch_source=FILE,
        watermark_delay_threshold=timedelta(minutes=5),
    )
    again = type(src).from_spec(src.to_spec())
    assert again == src
    assert again.message_format == fmt
    assert again.watermark_delay_threshold == timedelta(minutes=5)
    assert AvroFormat(schema_json="{}") != JsonFormat(schema_json="{}")
    view = _stream(source=src)
    assert StreamFeatureView.from_spec(view.to_spec()) == view
    with pytest.raises(DefinitionError, match="KafkaSource 'k': 'topic' is required"):
        KafkaSource(name="k", kafka_bootstrap_servers="h:1", timestamp_field="ts", message_format=fmt)
    with pytest.raises(DefinitionError, match="'message_format' must be JsonFormat"):
        KafkaSource(name="k", kafka_bootstrap_servers="h:1", topic="t", timestamp_field="ts", message_format="json")  # type: ignore[arg-type]


def test_outputs_listed_in_the_schema_are_accepted() -> None:
    schema = [*SCHEMA, Field(name="sum_amount_3600s", dtype=Float64)]
    view = _stream(schema=schema)
    assert "sum_amount_3600s" in view.feature_names
    assert [f.name for f in view.input_fields] == ["amount", "items", "city"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bad = [*SCHEMA, Field(name="sum_amount_3600s", dtype=String)]
        with pytest.raises(DefinitionError, match="is an aggregation output of type Float64"):
            _stream(schema=bad)
