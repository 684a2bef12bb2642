"""`potluck auth ...` commands, and keys they create working against a server."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from memory_backend import MemoryBackend
from server_support import serve

from potluck.server import ServerSettings, create_app
from potluck.server.auth import ApiKeyStore, AuditLog, ServerTables
from potluck.server.factory import ENV_SETTINGS, settings_from_env
from tests_support import run_cli as run


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "feature_store.yaml").write_text("project: cli_test\nregistry: data/registry.db\n")
    return tmp_path


def test_key_lifecycle(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        "-c",
        str(repo),
        "auth",
        "create-key",
        "--role",
        "reader",
        "--name",
        "ci",
        "--scope",
        "feature_view:merchant",
        "--scope",
        "tag:team=drivers",
    )
    assert code == 0, err
    key = out.strip()
    assert key.startswith("pk_")
    assert "not shown again" in err
    code, out, _ = run(capsys, "-c", str(repo), "auth", "list-keys", "-o", "json")
    keys = json.loads(out)
    assert [(k["name"], k["role"], k["scopes"]) for k in keys] == [
        ("ci", "reader", ["feature_view:merchant", "tag:team=drivers"])
    ]
    assert key not in out
    key_id = keys[0]["id"]
    assert key_id in key

    tables = ServerTables(f"sqlite:///{repo / 'data' / 'registry.db'}", "cli_test")
    store = ApiKeyStore(tables, cache_seconds=0)
    app = create_app(MemoryBackend(), ServerSettings(auth="on"), keys=store)
    body = {"features": ["merchant:rating"], "entities": {"merchant_id": ["m1"]}}
    with serve(app) as url:
        assert httpx.post(url + "/get-online-features", json=body, headers={"X-API-Key": key}).status_code == 200
        code, out, _ = run(capsys, "-c", str(repo), "auth", "revoke-key", key_id)
        assert code == 0
        assert httpx.post(url + "/get-online-features", json=body, headers={"X-API-Key": key}).status_code == 401
    tables.close()

    code, out, _ = run(capsys, "-c", str(repo), "auth", "list-keys", "-o", "json")
    assert json.loads(out) == []
    code, out, _ = run(capsys, "-c", str(repo), "auth", "list-keys", "--all")
    assert key_id in out
    code, _, err = run(capsys, "-c", str(repo), "auth", "revoke-key", key_id)
    assert code == 1
    assert "no active API key" in err
    code, out, _ = run(capsys, "-c", str(repo), "auth", "audit-log", "-o", "json")
    log = json.loads(out)
    assert [(r["action"], r["outcome"].split(" ")[0]) for r in log] == [
        ("revoke_key", "failed:"),
        ("revoke_key", "ok"),
        ("create_key", "ok"),
    ]
    assert all(r["actor"].startswith("cli:") for r in log)
    code, out, _ = run(capsys, "-c", str(repo), "auth", "audit-log")
    assert "create_key" in out


def test_bad_scope_is_rejected(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "-c", str(repo), "auth", "create-key", "--role", "reader", "--scope", "view:x")
    assert code != 0
    assert "feature_service:NAME" in err


def test_serve_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "serve", "--help")
    assert code == 0
    for flag in ("--host", "--port", "--workers", "--tls-key-file", "--tls-cert-file", "--no-access-log"):
        assert flag in out


def test_settings_travel_through_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = ServerSettings(host="0.0.0.0", port=7000, max_entity_rows=5)
    monkeypatch.setenv(ENV_SETTINGS, settings.model_dump_json())
    assert settings_from_env() == settings


def test_audit_log_ordering(tmp_path: Path) -> None:
    tables = ServerTables(f"sqlite:///{tmp_path / 'r.db'}", "p")
    audit = AuditLog(tables)
    for i in range(3):
        audit.record("me", "materialize", f"v{i}", "ok")
    assert [r.resource for r in audit.records(2)] == ["v2", "v1"]
    tables.close()
