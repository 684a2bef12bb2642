"""`potluck serve` as a user runs it: a subprocess with two uvicorn workers.

The real adapter (`potluck.server.store_backend`) is replaced by the in-memory backend through a
`sitecustomize` module on PYTHONPATH, which every worker process imports at start.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
from server_support import free_port

from tests_support import wait_healthy

HERE = Path(__file__).parent
SRC = HERE.parents[1] / "src"

STUB = """\
import sys, types
sys.path.insert(0, {tests!r})
from memory_backend import MemoryBackend

module = types.ModuleType("potluck.server.store_backend")

class StoreBackend(MemoryBackend):
    def __init__(self, store, *args):
        super().__init__()
        self.store = store

module.StoreBackend = StoreBackend
sys.modules["potluck.server.store_backend"] = module
"""


def test_serve_with_workers(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "feature_store.yaml").write_text(
        "project: serve_test\nregistry: data/registry.db\nauth:\n  type: no_auth\nflags:\n  alpha: true\n"
    )
    stub = tmp_path / "stub"
    stub.mkdir()
    (stub / "sitecustomize.py").write_text(STUB.format(tests=str(HERE)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(stub), str(SRC)])}
    port = free_port()
    created = subprocess.run(
        [sys.executable, "-m", "potluck.cli", "-c", str(repo), "auth", "create-key", "--role", "reader"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    key = created.stdout.strip()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "potluck.cli",
            "-c",
            str(repo),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "2",
            "--auth",
            "on",
            "--no-access-log",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=2) as probe:
            wait_healthy(probe, proc, 30)
        body = {"features": ["driver_stats:trips"], "entities": {"driver_id": [1001]}}
        with httpx.Client(base_url=url) as client:
            assert client.post("/get-online-features", json=body).status_code == 401
            for _ in range(4):
                r = client.post("/get-online-features", json=body, headers={"X-API-Key": key})
                assert r.status_code == 200, r.text
                assert r.json()["results"][1]["values"] == [10]
    finally:
        proc.terminate()
        try:
            output, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
    assert "Serving project 'serve_test'" in output
    assert "2 worker(s), authentication on" in output
    assert "Traceback" not in output
    # Feast's no_auth does not open a server that authenticates; a key without effect is shown once
    assert "Note: auth.type no_auth in feature_store.yaml, but auth is set to on" in output
    assert output.count("key 'flags' has no effect") == 1, output
