"""Materialization failures alert through the configured channels and resolve on the next success."""

from __future__ import annotations

import logging
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from alert_support import receiver
from monitor_ops_support import NOW, build_repo
from potluck import FeatureStore
from potluck.definitions.errors import RetrievalError

FAST = "timeout_seconds: 0.5, retries: 1, backoff_seconds: 0.01"


def _yaml(url: str) -> str:
    return f"monitoring:\n  alerts:\n    - {{type: webhook, name: hook, url: '{url}', {FAST}}}\n"


def test_failure_fires_and_success_resolves(tmp_path: Path) -> None:
    with receiver() as rx:
        root = build_repo(tmp_path / "repo", _yaml(rx.url + "/hook"))
        store = FeatureStore(repo_path=root)
        try:
            store.apply()
            data = root / "data" / "clicks.parquet"
            shutil.move(data, tmp_path / "aside.parquet")
            with pytest.raises(RetrievalError, match="does not exist"):
                store.materialize(NOW - timedelta(days=30), NOW, ["clicks"])
            (fired,) = rx.bodies()
            (alert,) = fired["firing"]
            assert alert["key"] == f"potluck/{store.project}/materialization/clicks//materialization_failed"
            assert (alert["kind"], alert["view"], alert["feature"], alert["rule"]) == (
                "materialization", "clicks", None, "materialization_failed",
            )  # fmt: skip
            assert alert["details"]["error"].startswith("RetrievalError: view 'clicks'")
            assert alert["summary"].startswith("materialization of clicks failed: RetrievalError")
            assert [f.feature_view for f in store._monitor_state.materialization_failures()] == ["clicks"]

            # a second failure says nothing new; another view's success resolves nothing of clicks
            with pytest.raises(RetrievalError):
                store.materialize(NOW - timedelta(days=30), NOW, ["clicks"])
            store.materialize(NOW - timedelta(days=30), NOW, ["users"])
            assert len(rx.requests) == 1

            shutil.move(tmp_path / "aside.parquet", data)
            store.materialize(NOW - timedelta(days=30), NOW, ["clicks"])
            resolved = rx.requests[1].body
            assert resolved["firing"] == []
            assert [a["key"] for a in resolved["resolved"]] == [alert["key"]]
            assert store._monitor_state.materialization_failures() == []

            store._monitor_state.record_materialization(["users"], "boom")
            store.teardown()
            assert store._monitor_state.materialization_failures() == []
            assert store._monitor_state.firing("hook") == []
        finally:
            store.close()


def test_dead_channel_never_changes_the_run_outcome(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with receiver(default=500) as rx:
        root = build_repo(tmp_path / "repo", _yaml(rx.url))
        store = FeatureStore(repo_path=root)
        try:
            store.apply()
            (root / "data" / "clicks.parquet").unlink()
            with (
                caplog.at_level(logging.WARNING, "potluck.monitoring"),
                pytest.raises(RetrievalError, match="does not exist"),
            ):
                store.materialize(NOW - timedelta(days=30), NOW, ["clicks"])
            assert len(rx.requests) == 2  # the first attempt and one retry
            assert (
                "materialization alert for clicks: hook: 1 message(s) not delivered after 2 attempt(s)" in caplog.text
            )
            results = store.materialize(NOW - timedelta(days=30), NOW, ["users"])
            assert [r.feature_view for r in results] == ["users"]
        finally:
            store.close()
