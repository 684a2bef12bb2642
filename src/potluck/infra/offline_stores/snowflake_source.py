"""`SnowflakeLoggingDestination`, which says what to use instead: there is no Snowflake offline store."""

from potluck.definitions.feature_logging import SnowflakeLoggingDestination

__all__ = ["SnowflakeLoggingDestination"]
