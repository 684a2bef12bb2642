"""Materialization watermarks: far-future ends are refused, and a bad record never breaks the store for good."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from integration_support import END, build_repo
from test_server_e2e import served

from potluck import FeatureStore
from potluck.definitions.errors import RetrievalError
from tests_support import run_cli

FAR = datetime(9999, 12, 31, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    repo = build_repo(tmp_path / "repo", "sqlite")
    s = FeatureStore(repo_path=repo)
    s.apply()
    return s


def test_a_far_future_end_is_refused_before_anything_is_written(store: FeatureStore) -> None:
    with pytest.raises(RetrievalError, match=r"9999-12-31.*max_clock_skew_seconds"):
        store.materialize(END - timedelta(days=60), FAR, ["driver_stats"])
    with pytest.raises(RetrievalError, match="after now"):
        store.materialize_incremental(FAR, ["driver_stats"])
    assert store.materialization_intervals() == []
    # within the allowed skew is fine
    store.materialize_incremental(datetime.now(UTC) + timedelta(minutes=1), ["driver_stats"])
    assert len(store.materialization_intervals("driver_stats")) == 1


def test_the_allowed_skew_is_configurable(tmp_path: Path) -> None:
    repo = build_repo(tmp_path / "repo", "sqlite")
    yaml_file = repo / "feature_store.yaml"
    yaml_file.write_text(yaml_file.read_text() + "materialization:\n  max_clock_skew_seconds: 0\n")
    store = FeatureStore(repo_path=repo)
    store.apply()
    with pytest.raises(RetrievalError, match="after now"):
        store.materialize_incremental(datetime.now(UTC) + timedelta(seconds=30), ["driver_stats"])


def test_an_earlier_far_future_record_does_not_stop_incremental_runs(store: FeatureStore) -> None:
    # As written by a version that accepted any end.
    store._registry_store.record_materialization("driver_stats", None, FAR)
    [fresh] = [f for f in store.freshness() if f.feature_view == "driver_stats"]
    assert fresh.age is not None
    assert timedelta(0) <= fresh.age < timedelta(minutes=5)  # counted up to when it was recorded
    assert fresh.materialized_until is not None
    assert fresh.materialized_until < datetime.now(UTC) + timedelta(seconds=1)
    [result] = store.materialize_incremental(datetime.now(UTC), ["driver_stats"])
    assert result.start is not None
    assert result.start <= result.end


def test_cli_shows_and_resets_a_watermark(store: FeatureStore, capsys: pytest.CaptureFixture[str]) -> None:
    c = ["-c", str(store.repo_path)]
    store._registry_store.record_materialization("driver_stats", None, FAR)
    store.materialize(END - timedelta(days=60), END, ["driver_stats"])
    code, out, err = run_cli(capsys, *c, "materialization", "show", "driver_stats", "-o", "json")
    assert code == 0, err
    shown = json.loads(out)
    assert [r["end"][:4] for r in shown] == ["9999", str(END.year)]
    assert shown[0]["counts_until"][:4] != "9999"
    code, out, err = run_cli(capsys, *c, "materialization", "reset", "driver_stats", "--to", END.isoformat(), "-y")
    assert code == 0, err
    assert "Forgot 1 interval" in out
    assert [i.end for i in store.materialization_intervals("driver_stats")] == [END]
    code, _, err = run_cli(capsys, *c, "materialization", "reset", "no_such_view", "-y")
    assert code == 1
    assert "no_such_view" in err
    code, out, err = run_cli(capsys, *c, "materialization", "reset", "driver_stats", "-y")
    assert code == 0, err
    assert store.materialization_intervals("driver_stats") == []
    code, out, _ = run_cli(capsys, *c, "freshness", "-o", "json")
    assert code == 1
    assert {r["view"]: r["status"] for r in json.loads(out)}["driver_stats"] == "NEVER"


def test_http_materialize_refuses_a_far_future_end(store: FeatureStore) -> None:
    with served(store, auth="off") as url, httpx.Client(base_url=url, timeout=30) as http:
        reply = http.post(
            "/materialize-incremental", json={"end_ts": "9999-12-31T00:00:00Z", "feature_views": ["driver_stats"]}
        )
        assert reply.status_code == 422, reply.text
        assert "after now" in reply.json()["error"]["message"]
        reply = http.post(
            "/materialize",
            json={"start_ts": "2020-01-01T00:00:00Z", "end_ts": "9999-12-31T00:00:00Z"},
        )
        assert reply.status_code == 422, reply.text
    assert store.materialization_intervals() == []
