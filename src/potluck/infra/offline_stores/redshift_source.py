"""`RedshiftLoggingDestination`, which says what to use instead: there is no Redshift offline store."""

from potluck.definitions.feature_logging import RedshiftLoggingDestination

__all__ = ["RedshiftLoggingDestination"]
