"""Whether a view's online rows are fresh: its materialization watermark against a limit."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from potluck.monitoring.freshness import Staleness
    from potluck.store import FeatureStore


def freshness_status(store: FeatureStore, view: str, max_staleness: timedelta | None = None) -> Staleness:
    """The view's staleness (`monitoring.freshness`): against `max_staleness` when given, else against the
    view's own limit (its `potluck.max_staleness` tag, then `monitoring.freshness` settings)."""
    from potluck.monitoring.freshness import FreshnessConfig, check, check_views
    from potluck.monitoring.snapshot import freshness_config

    store._snapshot().feature_view(view)  # an unknown view is an error naming the nearest
    if max_staleness is None:
        found = check_views(store, [view], None, freshness_config(store))
    else:
        found = check([f for f in store.freshness() if f.feature_view == view], {}, max_staleness, FreshnessConfig())
    if not found:  # an offline-only view has no online rows to be fresh
        from potluck.definitions.errors import RetrievalError

        raise RetrievalError(f"feature view '{view}' is not served online (online=False): it has no freshness")
    return found[0]
