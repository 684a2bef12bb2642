"""Reaching the real servers the tests use: skipped off CI when unreachable, failing in CI."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

POSTGRES_HOST = os.environ.get("POTLUCK_TEST_PG_HOST", "127.0.0.1")
POSTGRES_PORT = int(os.environ.get("POTLUCK_TEST_PG_PORT", "5432"))
POSTGRES_USER = os.environ.get("POTLUCK_TEST_PG_USER", "postgres")
REDIS_HOST = os.environ.get("POTLUCK_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("POTLUCK_TEST_REDIS_PORT", "6379"))


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_server(name: str, host: str, port: int) -> None:
    """Fail in CI, skip elsewhere, when a server a test needs is not running."""
    if reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: real backends are required)")
    pytest.skip(f"{message}; start it to run this test")


def start_redis_server(port: int, workdir: Any, *extra: str, config: Any = None) -> subprocess.Popen[bytes]:
    """A private redis-server on loopback `port` (nothing kept on disk), once it accepts connections.

    `config`: a config file read first (a sentinel's, which it rewrites). Its binary missing fails
    in CI and skips elsewhere, like an unreachable server.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not on PATH; it is needed to start a private Redis"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    proc = subprocess.Popen(
        [binary, *([str(config)] if config is not None else []), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if reachable("127.0.0.1", port):
            return proc
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"redis-server did not start on port {port}")


def wait_healthy(http: httpx.Client, proc: subprocess.Popen[Any], timeout: float = 60) -> None:
    """Wait until a `potluck serve` process answers GET /health with 200; fails with its output if it exits."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if http.get("/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            output = proc.stdout.read() if proc.stdout else ""
            pytest.fail(f"potluck serve exited with code {proc.returncode}: {output!r}")
        assert time.monotonic() < deadline, "potluck serve did not start"
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run `app` with uvicorn in a thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `potluck ARGS...` in process as the console script would; returns (exit code, stdout, stderr)."""
    from potluck.cli.main import main

    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


class HealthProbe:
    """Calls GET /health every 50 ms in a thread and keeps the slowest answer."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.slowest = 0.0
        self.failures: list[str] = []
        self.calls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    status = http.get("/health").status_code
                except httpx.HTTPError as err:
                    self.failures.append(repr(err))
                else:
                    if status != 200:
                        self.failures.append(f"status {status}")
                self.slowest = max(self.slowest, time.monotonic() - started)
                self.calls += 1
                self._stop.wait(0.05)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(35)

    def check(self) -> None:
        assert self.calls > 5
        assert not self.failures, self.failures
        assert self.slowest < 0.5, f"/health took {self.slowest:.2f} s"


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A private key and a self-signed certificate for `localhost` (a day long), as PEM files in `directory`."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_file, cert_file = directory / "key.pem", directory / "cert.pem"
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file
