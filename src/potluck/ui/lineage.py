"""The lineage graph of a project: data sources and entities -> views -> on-demand views -> services.

Node ids are `kind:name`. A view's sources are embedded in its definition, so a source appears as a
node even when it was not applied as an object of its own; a service or an on-demand view that names
a view missing from the registry has no edge to it (the registry would not accept that on apply).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from potluck.definitions import (
    DataSource,
    Definition,
    Entity,
    FeatureService,
    FeatureView,
    LabelView,
    OnDemandFeatureView,
    StreamFeatureView,
)

NODE_KINDS = (
    "entity",
    "data_source",
    "feature_view",
    "stream_feature_view",
    "label_view",
    "on_demand_feature_view",
    "feature_service",
)


@dataclass(frozen=True)
class LineageNode:
    id: str  # "kind:name"
    kind: str
    name: str


@dataclass(frozen=True)
class LineageEdge:
    source: str  # node id the data comes from
    target: str  # node id it goes to


@dataclass(frozen=True)
class LineageGraph:
    nodes: tuple[LineageNode, ...]
    edges: tuple[LineageEdge, ...]

    def node(self, node_id: str) -> LineageNode | None:
        return next((n for n in self.nodes if n.id == node_id), None)

    def neighbourhood(self, node_id: str) -> LineageGraph:
        """The part of the graph upstream and downstream of one node (the node itself included)."""
        keep = {node_id}
        for forward in (True, False):
            frontier = [node_id]
            while frontier:
                current = frontier.pop()
                for edge in self.edges:
                    here, there = (edge.source, edge.target) if forward else (edge.target, edge.source)
                    if here == current and there not in keep:
                        keep.add(there)
                        frontier.append(there)
        return LineageGraph(
            tuple(n for n in self.nodes if n.id in keep),
            tuple(e for e in self.edges if e.source in keep and e.target in keep),
        )


def node_id(kind: str, name: str) -> str:
    return f"{kind}:{name}"


def _view_kind(view: FeatureView) -> str:
    if isinstance(view, StreamFeatureView):
        return "stream_feature_view"
    if isinstance(view, LabelView):
        return "label_view"
    return "feature_view"


def _view_sources(view: FeatureView) -> list[DataSource]:
    """The source of a view and the batch source behind it (push and stream sources have one)."""
    sources = [view.source]
    batch = getattr(view.source, "batch_source", None)
    if isinstance(batch, DataSource):
        sources.append(batch)
    return sources


def build_lineage(objects: Iterable[Definition]) -> LineageGraph:
    """The lineage graph of registry objects (entities, sources, views of every kind, services)."""
    objs = list(objects)
    nodes: dict[str, LineageNode] = {}
    edges: dict[tuple[str, str], LineageEdge] = {}

    def add_node(kind: str, name: str) -> str:
        nid = node_id(kind, name)
        nodes.setdefault(nid, LineageNode(nid, kind, name))
        return nid

    def add_edge(source: str, target: str) -> None:
        edges.setdefault((source, target), LineageEdge(source, target))

    for obj in objs:
        if isinstance(obj, Entity):
            add_node("entity", obj.name)
        elif isinstance(obj, DataSource):
            add_node("data_source", obj.name)
        elif isinstance(obj, FeatureView):
            add_node(_view_kind(obj), obj.name)
        elif isinstance(obj, OnDemandFeatureView):
            add_node("on_demand_feature_view", obj.name)
        elif isinstance(obj, FeatureService):
            add_node("feature_service", obj.name)

    view_kinds = ("feature_view", "stream_feature_view", "label_view", "on_demand_feature_view")
    views = {n.name: n.id for n in nodes.values() if n.kind in view_kinds}  # views share one namespace
    entities = {n.name: n.id for n in nodes.values() if n.kind == "entity"}

    for obj in objs:
        if isinstance(obj, FeatureView):
            target = node_id(_view_kind(obj), obj.name)
            for source in _view_sources(obj):
                add_edge(add_node("data_source", source.name), target)
            for entity in obj.entity_names:
                if entity in entities:
                    add_edge(entities[entity], target)
        elif isinstance(obj, OnDemandFeatureView):
            target = node_id("on_demand_feature_view", obj.name)
            for projection in obj.source_projections:
                if projection.name in views:
                    add_edge(views[projection.name], target)
            for request in obj.request_sources:
                add_edge(add_node("data_source", request.name), target)
        elif isinstance(obj, FeatureService):
            target = node_id("feature_service", obj.name)
            for view_name in obj.feature_view_names:
                if view_name in views:
                    add_edge(views[view_name], target)

    order = {kind: i for i, kind in enumerate(NODE_KINDS)}
    sorted_nodes = tuple(sorted(nodes.values(), key=lambda n: (order[n.kind], n.name)))
    sorted_edges = tuple(sorted(edges.values(), key=lambda e: (e.source, e.target)))
    return LineageGraph(sorted_nodes, sorted_edges)
