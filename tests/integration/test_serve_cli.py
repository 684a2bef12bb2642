"""`potluck serve` as a user runs it, on a real repository: two workers, TLS and an API key."""

from __future__ import annotations

import ssl
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
from integration_support import END, build_repo

from potluck import FeatureStore
from tests_support import free_port, self_signed, wait_healthy


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "potluck.cli", *args], capture_output=True, text=True, check=True)


def test_serve_tls_workers_and_key(tmp_path: Path) -> None:
    root = build_repo(tmp_path / "repo", "sqlite")
    store = FeatureStore(repo_path=root)
    store.apply()
    store.materialize(END - timedelta(days=60), END, ["driver_stats"])
    key = cli("-c", str(root), "auth", "create-key", "--role", "reader", "--name", "model").stdout.strip()
    key_file, cert_file = self_signed(tmp_path)
    port = free_port()
    args = ["serve", "--port", str(port), "--workers", "2", "--auth", "on", "--no-access-log"]
    args += ["--tls-key-file", str(key_file), "--tls-cert-file", str(cert_file)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "potluck.cli", "-c", str(root), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"https://localhost:{port}"
        trust = ssl.create_default_context(cafile=str(cert_file))
        with httpx.Client(base_url=url, verify=trust, timeout=10) as http:
            wait_healthy(http, proc)
            body = {"features": ["driver_stats:trips"], "entities": {"driver_id": [1, 2]}}
            assert http.post("/get-online-features", json=body).status_code == 401
            reply = http.post("/get-online-features", json=body, headers={"X-API-Key": key})
            assert reply.status_code == 200
            expected = store.get_online_features(["driver_stats:trips"], {"driver_id": [1, 2]}).to_dict()["trips"]
            assert reply.json()["results"][1]["values"] == expected
            assert http.get("/ready").status_code == 200
        try:
            httpx.get(f"http://localhost:{port}/health", timeout=3)
            plain_ok = True
        except httpx.TransportError:
            plain_ok = False
        assert not plain_ok  # TLS only
    finally:
        proc.terminate()
        proc.wait(30)
        store.close()
