"""`StoreBackend`: the feature server's calls mapped onto a `FeatureStore`."""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from potluck.definitions import Definition, FeatureView
from potluck.definitions.errors import BackendUnavailableError, PotluckError
from potluck.feature_logs.resolve import LogSpecs, log_spec
from potluck.feature_logs.spec import LogSpec
from potluck.online.typed_values import http_column, needs_http_form
from potluck.server.backend import OnlineResult, PushTarget, Resource, Status
from potluck.server.coalesce import CoalescedReads
from potluck.server.offload import Offload
from potluck.store import FeatureStore

if TYPE_CHECKING:
    from potluck.monitoring.gauges import MonitorSnapshot
    from potluck.monitoring.state import MonitorState

log = logging.getLogger("potluck.server")


def _resource(view: Definition) -> Resource:
    return Resource("feature_view", view.name, dict(view.tags))


class StoreBackend:
    """Serves one repository's FeatureStore over HTTP. Safe to call from several threads.

    Online stores without non-blocking reads are read in `offload`'s threads, within its timeout.
    The registry is loaded once here so that requests only ever see the cached snapshot.
    """

    def __init__(self, store: FeatureStore, offload: Offload | None = None) -> None:
        self.store = store
        self.offload = offload or Offload(threads=16, timeout=5.0)
        self._async_reads = store.online_reads_async
        # A local SQLite lookup costs less than a thread crossing: one thread answers them in turns.
        # Reads over the network (PostgreSQL) keep a pool, so one slow query does not hold up the others.
        self._reads = CoalescedReads(self.offload.timeout) if store.config.online_store.type == "sqlite" else None
        self._log_specs = LogSpecs(store)
        self._monitor_state: MonitorState | None = None
        try:
            store.registry_snapshot()
        except Exception as err:  # the registry is down: /ready says so; requests answer 503
            log.warning("the registry could not be loaded at start: %s", type(err).__name__)

    def _request(self, features: list[str] | None, feature_service: str | None) -> Any:
        if feature_service is not None:
            return self.store.get_feature_service(feature_service, allow_cache=True)
        return list(features or [])

    async def get_online_features(
        self,
        features: list[str] | None,
        feature_service: str | None,
        entities: dict[str, list[Any]],
        full_feature_names: bool,
    ) -> OnlineResult:
        request = self._request(features, feature_service)
        if self._async_reads:
            response = await self.store.read_online_features_async(request, entities, full_feature_names)
        else:
            read = functools.partial(self.store.read_online_features, request, entities, full_feature_names)
            if self._reads is not None:
                pending = await self._reads.run(read)
            else:
                pending = await self.offload.run("online", "the online store", read)
            # On-demand functions (user code) never run on the read thread, which other requests share.
            response = await asyncio.to_thread(pending.finish) if pending.has_functions else pending.response
        keys = list(response.entity_columns)
        outputs = response.output_names
        values = response.values
        dtypes = response.dtypes
        values = {n: http_column(dtypes[n], values[n]) if needs_http_form(dtypes[n]) else values[n] for n in outputs}
        statuses = response.statuses  # FieldStatus is a str enum: serialized as its value
        stamps = response.event_timestamps
        view_of = response.view_names
        rows = response.num_rows
        present: list[Status] = ["PRESENT"] * rows
        no_time: list[datetime | None] = [None] * rows
        status_columns: list[list[Status]] = [present for _ in keys]
        status_columns.extend(statuses[n] for n in outputs)  # type: ignore[misc]
        time_columns: list[list[datetime | None]] = [no_time for _ in keys]
        time_columns.extend(stamps[n] for n in outputs)
        return OnlineResult(
            feature_names=[*keys, *outputs],
            values=[*(response.entity_columns[k] for k in keys), *(values[n] for n in outputs)],
            statuses=status_columns,
            event_timestamps=time_columns,
            views=[*([None] * len(keys)), *(view_of[n] for n in outputs)],
        )

    def feature_logging(self, feature_service: str) -> LogSpec | None:
        return self._log_specs.get(feature_service)

    def push(
        self, push_source_name: str, rows: dict[str, list[Any]], to: PushTarget, idempotency_key: str | None = None
    ) -> int:
        return self.store.push(push_source_name, rows, to=to, idempotency_key=idempotency_key)

    def write_to_online_store(self, feature_view_name: str, rows: dict[str, list[Any]]) -> int:
        return self.store.write_to_online_store(feature_view_name, rows)

    def materialize(self, start: datetime, end: datetime, views: list[str] | None) -> None:
        self.store.materialize(start, end, views)

    def materialize_incremental(self, end: datetime, views: list[str] | None) -> None:
        self.store.materialize_incremental(end, views)

    def ready(self) -> tuple[bool, str]:
        try:
            self.store.list_feature_views(allow_cache=True)
        except PotluckError as err:
            return False, f"registry not loaded: {err}"
        try:
            self.store.check_online_store()
        except BackendUnavailableError as err:
            return False, f"online store unreachable: {err}"
        except Exception as err:
            return False, f"online store check failed: {type(err).__name__}"
        return True, "ok"

    def freshness(self) -> dict[str, float | None]:
        return {f.feature_view: f.age.total_seconds() if f.age is not None else None for f in self.store.freshness()}

    def monitoring(self) -> MonitorSnapshot:
        from potluck.monitoring.snapshot import monitor_state, server_snapshot

        if self._monitor_state is None:
            self._monitor_state = monitor_state(self.store)
        return server_snapshot(self.store, self._monitor_state)

    def read_resources(self, features: list[str] | None, feature_service: str | None) -> list[Resource]:
        if feature_service is not None:
            service = self.store.get_feature_service(feature_service, allow_cache=True)
            members = tuple(_resource(self._readable(n)) for n in service.feature_view_names)
            return [Resource("feature_service", service.name, dict(service.tags), members)]
        names = dict.fromkeys(ref.split(":", 1)[0] for ref in features or [])
        return [_resource(self._readable(n)) for n in names]

    def _view(self, name: str) -> FeatureView:
        """A view from the cached registry (no per-request registry query)."""
        return self.store.registry_snapshot().feature_view(name)

    def _readable(self, name: str) -> Definition:
        """A view features are read from: on-demand views are scoped like any view (kind, name, tags)."""
        on_demand = self.store.registry_snapshot().of_kind("on_demand_feature_view").get(name)
        return on_demand if on_demand is not None else self._view(name)

    def push_resources(self, push_source_name: str) -> list[Resource]:
        self.store.get_push_source(push_source_name)
        return [_resource(v) for v in self.store.views_fed_by(push_source_name)]

    def view_resources(self, views: list[str] | None) -> list[Resource]:
        if views is None:  # every view materialization would touch, label views included
            snapshot = self.store.registry_snapshot()
            chosen: list[Definition] = [v for _, v in sorted(snapshot.feature_views().items())]
        else:
            chosen = [self._readable(n) for n in views]
        return [_resource(v) for v in chosen]


__all__ = ["StoreBackend", "log_spec"]  # log_spec: its home is potluck.feature_logs.resolve
