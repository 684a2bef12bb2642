"""What a browser page, an oversize upload or a slow client can do to the server, over real sockets.

`potluck serve` runs as a subprocess (its uvicorn protocol and settings are under test); the other
tests run uvicorn in a thread with the same protocol class.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from memory_backend import MemoryBackend
from server_support import free_port

from potluck.server import ServerSettings, create_app
from potluck.server.protocol import limited_protocol
from tests_support import wait_healthy

SRC = Path(__file__).parents[2] / "src"
READ = {"features": ["driver_stats:trips"], "entities": {"driver_id": [1001]}}
PUSH = {"push_source_name": "driver_push", "df": {"driver_id": [1]}}


@contextmanager
def serve_limited(app: Any, settings: ServerSettings) -> Iterator[tuple[str, int]]:
    """uvicorn in a thread with the head limits of `settings`; yields (host, port)."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        http=limited_protocol(settings),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "uvicorn did not start"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield "127.0.0.1", port
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def cli_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`potluck serve` on an empty repository, with short head timeouts from feature_store.yaml."""
    repo = tmp_path_factory.mktemp("hardening") / "repo"
    repo.mkdir()
    (repo / "feature_store.yaml").write_text(
        "project: hardening\nregistry: data/registry.db\n"
        "feature_server:\n  header_timeout_seconds: 1\n  max_header_bytes: 8192\n  max_headers: 50\n"
    )
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "potluck.cli", "-c", str(repo), "serve", "--port", str(port), "--no-access-log"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=2) as probe:
            wait_healthy(probe, proc, 60)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def _status_line(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0]


# -- item: oversize bodies ------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/push", "/get-online-features"])
def test_urllib_upload_of_6_mb_reads_the_413(cli_server: str, path: str) -> None:
    request = urllib.request.Request(
        cli_server + path, data=b"x" * 6_000_000, headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 413
    assert json.loads(caught.value.read())["error"]["code"] == "payload_too_large"


# -- item: request heads ----------------------------------------------------------------------------
def test_slow_headers_are_cut_off(cli_server: str) -> None:
    with socket.create_connection(_address(cli_server), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        closed = False
        for _ in range(100):
            try:
                sock.sendall(b"X-Slow: 1\r\n")
            except OSError:
                closed = True
                break
            time.sleep(0.1)
            sock.setblocking(False)
            try:
                data = sock.recv(4096)
            except BlockingIOError:
                data = None
            finally:
                sock.setblocking(True)
            if data is not None:
                assert data == b"" or data.startswith(b"HTTP/1.1 408"), data[:80]
                closed = True
                break
        assert closed, "the server kept a connection that never finished its headers"
        assert time.monotonic() - started < 6


def test_idle_connection_without_a_request_is_closed(cli_server: str) -> None:
    with socket.create_connection(_address(cli_server), timeout=10) as sock:
        started = time.monotonic()
        data = sock.recv(4096)  # waits until the server answers 408 and closes
        assert data == b"" or data.startswith(b"HTTP/1.1 408")
        assert time.monotonic() - started < 6


def test_huge_headers_are_refused(cli_server: str) -> None:
    with socket.create_connection(_address(cli_server), timeout=10) as sock:
        with suppress(OSError):  # closed while sending: refused
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n")
        assert _status_line(sock).startswith(b"HTTP/1.1 431")


def test_too_many_headers_are_refused(cli_server: str) -> None:
    with socket.create_connection(_address(cli_server), timeout=10) as sock:
        headers = b"".join(b"X-H%d: a\r\n" % i for i in range(5000))
        with suppress(OSError):
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        line = _status_line(sock)
        assert line.startswith(b"HTTP/1.1 431"), line
    assert httpx.get(cli_server + "/health", timeout=5).status_code == 200


def test_slow_body_gets_408() -> None:
    settings = ServerSettings(auth="off", body_timeout_seconds=1)
    with serve_limited(create_app(MemoryBackend(), settings), settings) as address:
        for path in ("/get-online-features", "/push"):
            with socket.create_connection(address, timeout=10) as sock:
                started = time.monotonic()
                sock.sendall(
                    f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    "Content-Length: 1000\r\n\r\n{".encode()
                )
                line = _status_line(sock)
                assert line.startswith(b"HTTP/1.1 408"), line
                assert time.monotonic() - started < 6


# -- item: cross-site requests ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def loopback() -> Iterator[tuple[str, MemoryBackend]]:
    """The developer default: loopback, authentication off; one origin allowed."""
    backend = MemoryBackend()
    settings = ServerSettings(allowed_origins=("https://ui.example.test",))
    assert not settings.auth_enabled
    with serve_limited(create_app(backend, settings), settings) as (host, port):
        yield f"http://{host}:{port}", backend


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "text/json"])
@pytest.mark.parametrize("path", ["/get-online-features", "/push"])
def test_post_bodies_must_be_json(loopback: tuple[str, MemoryBackend], path: str, content_type: str | None) -> None:
    url, backend = loopback
    body = READ if path == "/get-online-features" else PUSH
    headers = {"Content-Type": content_type} if content_type else {}
    r = httpx.post(url + path, content=json.dumps(body).encode(), headers=headers, timeout=10)
    assert r.status_code == 415, r.text
    error = r.json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert "application/json" in error["message"]
    assert ("driver_stats", 1) not in backend.rows


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"])
def test_json_content_types_are_accepted(loopback: tuple[str, MemoryBackend], content_type: str) -> None:
    url, _ = loopback
    r = httpx.post(
        url + "/get-online-features", content=json.dumps(READ).encode(), headers={"Content-Type": content_type}
    )
    assert r.status_code == 200, r.text


def test_foreign_origin_is_refused(loopback: tuple[str, MemoryBackend]) -> None:
    url, backend = loopback
    for path, body in (("/push", PUSH), ("/get-online-features", READ)):
        r = httpx.post(url + path, json=body, headers={"Origin": "https://evil.example"}, timeout=10)
        assert r.status_code == 403, r.text
        error = r.json()["error"]
        assert error["code"] == "origin_not_allowed"
        assert "https://evil.example" in error["message"]
        assert "feature_server.allowed_origins" in error["message"]
    r = httpx.post(
        url + "/push", content=b"{}", headers={"Origin": "https://evil.example", "Content-Type": "text/plain"}
    )
    assert r.status_code == 403
    r = httpx.get(url + "/ready", headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    assert ("driver_stats", 1) not in backend.rows


def test_allowed_origin_passes_without_cors_headers(loopback: tuple[str, MemoryBackend]) -> None:
    url, _ = loopback
    r = httpx.post(url + "/get-online-features", json=READ, headers={"Origin": "https://ui.example.test"})
    assert r.status_code == 200, r.text
    assert not [h for h in r.headers if h.lower().startswith("access-control-")]


def test_origins_setting_is_checked() -> None:
    with pytest.raises(ValueError, match="not an origin"):
        ServerSettings(allowed_origins=("https://ui.example.test/app",))
