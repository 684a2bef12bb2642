"""`FeatureStore`: the one object users hold. It wires the registry and the stores and delegates."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from potluck.definitions import (
    VIEW_KINDS,
    BatchFeatureView,
    DataSource,
    Definition,
    Entity,
    FeatureService,
    FeatureView,
    LabelView,
    OnDemandFeatureView,
    Project,
    PushSource,
    StreamFeatureView,
)
from potluck.definitions.errors import (
    BreakingChangeError,
    ConfigError,
    DefinitionError,
    NotFoundError,
    RegistryConflictError,
    RetrievalError,
)
from potluck.repo.config import RepoConfig, load_config
from potluck.retrieval.metadata import retrieval_metadata

if TYPE_CHECKING:
    from potluck.definitions.saved_dataset import SavedDataset, SavedDatasetStorage
    from potluck.feature_logs.logger import LogStats
    from potluck.feature_logs.sdk import SdkFeatureLog
    from potluck.materialize.runner import BatchEngine, MaterializationResult, ProgressFactory
    from potluck.materialize.watermark import ViewFreshness
    from potluck.monitoring.drift import DriftReport
    from potluck.monitoring.profile import Profile
    from potluck.monitoring.report import MonitorRunReport
    from potluck.monitoring.service import Monitoring, RunPart
    from potluck.monitoring.skew import SkewReport
    from potluck.monitoring.state import MonitorState
    from potluck.offline.protocol import OfflineStore, RetrievalJob
    from potluck.online.protocol import OnlineStore
    from potluck.registry.cache import CachedRegistry
    from potluck.registry.pending import PendingOnlineChanges
    from potluck.registry.snapshot import RegistrySnapshot
    from potluck.registry.sql import SqlRegistryStore
    from potluck.repo.loader import RepoContents
    from potluck.repo.plan import Plan
    from potluck.retrieval.on_demand import ResolvedRequest
    from potluck.retrieval.online import OnlineResponse, OnlineSelection
    from potluck.retrieval.references import FeatureRequest
    from potluck.retrieval.saved import SavedDatasets
    from potluck.transforms.code import Udf

    OnlinePlan = tuple[ResolvedRequest, list[Udf]]
    from potluck.streaming.on_demand_writes import StoredView
    from potluck.streaming.push import PushMode

_SDK_RETRIES = 5


def _stored(view: Definition | None) -> OnDemandFeatureView | None:
    """`view` when it is an on-demand view stored at write time."""
    return view if isinstance(view, OnDemandFeatureView) and view.write_to_online_store else None


def _resets_stored(old: OnDemandFeatureView | None, new: OnDemandFeatureView | None) -> bool:
    """A stored on-demand view gets a new online generation when first stored or reshaped."""
    if old is None or new is None:
        return True
    a, b = old.to_spec(), new.to_spec()
    return any(a.get(k) != b.get(k) for k in ("features", "entity_columns"))


def _resets_online(old: FeatureView | None, new: FeatureView | None) -> bool:
    """A view gets a new online generation (fresh, empty rows) when created, reshaped or its
    `online` flag flips; its old generation's rows are then dropped."""
    if old is None or new is None:
        return True
    a, b = old.to_spec(), new.to_spec()
    return old.online != new.online or any(a[k] != b[k] for k in ("features", "join_keys", "entity_columns"))


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
        from potluck.definitions.sources import PostgreSQLSource
        from potluck.repo.sources import source_schema

        if isinstance(source, PostgreSQLSource):
            from potluck.repo.sources import database_source_schema

            return database_source_schema(source, self.config.offline_store.type, self._offline)
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
        from potluck.repo.pins import apply_pins, has_pins
        from potluck.repo.plan import compute_plan
        from potluck.repo.resolve import resolve_definitions

        snapshot = self._registry.refresh() if fresh else self._snapshot()
        where: Callable[[Definition], str] = _in_sdk
        if objects is None:
            contents = self.load_repository()
            declared, existing, where = contents.objects, None, contents.where
        else:
            declared, existing = list(objects), snapshot
        resolved = resolve_definitions(declared, existing, self._schema_of, where, self.project)
        if has_pins(resolved):  # pinned views become their recorded definitions, checked again as such
            pinned = apply_pins(resolved, self._registry_store.feature_view_versions, where)
            resolved = resolve_definitions(pinned, existing, self._schema_of, where, self.project)
        if objects is None:
            return compute_plan(resolved, snapshot, delete_missing=True), snapshot
        return compute_plan(resolved, snapshot, list(objects_to_delete or []), delete_missing=False), snapshot

    def apply(
        self,
        objects: Definition | Sequence[Definition] | None = None,
        objects_to_delete: Sequence[Definition] | None = None,
        *,
        allow_breaking: bool = True,
        plan: Plan | None = None,
        no_promote: bool = False,
    ) -> Plan:
        """Register definitions in one transaction (all or none).

        With `objects=None` the whole repository folder is applied, deleting what it no longer
        defines. When another apply commits first, this one is retried only if planning again
        gives exactly the same changes (nothing it did not plan is deleted or overwritten);
        otherwise it raises `RegistryConflictError`. With `plan=`, see `apply_plan`.
        Online cleanups that cannot run yet are kept and listed in the returned plan's `warnings`.
        With `no_promote=True`, a changed feature view's new definition is only recorded as its next
        version (usable in training data as `view@vN:feature`); its current definition stays.
        """
        if plan is not None:
            if objects is not None or objects_to_delete is not None:
                raise ConfigError("apply: pass either a plan or objects to apply, not both")
            return self.apply_plan(plan, allow_breaking=allow_breaking, no_promote=no_promote)
        if isinstance(objects, Definition):
            objects = [objects]
        first: Plan | None = None
        for attempt in range(_SDK_RETRIES):
            current, _ = self._prepare(objects, objects_to_delete, fresh=True)
            if not current.has_changes:
                current.warnings = self.finish_pending_online()
                return current
            if first is None:
                first = current
            elif not current.same_changes(first):
                raise RegistryConflictError(
                    f"the registry of project '{self.project}' changed while this apply was prepared "
                    f"(planned against version {first.base_version}, now at version {current.base_version}) "
                    f"and the plan is no longer the same ({'; '.join(current.differences(first))}); "
                    "run plan/apply again"
                )
            if current.breaking and not allow_breaking:
                raise BreakingChangeError("breaking changes need --allow-breaking: " + "; ".join(current.breaking))
            try:
                self._commit(current, no_promote)
            except RegistryConflictError:
                if attempt == _SDK_RETRIES - 1:
                    raise
                continue
            return self._after_apply(current)
        raise AssertionError("unreachable")

    def apply_plan(self, plan: Plan, *, allow_breaking: bool = True, no_promote: bool = False) -> Plan:
        """Commit exactly the changes of `plan` (from `plan()`), if the registry is still at its version.

        The registry having moved since the plan was computed raises `RegistryConflictError`:
        what is committed is always what the plan showed.
        """
        if plan.breaking and not allow_breaking:
            raise BreakingChangeError("breaking changes need --allow-breaking: " + "; ".join(plan.breaking))
        if not plan.has_changes:
            plan.warnings = self.finish_pending_online()
            return plan
        self._commit(plan, no_promote)
        return self._after_apply(plan)

    def _commit(self, plan: Plan, no_promote: bool = False) -> None:
        """Write the plan's changes at `plan.base_version`; views whose online shape changes get a
        new generation (the new version) and owe a drop of their old one, in the same transaction.
        With `no_promote`, updated views (not pinned ones) are recorded as versions only."""
        from potluck.definitions.feature_view import ONLINE_GENERATION
        from potluck.registry.sql import Change

        new_version = plan.base_version + 1
        changes: list[Change] = []
        drops: list[FeatureView | OnDemandFeatureView] = []
        resets: list[str] = []
        for d in plan.diffs:
            if d.action == "unchanged":
                continue
            spec = d.obj.to_spec() if d.action != "deleted" and d.obj is not None else None
            if d.kind in VIEW_KINDS and isinstance(d.obj, FeatureView):
                pin = d.obj.pinned_version if spec is not None else None
                if no_promote and d.action == "updated" and pin is None:
                    changes.append(Change(d.kind, d.name, d.action, spec, promote=False))
                    continue
                old = d.old if isinstance(d.old, FeatureView) else None
                new = d.obj if spec is not None else None
                generation = old.online_generation if old is not None else 0
                if _resets_online(old, new):
                    resets.append(d.name)
                    if old is not None:
                        drops.append(old)
                    generation = new_version
                if spec is not None and generation:
                    spec[ONLINE_GENERATION] = generation
                changes.append(Change(d.kind, d.name, d.action, spec, pin=pin))
                continue
            if d.kind == OnDemandFeatureView.kind:
                old_stored, new_stored = _stored(d.old), _stored(d.obj) if spec is not None else None
                if old_stored is not None or new_stored is not None:
                    generation = old_stored.online_generation if old_stored is not None else 0
                    if _resets_stored(old_stored, new_stored):
                        if old_stored is not None:
                            drops.append(old_stored)
                        generation = new_version
                    if spec is not None and new_stored is not None:
                        spec[ONLINE_GENERATION] = generation
            changes.append(Change(d.kind, d.name, d.action, spec))

        def also(cursor: Any, _version: int) -> None:
            self._pending.record(cursor, drops, resets)

        self._registry_store.commit(plan.base_version, changes, also=also)

    @cached_property
    def _pending(self) -> PendingOnlineChanges:
        from potluck.registry.pending import PendingOnlineChanges

        return PendingOnlineChanges(self._registry_store.database, self.project)

    def finish_pending_online(self) -> list[str]:
        """Drop the online rows earlier applies still owe; returns a warning for what cannot run yet.

        Never raises for the online store: owed drops stay recorded until it is reachable, and
        their rows are never read meanwhile (they belong to an earlier generation of the view).
        """
        from potluck.retrieval.plans import any_online_view

        try:
            owed, unreadable = self._pending.read()
        except Exception as err:  # the registry went away; the records stay for the next apply
            return [f"online cleanups not checked: {err}. The next apply finishes any that are pending."]
        for i, drop in enumerate(owed):
            try:
                self._online.teardown([any_online_view(drop.view, self.project)])
                self._pending.done(drop)
            except Exception as err:  # the registry is committed: report, keep the record, go on
                names = ", ".join(sorted({d.view.name for d in owed[i:]}))
                return [
                    *unreadable,
                    f"online cleanup pending for {len(owed) - i} old version(s) of feature view(s) {names}: {err}. "
                    "It finishes at the next apply once the online store is reachable; "
                    "those rows are not served meanwhile.",
                ]
        return unreadable

    def _after_apply(self, plan: Plan) -> Plan:
        """The online store follows the registry: the drops the commit recorded, tables for new views.

        A failure here never fails the apply (the registry is committed): it becomes a warning.
        """
        from potluck.retrieval.plans import online_view, stored_view

        warnings = self.finish_pending_online()
        kinds = (*VIEW_KINDS, OnDemandFeatureView.kind)
        changed = {d.name for d in plan.diffs if d.kind in kinds and d.action in ("created", "updated")}
        try:
            snapshot = self._registry.refresh()
            views = snapshot.feature_views().values()
            create = [
                online_view(v, self.project)
                for v in views
                if v.name in changed and isinstance(v, FeatureView) and v.online
            ]
            create += [
                stored_view(v, self.project)
                for v in snapshot.of_kind(OnDemandFeatureView.kind).values()
                if v.name in changed and _stored(v) is not None and isinstance(v, OnDemandFeatureView)
            ]
            if create:
                self._online.create(create)
        except Exception as err:  # materialization creates the tables too
            names = ", ".join(sorted(changed)) or "new views"
            warnings = [*warnings, f"online tables of {names} not created yet (materialize creates them): {err}"]
        plan.warnings = warnings
        return plan

    def teardown(self) -> None:
        """Remove this project's definitions, history and online data (owed drops included)."""
        from potluck.retrieval.plans import any_online_view

        snapshot = self._registry.refresh()
        registered = [
            *snapshot.feature_views().values(),
            *snapshot.of_kind(OnDemandFeatureView.kind).values(),
        ]
        views = [
            any_online_view(v, self.project)
            for v in registered
            if isinstance(v, FeatureView) or (_stored(v) is not None and isinstance(v, OnDemandFeatureView))
        ]
        views += [any_online_view(d.view, self.project) for d in self._pending.list()]
        if views:
            self._online.teardown(views)
        self._registry_store.teardown()
        self._monitor_state.teardown()
        self._pending.clear()
        self._registry.invalidate()

    def registry_history(self, limit: int = 50) -> list[Any]:
        return self._registry_store.history(limit)

    def list_projects(self, allow_cache: bool = False, tags: dict[str, str] | None = None) -> list[Project]:
        """This repository's project: its applied `Project` definition, else one named by feature_store.yaml."""
        stored = list(self._registry_view(allow_cache).of_kind(Project.kind).values())
        return _filtered(stored or [Project(name=self.project)], tags)

    def get_project(self, name: str, allow_registry_cache: bool = False) -> Project:
        for project in self.list_projects(allow_registry_cache):
            if project.name == name:
                return project
        raise NotFoundError(f"project '{name}' not found; this repository's project is '{self.project}'")

    def _registry_view(self, allow_cache: bool) -> RegistrySnapshot:
        """The cached snapshot, or (as Feast's `allow_cache=False`) the registry read now."""
        return self._snapshot() if allow_cache else self._registry.refresh()

    def list_entities(self, allow_cache: bool = False, tags: dict[str, str] | None = None) -> list[Entity]:
        return _filtered(self._registry_view(allow_cache).of_kind(Entity.kind).values(), tags)

    def get_entity(self, name: str, allow_registry_cache: bool = False) -> Entity:
        return cast(Entity, self._registry_view(allow_registry_cache).get(Entity.kind, name))

    def list_feature_views(self, allow_cache: bool = False, tags: dict[str, str] | None = None) -> list[FeatureView]:
        """The registered feature views, each with its `materialization_intervals`."""
        from potluck.materialize.watermark import with_intervals

        views = _filtered(self._registry_view(allow_cache).of_kind(FeatureView.kind).values(), tags)
        return with_intervals(views, self._registry_store.materializations()) if views else views

    def list_all_feature_views(
        self, allow_cache: bool = False, tags: dict[str, str] | None = None
    ) -> list[FeatureView | OnDemandFeatureView]:
        """Feature views of every kind: regular and batch views, stream views, on-demand views, then label views."""
        views: list[FeatureView | OnDemandFeatureView] = list(self.list_feature_views(allow_cache, tags))
        views += self.list_stream_feature_views(allow_cache, tags)
        return [
            *views,
            *self.list_on_demand_feature_views(allow_cache, tags),
            *self.list_label_views(allow_cache, tags),
        ]

    def list_label_views(self, allow_cache: bool = False, tags: dict[str, str] | None = None) -> list[LabelView]:
        """The registered label views, each with its `materialization_intervals`."""
        from potluck.materialize.watermark import with_intervals

        views = _filtered(self._registry_view(allow_cache).of_kind(LabelView.kind).values(), tags)
        return with_intervals(views, self._registry_store.materializations()) if views else views

    def get_label_view(self, name: str, allow_registry_cache: bool = False) -> LabelView:
        """The registered label view called `name`, with its `materialization_intervals`."""
        from potluck.materialize.watermark import with_intervals

        view = cast(LabelView, self._registry_view(allow_registry_cache).get(LabelView.kind, name))
        return with_intervals([view], self._registry_store.materializations(name))[0]

    def list_stream_feature_views(
        self, allow_cache: bool = False, tags: dict[str, str] | None = None
    ) -> list[StreamFeatureView]:
        return _filtered(self._registry_view(allow_cache).of_kind(StreamFeatureView.kind).values(), tags)

    def get_stream_feature_view(self, name: str, allow_registry_cache: bool = False) -> StreamFeatureView:
        return cast(StreamFeatureView, self._registry_view(allow_registry_cache).get(StreamFeatureView.kind, name))

    def list_batch_feature_views(
        self, allow_cache: bool = False, tags: dict[str, str] | None = None
    ) -> list[BatchFeatureView]:
        """The feature views declared as `BatchFeatureView` (listed among `list_feature_views` too)."""
        views = self._registry_view(allow_cache).of_kind(FeatureView.kind).values()
        return _filtered([v for v in views if isinstance(v, BatchFeatureView)], tags)

    def get_feature_view(self, name: str, allow_registry_cache: bool = False) -> FeatureView:
        """The registered view called `name`, with its `materialization_intervals`."""
        from potluck.materialize.watermark import with_intervals

        view = cast(FeatureView, self._registry_view(allow_registry_cache).get(FeatureView.kind, name))
        return with_intervals([view], self._registry_store.materializations(name))[0]

    def list_feature_view_versions(self, name: str) -> list[dict[str, Any]]:
        """The applied definitions of feature view `name`, oldest first, as Feast lists them (`version`,
        `version_number`, `feature_view_type`, `created_timestamp`, `version_id`) plus `current`."""
        current = self.get_feature_view(name).current_version_number
        return [
            {
                "version": v.tag,
                "version_number": v.number,
                "feature_view_type": FeatureView.kind,
                "created_timestamp": v.created_at,
                "version_id": v.content_hash,
                "current": v.number == current,
            }
            for v in self._registry_store.feature_view_versions(name)
        ]

    def _view_versions(self, name: str) -> dict[int, FeatureView]:
        return {v.number: v.view() for v in self._registry_store.feature_view_versions(name)}

    def list_on_demand_feature_views(
        self, allow_cache: bool = False, tags: dict[str, str] | None = None
    ) -> list[OnDemandFeatureView]:
        return _filtered(self._registry_view(allow_cache).of_kind(OnDemandFeatureView.kind).values(), tags)

    def get_on_demand_feature_view(self, name: str, allow_registry_cache: bool = False) -> OnDemandFeatureView:
        return cast(OnDemandFeatureView, self._registry_view(allow_registry_cache).get(OnDemandFeatureView.kind, name))

    def list_feature_services(self, tags: dict[str, str] | None = None) -> list[FeatureService]:
        return _filtered(self._registry_view(False).of_kind(FeatureService.kind).values(), tags)

    def get_feature_service(self, name: str, allow_cache: bool = False) -> FeatureService:
        return cast(FeatureService, self._registry_view(allow_cache).get(FeatureService.kind, name))

    def list_data_sources(self, allow_cache: bool = False, tags: dict[str, str] | None = None) -> list[DataSource]:
        return _filtered(self._registry_view(allow_cache).of_kind(DataSource.kind).values(), tags)

    def get_data_source(self, name: str) -> DataSource:
        return cast(DataSource, self._registry_view(False).get(DataSource.kind, name))

    def delete_feature_view(self, name: str) -> None:
        """Remove a feature view from the registry (one transaction, as `apply`) and drop its online rows.

        A view that feature services still use is refused, naming them: delete those first.
        """
        view = self.get_feature_view(name)
        services = [repr(s.name) for s in self.list_feature_services() if name in s.feature_view_names]
        readers = [
            repr(v.name) for v in self.list_on_demand_feature_views() if name in [p.name for p in v.source_projections]
        ]
        users = [f"feature service(s) {', '.join(services)}"] if services else []
        users += [f"on-demand feature view(s) {', '.join(readers)}"] if readers else []
        if users:
            raise DefinitionError(
                f"feature view '{name}' is used by {' and '.join(users)}; delete or change those first"
            )
        self._delete(view)

    def delete_feature_service(self, name: str) -> None:
        """Remove a feature service from the registry (one transaction, as `apply`)."""
        self._delete(self.get_feature_service(name))

    def _delete(self, obj: Definition) -> None:
        plan = self.apply([], [obj])
        if plan.warnings:
            import warnings

            for message in plan.warnings:
                warnings.warn(message, stacklevel=3)

    def registry_dump(self) -> dict[str, Any]:
        from potluck.registry.snapshot import registered_spec

        snap = self._registry.refresh()
        return {
            "project": snap.project,
            "version": snap.version,
            "objects": {
                kind: [registered_spec(obj) for obj in sorted(objs.values(), key=lambda o: o.name)]
                for kind, objs in snap.objects.items()
            },
        }

    # -- training data --------------------------------------------------------------------------
    @cached_property
    def _offline(self) -> OfflineStore:
        from potluck.offline.factory import offline_store

        return offline_store(self.config.offline_store)

    def get_historical_features(
        self,
        entity_df: Any,
        features: FeatureRequest,
        full_feature_names: bool = False,
        *,
        availability_time: bool = False,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
    ) -> RetrievalJob:
        """Point-in-time correct feature values for each row of `entity_df` (see the docs' semantics).

        With `availability_time=True`, a feature row also needs `created_ts <= entity_ts`: values
        that had not landed yet at that moment are not used, as serving could not have seen them.
        With `entity_df=None`, the entity rows are every entity with rows between `start_date` and
        `end_date` (default: now), each as of `end_date`.
        """
        from potluck.retrieval.on_demand import resolve_request
        from potluck.retrieval.plans import view_query

        snapshot = self._snapshot()
        request = resolve_request(
            features, snapshot, full_feature_names=full_feature_names, versions=self._view_versions
        )
        udfs = request.udfs(self.repo_path)  # a function that differs from the registry fails before any work
        selections = request.offline_reads[0] if request.on_demand else request.selections
        queries = [view_query(s, str(self.repo_path)) for s in selections]
        if entity_df is None:
            from potluck.materialize.runner import DEFAULT_BATCH_ROWS, utc
            from potluck.retrieval.snapshot import entity_snapshot

            end = utc(end_date) if end_date is not None else datetime.now(UTC)
            start = utc(start_date) if start_date is not None else None
            entity_df = entity_snapshot(self._offline, selections, queries, start, end, DEFAULT_BATCH_ROWS)
        elif start_date is not None or end_date is not None:
            raise RetrievalError("pass either an entity dataframe or start_date/end_date, not both")
        job = self._offline.get_historical_features(entity_df, queries, availability_time=availability_time)
        metadata = retrieval_metadata(
            features, request, getattr(job, "entity_stats", None), full_feature_names, snapshot.version
        )
        if request.on_demand:
            from potluck.materialize.runner import DEFAULT_BATCH_ROWS
            from potluck.retrieval.on_demand import OnDemandRetrievalJob

            job = OnDemandRetrievalJob(job, request, udfs, DEFAULT_BATCH_ROWS)
        if hasattr(job, "metadata"):
            job.metadata = replace(metadata, repo_path=str(self.repo_path))
        return job

    # -- saved datasets ---------------------------------------------------------------------------
    @property
    def _saved_datasets(self) -> SavedDatasets:
        from potluck.retrieval.saved import SavedDatasets

        return SavedDatasets(self._registry_store, self._registry, self.repo_path)

    def create_saved_dataset(
        self,
        from_: Any,
        name: str,
        storage: SavedDatasetStorage,
        tags: dict[str, str] | None = None,
        feature_service: FeatureService | None = None,
        allow_overwrite: bool = False,
    ) -> SavedDataset:
        """Write the result of `from_` (a `get_historical_features` job) to `storage` and record it
        in the registry as saved dataset `name` (docs/skew.md). An existing name is an error unless
        `allow_overwrite`."""
        return self._saved_datasets.create(from_, name, storage, tags, feature_service, allow_overwrite)

    def get_saved_dataset(self, name: str) -> SavedDataset:
        """Saved dataset `name`, its data readable with `.to_df()` / `.to_arrow()`."""
        return self._saved_datasets.get(name)

    def list_saved_datasets(self, tags: dict[str, str] | None = None) -> list[SavedDataset]:
        return self._saved_datasets.list(tags)

    # -- serving ----------------------------------------------------------------------------------
    @cached_property
    def _online(self) -> OnlineStore:
        from potluck.online.factory import create_online_store

        return create_online_store(self.config)

    def _online_selections(
        self, features: FeatureRequest, full_feature_names: bool
    ) -> tuple[list[OnlineSelection], OnlinePlan | None]:
        """The read plan of a request (and its on-demand part, if any), compiled once per registry version."""
        from potluck.retrieval.on_demand import resolve_request
        from potluck.retrieval.online import OnlineSelection
        from potluck.retrieval.plans import online_view, stored_ttl, stored_view

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
        request = resolve_request(features, snapshot, full_feature_names=full_feature_names, serving=True)
        views = snapshot.feature_views()
        regular = [
            OnlineSelection(
                view=online_view(s.view, self.project),
                features=tuple(f.name for f in s.features),
                output_names=s.output_names,
            )
            for s in request.selections
        ]
        stored = [
            OnlineSelection(
                view=stored_view(s.view, self.project, stored_ttl(s.view, views)),
                features=tuple(f.name for f in s.features),
                output_names=s.output_names,
            )
            for s in request.stored
        ]
        inputs = [
            OnlineSelection(
                view=online_view(s.view, self.project),
                features=tuple(f.name for f in s.features),
                output_names=s.output_names,
            )
            for s in request.online_inputs[0]
        ]
        selections = [*regular, *stored, *inputs]
        on_demand = (request, request.udfs(self.repo_path)) if request.on_demand else None
        if len(self._plan_cache) > 1024:
            self._plan_cache.clear()
        self._plan_cache[cache_key] = (selections, on_demand)
        return selections, on_demand

    @cached_property
    def _plan_cache(self) -> dict[Any, tuple[list[OnlineSelection], OnlinePlan | None]]:
        return {}

    def get_online_features(
        self,
        features: FeatureRequest,
        entity_rows: Any,
        full_feature_names: bool = False,
        include_feature_view_version_metadata: bool = False,
    ) -> OnlineResponse:
        """The latest values of `features` for each entity row (a list of dicts or a dict of lists).

        Only join keys are echoed back; other keys of the entity rows are not features.
        `include_feature_view_version_metadata` is accepted for Feast's signature; the response
        carries no version metadata.
        """
        response = self.read_online_features(features, entity_rows, full_feature_names).finish()
        self._log_read(features, response)
        return response

    def _log_read(self, features: FeatureRequest, response: OnlineResponse) -> None:
        """A read of a feature service (object or name) is offered to its feature log, if it has one."""
        if isinstance(features, FeatureService):
            if features.logging_config is not None:
                self._feature_log.log(features.name, response)
        elif isinstance(features, str):
            self._feature_log.log(features, response)

    @cached_property
    def _feature_log(self) -> SdkFeatureLog:
        from potluck.feature_logs.sdk import sdk_feature_log

        return sdk_feature_log(self)

    def feature_log_stats(self) -> LogStats:
        """Rows of feature service reads logged, dropped (full queue, failed writes) and queued, per service."""
        if "_feature_log" not in self.__dict__:
            from potluck.feature_logs.logger import LogStats

            return LogStats({}, {}, {}, 0)
        return self._feature_log.stats()

    def read_online_features(
        self, features: FeatureRequest, entity_rows: Any, full_feature_names: bool = False
    ) -> OnlineRead:
        """The online store's part of `get_online_features`; `finish()` runs the on-demand functions.

        A server reads on one thread and runs the functions (user code, of unknown cost) on another.
        """
        from potluck.retrieval.online import get_online_features

        selections, on_demand = self._online_selections(features, full_feature_names)
        return OnlineRead(get_online_features(self._online, selections, entity_rows), on_demand)

    async def get_online_features_async(
        self,
        features: FeatureRequest,
        entity_rows: Any,
        full_feature_names: bool = False,
        include_feature_view_version_metadata: bool = False,
    ) -> OnlineResponse:
        """As `get_online_features`, awaitable: on Redis the read does not block the event loop.

        Concurrent calls on one event loop share a pipelined connection. Other online stores
        are read in the calling thread. On-demand functions (user code, of unknown cost) run in a
        worker thread, never on the event loop.
        """
        response = await self.read_online_features_async(features, entity_rows, full_feature_names)
        self._log_read(features, response)
        return response

    async def read_online_features_async(
        self, features: FeatureRequest, entity_rows: Any, full_feature_names: bool = False
    ) -> OnlineResponse:
        """`get_online_features_async` without feature logging (the server logs its answers itself)."""
        import asyncio

        from potluck.retrieval.online import get_online_features_async

        selections, on_demand = self._online_selections(features, full_feature_names)
        response = await get_online_features_async(self._online, selections, entity_rows)
        if on_demand is None:
            return response
        return await asyncio.to_thread(_with_on_demand, response, on_demand)

    @property
    def online_reads_async(self) -> bool:
        """Whether `get_online_features_async` reads without blocking the event loop (it does on Redis)."""
        return callable(getattr(self._online, "read_async", None))

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
            **self._materialize_parts(batch_rows, feature_views),
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
            **self._materialize_parts(batch_rows, feature_views),
        )

    def _materialize_parts(self, batch_rows: int | None, names: Sequence[str] | None) -> dict[str, Any]:
        from potluck.materialize.runner import DEFAULT_BATCH_ROWS

        snapshot = self._snapshot()

        def stored_for(view: FeatureView) -> list[StoredView]:
            """The stored views that follow `view`; those that need request data are skipped (warned)."""
            import warnings

            from potluck.definitions.errors import PotluckWarning

            out = []
            for stored in self._stored_reading(snapshot, [view]):
                if stored.needs_request:
                    fields = ", ".join(repr(f.name) for f in stored.view.request_fields)
                    warnings.warn(
                        f"materialize of feature view '{view.name}': on-demand feature view '{stored.view.name}' "
                        f"is not updated, it needs request field(s) {fields} that the offline rows do not have; "
                        "write its rows with push or write_to_online_store",
                        PotluckWarning,
                        stacklevel=4,
                    )
                    continue
                out.append(stored)
            return out

        return {
            "stored_for": stored_for,
            "batch_rows": batch_rows or self.config.materialization.online_write_batch_size or DEFAULT_BATCH_ROWS,
            "max_clock_skew": timedelta(seconds=self.config.materialization.max_clock_skew_seconds),
            "project": self.project,
            "repo_path": str(self.repo_path),
            "offline": self._offline,
            "online": self._online,
            "registry": self._registry_store,
            "on_outcome": self._materialization_watch,
            "engine": self._batch_engine,
        }

    @cached_property
    def _batch_engine(self) -> BatchEngine | None:
        """The configured batch engine (None: the local engine, inside this process)."""
        section = self.config.batch_engine
        if section.type != "spark.engine":
            return None
        from potluck.materialize.spark import SparkEngine
        from potluck.offline.spark_config import SparkOfflineStoreConfig

        shared = self._offline if isinstance(self.config.offline_store, SparkOfflineStoreConfig) else None
        return SparkEngine(section, self.config, offline=shared)

    @cached_property
    def _monitor_state(self) -> MonitorState:
        from potluck.monitoring.snapshot import monitor_state

        return monitor_state(self)

    @cached_property
    def _materialization_watch(self) -> Callable[[str, BaseException | None], None]:
        """Records each view's materialization outcome and alerts failures (`monitoring.alerts`)."""
        from potluck.monitoring.materialization import MaterializationWatch
        from potluck.monitoring.snapshot import alerts_config

        return MaterializationWatch(self._monitor_state, self.project, alerts_config(self))

    def _views_for(self, names: Sequence[str] | None) -> list[FeatureView]:
        """The views to materialize; an on-demand view stored at write time stands for its source views."""
        from potluck.transforms.runner import RequestDataMissingError

        snapshot = self._snapshot()
        if names is None:
            return [v for v in _filtered(snapshot.feature_views().values(), None) if v.online]
        on_demand = snapshot.of_kind(OnDemandFeatureView.kind)
        chosen: dict[str, FeatureView] = {}
        for n in names:
            odfv = on_demand.get(n)
            if not isinstance(odfv, OnDemandFeatureView):
                chosen.setdefault(n, snapshot.feature_view(n))
                continue
            if not odfv.write_to_online_store:
                raise RetrievalError(
                    f"materialize: on-demand feature view '{n}' is computed at read time "
                    "(write_to_online_store=False); there is nothing to materialize"
                )
            if odfv.request_fields:
                fields = ", ".join(repr(f.name) for f in odfv.request_fields)
                raise RequestDataMissingError(
                    f"materialize: on-demand feature view '{n}' needs request field(s) {fields}, which the offline "
                    "rows do not have; write its rows with push or write_to_online_store"
                )
            if not odfv.source_projections:
                raise RetrievalError(
                    f"materialize: on-demand feature view '{n}' reads no feature view; "
                    "write its rows with write_to_online_store"
                )
            for p in odfv.source_projections:
                chosen.setdefault(p.name, snapshot.feature_view(p.name))
        return list(chosen.values())

    def _cached_views(self) -> list[FeatureView]:
        """Every feature view, label views included."""
        return _filtered(self._snapshot().feature_views().values(), None)

    def materialization_intervals(self, feature_view: str | None = None) -> list[Any]:
        return self._registry_store.materializations(feature_view)

    def freshness(self) -> list[ViewFreshness]:
        """Per online view: how far its online rows are known to reach, and how long ago that was."""
        from datetime import UTC

        from potluck.materialize.watermark import view_freshness

        views = [v.name for v in self._cached_views() if v.online]
        return view_freshness(views, self._registry_store.materializations(), datetime.now(UTC))

    def reset_materialization(self, feature_view: str, to: datetime | None = None) -> int:
        """Forget the view's recorded intervals that end after `to` (all of them when `to` is None).

        The next incremental run then starts from the remaining watermark (or end - ttl). Online
        rows are kept: a rerun rewrites them newest-wins. Returns how many intervals were forgotten.
        """
        self._snapshot().feature_view(feature_view)  # an unknown view is an error naming the nearest
        return self._registry_store.forget_materializations(feature_view, to)

    # -- monitoring -----------------------------------------------------------------------------
    def _monitoring(self) -> Monitoring:
        from potluck.monitoring.service import Monitoring

        return Monitoring(
            self.config.monitoring, self._offline, self._snapshot(), str(self.repo_path), self._registry_store.baselines
        )

    def compute_statistics(
        self,
        view_or_service: Any,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        baseline: Profile | str | None = None,
        features: Sequence[str] | None = None,
    ) -> Profile:
        """Statistics of features, computed in the offline engine (docs/monitoring.md).

        `view_or_service`: a feature view or service (or its name), whose batch source rows with
        `start <= event time <= end` are profiled; or a training dataset or logged rows: a retrieval
        job, a Parquet file or folder, a pandas DataFrame or Arrow table. With `baseline` (a profile or
        a baseline's name), histograms use its bins and its categories are always counted.
        """
        return self._monitoring().compute_statistics(view_or_service, start, end, baseline=baseline, features=features)

    def compute_log_statistics(
        self,
        feature_service: FeatureService | str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        baseline: Profile | str | None = None,
        features: Sequence[str] | None = None,
    ) -> Profile:
        """Statistics of the values a feature service served, from its feature log (log time in
        [start, end]); features are named by view as in a view's profile (docs/skew.md)."""
        monitoring = self._monitoring()
        base = monitoring.get_baseline(baseline) if isinstance(baseline, str) else baseline
        name = feature_service.name if isinstance(feature_service, FeatureService) else feature_service
        return monitoring.compute_log_statistics(name, start, end, baseline=base, features=features)

    def write_logged_features(self, logs: Any, source: FeatureService | str, logging_config: Any = None) -> list[Path]:
        """Write rows in Feast's log schema (a pyarrow Table, a pandas DataFrame or a Parquet path) into
        the log of feature service `source` (or `logging_config`'s destination); returns the files."""
        from potluck.feature_logs.ingest import write_logged_features
        from potluck.feature_logs.resolve import spec_of

        name = source.name if isinstance(source, FeatureService) else source
        snapshot = self._snapshot()
        spec = spec_of(snapshot, self.repo_path, name)
        if spec is None and logging_config is None:
            raise DefinitionError(
                f"feature service '{name}' has no logging_config; give it one or pass logging_config="
            )
        if spec is None:
            from potluck.definitions.feature_logging import LoggingConfig

            assert isinstance(logging_config, LoggingConfig)
            spec = _spec_with_config(snapshot, self.repo_path, name, logging_config)
        return write_logged_features(spec, logs, logging_config, self.repo_path)

    def prune_feature_logs(
        self, older_than: timedelta, feature_service: str | None = None, *, dry_run: bool = False
    ) -> list[Any]:
        """Remove whole log-date folders of the logged services (or one) older than `older_than`."""
        from potluck.feature_logs.files import prune
        from potluck.feature_logs.resolve import spec_of

        snapshot = self._snapshot()
        names = [feature_service] if feature_service else sorted(snapshot.of_kind(FeatureService.kind))
        now = datetime.now(UTC)
        removed = []
        for name in names:
            spec = spec_of(snapshot, self.repo_path, name)
            if spec is None:
                if feature_service:
                    raise DefinitionError(f"feature service '{name}' has no logging_config: it has no log to prune")
                continue
            removed += prune(name, spec.path, older_than, now, dry_run=dry_run)
        return removed

    def set_baseline(self, name: str, profile: Profile) -> int:
        """Save `profile` as the next version of baseline `name` in the registry database; returns the version."""
        return self._monitoring().set_baseline(name, profile)

    def get_baseline(self, name: str, version: int | None = None) -> Profile:
        """Baseline `name` (its newest version unless `version` is given)."""
        return self._monitoring().get_baseline(name, version)

    def list_baselines(self) -> list[dict[str, Any]]:
        """The newest version of each baseline: name, version, created_at, author, source."""
        from potluck.monitoring.profile import Profile

        out = []
        for b in self._registry_store.baselines.latest():
            profile = Profile.from_json(b.profile)
            out.append(
                {
                    "name": b.name,
                    "version": b.version,
                    "created_at": b.created_at,
                    "author": b.author,
                    "source": profile.source,
                    "start": profile.start,
                    "end": profile.end,
                    "features": len(profile.features),
                }
            )
        return out

    def check_drift(self, baseline: Profile | str, current: Profile) -> DriftReport:
        """Drift of `current` against `baseline` (a profile or a baseline's name), per feature and overall,
        under the thresholds of the `monitoring:` section and the views' tags."""
        return self._monitoring().check_drift(baseline, current)

    def run_monitoring(
        self,
        baselines: Sequence[str] | None = None,
        views: Sequence[str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        logs: str | None = None,
    ) -> tuple[MonitorRunReport, list[RunPart]]:
        """Check each baseline (all by default) against its views' rows in [start, end] and record the result.

        With `logs` (a feature service), against the values it served (its feature log) instead.
        """
        return self._monitoring().run(baselines, views, start, end, logs=logs)

    def skew_report(
        self,
        feature_service: str,
        training: Any,
        start: datetime | None = None,
        end: datetime | None = None,
        sample: int = 10_000,
        seed: int = 0,
    ) -> SkewReport:
        """Training-serving skew of `feature_service` (docs/skew.md): its logged served values (log time in
        [start, end]) against `training` (a saved dataset, a retrieval job or a Parquet path), by
        distribution, and value by value for `sample` logged rows recomputed offline at their log time."""
        from potluck.monitoring.skew import skew_report

        return skew_report(self, feature_service, training, start, end, sample, seed)

    def last_monitoring_runs(self) -> list[RunPart]:
        """The newest recorded run of each baseline (its drift recomputed from the recorded profiles)."""
        return self._monitoring().last_runs()

    def get_push_source(self, name: str) -> PushSource:
        """The push source called `name`; an unknown name suggests the nearest push sources."""
        from potluck.definitions.errors import UnknownFeatureError, suggestion

        sources = self._snapshot().of_kind(DataSource.kind)
        source = sources.get(name)
        if not isinstance(source, PushSource):
            pushable = [n for n, s in sources.items() if isinstance(s, PushSource)]
            lead = f"push source '{name}' does not exist."
            raise UnknownFeatureError(
                f"{lead} {suggestion(name, pushable)}", lead=lead, name=name, kind="push_source", candidates=pushable
            )
        return source

    def views_fed_by(self, source_name: str) -> list[FeatureView]:
        """The feature views whose source is `source_name`."""
        return [v for v in self._cached_views() if v.source.name == source_name]

    def check_online_store(self) -> None:
        """Raise `BackendUnavailableError` unless the online store answers a lookup."""
        from potluck.online.protocol import ReadRequest
        from potluck.retrieval.plans import online_view

        views = [v for v in self._cached_views() if v.online]
        if views:
            self._online.read([ReadRequest(online_view(views[0], self.project), [b"\x00ready"])])

    def registry_snapshot(self) -> RegistrySnapshot:
        """The registry as this store currently sees it (cached; refreshed in the background)."""
        return self._snapshot()

    def push(
        self,
        push_source_name: str,
        df: Any,
        allow_registry_cache: bool = True,
        to: PushMode | str = "online",
        transform_on_write: bool = True,
        *,
        idempotency_key: str | None = None,
    ) -> int:
        """Write rows to the views fed by a push source, online, offline, or both; returns the rows pushed.

        Views with aggregations take the rows as tile updates; a push repeated with the same
        `idempotency_key` changes their tiles only once.

        `df` is a pandas or polars DataFrame, a pyarrow Table or a dict of columns (see the docs for
        the accepted values). On-demand views stored at write time (`write_to_online_store=True`)
        that read these views get their rows computed from the pushed ones (request fields are
        columns of `df`). `transform_on_write` is accepted for Feast's signature.
        """
        from potluck.streaming.push import PushMode, push

        if not allow_registry_cache:
            self._registry.refresh()
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
            stored=self._stored_reading(self._snapshot(), views) if mode is not PushMode.OFFLINE else (),
            idempotency_key=idempotency_key,
        )

    async def push_async(
        self,
        push_source_name: str,
        df: Any,
        allow_registry_cache: bool = True,
        to: PushMode | str = "online",
        **kwargs: Any,
    ) -> int:
        """As `push`, awaitable: the write runs in a worker thread, off the event loop."""
        import asyncio

        unknown = set(kwargs) - {"transform_on_write", "idempotency_key"}
        if unknown:
            raise TypeError(f"push_async() got unexpected keyword argument(s) {', '.join(sorted(unknown))}")
        key = kwargs.get("idempotency_key")
        return await asyncio.to_thread(
            lambda: self.push(push_source_name, df, allow_registry_cache, to, idempotency_key=key)
        )

    def run_stream(
        self,
        views: Sequence[str] | None = None,
        *,
        exit_when_idle: float | None = None,
        offline: bool | None = None,
        metrics_port: int | None = None,
        metrics_host: str = "127.0.0.1",
        progress: bool = False,
    ) -> dict[str, Any]:
        """Consume the stream sources of `views` (default: every view on a stream source) into the online
        store and the offline log, exactly once, until SIGTERM/SIGINT or, with `exit_when_idle`, that many
        seconds without a message; returns what the run did (docs/streaming.md).

        `offline` overrides `stream.offline` of feature_store.yaml; with `metrics_port`, Prometheus
        metrics are served on `metrics_host:metrics_port` while it runs; `progress` shows a live line
        on stderr when it is a terminal.
        """
        from potluck.streaming.run import run_stream

        return run_stream(
            self,
            views,
            exit_when_idle=exit_when_idle,
            offline=offline,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
            progress=progress,
        )

    def write_to_online_store(
        self,
        feature_view_name: str,
        df: Any = None,
        inputs: Any = None,
        allow_registry_cache: bool = True,
        transform_on_write: bool = True,
    ) -> int:
        """Write rows (a DataFrame, Arrow table or dict of columns, as `df` or `inputs`) to one view's
        online rows, newest wins; returns the rows written. Same input rules as `push`.

        `feature_view_name` may name an on-demand view stored at write time: the rows are then its
        inputs (join keys, `event_timestamp`, source features, request fields) and its function
        computes what is stored.
        """
        from potluck.streaming.push import write_on_demand, write_online

        if df is not None and inputs is not None:
            raise RetrievalError("write_to_online_store: pass the rows as either 'df' or 'inputs', not both")
        rows = df if df is not None else inputs
        snapshot = self._registry_view(allow_registry_cache)
        on_demand = snapshot.of_kind(OnDemandFeatureView.kind).get(feature_view_name)
        if rows is None:
            raise RetrievalError("write_to_online_store: no rows given; pass a DataFrame or a dict of columns as 'df'")
        if isinstance(on_demand, OnDemandFeatureView):
            if not on_demand.write_to_online_store:
                raise RetrievalError(
                    f"write to on-demand feature view '{feature_view_name}': it is computed at read time "
                    "(write_to_online_store=False), so it has no stored rows to write"
                )
            return write_on_demand(self._stored_view(snapshot, on_demand), rows, online=self._online)
        view = snapshot.feature_view(feature_view_name)
        stored = self._stored_reading(snapshot, [view])
        return write_online(view, rows, project=self.project, online=self._online, stored=stored)

    def _stored_view(self, snapshot: RegistrySnapshot, view: OnDemandFeatureView) -> StoredView:
        """A stored on-demand view with its function and tables, built once per registry version."""
        from potluck.retrieval.plans import online_view, stored_ttl, stored_view
        from potluck.streaming.on_demand_writes import StoredView
        from potluck.transforms.code import load_udf

        key = (snapshot.version, view.name)
        found = self._stored_cache.get(key)
        if found is not None:
            return found
        views = snapshot.feature_views()
        sources = tuple(online_view(views[p.name], self.project) for p in view.source_projections)
        built = StoredView(
            view, load_udf(view, self.repo_path), stored_view(view, self.project, stored_ttl(view, views)), sources
        )
        if len(self._stored_cache) > 1024:
            self._stored_cache.clear()
        self._stored_cache[key] = built
        return built

    @cached_property
    def _stored_cache(self) -> dict[tuple[int, str], StoredView]:
        return {}

    def _stored_reading(self, snapshot: RegistrySnapshot, views: Sequence[FeatureView]) -> list[StoredView]:
        """The on-demand views stored at write time that read any of `views`."""
        names = {v.name for v in views}
        return [
            self._stored_view(snapshot, v)
            for v in snapshot.of_kind(OnDemandFeatureView.kind).values()
            if isinstance(v, OnDemandFeatureView)
            and v.write_to_online_store
            and any(p.name in names for p in v.source_projections)
        ]

    def write_to_offline_store(
        self,
        feature_view_name: str,
        df: Any,
        allow_registry_cache: bool = True,
        reorder_columns: bool = True,
    ) -> int:
        """Append rows to the view's batch source; returns the rows written.

        The rows need the view's join keys, timestamp and features; columns of the batch source the
        view does not declare are kept when given and null otherwise, other columns are ignored.
        They are always written in the batch source's column order (`reorder_columns` is accepted
        for Feast's signature).
        """
        from potluck.streaming.push import write_offline

        view = self._view_to_write(feature_view_name, allow_registry_cache)
        return write_offline(view, df, repo_path=str(self.repo_path), offline=self._offline)

    def _view_to_write(self, name: str, allow_registry_cache: bool) -> FeatureView:
        return self._registry_view(allow_registry_cache).feature_view(name)

    def get_feature_server_endpoint(self) -> str | None:
        """The feature server this store reads and writes through (`online_store: type: remote`), else None."""
        online = self.config.online_store
        if getattr(online, "type", None) != "remote":
            return None
        path = getattr(online, "path", None)
        return str(path) if path else None

    def close(self) -> None:
        """Write the feature log's queued rows, then release the stores' connections."""
        if "_feature_log" in self.__dict__:
            self._feature_log.close()
        if "_registry_store" in self.__dict__:
            self._registry_store.dispose()
        if "_pending" in self.__dict__:
            self._pending.close()
        if "_monitor_state" in self.__dict__:
            self._monitor_state.close()
        for part in ("_online", "_offline"):
            if part in self.__dict__:
                self.__dict__[part].close()

    def __repr__(self) -> str:
        return f"FeatureStore(project={self.project!r}, repo_path={str(self.repo_path)!r})"


@dataclass(frozen=True)
class OnlineRead:
    """An online read whose on-demand outputs (if any) are still to be computed."""

    response: OnlineResponse
    on_demand: OnlinePlan | None

    @property
    def has_functions(self) -> bool:
        return self.on_demand is not None

    def finish(self) -> OnlineResponse:
        return self.response if self.on_demand is None else _with_on_demand(self.response, self.on_demand)


def _with_on_demand(response: OnlineResponse, on_demand: OnlinePlan) -> OnlineResponse:
    from potluck.retrieval.on_demand import with_on_demand

    request, udfs = on_demand
    result: OnlineResponse = with_on_demand(response, request, udfs)
    return result


def _in_sdk(_obj: Definition) -> str:
    return "<sdk>"


def _filtered(objects: Any, tags: dict[str, str] | None) -> list[Any]:
    items = sorted(objects, key=lambda o: o.name)
    if not tags:
        return items
    return [o for o in items if all(o.tags.get(k) == v for k, v in tags.items())]


def _spec_with_config(snapshot: RegistrySnapshot, repo_path: Path, name: str, config: Any) -> Any:
    """The log of service `name` as if it had `config` as its logging_config."""
    from potluck.feature_logs.resolve import spec_of
    from potluck.registry.snapshot import RegistrySnapshot as Snapshot

    service = snapshot.get(FeatureService.kind, name)
    assert isinstance(service, FeatureService)
    objects = {kind: dict(found) for kind, found in snapshot.objects.items()}
    objects[FeatureService.kind][name] = _with_logging(service, config)
    return spec_of(Snapshot(snapshot.project, snapshot.version, objects), repo_path, name)


def _with_logging(service: FeatureService, config: Any) -> FeatureService:
    import copy

    changed = copy.copy(service)
    changed.logging_config = config
    return changed
