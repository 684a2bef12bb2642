"""Stream feature views at the import path Feast repositories use (`feast.stream_feature_view`)."""

from potluck.definitions.aggregation_views import StreamFeatureView, stream_feature_view

__all__ = ["StreamFeatureView", "stream_feature_view"]
