"""`PostgreSQLSource` (`feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source`)."""

from potluck.definitions.sources import PostgreSQLSource

__all__ = ["PostgreSQLSource"]
