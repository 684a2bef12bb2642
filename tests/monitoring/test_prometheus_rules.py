"""The generated alert rules, checked and unit-tested by promtool on synthetic series."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from potluck.monitoring.prometheus import RuleOptions, rules, rules_yaml
from prometheus_support import require_binary

STALE_DESC = (
    "Its online rows are older than its staleness limit "
    "(value: {value}; seconds since the last materialization, or 1 when never materialized)."
)


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_binary("promtool"), *args], capture_output=True, text=True, check=False)


@pytest.mark.parametrize(
    "options",
    [RuleOptions(), RuleOptions(pending=timedelta(0), max_staleness=timedelta(hours=6), rate_window="1m")],
    ids=["defaults", "options"],
)
def test_promtool_check_rules(tmp_path: Path, options: RuleOptions) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(rules_yaml(options))
    done = _promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 7 rules found" in done.stdout


def _alert(name: str, labels: dict[str, str], summary: str, description: str) -> dict[str, Any]:
    return {"exp_labels": labels, "exp_annotations": {"summary": summary, "description": description}}


def _stale(view: str, value: str) -> dict[str, Any]:
    return _alert(
        "PotluckFeatureViewStale",
        {"severity": "critical", "view": view},
        f"Feature view {view} is stale",
        STALE_DESC.format(value=value),
    )


def _tests() -> list[dict[str, Any]]:
    job = 'job="potluck",instance="127.0.0.1:6566"'
    node = 'job="node",instance="127.0.0.1:9100"'
    series = [
        # users: 100 s old at 0m, one more minute each minute; limit 10 minutes -> over from 9m
        (f'potluck_feature_freshness_seconds{{{job},view="users"}}', "100+60x40"),
        (f'potluck_feature_max_staleness_seconds{{{job},view="users"}}', "600x40"),
        (f'potluck_feature_freshness_seconds{{{job},view="orders"}}', "30x40"),
        (f'potluck_feature_max_staleness_seconds{{{job},view="orders"}}', "600x40"),
        # clicks: reported stale by a monitor run (textfile); the same view from two sources merges
        (f'potluck_feature_view_stale{{{node},view="clicks"}}', "1x40"),
        (f'potluck_feature_view_stale{{{node},view="orders"}}', "0x40"),
        (f'potluck_feature_drift{{{job},view="users",feature="age"}}', "0 0 0 1x40"),
        (f'potluck_feature_drift{{{job},view="users",feature="spend"}}', "0x40"),
        (f'potluck_materialization_failed{{{job},view="users"}}', "0x40"),
        (f'potluck_materialization_failed{{{job},view="orders"}}', "0x5 1x40"),
        # 5% errors: above 1%
        (
            f'potluck_http_requests_total{{{job},endpoint="/get-online-features",method="POST",status="200"}}',
            "0+100x40",
        ),
        (f'potluck_http_requests_total{{{job},endpoint="/get-online-features",method="POST",status="503"}}', "0+5x40"),
        # 90 of 100 requests under 10 ms, the rest under 100 ms: p99 = 0.01 + 0.09 * 9/10 = 91 ms
        (f'potluck_http_request_duration_seconds_bucket{{{job},endpoint="/get-online-features",le="0.01"}}', "0+90x40"),
        (f'potluck_http_request_duration_seconds_bucket{{{job},endpoint="/get-online-features",le="0.1"}}', "0+100x40"),
        (
            f'potluck_http_request_duration_seconds_bucket{{{job},endpoint="/get-online-features",le="+Inf"}}',
            "0+100x40",
        ),
        (f'potluck_monitor_alert_delivery_failed{{{node},channel="slack#0"}}', "1x40"),
        (f'potluck_monitor_alert_delivery_failed{{{node},channel="hook"}}', "0x40"),
    ]
    always = {
        "PotluckMonitorRunMissing": [],
    }
    before = {name: [] for name in ("PotluckFeatureViewStale", "PotluckFeatureDrift", "PotluckMaterializationFailed",
                                    "PotluckServerErrorRate", "PotluckServerLatencyHigh", "PotluckAlertDeliveryFailed")}  # fmt: skip
    at_8m = [{"eval_time": "8m", "alertname": n, "exp_alerts": a} for n, a in {**before, **always}.items()]
    at_25m = [
        {
            "eval_time": "25m",
            "alertname": "PotluckFeatureViewStale",
            "exp_alerts": [_stale("clicks", "1"), _stale("users", "1600")],
        },
        {"eval_time": "18m", "alertname": "PotluckFeatureViewStale", "exp_alerts": [_stale("clicks", "1")]},
        {
            "eval_time": "25m",
            "alertname": "PotluckFeatureDrift",
            "exp_alerts": [
                _alert(
                    "PotluckFeatureDrift",
                    {"severity": "warning", "view": "users", "feature": "age"},
                    "Feature users:age drifted from its baseline",
                    "A drift rule fired in the last potluck monitor run; see potluck monitor show.",
                )
            ],
        },
        {
            "eval_time": "25m",
            "alertname": "PotluckMaterializationFailed",
            "exp_alerts": [
                _alert(
                    "PotluckMaterializationFailed",
                    {"severity": "critical", "view": "orders"},
                    "Materialization of orders failed",
                    "The last materialization run of the view failed; its online rows are not advancing.",
                )
            ],
        },
        {
            "eval_time": "25m",
            "alertname": "PotluckServerErrorRate",
            "exp_alerts": [
                _alert(
                    "PotluckServerErrorRate",
                    {"severity": "critical", "job": "potluck"},
                    "Feature server potluck answers with 5xx errors",
                    "4.762% of requests failed over the last 5m.",
                )
            ],
        },
        {
            "eval_time": "25m",
            "alertname": "PotluckServerLatencyHigh",
            "exp_alerts": [
                _alert(
                    "PotluckServerLatencyHigh",
                    {"severity": "warning", "job": "potluck"},
                    "Feature server potluck is slow to serve online features",
                    "p99 of /get-online-features is 91ms.",
                )
            ],
        },
        {
            "eval_time": "25m",
            "alertname": "PotluckAlertDeliveryFailed",
            "exp_alerts": [
                _alert(
                    "PotluckAlertDeliveryFailed",
                    {"severity": "warning", "channel": "slack#0"},
                    "Potluck could not deliver alerts to channel slack#0",
                    "The last potluck monitor run failed to reach the channel after its retries.",
                )
            ],
        },
    ]
    missing_run = {
        "interval": "5m",
        "input_series": [{"series": f"potluck_monitor_last_run_timestamp_seconds{{{node}}}", "values": "0x40"}],
        "alert_rule_test": [
            {"eval_time": "2h", "alertname": "PotluckMonitorRunMissing", "exp_alerts": []},
            {
                "eval_time": "3h",
                "alertname": "PotluckMonitorRunMissing",
                "exp_alerts": [
                    _alert(
                        "PotluckMonitorRunMissing",
                        {"severity": "warning", "job": "node"},
                        "potluck monitor run has not reported for 3h 0m 0s",
                        "The scheduled drift and freshness check is not running.",
                    )
                ],
            },
        ],
    }
    main = {
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in series],
        "alert_rule_test": at_8m + at_25m,
    }
    return [main, missing_run]


def test_promtool_test_rules(tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(rules_yaml())
    spec = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": _tests()}
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    done = _promtool("test", "rules", str(tmp_path / "tests.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_notices_a_broken_expectation(tmp_path: Path) -> None:
    """The rule tests can fail: a wrong expected label is reported by promtool."""
    (tmp_path / "rules.yml").write_text(rules_yaml())
    tests = _tests()
    tests[0]["alert_rule_test"][-1]["exp_alerts"][0]["exp_labels"]["channel"] = "hook"
    spec = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": tests}
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    assert _promtool("test", "rules", str(tmp_path / "tests.yml")).returncode != 0


def test_every_rule_has_severity_and_summary() -> None:
    for rule in rules()["groups"][0]["rules"]:
        assert rule["labels"]["severity"] in {"critical", "warning"}
        assert rule["annotations"]["summary"]
        assert rule["for"] == "10m"


def test_cli_writes_rules_and_dashboard(tmp_path: Path) -> None:
    import json
    import sys

    from potluck.monitoring.grafana import dashboard

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "potluck.cli", "monitor", *args], capture_output=True, text=True, check=False
        )

    rules_file = tmp_path / "rules.yml"
    done = cli("prometheus-rules", "-o", str(rules_file), "--for", "2m", "--rate-window", "1m", "--latency-p99", "200ms",
               "--error-ratio", "0.05", "--max-staleness", "6h")  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected = RuleOptions(
        pending=timedelta(minutes=2), rate_window="1m", error_ratio=0.05, latency_p99_seconds=0.2,
        max_staleness=timedelta(hours=6),
    )  # fmt: skip
    assert yaml.safe_load(rules_file.read_text()) == rules(expected)
    assert _promtool("check", "rules", str(rules_file)).returncode == 0
    board = cli("grafana-dashboard")
    assert board.returncode == 0
    assert json.loads(board.stdout) == dashboard()
    bad = cli("prometheus-rules", "--latency-p99", "fast")
    assert bad.returncode == 2
    assert "'fast' is not a duration" in bad.stderr
    missing = cli("grafana-dashboard", "-o", str(tmp_path / "nope" / "d.json"))
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr
