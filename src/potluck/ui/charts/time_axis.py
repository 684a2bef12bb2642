"""Ticks of a time axis: round moments a whole step apart, labelled as precisely as the step needs.

The step is the smallest of a fixed ladder (1 s ... 1 year) that gives at most `most` ticks over the
span; the label format follows it (time with seconds, date and time, date), so no two ticks read the
same. A span shorter than one step still gets its ends, labelled to the second, duplicates dropped.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

_MINUTE, _HOUR, _DAY = 60, 3600, 86400
STEPS = (
    1, 2, 5, 10, 15, 30,
    _MINUTE, 2 * _MINUTE, 5 * _MINUTE, 10 * _MINUTE, 15 * _MINUTE, 30 * _MINUTE,
    _HOUR, 2 * _HOUR, 3 * _HOUR, 6 * _HOUR, 12 * _HOUR,
    _DAY, 2 * _DAY, 7 * _DAY, 14 * _DAY, 30 * _DAY, 91 * _DAY, 182 * _DAY, 365 * _DAY,
)  # fmt: skip
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def label_format(step_seconds: float, start: datetime, end: datetime) -> str:
    """strftime format for ticks `step_seconds` apart between `start` and `end` (UTC)."""
    if step_seconds >= _DAY:
        return "%Y-%m-%d"
    same_day = start.date() == end.date()
    if step_seconds >= _MINUTE:
        return "%H:%M" if same_day else "%m-%d %H:%M"
    return "%H:%M:%S" if same_day else "%m-%d %H:%M:%S"


def time_ticks(start: datetime, end: datetime, most: int = 4) -> list[tuple[datetime, str]]:
    """Distinct (moment, label) ticks within [start, end] (aware UTC datetimes), oldest first."""
    span = (end - start).total_seconds()
    step = next((s for s in STEPS if span / s < most), None)
    if step is None:  # longer than the ladder: whole multiples of a year
        step = STEPS[-1] * math.ceil(span / STEPS[-1] / (most - 1))
    first = math.ceil((start - _EPOCH).total_seconds() / step) * step
    moments = []
    at = first
    while _EPOCH + timedelta(seconds=at) <= end:
        moments.append(_EPOCH + timedelta(seconds=at))
        at += step
    fmt = label_format(step, start, end)
    if len(moments) < 2:  # a short span: its ends, to the second
        moments, fmt = ([start] if span == 0 else [start, end]), label_format(1, start, end)
    ticks: list[tuple[datetime, str]] = []
    seen: set[str] = set()
    for moment in moments:
        label = moment.strftime(fmt)
        if label not in seen:
            seen.add(label)
            ticks.append((moment, label))
    return ticks
