"""Authentication and authorization over HTTP: every route x every kind of credential."""

from __future__ import annotations

from typing import Any

import pytest
from server_support import Running, serve

from potluck.server import ServerSettings, create_app
from potluck.server.settings import is_loopback

READ = {"features": ["driver_stats:trips"], "entities": {"driver_id": [1001]}}
PUSH = {"push_source_name": "driver_push", "df": {"driver_id": [3001], "trips": [5]}}
MAT = {"start_ts": "2024-01-01T00:00:00Z", "end_ts": "2024-01-02T00:00:00Z"}
INC = {"end_ts": "2024-01-02T00:00:00Z"}

ROUTES: dict[str, tuple[str, Any, str]] = {
    "online": ("/get-online-features", READ, "reader"),
    "push": ("/push", PUSH, "writer"),
    "materialize": ("/materialize", MAT, "admin"),
    "incremental": ("/materialize-incremental", INC, "admin"),
    "metrics": ("/metrics", None, "metrics"),
}
ALLOWED = {
    "reader": {"online"},
    "writer": {"online", "push"},
    "admin": set(ROUTES),
    "metrics": {"metrics"},
}


def _call(running: Running, route: str, key: str | None, header: str = "bearer") -> Any:
    path, body, _ = ROUTES[route]
    headers = {}
    if key is not None:
        headers = {"Authorization": f"Bearer {key}"} if header == "bearer" else {"X-API-Key": key}
    if body is None:
        return running.client.get(running.url + path, headers=headers)
    return running.client.post(running.url + path, json=body, headers=headers)


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("credential", ["none", "garbage", "wrong_secret", "revoked", "basic"])
def test_bad_credentials_are_401(running: Running, route: str, credential: str) -> None:
    real = running.keys.admin
    key = {
        "none": None,
        "garbage": "not-a-key",
        "wrong_secret": real[: real.rindex("_") + 1] + "A" * 43,
        "revoked": running.keys.revoked,
        "basic": None,
    }[credential]
    if credential == "basic":
        path, body, _ = ROUTES[route]
        r = running.client.request(
            "GET" if body is None else "POST", running.url + path, json=body, headers={"Authorization": "Basic eDp5"}
        )
    else:
        r = _call(running, route, key)
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"].startswith('Bearer realm="potluck"')
    assert r.json()["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("role", list(ALLOWED))
def test_role_matrix(running: Running, route: str, role: str) -> None:
    key = getattr(running.keys, role)
    r = _call(running, route, key, header="x-api-key" if role == "writer" else "bearer")
    if route in ALLOWED[role]:
        assert r.status_code == 200, r.text
    else:
        assert r.status_code == 403, r.text
        needed = ROUTES[route][2]
        method = "GET" if ROUTES[route][1] is None else "POST"
        assert r.json()["error"]["message"] == f"role '{needed}' required for {method} {ROUTES[route][0]}"


def test_auth_comes_before_body_validation(running: Running) -> None:
    r = running.client.post(running.url + "/get-online-features", content=b"{nope")
    assert r.status_code == 401
    r = running.post("/materialize", {"bad": 1}, running.keys.reader)
    assert r.status_code == 403


def test_view_scope(running: Running) -> None:
    key = running.keys.scoped_view  # reader, feature_view:merchant
    ok = {"features": ["merchant:rating"], "entities": {"merchant_id": ["m1"]}}
    assert running.post("/get-online-features", ok, key).status_code == 200
    r = running.post("/get-online-features", READ, key)
    assert r.status_code == 403
    assert r.json()["error"]["message"] == "key not allowed to read feature view 'driver_stats'"
    mixed = {
        "features": ["merchant:rating", "driver_stats:trips"],
        "entities": {"merchant_id": ["m1"], "driver_id": [1]},
    }
    assert running.post("/get-online-features", mixed, key).status_code == 403
    svc = {"feature_service": "driver_service", "entities": {"driver_id": [1001]}}
    r = running.post("/get-online-features", svc, key)
    assert r.status_code == 403
    assert r.json()["error"]["message"] == "key not allowed to read feature service 'driver_service'"


def test_service_scope(running: Running) -> None:
    key = running.keys.scoped_service  # reader, feature_service:driver_service
    svc = {"feature_service": "driver_service", "entities": {"driver_id": [1001]}}
    assert running.post("/get-online-features", svc, key).status_code == 200
    r = running.post("/get-online-features", READ, key)
    assert r.status_code == 403
    assert "feature view 'driver_stats'" in r.json()["error"]["message"]


def test_tag_scope(running: Running) -> None:
    key = running.keys.scoped_tag  # writer, tag:team=drivers
    assert running.post("/get-online-features", READ, key).status_code == 200
    assert running.post("/push", PUSH, key).status_code == 200
    svc = {"feature_service": "driver_service", "entities": {"driver_id": [1001]}}
    assert running.post("/get-online-features", svc, key).status_code == 200
    other = {"features": ["merchant:rating"], "entities": {"merchant_id": ["m1"]}}
    r = running.post("/get-online-features", other, key)
    assert r.status_code == 403
    assert r.json()["error"]["message"] == "key not allowed to read feature view 'merchant'"


def test_push_to_source_outside_scope_is_denied(running: Running) -> None:
    key = running.keys.scoped_view  # a reader: role check comes first
    assert running.post("/push", PUSH, key).status_code == 403
    _, writer = running.store.create("writer", "test", scopes=["feature_view:merchant"])
    r = running.post("/push", PUSH, writer)
    assert r.status_code == 403
    assert r.json()["error"]["message"] == "key not allowed to write feature view 'driver_stats'"


def test_scoped_admin_materialize_and_audit(running: Running) -> None:
    info, admin = running.store.create("admin", "test", name="ops", scopes=["feature_view:merchant"])
    body = {**MAT, "feature_views": ["merchant"]}
    assert running.post("/materialize", body, admin).status_code == 200
    r = running.post("/materialize", MAT, admin)  # all views, driver_stats out of scope
    assert r.status_code == 403
    assert r.json()["error"]["message"] == "key not allowed to materialize feature view 'driver_stats'"
    assert running.post("/materialize", MAT, running.keys.writer).status_code == 403
    records = running.audit.records(10)
    mine = [(a.action, a.resource, a.outcome) for a in records if a.actor == f"key:{info.id} (ops)"]
    assert mine[:2] == [("materialize", "*", "denied: forbidden"), ("materialize", "merchant", "ok")]
    denied = next(a for a in records if a.actor.endswith("(writer)"))
    assert denied.outcome.startswith("denied: role 'admin' required")


def test_revocation_takes_effect(running: Running) -> None:
    info, key = running.store.create("reader", "test")
    assert running.post("/get-online-features", READ, key).status_code == 200
    running.store.revoke(info.id, "test")
    assert running.post("/get-online-features", READ, key).status_code == 401
    assert [a.outcome for a in running.audit.records(1)] == ["ok"]
    assert running.audit.records(1)[0].action == "revoke_key"


def test_open_routes(running: Running) -> None:
    for path in ("/health", "/ready", "/openapi.json"):
        assert running.client.get(running.url + path).status_code == 200


def test_auth_auto_mode() -> None:
    assert not ServerSettings(host="127.0.0.1").auth_enabled
    assert not ServerSettings(host="::1").auth_enabled
    assert not ServerSettings(host="localhost").auth_enabled
    assert ServerSettings(host="0.0.0.0").auth_enabled
    assert ServerSettings(host="10.1.2.3").auth_enabled
    assert ServerSettings(host="127.0.0.1", auth="on").auth_enabled
    assert not ServerSettings(host="0.0.0.0", auth="off").auth_enabled
    assert is_loopback("127.8.0.1")


def test_auth_on_without_credentials_source_fails_closed() -> None:
    from memory_backend import MemoryBackend

    from potluck.definitions.errors import ConfigError

    with pytest.raises(ConfigError, match="authentication is on"):
        create_app(MemoryBackend(), ServerSettings(host="0.0.0.0"))


def test_auth_off_allows_everything() -> None:
    import httpx
    from memory_backend import MemoryBackend

    app = create_app(MemoryBackend(), ServerSettings(auth="off"))
    with serve(app) as url, httpx.Client() as client:
        assert client.post(url + "/materialize-incremental", json=INC).status_code == 200
        assert client.get(url + "/metrics").status_code == 200
        schema = client.get(url + "/openapi.json").json()
        assert "securitySchemes" not in schema["components"]
        assert "401" not in schema["paths"]["/push"]["post"]["responses"]
