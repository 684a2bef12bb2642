"""The narrow interface the HTTP feature server needs from a feature store.

The server never imports the store: an adapter (`potluck.server.store_backend.StoreBackend`) maps
these calls onto `FeatureStore`. Errors the adapter raises decide the HTTP status:

- `NotFoundError` (unknown feature, view, service or push source) -> 404
- `RetrievalError`, `DefinitionError` (a request that cannot be served, e.g. missing join keys) -> 422
- `BackendUnavailableError` (online store or registry unreachable) -> 503, retryable
- anything else -> 500 with a generic body
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from potluck.feature_logs.spec import LogSpec
    from potluck.monitoring.gauges import MonitorSnapshot

Status = Literal["PRESENT", "NOT_FOUND", "OUTSIDE_MAX_AGE", "NULL_VALUE"]
PushTarget = Literal["online", "offline", "online_and_offline"]
ResourceKind = Literal["feature_view", "feature_service"]


@dataclass
class OnlineResult:
    """Column-oriented online read result.

    `feature_names` lists the join-key columns first, then the features. Column `i` has
    `values[i]`, `statuses[i]` and `event_timestamps[i]`, each one entry per entity row.
    A `None` event timestamp is served as epoch zero, as Feast does (join keys, `NOT_FOUND`).
    `views`, when given, names the feature view of each column (None for join keys); it labels
    the per-view status metrics.
    """

    feature_names: list[str]
    values: list[list[Any]]
    statuses: list[list[Status]]
    event_timestamps: list[list[datetime | None]]
    views: list[str | None] | None = None


@dataclass(frozen=True)
class Resource:
    """A feature view or feature service a request touches, with its tags (for authorization).

    A feature service lists the feature views it reads in `members`.
    """

    kind: ResourceKind
    name: str
    tags: Mapping[str, str] = field(default_factory=dict)
    members: tuple[Resource, ...] = ()


class ServingBackend(Protocol):
    """What the feature server calls. Implementations must be safe to call from several threads.

    `get_online_features` runs on the event loop: it must not block for long (await the store).
    """

    async def get_online_features(
        self,
        features: list[str] | None,
        feature_service: str | None,
        entities: dict[str, list[Any]],
        full_feature_names: bool,
    ) -> OnlineResult: ...

    def push(
        self, push_source_name: str, rows: dict[str, list[Any]], to: PushTarget, idempotency_key: str | None = None
    ) -> int:
        """Write rows (columns of equal length) through a push source; return the rows written."""
        ...

    def write_to_online_store(self, feature_view_name: str, rows: dict[str, list[Any]]) -> int:
        """Write rows (columns of equal length) to one view's online table, newest wins; return the rows written."""
        ...

    def materialize(self, start: datetime, end: datetime, views: list[str] | None) -> None: ...

    def materialize_incremental(self, end: datetime, views: list[str] | None) -> None: ...

    def ready(self) -> tuple[bool, str]:
        """Whether the registry is loaded and the online store reachable, and why not."""
        ...

    def freshness(self) -> dict[str, float | None]:
        """Per feature view: seconds since the end of its last materialization (None: never)."""
        ...

    def read_resources(self, features: list[str] | None, feature_service: str | None) -> list[Resource]:
        """The views (or the service, with its views as members) an online read touches."""
        ...

    def push_resources(self, push_source_name: str) -> list[Resource]:
        """The feature views a push source feeds."""
        ...

    def view_resources(self, views: list[str] | None) -> list[Resource]:
        """The named feature views, or all of them when `views` is None (for materialization)."""
        ...

    def feature_logging(self, feature_service: str) -> LogSpec | None:
        """What the service's requests are logged as, or None when it has no logging_config.

        Called on the event loop for every read of a feature service: it must be cheap (cached).
        """
        ...


@runtime_checkable
class MonitoringBackend(Protocol):
    """A backend that can say what monitoring found (drift, staleness limits, failed materializations)."""

    def monitoring(self) -> MonitorSnapshot:
        """Read at each scrape of /metrics, in a worker thread; may block up to the registry's timeouts."""
        ...
