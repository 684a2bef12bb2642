"""Drift and freshness checks of a run (`potluck monitor run`'s own code), over the run's interval."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from potluck.integrations.steps.interval import Interval
from potluck.integrations.steps.report import CheckFailed, StepError, bullet_list

if TYPE_CHECKING:
    from potluck.store import FeatureStore


def monitor_step(
    store: FeatureStore,
    interval: Interval | None,
    *,
    baselines: Sequence[str] = (),
    views: Sequence[str] = (),
    max_staleness: timedelta | None = None,
    fail_on_drift: bool = True,
    send_alerts: bool = True,
    textfile: str | None = None,
) -> dict[str, Any]:
    """Drift of the interval's rows against the baselines (all saved ones by default) and each view's
    staleness, with alerts sent to the `monitoring.alerts` channels.

    Drift or a stale view raises `CheckFailed` unless `fail_on_drift=False`; an alert that could not be
    delivered raises `StepError` (a rerun delivers it; alerts are deduplicated per view, feature and rule).
    Without an interval, the current rows are those of each baseline's own window up to now.
    """
    from potluck.monitoring.ops import monitor_run

    result = monitor_run(
        store,
        baselines=baselines,
        views=views,
        start=interval.start if interval else None,
        end=interval.end if interval else None,
        max_staleness=max_staleness,
        textfile=textfile,
        send_alerts=send_alerts,
    )
    drifted = [
        f"{row['view']}:{row['feature']} drifted ({', '.join(str(r) for r in row.get('rules_fired') or [])})"
        for row in result.report["features"]
        if row.get("drift")
    ]
    stale = [
        f"feature view '{s.view}' is {'never materialized' if s.age is None else 'stale'} "
        f"(materialized until {s.materialized_until or 'never'}, limit {s.max_staleness}, from {s.limit_from})"
        for s in result.ops.staleness
        if s.stale
    ]
    summary: dict[str, Any] = {
        "step": "monitor",
        "project": store.project,
        **(interval.to_json() if interval else {}),
        "baselines_checked": result.baselines_checked,
        "drift": result.drift,
        "drifted": [{"view": r["view"], "feature": r["feature"], "rules_fired": r.get("rules_fired")} for r in
                    result.report["features"] if r.get("drift")],
        "stale": result.ops.stale_views,
        "freshness": [s.to_json() for s in result.ops.staleness],
        "features_checked": len(result.report["features"]),
        "alerts": result.ops.delivery.to_json(),
    }  # fmt: skip
    if not result.ops.delivery.ok:
        failed = [c.describe() for c in result.ops.delivery.channels if not c.ok]
        raise StepError(bullet_list("monitoring: alerts could not be delivered (rerun to retry):", failed), summary)
    if fail_on_drift and (drifted or stale):
        raise CheckFailed(
            bullet_list(
                "monitoring found drift or stale views (see `potluck monitor show`; pass fail_on_drift=False to "
                "report without failing):",
                drifted + stale,
            ),
            summary,
        )
    return summary
