"""Monitoring over a feature store: profiles of views, services and datasets, baselines, drift runs.

`FeatureStore` delegates here; this module composes the offline store's scans, the statistics,
the registry's baseline table and the drift rules.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from potluck.definitions import FeatureService, FeatureView
from potluck.definitions.errors import ConfigError, RetrievalError
from potluck.monitoring.config import MonitoringConfig, Thresholds
from potluck.monitoring.drift import DriftReport, check_drift
from potluck.monitoring.profile import Profile
from potluck.monitoring.report import MonitorRunReport, run_report
from potluck.monitoring.sources import Scan, dataset_scan, log_scan, view_scans
from potluck.monitoring.statistics import Settings, profile_rows

if TYPE_CHECKING:
    from potluck.offline.protocol import SupportsSourceScan
    from potluck.registry.baselines import BaselineStore
    from potluck.registry.snapshot import RegistrySnapshot

DEFAULT_WINDOW = timedelta(days=1)


def settings_of(config: MonitoringConfig) -> Settings:
    return Settings(sample_size=config.sample_size, seed=config.seed, top_k=config.top_k, bins=config.bins)


@dataclass
class Monitoring:
    """The monitoring parts of one store."""

    config: MonitoringConfig
    offline: Any  # an offline store; statistics need SupportsSourceScan
    snapshot: RegistrySnapshot
    repo_path: str
    baselines: BaselineStore

    def _scanner(self) -> SupportsSourceScan:
        from potluck.offline.protocol import SupportsSourceScan

        if not isinstance(self.offline, SupportsSourceScan):
            raise ConfigError(f"the offline store {type(self.offline).__name__} cannot compute statistics")
        return self.offline

    # -- statistics ---------------------------------------------------------------------------
    def compute_statistics(
        self,
        target: Any,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        baseline: Profile | str | None = None,
        features: Sequence[str] | None = None,
        name: str | None = None,
    ) -> Profile:
        base = self.get_baseline(baseline) if isinstance(baseline, str) else baseline
        settings = settings_of(self.config)
        resolved = self._resolve(target)
        if isinstance(resolved, (FeatureView, FeatureService)):
            return self._profile_views(resolved, start, end, base, settings, features)
        if start is not None or end is not None:
            raise RetrievalError("start and end apply to a feature view or service, not to a dataset")
        with dataset_scan(self._scanner(), resolved, features, name) as scan:
            return _profile(scan, settings, base, None, None)

    def compute_log_statistics(
        self,
        feature_service: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        baseline: Profile | None = None,
        features: Sequence[str] | None = None,
    ) -> Profile:
        """Statistics of the values `feature_service` served, from its feature log: rows with a log
        time in [start, end] (UTC), each `view__feature` column as feature `feature` of view `view`."""
        from potluck.feature_logs.files import log_files
        from potluck.feature_logs.resolve import spec_of

        spec = spec_of(self.snapshot, self.repo_path, feature_service)
        source = f"{LOGS_SOURCE}{feature_service}"
        if spec is None:
            raise RetrievalError(f"feature service '{feature_service}' has no logging_config: nothing is logged")
        columns = [name for name, _ in spec.features]
        if features is not None:
            wanted = set(features)
            unknown = sorted(wanted - {c.rpartition("__")[2] for c in columns} - set(columns))
            if unknown:
                raise RetrievalError(f"{source}: no logged feature {', '.join(repr(u) for u in unknown)}")
            columns = [c for c in columns if c in wanted or c.rpartition("__")[2] in wanted]
        files = [str(p) for p in log_files(spec.path, start, end)]
        settings = settings_of(self.config)
        with log_scan(self._scanner(), files, columns, source, start, end) as scan:
            return _profile(scan, settings, baseline, start, end)

    def _resolve(self, target: Any) -> Any:
        if isinstance(target, (FeatureView, FeatureService)):
            return target
        if isinstance(target, str) and not _looks_like_path(target):
            views = self.snapshot.of_kind(FeatureView.kind)
            if target in views:
                return views[target]
            services = self.snapshot.of_kind(FeatureService.kind)
            if target in services:
                return services[target]
            return self.snapshot.get(FeatureView.kind, target)  # raises, naming the nearest views
        return target

    def _profile_views(
        self,
        target: FeatureView | FeatureService,
        start: datetime | None,
        end: datetime | None,
        base: Profile | None,
        settings: Settings,
        features: Sequence[str] | None,
    ) -> Profile:
        from potluck.retrieval.on_demand import resolve_request
        from potluck.retrieval.plans import full_view_query, view_query

        if isinstance(target, FeatureView):
            queries = [full_view_query(target, self.repo_path)]
            source = f"view:{target.name}"
        else:
            request = resolve_request(target, self.snapshot, full_feature_names=False)
            queries = [view_query(s, self.repo_path) for s in request.selections]
            source = f"feature_service:{target.name}"
        if features is not None:
            queries = _only(queries, features, source)
        merged = Profile(source=source, features=[], start=start, end=end, seed=settings.seed)
        merged.sample_size = settings.sample_size
        for scan in view_scans(self._scanner(), queries, start, end):
            try:
                part = _profile(scan, settings, base, start, end)
            finally:
                scan.cursor.close()
            merged.features += part.features
            merged.row_count += part.row_count
        return merged

    # -- baselines ----------------------------------------------------------------------------
    def set_baseline(self, name: str, profile: Profile) -> int:
        from potluck.definitions.base import check_name

        check_name("baseline", name)
        return self.baselines.save(name, profile.to_json())

    def get_baseline(self, name: str, version: int | None = None) -> Profile:
        return Profile.from_json(self.baselines.get(name, version).profile)

    # -- drift --------------------------------------------------------------------------------
    def thresholds_for(self, view: str, feature: str) -> Thresholds:
        found = self.snapshot.of_kind(FeatureView.kind).get(view)
        tags = found.tags if isinstance(found, FeatureView) else None
        return self.config.thresholds_for(view, feature, tags)

    def check_drift(self, baseline: Profile | str, current: Profile) -> DriftReport:
        base = self.get_baseline(baseline) if isinstance(baseline, str) else baseline
        return check_drift(base, current, self.thresholds_for, psi_bins=self.config.psi_bins, bins=self.config.bins)

    def run(
        self,
        baselines: Sequence[str] | None = None,
        views: Sequence[str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        record: bool = True,
        logs: str | None = None,
    ) -> tuple[MonitorRunReport, list[RunPart]]:
        """Each baseline (every stored one by default) against its views' current rows in [start, end].

        Without `end`: now; without `start`: `end` minus the baseline's own window (one day when it has none).
        With `logs` (a feature service), or for a baseline made from a service's log, the current rows
        are the values that service served (its log, by log time).
        """
        stored = [self.baselines.get(n) for n in baselines] if baselines else self.baselines.latest()
        if not stored:
            raise RetrievalError("no baseline to check against; save one with `potluck monitor baseline`")
        parts: list[RunPart] = []
        for entry in stored:
            base = Profile.from_json(entry.profile)
            base = _restricted(base, views, entry.name)
            until = end or datetime.now(UTC)
            since = start or until - _window(base)
            served = logs or (base.source[len(LOGS_SOURCE) :] if base.source.startswith(LOGS_SOURCE) else None)
            if served is not None:  # every logged feature; drift compares those the baseline has
                current = self.compute_log_statistics(served, since, until, baseline=base)
            else:
                current = self._current(base, since, until)
            report = self.check_drift(base, current)
            parts.append(RunPart(entry.name, entry.version, base, current, report))
            if record:
                self.baselines.record_run(entry.name, entry.version, _json(report.to_report()), current.to_json())
        features = [f.result() for p in parts for f in p.report.features]
        return run_report(features), parts

    def last_runs(self) -> list[RunPart]:
        """The newest recorded run of each baseline, its drift recomputed from the stored profiles."""
        parts = []
        for run in self.baselines.last_runs():
            base = Profile.from_json(self.baselines.get(run.baseline, run.baseline_version).profile)
            base = _restricted(base, None, run.baseline, strict=False)
            current = Profile.from_json(run.profile)
            parts.append(
                RunPart(run.baseline, run.baseline_version, base, current, self.check_drift(base, current), run.ran_at)
            )
        return parts

    def _current(self, base: Profile, start: datetime, end: datetime) -> Profile:
        by_view: dict[str, list[str]] = {}
        for f in base.features:
            if f.view:
                by_view.setdefault(f.view, []).append(f.name)
        settings = settings_of(self.config)
        current = Profile(source="current", features=[], start=start, end=end, seed=settings.seed)
        for view_name, names in by_view.items():
            view = self.snapshot.get(FeatureView.kind, view_name)
            if not isinstance(view, FeatureView):
                continue
            present = [n for n in names if n in view.feature_names]
            if not present:
                continue
            part = self._profile_views(view, start, end, base, settings, present)
            current.features += part.features
            current.row_count += part.row_count
        return current


@dataclass
class RunPart:
    baseline: str
    version: int
    profile: Profile
    current: Profile
    report: DriftReport
    ran_at: datetime | None = None


LOGS_SOURCE = "logs:"  # a profile of a feature service's log: "logs:<service>"


def _profile(
    scan: Scan, settings: Settings, base: Profile | None, start: datetime | None, end: datetime | None
) -> Profile:
    return profile_rows(
        scan.cursor,
        scan.relation,
        scan.columns,
        source=scan.source,
        settings=settings,
        position=scan.position,
        row_count=scan.row_count,
        baseline=base,
        start=start,
        end=end,
    )


def _only(queries: list[Any], features: Sequence[str], source: str) -> list[Any]:
    from dataclasses import replace

    wanted = set(features)
    out = []
    for q in queries:
        kept = tuple(f for f in q.features if f.name in wanted)
        if kept:
            out.append(replace(q, features=kept, output_names=tuple(f.name for f in kept)))
    known = {f.name for q in queries for f in q.features}
    unknown = sorted(wanted - known)
    if unknown:
        raise RetrievalError(
            f"{source}: no feature {', '.join(repr(u) for u in unknown)}; it has {', '.join(sorted(known))}"
        )
    return out


def _restricted(base: Profile, views: Sequence[str] | None, name: str, *, strict: bool = True) -> Profile:
    """The baseline's features of `views` (a baseline of a dataset without view names takes the one view given)."""
    if not views:
        missing = [f.name for f in base.features if not f.view]
        if missing and strict:
            raise RetrievalError(
                f"baseline '{name}' has features without a view ({', '.join(missing[:5])}); pass --view to say which"
            )
        return base
    wanted = set(views)
    features = []
    for f in base.features:
        if f.view is None and len(views) == 1:
            f.view = views[0]
        if f.view in wanted:
            features.append(f)
    return Profile(
        base.source, features, base.start, base.end, base.created_at, base.seed, base.sample_size, base.row_count
    )


def _window(base: Profile) -> timedelta:
    if base.start is not None and base.end is not None and base.end > base.start:
        return base.end - base.start
    return DEFAULT_WINDOW


def _looks_like_path(text: str) -> bool:
    return text.lower().endswith(".parquet") or os.sep in text or os.path.exists(text)


def _json(report: MonitorRunReport) -> str:
    import json

    return json.dumps(report, allow_nan=False)
