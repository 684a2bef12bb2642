"""After the checks of `potluck monitor run`: staleness, alerts to the channels, the textfile.

The drift report (its `features` entries) comes from the drift checks; this adds each view's
staleness, records the drift results for the feature server's gauges, sends what changed to every
`monitoring.alerts` channel, and writes the node-exporter textfile. Exit codes: 1 when a feature
drifted or a view is stale, 2 when something failed (here: an alert that could not be delivered);
2 wins over 1, and the JSON still holds every result.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from potluck.monitoring.alerts.model import Alert, Scope
from potluck.monitoring.alerts.notify import DeliveryReport, deliver
from potluck.monitoring.freshness import Staleness, check_views, stale_alerts
from potluck.monitoring.gauges import DriftGauge, MonitorSnapshot, write_textfile
from potluck.monitoring.snapshot import alerts_config, freshness_config

if TYPE_CHECKING:
    from potluck.store import FeatureStore

_METRICS = (
    "psi",
    "ks_statistic",
    "ks_p_value",
    "js_distance",
    "chi2_p_value",
    "mean_change",
    "null_rate_change",
    "max_ratio",
)

# the metric shown beside a rule's name, where it is not the rule's own name
_RULE_METRIC = {"ks": "ks_statistic", "chi2": "chi2_p_value"}


def drift_alerts(project: str, features: Iterable[Mapping[str, Any]]) -> list[Alert]:
    """One alert per rule fired per feature (the dedup key is view, feature and rule)."""
    out = []
    for row in features:
        details = {k: row.get(k) for k in _METRICS if row.get(k) is not None}
        view, feature = str(row["view"]), str(row["feature"])
        for rule in row.get("rules_fired") or []:
            value = details.get(_RULE_METRIC.get(rule, rule))
            shown = f" = {value:.4g}" if isinstance(value, int | float) else ""
            summary = f"{view}:{feature} drifted: {rule}{shown}"
            out.append(Alert(project, "drift", view, feature, str(rule), summary, {"kind": row.get("kind"), **details}))
    return out


@dataclass
class OpsResult:
    staleness: list[Staleness]
    delivery: DeliveryReport

    @property
    def stale_views(self) -> list[str]:
        return [s.view for s in self.staleness if s.stale]

    def exit_code(self, drift: bool) -> int:
        if not self.delivery.ok:
            return 2
        return 1 if drift or self.stale_views else 0

    def to_json(self) -> dict[str, Any]:
        """Keys added to `monitor run -o json`: `stale`, `freshness`, `alerts`."""
        return {
            "stale": self.stale_views,
            "freshness": [s.to_json() for s in self.staleness],
            "alerts": self.delivery.to_json(),
        }


def after_checks(
    store: FeatureStore,
    *,
    features: Sequence[Mapping[str, Any]],
    drift_views: Sequence[str],
    freshness_views: Sequence[str] | None,
    max_staleness: timedelta | None,
    textfile: str | None = None,
    send_alerts: bool = True,
    now: datetime | None = None,
) -> OpsResult:
    """Staleness, drift results recorded, alerts delivered, textfile written (in that order).

    `drift_views` are the views whose drift was checked (their earlier results are replaced);
    `freshness_views` those whose staleness to check (None: every online view).
    """
    now = now or datetime.now(UTC)
    project = store.project
    staleness = check_views(store, freshness_views, max_staleness, freshness_config(store))
    gauges = [DriftGauge.from_report(row) for row in features]
    state = store._monitor_state
    if drift_views:
        state.record_drift(list(drift_views), gauges, now)
    alerts = alerts_config(store)
    delivery = DeliveryReport()
    if send_alerts and alerts.channels:
        current = drift_alerts(project, features) + stale_alerts(project, staleness)
        scope = Scope.of("drift", drift_views) | Scope.of("stale", [s.view for s in staleness])
        delivery = deliver(alerts, project, current, scope, state)
    result = OpsResult(staleness, delivery)
    if textfile is not None:
        snapshot = MonitorSnapshot(
            drift=gauges,
            drift_checked={v: now.timestamp() for v in drift_views},
            freshness={s.view: None if s.age is None else s.age.total_seconds() for s in staleness},
            max_staleness={s.view: s.max_staleness.total_seconds() for s in staleness if s.max_staleness is not None},
            stale={s.view: s.stale for s in staleness if s.status != "unchecked"},
            last_run=now.timestamp(),
            delivery_failed={c.channel: not c.ok for c in delivery.channels},
        )
        write_textfile(textfile, snapshot)
    return result


@dataclass
class MonitorRun:
    """The outcome of `potluck monitor run`: the drift report, its parts, and the staleness and alerts."""

    report: dict[str, Any]  # MonitorRunReport: drift, features
    parts: list[Any]  # monitoring.service.RunPart, one per baseline checked
    ops: OpsResult
    baselines_checked: bool  # False: no baseline saved, drift not checked

    @property
    def drift(self) -> bool:
        return bool(self.report["drift"])

    def exit_code(self) -> int:
        return self.ops.exit_code(self.drift)

    def to_json(self) -> dict[str, Any]:
        return {**self.report, **self.ops.to_json()}


def monitor_run(
    store: FeatureStore,
    *,
    baselines: Sequence[str] = (),
    views: Sequence[str] = (),
    start: datetime | None = None,
    end: datetime | None = None,
    max_staleness: timedelta | None = None,
    textfile: str | None = None,
    send_alerts: bool = True,
    logs: str | None = None,
) -> MonitorRun:
    """Drift of each baseline (all when none is named; skipped when none is saved), then `after_checks`."""
    if baselines or store.list_baselines():
        report, parts = store.run_monitoring(list(baselines) or None, list(views) or None, start, end, logs=logs)
        checked_baselines = True
    else:  # nothing to compare with yet: staleness only
        report, parts, checked_baselines = {"drift": False, "stale": [], "features": []}, [], False
    checked = sorted(
        {f["view"] for f in report["features"]} | {f.view for p in parts for f in p.profile.features if f.view}
    )
    ops = after_checks(
        store,
        features=report["features"],
        drift_views=checked,
        freshness_views=list(views) or None,
        max_staleness=max_staleness,
        textfile=textfile,
        send_alerts=send_alerts,
    )
    return MonitorRun(dict(report), parts, ops, checked_baselines)
