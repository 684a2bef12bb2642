"""`BigQueryLoggingDestination`, which says what to use instead: there is no BigQuery offline store."""

from potluck.definitions.feature_logging import BigQueryLoggingDestination

__all__ = ["BigQueryLoggingDestination"]
