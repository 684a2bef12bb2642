"""A registry database that stops answering (the API-key table locked): 503s, and /health stays fast."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from memory_backend import MemoryBackend

from potluck.server import ServerSettings, create_app
from potluck.server.auth import ApiKeyStore, AuditLog, ServerTables
from tests_support import HealthProbe, serve

READ = {"features": ["driver_stats:trips"], "entities": {"driver_id": [1001]}}
TIMEOUT = 2.0
BOUND = 8.0


def _timed(call: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


@pytest.mark.postgres
def test_locked_key_table_gives_503_not_a_hung_server(postgres_database: str) -> None:
    import psycopg

    tables = ServerTables(postgres_database, "faults")
    keys = ApiKeyStore(tables, AuditLog(tables), cache_seconds=0)
    reader = keys.create("reader", "test")[1]
    headers = {"Authorization": f"Bearer {reader}"}
    settings = ServerSettings(auth="on", backend_timeout_seconds=TIMEOUT)
    app = create_app(MemoryBackend(), settings, keys=keys)
    try:
        with serve(app) as url, HealthProbe(url) as probe, httpx.Client(base_url=url, timeout=60) as http:
            assert http.post("/get-online-features", json=READ, headers=headers).status_code == 200
            with psycopg.connect(postgres_database) as locker:
                locker.execute("LOCK TABLE potluck_api_keys IN ACCESS EXCLUSIVE MODE")
                for _ in range(2):
                    response, seconds = _timed(lambda: http.post("/get-online-features", json=READ, headers=headers))
                    assert response.status_code == 503, response.text
                    assert seconds < BOUND
                    assert response.json()["error"]["retryable"] is True
                assert http.get("/health").status_code == 200
                locker.rollback()
            deadline = time.monotonic() + 30
            while http.post("/get-online-features", json=READ, headers=headers).status_code != 200:
                assert time.monotonic() < deadline, "no recovery after the lock was released"
                time.sleep(0.2)
        probe.check()
    finally:
        tables.close()
