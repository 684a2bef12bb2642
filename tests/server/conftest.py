"""Fixtures of the server tests: a real uvicorn server on a free loopback port, serving the in-memory backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from memory_backend import MemoryBackend
from server_support import Running, make_keys, serve

from potluck.server import ServerSettings
from potluck.server.app import create_app
from potluck.server.auth import ApiKeyStore, AuditLog, ServerTables


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """An auth-on server with one key per role (module-scoped: starting uvicorn once is enough)."""
    path: Path = tmp_path_factory.mktemp("server") / "registry.db"
    tables = ServerTables(f"sqlite:///{path}", "test_project")
    audit = AuditLog(tables)
    store = ApiKeyStore(tables, audit, cache_seconds=0)
    keys = make_keys(store)
    backend = MemoryBackend()
    settings = ServerSettings(auth="on", max_entity_rows=50, max_body_bytes=64 * 1024, max_push_rows=100)
    app = create_app(backend, settings, keys=store, audit=audit)
    with serve(app) as url, httpx.Client(timeout=10) as client:
        yield Running(url, backend, keys, store, audit, client)
    tables.close()


@pytest.fixture
def fresh(running: Running) -> Iterator[Running]:
    """The module server with its backend's failure switch reset after the test."""
    yield running
    running.backend.fail_with = None
