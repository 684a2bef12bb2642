"""Many pushes to a frozen Redis: each a bounded 503, and the backlog takes no thread other routes need.

Pushes used to run in the event loop's default thread pool (shared with /metrics), and the first
write of a fresh server loaded the newest-wins script under a lock, so every writer queued behind
one stuck on the frozen server, a socket timeout (twice: timeouts were retried) after another.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from integration_support import build_repo_on_port

from potluck import FeatureStore
from potluck.server import ServerSettings, create_app
from potluck.server.offload import Offload
from potluck.server.store_backend import StoreBackend
from tests_support import free_port, serve, start_redis_server

PUSHERS = 48  # more than the default thread pool's 40 threads
PUSH_BOUND = 20.0  # backend_timeout_seconds (2) waiting for a thread + one socket timeout (3), with slack
METRICS_BOUND = 5.0


def _push_body() -> dict[str, object]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "push_source_name": "driver_live",
        "df": {"driver_id": [7], "lat": [1.5], "status": ["x"], "event_timestamp": [now]},
    }


@pytest.mark.redis
def test_push_backlog_on_frozen_redis(tmp_path: Path) -> None:
    port = free_port()
    proc = start_redis_server(port, tmp_path)
    root = build_repo_on_port(tmp_path / "repo", port)
    admin = FeatureStore(repo_path=root)
    admin.apply()
    admin.close()
    store = FeatureStore(repo_path=root)  # as a fresh `potluck serve`: it has written nothing yet
    offload = Offload(threads=16, timeout=2.0)
    app = create_app(
        StoreBackend(store, offload), ServerSettings(auth="off", backend_timeout_seconds=2), offload=offload
    )
    pushes: list[tuple[float, int | str]] = []
    scrapes: list[tuple[float, int | str]] = []
    try:
        with serve(app) as url:
            os.kill(proc.pid, signal.SIGSTOP)
            try:

                def push() -> None:
                    with httpx.Client(base_url=url, timeout=120) as http:
                        started = time.monotonic()
                        try:
                            status: int | str = http.post("/push", json=_push_body()).status_code
                        except httpx.HTTPError as err:
                            status = repr(err)
                        pushes.append((time.monotonic() - started, status))

                threads = [threading.Thread(target=push) for _ in range(PUSHERS)]
                for thread in threads:
                    thread.start()
                time.sleep(1)  # the pushes are queued or stuck on the frozen server
                with httpx.Client(base_url=url, timeout=120) as http:
                    for _ in range(3):
                        started = time.monotonic()
                        status = http.get("/metrics").status_code
                        scrapes.append((time.monotonic() - started, status))
                        time.sleep(0.5)
                for thread in threads:
                    thread.join(180)
            finally:
                os.kill(proc.pid, signal.SIGCONT)
            assert len(pushes) == PUSHERS
            assert {status for _, status in pushes} == {503}, pushes
            slowest = max(seconds for seconds, _ in pushes)
            assert slowest < PUSH_BOUND, f"a push to the frozen store took {slowest:.1f} s"
            assert all(status == 200 for _, status in scrapes), scrapes
            assert max(seconds for seconds, _ in scrapes) < METRICS_BOUND, scrapes
            with httpx.Client(base_url=url, timeout=30) as http:
                deadline = time.monotonic() + 30
                while (status := http.post("/push", json=_push_body()).status_code) != 200:
                    assert time.monotonic() < deadline, f"push did not recover (last status {status})"
                    time.sleep(0.2)
            lat = store.get_online_features(["driver_live:lat"], {"driver_id": [7]}).to_dict()["lat"]
            assert lat == [1.5]
    finally:
        proc.kill()
        proc.wait(10)
        store.close()
        offload.close()
