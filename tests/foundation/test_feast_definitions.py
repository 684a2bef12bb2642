"""Feast's definition arguments: Project, the types' stored names, vector options, view versions."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from potluck import FeatureStore, FeatureView, Field, FileSource, Project
from potluck.definitions.errors import DefinitionError, PotluckError, RepositoryError
from potluck.definitions.types import dtype_from_name, dtype_from_value_type
from potluck.types import (
    Array,
    Bool,
    Bytes,
    Decimal,
    Float32,
    ImageBytes,
    Int64,
    Json,
    Map,
    PdfBytes,
    Set,
    String,
    Struct,
    TimeUuid,
    UnixTimestamp,
    Uuid,
    ValueType,
    ZonedTimestamp,
)

TYPES = [
    Map, Json, Uuid, TimeUuid, Decimal, PdfBytes, ImageBytes, ZonedTimestamp,
    Struct({"a": Int64, "b": Array(Struct({"c": Map}))}),
    *(Array(t) for t in (Bytes, String, Bool, Int64, Float32, UnixTimestamp, Map, Json, Uuid, Decimal)),
    Array(Array(Int64)), Set(String), Set(Uuid),
]  # fmt: skip


@pytest.mark.parametrize("dtype", TYPES, ids=str)
def test_every_type_is_stored_by_its_name(dtype: object) -> None:
    field = Field(name="f", dtype=dtype)  # type: ignore[arg-type]
    assert Field.from_spec(field.to_spec()) == field
    assert dtype_from_name(field.dtype.name) == dtype


@pytest.mark.parametrize(
    ("value_type", "dtype"),
    [
        (ValueType.MAP, Map),
        (ValueType.JSON_LIST, Array(Json)),
        (ValueType.UUID_SET, Set(Uuid)),
        (ValueType.DECIMAL, Decimal),
        (ValueType.UNIX_TIMESTAMP_LIST, Array(UnixTimestamp)),
    ],
)
def test_feasts_value_types_map_to_the_types(value_type: ValueType, dtype: object) -> None:
    assert dtype_from_value_type(value_type) == dtype
    assert dtype.to_value_type() == value_type  # type: ignore[attr-defined]


def test_value_types_keep_feasts_numbers() -> None:
    assert (ValueType.MAP.value, ValueType.JSON.value, ValueType.STRUCT.value, ValueType.ZONED_TIMESTAMP.value) == (
        20,
        32,
        34,
        48,
    )


@pytest.mark.parametrize("text", ["Array(Nope)", "Struct({a Int64})", "Struct({})", "Int64)", "Set(Map)"])
def test_unknown_type_names_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="unknown type"):
        dtype_from_name(text)


@pytest.mark.parametrize(
    "options",
    [{"vector_index": True}, {"vector_length": 128}, {"vector_search_metric": "COSINE"}],
)
def test_vector_search_options_are_refused_naming_the_field(options: dict[str, object]) -> None:
    with pytest.raises(DefinitionError, match=r"Field 'embedding': vector_\w+ set, but vector search is not supported"):
        Field(name="embedding", dtype=Array(Float32), **options)  # type: ignore[arg-type]


def _source() -> FileSource:
    return FileSource(name="s", path="data/s.parquet", timestamp_field="ts")


def test_view_version_latest_and_enable_validation_are_kept() -> None:
    view = FeatureView(name="v", source=_source(), version="latest", enable_validation=True, ttl=timedelta(0))
    again = FeatureView.from_spec(view.to_spec())
    assert again.enable_validation is True
    assert FeatureView(name="v", source=_source()).to_spec().get("enable_validation") is None


def test_view_versions_are_feasts_spellings_and_others_are_refused_naming_the_view() -> None:
    assert FeatureView(name="v", source=_source(), version="V2").version == "v2"
    assert FeatureView(name="v", source=_source(), version="version3").pinned_version == 3
    assert FeatureView(name="v", source=_source(), version="LATEST").pinned_version is None
    with pytest.raises(DefinitionError, match=r"FeatureView 'v': version='2' must be 'latest' or 'vN'"):
        FeatureView(name="v", source=_source(), version="2")


def _repo(root: Path, features: str) -> FeatureStore:
    (root / "data").mkdir(exist_ok=True)
    (root / "feature_store.yaml").write_text(
        "project: demo\nregistry: data/registry.db\nonline_store:\n  path: data/online.db\n"
    )
    (root / "features.py").write_text(features)
    return FeatureStore(repo_path=root)


def test_project_is_stored_listed_and_dumped(tmp_path: Path) -> None:
    store = _repo(
        tmp_path, "from potluck import Project\np = Project(name='demo', description='Demo', tags={'t': 'x'})\n"
    )
    assert [p.name for p in store.list_projects()] == ["demo"]  # before apply: the yaml's project
    assert store.list_projects()[0].description == ""
    store.apply()
    (project,) = store.list_projects()
    assert (project.name, project.description, project.tags) == ("demo", "Demo", {"t": "x"})
    assert store.get_project("demo") == project
    assert store.list_projects(tags={"t": "y"}) == []
    assert store.registry_dump()["objects"]["project"] == [project.to_spec()]
    with pytest.raises(PotluckError, match="project 'other' not found"):
        store.get_project("other")
    store.close()


def test_a_project_named_otherwise_than_the_yaml_is_an_error_naming_both(tmp_path: Path) -> None:
    store = _repo(tmp_path, "from potluck import Project\np = Project(name='elsewhere')\n")
    with pytest.raises(RepositoryError, match=r"features.py: Project 'elsewhere' .* project is 'demo'"):
        store.apply()
    store.close()


def test_versioned_references_of_an_unknown_view_name_the_view(tmp_path: Path) -> None:
    store = _repo(tmp_path, "")
    store.apply()
    for ref in ("v@v1:f", "v@latest:f"):  # @latest is the view itself (unknown here)
        with pytest.raises(PotluckError, match="feature view 'v'"):
            store.get_online_features([ref], [{"id": 1}])
    store.close()


def test_project_keeps_feasts_signature() -> None:
    project = Project(name="p", description="d", tags={"a": "b"}, owner="me")
    assert Project.from_spec(project.to_spec()) == project
