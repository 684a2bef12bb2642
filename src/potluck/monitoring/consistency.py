"""Served values against the offline store, value by value.

Each sampled logged row is recomputed with `get_historical_features` at its log time with
`availability_time=True` (only offline rows that had landed by then count), and each feature's
served value is compared with the recomputed one:

- match: both null, or equal (floats within `rel_tolerance * |offline|` or `abs_tolerance`);
- mismatch: both have a value and they differ;
- missing online: no value served (status not PRESENT) where the offline store has one;
- missing offline: a value served where the offline store has none.

The recomputation also returns the event time of the offline row it picked, which names causes:
a newer offline event than the one served (stale online value), a served event the offline store
does not have (online-only write), ttl expiry on either side, a null served by status (null
default policy), a view redefined after the row was served.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from potluck.definitions.field import Field
from potluck.feature_logs.spec import LOG_TIMESTAMP, REQUEST_ID, STATUS_CODES
from potluck.types import UnixTimestamp

if TYPE_CHECKING:
    import pyarrow as pa

    from potluck.monitoring.config import SkewConfig
    from potluck.monitoring.served_log import ServedLog
    from potluck.offline.protocol import ViewQuery
    from potluck.retrieval.references import ViewSelection
    from potluck.store import FeatureStore

KINDS = ("mismatch", "missing_online", "missing_offline")
STALE = "stale online value"
ONLINE_ONLY = "online-only write"
NULL_POLICY = "null default policy"
TTL = "ttl expiry"
NOT_ONLINE = "online row missing"
SAME_EVENT = "different value for the same event"
REDEFINED_SINCE_SERVED = "definition changed since the row was served"
REDEFINED_SINCE_BUILT = "definition changed since the dataset was built"
_STATUS_NAMES = {code: name for name, code in STATUS_CODES.items()}
_PRESENT, _NULL, _NOT_FOUND, _EXPIRED = (
    STATUS_CODES[s] for s in ("PRESENT", "NULL_VALUE", "NOT_FOUND", "OUTSIDE_MAX_AGE")
)
_TS_FIELD = "__potluck_skew_event_ts"


@dataclass
class FeatureConsistency:
    view: str
    feature: str
    compared: int = 0
    counts: Counter[str] = field(default_factory=Counter)  # match, mismatch, missing_online, missing_offline
    abs_error: float = 0.0
    rel_error: float = 0.0
    abs_count: int = 0
    rel_count: int = 0
    causes: Counter[str] = field(default_factory=Counter)
    examples: list[dict[str, Any]] = field(default_factory=list)

    def rate(self, kind: str) -> float | None:
        return self.counts[kind] / self.compared if self.compared else None

    @property
    def mean_abs_error(self) -> float | None:
        return self.abs_error / self.abs_count if self.abs_count else None

    @property
    def mean_rel_error(self) -> float | None:
        return self.rel_error / self.rel_count if self.rel_count else None


@dataclass(frozen=True)
class Recomputed:
    values: dict[str, list[Any]]  # log column -> offline value per sampled row (ttl applied)
    event_ts: dict[str, list[datetime | None]]  # view -> event time of the offline row picked (ttl not applied)
    ttl: dict[str, timedelta]


def compare(
    store: FeatureStore, log: ServedLog, sample: pa.Table, config: SkewConfig
) -> dict[tuple[str, str], FeatureConsistency]:
    """Per (view, feature) of the log's regular views: the comparison of the sampled rows."""
    out: dict[tuple[str, str], FeatureConsistency] = {}
    if sample.num_rows == 0 or not log.selections:
        return out
    recomputed = _recompute(store, log, sample)
    log_ts = [_aware(t) for t in sample.column(LOG_TIMESTAMP).to_pylist()]
    request_ids = sample.column(REQUEST_ID).to_pylist() if REQUEST_ID in sample.column_names else [None] * len(log_ts)
    keys = {k: sample.column(k).to_pylist() for k in log.keys if k in sample.column_names}
    redefined = _redefined_at(store, {f.view for f in log.features if not f.on_demand})
    for f in log.features:
        if f.on_demand:
            continue
        result = FeatureConsistency(f.view, f.feature)
        served = sample.column(f.column).to_pylist()
        status = sample.column(f.status_column).to_pylist()
        served_ts = [_aware(t) for t in sample.column(f.timestamp_column).to_pylist()]
        offline = recomputed.values[f.column]
        off_ts = recomputed.event_ts.get(f.view)
        ttl = recomputed.ttl.get(f.view, timedelta(0))
        for i, value in enumerate(served):
            row = _Row(value, status[i], served_ts[i], offline[i], off_ts[i] if off_ts else None, log_ts[i])
            kind = _kind(row, config)
            result.compared += 1
            result.counts[kind] += 1
            _errors(result, row)
            if kind == "match":
                continue
            causes = _causes(row, ttl, redefined.get(f.view))
            result.causes.update(causes)
            shown = sum(1 for e in result.examples if e["kind"] == kind)
            if shown < config.examples:
                result.examples.append(_example(kind, row, causes, request_ids[i], {k: v[i] for k, v in keys.items()}))
        out[(f.view, f.feature)] = result
    return out


@dataclass(frozen=True)
class _Row:
    served: Any
    status: int | None
    served_ts: datetime | None
    offline: Any
    offline_ts: datetime | None
    log_ts: datetime | None


def _kind(row: _Row, config: SkewConfig) -> str:
    if row.served is None and row.offline is None:
        return "match"
    if row.served is None:
        return "missing_online"
    if row.offline is None:
        return "missing_offline"
    return "match" if same(row.served, row.offline, config.rel_tolerance, config.abs_tolerance) else "mismatch"


def same(served: Any, offline: Any, rel: float, absolute: float) -> bool:
    """Equal values; floats within max(rel * |offline|, absolute); lists element by element."""
    if isinstance(served, float) or isinstance(offline, float):
        if isinstance(served, (int, float)) and isinstance(offline, (int, float)):
            a, b = float(served), float(offline)
            if math.isnan(a) or math.isnan(b):
                return math.isnan(a) and math.isnan(b)
            return a == b or abs(a - b) <= max(rel * abs(b), absolute)
        return False
    if isinstance(served, list) and isinstance(offline, list):
        return len(served) == len(offline) and all(
            (x is None and y is None) or (x is not None and y is not None and same(x, y, rel, absolute))
            for x, y in zip(served, offline, strict=True)
        )
    return bool(served == offline)


def _errors(result: FeatureConsistency, row: _Row) -> None:
    s, o = row.served, row.offline
    if isinstance(s, bool) or isinstance(o, bool) or not isinstance(s, (int, float)) or not isinstance(o, (int, float)):
        return
    diff = abs(float(s) - float(o))
    if not math.isfinite(diff):
        return
    result.abs_error += diff
    result.abs_count += 1
    if o != 0:
        result.rel_error += diff / abs(float(o))
        result.rel_count += 1


def _causes(row: _Row, ttl: timedelta, redefined_at: datetime | None) -> list[str]:
    causes = []
    if row.offline_ts is not None and row.served_ts is not None and row.offline_ts > row.served_ts:
        causes.append(STALE)
    if row.served_ts is not None and row.status in (_PRESENT, _NULL, _EXPIRED):
        if row.offline_ts is None or row.served_ts > row.offline_ts:
            causes.append(ONLINE_ONLY)
        elif row.served_ts == row.offline_ts and row.served is not None and row.offline is not None:
            causes.append(SAME_EVENT)
    expired_offline = (
        ttl > timedelta(0)
        and row.offline_ts is not None
        and row.log_ts is not None
        and row.offline_ts < row.log_ts - ttl
    )
    if row.status == _EXPIRED or (expired_offline and row.served is not None):
        causes.append(TTL)
    if (row.status == _NULL or (row.status == _PRESENT and row.served is None)) and row.offline is not None:
        causes.append(NULL_POLICY)
    elif row.served is not None and row.offline is None and row.offline_ts is not None and not expired_offline:
        causes.append(NULL_POLICY)  # the offline row holds a null where a value was served
    if row.status == _NOT_FOUND and row.offline is not None:
        causes.append(NOT_ONLINE)
    if redefined_at is not None and row.log_ts is not None and redefined_at > row.log_ts:
        causes.append(REDEFINED_SINCE_SERVED)
    return causes


def _example(kind: str, row: _Row, causes: list[str], request_id: Any, keys: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": kind,
        "request_id": request_id,
        "log_timestamp": json_value(row.log_ts),
        "keys": {k: json_value(v) for k, v in keys.items()},
        "served": json_value(row.served),
        "served_status": _STATUS_NAMES.get(row.status, str(row.status)) if row.status is not None else None,
        "served_event_timestamp": json_value(row.served_ts),
        "offline": json_value(row.offline),
        "offline_event_timestamp": json_value(row.offline_ts),
        "causes": causes,
    }


def json_value(value: Any) -> Any:
    """A value as JSON can hold it (times as ISO 8601, bytes as hex, non-finite floats as strings)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _recompute(store: FeatureStore, log: ServedLog, sample: pa.Table) -> Recomputed:
    """The offline values of the sampled rows at their log time, and the event time of each row picked."""
    import pyarrow as pa

    entity = pa.table(
        {
            **{k: sample.column(k) for k in log.keys if k in sample.column_names},
            "event_timestamp": sample.column(LOG_TIMESTAMP),
        }
    )
    log_ts = [_aware(t) for t in sample.column(LOG_TIMESTAMP).to_pylist()]
    return recompute_offline(store, log.selections, entity, log_ts, availability_time=True)


def recompute_offline(
    store: FeatureStore,
    selections: Sequence[ViewSelection],
    entity: pa.Table,
    ttl_from: Sequence[datetime | None],
    *,
    availability_time: bool,
) -> Recomputed:
    """The offline values of `entity`'s rows (join keys and `event_timestamp`) and the event time of each
    row picked; each view's ttl counts back from `ttl_from` (per row), not from the entity time."""
    from potluck.retrieval.plans import view_query

    queries: list[ViewQuery] = []
    stamps: dict[str, str] = {}  # view -> the output column of its event time
    python_ttl: dict[str, timedelta] = {}
    for i, selection in enumerate(selections):
        query = view_query(selection, str(store.repo_path))
        if not query.aggregations and query.labels is None:
            out = f"__potluck_skew_ts_{i}"
            stamps[query.view_name] = out
            python_ttl[query.view_name] = query.ttl
            query = replace(
                query,
                features=(*query.features, Field(name=_TS_FIELD, dtype=UnixTimestamp)),
                output_names=(*query.output_names, out),
                source=replace(
                    query.source, columns={**query.source.columns, _TS_FIELD: query.source.timestamp_column}
                ),
                ttl=timedelta(0),  # applied below, so the row picked is known even when it expired
            )
        queries.append(query)
    job = store._offline.get_historical_features(entity, queries, availability_time=availability_time)
    try:
        table = job.to_arrow()
    finally:
        close = getattr(job, "close", None)
        if callable(close):
            close()
    event_ts = {view: [_aware(t) for t in table.column(col).to_pylist()] for view, col in stamps.items()}
    values: dict[str, list[Any]] = {}
    for selection in selections:
        view = selection.view.name
        ttl = python_ttl.get(view, timedelta(0))
        times = event_ts.get(view)
        for name in selection.output_names:
            column = table.column(name).to_pylist()
            if ttl > timedelta(0) and times is not None:
                column = [
                    None if t is None or lt is None or t < lt - ttl else v
                    for v, t, lt in zip(column, times, ttl_from, strict=True)
                ]
            values[name] = column
    return Recomputed(values, event_ts, {s.view.name: s.view.ttl for s in selections})


def _redefined_at(store: FeatureStore, views: set[str]) -> dict[str, datetime]:
    """When each view's current definition was applied, for views that have an earlier one."""
    out = {}
    for name in views:
        versions = store._registry_store.feature_view_versions(name)
        if len(versions) > 1:
            out[name] = _aware(versions[-1].created_at) or datetime.min.replace(tzinfo=UTC)
    return out


def _aware(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
