"""Monitoring results as Prometheus gauges: the one list of metric names.

The feature server's /metrics and `potluck monitor run --textfile` both export these, so the alert
rules and the dashboard (`monitoring/prometheus.py`, `monitoring/grafana.py`) read the same series
from either source.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

FRESHNESS = "potluck_feature_freshness_seconds"  # exported by the server since before monitoring
MAX_STALENESS = "potluck_feature_max_staleness_seconds"
STALE = "potluck_feature_view_stale"
DRIFT = "potluck_feature_drift"
DRIFT_PSI = "potluck_feature_drift_psi"
DRIFT_KS_STATISTIC = "potluck_feature_drift_ks_statistic"
DRIFT_KS_P_VALUE = "potluck_feature_drift_ks_p_value"
DRIFT_JS_DISTANCE = "potluck_feature_drift_js_distance"
DRIFT_CHECKED = "potluck_feature_drift_checked_timestamp_seconds"
MATERIALIZATION_FAILED = "potluck_materialization_failed"
MATERIALIZATION_FAILED_AT = "potluck_materialization_last_failure_timestamp_seconds"
LAST_RUN = "potluck_monitor_last_run_timestamp_seconds"
DELIVERY_FAILED = "potluck_monitor_alert_delivery_failed"
SKEW = "potluck_feature_skew"
SKEW_PSI = "potluck_feature_skew_psi"
SKEW_KS_STATISTIC = "potluck_feature_skew_ks_statistic"
SKEW_MISMATCH_RATE = "potluck_feature_skew_mismatch_rate"  # 1 - match rate: every kind of inconsistency
SKEW_MISSING_ONLINE_RATE = "potluck_feature_skew_missing_online_rate"
SKEW_MISSING_OFFLINE_RATE = "potluck_feature_skew_missing_offline_rate"
SKEW_CHECKED = "potluck_feature_skew_checked_timestamp_seconds"
# the server's own series, used by rules and the dashboard
HTTP_REQUESTS = "potluck_http_requests_total"
HTTP_DURATION = "potluck_http_request_duration_seconds"
ONLINE_READ = "potluck_online_read_duration_seconds"

_DRIFT_VALUES = (
    (DRIFT_PSI, "psi", "Population stability index of the feature against its baseline"),
    (DRIFT_KS_STATISTIC, "ks_statistic", "Two-sample Kolmogorov-Smirnov statistic against the baseline"),
    (DRIFT_KS_P_VALUE, "ks_p_value", "Kolmogorov-Smirnov p-value against the baseline"),
    (DRIFT_JS_DISTANCE, "js_distance", "Jensen-Shannon distance against the baseline"),
)


@dataclass(frozen=True)
class DriftGauge:
    view: str
    feature: str
    drift: bool
    psi: float | None = None
    ks_statistic: float | None = None
    ks_p_value: float | None = None
    js_distance: float | None = None

    @classmethod
    def from_report(cls, row: Mapping[str, Any]) -> DriftGauge:
        """From one entry of `monitor run -o json`'s `features`."""

        def num(key: str) -> float | None:
            value = row.get(key)
            return None if value is None else float(value)

        return cls(
            str(row["view"]),
            str(row["feature"]),
            bool(row.get("drift")),
            num("psi"),
            num("ks_statistic"),
            num("ks_p_value"),
            num("js_distance"),
        )


_SKEW_VALUES = (
    (SKEW_PSI, "psi", "Population stability index of served values against the training data"),
    (SKEW_KS_STATISTIC, "ks_statistic", "Kolmogorov-Smirnov statistic of served values against the training data"),
    (SKEW_MISMATCH_RATE, "inconsistent_rate", "Share of logged rows whose served value differs from the offline one"),
    (
        SKEW_MISSING_ONLINE_RATE,
        "missing_online_rate",
        "Share of logged rows served without a value the offline store has",
    ),
    (SKEW_MISSING_OFFLINE_RATE, "missing_offline_rate", "Share of logged rows served a value the offline store lacks"),
)


@dataclass(frozen=True)
class SkewGauge:
    feature_service: str
    view: str
    feature: str
    skew: bool
    psi: float | None = None
    ks_statistic: float | None = None
    inconsistent_rate: float | None = None
    missing_online_rate: float | None = None
    missing_offline_rate: float | None = None

    @classmethod
    def from_report(cls, service: str, row: Mapping[str, Any]) -> SkewGauge:
        """From one entry of `potluck skew -o json`'s `features`."""

        def num(key: str) -> float | None:
            value = row.get(key)
            return None if value is None else float(value)

        match = num("match_rate")
        return cls(
            service,
            str(row["view"]),
            str(row["feature"]),
            bool(row.get("skew")),
            num("psi"),
            num("ks_statistic"),
            None if match is None else 1.0 - match,
            num("missing_online_rate"),
            num("missing_offline_rate"),
        )


@dataclass
class MonitorSnapshot:
    """What the gauges show; empty fields export nothing."""

    drift: list[DriftGauge] = field(default_factory=list)
    drift_checked: dict[str, float] = field(default_factory=dict)  # view -> unix time of its last check
    freshness: dict[str, float | None] = field(default_factory=dict)  # view -> seconds (None: never)
    max_staleness: dict[str, float] = field(default_factory=dict)  # view -> seconds
    stale: dict[str, bool] = field(default_factory=dict)
    materialization_views: list[str] = field(default_factory=list)  # views shown as 0 unless failed
    materialization_failed: dict[str, float] = field(default_factory=dict)  # view -> unix time
    last_run: float | None = None
    delivery_failed: dict[str, bool] = field(default_factory=dict)  # channel -> failed in the last run
    skew: list[SkewGauge] = field(default_factory=list)
    skew_checked: dict[str, float] = field(default_factory=dict)  # feature service -> unix time of its report


def families(snapshot: MonitorSnapshot, *, with_freshness: bool = True) -> Iterator[Any]:
    """The snapshot as prometheus_client metric families (freshness left out where the server has it)."""
    from prometheus_client.core import GaugeMetricFamily

    def gauge(name: str, doc: str, labels: list[str], values: Mapping[Any, float]) -> GaugeMetricFamily:
        family = GaugeMetricFamily(name, doc, labels=labels)
        for key, value in sorted(values.items()):
            family.add_metric(list(key), value)
        return family

    if with_freshness and snapshot.freshness:
        fresh = {(v,): s for v, s in snapshot.freshness.items() if s is not None}
        yield gauge(
            FRESHNESS, "Seconds since the end of the last materialized interval, per feature view", ["view"], fresh
        )
    if snapshot.max_staleness:
        yield gauge(
            MAX_STALENESS,
            "The staleness limit of a feature view (tag potluck.max_staleness or monitoring.freshness)",
            ["view"],
            {(v,): s for v, s in snapshot.max_staleness.items()},
        )
    if snapshot.stale:
        yield gauge(
            STALE,
            "1 when the view is stale or never materialized",
            ["view"],
            {(v,): float(s) for v, s in snapshot.stale.items()},
        )
    if snapshot.drift:
        labels = ["view", "feature"]
        yield gauge(
            DRIFT,
            "1 when any drift rule fired for the feature",
            labels,
            {(d.view, d.feature): float(d.drift) for d in snapshot.drift},
        )
        for name, attr, doc in _DRIFT_VALUES:
            metric = {(d.view, d.feature): getattr(d, attr) for d in snapshot.drift if getattr(d, attr) is not None}
            yield gauge(name, doc, labels, metric)
    if snapshot.drift_checked:
        yield gauge(
            DRIFT_CHECKED,
            "Unix time of the last drift check of the view",
            ["view"],
            {(v,): t for v, t in snapshot.drift_checked.items()},
        )
    if snapshot.materialization_views or snapshot.materialization_failed:
        views = set(snapshot.materialization_views) | set(snapshot.materialization_failed)
        yield gauge(
            MATERIALIZATION_FAILED,
            "1 when the view's last materialization run failed",
            ["view"],
            {(v,): float(v in snapshot.materialization_failed) for v in views},
        )
        yield gauge(
            MATERIALIZATION_FAILED_AT,
            "Unix time of the view's last failed materialization run (while not followed by a success)",
            ["view"],
            {(v,): t for v, t in snapshot.materialization_failed.items()},
        )
    if snapshot.skew:
        labels = ["feature_service", "view", "feature"]
        yield gauge(
            SKEW,
            "1 when the feature's served values are skewed against its training data",
            labels,
            {(g.feature_service, g.view, g.feature): float(g.skew) for g in snapshot.skew},
        )
        for name, attr, doc in _SKEW_VALUES:
            per_feature = {
                (g.feature_service, g.view, g.feature): getattr(g, attr)
                for g in snapshot.skew
                if getattr(g, attr) is not None
            }
            yield gauge(name, doc, labels, per_feature)
    if snapshot.skew_checked:
        yield gauge(
            SKEW_CHECKED,
            "Unix time of the last skew report of the feature service",
            ["feature_service"],
            {(s,): t for s, t in snapshot.skew_checked.items()},
        )
    if snapshot.last_run is not None:
        yield gauge(LAST_RUN, "Unix time of the last potluck monitor run", [], {(): snapshot.last_run})
    if snapshot.delivery_failed:
        yield gauge(
            DELIVERY_FAILED,
            "1 when the last run could not deliver an alert to the channel",
            ["channel"],
            {(c,): float(f) for c, f in snapshot.delivery_failed.items()},
        )


def write_textfile(path: str, snapshot: MonitorSnapshot) -> None:
    """The node-exporter textfile: written to a temporary file beside `path`, then renamed over it."""
    from prometheus_client import CollectorRegistry, write_to_textfile
    from prometheus_client.registry import Collector

    class _Snapshot(Collector):
        def collect(self) -> Iterator[Any]:
            return families(snapshot)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot())
    write_to_textfile(path, registry)
