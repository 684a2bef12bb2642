"""LabelView definitions: validation, stored form, import paths, and what apply and plan say about them."""

from __future__ import annotations

import importlib
from datetime import timedelta
from pathlib import Path

import pytest
from repo_helpers import make_repo

from potluck import ConflictPolicy, Entity, FeatureStore, Field, FileSource, LabelView
from potluck.definitions.errors import DefinitionError, RepositoryError
from potluck.types import Int64, String

driver = Entity(name="driver", join_keys=["driver_id"])
source = FileSource(name="driver_source", path="data/driver.parquet", timestamp_field="ts")
SCHEMA = [Field(name="city", dtype=String), Field(name="trips", dtype=Int64)]  # `city` plays the labeler


def _view(**kwargs: object) -> LabelView:
    args: dict[str, object] = {
        "name": "labels",
        "entities": [driver],
        "schema": SCHEMA,
        "source": source,
        "labeler_field": "city",
    }
    args.update(kwargs)
    return LabelView(**args)  # type: ignore[arg-type]


def test_round_trip_and_defaults() -> None:
    view = _view(
        conflict_policy=ConflictPolicy.LABELER_PRIORITY,
        labeler_priorities=["a", "b"],
        reference_feature_view="driver_stats",
        ttl=timedelta(hours=2),
        tags={"k": "v"},
    )
    again = LabelView.from_spec(view.to_spec())
    assert again == view
    assert again.to_spec() == view.to_spec()
    assert again.labeler_priorities == ("a", "b")
    assert again.conflict_policy is ConflictPolicy.LABELER_PRIORITY
    assert view.feature_names == ["city", "trips"]
    assert view.label_names == ["trips"]
    plain = LabelView(name="p", entities=[driver], schema=SCHEMA, source=source)
    assert plain.conflict_policy is ConflictPolicy.LAST_WRITE_WINS
    assert plain.labeler_field == "labeler"
    assert plain.ttl == timedelta(0)
    assert plain.online
    assert plain.reference_feature_view == ""
    assert _view(conflict_policy="majority_vote").conflict_policy is ConflictPolicy.MAJORITY_VOTE
    assert [p.value for p in ConflictPolicy] == ["last_write_wins", "labeler_priority", "majority_vote"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"conflict_policy": ConflictPolicy.LABELER_PRIORITY},
            "LabelView 'labels': conflict_policy LABELER_PRIORITY needs 'labeler_priorities'",
        ),
        ({"conflict_policy": ConflictPolicy.LABELER_PRIORITY, "labeler_priorities": []}, "needs 'labeler_priorities'"),
        ({"labeler_priorities": ["a"]}, "'labeler_priorities' is only used by conflict_policy LABELER_PRIORITY"),
        ({"conflict_policy": ConflictPolicy.LABELER_PRIORITY, "labeler_priorities": ["a", "a"]}, "lists 'a' twice"),
        ({"conflict_policy": ConflictPolicy.LABELER_PRIORITY, "labeler_priorities": "ab"}, "must be a list"),
        (
            {"conflict_policy": ConflictPolicy.LABELER_PRIORITY, "labeler_priorities": ["a", ""]},
            "labeler_priorities[1]",
        ),
        ({"conflict_policy": "first_write_wins"}, "'conflict_policy' must be one of ConflictPolicy.LAST_WRITE_WINS"),
        ({"conflict_policy": ConflictPolicy.MAJORITY_VOTE, "labeler_field": "who"}, "needs the labeler column 'who'"),
        (
            {"conflict_policy": ConflictPolicy.MAJORITY_VOTE, "labeler_field": "trips"},
            "declared Int64; declare it String",
        ),
        ({"labeler_field": "driver_id", "schema": [Field(name="driver_id", dtype=Int64), *SCHEMA]}, "is a join key"),
        ({"labeler_field": "not an identifier"}, "'labeler_field'"),
        ({"entities": []}, "at least one entity"),
        ({"source": None}, "'source' is required"),
        ({"reference_feature_view": "bad name"}, "reference_feature_view"),
        ({"ttl": timedelta(hours=-1)}, "LabelView 'labels': 'ttl'"),
    ],
)
def test_bad_definitions_name_the_view_and_the_fix(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(DefinitionError) as info:
        _view(**kwargs)
    assert message in str(info.value)
    assert "LabelView 'labels'" in str(info.value) or "LabelView" in str(info.value)


def test_import_paths() -> None:
    assert importlib.import_module("potluck.labeling").LabelView is LabelView
    assert importlib.import_module("potluck.labeling.label_view").LabelView is LabelView
    assert importlib.import_module("potluck.labeling.conflict_policy").ConflictPolicy is ConflictPolicy
    import potluck

    assert {"LabelView", "ConflictPolicy"} <= set(potluck.__all__)


LABELS_PY = """
from potluck import ConflictPolicy, Field, LabelView, PushSource
from potluck.types import Float64, String
from features import driver, source

labels = LabelView(
    name="{name}",
    entities=[driver],
    schema=[Field(name="city", dtype=String), Field(name="conv_rate", dtype=Float64)],
    source=PushSource(name="labels_push", batch_source=source),
    labeler_field="city",
    conflict_policy=ConflictPolicy.{policy},
)
"""


def test_apply_plan_and_delete(tmp_path: Path) -> None:
    make_repo(tmp_path, extra_files={"labels.py": LABELS_PY.format(name="labels", policy="MAJORITY_VOTE")})
    store = FeatureStore(repo_path=tmp_path)
    try:
        plan = store.apply()
        assert ("label_view", "labels", "created") in [(d.kind, d.name, d.action) for d in plan.diffs]
        (tmp_path / "labels.py").write_text(LABELS_PY.format(name="labels", policy="LAST_WRITE_WINS"))
        plan = store.plan()
        (diff,) = [d for d in plan.diffs if d.kind == "label_view"]
        assert diff.action == "updated"
        assert not diff.breaking
        assert [(c.path, c.old, c.new) for c in diff.changes] == [
            ("conflict_policy", "majority_vote", "last_write_wins")
        ]
        store.apply()
        assert store.get_label_view("labels").conflict_policy is ConflictPolicy.LAST_WRITE_WINS
        (tmp_path / "labels.py").unlink()
        plan = store.plan()
        (diff,) = [d for d in plan.diffs if d.kind == "label_view"]
        assert diff.action == "deleted"
        assert diff.breaking
        store.apply()
        assert store.list_label_views() == []
    finally:
        store.teardown()
        store.close()


def test_a_label_view_and_a_feature_view_cannot_share_a_name(tmp_path: Path) -> None:
    make_repo(tmp_path, extra_files={"labels.py": LABELS_PY.format(name="driver_stats", policy="MAJORITY_VOTE")})
    with pytest.raises(RepositoryError, match="share one namespace"):
        FeatureStore(repo_path=tmp_path).plan()


def test_errors_at_apply_name_the_file(tmp_path: Path) -> None:
    make_repo(tmp_path, extra_files={"labels.py": LABELS_PY.format(name="labels", policy="LABELER_PRIORITY")})
    with pytest.raises(RepositoryError) as info:
        FeatureStore(repo_path=tmp_path).plan()
    assert "labels.py" in str(info.value)
    assert "LabelView 'labels'" in str(info.value)
    assert "labeler_priorities" in str(info.value)


def test_inferred_schema_is_checked_for_the_labeler(tmp_path: Path) -> None:
    body = """
    from potluck import ConflictPolicy, LabelView
    from features import driver, source
    labels = LabelView(name="labels", entities=[driver], source=source, conflict_policy=ConflictPolicy.MAJORITY_VOTE)
    """
    make_repo(tmp_path, extra_files={"labels.py": body})
    with pytest.raises(RepositoryError, match="needs the labeler column 'labeler'"):
        FeatureStore(repo_path=tmp_path).plan()
