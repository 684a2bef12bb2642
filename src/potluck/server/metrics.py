"""Prometheus metrics of one app, in its own registry (several apps in a process never mix)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from potluck.feature_logs import LogStats
    from potluck.monitoring.gauges import MonitorSnapshot

log = logging.getLogger("potluck.server")

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_ENTITY_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)


class _FreshnessCollector(Collector):
    def __init__(self, freshness: Callable[[], dict[str, float | None]]) -> None:
        self._freshness = freshness

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "potluck_feature_freshness_seconds",
            "Seconds since the end of the last materialized interval, per feature view",
            labels=["view"],
        )
        try:
            values = self._freshness()
        except Exception as err:  # a scrape must not fail because the registry is down
            log.warning("freshness unavailable for /metrics: %s", type(err).__name__)
            values = {}
        for view, seconds in sorted(values.items()):
            if seconds is not None:
                gauge.add_metric([view], float(seconds))
        yield gauge


class _MonitoringCollector(Collector):
    """Drift, staleness limits and failed materializations, read from the registry at scrape time."""

    def __init__(self, snapshot: Callable[[], MonitorSnapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from potluck.monitoring.gauges import families

        try:
            snapshot = self._snapshot()
        except Exception as err:  # a scrape must not fail because the registry is down
            log.warning("monitoring results unavailable for /metrics: %s", type(err).__name__)
            return
        yield from families(snapshot, with_freshness=False)


class _FeatureLogCollector(Collector):
    """The feature logger's counters, read at scrape time (the request path updates plain ints)."""

    def __init__(self, stats: Callable[[], LogStats]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self._stats()
        families = [
            ("potluck_feature_log_rows", "Rows of sampled requests written to the feature log", stats.logged_rows),
            (
                "potluck_feature_log_dropped_rows",
                "Rows of sampled requests not logged (queue full, shutting down or a failed write)",
                stats.dropped_rows,
            ),
            ("potluck_feature_log_flush_errors", "Feature log writes that failed", stats.flush_errors),
        ]
        for name, doc, values in families:
            family = CounterMetricFamily(name, doc, labels=["feature_service"])
            for service, value in sorted(values.items()):
                family.add_metric([service], float(value))
            yield family
        queued = GaugeMetricFamily("potluck_feature_log_queue_rows", "Rows waiting to be written to the feature log")
        queued.add_metric([], float(stats.queued_rows))
        yield queued


class _TileCollector(Collector):
    """Tile updates of aggregation views in this process (`potluck.streaming.tile_feed.COUNTERS`)."""

    def collect(self) -> Iterator[CounterMetricFamily]:
        from potluck.streaming.tile_feed import COUNTERS

        events = CounterMetricFamily(
            "potluck_tile_events",
            "Events given to the tiles of aggregation views, by outcome: applied; late (older than the "
            "longest window plus one hop, dropped); behind_watermark (the batch source has them); "
            "future_dropped (beyond the future events kept per key)",
            labels=["outcome"],
        )
        for outcome in ("applied", "late", "behind_watermark", "future_dropped"):
            events.add_metric([outcome], float(getattr(COUNTERS, outcome)))
        yield events
        replayed = CounterMetricFamily(
            "potluck_tile_replayed_updates", "Entity tile updates skipped because their idempotency key was applied"
        )
        replayed.add_metric([], float(COUNTERS.replayed))
        yield replayed


class ServerMetrics:
    def __init__(
        self,
        freshness: Callable[[], dict[str, float | None]],
        feature_log: Callable[[], LogStats] | None = None,
        monitoring: Callable[[], MonitorSnapshot] | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "potluck_http_requests", "HTTP requests", ["endpoint", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "potluck_http_request_duration_seconds",
            "HTTP request latency",
            ["endpoint", "method", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.online_read = Histogram(
            "potluck_online_read_duration_seconds",
            "Online store read latency (the backend call of /get-online-features)",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.entities = Histogram(
            "potluck_online_request_entities",
            "Entity rows per online request",
            buckets=_ENTITY_BUCKETS,
            registry=self.registry,
        )
        self.statuses = Counter(
            "potluck_online_feature_statuses",
            "Feature values served, by feature view and status",
            ["view", "status"],
            registry=self.registry,
        )
        self.pushed_rows = Counter("potluck_pushed_rows", "Rows pushed", ["push_source"], registry=self.registry)
        self.written_rows = Counter(
            "potluck_written_rows", "Rows written by /write-to-online-store", ["view"], registry=self.registry
        )
        self.registry.register(_FreshnessCollector(freshness))
        self.registry.register(_TileCollector())
        if feature_log is not None:
            self.registry.register(_FeatureLogCollector(feature_log))
        if monitoring is not None:
            self.registry.register(_MonitoringCollector(monitoring))
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._status_children: dict[tuple[str, str], Any] = {}

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        key = (endpoint, method, str(status))
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(*key), self.latency.labels(*key))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_statuses(self, views: Sequence[str | None], statuses: Sequence[Sequence[str]]) -> None:
        """Count served statuses per feature view; columns without a view (join keys) are skipped."""
        # The features of one view usually share one status list: count each distinct list once.
        columns: dict[tuple[str, int], tuple[Sequence[str], int]] = {}
        for view, column in zip(views, statuses, strict=True):
            if view is not None:
                seen = columns.get((view, id(column)))
                columns[(view, id(column))] = (column, seen[1] + 1 if seen else 1)
        children = self._status_children
        for (view, _), (column, times) in columns.items():
            present = column.count("PRESENT")
            counts = {"PRESENT": present}
            if present != len(column):
                counts["NOT_FOUND"] = column.count("NOT_FOUND")
                counts["OUTSIDE_MAX_AGE"] = column.count("OUTSIDE_MAX_AGE")
                counts["NULL_VALUE"] = len(column) - present - counts["NOT_FOUND"] - counts["OUTSIDE_MAX_AGE"]
            for status, n in counts.items():
                if n:
                    child = children.get((view, status))
                    if child is None:
                        child = children[(view, status)] = self.statuses.labels(view, status)
                    child.inc(n * times)

    def observe_names(self, feature_names: Sequence[str], statuses: Sequence[Sequence[str]], skip: int) -> None:
        """As `observe_statuses`, taking the view from 'view__feature' names; the first `skip` are keys."""
        views: list[str | None] = [None] * skip + [_view_of(n) for n in feature_names[skip:]]
        self.observe_statuses(views, statuses)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _view_of(feature_name: str) -> str:
    for sep in ("__", ":"):
        if sep in feature_name:
            return feature_name.split(sep, 1)[0]
    return "_unqualified"
