"""Layered layout of the lineage graph: which column each node stands in, and its order there.

Columns follow the kind (entities and data sources | views | on-demand views | feature services); a
node whose input stands in its own column or further right moves one column right of it (an
on-demand view over another), and empty columns close up. Within the columns, barycenter sweeps
(left to right, then right to left) move each node towards the mean position of its neighbours in
the columns already ordered; the order with the fewest crossings seen, the input order included, wins.
Crossings are counted between edges joining the same pair of columns.
"""

from __future__ import annotations

import bisect
import functools
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
# Pairs of sweeps: up to 8 on small graphs, fewer as the edges grow (on a graph of 1400 edges a
# pair costs about a third of drawing it, and the third pair removes another 5% of the crossings).
MOST_SWEEPS, FEWEST_SWEEPS = 8, 2
SWEEP_BUDGET = 4000  # edges times pairs of sweeps


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
        after = layer[current] + 1
        for target in targets[current]:
            layer[target] = max(layer[target], after)
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    used = sorted(set(layer.values()))  # nodes on a cycle keep their kind's column
    compact = {column: i for i, column in enumerate(used)}
    return {nid: compact[column] for nid, column in layer.items()}


def _inversions(pairs: list[tuple[int, int]]) -> int:
    """How many pairs (a, b), once sorted, have a later pair with a smaller b (b kept in a sorted list)."""
    pairs.sort()
    seen: list[int] = []
    insert, above = seen.insert, bisect.bisect_right
    count = 0
    for i, (_, b) in enumerate(pairs):
        at = above(seen, b)
        count += i - at
        insert(at, b)
    return count


def _column_pairs(column: dict[str, int], edges: Sequence[LineageEdge]) -> list[tuple[str, str]]:
    """Each edge as (left end, right end); edges within one column left out (they cross nothing here)."""
    pairs = []
    for edge in edges:
        source, target = column[edge.source], column[edge.target]
        if source < target:
            pairs.append((edge.source, edge.target))
        elif target < source:
            pairs.append((edge.target, edge.source))
    return pairs


def _by_column_pair(column: dict[str, int], pairs: Sequence[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    groups: dict[tuple[int, int], list[tuple[str, str]]] = defaultdict(list)
    for left, right in pairs:
        groups[column[left], column[right]].append((left, right))
    return [groups[key] for key in sorted(groups)]


def _count(groups: Sequence[Sequence[tuple[str, str]]], position: dict[str, int]) -> int:
    return sum(_inversions([(position[left], position[right]) for left, right in group]) for group in groups)


def crossings(columns: Sequence[Sequence[str]], edges: Sequence[LineageEdge]) -> int:
    """Crossings between edges that join the same two columns, for nodes ordered as in `columns`."""
    column = {nid: c for c, ids in enumerate(columns) for nid in ids}
    position = {nid: i for ids in columns for i, nid in enumerate(ids)}
    return _count(_by_column_pair(column, _column_pairs(column, edges)), position)


def _sweep(columns: list[list[str]], sides: tuple[dict[str, list[str]], dict[str, list[str]]], forward: bool) -> None:
    """Reorder each column by the mean share of its neighbours in the columns ordered before it."""
    near = sides[0] if forward else sides[1]
    share = {nid: (i + 0.5) / len(ids) for ids in columns for i, nid in enumerate(ids)}
    for c in range(1, len(columns)) if forward else range(len(columns) - 2, -1, -1):
        keys = []
        for i, nid in enumerate(columns[c]):
            others = near[nid]
            keys.append((sum(map(share.__getitem__, others)) / len(others) if others else share[nid], i, nid))
        keys.sort()
        columns[c] = [nid for _, _, nid in keys]
        size = len(keys)
        share.update({nid: (i + 0.5) / size for i, nid in enumerate(columns[c])})


def layout(graph: LineageGraph) -> Layout:
    """Columns and orders for the graph's nodes (the first of duplicate ids; edges to unknown ids left out).

    The layouts of the last graphs seen are kept: a registry's graph changes rarely and the whole
    graph's page is drawn often. A graph built with lists (unhashable) is laid out every time.
    """
    try:
        return _kept_layout(graph)
    except TypeError:
        return _layout(graph)


@functools.lru_cache(maxsize=16)
def _kept_layout(graph: LineageGraph) -> Layout:
    return _layout(graph)


def _layout(graph: LineageGraph) -> Layout:
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
    pairs = _column_pairs(column, edges)
    before: dict[str, list[str]] = defaultdict(list)  # neighbours in columns to the left
    after: dict[str, list[str]] = defaultdict(list)
    for left, right in pairs:
        after[left].append(right)
        before[right].append(left)
    sides = (before, after)
    groups = _by_column_pair(column, pairs)

    def count() -> int:
        return _count(groups, {nid: i for ids in columns for i, nid in enumerate(ids)})

    best = [list(ids) for ids in columns]
    fewest = count()
    for _ in range(max(FEWEST_SWEEPS, min(MOST_SWEEPS, SWEEP_BUDGET // max(len(edges), 1)))):
        if fewest == 0:
            break
        _sweep(columns, sides, forward=True)
        _sweep(columns, sides, forward=False)
        now = count()
        if now >= fewest:
            break  # a pair of sweeps that finds nothing better rarely leads anywhere better
        fewest, best = now, [list(ids) for ids in columns]
    return Layout(tuple(tuple(ids) for ids in best), tuple(edges))
