"""`offline_store.type` -> the offline store class, built from its config section.

Each store's module is imported only when that type is used, so a driver (psycopg, pyspark) is
loaded only by the repositories that need it.
"""

from __future__ import annotations

import importlib
from typing import Any

from potluck.offline.protocol import OfflineStore

_DUCKDB = ("potluck.offline.duckdb_store", "DuckDBOfflineStore")
STORES: dict[str, tuple[str, str]] = {
    "duckdb": _DUCKDB,
    "file": _DUCKDB,  # Feast's names of its embedded stores
    "dask": _DUCKDB,
    "postgres": ("potluck.offline.postgres_store", "PostgreSQLOfflineStore"),
    "spark": ("potluck.offline.spark_store", "SparkOfflineStore"),
}


def offline_store(config: Any) -> OfflineStore:
    """The offline store for a validated `offline_store` config section."""
    module, name = STORES[config.type]
    store: OfflineStore = getattr(importlib.import_module(module), name)(config)
    return store
