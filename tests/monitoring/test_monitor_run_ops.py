"""`potluck monitor run` as cron runs it: drift and staleness, alerts to real receivers, the
textfile, exit codes, and only changes sent on later runs."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from alert_support import receiver
from monitor_ops_support import NOW, build_repo
from potluck import FeatureStore

FAST = "timeout_seconds: 0.5, retries: 1, backoff_seconds: 0.01"
BASE = ["--start", (NOW - timedelta(days=20)).isoformat(), "--end", (NOW - timedelta(days=10)).isoformat()]
CURRENT = ["--start", (NOW - timedelta(days=10)).isoformat(), "--end", NOW.isoformat()]


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "potluck.cli", "-c", str(root), *args], capture_output=True, text=True, check=False
    )


def run_json(root: Path, *args: str) -> tuple[int, dict[str, Any]]:
    done = cli(root, "monitor", "run", "-b", "base", *CURRENT, "-o", "json", *args)
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def _repo(tmp_path: Path, channels: str) -> Path:
    root = build_repo(tmp_path / "repo", f"monitoring:\n  alerts:\n{channels}", drift_age=15.0)
    store = FeatureStore(repo_path=root)
    store.apply()
    store.materialize(NOW - timedelta(days=30), NOW - timedelta(days=3), ["users"])  # stale (tag: 1h)
    store.materialize(NOW - timedelta(days=30), NOW, ["orders"])
    store.close()
    done = cli(root, "monitor", "baseline", "--view", "users", *BASE, "--name", "base")
    assert done.returncode == 0, done.stderr
    return root


def test_run_reports_alerts_and_exports(tmp_path: Path) -> None:
    with receiver() as hook, receiver(202) as pd:
        channels = (
            f"    - {{type: webhook, name: hook, url: '{hook.url}', {FAST}}}\n"
            f"    - {{type: pagerduty, name: pd, routing_key: K3Y, url: '{pd.url}', kinds: [stale], {FAST}}}\n"
        )
        root = _repo(tmp_path, channels)
        textfile = tmp_path / "potluck.prom"
        code, report = run_json(root, "--max-staleness", "2h", "--textfile", str(textfile))
        assert code == 1
        assert report["drift"] is True
        assert report["stale"] == ["users"]
        age = next(f for f in report["features"] if f["feature"] == "age")
        assert age["drift"] is True
        assert "mean_change" in age["rules_fired"]
        statuses = {f["view"]: (f["status"], f["limit_from"]) for f in report["freshness"]}
        assert statuses == {
            "users": ("stale", "tag potluck.max_staleness"),
            "orders": ("ok", "--max-staleness"),
            "clicks": ("unchecked", "tag potluck.max_staleness"),
        }
        by_channel = {c["channel"]: c for c in report["alerts"]}
        drifting = [(f["feature"], r) for f in report["features"] for r in f["rules_fired"]]
        assert by_channel["hook"]["ok"]
        assert by_channel["hook"]["fired"] == len(drifting) + 1
        assert (by_channel["pd"]["ok"], by_channel["pd"]["fired"]) == (True, 1)

        (message,) = hook.bodies()
        fired = {(a["kind"], a["view"], a["feature"], a["rule"]) for a in message["firing"]}
        assert fired == {("drift", "users", f, r) for f, r in drifting} | {("stale", "users", None, "max_staleness")}
        (event,) = pd.bodies()
        assert (event["event_action"], event["payload"]["component"]) == ("trigger", "users")

        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(textfile.read_text())
            for s in fam.samples
        }
        assert samples[("potluck_feature_drift", (("feature", "age"), ("view", "users")))] == 1
        assert samples[("potluck_feature_view_stale", (("view", "users"),))] == 1
        assert samples[("potluck_feature_view_stale", (("view", "orders"),))] == 0
        assert samples[("potluck_monitor_alert_delivery_failed", (("channel", "hook"),))] == 0

        # the same findings again: nothing new is sent
        code, _ = run_json(root, "--max-staleness", "2h")
        assert code == 1
        assert len(hook.requests) == 1
        assert len(pd.requests) == 1

        # users materialized up to now: its staleness clears and resolves; drift keeps firing
        store = FeatureStore(repo_path=root)
        store.materialize_incremental(NOW)
        store.close()
        code, report = run_json(root, "--max-staleness", "2h")
        assert (code, report["stale"]) == (1, [])
        resolved = hook.requests[1].body
        assert resolved["firing"] == []
        assert [a["key"] for a in resolved["resolved"]] == [f"potluck/{_project(root)}/stale/users//max_staleness"]
        assert pd.requests[1].body["event_action"] == "resolve"

        # --no-alerts: checks only
        assert run_json(root, "--no-alerts")[0] == 1
        assert len(hook.requests) == 2


def _project(root: Path) -> str:
    return (root / "feature_store.yaml").read_text().split("\n", 1)[0].split(": ")[1]


def test_failed_delivery_exits_2_with_every_result(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/"
        root = _repo(tmp_path, f"    - {{type: slack, name: team, url: '{dead}', {FAST}}}\n")
        code, report = run_json(root)
    assert code == 2
    assert report["drift"] is True
    assert report["stale"] == ["users"]
    (channel,) = report["alerts"]
    assert (channel["channel"], channel["ok"], channel["attempts"], channel["failed_messages"]) == ("team", False, 2, 1)
    assert all(e.startswith("ConnectError: cannot reach http://127.0.0.1:") for e in channel["errors"])
    human = cli(root, "monitor", "run", "-b", "base", *CURRENT)
    assert human.returncode == 2
    assert "team: 1 message(s) not delivered after 2 attempt(s)" in human.stdout


def test_no_baseline_checks_staleness_only(tmp_path: Path) -> None:
    root = build_repo(tmp_path / "repo")
    store = FeatureStore(repo_path=root)
    store.apply()
    store.materialize(NOW - timedelta(days=30), NOW, ["users", "orders"])
    store.close()
    done = cli(root, "monitor", "run", "-o", "json", "--max-staleness", "1d")
    assert done.returncode == 0, done.stderr
    assert "drift not checked" in done.stderr
    report = json.loads(done.stdout)
    assert (report["drift"], report["stale"], report["features"], report["alerts"]) == (False, [], [], [])
    assert cli(root, "monitor", "run", "--max-staleness", "1x").returncode == 2
