"""The HTTP feature server over real online stores: shapes, statuses, push, auth, and outages."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from integration_support import DRIVERS, END, build_repo, build_repo_on_port

from potluck import FeatureStore
from potluck.server import ServerSettings, create_app
from potluck.server.auth import ApiKeyStore, AuditLog, ServerTables
from potluck.server.store_backend import StoreBackend
from tests_support import POSTGRES_HOST, POSTGRES_PORT, free_port, require_server, serve, start_redis_server

FEATURES = ["driver_stats:conv_rate", "driver_stats:trips", "driver_live:lat"]


@contextmanager
def served(store: FeatureStore, **settings: Any) -> Iterator[str]:
    tables = ServerTables(store.config.registry_url, store.project)
    audit = AuditLog(tables)
    opts = ServerSettings(**settings)
    keys = ApiKeyStore(tables, audit, cache_seconds=0) if opts.auth_enabled else None
    app = create_app(StoreBackend(store), opts, keys=keys, audit=audit)
    try:
        with serve(app) as url:
            yield url
    finally:
        tables.close()


def test_shapes_statuses_and_push(repo_factory: Callable[[], Path]) -> None:
    store = FeatureStore(repo_path=repo_factory())
    store.apply()
    store.materialize(END - timedelta(days=60), END)
    source = pd.read_parquet(store.repo_path / "data/driver_stats.parquet")
    known = int(source["driver_id"].iloc[0])
    with served(store, auth="off") as url, httpx.Client(base_url=url, timeout=10) as http:
        body = {"features": FEATURES, "entities": {"driver_id": [known, DRIVERS + 1, known]}}
        reply = http.post("/get-online-features", json=body)
        assert reply.status_code == 200
        data = reply.json()
        assert data["metadata"]["feature_names"] == ["driver_id", "conv_rate", "trips", "lat"]
        columns = dict(zip(data["metadata"]["feature_names"], data["results"], strict=True))
        assert columns["driver_id"]["values"] == [known, DRIVERS + 1, known]
        assert columns["trips"]["statuses"] == ["PRESENT", "NOT_FOUND", "PRESENT"]
        assert columns["lat"]["statuses"] == ["NOT_FOUND"] * 3
        expected = store.get_online_features(FEATURES, {"driver_id": [known]}).to_dict()
        assert columns["trips"]["values"][0] == expected["trips"][0]
        pushed_at = (pd.Timestamp(END) - pd.Timedelta(hours=1)).isoformat()
        push = {
            "push_source_name": "driver_live",
            "df": {"driver_id": [known], "event_timestamp": [pushed_at], "lat": [52.5], "status": ["on"]},
            "to": "online",
        }
        assert http.post("/push", json=push).status_code == 200
        columns = dict(
            zip(
                ["driver_id", "lat"],
                http.post(
                    "/get-online-features", json={"features": ["driver_live:lat"], "entities": {"driver_id": [known]}}
                ).json()["results"],
                strict=True,
            )
        )
        assert columns["lat"] == {
            "values": [52.5],
            "statuses": ["PRESENT"],
            "event_timestamps": [pd.Timestamp(pushed_at).strftime("%Y-%m-%dT%H:%M:%SZ")],
        }
        service = http.post(
            "/get-online-features", json={"feature_service": "driver_service", "entities": {"driver_id": [known]}}
        )
        assert service.status_code == 200
        assert "scores" in service.json()["metadata"]["feature_names"]
        bad = http.post(
            "/get-online-features", json={"features": ["driver_stats:trip"], "entities": {"driver_id": [1]}}
        )
        assert bad.status_code == 404
        assert "Did you mean 'trips'" in bad.json()["error"]["message"]
        missing_key = http.post("/get-online-features", json={"features": FEATURES, "entities": {"rider_id": [1]}})
        assert missing_key.status_code == 422
        wrong_type = http.post("/get-online-features", json={"features": FEATURES, "entities": {"driver_id": ["x"]}})
        assert wrong_type.status_code == 422
        bad_push = dict(push, df={**push["df"], "lat": ["north"]})
        assert http.post("/push", json=bad_push).status_code == 422
        assert http.get("/ready").status_code == 200
        metrics = http.get("/metrics")
        assert metrics.status_code == 200
        # Served values per view: the first read 2 driver_stats features x (2 found + 1 not) and
        # 3 driver_live not found; the pushed row read: 1 driver_live found; the service read: all
        # 4 driver_stats features + driver_live:lat, found.
        text = metrics.text
        assert 'potluck_online_feature_statuses_total{status="PRESENT",view="driver_stats"} 8.0' in text
        assert 'potluck_online_feature_statuses_total{status="NOT_FOUND",view="driver_stats"} 2.0' in text
        assert 'potluck_online_feature_statuses_total{status="NOT_FOUND",view="driver_live"} 3.0' in text
        assert 'potluck_online_feature_statuses_total{status="PRESENT",view="driver_live"} 2.0' in text
        assert 'potluck_http_requests_total{endpoint="/get-online-features",method="POST",status="200"} 3.0' in text
        assert 'potluck_http_requests_total{endpoint="/get-online-features",method="POST",status="404"} 1.0' in text
        assert 'potluck_http_requests_total{endpoint="/get-online-features",method="POST",status="422"} 2.0' in text
    store.close()


def test_auth_roles_on_real_store(tmp_path: Path) -> None:
    store = FeatureStore(repo_path=build_repo(tmp_path, "sqlite"))
    store.apply()
    tables = ServerTables(store.config.registry_url, store.project)
    keys = ApiKeyStore(tables, AuditLog(tables), cache_seconds=0)
    reader = keys.create("reader", "test")[1]
    writer = keys.create("writer", "test")[1]
    admin = keys.create("admin", "test")[1]
    read = {"features": FEATURES, "entities": {"driver_id": [1]}}
    push = {
        "push_source_name": "driver_live",
        "df": {"driver_id": [1], "event_timestamp": [END.isoformat()], "lat": [1.0], "status": ["x"]},
    }
    window = {"start_ts": (END - timedelta(days=60)).isoformat(), "end_ts": END.isoformat()}
    with served(store, auth="on") as url, httpx.Client(base_url=url, timeout=30) as http:

        def call(path: str, body: dict[str, Any], key: str | None) -> int:
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            return http.post(path, json=body, headers=headers).status_code

        assert [call("/get-online-features", read, k) for k in (None, "nope", reader)] == [401, 401, 200]
        assert [call("/push", push, k) for k in (None, reader, writer)] == [401, 403, 200]
        assert [call("/materialize", window, k) for k in (None, writer, admin)] == [401, 403, 200]
    actions = [r.action for r in AuditLog(tables).records()]
    assert any("materialize" in a for a in actions)
    tables.close()
    store.teardown()
    store.close()


class TcpProxy:
    """A loopback TCP proxy to a real server, which a test can cut and restore (a network outage)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        if self._listener is not None:
            with suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            self._listener.close()
            self._listener = None
        with self._lock:
            for conn in self._conns:
                with suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._conns.clear()


def _outage_and_recovery(url: str, cut: Callable[[], None], restore: Callable[[], None]) -> None:
    body = {"features": ["driver_stats:trips"], "entities": {"driver_id": [1, 2]}}
    with httpx.Client(base_url=url, timeout=30) as http:
        assert http.post("/get-online-features", json=body).status_code == 200
        cut()
        down = [http.post("/get-online-features", json=body) for _ in range(3)]
        assert [r.status_code for r in down] == [503] * 3
        error = down[-1].json()["error"]
        assert error["retryable"] is True
        assert "Traceback" not in down[-1].text
        assert down[-1].headers.get("retry-after")
        assert http.get("/ready").status_code == 503
        restore()
        # The PostgreSQL pool retries with exponential backoff, so recovery takes up to about
        # the outage's length again; Redis reconnects on the next command.
        deadline = time.monotonic() + 90
        status = 0
        while time.monotonic() < deadline:
            status = http.post("/get-online-features", json=body).status_code
            if status == 200:
                break
            time.sleep(0.2)
        assert status == 200  # recovered without restarting the server
        assert http.get("/ready").status_code == 200


@pytest.mark.redis
def test_redis_outage_gives_503_then_recovers(tmp_path: Path) -> None:
    port = free_port()
    proc = start_redis_server(port, tmp_path)
    root = build_repo_on_port(tmp_path / "repo", port)
    store = FeatureStore(repo_path=root)
    store.apply()
    store.materialize(END - timedelta(days=60), END, ["driver_stats"])
    state = {"proc": proc}

    def cut() -> None:
        state["proc"].kill()
        state["proc"].wait(10)

    def restore() -> None:
        state["proc"] = start_redis_server(port, tmp_path)
        store.materialize(END - timedelta(days=60), END, ["driver_stats"])  # the restarted server is empty

    try:
        with served(store, auth="off") as url:
            _outage_and_recovery(url, cut, restore)
    finally:
        state["proc"].kill()
        state["proc"].wait(10)
        store.close()


@pytest.mark.postgres
def test_postgres_outage_gives_503_then_recovers(tmp_path: Path) -> None:
    require_server("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    proxy = TcpProxy((POSTGRES_HOST, POSTGRES_PORT))
    proxy.start()
    root = build_repo(tmp_path / "repo", "postgres")
    yaml = (root / "feature_store.yaml").read_text()
    (root / "feature_store.yaml").write_text(yaml.replace(f"port: {POSTGRES_PORT}", f"port: {proxy.port}"))
    store = FeatureStore(repo_path=root)
    store.apply()
    store.materialize(END - timedelta(days=60), END, ["driver_stats"])
    try:
        with served(store, auth="off") as url:
            _outage_and_recovery(url, proxy.cut, proxy.start)
    finally:
        proxy.cut()
        proxy.start()
        store.teardown()
        store.close()
        from integration_support import _drop_postgres_schema

        _drop_postgres_schema(root)
        proxy.cut()
