"""Names are matched in full and bounded in length; a repository file that exits is an error."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from repo_helpers import make_repo

from potluck import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource, ValueType
from potluck.definitions.errors import ConfigError, DefinitionError
from potluck.repo.config import load_config
from potluck.types import Float64
from tests_support import POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, run_cli

SOURCE = FileSource(name="src", path="data/driver.parquet", timestamp_field="ts")
DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)


def _view(name: str) -> FeatureView:
    return FeatureView(name=name, entities=[DRIVER], schema=[Field(name="conv_rate", dtype=Float64)], source=SOURCE)


@pytest.mark.parametrize("bad", ["driver\n", "driver\r\n", "\ndriver", "dri ver"])
def test_names_with_a_line_break_are_refused(bad: str) -> None:
    with pytest.raises(DefinitionError, match="FeatureView"):
        _view(bad)
    with pytest.raises(DefinitionError, match="Entity"):
        Entity(name=bad, join_keys=["driver_id"])
    with pytest.raises(DefinitionError, match="FileSource"):
        FileSource(name=bad, path="x.parquet", timestamp_field="ts")
    with pytest.raises(DefinitionError, match="FeatureService"):
        FeatureService(name=bad, features=[])
    with pytest.raises(DefinitionError, match="Field"):
        Field(name=bad, dtype=Float64)
    with pytest.raises(DefinitionError, match="join_keys"):
        Entity(name="driver", join_keys=[bad])


def test_project_name_with_a_trailing_newline_is_refused(tmp_path: Path) -> None:
    make_repo(tmp_path)
    (tmp_path / "feature_store.yaml").write_text('project: "test_project\\n"\nregistry: data/registry.db\n')
    with pytest.raises(ConfigError, match="project"):
        load_config(tmp_path)
    (tmp_path / "feature_store.yaml").write_text(f"project: p{'x' * 64}\nregistry: data/registry.db\n")
    with pytest.raises(ConfigError, match="at most 64"):
        load_config(tmp_path)


def test_names_longer_than_the_limit_are_refused_naming_the_object() -> None:
    _view("v" * 255)
    with pytest.raises(
        DefinitionError, match=r"FeatureView 'v{40}\.\.\.': 'name' is 256 characters long; use at most 255"
    ):
        _view("v" * 256)
    with pytest.raises(DefinitionError, match="Field"):
        Field(name="f" * 256, dtype=Float64)
    with pytest.raises(DefinitionError, match="Entity"):
        Entity(name="e" * 300, join_keys=["driver_id"])


def test_longest_names_work_end_to_end_on_postgres(tmp_path: Path, postgres_database: str) -> None:
    """255-character names fit the PostgreSQL registry, and the online table name is shortened safely."""
    make_repo(tmp_path, registry=postgres_database)
    name = "v" * 255
    (tmp_path / "feature_store.yaml").write_text(
        f"project: p{'x' * 63}\nregistry: {postgres_database}\nprovider: local\n"
        f"online_store:\n  type: postgres\n  host: {POSTGRES_HOST}\n  port: {POSTGRES_PORT}\n"
        f"  database: {postgres_database.rsplit('/', 1)[1]}\n  user: {POSTGRES_USER}\n"
    )
    (tmp_path / "features.py").write_text(
        "from potluck import Entity, FeatureView, Field, FileSource, ValueType\n"
        "from potluck.types import Float64\n"
        "driver = Entity(name='d' * 255, join_keys=['driver_id'], value_type=ValueType.INT64)\n"
        "src = FileSource(name='s' * 255, path='data/driver.parquet', timestamp_field='ts')\n"
        f"view = FeatureView(name={name!r}, entities=[driver], schema=[Field(name='c' * 255, dtype=Float64)], "
        "source=src, tags={'c' * 255: 'x'})\n"
    )
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table(
            {
                "driver_id": pa.array([1], pa.int64()),
                "ts": pa.array([datetime(2024, 1, 1, tzinfo=UTC)], pa.timestamp("us", tz="UTC")),
                "c" * 255: [0.5],
            }
        ),
        tmp_path / "data" / "driver.parquet",
    )
    store = FeatureStore(repo_path=tmp_path)
    try:
        store.apply()
        store.materialize(datetime(2023, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC))
        response = store.get_online_features([f"{name}:{'c' * 255}"], [{"driver_id": 1}]).to_dict()
        assert response["c" * 255] == [0.5]
        store.teardown()
    finally:
        store.close()


@pytest.mark.parametrize(
    "body", ["import sys\nsys.exit(0)\n", "raise SystemExit\n", "import os\nraise SystemExit(3)\n"]
)
def test_a_repository_file_that_exits_is_an_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str
) -> None:
    make_repo(tmp_path, extra_files={"broken/exits.py": body})
    for command in ("plan", "apply"):
        code, _, err = run_cli(capsys, "-c", str(tmp_path), command)
        assert code == 1
        assert "broken/exits.py, line" in err
        assert "exits at import" in err
    assert not FeatureStore(repo_path=tmp_path).list_feature_views()
