"""The lineage graph as SVG: columns of named boxes, curved arrows from inputs to what reads them.

Each column's nodes are spread over the height of the tallest one, so a short column (a few
services) stands across the rows it draws from rather than bunched at the top. An edge that skips
a column passes it in the gap between two boxes nearest its way, never behind a box.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable

from markupsafe import Markup

from potluck.ui.charts.layout import Layout, layout
from potluck.ui.charts.svg import element, no_data, num, root, text, title, truncate
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
    return kind.replace("_", " ")


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


def _path_shape(source_column: int, target_column: int) -> str:
    """The path of an edge between two columns, `{s}` and `{t}` standing for the heights of its ends."""
    start = _left(source_column) + NODE_WIDTH
    if target_column > source_column:
        end = _left(target_column)
        middle = num((start + end) / 2)
        return f"M{num(start)},{{s}} C{middle},{{s}} {middle},{{t}} {num(end)},{{t}}"
    end = _left(target_column) + NODE_WIDTH  # same column (or backwards): loop out on the right
    return f"M{num(start)},{{s}} C{num(start + 48)},{{s}} {num(end + 48)},{{t}} {num(end)},{{t}}"


def _gaps(placed: Layout, corners: dict[str, tuple[float, float]]) -> list[list[float]]:
    """Per column, the heights an edge passing through it can take: above, between and below its boxes."""
    gaps = []
    for ids in placed.columns:
        tops = [corners[nid][1] for nid in ids]
        between = [(top + NODE_HEIGHT + below) / 2 for top, below in itertools.pairwise(tops)]
        gaps.append([tops[0] - 6, *between, tops[-1] + NODE_HEIGHT + 6])
    return gaps


def _passing_path(source_column: int, target_column: int, sy: float, ty: float, gaps: list[list[float]]) -> str:
    """An edge over more than one column gap: through each column between, in the gap nearest its way."""
    x = _left(source_column) + NODE_WIDTH
    y = sy
    parts = [f"M{num(x)},{num(y)}"]
    for c in range(source_column + 1, target_column + 1):
        left = _left(c)
        if c == target_column:
            next_y = ty
        else:
            wanted = sy + (ty - sy) * (c - source_column) / (target_column - source_column)
            options = gaps[c]
            at = bisect.bisect_left(options, wanted)
            next_y = min(options[max(at - 1, 0) : at + 1], key=lambda g: abs(g - wanted))
        middle = num((x + left) / 2)
        parts.append(f"C{middle},{num(y)} {middle},{num(next_y)} {num(left)},{num(next_y)}")
        if c != target_column:
            parts.append(f"L{num(left + NODE_WIDTH)},{num(next_y)}")
        x, y = left + NODE_WIDTH, next_y
    return " ".join(parts)


def _edge_paths(placed: Layout, corners: dict[str, tuple[float, float]]) -> list[str]:
    column = placed.column_of()
    middle = {nid: num(y + NODE_HEIGHT / 2) for nid, (_, y) in corners.items()}
    shapes: dict[tuple[int, int], str] = {}
    gaps: list[list[float]] | None = None
    paths = []
    for edge in placed.edges:
        key = (column[edge.source], column[edge.target])
        if key[1] > key[0] + 1:
            gaps = gaps or _gaps(placed, corners)
            sy, ty = (corners[nid][1] + NODE_HEIGHT / 2 for nid in (edge.source, edge.target))
            paths.append(_passing_path(*key, sy, ty, gaps))
            continue
        if key not in shapes:
            shapes[key] = _path_shape(*key)
        paths.append(shapes[key].format(s=middle[edge.source], t=middle[edge.target]))
    return paths


def _node(node: LineageNode, escaped_id: str, corner: tuple[float, float], *, focused: bool, url: str | None) -> str:
    """A node's box; written out rather than through `element`, as a large graph has a thousand of them."""
    x, y = num(corner[0]), num(corner[1])
    kind = text(node.kind)
    if focused:
        box = f'class="node-{kind} focus" stroke="{FOCUS_STROKE}" stroke-width="2.5"'
        extra, weight = ' data-focus="true"', ' font-weight="bold"'
    else:
        box = f'class="node-{kind}" stroke="{KIND_STROKE}" stroke-width="1"'
        extra = weight = ""
    group = (
        f'<g class="node" data-id="{escaped_id}" data-kind="{kind}"{extra}>'
        f"<title>{text(kind_words(node.kind))}: {text(node.name)}</title>"
        f'<rect {box} x="{x}" y="{y}" width="{num(NODE_WIDTH)}" height="{num(NODE_HEIGHT)}" rx="5" '
        f'fill="{KIND_FILL.get(node.kind, OTHER_FILL)}"/>'
        f'<text class="node-label" x="{num(corner[0] + 8)}" y="{num(corner[1] + NODE_HEIGHT / 2 + 4)}"{weight}>'
        f"{text(truncate(node.name, LABEL_CHARS))}</text></g>"
    )
    return f'<a href="{text(url)}">{group}</a>' if url else group


def _edge(source: str, target: str, path: str) -> str:
    """An edge between two escaped ids."""
    return (
        f'<g class="edge" data-from="{source}" data-to="{target}">'
        f'<path class="edge-line" d="{path}" marker-end="url(#{ARROW_ID})"/></g>'
    )


def _legend(kinds: list[str]) -> str:
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
    return element("g", {"class": "legend"}, *items)


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
    columns = len(placed.columns)
    width = 2 * MARGIN + columns * NODE_WIDTH + (columns - 1) * COLUMN_GAP + 48  # room for looped edges
    height = LEGEND_HEIGHT + 2 * MARGIN + max(len(ids) for ids in placed.columns) * PITCH
    label = f"Lineage of {focus}" if focus else "Lineage"
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
        _legend(kinds),
        element("g", {"class": "edges", "fill": "none", "stroke": EDGE, "stroke-width": 1.25}, *edges),
        element("g", {"class": "nodes", "fill": TEXT}, *drawn),
    ]
    return root("lineage", width, height, {"role": "img", "aria-label": label}, body)
