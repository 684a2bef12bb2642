"""Why the server is not ready names hosts and databases: only metrics (or admin) callers, or a server without auth, see it."""

from __future__ import annotations

import httpx
from memory_backend import MemoryBackend
from server_support import Running, serve

from potluck.definitions.errors import BackendUnavailableError
from potluck.server import ServerSettings, create_app


def test_ready_detail_needs_a_metrics_or_admin_credential(fresh: Running) -> None:
    fresh.backend.fail_with = BackendUnavailableError("redis at 10.0.0.7:6379 refused")
    anonymous = fresh.get("/ready")
    assert anonymous.status_code == 503
    assert anonymous.json()["error"]["message"] == "not ready"
    assert "unreachable" not in anonymous.text
    for key in (fresh.keys.reader, fresh.keys.revoked, "pk_nope_nope"):
        r = fresh.get("/ready", key)
        assert r.status_code == 503
        assert r.json()["error"]["message"] == "not ready"
    for key in (fresh.keys.metrics, fresh.keys.admin):
        r = fresh.get("/ready", key)
        assert r.status_code == 503
        assert r.json()["error"]["message"] == "not ready: online store unreachable"
    assert anonymous.headers["retry-after"]


def test_ready_detail_without_auth() -> None:
    backend = MemoryBackend()
    backend.fail_with = BackendUnavailableError("down")
    with serve(create_app(backend, ServerSettings(auth="off"))) as url:
        r = httpx.get(url + "/ready", timeout=10)
    assert r.status_code == 503
    assert r.json()["error"]["message"] == "not ready: online store unreachable"
