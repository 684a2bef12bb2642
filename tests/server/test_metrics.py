"""/metrics: Prometheus text from the app's own registry."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from memory_backend import MemoryBackend
from prometheus_client.parser import text_string_to_metric_families
from server_support import Running, serve

from potluck.server import ServerSettings, create_app
from potluck.server.auth import ApiKeyStore, ServerTables


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_contents(running: Running) -> None:
    body = {
        "features": ["driver_stats:conv_rate", "merchant:rating"],
        "entities": {"driver_id": [1001, 5], "merchant_id": ["m1", "zz"]},
    }
    before = _samples(running.get("/metrics", running.keys.metrics).text)
    for _ in range(3):
        assert running.post("/get-online-features", body, running.keys.reader).status_code == 200
    running.post("/get-online-features", {"features": ["x:y"], "entities": {}}, running.keys.reader)
    r = running.get("/metrics", running.keys.metrics)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    after = _samples(r.text)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    ok = {"endpoint": "/get-online-features", "method": "POST", "status": "200"}
    assert delta("potluck_http_requests_total", **ok) == 3
    assert delta("potluck_http_requests_total", **{**ok, "status": "404"}) == 1
    assert delta("potluck_http_request_duration_seconds_count", **ok) == 3
    assert delta("potluck_online_read_duration_seconds_count") == 3
    assert delta("potluck_online_request_entities_sum") == 6
    assert delta("potluck_online_feature_statuses_total", view="driver_stats", status="PRESENT") == 3
    assert delta("potluck_online_feature_statuses_total", view="driver_stats", status="NOT_FOUND") == 3
    assert delta("potluck_online_feature_statuses_total", view="merchant", status="NOT_FOUND") == 3
    assert after[("potluck_feature_freshness_seconds", (("view", "driver_stats"),))] == 42.0
    assert ("potluck_feature_freshness_seconds", (("view", "merchant"),)) not in after


def test_unknown_paths_share_one_label(running: Running) -> None:
    for i in range(3):
        running.get(f"/random-{i}")
    text = running.get("/metrics", running.keys.admin).text
    assert 'endpoint="other"' in text
    assert "random-" not in text


def test_each_app_has_its_own_registry() -> None:
    a = create_app(MemoryBackend(), ServerSettings(auth="off"))
    b = create_app(MemoryBackend(), ServerSettings(auth="off"))
    with serve(a) as url_a, serve(b) as url_b, httpx.Client() as client:
        client.get(url_a + "/health")
        client.get(url_a + "/health")
        text_b = client.get(url_b + "/metrics").text
        assert not re.search(r'potluck_http_requests_total\{endpoint="/health"', text_b)
        text_a = client.get(url_a + "/metrics").text
        assert 'potluck_http_requests_total{endpoint="/health",method="GET",status="200"} 2.0' in text_a


def test_public_metrics_setting(tmp_path: Path) -> None:
    tables = ServerTables(f"sqlite:///{tmp_path / 'r.db'}", "p")
    app = create_app(MemoryBackend(), ServerSettings(auth="on", public_metrics=True), keys=ApiKeyStore(tables))
    with serve(app) as url, httpx.Client() as client:
        assert client.get(url + "/metrics").status_code == 200
        assert client.post(url + "/push", json={}).status_code == 401
        schema = client.get(url + "/openapi.json").json()
        assert schema["paths"]["/metrics"]["get"]["security"] == []
    tables.close()
