"""Prometheus alert rules over the series Potluck exports (`monitoring/gauges.py`).

Every expression aggregates `by` the labels it reports, so the same rules work whether a series comes
from the feature server's /metrics, from node-exporter's textfile collector, or both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from potluck.monitoring import gauges as g

ONLINE_ENDPOINT = "/get-online-features"


@dataclass(frozen=True)
class RuleOptions:
    pending: timedelta = timedelta(minutes=10)  # how long a condition holds before it fires (`for`)
    rate_window: str = "5m"
    error_ratio: float = 0.01  # share of 5xx answers
    latency_p99_seconds: float = 0.05  # p99 of /get-online-features
    max_staleness: timedelta | None = None  # for views without a limit of their own; None: only views with one
    monitor_run_every: timedelta = timedelta(hours=1)  # the scheduled `monitor run`: missing for 2x this fires


def prom_duration(value: timedelta) -> str:
    """A duration in Prometheus' notation (whole seconds, at least 1s)."""
    seconds = max(1, round(value.total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _stale_expr(options: RuleOptions) -> str:
    fresh = f"max by (view) ({g.FRESHNESS})"
    limit = f"max by (view) ({g.MAX_STALENESS})"
    expr = f"({fresh} > {limit}) or (max by (view) ({g.STALE}) > 0)"
    if options.max_staleness is not None:
        expr += f" or ({fresh} > {options.max_staleness.total_seconds():g} unless {limit})"
    return expr


def rules(options: RuleOptions | None = None) -> dict[str, Any]:
    """The rules file, as a mapping ready for YAML."""
    o = options or RuleOptions()
    window = o.rate_window
    requests = g.HTTP_REQUESTS
    errors = f'sum by (job) (rate({requests}{{status=~"5.."}}[{window}])) / sum by (job) (rate({requests}[{window}]))'
    latency = (
        f"histogram_quantile(0.99, sum by (job, le) "
        f'(rate({g.HTTP_DURATION}_bucket{{endpoint="{ONLINE_ENDPOINT}"}}[{window}])))'
    )
    run_gap = 2 * o.monitor_run_every.total_seconds()
    alerts = [
        {
            "alert": "PotluckFeatureViewStale",
            "expr": _stale_expr(o),
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": "Feature view {{ $labels.view }} is stale",
                "description": "Its online rows are older than its staleness limit "
                "(value: {{ $value }}; seconds since the last materialization, or 1 when never materialized).",
            },
        },
        {
            "alert": "PotluckFeatureDrift",
            "expr": f"max by (view, feature) ({g.DRIFT}) > 0",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "Feature {{ $labels.view }}:{{ $labels.feature }} drifted from its baseline",
                "description": "A drift rule fired in the last potluck monitor run; see potluck monitor show.",
            },
        },
        {
            "alert": "PotluckMaterializationFailed",
            "expr": f"max by (view) ({g.MATERIALIZATION_FAILED}) > 0",
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": "Materialization of {{ $labels.view }} failed",
                "description": "The last materialization run of the view failed; its online rows are not advancing.",
            },
        },
        {
            "alert": "PotluckServerErrorRate",
            "expr": f"({errors}) > {o.error_ratio:g}",
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": "Feature server {{ $labels.job }} answers with 5xx errors",
                "description": "{{ $value | humanizePercentage }} of requests failed over the last " + window + ".",
            },
        },
        {
            "alert": "PotluckServerLatencyHigh",
            "expr": f"({latency}) > {o.latency_p99_seconds:g}",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "Feature server {{ $labels.job }} is slow to serve online features",
                "description": "p99 of " + ONLINE_ENDPOINT + " is {{ $value | humanizeDuration }}.",
            },
        },
        {
            "alert": "PotluckMonitorRunMissing",
            "expr": f"(time() - max by (job) ({g.LAST_RUN})) > {run_gap:g}",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "potluck monitor run has not reported for {{ $value | humanizeDuration }}",
                "description": "The scheduled drift and freshness check is not running.",
            },
        },
        {
            "alert": "PotluckAlertDeliveryFailed",
            "expr": f"max by (channel) ({g.DELIVERY_FAILED}) > 0",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "Potluck could not deliver alerts to channel {{ $labels.channel }}",
                "description": "The last potluck monitor run failed to reach the channel after its retries.",
            },
        },
    ]
    if o.pending > timedelta(0):  # `for` right after `expr`, as rules are usually written
        alerts = [{"alert": a["alert"], "expr": a["expr"], "for": prom_duration(o.pending), **a} for a in alerts]
    return {"groups": [{"name": "potluck", "rules": alerts}]}


def rules_yaml(options: RuleOptions | None = None) -> str:
    import yaml

    return str(yaml.safe_dump(rules(options), sort_keys=False, width=1000))
