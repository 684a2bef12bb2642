"""Before materializing: every view's source exists, its columns match the definitions, and it holds
fresh rows for the run's interval.

The schema check is apply's own (`repo.resolve`), run again over the registered definitions against
the files as they are now; the row count runs in the offline engine and reads the timestamp column only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from potluck.definitions import FeatureView, PushSource
from potluck.definitions.errors import ConfigError, DefinitionError, RepositoryError
from potluck.definitions.field import Field
from potluck.definitions.stream_sources import KafkaSource, RedisStreamSource
from potluck.integrations.steps.interval import Interval
from potluck.integrations.steps.materialize import online_view_names
from potluck.integrations.steps.report import CheckFailed, bullet_list
from potluck.types import UnixTimestamp

if TYPE_CHECKING:
    from potluck.store import FeatureStore

_TS = "__potluck_event_ts"
_LAST_MICROSECOND = timedelta(microseconds=1)  # the interval's end is excluded


def validate_sources(
    store: FeatureStore,
    interval: Interval,
    views: Sequence[str] | None = None,
    *,
    min_rows: int | Mapping[str, int] = 1,
    window: timedelta | None = None,
) -> dict[str, Any]:
    """Check each view (every online view by default); raise `CheckFailed` with a report listing every problem.

    Fresh rows: at least `min_rows` (per view when a mapping; 0 skips the count) with an event time in
    `[start, end)` of the interval, or of `[end - window, end)` when `window` is given. Views fed by a
    push or stream source are not counted (their rows arrive outside the pipeline).
    """
    checked = interval.widened(window)
    if checked.empty and _wanted(min_rows):
        raise ConfigError(
            f"the run's interval {checked.start.isoformat()} .. {checked.end.isoformat()} is empty (a schedule "
            "without data intervals); pass window= to count the rows of [end - window, end), or min_rows=0"
        )
    snapshot = store._snapshot()
    results: list[dict[str, Any]] = []
    problems: list[str] = []
    for name in online_view_names(store, views):
        view = snapshot.feature_view(name)
        entry: dict[str, Any] = {"view": name, "source": view.source.name}
        schema_problem = _schema_problem(store, view)
        entry["schema"] = "ok" if schema_problem is None else schema_problem
        if schema_problem is not None:
            problems.append(schema_problem)
        needed = min_rows.get(name, 1) if isinstance(min_rows, Mapping) else min_rows
        entry["min_rows"] = needed
        if schema_problem is None and needed > 0 and not _fed_from_outside(view):
            rows = count_rows(store, view, checked)
            entry["rows"] = rows
            if rows is not None and rows < needed:
                problems.append(
                    f"feature view '{name}': source '{view.source.name}' has {rows} row(s) with an event time in "
                    f"[{checked.start.isoformat()}, {checked.end.isoformat()}), fewer than the {needed} required; "
                    "check that the upstream job wrote this interval's data (or lower min_rows)"
                )
        else:
            entry["rows"] = None
        entry["ok"] = schema_problem is None and (entry["rows"] is None or entry["rows"] >= needed)
        results.append(entry)
    summary: dict[str, Any] = {
        "step": "validate_sources",
        "project": store.project,
        **checked.to_json(),
        "views": results,
        "ok": not problems,
        "problems": problems,
    }
    if problems:
        raise CheckFailed(bullet_list(f"source validation found {len(problems)} problem(s):", problems), summary)
    return summary


def _wanted(min_rows: int | Mapping[str, int]) -> bool:
    return any(min_rows.values()) if isinstance(min_rows, Mapping) else min_rows > 0


def _fed_from_outside(view: FeatureView) -> bool:
    return isinstance(view.source, (PushSource, KafkaSource, RedisStreamSource))


def _schema_problem(store: FeatureStore, view: FeatureView) -> str | None:
    """Apply's validation of the registered view against its source's files now; None when it passes."""
    from potluck.repo.resolve import resolve_definitions

    try:
        resolve_definitions([view], store._snapshot(), store._schema_of, lambda _: "registered", store.project)
    except (RepositoryError, DefinitionError) as err:
        return str(err)
    return None


def count_rows(store: FeatureStore, view: FeatureView, interval: Interval) -> int | None:
    """Rows of the view's batch source with `start <= event_ts < end`; None if the offline store cannot count."""
    from potluck.offline.protocol import SupportsSourceScan
    from potluck.retrieval.plans import full_view_query

    offline = store._offline
    if not isinstance(offline, SupportsSourceScan):
        return None
    query = full_view_query(view, str(store.repo_path))
    query = replace(  # the timestamp column alone: any view's source can be counted this way
        query,
        features=(Field(name=_TS, dtype=UnixTimestamp),),
        output_names=(_TS,),
        source=replace(query.source, columns={**query.source.columns, _TS: query.source.timestamp_column}),
        aggregations=(),
        labels=None,
    )
    scan = offline.source_scan(query, interval.start, interval.end - _LAST_MICROSECOND)
    try:
        return scan.row_count
    finally:
        scan.cursor.close()
