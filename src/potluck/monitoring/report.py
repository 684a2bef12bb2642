"""The JSON object `potluck monitor run -o json` prints: a stable shape (docs/monitoring.md).

Every key is always present; a metric that does not apply to a feature's kind is null.
"""

from __future__ import annotations

from typing import Literal, TypedDict

Kind = Literal["numeric", "categorical", "boolean", "timestamp", "array", "other"]
KINDS: tuple[Kind, ...] = ("numeric", "categorical", "boolean", "timestamp", "array", "other")
# The names of the drift rules, as they appear in `rules_fired`.
RULES = (
    "psi",
    "ks",
    "js_distance",
    "chi2",
    "unseen_category",
    "mean_change",
    "null_rate_change",
    "max_ratio",
)


class FeatureResult(TypedDict):
    view: str
    feature: str
    kind: Kind
    drift: bool
    psi: float | None
    ks_statistic: float | None
    ks_p_value: float | None
    js_distance: float | None
    chi2_p_value: float | None
    mean_change: float | None
    null_rate_change: float | None
    max_ratio: float | None
    rules_fired: list[str]


class MonitorRunReport(TypedDict):
    drift: bool  # any feature drifted
    stale: list[str]  # views whose online data is older than allowed
    features: list[FeatureResult]


FEATURE_KEYS: tuple[str, ...] = tuple(FeatureResult.__annotations__)
REPORT_KEYS: tuple[str, ...] = tuple(MonitorRunReport.__annotations__)


def run_report(features: list[FeatureResult], stale: list[str] | None = None) -> MonitorRunReport:
    return {
        "drift": any(f["drift"] for f in features),
        "stale": sorted(stale or []),
        "features": features,
    }
