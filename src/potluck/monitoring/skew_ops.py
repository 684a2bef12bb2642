"""After a skew report: kept as the service's latest (for the web UI), alerts to the `monitoring.alerts` channels and the node-exporter textfile.

Alerts are of kind `skew`, one per skewed feature, with the dedup key
`potluck/<project>/skew/<view>/<feature>/<feature service>`; a report resolves the skew alerts of
its own service's views that no longer fire (other services' are left alone).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from potluck.monitoring.alerts.model import Scope
from potluck.monitoring.alerts.notify import DeliveryReport, deliver
from potluck.monitoring.gauges import MonitorSnapshot, SkewGauge, write_textfile
from potluck.monitoring.snapshot import alerts_config

if TYPE_CHECKING:
    from potluck.monitoring.skew import SkewReport
    from potluck.store import FeatureStore


def after_skew(
    store: FeatureStore,
    report: SkewReport,
    *,
    textfile: str | None = None,
    send_alerts: bool = True,
    now: datetime | None = None,
) -> DeliveryReport:
    now = now or datetime.now(UTC)
    store._monitor_state.record_skew(report.feature_service, json.dumps(report.to_dict()), now)
    alerts = alerts_config(store)
    delivery = DeliveryReport()
    if send_alerts and alerts.channels:
        views = sorted({f.view for f in report.features})
        scope = Scope.of("skew", views, report.feature_service)
        delivery = deliver(alerts, store.project, report.alerts(store.project), scope, store._monitor_state)
    if textfile is not None:
        service = report.feature_service
        snapshot = MonitorSnapshot(
            skew=[SkewGauge.from_report(service, dict(row)) for row in report.to_dict()["features"]],
            skew_checked={service: now.timestamp()},
            delivery_failed={c.channel: not c.ok for c in delivery.channels},
        )
        write_textfile(textfile, snapshot)
    return delivery
