"""What the UI shows, read from a FeatureStore: definitions, lineage, history, freshness, statistics,
drift over time and skew.

Two caches: the catalog (objects, lineage, history, search) is rebuilt only when the registry's
version changes; the monitoring data (freshness, statistics, drift, skew), which changes without a
registry version, is re-read at most every `monitoring_ttl` seconds.
"""

from __future__ import annotations

import ast
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from potluck.definitions import (
    DataSource,
    Definition,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
)
from potluck.definitions.errors import BackendUnavailableError
from potluck.registry.snapshot import RegistrySnapshot
from potluck.ui.format import kind_label
from potluck.ui.lineage import LineageGraph, build_lineage, node_id

if TYPE_CHECKING:
    from potluck.monitoring.freshness import Staleness
    from potluck.monitoring.profile import FeatureProfile
    from potluck.store import FeatureStore

# Sections of the UI (the first part of an address) and the registry kinds each lists.
SECTIONS: dict[str, tuple[str, ...]] = {
    "entities": ("entity",),
    "data-sources": ("data_source",),
    "feature-views": ("feature_view", "stream_feature_view", "label_view", "on_demand_feature_view"),
    "feature-services": ("feature_service",),
    "saved-datasets": ("saved_dataset",),
}
SECTION_TITLES = {
    "entities": "Entities",
    "data-sources": "Data sources",
    "feature-views": "Feature views",
    "feature-services": "Feature services",
    "saved-datasets": "Saved datasets",
}
SECTION_OF_KIND = {kind: section for section, kinds in SECTIONS.items() for kind in kinds}
HISTORY_LIMIT = 500
DRIFT_RUNS_LIMIT = 500


@dataclass(frozen=True)
class CatalogObject:
    """One object as the UI lists it."""

    kind: str
    name: str
    description: str
    owner: str
    tags: dict[str, str]
    spec: dict[str, Any]
    definition: Definition | None  # None for saved datasets (kept as records) and embedded sources
    features: tuple[str, ...] = ()

    @property
    def section(self) -> str:
        return SECTION_OF_KIND[self.kind]

    @property
    def label(self) -> str:
        return kind_label(self.kind)

    @property
    def id(self) -> str:
        return node_id(self.kind, self.name)

    def summary(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "description": self.description,
            "owner": self.owner,
            "tags": self.tags,
        }


@dataclass(frozen=True)
class HistoryItem:
    version: int
    applied_at: datetime
    author: str
    action: str
    fields: tuple[dict[str, Any], ...] | None  # None: this apply recorded no field changes

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "applied_at": self.applied_at.isoformat(),
            "author": self.author,
            "action": self.action,
            "fields": None if self.fields is None else list(self.fields),
        }


@dataclass
class Catalog:
    """The registry at one version, arranged for the pages."""

    version: int
    project: str
    objects: dict[str, dict[str, CatalogObject]]  # section -> name -> object
    lineage: LineageGraph
    history: dict[tuple[str, str], list[HistoryItem]]  # (kind, name) -> newest first
    recent: list[tuple[HistoryItem, str, str]]  # (item, kind, name), newest first
    warnings: list[str]

    def get(self, section: str, name: str) -> CatalogObject | None:
        return self.objects.get(section, {}).get(name)

    def counts(self) -> dict[str, int]:
        return {section: len(found) for section, found in self.objects.items()}

    def search(self, query: str, limit: int = 50) -> list[tuple[CatalogObject, list[str]]]:
        """Objects whose name, description, owner, tags or feature names contain `query` (any case).

        Each with the features that matched; names that match come first.
        """
        needle = query.strip().lower()
        if not needle:
            return []
        ranked: list[tuple[int, str, CatalogObject, list[str]]] = []
        for found in self.objects.values():
            for obj in found.values():
                features = [f for f in obj.features if needle in f.lower()]
                text = " ".join([obj.description, obj.owner, *(f"{k}={v}" for k, v in obj.tags.items())]).lower()
                if needle in obj.name.lower():
                    ranked.append((0, obj.name, obj, features))
                elif features:
                    ranked.append((1, obj.name, obj, features))
                elif needle in text:
                    ranked.append((2, obj.name, obj, features))
        ranked.sort(key=lambda r: (r[0], r[1], r[2].kind))
        return [(obj, features) for _, _, obj, features in ranked[:limit]]


@dataclass(frozen=True)
class FeatureStatistics:
    """One feature's statistics in the baseline and in the latest monitoring run."""

    view: str
    feature: str
    baseline_name: str
    ran_at: datetime | None
    baseline: FeatureProfile
    current: FeatureProfile | None

    def to_json(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "baseline": self.baseline_name,
            "ran_at": None if self.ran_at is None else self.ran_at.isoformat(),
            "baseline_profile": _profile_json(self.baseline),
            "current_profile": None if self.current is None else _profile_json(self.current),
        }


def _profile_json(profile: FeatureProfile) -> dict[str, Any]:
    """The profile without its sample (raw values: large, and not what the page shows)."""
    from dataclasses import fields

    data = {f.name: getattr(profile, f.name) for f in fields(profile) if f.name != "sample"}
    data["null_rate"] = profile.null_rate
    if profile.top is not None:
        data["top"] = [[v, c] for v, c in profile.top]
    return data


@dataclass(frozen=True)
class DriftPoint:
    ran_at: datetime
    baseline: str
    drift: bool
    metrics: dict[str, float | None]


@dataclass
class Monitoring:
    """Monitoring data of the project, read at one time."""

    read_at: datetime
    staleness: dict[str, Staleness]
    statistics: dict[str, list[FeatureStatistics]]  # view -> features
    drift: dict[tuple[str, str], list[DriftPoint]]  # (view, feature) -> oldest first
    skew: dict[str, tuple[datetime, dict[str, Any]]]  # service -> (when, report)
    problems: list[str] = field(default_factory=list)  # what could not be read, and why
    # when each part (staleness, statistics, drift, skew) was last read; `read_at` is the oldest
    parts_read_at: dict[str, datetime] = field(default_factory=dict)

    def drifting(self) -> list[tuple[str, str, DriftPoint]]:
        """The features whose latest check found drift."""
        out = []
        for (view, feature), points in sorted(self.drift.items()):
            if points and points[-1].drift:
                out.append((view, feature, points[-1]))
        return out

    def stale(self) -> list[Staleness]:
        return [s for _, s in sorted(self.staleness.items()) if s.stale]


DRIFT_METRICS = ("psi", "js_distance", "ks_statistic", "ks_p_value", "chi2_p_value", "mean_change")


def _features_of(obj: Definition) -> tuple[str, ...]:
    if isinstance(obj, (FeatureView, OnDemandFeatureView)):
        return tuple(obj.feature_names)
    if isinstance(obj, FeatureService):
        return tuple(obj.feature_references())
    return ()


def _catalog_object(obj: Definition) -> CatalogObject:
    kind = _kind_of(obj)
    return CatalogObject(
        kind=kind,
        name=obj.name,
        description=obj.description,
        owner=obj.owner,
        tags=dict(obj.tags),
        spec=obj.to_spec(),
        definition=obj,
        features=_features_of(obj),
    )


def _kind_of(obj: Definition) -> str:
    if isinstance(obj, DataSource):
        return "data_source"
    return obj.kind


def _embedded_sources(snapshot: RegistrySnapshot) -> Iterable[DataSource]:
    """Sources declared inside views (not applied as objects of their own)."""
    for view in snapshot.feature_views().values():
        yield view.source
        batch = getattr(view.source, "batch_source", None)
        if isinstance(batch, DataSource):
            yield batch
    for odfv in snapshot.of_kind(OnDemandFeatureView.kind).values():
        if isinstance(odfv, OnDemandFeatureView):
            yield from odfv.request_sources


def build_catalog(snapshot: RegistrySnapshot, history: Iterable[Any]) -> Catalog:
    objects: dict[str, dict[str, CatalogObject]] = {section: {} for section in SECTIONS}
    definitions = [obj for obj in snapshot.all() if _kind_of(obj) in SECTION_OF_KIND]
    for obj in definitions:
        item = _catalog_object(obj)
        objects[item.section][item.name] = item
    for source in _embedded_sources(snapshot):
        objects["data-sources"].setdefault(source.name, _catalog_object(source))
    for name, spec in snapshot.records.get("saved_dataset", {}).items():
        objects["saved-datasets"][name] = CatalogObject(
            kind="saved_dataset",
            name=name,
            description=str(spec.get("description", "")),
            owner=str(spec.get("owner", "")),
            tags={str(k): str(v) for k, v in (spec.get("tags") or {}).items()},
            spec=spec,
            definition=None,
            features=tuple(str(f) for f in spec.get("features", [])),
        )
    for section, found in objects.items():
        objects[section] = dict(sorted(found.items()))
    by_object: dict[tuple[str, str], list[HistoryItem]] = {}
    recent: list[tuple[HistoryItem, str, str]] = []
    for entry in history:
        for change in entry.changes:
            fields = change.get("fields")
            change_item = HistoryItem(
                entry.version,
                entry.applied_at,
                entry.author,
                str(change.get("action", "")),
                None if fields is None else tuple(fields),
            )
            key = (str(change.get("kind")), str(change.get("name")))
            by_object.setdefault(key, []).append(change_item)
            recent.append((change_item, *key))
    return Catalog(
        version=snapshot.version,
        project=snapshot.project,
        objects=objects,
        lineage=build_lineage(definitions),
        history=by_object,
        recent=recent,
        warnings=snapshot.warnings,
    )


def function_source(repo_path: Path, odfv: OnDemandFeatureView) -> str | None:
    """The source of an on-demand view's function, read from its repository file (None: not found)."""
    location = odfv.udf_location
    path = repo_path / location.file
    try:
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
    except (OSError, SyntaxError, ValueError):
        return None
    name = location.qualname.split(".")[-1]
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return ast.get_source_segment(text, node, padded=True)
    return None


REFRESH_OVERDUE = 10.0  # seconds after which a monitoring re-read still running is reported on the pages
FRESH_WAIT = 1.0  # seconds a request waits for a re-read it started or found running


class UiData:
    """The store's data for the pages and the API, cached (see the module's docstring).

    Monitoring data older than `monitoring_ttl` is served while one background thread re-reads it,
    so a registry that stops answering leaves the pages showing the last data read (with a warning
    once the re-read is overdue) instead of holding a request thread per page. Only the first read,
    and the catalog of a new registry version, are read in the request (one at a time).
    """

    def __init__(self, store: FeatureStore, *, monitoring_ttl: float = 5.0, wait_seconds: float = 5.0) -> None:
        self.store = store
        self.monitoring_ttl = monitoring_ttl
        self.wait_seconds = wait_seconds  # how long a request waits for another's read before giving up
        self._lock = threading.Lock()  # guards the fields below; never held during a read
        self._catalog_read = threading.Lock()  # one catalog build at a time
        self._monitoring_read = threading.Lock()  # one monitoring read at a time
        self._catalog: Catalog | None = None
        self._monitoring: Monitoring | None = None
        self._monitoring_at = 0.0
        self._refresh_started: float | None = None  # when the running background re-read began
        self._refreshed: threading.Event | None = None  # set when that re-read ends
        self._sources: dict[tuple[int, str], str | None] = {}

    def catalog(self) -> Catalog:
        snapshot = self.store.registry_snapshot()
        with self._lock:
            held = self._catalog
        if held is not None and held.version == snapshot.version:
            return held
        with self._one_at_a_time(self._catalog_read, "the registry's history"):
            with self._lock:
                held = self._catalog
            if held is not None and held.version == snapshot.version:
                return held  # built by the request that held the lock before this one
            built = build_catalog(snapshot, self.store.registry_history(HISTORY_LIMIT))
            with self._lock:
                if self._catalog is None or self._catalog.version <= built.version:
                    self._catalog = built
                    self._sources.clear()
            return built

    def function_source(self, odfv: OnDemandFeatureView) -> str | None:
        key = (self.catalog().version, odfv.name)
        with self._lock:
            if key in self._sources:
                return self._sources[key]
        found = function_source(self.store.repo_path, odfv)
        with self._lock:
            self._sources[key] = found
        return found

    def monitoring(self) -> Monitoring:
        now = time.monotonic()
        with self._lock:
            held = self._monitoring
            if held is not None and now - self._monitoring_at > self.monitoring_ttl and self._refresh_started is None:
                self._refresh_started = now
                self._refreshed = threading.Event()
                threading.Thread(target=self._refresh, name="potluck-ui-monitoring", daemon=True).start()
            refreshed, started = self._refreshed, self._refresh_started
        if held is not None:
            # a re-read usually takes milliseconds: wait for it up to FRESH_WAIT after it began (not
            # per call), then show what was read before
            wait = min(self.wait_seconds, FRESH_WAIT) - (now - started) if started is not None else 0.0
            if refreshed is not None and wait > 0 and refreshed.wait(wait):
                with self._lock:
                    return self._monitoring or held
            return held
        with self._one_at_a_time(self._monitoring_read, "the monitoring tables"):
            with self._lock:
                if self._monitoring is not None:
                    return self._monitoring
            read = read_monitoring(self.store)
            with self._lock:
                self._monitoring, self._monitoring_at = read, time.monotonic()
            return read

    @contextlib.contextmanager
    def _one_at_a_time(self, lock: threading.Lock, what: str) -> Iterator[None]:
        if not lock.acquire(timeout=self.wait_seconds):
            raise BackendUnavailableError(f"{what} did not answer within {self.wait_seconds:g} s")
        try:
            yield
        finally:
            lock.release()

    def monitoring_overdue(self) -> float | None:
        """Seconds the running re-read of the monitoring data has taken, when past its deadline."""
        with self._lock:
            started = self._refresh_started
        if started is None:
            return None
        took = time.monotonic() - started
        return took if took > REFRESH_OVERDUE else None

    def _refresh(self) -> None:
        try:
            with self._lock:
                previous = self._monitoring
            read = read_monitoring(self.store, previous)
            with self._lock:
                self._monitoring, self._monitoring_at = read, time.monotonic()
        finally:
            with self._lock:
                self._refresh_started = None
                done, self._refreshed = self._refreshed, None
            if done is not None:
                done.set()


PARTS = {"staleness": "freshness", "statistics": "statistics", "drift": "drift history", "skew": "skew reports"}


def read_monitoring(store: FeatureStore, previous: Monitoring | None = None) -> Monitoring:
    """The monitoring data now. One broken part never hides the others: a part that cannot be read
    keeps its `previous` value (or none), with a note of what failed and when it was last read."""
    readers: dict[str, Callable[[], Any]] = {
        "staleness": lambda: _staleness(store),
        "statistics": lambda: _statistics(store),
        "drift": lambda: _drift_history(store),
        "skew": lambda: _skew(store),
    }
    problems: list[str] = []
    values: dict[str, Any] = {}
    parts_read_at: dict[str, datetime] = {}
    for name, read in readers.items():
        try:
            values[name] = read()
            parts_read_at[name] = datetime.now(UTC)
        except Exception as err:  # shown on the page instead of an error page
            values[name] = getattr(previous, name) if previous is not None else {}
            since = previous.parts_read_at.get(name) if previous is not None else None
            shown = f" (shown as read at {since:%Y-%m-%d %H:%M:%S} UTC)" if since is not None else ""
            problems.append(f"{PARTS[name]} could not be read{shown}: {err}")
            if since is not None:
                parts_read_at[name] = since
    read_at = min(parts_read_at.values(), default=datetime.now(UTC))
    return Monitoring(
        read_at, values["staleness"], values["statistics"], values["drift"], values["skew"], problems, parts_read_at
    )


def _staleness(store: FeatureStore) -> dict[str, Staleness]:
    from potluck.monitoring.freshness import check
    from potluck.monitoring.snapshot import freshness_config

    views = store.registry_snapshot().feature_views()
    tags = {name: view.tags for name, view in views.items()}
    config = freshness_config(store)
    results: dict[str, Staleness] = {}
    for fresh in store.freshness():
        try:
            [result] = check([fresh], tags, None, config)
        except Exception:  # a bad max_staleness tag: that view unchecked, the others still shown
            continue
        results[result.view] = result
    return results


def _statistics(store: FeatureStore) -> dict[str, list[FeatureStatistics]]:
    from potluck.monitoring.profile import Profile

    baselines = store._registry_store.baselines
    out: dict[str, list[FeatureStatistics]] = {}
    runs = {run.baseline: run for run in baselines.last_runs()}
    for stored in baselines.latest():
        base = Profile.from_json(stored.profile)
        run = runs.get(stored.name)
        current = Profile.from_json(run.profile) if run is not None else None
        named = sorted({f.view for f in base.features if f.view})
        only_view = named[0] if len(named) == 1 else None
        for feature in base.features:
            view = feature.view or only_view
            if view is None:
                continue
            now = None
            if current is not None:
                now = next(
                    (f for f in current.features if f.name == feature.name and (f.view or view) == view),
                    None,
                )
            out.setdefault(view, []).append(
                FeatureStatistics(view, feature.name, stored.name, run.ran_at if run else None, feature, now)
            )
    return out


def _drift_history(store: FeatureStore) -> dict[tuple[str, str], list[DriftPoint]]:
    out: dict[tuple[str, str], list[DriftPoint]] = {}
    for baseline, ran_at, report in store._registry_store.baselines.run_reports(DRIFT_RUNS_LIMIT):
        for result in json.loads(report).get("features", []):
            point = DriftPoint(
                ran_at,
                baseline,
                bool(result.get("drift")),
                {m: result.get(m) for m in DRIFT_METRICS},
            )
            out.setdefault((str(result.get("view")), str(result.get("feature"))), []).append(point)
    return out


def _skew(store: FeatureStore) -> dict[str, tuple[datetime, dict[str, Any]]]:
    return {service: (at, json.loads(report)) for service, (at, report) in store._monitor_state.skew_reports().items()}


def age_text(age: timedelta | None) -> str:
    if age is None:
        return "never"
    seconds = int(age.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"
