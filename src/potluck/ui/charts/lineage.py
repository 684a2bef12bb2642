"""The lineage graph as SVG: columns of named boxes, curved arrows from inputs to what reads them.

Each column's nodes are spread over the height of the tallest one, so a short column (a few
services) stands across the rows it draws from rather than bunched at the top. An edge that skips
a column passes it in the gap between two boxes nearest its way, never behind a box.
"""

from __future__ import annotations

import bisect
import functools
import itertools
from collections.abc import Callable

from markupsafe import Markup

from potluck.ui.charts.layout import Layout, layout
from potluck.ui.charts.svg import element, no_data, num, root, text, title, truncate
from potluck.ui.format import kind_label
from potluck.ui.lineage import LineageGraph, LineageNode

NODE_WIDTH = 176.0
NODE_HEIGHT = 26.0
PITCH = 36.0  # vertical distance between nodes of the tallest column
COLUMN_GAP = 96.0
MARGIN = 12.0
LEGEND_HEIGHT = 28.0
LABEL_CHARS = 24
ARROW_ID = "lineage-arrow"
EDGE = "#8a96a3"
TEXT = "#1f2933"
KIND_FILL = {
    "entity": "#e4ecf7",
    "data_source": "#e8f3e3",
    "feature_view": "#fdf0df",
    "stream_feature_view": "#fbe4e2",
    "label_view": "#f1e9f7",
    "on_demand_feature_view": "#e0f2f1",
    "feature_service": "#ececf0",
}
KIND_STROKE = "#6b7785"
OTHER_FILL = "#f4f5f7"
FOCUS_STROKE = "#1f5fbf"


def kind_words(kind: str) -> str:
    return kind_label(kind)


def _arrow() -> str:
    head = element("path", {"d": "M0,0 L10,5 L0,10 z", "fill": EDGE})
    marker = element(
        "marker",
        {
            "id": ARROW_ID,
            "viewBox": "0 0 10 10",
            "refX": 10,
            "refY": 5,
            "markerWidth": 7,
            "markerHeight": 7,
            "orient": "auto-start-reverse",
        },
        head,
    )
    return element("defs", None, marker)


def _left(column: int) -> float:
    return MARGIN + column * (NODE_WIDTH + COLUMN_GAP)


def _positions(placed: Layout) -> dict[str, tuple[float, float]]:
    """The top-left corner of each node's box."""
    height = max(len(ids) for ids in placed.columns) * PITCH
    corners = {}
    for c, ids in enumerate(placed.columns):
        slot = height / len(ids)
        for i, nid in enumerate(ids):
            corners[nid] = (_left(c), LEGEND_HEIGHT + MARGIN + i * slot + (slot - NODE_HEIGHT) / 2)
    return corners


def _loop_path(source_column: int, target_column: int, sy: str, ty: str) -> str:
    """An edge within one column (or backwards): out of the source's right side and into the target's."""
    start = _left(source_column) + NODE_WIDTH
    end = _left(target_column) + NODE_WIDTH
    return f"M{num(start)},{sy} C{num(start + 48)},{sy} {num(end + 48)},{ty} {num(end)},{ty}"


def _gaps(placed: Layout, corners: dict[str, tuple[float, float]]) -> list[list[float]]:
    """Per column, the heights an edge passing through it can take: above, between and below its boxes."""
    gaps = []
    for ids in placed.columns:
        tops = [corners[nid][1] for nid in ids]
        between = [(top + NODE_HEIGHT + below) / 2 for top, below in itertools.pairwise(tops)]
        gaps.append([tops[0] - 6, *between, tops[-1] + NODE_HEIGHT + 6])
    return gaps


def _nearest(options: list[float], wanted: float) -> float:
    at = bisect.bisect_left(options, wanted)
    if at == len(options) or (at > 0 and wanted - options[at - 1] <= options[at] - wanted):
        at -= 1
    return options[at]


def _edge_paths(placed: Layout, corners: dict[str, tuple[float, float]]) -> list[str]:
    """Each edge's path: S-curves between columns; through each column it skips, straight along the gap
    between two boxes nearest its way."""
    column = placed.column_of()
    count = len(placed.columns)
    lefts = [num(_left(c)) for c in range(count)]
    rights = [num(_left(c) + NODE_WIDTH) for c in range(count)]
    middles = [num(_left(c) - COLUMN_GAP / 2) for c in range(count)]  # the middle of the gap left of column c
    height = {nid: y + NODE_HEIGHT / 2 for nid, (_, y) in corners.items()}
    at = {nid: num(y) for nid, y in height.items()}
    gaps: list[list[float]] | None = None
    paths = []
    for edge in placed.edges:
        first, last = column[edge.source], column[edge.target]
        sy, ty = at[edge.source], at[edge.target]
        if last <= first:
            paths.append(_loop_path(first, last, sy, ty))
            continue
        parts = [f"M{rights[first]},{sy}"]
        y = sy
        for c in range(first + 1, last):
            if gaps is None:
                gaps = _gaps(placed, corners)
            share = (c - first) / (last - first)
            wanted = height[edge.source] + (height[edge.target] - height[edge.source]) * share
            passing = num(_nearest(gaps[c], wanted))
            parts.append(f"C{middles[c]},{y} {middles[c]},{passing} {lefts[c]},{passing} L{rights[c]},{passing}")
            y = passing
        parts.append(f"C{middles[last]},{y} {middles[last]},{ty} {lefts[last]},{ty}")
        paths.append(" ".join(parts))
    return paths


@functools.cache
def _node_style(kind: str, focused: bool) -> tuple[str, str, str, str]:
    """What every node of a kind shares: its group's data-kind, title prefix, box attributes, label weight."""
    escaped = text(kind)
    if focused:
        group = f' data-kind="{escaped}" data-focus="true"'
        box = f'class="node-{escaped} focus" stroke="{FOCUS_STROKE}" stroke-width="2.5"'
    else:
        group = f' data-kind="{escaped}"'
        box = f'class="node-{escaped}" stroke="{KIND_STROKE}" stroke-width="1"'
    box += f' width="{num(NODE_WIDTH)}" height="{num(NODE_HEIGHT)}" rx="5" fill="{KIND_FILL.get(kind, OTHER_FILL)}"'
    return group, text(kind_words(kind)), box, ' font-weight="bold"' if focused else ""


def _node(node: LineageNode, escaped_id: str, corner: tuple[float, float], *, focused: bool, url: str | None) -> str:
    """A node's box; written out rather than through `element`, as a large graph has a thousand of them."""
    group_attrs, kind, box, weight = _node_style(node.kind, focused)
    x, y = corner
    name = text(node.name)
    label = name if len(node.name) <= LABEL_CHARS else text(truncate(node.name, LABEL_CHARS))
    group = (
        f'<g class="node" data-id="{escaped_id}"{group_attrs}><title>{kind}: {name}</title>'
        f'<rect {box} x="{num(x)}" y="{num(y)}"/>'
        f'<text class="node-label" x="{num(x + 8)}" y="{num(y + NODE_HEIGHT / 2 + 4)}"{weight}>{label}</text></g>'
    )
    return f'<a href="{text(url)}">{group}</a>' if url else group


def _edge(source: str, target: str, path: str) -> str:
    """An edge between two escaped ids."""
    return (
        f'<g class="edge" data-from="{source}" data-to="{target}">'
        f'<path class="edge-line" d="{path}" marker-end="url(#{ARROW_ID})"/></g>'
    )


def _legend(kinds: list[str]) -> tuple[str, float]:
    """The kinds' colours in a row, and where the row ends."""
    items = []
    x = MARGIN
    for kind in kinds:
        items.append(
            element(
                "rect",
                {
                    "class": f"node-{kind}",
                    "x": x,
                    "y": MARGIN,
                    "width": 12,
                    "height": 12,
                    "rx": 2,
                    "fill": KIND_FILL.get(kind, OTHER_FILL),
                    "stroke": KIND_STROKE,
                },
            )
        )
        items.append(element("text", {"x": x + 17, "y": MARGIN + 10, "fill": TEXT}, text(kind_words(kind))))
        x += 17 + 6.5 * len(kind) + 18
    return element("g", {"class": "legend"}, *items), x


def lineage_svg(graph: LineageGraph, *, focus: str | None = None, href: Callable[[LineageNode], str | None]) -> Markup:
    """The graph in columns by kind; with `focus` (a node id), only that node, its inputs and its readers.

    `href` gives each node's link (None for none). An empty graph or an unknown focus gives a
    "no data" picture.
    """
    if focus is not None:
        if graph.node(focus) is None:
            return no_data("lineage", f"no lineage for {focus}")
        graph = graph.neighbourhood(focus)
    if not graph.nodes:
        return no_data("lineage", "no objects to draw yet")

    placed = layout(graph)
    corners = _positions(placed)
    nodes: dict[str, LineageNode] = {}
    for node in graph.nodes:
        nodes.setdefault(node.id, node)
    ids = {nid: text(nid) for nid in nodes}
    paths = _edge_paths(placed, corners)
    edges = [_edge(ids[e.source], ids[e.target], path) for e, path in zip(placed.edges, paths, strict=True)]
    drawn = [
        _node(nodes[nid], ids[nid], corners[nid], focused=nid == focus, url=href(nodes[nid]))
        for column in placed.columns
        for nid in column
    ]
    order = {kind: i for i, kind in enumerate(KIND_FILL)}
    kinds = sorted({n.kind for n in nodes.values()}, key=lambda k: (order.get(k, len(order)), k))
    legend, legend_end = _legend(kinds)
    columns = len(placed.columns)
    width = 2 * MARGIN + columns * NODE_WIDTH + (columns - 1) * COLUMN_GAP + 48  # room for looped edges
    width = max(width, legend_end + MARGIN)
    height = LEGEND_HEIGHT + 2 * MARGIN + max(len(ids) for ids in placed.columns) * PITCH
    label = f"Lineage of {kind_words(nodes[focus].kind).lower()} {nodes[focus].name}" if focus else "Lineage"
    label += f": {len(drawn)} objects, {len(edges)} links"
    body = [
        title(label),
        element(
            "desc",
            None,
            text(
                "Columns from left to right: entities and data sources, views, "
                "on-demand views, feature services; arrows point from an input to what reads it."
            ),
        ),
        _arrow(),
        legend,
        element("g", {"class": "edges", "fill": "none", "stroke": EDGE, "stroke-width": 1.25}, *edges),
        element("g", {"class": "nodes", "fill": TEXT}, *drawn),
    ]
    return root("lineage", width, height, {"role": "img", "aria-label": label}, body)
