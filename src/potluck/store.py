"""`FeatureStore`: the one object users hold. It wires the registry and the stores and delegates."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from potluck.definitions import DataSource, Definition, Entity, FeatureService, FeatureView, PushSource
from potluck.definitions.errors import BreakingChangeError, ConfigError, RegistryConflictError
from potluck.repo.config import RepoConfig, load_config

if TYPE_CHECKING:
    from potluck.materialize.runner import MaterializationResult, ProgressFactory
    from potluck.offline.protocol import OfflineStore, RetrievalJob
    from potluck.online.protocol import OnlineStore
    from potluck.registry.cache import CachedRegistry
    from potluck.registry.snapshot import RegistrySnapshot
    from potluck.registry.sql import SqlRegistryStore
    from potluck.repo.loader import RepoContents
    from potluck.repo.plan import Plan
    from potluck.retrieval.online import OnlineResponse, OnlineSelection
    from potluck.retrieval.references import FeatureRequest
    from potluck.streaming.push import PushMode

_SDK_RETRIES = 5


class FeatureStore:
    """A feature repository's registry, offline store and online store, behind one facade."""

    def __init__(
        self,
        repo_path: str | Path | None = None,
        config: RepoConfig | None = None,
        fs_yaml_file: str | Path | None = None,
    ) -> None:
        if config is None:
            config = load_config(Path(repo_path) if repo_path is not None else Path.cwd(), fs_yaml_file)
        elif repo_path is not None:
            raise ConfigError("pass either repo_path or config to FeatureStore, not both")
        self.config = config
        self.repo_path = config.repo_path.resolve()
        self.project = config.project

    # -- wiring -------------------------------------------------------------------------------
    @cached_property
    def _registry_store(self) -> SqlRegistryStore:
        from potluck.registry.sql import SqlRegistryStore

        return SqlRegistryStore(
            self.config.registry_url, self.project, self.config.registry.identity, self.config.registry.timeouts()
        )

    @cached_property
    def _registry(self) -> CachedRegistry:
        from potluck.registry.cache import CachedRegistry

        return CachedRegistry(self._registry_store, self.config.registry.cache_ttl_seconds)

    def _snapshot(self) -> RegistrySnapshot:
        return self._registry.snapshot()

    def refresh_registry(self) -> None:
        """Re-read the registry now instead of waiting for the cache to expire."""
        self._registry.refresh()

    def _schema_of(self, source: DataSource) -> Any:
        from potluck.repo.sources import source_schema

        return source_schema(source, str(self.repo_path))

    # -- definitions ------------------------------------------------------------------------------
    def load_repository(self) -> RepoContents:
        """The definitions in this store's repository folder."""
        from potluck.repo.loader import load_repository

        return load_repository(self.repo_path)

    def plan(
        self,
        objects: Sequence[Definition] | None = None,
        objects_to_delete: Sequence[Definition] | None = None,
    ) -> Plan:
        """What `apply` would change. Without objects, plans the whole repository folder."""
        return self._prepare(objects, objects_to_delete, fresh=True)[0]

    def _prepare(
        self,
        objects: Sequence[Definition] | None,
        objects_to_delete: Sequence[Definition] | None,
        *,
        fresh: bool,
    ) -> tuple[Plan, RegistrySnapshot]:
        from potluck.repo.plan import compute_plan
        from potluck.repo.resolve import resolve_definitions

        snapshot = self._registry.refresh() if fresh else self._snapshot()
        if objects is None:
            contents = self.load_repository()
            resolved = resolve_definitions(contents.objects, None, self._schema_of, contents.where)
            return compute_plan(resolved, snapshot, delete_missing=True), snapshot
        resolved = resolve_definitions(list(objects), snapshot, self._schema_of)
        return compute_plan(resolved, snapshot, list(objects_to_delete or []), delete_missing=False), snapshot

    def apply(
        self,
        objects: Definition | Sequence[Definition] | None = None,
        objects_to_delete: Sequence[Definition] | None = None,
        *,
        allow_breaking: bool = True,
    ) -> Plan:
        """Register definitions in one transaction (all or none).

        With `objects=None` the whole repository folder is applied, deleting what it no longer
        defines. A concurrent apply that changed other objects is retried; one that changed the
        same objects raises `RegistryConflictError`.
        """
        if isinstance(objects, Definition):
            objects = [objects]
        for attempt in range(_SDK_RETRIES):
            plan, snapshot = self._prepare(objects, objects_to_delete, fresh=True)
            if plan.breaking and not allow_breaking:
                raise BreakingChangeError("breaking changes need --allow-breaking: " + "; ".join(plan.breaking))
            if not plan.has_changes:
                return plan
            try:
                self._commit(plan)
            except RegistryConflictError:
                if attempt == _SDK_RETRIES - 1 or not self._retry_is_safe(plan, snapshot):
                    raise
                continue
            self._after_apply(plan)
            return plan
        raise AssertionError("unreachable")

    def _commit(self, plan: Plan) -> None:
        from potluck.registry.sql import Change

        changes = [
            Change(d.kind, d.name, d.action, d.obj.to_spec() if d.action != "deleted" and d.obj else None)
            for d in plan.diffs
            if d.action != "unchanged"
        ]
        self._registry_store.commit(plan.base_version, changes)
        self._registry.refresh()

    def _retry_is_safe(self, plan: Plan, before: RegistrySnapshot) -> bool:
        """A retry is safe when the concurrent writer touched none of the objects this plan changes."""
        after = self._registry_store.load()
        for d in plan.diffs:
            if d.action == "unchanged":
                continue
            old = before.of_kind(d.kind).get(d.name)
            new = after.of_kind(d.kind).get(d.name)
            if (old is None) != (new is None) or (old is not None and new is not None and old != new):
                return False
        return True

    def _after_apply(self, plan: Plan) -> None:
        """The online store follows the registry: tables for new views, none for deleted ones.

        A view whose keys or features changed loses its online rows (they were encoded for the old
        schema) and must be materialized again.
        """
        from potluck.retrieval.plans import online_view

        create, drop = [], []
        for d in plan.diffs:
            if d.kind != FeatureView.kind or d.action == "unchanged" or not isinstance(d.obj, FeatureView):
                continue
            view = online_view(d.obj, self.project)
            reshaped = any(c.path.startswith(("features", "join_keys", "entity_columns")) for c in d.changes)
            if d.action == "deleted" or (d.action == "updated" and (reshaped or not d.obj.online)):
                drop.append(view)
            if d.action != "deleted" and d.obj.online:
                create.append(view)
        if drop:
            self._online.teardown(drop)
        if create:
            self._online.create(create)

    def teardown(self) -> None:
        """Remove this project's definitions, history and online data."""
        from potluck.retrieval.plans import online_view

        registered = self._registry.refresh().of_kind(FeatureView.kind).values()
        views = [online_view(v, self.project) for v in registered if isinstance(v, FeatureView)]
        if views:
            self._online.teardown(views)
        self._registry_store.teardown()
        self._registry.invalidate()

    def registry_history(self, limit: int = 50) -> list[Any]:
        return self._registry_store.history(limit)

    def list_entities(self, tags: dict[str, str] | None = None) -> list[Entity]:
        return _filtered(self._snapshot().of_kind(Entity.kind).values(), tags)

    def get_entity(self, name: str) -> Entity:
        return cast(Entity, self._snapshot().get(Entity.kind, name))

    def list_feature_views(self, tags: dict[str, str] | None = None) -> list[FeatureView]:
        return _filtered(self._snapshot().of_kind(FeatureView.kind).values(), tags)

    def get_feature_view(self, name: str) -> FeatureView:
        return cast(FeatureView, self._snapshot().get(FeatureView.kind, name))

    def list_feature_services(self, tags: dict[str, str] | None = None) -> list[FeatureService]:
        return _filtered(self._snapshot().of_kind(FeatureService.kind).values(), tags)

    def get_feature_service(self, name: str) -> FeatureService:
        return cast(FeatureService, self._snapshot().get(FeatureService.kind, name))

    def list_data_sources(self, tags: dict[str, str] | None = None) -> list[DataSource]:
        return _filtered(self._snapshot().of_kind(DataSource.kind).values(), tags)

    def get_data_source(self, name: str) -> DataSource:
        return cast(DataSource, self._snapshot().get(DataSource.kind, name))

    def registry_dump(self) -> dict[str, Any]:
        snap = self._registry.refresh()
        return {
            "project": snap.project,
            "version": snap.version,
            "objects": {
                kind: [obj.to_spec() for obj in sorted(objs.values(), key=lambda o: o.name)]
                for kind, objs in snap.objects.items()
            },
        }

    # -- training data --------------------------------------------------------------------------
    @cached_property
    def _offline(self) -> OfflineStore:
        from potluck.offline.duckdb_store import DuckDBOfflineStore

        return DuckDBOfflineStore(self.config.offline_store)

    def get_historical_features(
        self,
        entity_df: Any,
        features: FeatureRequest,
        full_feature_names: bool = False,
        *,
        availability_time: bool = False,
    ) -> RetrievalJob:
        """Point-in-time correct feature values for each row of `entity_df` (see the docs' semantics).

        With `availability_time=True`, a feature row also needs `created_ts <= entity_ts`: values
        that had not landed yet at that moment are not used, as serving could not have seen them.
        """
        from potluck.retrieval.plans import view_query
        from potluck.retrieval.references import resolve_features

        selections = resolve_features(features, self._snapshot(), full_feature_names=full_feature_names)
        queries = [view_query(s, str(self.repo_path)) for s in selections]
        return self._offline.get_historical_features(entity_df, queries, availability_time=availability_time)

    # -- serving ----------------------------------------------------------------------------------
    @cached_property
    def _online(self) -> OnlineStore:
        from potluck.online.factory import create_online_store

        return create_online_store(self.config)

    def _online_selections(self, features: FeatureRequest, full_feature_names: bool) -> list[OnlineSelection]:
        """The read plan of a request, compiled once per registry version."""
        from potluck.retrieval.online import OnlineSelection
        from potluck.retrieval.plans import online_view
        from potluck.retrieval.references import resolve_features

        snapshot = self._snapshot()
        request: object = (
            features.name
            if isinstance(features, FeatureService)
            else features
            if isinstance(features, str)
            else tuple(features)
        )
        cache_key = (snapshot.version, request, isinstance(features, FeatureService), full_feature_names)
        cached = self._plan_cache.get(cache_key)
        if cached is not None:
            return cached
        selections = [
            OnlineSelection(
                view=online_view(s.view, self.project),
                features=tuple(f.name for f in s.features),
                output_names=s.output_names,
            )
            for s in resolve_features(features, snapshot, full_feature_names=full_feature_names)
        ]
        if len(self._plan_cache) > 1024:
            self._plan_cache.clear()
        self._plan_cache[cache_key] = selections
        return selections

    @cached_property
    def _plan_cache(self) -> dict[Any, list[OnlineSelection]]:
        return {}

    def get_online_features(
        self,
        features: FeatureRequest,
        entity_rows: Any,
        full_feature_names: bool = False,
    ) -> OnlineResponse:
        """The latest values of `features` for each entity row (a list of dicts or a dict of lists)."""
        from potluck.retrieval.online import get_online_features

        selections = self._online_selections(features, full_feature_names)
        return get_online_features(self._online, selections, entity_rows)

    async def get_online_features_async(
        self,
        features: FeatureRequest,
        entity_rows: Any,
        full_feature_names: bool = False,
    ) -> OnlineResponse:
        """As `get_online_features`, awaitable: on Redis the read does not block the event loop.

        Concurrent calls on one event loop share a pipelined connection. Other online stores
        are read in the calling thread.
        """
        from potluck.retrieval.online import get_online_features_async

        selections = self._online_selections(features, full_feature_names)
        return await get_online_features_async(self._online, selections, entity_rows)

    def materialize(
        self,
        start_date: datetime,
        end_date: datetime,
        feature_views: Sequence[str] | None = None,
        *,
        progress: ProgressFactory | None = None,
        batch_rows: int | None = None,
    ) -> list[MaterializationResult]:
        """Copy each view's latest row per entity with start <= event time <= end to the online store."""
        from potluck.materialize.runner import materialize

        return materialize(
            self._views_for(feature_views),
            start=start_date,
            end=end_date,
            progress=progress,
            **self._materialize_parts(batch_rows),
        )

    def materialize_incremental(
        self,
        end_date: datetime,
        feature_views: Sequence[str] | None = None,
        *,
        lookback: timedelta = timedelta(0),
        progress: ProgressFactory | None = None,
        batch_rows: int | None = None,
    ) -> list[MaterializationResult]:
        """Materialize from where each view left off (first run: end - ttl) up to `end_date`.

        `lookback` re-reads that much before the last end, so rows that landed late are not lost.
        """
        from potluck.materialize.runner import materialize

        return materialize(
            self._views_for(feature_views),
            start=None,
            end=end_date,
            incremental_lookback=lookback,
            progress=progress,
            **self._materialize_parts(batch_rows),
        )

    def _materialize_parts(self, batch_rows: int | None) -> dict[str, Any]:
        from potluck.materialize.runner import DEFAULT_BATCH_ROWS

        return {
            "batch_rows": batch_rows or DEFAULT_BATCH_ROWS,
            "project": self.project,
            "repo_path": str(self.repo_path),
            "offline": self._offline,
            "online": self._online,
            "registry": self._registry_store,
        }

    def _views_for(self, names: Sequence[str] | None) -> list[FeatureView]:
        views = self.list_feature_views()
        if names is None:
            return [v for v in views if v.online]
        return [self.get_feature_view(n) for n in names]

    def materialization_intervals(self, feature_view: str | None = None) -> list[Any]:
        return self._registry_store.materializations(feature_view)

    def get_push_source(self, name: str) -> PushSource:
        """The push source called `name`; an unknown name suggests the nearest push sources."""
        from potluck.definitions.errors import UnknownFeatureError, suggestion

        sources = self._snapshot().of_kind(DataSource.kind)
        source = sources.get(name)
        if not isinstance(source, PushSource):
            pushable = [n for n, s in sources.items() if isinstance(s, PushSource)]
            raise UnknownFeatureError(f"push source '{name}' does not exist. {suggestion(name, pushable)}")
        return source

    def views_fed_by(self, source_name: str) -> list[FeatureView]:
        """The feature views whose source is `source_name`."""
        return [v for v in self.list_feature_views() if v.source.name == source_name]

    def check_online_store(self) -> None:
        """Raise `BackendUnavailableError` unless the online store answers a lookup."""
        from potluck.online.protocol import ReadRequest
        from potluck.retrieval.plans import online_view

        views = [v for v in self.list_feature_views() if v.online]
        if views:
            self._online.read([ReadRequest(online_view(views[0], self.project), [b"\x00ready"])])

    def registry_snapshot(self) -> RegistrySnapshot:
        """The registry as this store currently sees it (cached; refreshed in the background)."""
        return self._snapshot()

    def push(self, push_source_name: str, df: Any, to: PushMode | str = "online") -> int:
        """Write rows to the views fed by a push source, online, offline, or both."""
        from potluck.streaming.push import PushMode, push

        source = self.get_push_source(push_source_name)
        views = self.views_fed_by(push_source_name)
        mode = PushMode.parse(to)
        return push(
            source,
            views,
            df,
            mode,
            project=self.project,
            repo_path=str(self.repo_path),
            online=self._online if mode is not PushMode.OFFLINE else None,
            offline=self._offline if mode is not PushMode.ONLINE else None,
        )

    def close(self) -> None:
        if "_registry_store" in self.__dict__:
            self._registry_store.dispose()
        for part in ("_online", "_offline"):
            if part in self.__dict__:
                self.__dict__[part].close()

    def __repr__(self) -> str:
        return f"FeatureStore(project={self.project!r}, repo_path={str(self.repo_path)!r})"


def _filtered(objects: Any, tags: dict[str, str] | None) -> list[Any]:
    items = sorted(objects, key=lambda o: o.name)
    if not tags:
        return items
    return [o for o in items if all(o.tags.get(k) == v for k, v in tags.items())]
