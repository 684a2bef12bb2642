"""The Spark offline store's config at Feast's import path (`...spark_offline_store.spark`)."""

from potluck.offline.spark_config import SparkOfflineStoreConfig

__all__ = ["SparkOfflineStoreConfig"]
