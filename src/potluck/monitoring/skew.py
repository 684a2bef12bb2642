"""Training-serving skew of a feature service: training data against the values it served.

Two parts per feature (docs/skew.md):

- distribution skew: the training rows' profile is the baseline, the logged served values the
  current profile; KS, PSI and null rates come from `monitoring.drift` under the `monitoring:`
  thresholds, so a feature is skewed when a drift rule fires;
- consistency: a seeded sample of logged rows recomputed offline at their log time
  (`monitoring.consistency`); a feature is skewed when the share of rows that do not match is above
  `monitoring.skew.mismatch_rate`.

Causes name what explains the differences where it can be told (see `monitoring.consistency`),
plus a view whose definition changed after the training data was built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

from potluck.monitoring.consistency import REDEFINED_SINCE_BUILT, FeatureConsistency, compare
from potluck.monitoring.drift import FeatureDrift, feature_drift
from potluck.monitoring.statistics import match_feature

if TYPE_CHECKING:
    from potluck.monitoring.alerts.model import Alert
    from potluck.store import FeatureStore

CONSISTENCY_RULE = "mismatch_rate"  # the name in `rules_fired` of the consistency threshold


class FeatureSkewResult(TypedDict):
    view: str
    feature: str
    skew: bool
    ks_statistic: float | None
    ks_p_value: float | None
    psi: float | None
    null_rate_training: float | None
    null_rate_serving: float | None
    match_rate: float | None
    mismatch_rate: float | None
    missing_online_rate: float | None
    missing_offline_rate: float | None
    mean_abs_error: float | None
    mean_rel_error: float | None
    causes: list[str]
    examples: list[dict[str, Any]]
    rules_fired: list[str]


class SkewReportJson(TypedDict):
    skew: bool
    feature_service: str
    training: str
    rows_logged: int
    rows_compared: int
    features: list[FeatureSkewResult]


FEATURE_KEYS: tuple[str, ...] = tuple(FeatureSkewResult.__annotations__)
REPORT_KEYS: tuple[str, ...] = tuple(SkewReportJson.__annotations__)


@dataclass
class FeatureSkew:
    view: str
    feature: str
    drift: FeatureDrift | None  # None: the training data has no such feature
    null_rate_training: float | None
    null_rate_serving: float | None
    consistency: FeatureConsistency | None  # None: not compared (on-demand output, no rows)
    causes: list[str] = field(default_factory=list)
    rules_fired: list[str] = field(default_factory=list)

    @property
    def skew(self) -> bool:
        return bool(self.rules_fired)

    def result(self) -> FeatureSkewResult:
        d, c = self.drift, self.consistency
        return {
            "view": self.view,
            "feature": self.feature,
            "skew": self.skew,
            "ks_statistic": d.ks_statistic if d else None,
            "ks_p_value": d.ks_p_value if d else None,
            "psi": d.psi if d else None,
            "null_rate_training": self.null_rate_training,
            "null_rate_serving": self.null_rate_serving,
            "match_rate": c.rate("match") if c else None,
            "mismatch_rate": c.rate("mismatch") if c else None,
            "missing_online_rate": c.rate("missing_online") if c else None,
            "missing_offline_rate": c.rate("missing_offline") if c else None,
            "mean_abs_error": c.mean_abs_error if c else None,
            "mean_rel_error": c.mean_rel_error if c else None,
            "causes": list(self.causes),
            "examples": list(c.examples) if c else [],
            "rules_fired": list(self.rules_fired),
        }


@dataclass
class SkewReport:
    feature_service: str
    training: str
    rows_logged: int
    rows_compared: int
    features: list[FeatureSkew]
    start: datetime | None = None
    end: datetime | None = None

    @property
    def skew(self) -> bool:
        return any(f.skew for f in self.features)

    def to_dict(self) -> SkewReportJson:
        return {
            "skew": self.skew,
            "feature_service": self.feature_service,
            "training": self.training,
            "rows_logged": self.rows_logged,
            "rows_compared": self.rows_compared,
            "features": [f.result() for f in self.features],
        }

    def alerts(self, project: str) -> list[Alert]:
        """One alert per skewed feature, under the dedup key of (service, view, feature): kind `skew`,
        rule the service's name."""
        from potluck.monitoring.alerts.model import Alert

        out = []
        for f in self.features:
            if not f.skew:
                continue
            row: dict[str, Any] = dict(f.result())
            keys = ("psi", "ks_statistic", "mismatch_rate", "missing_online_rate", "missing_offline_rate")
            details: dict[str, Any] = {k: row[k] for k in keys if row[k] is not None}
            summary = f"{f.view}:{f.feature} skewed in {self.feature_service}: {', '.join(f.rules_fired)}"
            if f.causes:
                summary += f" ({', '.join(f.causes)})"
            details.update(rules_fired=list(f.rules_fired), causes=list(f.causes))
            out.append(Alert(project, "skew", f.view, f.feature, self.feature_service, summary, details))
        return out


def skew_report(
    store: FeatureStore,
    feature_service: str,
    training: Any,
    start: datetime | None = None,
    end: datetime | None = None,
    sample: int = 10_000,
    seed: int = 0,
) -> SkewReport:
    """The skew report of `feature_service` (see the module docstring); `sample` logged rows are
    recomputed offline, drawn with `seed`."""
    from potluck.definitions.errors import RetrievalError
    from potluck.monitoring.served_log import served_log
    from potluck.monitoring.service import settings_of
    from potluck.monitoring.statistics import profile_rows
    from potluck.monitoring.training import changed_views, training_data

    if sample < 0:
        raise RetrievalError(f"skew report: sample must be 0 or more rows, got {sample}")
    config = store.config.monitoring
    monitoring = store._monitoring()
    log = served_log(store, feature_service)
    train = training_data(store, training)
    baseline = monitoring.compute_statistics(train.data)
    settings = settings_of(config)
    cursor = monitoring._scanner().engine_cursor()
    try:
        relation = log.relation(start, end)
        columns = log.value_columns(cursor, relation)
        served = profile_rows(
            cursor,
            relation,
            columns,
            source=f"served:{feature_service}",
            settings=settings,
            position="file_index, file_row_number",
            baseline=baseline,
            start=start,
            end=end,
        )
        rows = log.sample(cursor, relation, sample, seed) if sample else None
    finally:
        cursor.close()
    consistency = compare(store, log, rows, config.skew) if rows is not None else {}
    changed = changed_views(store, train, sorted({f.view for f in log.features}))
    features = []
    for f in log.features:
        cur = match_feature(served, f.view, f.feature)
        base = match_feature(baseline, f.view, f.feature)
        thresholds = monitoring.thresholds_for(f.view, f.feature)
        drift = None
        if cur is not None and base is not None:
            drift = feature_drift(base, cur, thresholds, f.view, config.psi_bins, config.bins)
        found = consistency.get((f.view, f.feature))
        item = FeatureSkew(
            f.view,
            f.feature,
            drift,
            base.null_rate if base is not None else None,
            cur.null_rate if cur is not None else None,
            found,
        )
        item.rules_fired = list(drift.rules_fired) if drift else []
        limit = config.skew.mismatch_rate
        if found is not None and found.compared and limit is not None and 1.0 - (found.rate("match") or 0.0) > limit:
            item.rules_fired.append(CONSISTENCY_RULE)
        if f.view in changed:
            item.causes.append(REDEFINED_SINCE_BUILT)
        if found is not None:
            item.causes += [c for c, _ in found.causes.most_common()]
        features.append(item)
    return SkewReport(
        feature_service, train.name, served.row_count, rows.num_rows if rows is not None else 0, features, start, end
    )
