"""Loading feature repositories, plan and apply through the SDK."""

from __future__ import annotations

from pathlib import Path

import pytest
from repo_helpers import DEFAULT_FIELDS, make_repo

from potluck import Entity, FeatureStore
from potluck.definitions.errors import BreakingChangeError, NotFoundError, RepositoryError


def test_apply_registers_everything_and_reapply_is_a_no_op(tmp_path: Path) -> None:
    store = FeatureStore(repo_path=make_repo(tmp_path))
    plan = store.apply()
    assert plan.counts()["created"] == 4
    assert [v.name for v in store.list_feature_views()] == ["driver_stats"]
    assert store.get_feature_view("driver_stats").feature_names == ["conv_rate", "trips", "city"]
    assert store.get_entity("driver").join_key == "driver_id"
    assert store.get_data_source("driver_source").timestamp_field == "ts"
    assert store.get_feature_service("driver_service").feature_references() == ["driver_stats:conv_rate"]
    assert store.list_feature_views(tags={"team": "core"})
    assert not store.list_feature_views(tags={"team": "other"})
    again = store.apply()
    assert not again.has_changes
    assert len(store.registry_history()) == 1


def test_unknown_names_suggest_the_nearest(tmp_path: Path) -> None:
    store = FeatureStore(repo_path=make_repo(tmp_path))
    store.apply()
    with pytest.raises(NotFoundError, match=r"Feature view 'driver_stat' does not exist. Did you mean 'driver_stats'"):
        store.get_feature_view("driver_stat")
    with pytest.raises(NotFoundError, match="Entity 'drivr'"):
        store.get_entity("drivr")


def test_plan_shows_field_changes_and_flags_breaking(tmp_path: Path) -> None:
    store = FeatureStore(repo_path=make_repo(tmp_path))
    store.apply()
    make_repo(tmp_path, ttl_hours=1, fields='Field(name="conv_rate", dtype=Float64), Field(name="city", dtype=String)')
    plan = store.plan()
    [diff] = [d for d in plan.diffs if d.action == "updated"]
    assert diff.name == "driver_stats"
    paths = {c.path for c in diff.changes}
    assert "ttl_seconds" in paths
    assert "features[trips]" in paths
    assert any("feature 'trips' removed" in b for b in plan.breaking)
    assert any("ttl shortened" in b for b in plan.breaking)
    with pytest.raises(BreakingChangeError, match="trips"):
        store.apply(allow_breaking=False)
    assert store.get_feature_view("driver_stats").feature_names == ["conv_rate", "trips", "city"]
    store.apply(allow_breaking=True)
    assert store.get_feature_view("driver_stats").feature_names == ["conv_rate", "city"]


def test_type_change_is_breaking_and_longer_ttl_is_not(tmp_path: Path) -> None:
    store = FeatureStore(repo_path=make_repo(tmp_path))
    store.apply()
    make_repo(tmp_path, ttl_hours=48)
    assert store.plan().has_changes
    assert store.plan().breaking == []
    make_repo(tmp_path, ttl_hours=48, fields=DEFAULT_FIELDS.replace('"trips", dtype=Int64', '"trips", dtype=Float64'))
    assert any("changed type Int64 -> Float64" in b for b in store.plan().breaking)


def test_deleted_objects_are_planned_as_deletions(tmp_path: Path) -> None:
    store = FeatureStore(repo_path=make_repo(tmp_path))
    store.apply()
    text = (
        (tmp_path / "features.py")
        .read_text()
        .replace('service = FeatureService(name="driver_service", features=[driver_stats[["conv_rate"]]])', "")
    )
    (tmp_path / "features.py").write_text(text)
    plan = store.plan()
    [diff] = [d for d in plan.diffs if d.action != "unchanged"]
    assert (diff.kind, diff.name, diff.action) == ("feature_service", "driver_service", "deleted")


def test_sdk_apply_and_delete_objects(tmp_path: Path) -> None:
    store = FeatureStore(repo_path=make_repo(tmp_path))
    store.apply()
    merchant = Entity(name="merchant", join_keys=["merchant_id"])
    store.apply([merchant])
    assert {e.name for e in store.list_entities()} == {"driver", "merchant"}
    store.apply([], objects_to_delete=[merchant])
    assert {e.name for e in store.list_entities()} == {"driver"}


def test_ignored_and_hidden_paths_are_skipped(tmp_path: Path) -> None:
    broken = "raise RuntimeError('must not be imported')\n"
    make_repo(
        tmp_path,
        extra_files={
            ".venv/lib/bad.py": broken,
            ".hidden/bad.py": broken,
            "scratch/bad.py": broken,
            "notebooks/x/bad.py": broken,
            ".potluckignore": "scratch/\nnotebooks\n",
        },
    )
    assert FeatureStore(repo_path=tmp_path).plan().counts()["created"] == 4


BAD_REPOS = {
    "duplicate": (
        {"more.py": "from potluck import Entity\ndriver = Entity(name='driver', join_keys=['other_id'])\n"},
        "more.py: Entity 'driver' is defined twice with different content (also in features.py)",
    ),
    "unknown entity": (
        {
            "more.py": """
            from potluck import Entity, FeatureView, FileSource
            v = FeatureView(
                name="v2",
                entities=[Entity(name="ghost", join_keys=["driver_id"])],
                source=FileSource(path="data/driver.parquet", timestamp_field="ts"),
            )
            """
        },
        "more.py: FeatureView 'v2' uses entity 'ghost', which is not defined",
    ),
    "unknown view": (
        {
            "more.py": """
            from datetime import timedelta
            from potluck import Entity, FeatureService, FeatureView, FileSource
            from features import driver
            orphan = FeatureView(name="orphan", entities=[driver], source=FileSource(path="data/driver.parquet", timestamp_field="ts"))
            svc = FeatureService(name="svc2", features=[orphan])
            del orphan
            """
        },
        "more.py: FeatureService 'svc2' uses feature view 'orphan', which is not defined",
    ),
    "missing column": (
        {"more.py": ""},
        "features.py: FeatureView 'driver_stats': field 'nope' is not a column of source 'driver_source'",
    ),
    "bad type": (
        {"more.py": ""},
        "field 'city' is declared Int64 but column 'city' of source 'driver_source' holds string",
    ),
    "syntax": ({"more.py": "def broken(:\n"}, "more.py"),
    "runtime error": ({"more.py": "x = 1\nraise ValueError('boom')\n"}, "more.py, line 2: ValueError: boom"),
    "missing file": ({"more.py": ""}, "file 'data/missing.parquet' does not exist"),
}


@pytest.mark.parametrize("case", list(BAD_REPOS))
def test_bad_repository_gives_one_clear_error(tmp_path: Path, case: str) -> None:
    files, message = BAD_REPOS[case]
    fields = DEFAULT_FIELDS
    if case == "missing column":
        fields += ', Field(name="nope", dtype=Int64)'
    if case == "bad type":
        fields = DEFAULT_FIELDS.replace('"city", dtype=String', '"city", dtype=Int64')
    make_repo(tmp_path, fields=fields, extra_files=files)
    if case == "missing file":
        text = (tmp_path / "features.py").read_text().replace("data/driver.parquet", "data/missing.parquet")
        (tmp_path / "features.py").write_text(text)
    with pytest.raises(RepositoryError) as info:
        FeatureStore(repo_path=tmp_path).plan()
    assert message in str(info.value)


def test_schema_is_inferred_when_omitted(tmp_path: Path) -> None:
    make_repo(tmp_path, fields="")
    text = (tmp_path / "features.py").read_text().replace('driver_stats[["conv_rate"]]', "driver_stats")
    (tmp_path / "features.py").write_text(text)
    store = FeatureStore(repo_path=tmp_path)
    store.apply()
    view = store.get_feature_view("driver_stats")
    assert view.feature_names == ["conv_rate", "trips", "city"]
    assert [f.dtype.name for f in view.entity_columns] == ["Int64"]
    assert store.get_feature_service("driver_service").feature_references() == [
        "driver_stats:conv_rate",
        "driver_stats:trips",
        "driver_stats:city",
    ]


def test_postgres_registry(tmp_path: Path, postgres_database: str) -> None:
    store = FeatureStore(repo_path=make_repo(tmp_path, registry=postgres_database))
    store.apply()
    other = FeatureStore(repo_path=tmp_path)
    assert [v.name for v in other.list_feature_views()] == ["driver_stats"]
    store.teardown()
    other.refresh_registry()
    assert other.list_feature_views() == []
    store.close()
    other.close()
