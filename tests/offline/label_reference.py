"""A brute-force resolution of label views' conflict policies, written to be obviously correct (and slow)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pit_reference import utc_naive

SortKey = tuple[datetime, datetime, int]


def _candidates(
    rows: Sequence[dict[str, Any]],
    key_columns: Sequence[str],
    keys: Sequence[Any],
    at: datetime | None,
    ttl: timedelta,
    availability: bool,
    created_column: str,
) -> list[tuple[SortKey, dict[str, Any]]]:
    """The rows any view's join may pick for an entity row at `at`, each with the join's sort key."""
    if at is None or any(k is None for k in keys):
        return []
    out = []
    for position, row in enumerate(rows):
        if [row[c] for c in key_columns] != list(keys):
            continue
        event = utc_naive(row["ts"])
        if event is None or event > at or (ttl > timedelta(0) and event < at - ttl):
            continue
        created = utc_naive(row.get(created_column)) if created_column else None
        if availability and created is not None and created > at:
            continue
        out.append(((event, created or datetime.min, position), row))
    return out


def resolve(
    rows: Sequence[dict[str, Any]],
    *,
    key_columns: Sequence[str],
    keys: Sequence[Any],
    at: datetime | None,
    ttl: timedelta,
    policy: str,
    labeler: str,
    priorities: Sequence[str],
    features: Sequence[str],
    availability: bool = False,
    created_column: str = "",
) -> dict[str, Any]:
    """The resolved value of each of `features` (source columns) for one entity row."""
    found = _candidates(rows, key_columns, keys, at, ttl, availability, created_column)
    if not found:
        return dict.fromkeys(features)
    if policy == "last_write_wins":
        return {f: max(found, key=lambda c: c[0])[1][f] for f in features}
    if policy == "labeler_priority":

        def rank(name: Any) -> int:
            return list(priorities).index(name) if name in priorities else len(priorities)

        best_rank = min(rank(row[labeler]) for _, row in found)
        chosen = max((c for c in found if rank(c[1][labeler]) == best_rank), key=lambda c: c[0])[1]
        return {f: chosen[f] for f in features}
    assert policy == "majority_vote"
    newest: dict[Any, tuple[SortKey, dict[str, Any]]] = {}  # labeler (None is one labeler) -> its vote
    for key, row in found:
        who = row[labeler]
        if who not in newest or key > newest[who][0]:
            newest[who] = (key, row)
    out: dict[str, Any] = {}
    for f in features:
        if f == labeler:
            out[f] = None
            continue
        counts: dict[Any, int] = {}
        latest: dict[Any, SortKey] = {}
        for key, row in newest.values():
            value = row[f]
            if value is None:
                continue
            counts[value] = counts.get(value, 0) + 1
            latest[value] = max(latest.get(value, key), key)
        if not counts:
            out[f] = None
            continue
        top = max(counts.values())
        tied = [v for v, n in counts.items() if n == top]
        out[f] = max(tied, key=lambda v: latest[v])
    return out
