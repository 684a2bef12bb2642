"""Rebuilding the online store after an outage: re-materialize every view over its ttl window, then check freshness.

Each view is materialized from `now - ttl` (from the beginning when it has no ttl, or from the
given start) to now, through `FeatureStore.materialize`: newest-wins writes, so rows that are
already there and current stay as they are, and the interval is recorded only once the writes are
durable. Aggregation views rebuild their tiles from their batch source. The freshness check that
follows is `potluck monitor run`'s (`monitoring/freshness.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from potluck.definitions import FeatureView

if TYPE_CHECKING:
    from potluck.materialize.runner import MaterializationResult, ProgressFactory
    from potluck.monitoring.freshness import Staleness
    from potluck.store import FeatureStore

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class RebuildPlan:
    view: str
    start: datetime


@dataclass
class RebuildResult:
    results: list[MaterializationResult]
    freshness: list[Staleness]

    @property
    def stale(self) -> list[Staleness]:
        return [s for s in self.freshness if s.stale]


def plan(store: FeatureStore, names: Sequence[str] | None, start: datetime | None, now: datetime) -> list[RebuildPlan]:
    """Which views to materialize, each from where: `start`, else now - ttl, else the beginning."""
    store.refresh_registry()
    snapshot = store.registry_snapshot()
    if names is None:
        views = [v for v in snapshot.feature_views().values() if isinstance(v, FeatureView) and v.online]
        names = sorted(v.name for v in views)
    out = []
    for name in names:
        view = snapshot.feature_views().get(name)
        ttl = view.ttl if isinstance(view, FeatureView) else timedelta(0)  # an on-demand view: from its sources
        begin = start if start is not None else (now - ttl if ttl > timedelta(0) else EPOCH)
        out.append(RebuildPlan(name, begin))
    return out


def rebuild(
    store: FeatureStore,
    names: Sequence[str] | None = None,
    *,
    start: datetime | None = None,
    max_staleness: timedelta | None = None,
    progress: ProgressFactory | None = None,
    on_view: Callable[[RebuildPlan], None] | None = None,
) -> RebuildResult:
    """Materialize each online view (or those named) over its window up to now, then check freshness."""
    from potluck.monitoring.freshness import check_views

    now = datetime.now(UTC)
    results: list[MaterializationResult] = []
    steps = plan(store, names, start, now)
    for step in steps:
        results += store.materialize(step.start, now, [step.view], progress=progress)
        if on_view is not None:
            on_view(step)
    checked = sorted({r.feature_view for r in results})
    freshness = check_views(store, checked, max_staleness, store.config.monitoring.freshness)
    return RebuildResult(results, freshness)
