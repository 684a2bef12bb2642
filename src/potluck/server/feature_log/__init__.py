"""Feature logging of the feature server: sampled online answers to Parquet, off the request path."""

from potluck.server.feature_log.logger import FeatureLogger, LogStats
from potluck.server.feature_log.spec import STATUS_CODES, LogSpec

__all__ = ["STATUS_CODES", "FeatureLogger", "LogSpec", "LogStats"]
