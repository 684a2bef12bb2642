"""Drift of a current profile against a baseline: metrics per feature, the rules, the verdicts.

Numeric-like features (numeric; arrays by their lengths): PSI and Jensen-Shannon distance on the
baseline's bins, two-sample KS on the two profiles' samples, relative mean change, null-rate change,
max ratio. Categorical and boolean features: PSI over the baseline's categories with every other
value pooled into one bin, chi-square (homogeneity of the two count vectors), unseen categories,
null-rate change. Timestamps: null-rate change only (time moves on by design). Formulas and
choices are in docs/monitoring.md.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from potluck.definitions.errors import MissingExtraError
from potluck.monitoring.config import Thresholds
from potluck.monitoring.profile import FeatureProfile, Profile
from potluck.monitoring.report import FeatureResult, MonitorRunReport, run_report
from potluck.monitoring.statistics import match_feature

EMPTY_BIN = 0.0001  # the share an empty bin counts as in PSI
PsiBins = Literal["quantile", "equal_width"]


def _scipy() -> Any:
    try:
        import scipy.spatial.distance
        import scipy.stats
    except ImportError:
        raise MissingExtraError("scipy", "monitoring") from None
    return scipy


def shares(counts: Sequence[int | float]) -> list[float]:
    total = float(sum(counts))
    return [c / total for c in counts] if total > 0 else [0.0 for _ in counts]


def psi(expected: Sequence[int | float], actual: Sequence[int | float]) -> float:
    """sum over bins of (a - e) * ln(a / e), shares of each side, an empty bin counting as EMPTY_BIN."""
    e = [s or EMPTY_BIN for s in shares(expected)]
    a = [s or EMPTY_BIN for s in shares(actual)]
    return float(sum((ai - ei) * math.log(ai / ei) for ei, ai in zip(e, a, strict=True)))


def js_distance(expected: Sequence[int | float], actual: Sequence[int | float]) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) of the two bin-share vectors."""
    value = _scipy().spatial.distance.jensenshannon(shares(expected), shares(actual), base=2)
    return float(value) if math.isfinite(value) else 0.0


def ks(baseline: Sequence[float], current: Sequence[float]) -> tuple[float, float]:
    result = _scipy().stats.ks_2samp(baseline, current)
    return float(result.statistic), float(result.pvalue)


def chi2_p_value(expected: Sequence[int], actual: Sequence[int]) -> float | None:
    """p-value of the chi-square test of homogeneity of two count vectors (bins empty on both sides dropped)."""
    pairs = [(e, a) for e, a in zip(expected, actual, strict=True) if e + a > 0]
    if len(pairs) < 2 or not sum(e for e, _ in pairs) or not sum(a for _, a in pairs):
        return None
    table = [[e for e, _ in pairs], [a for _, a in pairs]]
    return float(_scipy().stats.chi2_contingency(table, correction=False).pvalue)


def mean_change(base_mean: float, mean: float, base_stddev: float | None) -> float | None:
    """|mean - baseline mean| / max(|baseline mean|, baseline stddev).

    The seed's relative change when the baseline mean is at least its spread; for a feature centred
    near zero the spread is the scale instead (relative to a mean near 0, noise alone is a huge change).
    """
    scale = max(abs(base_mean), base_stddev or 0.0)
    if scale == 0:
        return 0.0 if mean == base_mean else None
    return abs(mean - base_mean) / scale


def histogram_on(edges: Sequence[float], values: Sequence[float]) -> list[int]:
    """Counts of `values` per bin of the interior `edges` (bins (-inf, e1), [e1, e2), ..., [ek, inf))."""
    import bisect

    counts = [0] * (len(edges) + 1)
    for v in values:
        counts[bisect.bisect_right(edges, v)] += 1
    return counts


def equal_width_edges(low: float, high: float, bins: int) -> list[float]:
    if not high > low:
        return []
    step = (high - low) / bins
    return [low + step * i for i in range(1, bins)]


@dataclass
class FeatureDrift:
    view: str
    feature: str
    kind: str
    psi: float | None = None
    ks_statistic: float | None = None
    ks_p_value: float | None = None
    js_distance: float | None = None
    chi2_p_value: float | None = None
    mean_change: float | None = None
    null_rate_change: float | None = None
    max_ratio: float | None = None
    unseen_share: float | None = None  # the largest share of one category the baseline never saw
    rules_fired: list[str] = field(default_factory=list)
    baseline_histogram: list[int] | None = None
    current_histogram: list[int] | None = None
    bin_labels: list[str] | None = None

    @property
    def drift(self) -> bool:
        return bool(self.rules_fired)

    def result(self) -> FeatureResult:
        return {
            "view": self.view,
            "feature": self.feature,
            "kind": self.kind,  # type: ignore[typeddict-item]
            "drift": self.drift,
            "psi": self.psi,
            "ks_statistic": self.ks_statistic,
            "ks_p_value": self.ks_p_value,
            "js_distance": self.js_distance,
            "chi2_p_value": self.chi2_p_value,
            "mean_change": self.mean_change,
            "null_rate_change": self.null_rate_change,
            "max_ratio": self.max_ratio,
            "rules_fired": list(self.rules_fired),
        }


@dataclass
class DriftReport:
    features: list[FeatureDrift]
    missing: list[str] = field(default_factory=list)  # baseline features the current profile lacks

    @property
    def drift(self) -> bool:
        return any(f.drift for f in self.features)

    @property
    def drifted(self) -> list[FeatureDrift]:
        return [f for f in self.features if f.drift]

    def to_report(self, stale: list[str] | None = None) -> MonitorRunReport:
        return run_report([f.result() for f in self.features], stale)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.to_report())


ThresholdsFor = Callable[[str, str], Thresholds]


def check_drift(
    baseline: Profile,
    current: Profile,
    thresholds: ThresholdsFor | Thresholds | None = None,
    *,
    psi_bins: PsiBins = "quantile",
    bins: int = 10,
) -> DriftReport:
    """Compare every feature of `baseline` that `current` also has; see the module docstring."""
    limits: ThresholdsFor
    if thresholds is None or isinstance(thresholds, Thresholds):
        fixed = thresholds or Thresholds()
        limits = lambda _view, _feature: fixed  # noqa: E731
    else:
        limits = thresholds
    out, missing = [], []
    for base in baseline.features:
        cur = match_feature(current, base.view, base.name)
        if cur is None:
            missing.append(f"{base.view}:{base.name}" if base.view else base.name)
            continue
        view = base.view or cur.view or ""
        out.append(feature_drift(base, cur, limits(view, base.name), view, psi_bins, bins))
    return DriftReport(out, missing)


def feature_drift(
    base: FeatureProfile, cur: FeatureProfile, t: Thresholds, view: str, psi_bins: PsiBins = "quantile", bins: int = 10
) -> FeatureDrift:
    d = FeatureDrift(view=view, feature=base.name, kind=base.kind)
    if base.null_rate is not None and cur.null_rate is not None:
        d.null_rate_change = cur.null_rate - base.null_rate
    if base.kind in ("numeric", "array") and cur.kind == base.kind:
        _numeric(d, base, cur, psi_bins, bins)
    elif base.kind in ("categorical", "boolean") and cur.kind in ("categorical", "boolean"):
        _categorical(d, base, cur)
    d.rules_fired = rules_fired(d, t)
    return d


def _numeric(d: FeatureDrift, base: FeatureProfile, cur: FeatureProfile, psi_bins: PsiBins, bins: int) -> None:
    if base.mean is not None and cur.mean is not None:
        d.mean_change = mean_change(base.mean, cur.mean, base.stddev)
    if base.max is not None and cur.max is not None and base.max > 0:
        d.max_ratio = cur.max / base.max
    if base.sample and cur.sample:
        d.ks_statistic, d.ks_p_value = ks(base.sample, cur.sample)
    expected, actual, edges = _bins(base, cur, psi_bins, bins)
    if expected is not None and actual is not None and sum(expected) > 0 and sum(actual) > 0:
        d.psi = psi(expected, actual)
        d.js_distance = js_distance(expected, actual)
        d.baseline_histogram, d.current_histogram = list(expected), list(actual)
        d.bin_labels = _edge_labels(edges)


def _bins(
    base: FeatureProfile, cur: FeatureProfile, psi_bins: PsiBins, bins: int
) -> tuple[list[int] | None, list[int] | None, list[float]]:
    """The two histograms PSI and JS compare, on the same bins."""
    if psi_bins == "equal_width":  # the seed's bins: equal width over the joint range, counted on the samples
        if base.min is None or cur.min is None or base.max is None or cur.max is None:
            return None, None, []
        edges = equal_width_edges(min(base.min, cur.min), max(base.max, cur.max), bins)
        return histogram_on(edges, base.sample or []), histogram_on(edges, cur.sample or []), edges
    edges = base.bin_edges or []
    if base.histogram is None:
        return None, None, edges
    if cur.bin_edges == base.bin_edges and cur.histogram is not None:
        return base.histogram, cur.histogram, edges
    # the current profile was made without this baseline: its sample, counted on the baseline's bins
    return base.histogram, histogram_on(edges, cur.sample or []), edges


def _edge_labels(edges: Sequence[float]) -> list[str]:
    if not edges:
        return ["all"]
    labels = [f"< {edges[0]:.4g}"]
    labels += [f"{lo:.4g} .. {hi:.4g}" for lo, hi in itertools.pairwise(edges)]
    return [*labels, f">= {edges[-1]:.4g}"]


OTHER = "(other)"


def _categorical(d: FeatureDrift, base: FeatureProfile, cur: FeatureProfile) -> None:
    known = [v for v, _ in base.top or []]
    current = dict(cur.top or [])
    expected = [n for _, n in base.top or []] + [base.other_count or 0]
    listed = [current.get(v, 0) for v in known]
    pooled = (cur.non_null or 0) - sum(listed)  # every value of `current` the baseline does not list
    actual = [*listed, pooled]
    if sum(expected) > 0 and sum(actual) > 0:
        d.psi = psi(expected, actual)
        d.chi2_p_value = chi2_p_value(expected, actual)
        d.baseline_histogram, d.current_histogram = expected, actual
        d.bin_labels = [*known, OTHER]
    seen = set(known)
    unseen = [n for v, n in cur.top or [] if v not in seen]
    if cur.non_null:
        d.unseen_share = max(unseen, default=0) / cur.non_null


def rules_fired(d: FeatureDrift, t: Thresholds) -> list[str]:
    """The names of the rules `d` breaks under thresholds `t` (a rule whose threshold is null never fires)."""
    fired = []

    def above(value: float | None, limit: float | None) -> bool:
        return value is not None and limit is not None and value > limit

    if above(d.psi, t.psi):
        fired.append("psi")
    if (
        d.ks_p_value is not None
        and d.ks_statistic is not None
        and t.ks_p_value is not None
        and d.ks_p_value < t.ks_p_value
        and (t.ks_statistic is None or d.ks_statistic >= t.ks_statistic)
    ):
        fired.append("ks")
    if above(d.js_distance, t.js_distance):
        fired.append("js_distance")
    if d.chi2_p_value is not None and t.chi2_p_value is not None and d.chi2_p_value < t.chi2_p_value:
        fired.append("chi2")
    if above(d.unseen_share, t.unseen_share):
        fired.append("unseen_category")
    if above(d.mean_change, t.mean_change):
        fired.append("mean_change")
    if d.null_rate_change is not None and above(abs(d.null_rate_change), t.null_rate_change):
        fired.append("null_rate_change")
    if above(d.max_ratio, t.max_ratio):
        fired.append("max_ratio")
    return fired
