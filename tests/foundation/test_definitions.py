from datetime import timedelta

import pytest

from potluck import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from potluck.definitions import DataSource
from potluck.definitions.errors import DefinitionError
from potluck.types import Array, Bool, Bytes, Float32, Float64, Int32, Int64, String, UnixTimestamp


def make_view(**overrides: object) -> FeatureView:
    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
    args: dict[str, object] = {
        "name": "user_stats",
        "entities": [user],
        "ttl": timedelta(days=1),
        "schema": [Field(name="user_id", dtype=Int64), Field(name="a", dtype=Float32), Field(name="b", dtype=String)],
        "source": FileSource(path="data/u.parquet", timestamp_field="ts"),
    }
    args.update(overrides)
    return FeatureView(**args)  # type: ignore[arg-type]


def test_feast_style_example_constructs() -> None:
    view = make_view()
    assert view.join_keys == ["user_id"]
    assert [f.name for f in view.entity_columns] == ["user_id"]
    assert view.feature_names == ["a", "b"]
    service = FeatureService(name="svc", features=[view[["a"]]], description="d", owner="o", tags={"t": "1"})
    assert service.feature_references() == ["user_stats:a"]


def test_every_type_round_trips_through_spec() -> None:
    types = [Bytes, String, Bool, Int32, Int64, Float32, Float64, UnixTimestamp, Array(Float32), Array(String)]
    schema = [Field(name=f"f{i}", dtype=t, description="x", tags={"k": "v"}) for i, t in enumerate(types)]
    view = make_view(schema=schema)
    again = FeatureView.from_spec(view.to_spec())
    assert again == view
    assert [f.dtype for f in again.features] == types
    assert again.content_hash() == view.content_hash()


def test_content_hash_is_stable_and_sensitive() -> None:
    assert make_view().content_hash() == make_view().content_hash()
    assert make_view().content_hash() != make_view(ttl=timedelta(days=2)).content_hash()
    assert make_view(tags={"a": "1", "b": "2"}).content_hash() == make_view(tags={"b": "2", "a": "1"}).content_hash()


def test_composite_keys_join_on_all_entities() -> None:
    user = Entity(name="user", join_keys=["user_id"])
    merchant = Entity(name="merchant", join_keys=["merchant_id"])
    view = make_view(entities=[user, merchant])
    assert view.join_keys == ["user_id", "merchant_id"]
    assert view.entities == ["user", "merchant"]


def test_source_round_trip_and_name_default() -> None:
    src = FileSource(path="data/driver_stats.parquet", timestamp_field="ts", field_mapping={"raw": "a"})
    assert src.name == "driver_stats"
    assert DataSource.from_spec(src.to_spec()) == src
    assert src.column_for("a") == "raw"
    assert FileSource(path="x.csv", timestamp_field="ts").file_format == "csv"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Entity(name="1bad"), "Entity '1bad': 'name'"),
        (lambda: Entity(name="u", join_keys=[]), "Entity 'u': 'join_keys'"),
        (lambda: Entity(name="u", join_keys=["a", "b"]), "exactly one column"),
        (lambda: Field(name="x", dtype=int), "Field 'x': 'dtype'"),  # type: ignore[arg-type]
        (lambda: FileSource(path="x.parquet", timestamp_field=""), "'timestamp_field' is required"),
        (lambda: make_view(ttl=timedelta(seconds=-1)), "FeatureView 'user_stats': 'ttl'"),
        (lambda: make_view(ttl=5), "FeatureView 'user_stats': 'ttl'"),
        (lambda: make_view(entities=["user"]), "'entities[0]' must be an Entity"),
        (lambda: make_view(schema=[Field(name="a", dtype=Int64), Field(name="a", dtype=Int64)]), "field 'a' twice"),
        (lambda: make_view(schema=[Field(name="ts", dtype=Int64)]), "timestamp column"),
        (lambda: make_view(source="x.parquet"), "'source' must be a data source"),
        (lambda: make_view()[["missing"]], "has no feature 'missing'"),
        (lambda: FeatureService(name="s", features=[]), "FeatureService 's': 'features'"),
        (lambda: FeatureService(name="s", features=["v:a"]), "'features[0]'"),  # type: ignore[list-item]
        (lambda: FileSource(path="x.parquet", timestamp_field="ts", file_format="orc"), "'file_format'"),
        (lambda: make_view(tags={"a": 1}), "'tags' must be a mapping"),
    ],
)
def test_invalid_definitions_name_object_and_field(build: object, message: str) -> None:
    with pytest.raises(DefinitionError, match=message.replace("(", r"\(").replace("[", r"\[")):
        build()  # type: ignore[operator]


def test_nearest_name_is_suggested() -> None:
    with pytest.raises(DefinitionError, match="Did you mean 'a'"):
        make_view().feature("aa")
