"""The web UI in a real browser: every page renders cleanly, search, lineage, drift plots, auth, keyboard.

One Chromium for the module, a fresh context (own cookies) per test, all on the demo repository of
ui_support.py. The expected objects, lineage and histograms come from the registry and the saved
baseline, or are written out by hand, never from the UI itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_support import Problems
from ui_support import (
    DRIFTED_FEATURE,
    DRIFTED_VIEW,
    ENTITIES,
    FEATURE_SERVICES,
    FEATURE_VIEWS,
    LINEAGE_EDGES,
    LINEAGE_NODES,
    SAVED_DATASET,
    potluck,
    ui_server,
)

from potluck import FeatureStore

# list page -> the names of its objects: the registry's, and every source a view embeds
LISTS = {
    "/entities": lambda s: {e.name for e in s.list_entities()},
    "/data-sources": lambda s: {n.split(":", 1)[1] for n in LINEAGE_NODES if n.startswith("data_source:")},
    "/feature-views": lambda s: {v.name for v in s.list_all_feature_views()},
    "/feature-services": lambda s: {f.name for f in s.list_feature_services()},
    "/saved-datasets": lambda s: {d.name for d in s.list_saved_datasets()},
}
# object page -> the kind its heading names
OBJECTS = {
    **{f"/entities/{name}": "entity" for name in ENTITIES},
    "/data-sources/user_stats_source": "data_source",
    "/data-sources/txn_request": "data_source",
    "/data-sources/payments": "data_source",
    "/feature-views/user_stats": "feature_view",
    "/feature-views/merchant_stats": "feature_view",
    "/feature-views/amount_ratio": "on_demand_feature_view",
    "/feature-views/user_payments": "stream_feature_view",
    "/feature-views/fraud_labels": "label_view",
    **{f"/feature-services/{name}": "feature_service" for name in FEATURE_SERVICES},
    f"/saved-datasets/{SAVED_DATASET}": "saved_dataset",
}
VIEW_SECTIONS = ("definition", "lineage", "history", "freshness", "statistics", "drift", "skew")


@pytest.fixture(scope="module")
def store(demo_repo: Path) -> Iterator[FeatureStore]:
    fs = FeatureStore(repo_path=demo_repo)
    yield fs
    fs.close()


def _open(page: Any, url: str) -> Any:
    response = page.goto(url, wait_until="load")
    assert response is not None, url
    assert response.status == 200, (url, response.status)
    return response


def test_every_page_renders_without_errors(page: Any, problems: Problems, ui_url: str, store: FeatureStore) -> None:
    assert set(FEATURE_VIEWS) == LISTS["/feature-views"](store)  # the repository is what the table below assumes
    _open(page, ui_url + "/")
    assert page.locator("form input#search[name=q][type=search]").count() == 1
    assert page.locator("main, #content").count() >= 1
    for address, names in LISTS.items():
        _open(page, ui_url + address)
        shown = set(page.locator("table#objects tr[data-name]").evaluate_all("rs => rs.map(r => r.dataset.name)"))
        assert shown == names(store), address
    for address, kind in OBJECTS.items():
        _open(page, ui_url + address)
        heading = page.locator("h1[data-kind]")
        assert heading.get_attribute("data-kind") == kind, address
        assert heading.inner_text().strip() == address.rsplit("/", 1)[1], address
        assert page.locator("section#definition").count() == 1, address
        if kind.endswith("view"):
            for section in VIEW_SECTIONS:
                box = page.locator(f"section#{section}")
                assert box.count() == 1, (address, section)
                assert box.inner_text().strip() != "", (address, section)  # data, or a sentence saying why not
    _open(page, ui_url + "/lineage")
    _open(page, ui_url + "/search?q=risk")
    problems.check()


def test_a_missing_object_is_an_html_404(page: Any, problems: Problems, ui_url: str) -> None:
    problems.allowed_statuses.add(404)
    response = page.goto(ui_url + "/feature-views/no_such_view")
    assert response is not None
    assert response.status == 404
    assert "no_such_view" in page.content()
    assert page.locator("input#search").count() == 1  # the page keeps the header
    problems.check()


def test_search_finds_a_feature_and_opens_its_view(page: Any, problems: Problems, ui_url: str) -> None:
    _open(page, ui_url + "/")
    page.fill("#search", "txn_count_7d")
    page.press("#search", "Enter")
    page.wait_for_selector("ul#search-results li a")
    assert "/search" in page.url
    assert "q=txn_count_7d" in page.url
    link = page.locator(f'ul#search-results a[href$="/feature-views/{DRIFTED_VIEW}"]').first
    link.click()
    page.wait_for_url(f"**/feature-views/{DRIFTED_VIEW}")
    assert page.locator("h1[data-kind]").inner_text().strip() == DRIFTED_VIEW
    assert "txn_count_7d" in page.locator("section#definition").inner_text()
    problems.check()


def test_the_lineage_graph_is_the_repositorys(page: Any, problems: Problems, ui_url: str) -> None:
    _open(page, ui_url + "/lineage")
    svg = page.locator("svg.lineage")
    nodes = set(svg.locator("g.node[data-id]").evaluate_all("gs => gs.map(g => g.dataset.id)"))
    edges = svg.locator("g.edge[data-from][data-to]").evaluate_all("gs => gs.map(g => [g.dataset.from, g.dataset.to])")
    assert nodes == LINEAGE_NODES
    assert {tuple(e) for e in edges} == LINEAGE_EDGES
    assert len(edges) == len(LINEAGE_EDGES)  # one element per edge
    assert svg.locator("g.edge path").count() == len(LINEAGE_EDGES)
    api = httpx.get(ui_url + "/api/lineage").json()
    assert {n["id"] for n in api["nodes"]} == LINEAGE_NODES
    assert {(e["from"], e["to"]) for e in api["edges"]} == LINEAGE_EDGES
    # a node links to its object's page
    page.locator('g.node[data-id="feature_view:merchant_stats"]').click()
    page.wait_for_url("**/feature-views/merchant_stats")
    problems.check()


def _heights(page: Any, selector: str) -> list[float]:
    return [float(h) for h in page.locator(selector).evaluate_all("rs => rs.map(r => r.getAttribute('height'))")]


def test_the_drift_plot_shows_both_distributions(
    page: Any, problems: Problems, ui_url: str, store: FeatureStore
) -> None:
    _open(page, ui_url + f"/feature-views/{DRIFTED_VIEW}")
    chart = f'section#statistics svg.chart.histogram[data-feature="{DRIFTED_FEATURE}"]'
    assert page.locator(chart).count() == 1
    baseline = _heights(page, f"{chart} g[data-series=baseline] rect")
    current = _heights(page, f"{chart} g[data-series=current] rect")
    reference = store.get_baseline("first_week").feature(DRIFTED_FEATURE).histogram
    assert len(baseline) == len(reference) == len(current)
    # bars are shares on one scale: the baseline's heights follow the saved baseline's counts
    tallest = max(range(len(reference)), key=lambda i: reference[i])
    for height, count in zip(baseline, reference, strict=True):
        assert height / baseline[tallest] == pytest.approx(count / reference[tallest], abs=0.02)
    assert baseline != current  # the last week drifted
    timeline = page.locator(f'section#drift svg.chart.timeline[data-feature="{DRIFTED_FEATURE}"]').first
    points = timeline.locator("polyline").first.get_attribute("points") or ""
    assert len(points.split()) >= 2  # one point per monitor run
    ticks = timeline.locator("text.time").all_text_contents()
    assert all(ticks)
    assert len(set(ticks)) == len(ticks)  # the runs are seconds apart: still no label twice
    heading = timeline.locator("text.chart-title").text_content() or ""
    assert heading.startswith(f"PSI \u2014 {DRIFTED_FEATURE}")
    problems.check()


def test_the_skew_table_shows_formatted_numbers(page: Any, problems: Problems, ui_url: str) -> None:
    [report] = httpx.get(ui_url + "/api/feature-services/fraud_model_v2").json()["skew"]
    _open(page, ui_url + "/feature-services/fraud_model_v2")
    rows = page.locator("section#skew table.skew tbody tr")
    assert rows.count() == len(report["features"]) > 0
    for row, feature in zip(rows.all(), report["features"], strict=True):
        cells = row.locator("td").all_inner_texts()
        assert cells[0] == f"{feature['view']}:{feature['feature']}"
        for text, rate in ((cells[2], feature["mismatch_rate"]), (cells[3], feature["missing_online_rate"])):
            if rate is None:
                assert text == "\u2014"
            else:  # a percent with one or two decimals
                assert re.fullmatch(r"\d+\.\d{1,2}%", text), text
                assert float(text[:-1]) == pytest.approx(rate * 100, abs=0.005)
        psi = feature["psi"]
        assert cells[6] == ("\u2014" if psi is None else f"{psi:.4g}")
        assert "None" not in cells
    assert page.locator("section#skew dl.legend dt").count() >= 4  # each column explained
    problems.check()


def test_a_feature_services_snippets_run(
    page: Any, problems: Problems, ui_url: str, demo_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The code shown for the service with an on-demand view (join keys and request data) runs as shown,
    from the repository's folder (the sample keys are no entity of the demo: values are missing)."""
    _open(page, ui_url + "/feature-services/fraud_model_v2")
    online, historical = page.locator("section#snippet pre code").all_inner_texts()
    monkeypatch.chdir(demo_repo)
    ran: dict[str, Any] = {}
    exec(compile(online, "online snippet", "exec"), ran)
    assert set(ran["features"]) >= {"user_id", "merchant_id", "txn_count_7d", "risk_score", "amount_ratio"}
    ran["store"].close()
    ran = {}
    exec(compile(historical, "historical snippet", "exec"), ran)
    assert "amount_ratio" in ran["training"].columns
    assert len(ran["training"]) == 2
    ran["store"].close()
    problems.check()


def test_keyboard_slash_focuses_search_and_tab_reaches_the_skip_link(
    page: Any, problems: Problems, ui_url: str
) -> None:
    _open(page, ui_url + "/feature-views")
    page.keyboard.press("Tab")
    first = page.evaluate("() => [document.activeElement.tagName, document.activeElement.getAttribute('href')]")
    assert first[0] == "A", first
    assert first[1].startswith("#"), first
    target = first[1][1:]
    assert page.locator(f"[id='{target}']").count() == 1  # the skip link leads somewhere
    page.locator("body").click(position={"x": 5, "y": 400})
    page.keyboard.press("/")
    assert page.evaluate("() => document.activeElement.id") == "search"
    assert page.input_value("#search") == ""  # the slash was not typed into the box
    problems.check()


@pytest.fixture(scope="module")
def secured(demo_repo: Path) -> Iterator[tuple[str, str]]:
    """The demo's UI with authentication on; yields (url, a reader's API key)."""
    key = json.loads(potluck(demo_repo, "auth", "create-key", "--role", "reader", "--name", "ui-test", "-o", "json"))
    with ui_server(demo_repo, auth="on") as url:
        yield url, key["key"]


def test_auth_is_enforced_and_a_reader_key_logs_in(page: Any, problems: Problems, secured: tuple[str, str]) -> None:
    url, key = secured
    problems.allowed_statuses.update({401, 403})
    assert httpx.get(url + "/api/overview").status_code == 401
    assert httpx.get(url + "/api/overview", headers={"Authorization": "Bearer pk_wrong"}).status_code == 401
    assert httpx.get(url + "/api/overview", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert httpx.get(url + "/api/overview").headers.get("access-control-allow-origin") is None

    response = page.goto(url + "/feature-views/user_stats")
    assert response is not None
    assert response.status == 401 or "/login" in page.url  # the login page, not the view
    assert page.locator("h1[data-kind]").count() == 0
    secret = page.locator("form input[type=password], form input[name=key], form input[name=token]").first

    secret.fill("pk_wrong")
    secret.press("Enter")
    page.wait_for_load_state("load")
    assert page.locator("h1[data-kind]").count() == 0
    assert not [c for c in page.context.cookies() if c["value"] == "pk_wrong"]

    page.goto(url + "/login")
    secret = page.locator("form input[type=password], form input[name=key], form input[name=token]").first
    secret.fill(key)
    secret.press("Enter")
    page.wait_for_load_state("load")
    _open(page, url + "/")
    assert page.locator("input#search").count() == 1
    cookies = page.context.cookies()
    assert cookies
    assert all(c["httpOnly"] and c["sameSite"] == "Strict" for c in cookies)
    _open(page, url + "/feature-views/user_stats")
    assert page.locator("h1[data-kind]").inner_text().strip() == "user_stats"
    problems.check()
