"""The `monitoring:` section of `feature_store.yaml`: drift thresholds, bins and sample sizes.

Thresholds resolve per feature, later ones winning key by key: the defaults below, then
`monitoring.thresholds`, then the view's tags (`monitoring.<threshold>: "<value>"`), then
`monitoring.views.<view>.thresholds`, then `monitoring.views.<view>.features.<feature>`. A threshold
set to null turns its rule off.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from potluck.definitions.errors import ConfigError
from potluck.monitoring.alerts.config import AlertsConfig
from potluck.monitoring.freshness import FreshnessConfig

TAG_PREFIX = "monitoring."


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Thresholds(_Strict):
    """When each drift rule fires (defaults from the design; null turns a rule off)."""

    psi: float | None = Field(default=0.2, gt=0)  # PSI above this (numeric and categorical)
    ks_p_value: float | None = Field(default=0.05, gt=0, le=1)  # KS p-value below this ...
    ks_statistic: float | None = Field(default=0.1, ge=0, le=1)  # ... together with a KS statistic at least this
    mean_change: float | None = Field(default=0.3, gt=0)  # |mean - baseline mean| / |baseline mean| above this
    null_rate_change: float | None = Field(default=0.05, gt=0, le=1)  # |null rate - baseline's| above this
    max_ratio: float | None = Field(default=2.0, gt=0)  # max above this multiple of the baseline max
    unseen_share: float | None = Field(default=0.05, gt=0, le=1)  # categories unseen in the baseline above this share
    chi2_p_value: float | None = Field(default=None, gt=0, le=1)  # chi-square p-value below this (off by default)
    js_distance: float | None = Field(default=None, gt=0, le=1)  # Jensen-Shannon distance above this (off by default)

    def merged(self, override: Thresholds) -> Thresholds:
        """These thresholds with the keys `override` sets explicitly replaced."""
        changes = {k: getattr(override, k) for k in override.model_fields_set}
        return self.model_copy(update=changes) if changes else self


class FeatureMonitoring(Thresholds):
    """Per-feature overrides: only the keys given replace the view's."""


class ViewMonitoring(_Strict):
    thresholds: Thresholds = Thresholds()
    features: dict[str, FeatureMonitoring] = Field(default_factory=dict)


class SkewConfig(_Strict):
    """`monitoring.skew`: when served values count as inconsistent with the offline store (docs/skew.md)."""

    # share of compared rows whose served value does not match the offline recomputation (value
    # mismatches, missing online, missing offline together) above which a feature is skewed; null: off
    mismatch_rate: float | None = Field(default=0.01, ge=0, le=1)
    rel_tolerance: float = Field(default=1e-6, ge=0)  # floats match within rel_tolerance * |offline| ...
    abs_tolerance: float = Field(default=1e-9, ge=0)  # ... or abs_tolerance, whichever is larger
    examples: int = Field(default=3, ge=0, le=100)  # example rows kept per mismatch kind and feature


class MonitoringConfig(_Strict):
    thresholds: Thresholds = Thresholds()
    views: dict[str, ViewMonitoring] = Field(default_factory=dict)
    # PSI bins: the baseline's deciles (default) or the seed's equal-width bins over the joint range
    psi_bins: Literal["quantile", "equal_width"] = "quantile"
    bins: int = Field(default=10, ge=2, le=100)
    sample_size: int = Field(default=10_000, ge=100, le=1_000_000)  # rows kept per feature for KS
    seed: int = Field(default=0, ge=0)
    top_k: int = Field(default=100, ge=1, le=10_000)  # categories kept per categorical feature
    alerts: AlertsConfig = AlertsConfig()  # where alerts go (docs/monitoring.md, "Alerts")
    freshness: FreshnessConfig = FreshnessConfig()  # staleness limits (docs/monitoring.md, "Freshness")
    skew: SkewConfig = SkewConfig()  # training-serving consistency (docs/skew.md)

    def thresholds_for(self, view: str, feature: str, tags: Mapping[str, str] | None = None) -> Thresholds:
        """The thresholds of one feature of one view (see the module docstring for the order)."""
        result = self.thresholds
        if tags:
            result = result.merged(thresholds_from_tags(view, tags))
        per_view = self.views.get(view)
        if per_view is not None:
            result = result.merged(per_view.thresholds)
            per_feature = per_view.features.get(feature)
            if per_feature is not None:
                result = result.merged(per_feature)
        return result


def thresholds_from_tags(view: str, tags: Mapping[str, str]) -> Thresholds:
    """The thresholds a view's tags set (`monitoring.psi: "0.3"`, `monitoring.mean_change: "none"`)."""
    given: dict[str, float | None] = {}
    for key, value in tags.items():
        if not key.startswith(TAG_PREFIX):
            continue
        name = key[len(TAG_PREFIX) :]
        if name not in Thresholds.model_fields:
            known = ", ".join(TAG_PREFIX + k for k in Thresholds.model_fields)
            raise ConfigError(f"feature view '{view}': tag '{key}' is not a monitoring threshold; use one of {known}")
        text = value.strip().lower()
        if text in ("none", "null", "off", ""):
            given[name] = None
            continue
        try:
            given[name] = float(text)
        except ValueError:
            raise ConfigError(f"feature view '{view}': tag '{key}' must be a number or 'none', got '{value}'") from None
    try:
        return Thresholds.model_validate(given)
    except ValidationError as err:
        first = err.errors(include_url=False, include_input=False)[0]
        key = TAG_PREFIX + ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"feature view '{view}': tag '{key}': {first['msg']}") from None
