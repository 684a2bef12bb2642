"""The stream worker's progress line on a terminal: throughput, writes, lag, problems."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from potluck.streaming.stream_metrics import ProgressSnapshot, StreamMetrics

REFRESH_PER_SECOND = 2


def progress_text(snapshot: ProgressSnapshot) -> str:
    """One line of plain text (no markup) describing `snapshot`."""
    since = snapshot.seconds_since_commit
    parts = [
        f"{snapshot.events_per_second:,.0f} events/s",
        f"{snapshot.events_consumed:,} consumed",
        f"{snapshot.rows_written:,} rows written",
        f"lag {snapshot.lag:,}",
        f"{snapshot.dead_letters:,} dead letters",
        f"{snapshot.late:,} late",
        "no commit yet" if since is None else f"last commit {since:.1f}s ago",
    ]
    if snapshot.paused:
        parts.append("PAUSED " + "; ".join(f"{src}: {why}" for src, why in sorted(snapshot.paused.items())))
    return " | ".join(parts)


class ProgressLine:
    """A live line on stderr, redrawn at most twice a second, only when stderr is a terminal.

    `start()`/`stop()` or a `with` block; elsewhere (a pipe, a log file, a service) it prints nothing.
    """

    def __init__(self, metrics: StreamMetrics, console: Any = None) -> None:
        from rich.console import Console

        self._metrics = metrics
        self._console = console if console is not None else Console(stderr=True)
        self._live: Any = None

    @property
    def enabled(self) -> bool:
        return bool(self._console.is_terminal)

    def __rich__(self) -> Any:
        from rich.text import Text

        snapshot = self._metrics.snapshot()
        return Text(progress_text(snapshot), style="yellow" if snapshot.paused else "")

    def start(self) -> None:
        if self._live is not None or not self.enabled:
            return
        from rich.live import Live

        self._live = Live(
            self, console=self._console, refresh_per_second=REFRESH_PER_SECOND, transient=False, redirect_stdout=False
        )
        self._live.start()

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def __enter__(self) -> ProgressLine:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
