"""Layered layout of the lineage graph: which column each node stands in, and its order there.

Columns follow the kind (entities and data sources | views | on-demand views | feature services); a
node whose input stands in its own column or further right moves one column right of it (an
on-demand view over another), and empty columns close up. Within the columns, barycenter sweeps
(left to right, then right to left) move each node towards the mean position of its neighbours in
the columns already ordered; the order with the fewest crossings seen, the input order included, wins.
Crossings are counted between edges joining the same pair of columns.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass

from potluck.ui.lineage import LineageEdge, LineageGraph

KIND_COLUMN = {
    "entity": 0,
    "data_source": 0,
    "feature_view": 1,
    "stream_feature_view": 1,
    "label_view": 1,
    "on_demand_feature_view": 2,
    "feature_service": 3,
}
UNKNOWN_KIND_COLUMN = 1
SWEEPS = 4  # pairs of sweeps; more rarely lowers the count on registry-shaped graphs


@dataclass(frozen=True)
class Layout:
    columns: tuple[tuple[str, ...], ...]  # node ids per column, top to bottom
    edges: tuple[LineageEdge, ...]  # the edges between drawn nodes

    def column_of(self) -> dict[str, int]:
        return {nid: c for c, column in enumerate(self.columns) for nid in column}


def _layers(node_ids: Sequence[str], kinds: dict[str, str], edges: Sequence[LineageEdge]) -> dict[str, int]:
    """Each node's column: its kind's, or one right of its furthest input (longest path, in topological order)."""
    layer = {nid: KIND_COLUMN.get(kinds[nid], UNKNOWN_KIND_COLUMN) for nid in node_ids}
    targets: dict[str, list[str]] = defaultdict(list)
    indegree = dict.fromkeys(node_ids, 0)
    for edge in edges:
        targets[edge.source].append(edge.target)
        indegree[edge.target] += 1
    ready = deque(nid for nid in node_ids if indegree[nid] == 0)
    while ready:
        current = ready.popleft()
        for target in targets[current]:
            layer[target] = max(layer[target], layer[current] + 1)
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    used = sorted(set(layer.values()))  # nodes on a cycle keep their kind's column
    compact = {column: i for i, column in enumerate(used)}
    return {nid: compact[column] for nid, column in layer.items()}


def _inversions(pairs: list[tuple[int, int]], size: int) -> int:
    """Pairs (a, b) after sorting, how many have a later b strictly smaller (a Fenwick tree over b)."""
    pairs.sort()
    tree = [0] * (size + 1)
    count = 0
    for seen, (_, b) in enumerate(pairs):
        i = b + 1
        not_above = 0
        while i > 0:
            not_above += tree[i]
            i -= i & -i
        count += seen - not_above
        i = b + 1
        while i <= size:
            tree[i] += 1
            i += i & -i
    return count


def crossings(columns: Sequence[Sequence[str]], edges: Sequence[LineageEdge]) -> int:
    """Crossings between edges that join the same two columns, for nodes ordered as in `columns`."""
    column = {nid: c for c, ids in enumerate(columns) for nid in ids}
    position = {nid: i for ids in columns for i, nid in enumerate(ids)}
    groups: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for edge in edges:
        left, right = sorted((edge.source, edge.target), key=lambda nid: column[nid])
        if column[left] != column[right]:
            groups[column[left], column[right]].append((position[left], position[right]))
    longest = max((len(ids) for ids in columns), default=0)
    return sum(_inversions(pairs, longest) for _, pairs in sorted(groups.items()))


def _sweep(columns: list[list[str]], neighbours: dict[str, list[str]], column: dict[str, int], forward: bool) -> None:
    share = {nid: (i + 0.5) / len(ids) for ids in columns for i, nid in enumerate(ids)}
    order = range(1, len(columns)) if forward else range(len(columns) - 2, -1, -1)
    for c in order:

        def barycenter(nid: str, c: int = c) -> float:
            near = [share[n] for n in neighbours[nid] if (column[n] < c if forward else column[n] > c)]
            return sum(near) / len(near) if near else share[nid]

        ranked = sorted(enumerate(columns[c]), key=lambda item: (barycenter(item[1]), item[0]))
        columns[c] = [nid for _, nid in ranked]
        share.update({nid: (i + 0.5) / len(columns[c]) for i, nid in enumerate(columns[c])})


def layout(graph: LineageGraph) -> Layout:
    """Columns and orders for the graph's nodes (the first of duplicate ids; edges to unknown ids left out)."""
    kinds: dict[str, str] = {}
    for node in graph.nodes:
        kinds.setdefault(node.id, node.kind)
    node_ids = list(kinds)
    seen: set[tuple[str, str]] = set()
    edges = []
    for edge in graph.edges:
        key = (edge.source, edge.target)
        if edge.source in kinds and edge.target in kinds and edge.source != edge.target and key not in seen:
            seen.add(key)
            edges.append(edge)
    column = _layers(node_ids, kinds, edges)
    columns: list[list[str]] = [[] for _ in range(max(column.values(), default=-1) + 1)]
    for nid in node_ids:
        columns[column[nid]].append(nid)
    neighbours: dict[str, list[str]] = defaultdict(list)
    for edge in edges:
        neighbours[edge.source].append(edge.target)
        neighbours[edge.target].append(edge.source)

    best = [list(ids) for ids in columns]
    fewest = crossings(best, edges)
    for _ in range(SWEEPS):
        if fewest == 0:
            break
        for forward in (True, False):
            _sweep(columns, neighbours, column, forward)
            count = crossings(columns, edges)
            if count < fewest:
                fewest, best = count, [list(ids) for ids in columns]
    return Layout(tuple(tuple(ids) for ids in best), tuple(edges))
