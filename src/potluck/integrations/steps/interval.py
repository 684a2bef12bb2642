"""The interval a pipeline run covers (an orchestrator's data interval), in UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from potluck.definitions.errors import ConfigError


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class Interval:
    """Events with `start <= event_ts < end` belong to the run (materialization includes `end`, as
    `materialize(start, end)` does)."""

    start: datetime
    end: datetime

    @classmethod
    def of(cls, start: Any, end: Any) -> Interval:
        """From datetimes (naive ones are UTC) or anything with `isoformat()` (pendulum times)."""
        if not isinstance(start, datetime) or not isinstance(end, datetime):
            raise ConfigError(f"the interval needs two datetimes, got {type(start).__name__} and {type(end).__name__}")
        lo, hi = _utc(start), _utc(end)
        if hi < lo:
            raise ConfigError(f"the interval ends ({hi.isoformat()}) before it starts ({lo.isoformat()})")
        return cls(datetime.fromtimestamp(lo.timestamp(), UTC), datetime.fromtimestamp(hi.timestamp(), UTC))

    def widened(self, window: timedelta | None) -> Interval:
        """`[end - window, end)` when a window is given, else the interval itself."""
        return self if window is None else Interval(self.end - window, self.end)

    @property
    def empty(self) -> bool:
        return self.end <= self.start

    def to_json(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}
