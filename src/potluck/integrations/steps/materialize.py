"""Materialization of a run's interval, view by view: incremental (from each view's watermark) or full."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from potluck.integrations.steps.interval import Interval
from potluck.integrations.steps.report import StepError, bullet_list

if TYPE_CHECKING:
    from potluck.store import FeatureStore


def online_view_names(store: FeatureStore, views: Sequence[str] | None) -> list[str]:
    """The views named (each checked to exist, an unknown one suggesting the nearest), else every online
    view (of any kind: the views `materialize` covers by default)."""
    snapshot = store._snapshot()
    if views is None:
        return [v.name for v in snapshot.feature_views().values() if v.online]
    for name in views:
        snapshot.feature_view(name)
    return list(dict.fromkeys(views))


def materialize_interval(
    store: FeatureStore,
    interval: Interval,
    views: Sequence[str] | None = None,
    *,
    incremental: bool = True,
    lookback: timedelta = timedelta(0),
) -> dict[str, Any]:
    """Incremental: `materialize_incremental(end)` (from each view's watermark; first run: end - ttl).
    Full: `materialize(start, end)`. Each view runs on its own, so one failing view does not stop the
    others; a failure raises `StepError` naming the views, after the others are done.

    A rerun is safe: writes are newest-wins and an interval is recorded only once its writes are durable.
    """
    names = online_view_names(store, views)
    results: list[dict[str, Any]] = []
    failures: list[str] = []
    for name in names:
        try:
            if incremental:
                done = store.materialize_incremental(interval.end, [name], lookback=lookback)
            else:
                done = store.materialize(interval.start, interval.end, [name])
        except Exception as err:
            failures.append(f"feature view '{name}': {err}")
            results.append({"view": name, "error": str(err)})
            continue
        for r in done:
            results.append(
                {
                    "view": r.feature_view,
                    "start": r.start.isoformat() if r.start else None,
                    "end": r.end.isoformat(),
                    "rows": r.rows,
                    "seconds": round(r.seconds, 3),
                }
            )
    summary: dict[str, Any] = {
        "step": "materialize",
        "mode": "incremental" if incremental else "full",
        "project": store.project,
        **interval.to_json(),
        "views": results,
        "rows": sum(int(r.get("rows", 0)) for r in results),
        "failed": [r["view"] for r in results if "error" in r],
    }
    if failures:
        report = bullet_list(
            f"materialization of {len(failures)} of {len(names)} feature view(s) failed "
            "(fix the cause and rerun the task: writing a finished view again changes nothing, and a failed "
            "one resumes from its recorded watermark):",
            failures,
        )
        raise StepError(report, summary)
    return summary
