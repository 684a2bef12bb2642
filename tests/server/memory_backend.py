"""An in-memory `ServingBackend` for the HTTP-layer tests (auth, limits, errors, metrics, OpenAPI)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from potluck.definitions.errors import BackendUnavailableError, NotFoundError, RetrievalError, suggestion
from potluck.server.backend import OnlineResult, PushTarget, Resource, Status

T0 = datetime(2024, 1, 1, tzinfo=UTC)


class MemoryBackend:
    """Two views (`driver_stats` keyed by driver_id, `merchant` keyed by merchant_id), one service.

    `fail_with` makes every call raise that exception (to test 503 and 500 paths).
    """

    def __init__(self) -> None:
        self.views: dict[str, dict[str, Any]] = {
            "driver_stats": {"key": "driver_id", "features": ["conv_rate", "trips"], "tags": {"team": "drivers"}},
            "merchant": {"key": "merchant_id", "features": ["rating"], "tags": {"team": "payments"}},
        }
        self.services = {"driver_service": ["driver_stats:conv_rate", "driver_stats:trips"]}
        self.service_tags = {"driver_service": {"team": "drivers"}}
        self.push_sources = {"driver_push": "driver_stats"}
        self.rows: dict[tuple[str, Any], tuple[dict[str, Any], datetime]] = {
            ("driver_stats", 1001): ({"conv_rate": 0.5, "trips": 10}, T0),
            ("driver_stats", 1002): ({"conv_rate": 0.7, "trips": 3}, T0),
            ("merchant", "m1"): ({"rating": 4.5}, T0),
        }
        self.materialized: list[tuple[Any, ...]] = []
        self.fail_with: BaseException | None = None
        self._lock = threading.Lock()

    def _check(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with

    def _refs(self, features: list[str] | None, feature_service: str | None) -> list[tuple[str, str]]:
        if feature_service is not None:
            if feature_service not in self.services:
                raise NotFoundError(
                    f"feature service '{feature_service}' does not exist. {suggestion(feature_service, self.services)}"
                )
            features = self.services[feature_service]
        refs = []
        for ref in features or []:
            view, sep, feat = ref.partition(":")
            if not sep or view not in self.views or feat not in self.views[view]["features"]:
                raise NotFoundError(f"feature '{ref}' does not exist")
            refs.append((view, feat))
        return refs

    def feature_logging(self, feature_service: str) -> None:
        return None  # no service of this backend logs

    async def get_online_features(
        self,
        features: list[str] | None,
        feature_service: str | None,
        entities: dict[str, list[Any]],
        full_feature_names: bool,
    ) -> OnlineResult:
        self._check()
        refs = self._refs(features, feature_service)
        keys = list(entities)
        n = len(entities[keys[0]]) if keys else 0
        names: list[str] = list(keys)
        values: list[list[Any]] = [list(entities[k]) for k in keys]
        statuses: list[list[Status]] = [["PRESENT"] * n for _ in keys]
        stamps: list[list[datetime | None]] = [[None] * n for _ in keys]
        views: list[str | None] = [None] * len(keys)
        for view, feat in refs:
            key = self.views[view]["key"]
            if key not in entities:
                raise RetrievalError(f"join key '{key}' of feature view '{view}' is missing from the entities")
            col: list[Any] = []
            st: list[Status] = []
            ts: list[datetime | None] = []
            for value in entities[key]:
                hit = self.rows.get((view, value))
                col.append(hit[0].get(feat) if hit else None)
                st.append("PRESENT" if hit else "NOT_FOUND")
                ts.append(hit[1] if hit else None)
            names.append(f"{view}__{feat}" if full_feature_names else feat)
            values.append(col)
            statuses.append(st)
            stamps.append(ts)
            views.append(view)
        return OnlineResult(names, values, statuses, stamps, views)

    def push(
        self, push_source_name: str, rows: dict[str, list[Any]], to: PushTarget, idempotency_key: str | None = None
    ) -> int:
        self._check()
        view = self.push_sources.get(push_source_name)
        if view is None:
            raise NotFoundError(f"push source '{push_source_name}' does not exist")
        return self._write(view, rows)

    def write_to_online_store(self, feature_view_name: str, rows: dict[str, list[Any]]) -> int:
        self._check()
        self._view(feature_view_name)
        return self._write(feature_view_name, rows)

    def _write(self, view: str, rows: dict[str, list[Any]]) -> int:
        key = self.views[view]["key"]
        if key not in rows:
            raise RetrievalError(f"write to '{view}' needs the column '{key}'")
        n = len(rows[key])
        with self._lock:
            for i in range(n):
                feats = {f: rows[f][i] for f in self.views[view]["features"] if f in rows}
                self.rows[(view, rows[key][i])] = (feats, datetime.now(UTC))
        return n

    def materialize(self, start: datetime, end: datetime, views: list[str] | None) -> None:
        self._check()
        for view in views or []:
            if view not in self.views:
                raise NotFoundError(f"feature view '{view}' does not exist")
        self.materialized.append(("full", start, end, views))

    def materialize_incremental(self, end: datetime, views: list[str] | None) -> None:
        self._check()
        for view in views or []:
            if view not in self.views:
                raise NotFoundError(f"feature view '{view}' does not exist")
        self.materialized.append(("incremental", end, views))

    def ready(self) -> tuple[bool, str]:
        if isinstance(self.fail_with, BackendUnavailableError):
            return False, "online store unreachable"
        return True, ""

    def freshness(self) -> dict[str, float | None]:
        return {"driver_stats": 42.0, "merchant": None}

    def _view(self, name: str) -> Resource:
        if name not in self.views:
            raise NotFoundError(f"feature view '{name}' does not exist")
        return Resource("feature_view", name, self.views[name]["tags"])

    def read_resources(self, features: list[str] | None, feature_service: str | None) -> list[Resource]:
        self._check()
        refs = self._refs(features, feature_service)
        views = [self._view(v) for v in dict.fromkeys(v for v, _ in refs)]
        if feature_service is not None:
            return [
                Resource("feature_service", feature_service, self.service_tags.get(feature_service, {}), tuple(views))
            ]
        return views

    def push_resources(self, push_source_name: str) -> list[Resource]:
        self._check()
        view = self.push_sources.get(push_source_name)
        if view is None:
            raise NotFoundError(f"push source '{push_source_name}' does not exist")
        return [self._view(view)]

    def view_resources(self, views: list[str] | None) -> list[Resource]:
        self._check()
        return [self._view(v) for v in (views if views is not None else list(self.views))]
