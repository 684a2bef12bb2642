"""A brute-force reference for windowed aggregations over raw events, written to be obviously right.

Times are integer microseconds (UTC). An event is a dict with `key`, `ts`, `created` (or None),
`value` (or None) and `arrival` (its position: physical order in the source, or push order).
The window at t holds the key's events with `floor(t / h) * h - W < ts <= t` (every event with
`ts <= t` for a lifetime window), and with `availability`, only those with `created <= t` too
(a null created time counts as available).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from fractions import Fraction
from typing import Any


def in_window(ts: int, t: int, window: int | None, hop: int | None) -> bool:
    if ts > t:
        return False
    if window is None:
        return True
    assert hop is not None
    lower = math.floor(Fraction(t, hop)) * hop - window
    return ts > lower


def window_events(
    events: Iterable[dict[str, Any]], key: Any, t: int, window: int | None, hop: int | None, availability: bool = False
) -> list[dict[str, Any]]:
    out = []
    for e in events:
        if e["key"] != key or not in_window(e["ts"], t, window, hop):
            continue
        if availability and e["created"] is not None and e["created"] > t:
            continue
        out.append(e)
    return out


def aggregate(function: str, events: list[dict[str, Any]]) -> Any:
    """The value of `function` over `events` (nulls skipped; empty: count 0, others None)."""
    function = {"avg": "mean", "std": "stddev", "var": "variance"}.get(function, function)
    values = [e["value"] for e in events if e["value"] is not None]
    if function == "count":
        return len(values)
    if not values:
        return None
    if function == "sum":
        return sum(values) if all(isinstance(v, int) for v in values) else math.fsum(values)
    if function == "mean":
        if all(isinstance(v, int) for v in values):
            return float(Fraction(sum(values), len(values)))
        return math.fsum(values) / len(values)
    if function in ("variance", "stddev"):
        if len(values) < 2:
            return None
        exact = statistics.variance([Fraction(v) for v in values])
        return float(exact) if function == "variance" else math.sqrt(float(exact))
    if function == "min":
        return min(values)
    if function == "max":
        return max(values)
    if function == "last":
        with_values = [e for e in events if e["value"] is not None]
        latest = max(
            with_values,
            key=lambda e: (e["ts"], e["created"] is not None, e["created"] or 0, e["arrival"]),
        )
        return latest["value"]
    raise ValueError(function)


def expected(
    events: Iterable[dict[str, Any]],
    key: Any,
    t: int,
    function: str,
    window: int | None,
    hop: int | None,
    availability: bool = False,
) -> Any:
    return aggregate(function, window_events(events, key, t, window, hop, availability))


def close(actual: Any, wanted: Any, rel: float = 1e-9, abs_tol: float = 1e-9) -> bool:
    """Equal, or for floats within a relative (and small absolute) tolerance."""
    if actual is None or wanted is None:
        return actual is None and wanted is None
    if isinstance(wanted, float) or isinstance(actual, float):
        return math.isclose(float(actual), float(wanted), rel_tol=rel, abs_tol=abs_tol)
    return bool(actual == wanted)
