"""An apply commits exactly the plan it computed: a concurrent writer's objects are never deleted."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import pytest
from repo_helpers import make_repo

from potluck import FeatureStore, FeatureView, Field
from potluck.definitions.errors import RegistryConflictError
from potluck.registry.sql import SqlRegistryStore
from potluck.types import Float64
from tests_support import run_cli

START = datetime(2023, 12, 31, tzinfo=UTC)
END = datetime(2024, 1, 2, tzinfo=UTC)


def _other_team_creates_a_view(repo: Path) -> None:
    """Another process registers and materializes a view of its own in the same project."""
    other = FeatureStore(repo_path=repo)
    try:
        base = other.get_feature_view("driver_stats")
        view = FeatureView(
            name="other_team_view",
            entities=[other.get_entity("driver")],
            schema=[Field(name="conv_rate", dtype=Float64)],
            source=base.source,
        )
        other.apply([view])
        other.materialize(START, END, ["other_team_view"])
    finally:
        other.close()


def _other_team_view_is_served(repo: Path) -> bool:
    store = FeatureStore(repo_path=repo)
    try:
        if "other_team_view" not in [v.name for v in store.list_feature_views()]:
            return False
        response = store.get_online_features(["other_team_view:conv_rate"], [{"driver_id": 1}]).to_dict()
        return response["conv_rate"] == [0.3]
    finally:
        store.close()


class _Terminal:
    """Stands for a terminal on stdin (the CLI asks for confirmation only there)."""

    def isatty(self) -> bool:
        return True


def test_cli_confirmation_is_for_the_plan_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path)
    assert run_cli(capsys, "-c", str(repo), "apply")[0] == 0
    make_repo(tmp_path, ttl_hours=1)  # a breaking change: the CLI asks before applying it
    prompts: list[str] = []

    def confirm(text: str, **_: Any) -> bool:
        prompts.append(text)
        if len(prompts) == 1:
            _other_team_creates_a_view(repo)  # while the user reads the plan
            return True
        raise click.Abort  # the user declines the new plan, which would delete the other view

    monkeypatch.setattr(sys, "stdin", _Terminal())
    monkeypatch.setattr(click, "confirm", confirm)
    code, out, _ = run_cli(capsys, "-c", str(repo), "apply")
    assert len(prompts) == 2
    assert code != 0
    assert "registry changed while this plan waited" in out
    assert "other_team_view" in out  # the new plan shows the deletion before asking again
    assert _other_team_view_is_served(repo)


def test_cli_off_a_terminal_fails_with_the_conflict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from potluck.cli import repo_cmds

    repo = make_repo(tmp_path)
    assert run_cli(capsys, "-c", str(repo), "apply")[0] == 0
    make_repo(tmp_path, ttl_hours=48)
    real_print_plan = repo_cmds.print_plan

    def print_then_race(plan: Any) -> None:
        real_print_plan(plan)
        _other_team_creates_a_view(repo)

    monkeypatch.setattr(repo_cmds, "print_plan", print_then_race)
    code, _, err = run_cli(capsys, "-c", str(repo), "apply")
    assert code == 1
    assert "changed while this apply was prepared" in err
    assert _other_team_view_is_served(repo)
    assert FeatureStore(repo_path=repo).get_feature_view("driver_stats").ttl.total_seconds() == 24 * 3600


def _race_before_first_commit(monkeypatch: pytest.MonkeyPatch, race: Callable[[], None]) -> None:
    real_commit = SqlRegistryStore.commit
    raced: list[bool] = []

    def commit(self: SqlRegistryStore, *args: Any, **kwargs: Any) -> int:
        if not raced:
            raced.append(True)
            race()
        return real_commit(self, *args, **kwargs)

    monkeypatch.setattr(SqlRegistryStore, "commit", commit)


def test_sdk_whole_repo_apply_never_deletes_what_was_created_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path)
    FeatureStore(repo_path=repo).apply()
    make_repo(tmp_path, ttl_hours=48)
    store = FeatureStore(repo_path=repo)
    _race_before_first_commit(monkeypatch, lambda: _other_team_creates_a_view(repo))
    with pytest.raises(RegistryConflictError, match=r"feature_view 'other_team_view' deleted"):
        store.apply()
    assert _other_team_view_is_served(repo)


def test_sdk_apply_retries_when_the_plan_is_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo(tmp_path)
    FeatureStore(repo_path=repo).apply()
    store = FeatureStore(repo_path=repo)
    base = store.get_feature_view("driver_stats")
    mine = FeatureView(
        name="my_view",
        entities=[store.get_entity("driver")],
        schema=[Field(name="trips", dtype=Float64)],
        source=base.source,
    )
    _race_before_first_commit(monkeypatch, lambda: _other_team_creates_a_view(repo))
    plan = store.apply([mine])  # the other team touched nothing this apply changes
    assert [d.name for d in plan.diffs if d.action == "created"] == ["my_view"]
    names = sorted(v.name for v in FeatureStore(repo_path=repo).list_feature_views())
    assert names == ["driver_stats", "my_view", "other_team_view"]


def test_apply_plan_commits_only_against_its_version(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    store = FeatureStore(repo_path=repo)
    store.apply()
    make_repo(tmp_path, ttl_hours=48)
    plan = store.plan()
    _other_team_creates_a_view(repo)
    with pytest.raises(RegistryConflictError, match="planned against version 1"):
        store.apply_plan(plan)
    with pytest.raises(RegistryConflictError):
        store.apply(plan=plan)
    fresh = store.plan()
    assert [(d.name, d.action) for d in fresh.diffs if d.action != "unchanged"] == [
        ("driver_stats", "updated"),
        ("other_team_view", "deleted"),
    ]
    store.apply_plan(fresh)
    assert [v.name for v in store.list_feature_views()] == ["driver_stats"]


def test_cli_recommits_a_plan_whose_changes_still_hold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from potluck.cli import repo_cmds

    repo = make_repo(tmp_path)
    assert run_cli(capsys, "-c", str(repo), "apply")[0] == 0
    make_repo(tmp_path, ttl_hours=48)
    real_print_plan = repo_cmds.print_plan

    def print_then_race(plan: Any) -> None:
        real_print_plan(plan)
        other = FeatureStore(repo_path=repo)  # moves the registry on, and back to the same objects
        service = other.get_feature_service("driver_service")
        other.apply([], objects_to_delete=[service])
        other.apply([service])
        other.close()

    monkeypatch.setattr(repo_cmds, "print_plan", print_then_race)
    code, out, err = run_cli(capsys, "-c", str(repo), "apply")
    assert (code, err) == (0, "")
    assert "Applied" in out
    store = FeatureStore(repo_path=repo)
    assert store.get_feature_view("driver_stats").ttl.total_seconds() == 48 * 3600
    assert store.registry_snapshot().version == 4
