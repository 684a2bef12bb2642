"""What the stream worker reports: Prometheus metrics (on `--metrics-port`) and its progress line.

The worker calls these hooks; it never touches the metrics library itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class StreamMetrics:
    """The worker's counters, gauges and histograms, per view and per partition."""

    def consumed(self, source: str, partition: str, messages: int) -> None:
        """Messages read from a partition (good and bad)."""

    def written(self, view: str, rows: int) -> None:
        """Rows written online for a view."""

    def batch(self, source: str, messages: int, seconds: float) -> None:
        """One batch handled end to end: its size and how long it took."""

    def latency(self, view: str, seconds: Sequence[float]) -> None:
        """Event-to-online latencies: now minus each event's time, once its write is durable."""

    def late(self, view: str, events: int) -> None:
        """Events dropped as late (behind the view's watermark, or older than the stored value)."""

    def dead_lettered(self, source: str, messages: int) -> None:
        """Messages sent to the dead-letter file or topic."""

    def committed(self, source: str, positions: Mapping[str, int], lag: Mapping[str, int]) -> None:
        """Positions committed (the last commit time is now) and the lag per partition after it."""

    def paused(self, source: str, reason: str) -> None:
        """Consumption paused: the broker or the online store is unavailable (retrying)."""
