"""A view's materialization watermark and freshness: how far its online rows are known to reach.

A recorded interval claims the online store holds the view's latest rows up to its `end`. That
claim can never reach past the moment it was recorded (no row could be written from the future),
so every interval counts up to `min(end, recorded_at)`. The watermark of a view is the largest such
point; freshness is the time since it. Ends more than the allowed clock skew past now are refused
before anything is written, so a typo such as 9999-12-31 cannot stop incremental runs for good.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from potluck.definitions.errors import RetrievalError
from potluck.definitions.feature_view import FeatureView, MaterializedInterval
from potluck.registry.sql import MaterializationInterval

V = TypeVar("V", bound=FeatureView)

DEFAULT_MAX_CLOCK_SKEW = timedelta(minutes=5)


def reached(interval: MaterializationInterval) -> datetime:
    """How far an interval's rows are known to reach: its end, capped at when it was recorded."""
    return min(interval.end, interval.recorded_at)


def check_end(end: datetime, now: datetime, max_clock_skew: timedelta) -> None:
    """Refuse a materialization end further in the future than the allowed clock skew."""
    if end > now + max_clock_skew:
        raise RetrievalError(
            f"materialize: end {end.isoformat()} is more than {max_clock_skew} after now ({now.isoformat()}); "
            "materialize up to now (rows cannot be newer), or raise "
            "materialization.max_clock_skew_seconds in feature_store.yaml if this machine's clock is behind"
        )


def watermark(intervals: Iterable[MaterializationInterval]) -> datetime | None:
    """Where the next incremental run of a view continues from (None: never materialized)."""
    points = [reached(i) for i in intervals]
    return max(points) if points else None


@dataclass(frozen=True)
class ViewFreshness:
    feature_view: str
    start: datetime | None  # start of the interval that set the watermark
    end: datetime | None  # the end that interval asked for
    materialized_until: datetime | None  # the watermark
    age: timedelta | None  # now - watermark; None when never materialized


def view_freshness(
    views: Iterable[str], intervals: Iterable[MaterializationInterval], now: datetime
) -> list[ViewFreshness]:
    """Freshness of each of `views` from the recorded intervals."""
    best: dict[str, MaterializationInterval] = {}
    for interval in intervals:
        held = best.get(interval.feature_view)
        if held is None or reached(interval) >= reached(held):
            best[interval.feature_view] = interval
    out = []
    for name in views:
        found = best.get(name)
        if found is None:
            out.append(ViewFreshness(name, None, None, None, None))
            continue
        until = reached(found)
        out.append(ViewFreshness(name, found.start, found.end, until, max(now - until, timedelta(0))))
    return out


UNBOUNDED_START = datetime.min.replace(tzinfo=UTC)  # a run that read every row up to its end


def with_intervals(views: Sequence[V], intervals: Iterable[MaterializationInterval]) -> list[V]:
    """Copies of `views`, each with its recorded runs as `materialization_intervals`, oldest first.

    A run without a start (the first incremental run of a view without ttl) starts at `UNBOUNDED_START`.
    """
    by_view: dict[str, list[MaterializedInterval]] = {}
    for i in intervals:
        start = UNBOUNDED_START if i.start is None else i.start.astimezone(UTC)
        by_view.setdefault(i.feature_view, []).append(MaterializedInterval(start, i.end.astimezone(UTC)))
    out = []
    for view in views:
        clone = copy.copy(view)  # the registry's cached object stays as it is
        clone.materialization_intervals = by_view.get(view.name, [])
        out.append(clone)
    return out
