"""Frozen (SIGSTOP) and killed backends under a running server: fast 503s, /health always fast, recovery.

Nothing the server waits on may run on its event loop, and every backend wait is bounded, so a
backend that stops answering costs the requests that need it a bounded wait and nothing else.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from integration_support import END, build_repo, build_repo_on_port

from potluck import FeatureStore
from potluck.server import ServerSettings, create_app
from potluck.server.store_backend import StoreBackend
from tests_support import HealthProbe, free_port, serve, start_redis_server

READ = {"features": ["driver_stats:trips"], "entities": {"driver_id": [1, 2]}}
TIMEOUT = 2.0  # the server's backend_timeout_seconds in these tests
BOUND = 8.0  # a request that needs a frozen backend answers within this (timeouts plus slack under load)


def _timed(call: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def _assert_fast_503(response: httpx.Response, seconds: float) -> None:
    assert response.status_code == 503, response.text
    assert seconds < BOUND, f"503 after {seconds:.1f} s"
    assert response.json()["error"]["retryable"] is True
    assert response.headers.get("retry-after")


def _wait_for_200(http: httpx.Client, method: str, path: str, **kwargs: Any) -> None:
    deadline = time.monotonic() + 60
    status = 0
    while time.monotonic() < deadline:
        status = http.request(method, path, **kwargs).status_code
        if status == 200:
            return
        time.sleep(0.2)
    raise AssertionError(f"{method} {path} did not recover (last status {status})")


@contextmanager
def _served(store: FeatureStore, **settings: Any) -> Iterator[str]:
    app = create_app(StoreBackend(store), ServerSettings(backend_timeout_seconds=TIMEOUT, **settings))
    with serve(app) as url:
        yield url


def _stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGSTOP)
    except PermissionError:
        pytest.skip(f"not allowed to send SIGSTOP to process {pid}")


@pytest.mark.redis
def test_redis_frozen_then_killed(tmp_path: Path) -> None:
    port = free_port()
    proc = start_redis_server(port, tmp_path)
    root = build_repo_on_port(tmp_path / "repo", port)
    store = FeatureStore(repo_path=root)
    store.apply()
    store.materialize(END - timedelta(days=60), END, ["driver_stats"])
    state = {"proc": proc}
    try:
        with (
            _served(store, auth="off") as url,
            HealthProbe(url) as probe,
            httpx.Client(base_url=url, timeout=60) as http,
        ):
            assert http.post("/get-online-features", json=READ).status_code == 200
            assert http.get("/ready").status_code == 200
            os.kill(proc.pid, signal.SIGSTOP)
            try:
                for _ in range(2):
                    _assert_fast_503(*_timed(lambda: http.post("/get-online-features", json=READ)))
                    _assert_fast_503(*_timed(lambda: http.get("/ready")))
            finally:
                os.kill(proc.pid, signal.SIGCONT)
            _wait_for_200(http, "POST", "/get-online-features", json=READ)
            assert http.get("/ready").status_code == 200
            proc.kill()
            proc.wait(10)
            _assert_fast_503(*_timed(lambda: http.post("/get-online-features", json=READ)))
            _assert_fast_503(*_timed(lambda: http.get("/ready")))
            state["proc"] = start_redis_server(port, tmp_path)
            _wait_for_200(http, "GET", "/ready")
        probe.check()
    finally:
        state["proc"].kill()
        state["proc"].wait(10)
        store.close()


def _postgres_repo(root: Path, url: str) -> Path:
    build_repo(root, "sqlite")
    dbname = url.rsplit("/", 1)[1]
    from tests_support import POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER

    yaml = (root / "feature_store.yaml").read_text().split("online_store:")[0]
    (root / "feature_store.yaml").write_text(
        yaml + "online_store:\n  type: postgres\n"
        f"  dsn: host={POSTGRES_HOST} port={POSTGRES_PORT} user={POSTGRES_USER} dbname={dbname}\n"
        "  min_conn: 1\n  max_conn: 2\n"
    )
    return root


def _backends_of(dbname: str, admin: Any) -> list[int]:
    rows = admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,)
    ).fetchall()
    return [int(r[0]) for r in rows]


@pytest.mark.postgres
def test_postgres_online_store_frozen(tmp_path: Path, postgres_database: str) -> None:
    import psycopg

    dbname = postgres_database.rsplit("/", 1)[1]
    store = FeatureStore(repo_path=_postgres_repo(tmp_path / "repo", postgres_database))
    store.apply()
    store.materialize(END - timedelta(days=60), END, ["driver_stats"])
    frozen: list[int] = []
    try:
        with (
            psycopg.connect(postgres_database, autocommit=True) as admin,
            _served(store, auth="off") as url,
            HealthProbe(url) as probe,
            httpx.Client(base_url=url, timeout=60) as http,
        ):
            assert http.post("/get-online-features", json=READ).status_code == 200
            pids = _backends_of(dbname, admin)
            assert pids
            for pid in pids:
                _stop(pid)
                frozen.append(pid)
            _assert_fast_503(*_timed(lambda: http.post("/get-online-features", json=READ)))
            for pid in frozen:
                os.kill(pid, signal.SIGCONT)
            frozen.clear()
            _wait_for_200(http, "POST", "/get-online-features", json=READ)
        probe.check()
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
        store.teardown()
        store.close()
