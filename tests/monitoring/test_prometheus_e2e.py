"""A real Prometheus scraping a running `potluck serve`: every dashboard query answers, the alert
rules fire, and an alert reaches a webhook through a real Alertmanager."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from alert_support import Receiver, receiver
from monitor_ops_support import NOW, build_repo
from potluck import FeatureStore
from potluck.monitoring.gauges import DriftGauge
from potluck.monitoring.grafana import dashboard, queries
from potluck.monitoring.prometheus import RuleOptions, rules_yaml
from prometheus_support import alertmanager, prometheus, query, require_binary, wait_for_result
from tests_support import free_port, wait_healthy

RATE_INTERVAL = "10s"  # what Grafana's $__rate_interval would be at a 1 s scrape, rounded up


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require_binary("prometheus")
    require_binary("prometheus-alertmanager", "alertmanager")
    tmp = tmp_path_factory.mktemp("prom")
    root = build_repo(tmp / "repo")
    store = FeatureStore(repo_path=root)
    store.apply()
    store.materialize(NOW - timedelta(days=30), NOW - timedelta(days=3), ["users"])  # stale: limit 1h
    store.materialize(NOW - timedelta(days=30), NOW, ["orders"])
    (root / "data" / "clicks.parquet").unlink()
    with pytest.raises(Exception, match="does not exist"):
        store.materialize(NOW - timedelta(days=30), NOW, ["clicks"])
    store._monitor_state.record_drift(
        ["users"],
        [
            DriftGauge("users", "age", True, 0.41, 0.32, 1e-9, 0.27),
            DriftGauge("users", "spend", False, 0.01, 0.02, 0.8, 0.03),
        ],
        NOW,
    )
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "potluck.cli", "-c", str(root), "serve", "--port", str(port), "--no-access-log"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    rules = tmp / "rules.yml"
    rules.write_text(rules_yaml(RuleOptions(pending=timedelta(0), rate_window="10s")))
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            wait_healthy(http, server)
            with (
                receiver() as hook,
                alertmanager(tmp / "am", hook.url + "/alerts") as am,
                prometheus(tmp / "prom", [f"127.0.0.1:{port}"], [rules], am) as prom,
            ):
                yield {"http": http, "prom": prom, "hook": hook, "store": store}
    finally:
        server.terminate()
        server.wait(30)
        store.close()


def _traffic(http: httpx.Client) -> None:
    body = {"features": ["users:age", "orders:spend"], "entities": {"user_id": [1, 2, 3]}}
    for _ in range(20):
        assert http.post("/get-online-features", json=body).status_code == 200


def _by(result: list[dict[str, Any]], *labels: str) -> dict[tuple[str, ...], float]:
    return {tuple(r["metric"].get(k, "") for k in labels): float(r["value"][1]) for r in result}


def test_every_dashboard_query_answers(stack: dict[str, Any]) -> None:
    prom = stack["prom"]
    _traffic(stack["http"])
    wait_for_result(prom, 'up{job="potluck"} == 1')
    for expr in queries(dashboard()):
        concrete = expr.replace("$__rate_interval", RATE_INTERVAL)
        result = wait_for_result(prom, concrete, timeout=60)
        assert result, f"no data for dashboard query {expr}"
        _traffic(stack["http"])


def test_exported_values(stack: dict[str, Any]) -> None:
    prom = stack["prom"]
    wait_for_result(prom, "potluck_feature_drift_psi")
    freshness = _by(query(prom, "potluck_feature_freshness_seconds"), "view")
    assert 3 * 86400 <= freshness[("users",)] < 3 * 86400 + 3600
    assert freshness[("orders",)] < 3600
    assert ("clicks",) not in freshness  # never materialized: no age to show
    assert _by(query(prom, "potluck_feature_max_staleness_seconds"), "view") == {("users",): 3600.0}
    assert _by(query(prom, "potluck_materialization_failed"), "view") == {("users",): 0, ("orders",): 0, ("clicks",): 1}
    assert _by(query(prom, "potluck_feature_drift"), "view", "feature") == {("users", "age"): 1, ("users", "spend"): 0}
    assert _by(query(prom, "potluck_feature_drift_psi"), "view", "feature") == {
        ("users", "age"): 0.41,
        ("users", "spend"): 0.01,
    }
    assert _by(query(prom, "potluck_feature_drift_ks_p_value"), "view", "feature") == {
        ("users", "age"): 1e-9,
        ("users", "spend"): 0.8,
    }


def _firing(hook: Receiver) -> set[tuple[str, str]]:
    out = set()
    for body in hook.bodies():
        for alert in body.get("alerts", []):
            if alert["status"] == "firing":
                labels = alert["labels"]
                out.add((labels["alertname"], labels.get("view", "") + ":" + labels.get("feature", "")))
    return out


def test_alerts_reach_a_webhook_through_alertmanager(stack: dict[str, Any]) -> None:
    import time

    hook = stack["hook"]
    want = {
        ("PotluckFeatureViewStale", "users:"),
        ("PotluckMaterializationFailed", "clicks:"),
        ("PotluckFeatureDrift", "users:age"),
    }
    deadline = time.monotonic() + 90
    while not want <= _firing(hook) and time.monotonic() < deadline:
        time.sleep(0.5)
    got = _firing(hook)
    assert want <= got, got
    # fresh views, healthy features and a server without errors do not alert (latency is not asserted)
    assert not {a for a in got if a[1] in ("orders:", "users:spend")}
    assert not {a for a in got if a[0] == "PotluckServerErrorRate"}
    body = next(
        b for b in hook.bodies() if any(a["labels"]["alertname"] == "PotluckFeatureViewStale" for a in b["alerts"])
    )
    alert = next(a for a in body["alerts"] if a["labels"]["alertname"] == "PotluckFeatureViewStale")
    assert alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["summary"] == "Feature view users is stale"
