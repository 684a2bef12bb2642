"""`SparkSource` at Feast's import path (`feast.infra.offline_stores.contrib.spark_offline_store.spark_source`)."""

from potluck.definitions.spark_source import SparkSource

__all__ = ["SparkSource"]
