"""`potluck serve --ui`: the web UI mounted at /ui of the feature server process, behind the
server's authentication, while the server's own routes keep theirs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
from ui_demo import build_demo

from potluck.server.auth import ApiKeyStore, AuditLog, ServerTables
from tests_support import free_port, wait_healthy


def test_serve_with_ui_mounts_it_under_auth(tmp_path: Path) -> None:
    store = build_demo(tmp_path / "demo")
    tables = ServerTables(store.config.registry_url, store.project, store.config.registry.timeouts())
    _, reader = ApiKeyStore(tables, AuditLog(tables), cache_seconds=0).create("reader", "test", name="ui-reader")
    tables.close()
    store.close()
    port = free_port()
    potluck = str(Path(sys.executable).with_name("potluck"))
    proc = subprocess.Popen(
        [potluck, "-c", str(tmp_path / "demo"), "serve", "--ui", "--auth", "on", "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, follow_redirects=False) as http:
            wait_healthy(http, proc)
            page = http.get("/ui/feature-views/user_stats")
            assert page.status_code == 303
            assert page.headers["location"] == "/ui/login?next=/ui/feature-views/user_stats"
            assert http.get("/ui/api/lineage").status_code == 401
            wrong = http.post("/ui/login", data={"credential": "pk_wrong", "next": "/ui/"})
            assert wrong.status_code == 401
            ok = http.post("/ui/login", data={"credential": reader, "next": "/ui/feature-views"})
            assert ok.status_code == 303
            assert "path=/ui" in ok.headers["set-cookie"].lower()
            listing = http.get("/ui/feature-views")
            assert listing.status_code == 200
            assert 'data-name="user_stats"' in listing.text
            lineage = http.get("/ui/api/lineage", headers={"Authorization": f"Bearer {reader}"}).json()
            assert "feature_view:user_stats" in {n["id"] for n in lineage["nodes"]}
            # the feature server's routes are still its own: a reader reads, nobody unauthenticated does
            body = {"features": ["user_stats:txn_count_7d"], "entities": {"user_id": [1001]}}
            http.cookies.clear()
            assert http.post("/get-online-features", json=body).status_code == 401
            served = http.post("/get-online-features", json=body, headers={"Authorization": f"Bearer {reader}"})
            assert served.status_code == 200, served.text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
