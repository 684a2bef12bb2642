"""The PostgreSQL offline store and its config (`feast.infra.offline_stores.contrib.postgres_offline_store.postgres`)."""

from potluck.offline.postgres_config import PostgreSQLOfflineStoreConfig

__all__ = ["PostgreSQLOfflineStoreConfig"]
