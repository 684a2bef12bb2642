"""Request and response shapes over real HTTP."""

from __future__ import annotations

import httpx
from memory_backend import MemoryBackend
from server_support import Running, serve

from potluck.server import ServerSettings, create_app


def test_online_features_feast_shape(running: Running) -> None:
    body = {"features": ["driver_stats:conv_rate", "driver_stats:trips"], "entities": {"driver_id": [1001, 9, 1002]}}
    r = running.post("/get-online-features", body, running.keys.reader)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    data = r.json()
    assert data["metadata"] == {"feature_names": ["driver_id", "conv_rate", "trips"]}
    keys, conv, trips = data["results"]
    assert keys == {
        "values": [1001, 9, 1002],
        "statuses": ["PRESENT"] * 3,
        "event_timestamps": ["1970-01-01T00:00:00Z"] * 3,
    }
    assert conv["values"] == [0.5, None, 0.7]
    assert conv["statuses"] == ["PRESENT", "NOT_FOUND", "PRESENT"]
    assert conv["event_timestamps"] == ["2024-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "2024-01-01T00:00:00Z"]
    assert trips["values"] == [10, None, 3]


def test_feature_service_and_full_names(running: Running) -> None:
    body = {"feature_service": "driver_service", "entities": {"driver_id": [1001]}, "full_feature_names": True}
    r = running.post("/get-online-features", body, running.keys.reader)
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["feature_names"] == ["driver_id", "driver_stats__conv_rate", "driver_stats__trips"]


def test_x_api_key_header(running: Running) -> None:
    body = {"features": ["merchant:rating"], "entities": {"merchant_id": ["m1"]}}
    r = running.post("/get-online-features", body, headers={"X-API-Key": running.keys.reader})
    assert r.status_code == 200, r.text
    assert r.json()["results"][1]["values"] == [4.5]


def test_push_then_read(running: Running) -> None:
    push = {
        "push_source_name": "driver_push",
        "df": {"driver_id": [2001], "conv_rate": [0.9], "trips": [1], "event_timestamp": ["2024-02-01T00:00:00Z"]},
        "to": "online",
        "allow_registry_cache": True,
    }
    r = running.post("/push", push, running.keys.writer)
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ok", "rows": 1}
    r = running.post(
        "/get-online-features",
        {"features": ["driver_stats:trips"], "entities": {"driver_id": [2001]}},
        running.keys.reader,
    )
    assert r.json()["results"][1]["values"] == [1]


def test_materialize_routes(running: Running) -> None:
    r = running.post(
        "/materialize",
        {"start_ts": "2024-01-01T00:00:00", "end_ts": "2024-01-02T00:00:00+02:00", "feature_views": ["merchant"]},
        running.keys.admin,
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ok", "feature_views": ["merchant"]}
    kind, start, end, views = running.backend.materialized[-1]
    assert (kind, start.isoformat(), end.isoformat(), views) == (
        "full",
        "2024-01-01T00:00:00+00:00",
        "2024-01-01T22:00:00+00:00",
        ["merchant"],
    )
    r = running.post("/materialize-incremental", {"end_ts": "2024-01-03T00:00:00Z"}, running.keys.admin)
    assert r.status_code == 200, r.text
    assert running.backend.materialized[-1][0] == "incremental"
    actions = [(a.action, a.outcome) for a in running.audit.records(5)]
    assert actions[:2] == [("materialize-incremental", "ok"), ("materialize", "ok")]


def test_health_and_ready_need_no_credentials(running: Running) -> None:
    assert running.get("/health").json() == {"status": "ok"}
    r = running.get("/ready")
    assert (r.status_code, r.json()) == (200, {"status": "ready"})


def test_the_starlette_app_alone_answers_online_reads_alike() -> None:
    """`create_app(...).app` (without the direct route in front) serves the same answer."""
    app = create_app(MemoryBackend(), ServerSettings(auth="off"))
    body = {"features": ["driver_stats:conv_rate"], "entities": {"driver_id": [1001, 9]}}
    with serve(app) as direct, serve(app.app) as routed:
        answers = [httpx.post(f"{url}/get-online-features", json=body, timeout=10) for url in (direct, routed)]
        json_type = {"content-type": "application/json"}
        bad = [
            httpx.post(f"{url}/get-online-features", content=b"{", headers=json_type, timeout=10)
            for url in (direct, routed)
        ]
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].json() == answers[1].json()
    assert [b.status_code for b in bad] == [400, 400]
    assert bad[0].json() == bad[1].json()
