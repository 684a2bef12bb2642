"""The window rule of windowed aggregations: its one home (DESIGN section 2, docs/semantics.md).

With window W and hop h, the value for a key at time t aggregates the key's events with
`floor(t / h) * h - W < event_ts <= t`: the head is exact, the tail moves in steps of h.
A lifetime window (`time_window=None`) takes every event with `event_ts <= t` and has no hop.

Times here are integers: microseconds since the Unix epoch (UTC), durations in microseconds.
Tile k of a hop h covers `(k * h, (k + 1) * h]`, so the window's exclusive lower bound is always a
tile boundary and a window is a whole number of tiles plus the head tile holding t.

This module imports nothing else of Potluck's: definitions use it to validate and name, the offline
query and the online tiles use it to compute.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

# Canonical function names, in the order docs and errors list them.
FUNCTIONS = ("count", "sum", "mean", "min", "max", "stddev", "variance", "last")
# Other accepted spellings (Feast's) of the same functions.
ALIASES = {"avg": "mean", "std": "stddev", "var": "variance"}
ACCEPTED = (*FUNCTIONS, *ALIASES)
_CANONICAL = frozenset(FUNCTIONS)

US_PER_SECOND = 1_000_000
_MINUTE = 60 * US_PER_SECOND
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR


class AggregationLike(Protocol):
    """What the rule reads of an aggregation definition."""

    @property
    def column(self) -> str: ...
    @property
    def function(self) -> str: ...
    @property
    def time_window(self) -> timedelta | None: ...
    @property
    def slide_interval(self) -> timedelta | None: ...
    @property
    def name(self) -> str: ...


def canonical_function(function: str) -> str:
    """The canonical name of a function (`avg` -> `mean`); ValueError naming the valid ones otherwise."""
    if type(function) is str and function in _CANONICAL:
        return function
    name = function.strip().lower() if isinstance(function, str) else function
    if name in FUNCTIONS:
        return str(name)
    if name in ALIASES:
        return ALIASES[str(name)]
    raise ValueError(f"unknown aggregation function {function!r}; use one of {', '.join(FUNCTIONS)} (avg = mean)")


def micros(delta: timedelta) -> int:
    """A duration in whole microseconds."""
    return (delta.days * 86_400 + delta.seconds) * US_PER_SECOND + delta.microseconds


def default_hop(window: timedelta) -> timedelta:
    """The hop used when none is given: 5 minutes up to 12 hours, 1 hour up to 12 days, else 1 day; never above W."""
    w = micros(window)
    if w <= 12 * _HOUR:
        hop = 5 * _MINUTE
    elif w <= 12 * _DAY:
        hop = _HOUR
    else:
        hop = _DAY
    return timedelta(microseconds=min(hop, w))


def check_window(window: timedelta | None, hop: timedelta | None) -> None:
    """ValueError saying what to change when a window and hop do not fit the rule."""
    if window is None:
        if hop is not None:
            raise ValueError("a lifetime window (time_window=None) has no hop; remove slide_interval")
        return
    w = micros(window)
    if w <= 0:
        raise ValueError(f"time_window must be positive, got {window}")
    if w % US_PER_SECOND:
        raise ValueError(f"time_window must be a whole number of seconds, got {window}")
    if hop is None:
        return
    h = micros(hop)
    if h <= 0:
        raise ValueError(f"slide_interval must be positive, got {hop}")
    if h % US_PER_SECOND:
        raise ValueError(f"slide_interval must be a whole number of seconds, got {hop}")
    if h > w:
        raise ValueError(f"slide_interval {hop} is longer than time_window {window}; use a hop of at most the window")
    if w % h:
        raise ValueError(
            f"time_window {window} is not a multiple of slide_interval {hop}; "
            "choose a hop that divides the window (or leave slide_interval unset for the default)"
        )


def effective_hop(window: timedelta | None, hop: timedelta | None) -> timedelta | None:
    """The hop in force: the given one, else `default_hop(window)`; None for a lifetime window."""
    if window is None:
        return None
    return hop if hop is not None else default_hop(window)


def is_default_hop(window: timedelta | None, hop: timedelta | None) -> bool:
    return window is not None and hop == default_hop(window)


def output_name(agg: AggregationLike) -> str:
    """`name`, else `{function}_{column}`, plus `_{seconds}s` when the window is set (as Feast)."""
    if agg.name:
        return agg.name
    base = f"{agg.function}_{agg.column}"
    if agg.time_window is not None and agg.time_window.total_seconds() > 0:
        return f"{base}_{int(agg.time_window.total_seconds())}s"
    return base


def window_lower(t: int, window: int, hop: int) -> int:
    """The exclusive lower bound `floor(t / h) * h - W` (microseconds)."""
    return (t // hop) * hop - window


def window_bounds(t: int, window: int | None, hop: int | None) -> tuple[int | None, int]:
    """`(exclusive lower, inclusive upper)` of the window at t; lower is None for a lifetime window."""
    if window is None:
        return None, t
    if hop is None:
        raise ValueError("a window needs a hop")
    return window_lower(t, window, hop), t


def in_window(event_ts: int, t: int, window: int | None, hop: int | None) -> bool:
    lower, upper = window_bounds(t, window, hop)
    return event_ts <= upper and (lower is None or event_ts > lower)


def tile_index(event_ts: int, hop: int) -> int:
    """The tile k holding an event: `k * h < event_ts <= (k + 1) * h`."""
    return (event_ts - 1) // hop


def tile_end(index: int, hop: int) -> int:
    """The inclusive upper bound of tile `index`."""
    return (index + 1) * hop


def window_tiles(t: int, window: int, hop: int) -> range:
    """The tiles the window at t reads: whole tiles of the tail and the head tile holding t.

    Only the head tile can hold events after t (events not yet due); a reader at t = now treats
    those as part of the head, which is exact for events that are not in the future.
    """
    first = (t // hop) - window // hop
    return range(first, tile_index(t, hop) + 1)


def longest_span(windows: list[int | None], hops: list[int | None]) -> int | None:
    """How far back (microseconds) any window of a view can reach: max(W + h); None when one is a lifetime."""
    spans: list[int] = []
    for w, h in zip(windows, hops, strict=True):
        if w is None or h is None:
            return None
        spans.append(w + h)
    return max(spans, default=0)


_NUMERIC = ("Int32", "Int64", "Float32", "Float64")
_INTEGER = ("Int32", "Int64")
_ORDERED = (*_NUMERIC, "String", "UnixTimestamp")
_SCALAR = (*_ORDERED, "Bool", "Bytes")
# Column types each function accepts (Potluck type names).
ACCEPTED_TYPES: dict[str, tuple[str, ...]] = {
    "count": _SCALAR,
    "sum": _NUMERIC,
    "mean": _NUMERIC,
    "stddev": _NUMERIC,
    "variance": _NUMERIC,
    "min": _ORDERED,
    "max": _ORDERED,
    "last": _SCALAR,
}


def output_type(function: str, column_type: str) -> str:
    """The type name of an aggregation's output; ValueError when the function cannot take the column type.

    count: Int64; sum: Int64 over integers, else Float64; mean, stddev, variance: Float64;
    min, max, last: the column's type.
    """
    fn = canonical_function(function)
    if column_type not in ACCEPTED_TYPES[fn]:
        raise ValueError(
            f"function '{function}' cannot aggregate a {column_type} column; it takes {', '.join(ACCEPTED_TYPES[fn])}"
        )
    if fn == "count":
        return "Int64"
    if fn == "sum":
        return "Int64" if column_type in _INTEGER else "Float64"
    if fn in ("mean", "stddev", "variance"):
        return "Float64"
    return column_type
