"""What the feature server exports about monitoring at each scrape, read from the registry database.

Drift results and materialization failures come from `MonitorState` (written by `potluck monitor
run` and by materialization runs); staleness limits from the views' tags and `monitoring.freshness`
(the run option `--max-staleness` is not known here). Freshness itself the server exports already.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from potluck.monitoring.alerts.config import AlertsConfig
from potluck.monitoring.freshness import FreshnessConfig, limit_of
from potluck.monitoring.gauges import MonitorSnapshot
from potluck.monitoring.state import MonitorState

if TYPE_CHECKING:
    from potluck.store import FeatureStore


def alerts_config(store: FeatureStore) -> AlertsConfig:
    return store.config.monitoring.alerts


def freshness_config(store: FeatureStore) -> FreshnessConfig:
    return store.config.monitoring.freshness


def monitor_state(store: FeatureStore) -> MonitorState:
    """The monitoring tables of the store's registry database."""
    return MonitorState(store.config.registry_url, store.project, store.config.registry.timeouts())


def server_snapshot(store: FeatureStore, state: MonitorState) -> MonitorSnapshot:
    views = [v for v in store.list_feature_views(allow_cache=True) if v.online]
    config = freshness_config(store)
    limits = {}
    for view in views:
        limit, _ = limit_of(view.name, view.tags, None, config)
        if limit is not None:
            limits[view.name] = limit.total_seconds()
    drift, checked = state.drift_results()
    failures = state.materialization_failures()
    return MonitorSnapshot(
        drift=drift,
        drift_checked={v: at.timestamp() for v, at in checked.items()},
        max_staleness=limits,
        materialization_views=[v.name for v in views],
        materialization_failed={f.feature_view: f.failed_at.timestamp() for f in failures},
    )
