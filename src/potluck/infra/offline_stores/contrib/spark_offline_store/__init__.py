"""Feast's `feast.infra.offline_stores.contrib.spark_offline_store` import paths."""
