"""Whether views' online rows are fresh: each view's materialization watermark against a limit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from potluck.integrations.steps.materialize import online_view_names

if TYPE_CHECKING:
    from potluck.monitoring.freshness import Staleness
    from potluck.store import FeatureStore


def freshness_status(
    store: FeatureStore, views: Sequence[str] | None = None, max_staleness: timedelta | None = None
) -> list[Staleness]:
    """The staleness of each view (every online view by default), as `monitoring.freshness` computes it:
    against `max_staleness` when given, else against the view's own limit (its `potluck.max_staleness`
    tag, then the `monitoring.freshness` settings; no limit leaves it `unchecked`)."""
    from potluck.monitoring.freshness import FreshnessConfig, check, check_views
    from potluck.monitoring.snapshot import freshness_config

    names = online_view_names(store, views)  # an unknown view is an error naming the nearest
    offline_only = [n for n in names if not store._snapshot().feature_view(n).online]
    if offline_only:
        from potluck.definitions.errors import RetrievalError

        raise RetrievalError(
            f"feature view '{offline_only[0]}' is not served online (online=False): it has no freshness"
        )
    if max_staleness is None:
        return check_views(store, names, None, freshness_config(store))
    wanted = set(names)
    return check([f for f in store.freshness() if f.feature_view in wanted], {}, max_staleness, FreshnessConfig())
