"""Client mistakes get 4xx with the error body; server failures never leak details."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from server_support import Running

from potluck.definitions.errors import BackendUnavailableError

ONLINE = "/get-online-features"
GOOD = {"features": ["driver_stats:conv_rate"], "entities": {"driver_id": [1001]}}


def _error(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert "Traceback" not in r.text
    return dict(body["error"])


def test_malformed_json_is_400(running: Running) -> None:
    r = running.post(
        ONLINE, key=running.keys.reader, content=b'{"features": [', headers={"content-type": "application/json"}
    )
    _error(r, 400, "malformed_json")
    r = running.post(ONLINE, key=running.keys.reader, content=b"", headers={"content-type": "application/json"})
    _error(r, 400, "malformed_json")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"features": "driver_stats:conv_rate", "entities": {"driver_id": [1]}}, "features"),
        ({"features": [], "entities": {"driver_id": [1]}}, "features"),
        ({"features": ["driver_stats:conv_rate"], "entities": {"driver_id": [{"a": 1}]}}, "entities.driver_id.0"),
        ({"features": ["driver_stats:conv_rate"]}, "entities"),
        ({"features": ["driver_stats:conv_rate"], "entities": {}, "full_feature_names": "yes"}, "full_feature_names"),
        ({"features": ["driver_stats:conv_rate"], "entities": {}, "unknown": 1}, "unknown"),
    ],
)
def test_schema_errors_name_the_field(running: Running, body: dict[str, Any], field: str) -> None:
    err = _error(running.post(ONLINE, body, running.keys.reader), 422, "invalid_request")
    assert field in [d["field"] for d in err["details"]], err


def test_cross_field_rules_are_422(running: Running) -> None:
    neither = {"entities": {"driver_id": [1]}}
    err = _error(running.post(ONLINE, neither, running.keys.reader), 422, "invalid_request")
    assert "give 'features' or 'feature_service'" in err["details"][0]["message"]
    uneven = {"features": ["driver_stats:trips"], "entities": {"driver_id": [1, 2], "merchant_id": ["m1"]}}
    err = _error(running.post(ONLINE, uneven, running.keys.reader), 422, "invalid_request")
    assert "same length" in err["details"][0]["message"]


def test_a_feature_service_wins_over_features_as_in_feast(running: Running) -> None:
    both = {"features": ["driver_stats:trips"], "feature_service": "driver_service", "entities": {"driver_id": [1]}}
    r = running.post(ONLINE, both, running.keys.reader)
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["feature_names"] == ["driver_id", "conv_rate", "trips"]


def test_unknown_feature_is_404_and_missing_join_key_422(running: Running) -> None:
    err = _error(
        running.post(ONLINE, {"features": ["driver_stats:nope"], "entities": {"driver_id": [1]}}, running.keys.reader),
        404,
        "not_found",
    )
    assert "driver_stats:nope" in err["message"]
    _error(running.post(ONLINE, {"feature_service": "nope", "entities": {}}, running.keys.reader), 404, "not_found")
    err = _error(
        running.post(
            ONLINE, {"features": ["driver_stats:trips"], "entities": {"merchant_id": ["m1"]}}, running.keys.reader
        ),
        422,
        "invalid_request",
    )
    assert "driver_id" in err["message"]


def test_too_many_entity_rows_is_413(running: Running) -> None:
    body = {"features": ["driver_stats:trips"], "entities": {"driver_id": list(range(51))}}
    err = _error(running.post(ONLINE, body, running.keys.reader), 413, "too_many_entity_rows")
    assert err["details"] == {"limit": 50, "rows": 51}
    body = {"push_source_name": "driver_push", "df": {"driver_id": list(range(101))}}
    _error(running.post("/push", body, running.keys.writer), 413, "too_many_rows")


def test_oversized_body_is_413_with_content_length(running: Running) -> None:
    big = b'{"features": ["' + b"x" * (70 * 1024) + b'"], "entities": {}}'
    _error(running.post(ONLINE, key=running.keys.reader, content=big), 413, "payload_too_large")


def test_oversized_chunked_body_is_413(running: Running) -> None:
    def chunks() -> Any:
        yield b'{"features": ["'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"], "entities": {}}'

    r = running.post(ONLINE, key=running.keys.reader, content=chunks())
    assert "content-length" not in r.request.headers
    assert r.request.headers["transfer-encoding"] == "chunked"
    _error(r, 413, "payload_too_large")


def test_chunked_body_within_limit_is_served(running: Running) -> None:
    def chunks() -> Any:
        yield b'{"features": ["driver_stats:trips"],'
        yield b' "entities": {"driver_id": [1001]}}'

    r = running.post(ONLINE, key=running.keys.reader, content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text


def test_raw_oversized_chunked_request(running: Running) -> None:
    """Without any client library: a chunked body that never ends gets 413 once past the limit."""
    host, port = running.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /get-online-features HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: application/json\r\n\r\n"
        )
        chunk = b"a" * 8192
        try:
            for _ in range(20):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            pass  # the server may close the connection after answering
        response = sock.recv(65536)
    assert response.startswith(b"HTTP/1.1 413"), response[:100]


def test_backend_unavailable_is_fast_503_then_recovers(fresh: Running) -> None:
    fresh.backend.fail_with = BackendUnavailableError("redis at 10.0.0.1:6379 refused: secret-detail")
    r = fresh.post(ONLINE, GOOD, fresh.keys.reader)
    err = _error(r, 503, "unavailable")
    assert err["retryable"] is True
    assert r.headers["retry-after"] == "1"
    assert "secret-detail" not in r.text
    ready = fresh.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["error"]["code"] == "unavailable"
    assert fresh.get("/health").status_code == 200
    fresh.backend.fail_with = None
    assert fresh.post(ONLINE, GOOD, fresh.keys.reader).status_code == 200
    assert fresh.get("/ready").status_code == 200


@pytest.mark.parametrize("path", [ONLINE, "/push", "/materialize-incremental"])
def test_unexpected_error_is_generic_500(fresh: Running, path: str, caplog: pytest.LogCaptureFixture) -> None:
    fresh.backend.fail_with = RuntimeError("password=hunter2 in /srv/secret.py line 3")
    bodies: dict[str, Any] = {
        ONLINE: GOOD,
        "/push": {"push_source_name": "driver_push", "df": {"driver_id": [1]}},
        "/materialize-incremental": {"end_ts": "2024-01-01T00:00:00Z"},
    }
    r = fresh.post(path, bodies[path], fresh.keys.admin)
    err = _error(r, 500, "internal")
    assert err["message"] == "internal server error"
    assert "hunter2" not in r.text
    assert "secret.py" not in r.text
    assert "RuntimeError" not in r.text


def test_unknown_route_and_method(running: Running) -> None:
    _error(running.get("/nope"), 404, "not_found")
    r = running.client.put(running.url + "/push", json={})
    _error(r, 405, "method_not_allowed")
    assert "POST" in r.headers["allow"]


def test_materialize_start_after_end_is_422(running: Running) -> None:
    body = {"start_ts": "2024-02-01T00:00:00Z", "end_ts": "2024-01-01T00:00:00Z"}
    _error(running.post("/materialize", body, running.keys.admin), 422, "invalid_request")
    _error(
        running.post("/materialize", {"start_ts": "nope", "end_ts": "2024-01-01"}, running.keys.admin),
        422,
        "invalid_request",
    )
