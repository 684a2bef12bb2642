"""`BatchFeatureView` at the import path Feast repositories use (`feast.batch_feature_view`)."""

from potluck.definitions.aggregation_views import BatchFeatureView

__all__ = ["BatchFeatureView"]
