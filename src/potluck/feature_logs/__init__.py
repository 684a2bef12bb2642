"""Feature logging: sampled online answers of feature services to Parquet, off the request path.

Used by the feature server (each answer's JSON body) and by `FeatureStore.get_online_features`
(each `OnlineResponse`), with the same queue, writer process and files.
"""

from potluck.feature_logs.logger import FeatureLogger, LogStats
from potluck.feature_logs.spec import STATUS_CODES, LogSpec

__all__ = ["STATUS_CODES", "FeatureLogger", "LogSpec", "LogStats"]
