from __future__ import annotations

from collections.abc import Iterator

import pytest

from potluck.offline.duckdb_store import DuckDBOfflineStore
from potluck.repo.config import DuckDBOfflineStoreConfig


@pytest.fixture
def store() -> Iterator[DuckDBOfflineStore]:
    s = DuckDBOfflineStore(DuckDBOfflineStoreConfig(threads=2, memory_limit="2GB"))
    yield s
    s.close()
