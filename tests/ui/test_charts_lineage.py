"""The lineage SVG and its layered layout: every node and edge once, columns without overlaps, few crossings."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict

import pytest
from charts_support import SVG, node_boxes, parse

from potluck.ui.charts import lineage_svg
from potluck.ui.charts.layout import crossings, layout
from potluck.ui.lineage import LineageEdge, LineageGraph, LineageNode

HOSTILE = "<img src=x onerror=alert(1)>&\"'"


def _node(kind: str, name: str) -> LineageNode:
    return LineageNode(f"{kind}:{name}", kind, name)


def _graph(nodes: list[LineageNode], pairs: list[tuple[str, str]]) -> LineageGraph:
    return LineageGraph(tuple(nodes), tuple(LineageEdge(a, b) for a, b in pairs))


def _no_link(_: LineageNode) -> str | None:
    return None


def _registry_graph() -> LineageGraph:
    nodes = [
        _node("entity", "driver"),
        _node("data_source", "trips"),
        _node("data_source", "requests"),
        _node("feature_view", "driver_stats"),
        _node("stream_feature_view", "driver_live"),
        _node("feature_view", "unrelated"),
        _node("on_demand_feature_view", "scored"),
        _node("on_demand_feature_view", "rescored"),
        _node("feature_service", "model_v1"),
        _node("data_source", "other"),
    ]
    pairs = [
        ("entity:driver", "feature_view:driver_stats"),
        ("entity:driver", "stream_feature_view:driver_live"),
        ("data_source:trips", "feature_view:driver_stats"),
        ("data_source:trips", "stream_feature_view:driver_live"),
        ("data_source:other", "feature_view:unrelated"),
        ("feature_view:driver_stats", "on_demand_feature_view:scored"),
        ("data_source:requests", "on_demand_feature_view:scored"),
        ("on_demand_feature_view:scored", "on_demand_feature_view:rescored"),
        ("on_demand_feature_view:rescored", "feature_service:model_v1"),
        ("stream_feature_view:driver_live", "feature_service:model_v1"),
    ]
    return _graph(nodes, pairs)


def _brute_crossings(columns: list[list[str]], edges: list[LineageEdge]) -> int:
    column = {n: c for c, ids in enumerate(columns) for n in ids}
    position = {n: i for ids in columns for i, n in enumerate(ids)}
    count = 0
    for e, f in itertools.combinations(edges, 2):
        (a, b), (c, d) = (sorted((x.source, x.target), key=column.__getitem__) for x in (e, f))
        if (column[a], column[b]) != (column[c], column[d]) or column[a] == column[b]:
            continue
        if (position[a] - position[c]) * (position[b] - position[d]) < 0:
            count += 1
    return count


def _drawn_columns(svg_boxes: dict[str, tuple[float, float, float, float]]) -> list[list[str]]:
    by_x: dict[float, list[tuple[float, str]]] = defaultdict(list)
    for nid, (x, y, _, _) in svg_boxes.items():
        by_x[x].append((y, nid))
    return [[nid for _, nid in sorted(by_x[x])] for x in sorted(by_x)]


def test_every_node_and_edge_once_with_ids_kinds_links_and_arrows() -> None:
    graph = _registry_graph()
    svg = parse(lineage_svg(graph, href=lambda n: None if n.kind == "entity" else f"/x/{n.name}"))
    assert (svg.get("class"), svg.get("role")) == ("lineage", "img")
    groups = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "node"]
    assert sorted(g.get("data-id") for g in groups) == sorted(n.id for n in graph.nodes)
    assert {g.get("data-id"): g.get("data-kind") for g in groups} == {n.id: n.kind for n in graph.nodes}
    links = {a.get("href"): a.find(f"{SVG}g").get("data-id") for a in svg.iter(f"{SVG}a")}
    assert links == {f"/x/{n.name}": n.id for n in graph.nodes if n.kind != "entity"}
    edges = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "edge"]
    assert sorted((g.get("data-from"), g.get("data-to")) for g in edges) == sorted(
        (e.source, e.target) for e in graph.edges
    )
    marker = svg.find(f".//{SVG}marker")
    for g in edges:
        assert g.find(f"{SVG}path").get("marker-end") == f"url(#{marker.get('id')})"
    titles = {g.get("data-id"): g.find(f"{SVG}title").text for g in groups}
    assert titles["feature_service:model_v1"] == "Feature service: model_v1"


def test_columns_follow_kinds_without_overlaps() -> None:
    boxes = node_boxes(parse(lineage_svg(_registry_graph(), href=_no_link)))
    columns = _drawn_columns(boxes)
    kinds = [{nid.split(":")[0] for nid in column} for column in columns]
    assert kinds == [
        {"entity", "data_source"},
        {"feature_view", "stream_feature_view"},
        {"on_demand_feature_view"},
        {"on_demand_feature_view"},  # an on-demand view over another stands right of it
        {"feature_service"},
    ]
    for column in columns:
        for upper, lower in itertools.pairwise(column):
            assert boxes[upper][1] + boxes[upper][3] <= boxes[lower][1]


def test_layout_removes_the_crossings_of_a_reversed_order() -> None:
    sources = [_node("data_source", f"s{i}") for i in range(4)]
    views = [_node("feature_view", f"v{i}") for i in range(4)]
    services = [_node("feature_service", f"fs{i}") for i in range(2)]
    pairs = [(f"data_source:s{i}", f"feature_view:v{3 - i}") for i in range(4)]
    pairs += [("feature_view:v0", "feature_service:fs1"), ("feature_view:v3", "feature_service:fs0")]
    graph = _graph(sources + views + services, pairs)
    given = [[n.id for n in sources], [n.id for n in views], [n.id for n in services]]
    assert _brute_crossings(given, list(graph.edges)) == 6 + 1
    drawn = _drawn_columns(node_boxes(parse(lineage_svg(graph, href=_no_link))))
    assert _brute_crossings(drawn, list(graph.edges)) == 0


@pytest.mark.parametrize("seed", range(6))
def test_layout_is_never_worse_than_the_input_order(seed: int) -> None:
    rng = random.Random(seed)
    sources = [_node("data_source", f"s{i}") for i in range(12)]
    views = [_node("feature_view", f"v{i}") for i in range(15)]
    services = [_node("feature_service", f"fs{i}") for i in range(6)]
    pairs = {(rng.choice(sources).id, v.id) for v in views for _ in range(2)}
    pairs |= {(rng.choice(views).id, s.id) for s in services for _ in range(3)}
    graph = _graph(sources + views + services, sorted(pairs))
    given = [[n.id for n in sources], [n.id for n in views], [n.id for n in services]]
    placed = layout(graph)
    assert crossings(given, graph.edges) == _brute_crossings(given, list(graph.edges))
    assert crossings(placed.columns, graph.edges) == _brute_crossings(
        [list(c) for c in placed.columns], list(graph.edges)
    )
    assert crossings(placed.columns, graph.edges) <= crossings(given, graph.edges)
    assert sorted(itertools.chain(*placed.columns)) == sorted(n.id for n in graph.nodes)


def test_focus_draws_only_ancestors_and_descendants() -> None:
    graph = _registry_graph()
    svg = parse(lineage_svg(graph, focus="on_demand_feature_view:scored", href=_no_link))
    boxes = node_boxes(svg)
    assert set(boxes) == {
        "entity:driver",
        "data_source:trips",
        "data_source:requests",
        "feature_view:driver_stats",
        "on_demand_feature_view:scored",
        "on_demand_feature_view:rescored",
        "feature_service:model_v1",
    }
    edges = {(g.get("data-from"), g.get("data-to")) for g in svg.iter(f"{SVG}g") if g.get("class") == "edge"}
    assert edges == {(e.source, e.target) for e in graph.edges if e.source in boxes and e.target in boxes}
    focused = [g for g in svg.iter(f"{SVG}g") if g.get("data-focus") == "true"]
    assert [g.get("data-id") for g in focused] == ["on_demand_feature_view:scored"]
    assert "focus" in focused[0].find(f"{SVG}rect").get("class").split()


def test_hostile_names_are_escaped_and_long_names_truncated() -> None:
    long_name = "a_feature_view_with_a_name_far_too_long_for_its_box"
    graph = _graph(
        [_node("data_source", HOSTILE), _node("feature_view", long_name)],
        [(f"data_source:{HOSTILE}", f"feature_view:{long_name}")],
    )
    markup = lineage_svg(graph, focus=f"feature_view:{long_name}", href=lambda n: f"/v?{n.name}")
    assert "<img" not in str(markup)
    svg = parse(markup)
    assert set(node_boxes(svg)) == {f"data_source:{HOSTILE}", f"feature_view:{long_name}"}
    assert {a.get("href") for a in svg.iter(f"{SVG}a")} == {f"/v?{HOSTILE}", f"/v?{long_name}"}
    group = next(g for g in svg.iter(f"{SVG}g") if g.get("data-id") == f"feature_view:{long_name}")
    label = group.find(f"{SVG}text").text
    assert label.endswith("\u2026")
    assert long_name.startswith(label[:-1])
    assert group.find(f"{SVG}title").text == f"Batch view: {long_name}"


def test_same_graph_same_svg_and_nothing_to_draw() -> None:
    assert lineage_svg(_registry_graph(), href=_no_link) == lineage_svg(_registry_graph(), href=_no_link)
    empty = parse(lineage_svg(LineageGraph((), ()), href=_no_link))
    assert (empty.get("class"), empty.get("data-empty")) == ("lineage no-data", "true")
    unknown = parse(lineage_svg(_registry_graph(), focus="feature_view:missing", href=_no_link))
    assert "no lineage for feature_view:missing" in unknown.find(f"{SVG}text").text


def _horizontal_runs(path: str) -> list[tuple[float, float, float]]:
    """(x from, x to, y) of each straight horizontal piece `... x,y L x2,y` of a path."""
    tokens = path.replace("M", " M ").replace("C", " C ").replace("L", " L ").split()
    runs = []
    for i, token in enumerate(tokens):
        if token == "L":
            x0, y0 = map(float, tokens[i - 1].split(","))
            x1, y1 = map(float, tokens[i + 1].split(","))
            assert y0 == y1
            runs.append((x0, x1, y0))
    return runs


def test_an_edge_skipping_a_column_passes_between_its_boxes() -> None:
    views = [_node("feature_view", f"v{i}") for i in range(5)]
    nodes = [
        _node("data_source", "src"),
        *views,
        _node("on_demand_feature_view", f"odfv{0}"),
        _node("feature_service", "svc"),
    ]
    pairs = [("data_source:src", v.id) for v in views] + [(v.id, "feature_service:svc") for v in views]
    pairs += [("feature_view:v0", "on_demand_feature_view:odfv0"), ("data_source:src", "on_demand_feature_view:odfv0")]
    svg = parse(lineage_svg(_graph(nodes, pairs), href=_no_link))
    boxes = node_boxes(svg)
    passing = {
        (g.get("data-from"), g.get("data-to")): g.find(f"{SVG}path").get("d")
        for g in svg.iter(f"{SVG}g")
        if g.get("class") == "edge"
    }
    for (source, target), path in passing.items():
        skipped = sorted({box[0] for box in boxes.values() if boxes[source][0] < box[0] < boxes[target][0]})
        runs = _horizontal_runs(path)
        assert len(runs) == len(skipped), (source, target)
        for left, (x0, x1, y) in zip(skipped, runs, strict=True):
            assert (x0, x1) == (left, left + boxes[source][2])
            for bx, by, _, height in boxes.values():
                if bx == left:
                    assert not by <= y <= by + height, f"{source} -> {target} runs through a box"


def test_a_registry_of_200_views_draws_every_node_without_overlaps() -> None:
    rng = random.Random(11)
    sources = [_node("data_source", f"src_{i}") for i in range(30)]
    views = [_node("feature_view", f"view_{i}") for i in range(200)]
    services = [_node("feature_service", f"svc_{i}") for i in range(20)]
    pairs = {(rng.choice(sources).id, v.id) for v in views}
    pairs |= {(rng.choice(views).id, s.id) for s in services for _ in range(6)}
    graph = _graph(sources + views + services, sorted(pairs))
    svg = parse(lineage_svg(graph, href=_no_link))
    boxes = node_boxes(svg)
    assert len(boxes) == len(graph.nodes)
    assert sum(1 for g in svg.iter(f"{SVG}g") if g.get("class") == "edge") == len(graph.edges)
    for column in _drawn_columns(boxes):
        for upper, lower in itertools.pairwise(column):
            assert boxes[upper][1] + boxes[upper][3] <= boxes[lower][1]


def test_dangling_edges_duplicates_and_cycles_are_drawn_without_error() -> None:
    a, b = _node("feature_view", "a"), _node("feature_view", "b")
    graph = _graph(
        [a, b, a, _node("mystery_kind", "m")],
        [(a.id, b.id), (b.id, a.id), (a.id, a.id), (a.id, "feature_view:gone"), (a.id, b.id)],
    )
    svg = parse(lineage_svg(graph, href=_no_link))
    assert sorted(node_boxes(svg)) == ["feature_view:a", "feature_view:b", "mystery_kind:m"]
    edges = [(g.get("data-from"), g.get("data-to")) for g in svg.iter(f"{SVG}g") if g.get("class") == "edge"]
    assert sorted(edges) == [(a.id, b.id), (b.id, a.id)]


def test_a_graph_built_with_lists_is_laid_out_too() -> None:
    graph = _registry_graph()
    with_lists = LineageGraph(list(graph.nodes), list(graph.edges))  # lists, not the tuples the type says
    assert lineage_svg(with_lists, href=_no_link) == lineage_svg(graph, href=_no_link)
