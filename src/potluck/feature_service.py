"""`FeatureService` at the import path Feast repositories use (`feast.feature_service`)."""

from potluck.definitions.feature_service import FeatureService

__all__ = ["FeatureService"]
