"""The web UI over the demo repository: addresses, DOM hooks, the JSON API, escaping and auth."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from ui_demo import HOSTILE, LINEAGE_EDGES, LINEAGE_NODES, build_demo

from potluck.server.auth import ApiKeyStore, AuditLog, ServerTables
from potluck.server.settings import ServerSettings
from potluck.store import FeatureStore
from potluck.ui.app import CSP, create_ui_app

with warnings.catch_warnings():  # Starlette suggests httpx2; httpx works the same here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

PAGES = [
    "/",
    "/entities",
    "/data-sources",
    "/feature-views",
    "/feature-services",
    "/saved-datasets",
    "/entities/user",
    "/data-sources/user_stats_source",
    "/data-sources/amount_request",
    "/feature-views/user_stats",
    "/feature-views/merchant_stats",
    "/feature-views/amount_vs_average",
    "/feature-services/fraud_model_v1",
    "/lineage",
    "/search?q=txn",
    "/login",
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeatureStore]:
    store = build_demo(tmp_path_factory.mktemp("ui") / "demo")
    yield store
    store.close()


@pytest.fixture(scope="module")
def client(store: FeatureStore) -> TestClient:
    return TestClient(create_ui_app(store))


@pytest.mark.parametrize("path", PAGES)
def test_every_page_answers_with_the_search_box_and_csp(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == CSP
    assert "access-control-allow-origin" not in response.headers
    html = response.text
    assert re.search(r'<form class="search" action="/search"', html)
    assert '<input id="search" name="q" type="search"' in html
    assert 'class="skip-link" href="#main"' in html
    assert "<style" not in html
    assert " style=" not in html
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None  # no inline script


def test_list_pages_have_one_row_per_object(client: TestClient) -> None:
    html = client.get("/feature-views").text
    assert re.findall(r'<tr data-name="([^"]+)"', html) == ["amount_vs_average", "merchant_stats", "user_stats"]
    assert re.findall(r'<tr data-name="([^"]+)"', client.get("/entities").text) == ["merchant", "user"]


def test_lists_name_kinds_for_people_and_keep_the_raw_kind(client: TestClient) -> None:
    html = client.get("/feature-views").text
    assert '<td data-kind="on_demand_feature_view">On-demand view</td>' in html
    assert '<td data-kind="feature_view">Batch view</td>' in html
    assert ">on_demand_feature_view<" not in html
    search = client.get("/search?q=amount").text
    assert '<span class="muted kind" data-kind="on_demand_feature_view">On-demand view</span>' in search


def test_times_and_durations_are_shown_for_people(client: TestClient) -> None:
    html = client.get("/feature-views/merchant_stats").text
    assert "<dt>TTL</dt><dd>3 days</dd>" in html  # 259200 s
    applied = client.get("/api/feature-views/merchant_stats").json()["history"][0]["applied_at"]
    shown = re.search(rf'<time datetime="{re.escape(applied)}" title="[^"]+">([^<]+)</time>', html)
    assert shown is not None
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", shown.group(1))
    assert shown.group(1)[:10] == applied[:10]
    assert re.search(r">\d{4}-\d\d-\d\dT", html) is None  # no raw ISO time as text


def test_freshness_status_colour_follows_the_status(client: TestClient) -> None:
    status = client.get("/api/feature-views/user_stats").json()["freshness"]["status"]
    expected = {"ok": "good", "stale": "bad", "never": "bad"}.get(status, "neutral")
    html = client.get("/feature-views/user_stats").text
    assert f'<span class="status {expected}">{status}</span>' in html


def test_a_list_shows_what_a_new_apply_added(tmp_path: Path) -> None:
    from potluck.repo.template import scaffold

    repo = scaffold(tmp_path / "repo", project="listcache")
    store = FeatureStore(repo_path=repo)
    try:
        store.apply()
        client = TestClient(create_ui_app(store))
        before = re.findall(r'<tr data-name="([^"]+)"', client.get("/entities").text)
        assert before == re.findall(r'<tr data-name="([^"]+)"', client.get("/entities").text)  # cached: the same
        (repo / "more.py").write_text(
            'from potluck import Entity\n\nshop = Entity(name="shop", join_keys=["shop_id"])\n', encoding="utf-8"
        )
        store.apply()
        after = re.findall(r'<tr data-name="([^"]+)"', client.get("/entities").text)
        assert after == sorted([*before, "shop"])
    finally:
        store.close()


def test_view_page_shows_every_section(client: TestClient) -> None:
    html = client.get("/feature-views/user_stats").text
    assert '<h1 data-kind="feature_view">user_stats</h1>' in html
    for section in ("definition", "lineage", "history", "freshness", "statistics", "drift", "skew"):
        assert f'<section id="{section}"' in html
    assert 'data-id="feature_view:user_stats"' in html
    assert re.search(r'<svg [^>]*class="chart histogram"[^>]*data-feature="avg_amount_30d"', html)
    assert '<g data-series="current"' in html
    assert 'data-metric="psi"' in html
    assert "No skew report yet" in html
    assert "materialized until" in html.lower()


def test_history_shows_field_changes_and_author(client: TestClient, store: FeatureStore) -> None:
    data = client.get("/api/feature-views/merchant_stats").json()
    latest = data["history"][0]
    assert latest["action"] == "updated"
    assert {"path": "ttl_seconds", "old": 604800.0, "new": 259200.0} in latest["fields"]
    assert latest["author"] == store.registry_history(1)[0].author
    assert "<code>ttl_seconds</code>" in client.get("/feature-views/merchant_stats").text


def test_on_demand_view_shows_its_function_source(client: TestClient) -> None:
    html = client.get("/feature-views/amount_vs_average").text
    assert '<h1 data-kind="on_demand_feature_view">' in html
    assert "def amount_vs_average(inputs):" in html


def test_feature_service_has_a_snippet(client: TestClient) -> None:
    html = client.get("/feature-services/fraud_model_v1").text
    assert '<section id="snippet"' in html
    assert "store.get_feature_service(&#34;fraud_model_v1&#34;)" in html
    assert "get_historical_features" in html
    snippet = client.get("/api/feature-services/fraud_model_v1").json()["snippet"]
    compile(snippet["online"], "online", "exec")
    compile(snippet["historical"], "historical", "exec")
    assert '"user_id"' in snippet["online"]
    assert '"merchant_id"' in snippet["online"]


def test_lineage_api_is_exact(client: TestClient) -> None:
    graph = client.get("/api/lineage").json()
    assert {n["id"] for n in graph["nodes"]} == LINEAGE_NODES
    assert all(n["id"] == f"{n['kind']}:{n['name']}" for n in graph["nodes"])
    assert {(e["from"], e["to"]) for e in graph["edges"]} == LINEAGE_EDGES


def test_view_api_has_definition_freshness_statistics_and_drift(client: TestClient) -> None:
    data = client.get("/api/feature-views/user_stats").json()
    assert data["definition"]["ttl_seconds"] == 2 * 86400
    assert [f["name"] for f in data["definition"]["schema"]] == [
        "txn_count_7d",
        "avg_amount_30d",
        "country",
        "is_premium",
    ]
    assert data["freshness"]["materialized_until"] is not None
    assert {s["feature"] for s in data["statistics"]} == {"txn_count_7d", "avg_amount_30d", "country", "is_premium"}
    assert len(data["drift"]["avg_amount_30d"]) == 2  # two monitoring runs, oldest first
    first, second = data["drift"]["avg_amount_30d"]
    assert first["checked_at"] < second["checked_at"]


def test_overview_counts(client: TestClient) -> None:
    data = client.get("/api/overview").json()
    assert data["counts"] == {
        "entities": 2,
        "data-sources": 3,
        "feature-views": 3,
        "feature-services": 1,
        "saved-datasets": 0,
    }
    assert data["recently_changed"][0]["name"] == "merchant_stats"


def test_search_finds_a_feature(client: TestClient) -> None:
    results = client.get("/api/search", params={"q": "TXN_count"}).json()["results"]
    assert [(r["kind"], r["name"]) for r in results] == [
        ("feature_service", "fraud_model_v1"),
        ("feature_view", "user_stats"),
    ] or (results[0]["name"] in ("user_stats", "fraud_model_v1"))
    html = client.get("/search", params={"q": "txn_count"}).text
    assert re.search(r'<ul id="search-results">\s*<li><a href="/feature-views/user_stats">', html) or (
        'href="/feature-views/user_stats"' in html
    )


def test_unknown_names_are_404(client: TestClient) -> None:
    page = client.get("/feature-views/nope")
    assert page.status_code == 404
    assert "no feature view called" in page.text.lower()
    api = client.get("/api/feature-services/nope")
    assert api.status_code == 404
    assert api.json()["error"]["code"] == "not_found"
    assert client.get("/api/nothing-here").status_code == 404
    assert client.get("/nothing-here").status_code == 404


def test_hostile_text_is_escaped(client: TestClient) -> None:
    html = client.get("/feature-views/merchant_stats").text
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(" in html
    search = client.get("/search", params={"q": HOSTILE}).text
    assert HOSTILE not in search


def test_openapi_lists_the_api(client: TestClient) -> None:
    doc = client.get("/api/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    assert {"/api/lineage", "/api/feature-views/{name}", "/api/search", "/api/overview"} <= set(doc["paths"])


def test_root_path_prefixes_links(store: FeatureStore) -> None:
    client = TestClient(create_ui_app(store), root_path="/potluck")
    html = client.get("/potluck/feature-views").text
    assert 'action="/potluck/search"' in html
    assert 'href="/potluck/feature-views/user_stats"' in html


# -- auth -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def secured(store: FeatureStore) -> Iterator[tuple[TestClient, str, str]]:
    tables = ServerTables(store.config.registry_url, store.project, store.config.registry.timeouts())
    keys = ApiKeyStore(tables, AuditLog(tables), cache_seconds=0)
    _, reader = keys.create("reader", "test", name="ui-reader")
    _, metrics = keys.create("metrics", "test", name="ui-metrics")
    app = create_ui_app(store, ServerSettings(auth="on"), keys=keys)
    yield TestClient(app, follow_redirects=False), reader, metrics
    tables.close()


def test_without_credentials_pages_redirect_to_login_and_api_is_401(secured: tuple[TestClient, str, str]) -> None:
    client, _, _ = secured
    page = client.get("/feature-views/user_stats")
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/feature-views/user_stats"
    assert client.get("/api/lineage").status_code == 401
    assert client.get("/login").status_code == 200


def test_reader_key_works_and_a_wrong_key_fails(secured: tuple[TestClient, str, str]) -> None:
    client, reader, metrics = secured
    assert client.get("/api/lineage", headers={"Authorization": f"Bearer {reader}"}).status_code == 200
    assert client.get("/api/lineage", headers={"Authorization": "Bearer pk_wrong"}).status_code == 401
    assert client.get("/api/lineage", headers={"Authorization": f"Bearer {metrics}"}).status_code == 403


def test_cookie_login(secured: tuple[TestClient, str, str], store: FeatureStore) -> None:
    client, reader, _ = secured
    wrong = client.post("/login", data={"credential": "pk_wrong", "next": "/"})
    assert wrong.status_code == 401
    assert "invalid" in wrong.text
    ok = client.post("/login", data={"credential": reader, "next": "/feature-views"})
    assert ok.status_code == 303
    assert ok.headers["location"] == "/feature-views"
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    page = client.get("/feature-views")
    assert page.status_code == 200
    assert 'data-name="user_stats"' in page.text
    out = client.post("/logout")
    assert out.status_code == 303
    client.cookies.clear()
    assert client.get("/feature-views").status_code == 303


def test_login_does_not_redirect_off_site(secured: tuple[TestClient, str, str]) -> None:
    client, reader, _ = secured
    response = client.post("/login", data={"credential": reader, "next": "//evil.example/"})
    assert response.headers["location"] == "/"
    client.cookies.clear()


def test_ui_package_data_exists() -> None:
    import potluck.ui

    here = Path(potluck.ui.__file__).parent
    assert (here / "static" / "ui.css").is_file()
    assert (here / "templates" / "base.html").is_file()


def test_a_monitor_run_shows_on_the_next_request_after_the_cache_age(store: FeatureStore) -> None:
    """Monitoring data past its cache age is re-read in the background, and the request that found
    it old gets the new read when it ends within a second (the usual case)."""
    from datetime import UTC, datetime, timedelta

    from potluck.ui.data import UiData

    data = UiData(store, monitoring_ttl=0.0)
    first = data.monitoring()
    runs = len(first.drift[("user_stats", "txn_count_7d")])
    now = datetime.now(UTC)
    store.run_monitoring(["users"], start=now - timedelta(days=7), end=now)
    try:
        second = data.monitoring()
        assert second.read_at > first.read_at
        assert len(second.drift[("user_stats", "txn_count_7d")]) == runs + 1
        assert data.monitoring_overdue() is None
    finally:
        store.refresh_registry()


def test_a_part_that_cannot_be_read_keeps_its_last_value_and_time(
    store: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from potluck.ui import data as ui_data

    first = ui_data.read_monitoring(store)
    assert not first.problems
    assert first.drift

    def drift_table_gone(_store: FeatureStore) -> None:
        raise RuntimeError("drift table gone")

    monkeypatch.setattr(ui_data, "_drift_history", drift_table_gone)
    second = ui_data.read_monitoring(store, first)
    assert second.drift == first.drift
    assert second.parts_read_at["drift"] == first.parts_read_at["drift"]
    assert second.parts_read_at["staleness"] > first.parts_read_at["staleness"]
    assert second.read_at == first.parts_read_at["drift"]
    assert [p for p in second.problems if "drift history could not be read (shown as read at" in p]
    never = ui_data.read_monitoring(store)  # nothing read before: no drift, no time for it
    assert never.drift == {}
    assert "drift" not in never.parts_read_at
    assert never.problems == ["drift history could not be read: drift table gone"]
