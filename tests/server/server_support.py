"""Helpers of the server tests: the running server and its keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from memory_backend import MemoryBackend

from potluck.server.auth import ApiKeyStore, AuditLog
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
