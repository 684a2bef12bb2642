"""A real uvicorn server on a free loopback port, serving the in-memory backend."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from memory_backend import MemoryBackend

from potluck.server import ServerSettings, create_app
from potluck.server.auth import ApiKeyStore, AuditLog, ServerTables
from tests_support import free_port, serve  # noqa: F401  (re-exported to the test modules)


@dataclass
class Keys:
    reader: str
    writer: str
    admin: str
    metrics: str
    scoped_view: str  # reader limited to feature_view:merchant
    scoped_service: str  # reader limited to feature_service:driver_service
    scoped_tag: str  # writer limited to tag:team=drivers
    revoked: str


@dataclass
class Running:
    url: str
    backend: MemoryBackend
    keys: Keys
    store: ApiKeyStore
    audit: AuditLog
    client: httpx.Client

    def post(self, path: str, body: Any = None, key: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        headers.update(kwargs.pop("headers", {}))
        if body is not None:
            kwargs["json"] = body
        return self.client.post(self.url + path, headers=headers, **kwargs)

    def get(self, path: str, key: str | None = None) -> httpx.Response:
        headers = {"X-API-Key": key} if key else {}
        return self.client.get(self.url + path, headers=headers)


def make_keys(store: ApiKeyStore) -> Keys:
    def key(role: str, *scopes: str) -> str:
        return store.create(role, "test", name=role, scopes=list(scopes))[1]

    revoked_info, revoked = store.create("admin", "test", name="old")
    store.revoke(revoked_info.id, "test")
    return Keys(
        reader=key("reader"),
        writer=key("writer"),
        admin=key("admin"),
        metrics=key("metrics"),
        scoped_view=key("reader", "feature_view:merchant"),
        scoped_service=key("reader", "feature_service:driver_service"),
        scoped_tag=key("writer", "tag:team=drivers"),
        revoked=revoked,
    )


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
