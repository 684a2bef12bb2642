"""Feature logging definitions, at the import path Feast users know (`feast.feature_logging`)."""

from potluck.definitions.feature_logging import LOG_DATE_FIELD, LoggingConfig, LoggingDestination

LOG_TIMESTAMP_FIELD = "__log_timestamp"
REQUEST_ID_FIELD = "__request_id"

__all__ = ["LOG_DATE_FIELD", "LOG_TIMESTAMP_FIELD", "REQUEST_ID_FIELD", "LoggingConfig", "LoggingDestination"]
