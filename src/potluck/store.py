"""`FeatureStore`: the one object users hold. It wires the registry and the stores and delegates."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from potluck.definitions import DataSource, Definition, Entity, FeatureService, FeatureView
from potluck.definitions.errors import BreakingChangeError, ConfigError, RegistryConflictError
from potluck.repo.config import RepoConfig, load_config

if TYPE_CHECKING:
    from potluck.registry.cache import CachedRegistry
    from potluck.registry.snapshot import RegistrySnapshot
    from potluck.registry.sql import SqlRegistryStore
    from potluck.repo.loader import RepoContents
    from potluck.repo.plan import Plan

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

        return SqlRegistryStore(self.config.registry_url, self.project, self.config.registry.identity)

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
        """Hook for the stores to follow the registry (online tables for new and deleted views)."""

    def teardown(self) -> None:
        """Remove this project's definitions, history and online data."""
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

    def close(self) -> None:
        if "_registry_store" in self.__dict__:
            self._registry_store.dispose()

    def __repr__(self) -> str:
        return f"FeatureStore(project={self.project!r}, repo_path={str(self.repo_path)!r})"


def _filtered(objects: Any, tags: dict[str, str] | None) -> list[Any]:
    items = sorted(objects, key=lambda o: o.name)
    if not tags:
        return items
    return [o for o in items if all(o.tags.get(k) == v for k, v in tags.items())]
