"""On-demand feature views at the import path Feast repositories use (`feast.on_demand_feature_view`)."""

from potluck.definitions.on_demand import OnDemandFeatureView, on_demand_feature_view

__all__ = ["OnDemandFeatureView", "on_demand_feature_view"]
