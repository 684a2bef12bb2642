"""The UI mounted in the feature server over a PostgreSQL registry that freezes (SIGSTOP) mid-request:
UI requests that need it answer 503 within the server's deadline, the pages that need nothing new
still answer, and online reads and /health never wait for it."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import pytest
from ui_demo import build_demo

from potluck.server import ServerSettings, create_app
from potluck.server.auth import ApiKeyStore, AuditLog, ServerTables
from potluck.server.offload import Offload
from potluck.server.store_backend import StoreBackend
from potluck.store import FeatureStore
from potluck.ui.serve import mount_ui
from tests_support import HealthProbe, serve

TIMEOUT = 2.0  # the server's backend_timeout_seconds here
BOUND = 8.0  # a UI request that needs the frozen registry answers within this (the deadline plus slack)
READ = {"features": ["user_stats:txn_count_7d"], "entities": {"user_id": [1001, 1002]}}
UI_PATHS = [
    "/ui/",
    "/ui/feature-views/user_stats",
    "/ui/api/feature-views/user_stats",
    "/ui/api/overview",
    "/ui/feature-views",
    "/ui/lineage",
    "/ui/api/lineage",
    "/ui/search?q=txn",
]


class Freezer:
    """Stops every backend of one database and refuses it new connections until `thaw`: a registry
    whose open connections hang and whose new ones fail (any backend that slips in is stopped too)."""

    def __init__(self, admin_dsn: str, dbname: str) -> None:
        import psycopg

        self.admin = psycopg.connect(admin_dsn, autocommit=True)
        self.dbname = dbname
        self.stopped: set[int] = set()
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _backends(self) -> set[int]:
        rows = self.admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (self.dbname,)
        ).fetchall()
        return {int(r[0]) for r in rows}

    def _run(self) -> None:
        while not self._halt.is_set():
            for pid in self._backends() - self.stopped:
                try:
                    os.kill(pid, signal.SIGSTOP)
                except ProcessLookupError:
                    continue
                except PermissionError:
                    self._halt.set()
                    return
                self.stopped.add(pid)
            self._halt.wait(0.02)

    def freeze(self) -> None:
        pids = self._backends()
        assert pids, "the registry holds no connection to freeze"
        try:
            os.kill(next(iter(pids)), 0)
        except PermissionError:
            pytest.skip("not allowed to signal the PostgreSQL server's processes")
        self.admin.execute(f'ALTER DATABASE "{self.dbname}" ALLOW_CONNECTIONS false')
        self._thread.start()
        deadline = time.monotonic() + 5
        while not pids <= self.stopped and time.monotonic() < deadline:
            time.sleep(0.01)

    def thaw(self) -> None:
        self._halt.set()
        if self._thread.is_alive():
            self._thread.join(5)
        for pid in self.stopped:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self.stopped.clear()
        self.admin.execute(f'ALTER DATABASE "{self.dbname}" ALLOW_CONNECTIONS true')

    def close(self) -> None:
        self.thaw()
        self.admin.close()


@contextmanager
def _server_with_ui(store: FeatureStore) -> Iterator[tuple[str, str]]:
    """The feature server with the UI at /ui, a second UI at /fresh that has read nothing yet, and a
    third at /secured with auth on; yields the URL and a reader key of /secured."""
    from starlette.routing import Mount

    from potluck.ui.app import create_ui_app

    settings = ServerSettings(auth="off", ui=True, backend_timeout_seconds=TIMEOUT, backend_threads=4)
    offload = Offload(settings.backend_threads, settings.backend_timeout_seconds)
    app = create_app(StoreBackend(store, offload), settings, offload=offload)
    mount_ui(app.app, store, settings, offload)
    app.app.router.routes.append(Mount("/fresh", app=create_ui_app(store, settings, offload=offload)))
    # a UI with auth on whose key store (in the registry database) is asked on every request
    tables = ServerTables(store.config.registry_url, store.project, store.config.registry.timeouts())
    keys = ApiKeyStore(tables, AuditLog(tables), cache_seconds=0)
    _, reader = keys.create("reader", "test", name="ui-reader")
    secured = create_ui_app(store, settings.model_copy(update={"auth": "on"}), keys=keys, offload=offload)
    app.app.router.routes.append(Mount("/secured", app=secured))
    try:
        with serve(app) as url:
            yield url, reader
    finally:
        offload.close()
        tables.close()


def _call(http: httpx.Client, path: str) -> tuple[str, int, float]:
    started = time.monotonic()
    status = http.get(path).status_code
    return path, status, time.monotonic() - started


def _under_load(url: str, http: httpx.Client, paths: list[str]) -> list[tuple[str, int, float]]:
    """`paths` three times each from 8 clients while online reads go on; checks the reads and /health."""
    reads: list[tuple[int, float]] = []
    with HealthProbe(url) as probe, ThreadPoolExecutor(8) as clients:
        calls = [clients.submit(_call, http, path) for _ in range(3) for path in paths]
        until = time.monotonic() + TIMEOUT * 2
        while time.monotonic() < until or not all(c.done() for c in calls):
            started = time.monotonic()
            status = http.post("/get-online-features", json=READ).status_code
            reads.append((status, time.monotonic() - started))
            time.sleep(0.05)
        answers = [c.result(timeout=60) for c in calls]
    probe.check()
    assert reads
    assert all(status == 200 for status, _ in reads), reads
    assert max(seconds for _, seconds in reads) < 1.0, reads
    return answers


LISTS = ["/ui/entities", "/ui/feature-views", "/ui/api/entities", "/ui/api/feature-views", "/ui/data-sources"]


def _lists_stay_whole_across_an_apply(store: FeatureStore, http: httpx.Client) -> None:
    """8 clients read the cached list pages while an apply changes one: each answer is the page of
    the version before or of the one after, and the cache ends on the new one."""
    before = {path: http.get(path).text for path in LISTS}
    features = store.repo_path / "features.py"
    text = features.read_text(encoding="utf-8")
    assert 'description="A customer"' in text
    features.write_text(text.replace('description="A customer"', 'description="A paying customer"'))

    def change() -> None:
        time.sleep(0.3)
        store.apply()
        store.refresh_registry()

    with ThreadPoolExecutor(9) as clients:
        applied = clients.submit(change)
        calls = [clients.submit(lambda p: (p, http.get(p).text), path) for _ in range(40) for path in LISTS]
        answers = [c.result(timeout=120) for c in calls]
        applied.result(timeout=120)
    after = {path: http.get(path).text for path in LISTS}
    assert "A paying customer" in after["/ui/entities"]
    assert "A paying customer" not in before["/ui/entities"]
    assert after["/ui/feature-views"] == before["/ui/feature-views"]
    for path, body in answers:
        assert body in (before[path], after[path]), path


def _monitoring_warnings(http: httpx.Client) -> list[str]:
    warnings: list[str] = http.get("/ui/api/overview").json()["warnings"]
    return [w for w in warnings if "could not be read" in w or "have not answered" in w]


@pytest.mark.postgres
def test_a_frozen_registry_costs_ui_requests_a_bounded_wait_and_online_reads_nothing(
    tmp_path: Path, postgres_database: str
) -> None:
    from tests_support import POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER

    store = build_demo(tmp_path / "demo", registry=postgres_database)
    dbname = postgres_database.rsplit("/", 1)[1]
    freezer = Freezer(f"host={POSTGRES_HOST} port={POSTGRES_PORT} user={POSTGRES_USER} dbname=test", dbname)
    try:
        with _server_with_ui(store) as (url, reader), httpx.Client(base_url=url, timeout=60) as http:
            as_reader = {"Authorization": f"Bearer {reader}"}
            for path in UI_PATHS:
                assert http.get(path).status_code == 200, path
            assert http.get("/secured/api/lineage", headers=as_reader).status_code == 200
            assert http.post("/get-online-features", json=READ).status_code == 200
            _lists_stay_whole_across_an_apply(store, http)
            freezer.freeze()
            time.sleep(5.5)  # past the UI's monitoring cache: the next object page starts a re-read

            # the UI that has read the registry answers from what it read; the re-read waits alone
            for path, status, seconds in _under_load(url, http, UI_PATHS):
                assert (status, seconds < BOUND) == (200, True), (path, status, seconds)
            assert freezer.stopped, "nothing was frozen"

            # the UI that has not: a 503 within the deadline, never a hang or a 500
            fresh = [path.replace("/ui/", "/fresh/", 1) for path in UI_PATHS]
            for path, status, seconds in _under_load(url, http, fresh):
                assert (status, seconds < BOUND) == (503, True), (path, status, seconds)
            unavailable = http.get("/fresh/api/feature-views/user_stats")
            assert unavailable.status_code == 503
            assert unavailable.json()["error"]["code"] == "unavailable"
            assert unavailable.headers["retry-after"]
            page = http.get("/fresh/feature-views/user_stats")
            assert page.status_code == 503
            assert "did not answer" in page.text

            # the key store cannot be asked: 503 within the deadline, not a hang, a 401 or a 500
            for path in ("/secured/api/lineage", "/secured/feature-views"):
                started = time.monotonic()
                answer = http.get(path, headers=as_reader)
                assert answer.status_code == 503, (path, answer.status_code, answer.text[:300])
                assert time.monotonic() - started < BOUND
                assert answer.headers["retry-after"]

            # the re-read fails (new connections) or hangs (open ones): the overview says so, and the
            # pages keep the data read before
            deadline = time.monotonic() + 30
            while not _monitoring_warnings(http):
                assert time.monotonic() < deadline, "no warning about the monitoring data that cannot be read"
                time.sleep(0.5)
            view = http.get("/ui/api/feature-views/user_stats").json()
            assert view["drift"], view
            assert view["statistics"], view
            assert view["freshness"] is not None

            freezer.thaw()
            deadline = time.monotonic() + 60
            while http.get("/secured/api/lineage", headers=as_reader).status_code != 200:
                assert time.monotonic() < deadline, "the key store did not recover after the registry came back"
                time.sleep(0.2)
            while http.get("/fresh/feature-views/user_stats").status_code != 200:
                assert time.monotonic() < deadline, "the UI did not recover after the registry came back"
                time.sleep(0.2)
            while _monitoring_warnings(http):
                assert time.monotonic() < deadline, "the warning stayed after the registry came back"
                time.sleep(0.2)
    finally:
        freezer.close()
        store.close()
