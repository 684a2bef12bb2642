"""Feast's documented import lines work with `feast` changed to `potluck`, and give Potluck's objects."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import potluck
import potluck.types
from feast_support import run_feast

# (a real Feast import line, the Potluck object each imported name must be: a top-level export or a type)
LINES: list[tuple[str, dict[str, object]]] = [
    (
        "from feast import Entity, FeatureService, FeatureView, Field, FileSource, Project, PushSource, ValueType",
        {n: getattr(potluck, n) for n in ("Entity", "FeatureService", "FeatureView", "Field", "FileSource")}
        | {n: getattr(potluck, n) for n in ("Project", "PushSource", "ValueType")},
    ),
    (
        "from feast import FeatureStore, RepoConfig",
        {"FeatureStore": potluck.FeatureStore, "RepoConfig": potluck.RepoConfig},
    ),
    (
        "from feast.types import Array, Bool, Bytes, Float32, Float64, Int32, Int64, String, UnixTimestamp",
        {n: getattr(potluck.types, n) for n in ("Array", "Bool", "Bytes", "Float32", "Float64", "Int32", "Int64")}
        | {"String": potluck.types.String, "UnixTimestamp": potluck.types.UnixTimestamp},
    ),
    (
        "from feast.types import Decimal, ImageBytes, Json, Map, PdfBytes, Set, Struct, TimeUuid, Uuid, ZonedTimestamp",
        {n: getattr(potluck.types, n) for n in ("Decimal", "ImageBytes", "Json", "Map", "PdfBytes", "Set")}
        | {n: getattr(potluck.types, n) for n in ("Struct", "TimeUuid", "Uuid", "ZonedTimestamp")},
    ),
    ("from feast.types import FeastType, PrimitiveFeastType, from_value_type", {}),
    ("from feast.field import Field", {"Field": potluck.Field}),
    ("from feast.entity import Entity", {"Entity": potluck.Entity}),
    ("from feast.feature_view import FeatureView", {"FeatureView": potluck.FeatureView}),
    ("from feast.feature_service import FeatureService", {"FeatureService": potluck.FeatureService}),
    ("from feast.value_type import ValueType", {"ValueType": potluck.ValueType}),
    (
        "from feast.data_source import PushMode, PushSource",
        {"PushMode": potluck.PushMode, "PushSource": potluck.PushSource},
    ),
    ("from feast.data_format import ParquetFormat", {}),
    (
        "from feast import Aggregation, BatchFeatureView, KafkaSource, StreamFeatureView",
        {n: getattr(potluck, n) for n in ("Aggregation", "BatchFeatureView", "KafkaSource", "StreamFeatureView")},
    ),
    ("from feast.aggregation import Aggregation", {"Aggregation": potluck.Aggregation}),
    (
        "from feast.stream_feature_view import StreamFeatureView, stream_feature_view",
        {"StreamFeatureView": potluck.StreamFeatureView, "stream_feature_view": potluck.stream_feature_view},
    ),
    ("from feast.batch_feature_view import BatchFeatureView", {"BatchFeatureView": potluck.BatchFeatureView}),
    ("from feast.data_source import KafkaSource", {"KafkaSource": potluck.KafkaSource}),
    ("from feast.data_format import AvroFormat, JsonFormat", {}),
    ("from feast.infra.offline_stores.file_source import FileSource", {"FileSource": potluck.FileSource}),
    ("from feast.repo_config import RepoConfig", {"RepoConfig": potluck.RepoConfig}),
    ("from feast.project import Project", {"Project": potluck.Project}),
    ("from feast.feature_store import FeatureStore", {"FeatureStore": potluck.FeatureStore}),
]


def _potluck_line(line: str) -> str:
    assert line.startswith(("from feast ", "from feast.")), line
    return "from potluck" + line[len("from feast") :]


@pytest.mark.parametrize(("line", "objects"), LINES, ids=[line for line, _ in LINES])
def test_the_line_with_potluck_gives_potlucks_objects(line: str, objects: dict[str, object]) -> None:
    scope: dict[str, object] = {}
    exec(_potluck_line(line), scope)  # a fixed line of this table
    names = [n.strip() for n in line.split(" import ", 1)[1].split(",")]
    assert all(n in scope for n in names)
    for name, expected in objects.items():
        assert scope[name] is expected, name


def test_the_lines_are_feasts_own(feast_python: Path, tmp_path: Path) -> None:
    run_feast(feast_python, "\n".join(line for line, _ in LINES), cwd=tmp_path)


def test_importing_the_definition_paths_stays_light() -> None:
    lines = "\n".join(
        _potluck_line(line) for line, _ in LINES if "FeatureStore" not in line and "RepoConfig" not in line
    )
    code = (
        lines
        + "\nimport sys\nprint(','.join(m for m in ('pyarrow', 'duckdb', 'pydantic', 'potluck.store') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""
