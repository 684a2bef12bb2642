"""A brute-force point-in-time join, written to be obviously correct (and slow)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any


def utc_naive(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


@dataclass
class RefView:
    join_keys: tuple[str, ...]  # entity column names
    key_columns: tuple[str, ...]  # the matching source columns
    features: tuple[str, ...]  # source columns of the features
    output_names: tuple[str, ...]
    ttl: timedelta
    rows: list[dict[str, Any]]  # in physical order: files in sorted order, rows in file order
    timestamp_column: str = "ts"
    created_column: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _sort_key(view: RefView, position: int, row: dict[str, Any]) -> tuple[datetime, datetime, int]:
    created = utc_naive(row.get(view.created_column)) if view.created_column else None
    return (utc_naive(row[view.timestamp_column]) or datetime.min, created or datetime.min, position)


def pick(view: RefView, keys: Sequence[Any], at: datetime | None, availability: bool) -> dict[str, Any] | None:
    if at is None or any(k is None for k in keys):
        return None
    best: tuple[tuple[datetime, datetime, int], dict[str, Any]] | None = None
    for position, row in enumerate(view.rows):
        if [row[c] for c in view.key_columns] != list(keys):
            continue
        event = utc_naive(row[view.timestamp_column])
        if event is None or event > at:
            continue
        if view.ttl > timedelta(0) and event < at - view.ttl:
            continue
        if availability and view.created_column:
            created = utc_naive(row[view.created_column])
            if created is not None and created > at:
                continue
        key = _sort_key(view, position, row)
        if best is None or key > best[0]:
            best = (key, row)
    return None if best is None else best[1]


def reference_join(
    entity_rows: list[dict[str, Any]], ts_column: str, views: Sequence[RefView], availability: bool = False
) -> list[dict[str, Any]]:
    out = []
    for entity in entity_rows:
        at = utc_naive(entity[ts_column])
        result = dict(entity)
        result[ts_column] = None if at is None else at.replace(tzinfo=UTC)
        for view in views:
            row = pick(view, [entity[k] for k in view.join_keys], at, availability)
            for column, name in zip(view.features, view.output_names, strict=True):
                result[name] = None if row is None else row[column]
        out.append(result)
    return out


def reference_latest(view: RefView, start: datetime | None, end: datetime) -> list[dict[str, Any]]:
    """Per key, the winning row with start <= event_ts <= end (rows with a null key are skipped)."""
    best: dict[tuple[Any, ...], tuple[tuple[datetime, datetime, int], dict[str, Any]]] = {}
    for position, row in enumerate(view.rows):
        keys = tuple(row[c] for c in view.key_columns)
        event = utc_naive(row[view.timestamp_column])
        if any(k is None for k in keys) or event is None or event > end:
            continue
        if start is not None and event < start:
            continue
        key = _sort_key(view, position, row)
        if keys not in best or key > best[keys][0]:
            best[keys] = (key, row)
    return [row for _, row in best.values()]
