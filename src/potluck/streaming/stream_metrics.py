"""What the stream worker reports: Prometheus metrics (on `--metrics-port`) and its progress line.

The worker calls these hooks; it never touches the metrics library itself. The hooks only update
plain numbers under a lock (a latency batch is bucketed with numpy in one pass), and the
Prometheus families are built at scrape time from them, in a registry of this object's own, so
several workers (or tests) in one process never share a series. prometheus-client is needed only
to export them (`registry`, `render`, `serve_metrics`); the progress line and `summary()` work
without it.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from potluck.streaming.metrics_server import MetricsServer, prometheus_module, serve_metrics

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["MetricsServer", "ProgressSnapshot", "StreamMetrics", "serve_metrics"]

log = logging.getLogger("potluck.streaming")

# Event-to-online latency, 1 ms to 60 s.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_MESSAGES_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000)
BATCH_SECONDS_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
RATE_WINDOW_SECONDS = 10.0  # events/s of the progress line: over the last this many seconds


class _Buckets:
    """One histogram series: counts per bucket (the last one is +Inf, not cumulative), sum and count."""

    __slots__ = ("bounds", "bounds_list", "counts", "total")

    def __init__(self, bounds: NDArray[np.float64]) -> None:
        self.bounds = bounds
        self.bounds_list: list[float] = bounds.tolist()
        self.counts = np.zeros(len(bounds) + 1, dtype=np.int64)
        self.total = 0.0

    def add(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds_list, value)] += 1
        self.total += value

    def add_many(self, values: NDArray[np.float64]) -> None:
        # Bucket i holds bounds[i-1] < v <= bounds[i] (Prometheus' `le`), which is searchsorted's "left" side.
        where = np.searchsorted(self.bounds, values, side="left")
        self.counts += np.bincount(where, minlength=len(self.counts))
        self.total += float(values.sum())

    def cumulative(self) -> list[tuple[str, float]]:
        running = np.cumsum(self.counts)
        # 0.005, 1.0, 60.0: the `le` values as prometheus_client writes them.
        labels = [repr(b) for b in self.bounds_list] + ["+Inf"]
        return list(zip(labels, running.astype(float).tolist(), strict=True))


@dataclass(frozen=True, slots=True)
class ProgressSnapshot:
    """What the progress line shows, read consistently at one instant."""

    events_per_second: float
    events_consumed: int
    rows_written: int
    lag: int
    dead_letters: int
    late: int
    paused: dict[str, str]  # source -> reason, while paused
    seconds_since_commit: float | None  # the source committed longest ago; None before any commit
    batches: int


@dataclass
class _State:
    consumed: dict[tuple[str, str], int] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)
    lag: dict[tuple[str, str], int] = field(default_factory=dict)
    latency: dict[str, _Buckets] = field(default_factory=dict)
    batch_messages: dict[str, _Buckets] = field(default_factory=dict)
    batch_seconds: dict[str, _Buckets] = field(default_factory=dict)
    late: dict[str, int] = field(default_factory=dict)
    dead: dict[str, int] = field(default_factory=dict)
    last_commit: dict[str, float] = field(default_factory=dict)
    paused: dict[str, str | None] = field(default_factory=dict)  # None: known source, not paused
    recent: deque[tuple[float, int]] = field(default_factory=deque)  # (monotonic time, events) for the rate
    batches: int = 0


class StreamMetrics:
    """The worker's counters, gauges and histograms, per view and per partition."""

    def __init__(
        self,
        *,
        latency_buckets: Sequence[float] = LATENCY_BUCKETS,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._latency_bounds = np.asarray(sorted(latency_buckets), dtype=np.float64)
        self._messages_bounds = np.asarray(BATCH_MESSAGES_BUCKETS, dtype=np.float64)
        self._seconds_bounds = np.asarray(BATCH_SECONDS_BUCKETS, dtype=np.float64)
        self._clock = clock
        self._monotonic = monotonic
        self._started = monotonic()
        self._lock = threading.Lock()
        self._s = _State()
        self._registry: CollectorRegistry | None = None

    # The worker's hooks.

    def consumed(self, source: str, partition: str, messages: int) -> None:
        """Messages read from a partition (good and bad)."""
        now = self._monotonic()
        with self._lock:
            key = (source, partition)
            self._s.consumed[key] = self._s.consumed.get(key, 0) + messages
            self._s.paused.setdefault(source, None)
            recent = self._s.recent
            recent.append((now, messages))
            while recent and recent[0][0] < now - RATE_WINDOW_SECONDS:
                recent.popleft()

    def written(self, view: str, rows: int) -> None:
        """Rows written online for a view."""
        with self._lock:
            self._s.written[view] = self._s.written.get(view, 0) + rows

    def batch(self, source: str, messages: int, seconds: float) -> None:
        """One batch handled end to end: its size and how long it took."""
        with self._lock:
            self._series(self._s.batch_messages, source, self._messages_bounds).add(float(messages))
            self._series(self._s.batch_seconds, source, self._seconds_bounds).add(float(seconds))
            self._s.batches += 1

    def latency(self, view: str, seconds: Sequence[float] | NDArray[np.float64]) -> None:
        """Event-to-online latencies: now minus each event's time, once its write is durable.

        A numpy array is used as it is; a list is converted once (no Python loop per value).
        """
        values = np.asarray(seconds, dtype=np.float64)
        if values.size == 0:
            return
        with self._lock:
            self._series(self._s.latency, view, self._latency_bounds).add_many(values.ravel())

    def late(self, view: str, events: int) -> None:
        """Events dropped as late (behind the view's watermark, or older than the stored value)."""
        with self._lock:
            self._s.late[view] = self._s.late.get(view, 0) + events

    def dead_lettered(self, source: str, messages: int) -> None:
        """Messages sent to the dead-letter file or topic."""
        with self._lock:
            self._s.dead[source] = self._s.dead.get(source, 0) + messages

    def committed(self, source: str, positions: Mapping[str, int], lag: Mapping[str, int]) -> None:
        """Positions committed (the last commit time is now) and the lag per partition after it.

        A commit also ends a pause of the source (both the broker and the online store answered).
        """
        now = self._clock()
        with self._lock:
            self._s.last_commit[source] = now
            for partition, behind in lag.items():
                self._s.lag[(source, partition)] = int(behind)
            was = self._s.paused.get(source)
            self._s.paused[source] = None
        if was is not None:
            log.warning("stream source '%s' resumed", source)

    def paused(self, source: str, reason: str) -> None:
        """Consumption paused: the broker or the online store is unavailable (retrying)."""
        with self._lock:
            was = self._s.paused.get(source)
            self._s.paused[source] = reason
        if was != reason:  # one line per pause (or change of cause), not one per retry
            log.warning("stream source '%s' paused: %s (retrying)", source, reason)

    def resumed(self, source: str) -> None:
        """Consumption of a paused source goes on (`committed` ends a pause as well)."""
        with self._lock:
            was = self._s.paused.get(source)
            self._s.paused[source] = None
        if was is not None:
            log.warning("stream source '%s' resumed", source)

    # Reading them back.

    def snapshot(self) -> ProgressSnapshot:
        """The figures of the progress line."""
        now, wall = self._monotonic(), self._clock()
        with self._lock:
            s = self._s
            recent = sum(n for t, n in s.recent if t >= now - RATE_WINDOW_SECONDS)
            span = min(RATE_WINDOW_SECONDS, max(now - self._started, 1.0))
            oldest_commit = min(s.last_commit.values()) if s.last_commit else None
            return ProgressSnapshot(
                events_per_second=recent / span,
                events_consumed=sum(s.consumed.values()),
                rows_written=sum(s.written.values()),
                lag=sum(s.lag.values()),
                dead_letters=sum(s.dead.values()),
                late=sum(s.late.values()),
                paused={src: why for src, why in s.paused.items() if why is not None},
                seconds_since_commit=None if oldest_commit is None else max(0.0, wall - oldest_commit),
                batches=s.batches,
            )

    def summary(self) -> dict[str, Any]:
        """Totals for the worker to return (and print) at exit."""
        with self._lock:
            s = self._s
            return {
                "events_consumed": sum(s.consumed.values()),
                "rows_written": dict(sorted(s.written.items())),
                "dead_letters": sum(s.dead.values()),
                "late": sum(s.late.values()),
                "batches": s.batches,
            }

    @property
    def registry(self) -> CollectorRegistry:
        """A Prometheus registry of these metrics only (made on first use)."""
        if self._registry is None:
            prometheus = prometheus_module()
            registry = prometheus.CollectorRegistry(auto_describe=False)
            registry.register(_Collector(self))
            self._registry = registry
        return self._registry

    def render(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return bytes(prometheus_module().generate_latest(self.registry))

    def families(self) -> Iterator[Any]:
        """The Prometheus metric families, built from the current figures."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        with self._lock:
            s = self._s
            consumed = dict(s.consumed)
            written, late, dead = dict(s.written), dict(s.late), dict(s.dead)
            lag, last_commit = dict(s.lag), dict(s.last_commit)
            paused = {src: float(why is not None) for src, why in s.paused.items()}
            histograms = [
                (name, doc, label, {k: (b.cumulative(), b.total) for k, b in series.items()})
                for name, doc, label, series in (
                    ("potluck_stream_event_to_online_seconds",
                     "Seconds from an event's time to its durable write online", "view", s.latency),
                    ("potluck_stream_batch_messages", "Messages per batch", "source", s.batch_messages),
                    ("potluck_stream_batch_seconds", "Seconds to handle a batch end to end", "source",
                     s.batch_seconds),
                )
            ]  # fmt: skip

        def counter(name: str, doc: str, labels: list[str], values: Mapping[Any, int]) -> Any:
            family = CounterMetricFamily(name, doc, labels=labels)
            for key, value in sorted(values.items()):
                family.add_metric(list(key) if isinstance(key, tuple) else [key], float(value))
            return family

        def gauge(name: str, doc: str, labels: list[str], values: Mapping[Any, float]) -> Any:
            family = GaugeMetricFamily(name, doc, labels=labels)
            for key, value in sorted(values.items()):
                family.add_metric(list(key) if isinstance(key, tuple) else [key], float(value))
            return family

        yield counter(
            "potluck_stream_events_consumed",
            "Messages read from the stream (good and bad)",
            ["source", "partition"],
            consumed,
        )
        yield counter("potluck_stream_rows_written", "Rows written online", ["view"], written)
        yield gauge(
            "potluck_stream_consumer_lag",
            "Messages after the committed position, per partition (at the last commit)",
            ["source", "partition"],
            lag,
        )
        for name, doc, label, series in histograms:
            family = HistogramMetricFamily(name, doc, labels=[label])
            for key, (buckets, total) in sorted(series.items()):
                family.add_metric([key], buckets, total)
            yield family
        yield counter(
            "potluck_stream_late_events",
            "Events dropped as late (behind the watermark or older than the stored value)",
            ["view"],
            late,
        )
        yield counter("potluck_stream_dead_letters", "Messages sent to the dead-letter sink", ["source"], dead)
        yield gauge(
            "potluck_stream_last_commit_timestamp_seconds",
            "Unix time of the source's last committed position",
            ["source"],
            last_commit,
        )
        yield gauge("potluck_stream_paused", "1 while consumption of the source is paused", ["source"], paused)

    @staticmethod
    def _series(table: dict[str, _Buckets], key: str, bounds: NDArray[np.float64]) -> _Buckets:
        series = table.get(key)
        if series is None:
            series = table[key] = _Buckets(bounds)
        return series


class _Collector:
    """Hands a StreamMetrics' families to prometheus_client at scrape time."""

    def __init__(self, metrics: StreamMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Any]:
        return self._metrics.families()
