"""`FeatureView` at the import path Feast repositories use (`feast.feature_view`)."""

from potluck.definitions.feature_view import FeatureView

__all__ = ["FeatureView"]
