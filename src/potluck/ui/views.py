"""The data of each page as plain JSON-able values: the API answers them, the templates render them."""

from __future__ import annotations

from typing import Any

from potluck.definitions import FeatureService, FeatureView, OnDemandFeatureView
from potluck.ui.data import (
    SECTION_OF_KIND,
    SECTIONS,
    Catalog,
    CatalogObject,
    FeatureStatistics,
    Monitoring,
    UiData,
    age_text,
)
from potluck.ui.lineage import LineageGraph

RECENT_CHANGES = 15


def lineage_json(graph: LineageGraph) -> dict[str, Any]:
    return {
        "nodes": [{"id": n.id, "kind": n.kind, "name": n.name} for n in graph.nodes],
        "edges": [{"from": e.source, "to": e.target} for e in graph.edges],
    }


def overview(data: UiData) -> dict[str, Any]:
    catalog = data.catalog()
    monitoring = data.monitoring()
    recent = [
        {**item.to_json(), "kind": kind, "name": name, "section": SECTION_OF_KIND.get(kind)}
        for item, kind, name in catalog.recent[:RECENT_CHANGES]
    ]
    return {
        "project": catalog.project,
        "registry_version": catalog.version,
        "counts": catalog.counts(),
        "recently_changed": recent,
        "stale_views": [
            {**s.to_json(), "age": age_text(s.age)} for s in monitoring.stale() if catalog.get("feature-views", s.view)
        ],
        "drifting_features": [
            {
                "feature_view": view,
                "feature": feature,
                "checked_at": point.ran_at.isoformat(),
                "baseline": point.baseline,
                **point.metrics,
            }
            for view, feature, point in monitoring.drifting()
        ],
        "monitoring_read_at": monitoring.read_at.isoformat(),
        "warnings": catalog.warnings + monitoring.problems + _overdue(data),
    }


def _overdue(data: UiData) -> list[str]:
    took = data.monitoring_overdue()
    if took is None:
        return []
    read_at = data.monitoring().read_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    return [
        f"Freshness, statistics and drift are as read at {read_at}: the registry's monitoring tables "
        f"have not answered a newer read for {took:.0f} s."
    ]


def listing(catalog: Catalog, section: str) -> list[dict[str, Any]]:
    return [obj.summary() for obj in catalog.objects[section].values()]


def _fields(fields: Any) -> list[dict[str, Any]]:
    return [{"name": f.name, "dtype": str(f.dtype), "description": getattr(f, "description", "")} for f in fields]


def definition(data: UiData, obj: CatalogObject) -> dict[str, Any]:
    """What the object is: the common metadata, its schema and the kind's own settings."""
    out: dict[str, Any] = {**obj.summary(), "spec": obj.spec}
    found = obj.definition
    if isinstance(found, FeatureView):
        out.update(
            entities=found.entities,
            join_keys=found.join_keys,
            ttl_seconds=found.ttl.total_seconds(),
            online=found.online,
            source=found.source.name,
            entity_columns=_fields(found.entity_columns),
            schema=_fields(found.features),
        )
    elif isinstance(found, OnDemandFeatureView):
        out.update(
            entities=found.entities,
            mode=found.mode,
            schema=_fields(found.features),
            inputs=[p.name for p in found.source_projections] + [r.name for r in found.request_sources],
            request_fields=_fields(found.request_fields),
            function=found.udf_location.qualname,
            function_file=found.udf_location.file,
            function_source=data.function_source(found),
        )
    elif isinstance(found, FeatureService):
        out.update(
            feature_views=found.feature_view_names,
            features=found.feature_references(),
        )
    elif obj.kind == "data_source" and found is not None:
        out.update(source_type=getattr(found, "source_type", ""), timestamp_field=getattr(found, "timestamp_field", ""))
        schema = getattr(found, "schema", None)
        if schema:
            out["schema"] = _fields(schema)
    elif obj.kind == "entity" and found is not None:
        out.update(join_key=getattr(found, "join_key", ""), value_type=str(getattr(found, "value_type", "")))
    return out


def freshness(monitoring: Monitoring, name: str) -> dict[str, Any] | None:
    found = monitoring.staleness.get(name)
    if found is None:
        return None
    return {**found.to_json(), "age": age_text(found.age)}


def statistics(monitoring: Monitoring, view: str) -> list[FeatureStatistics]:
    return monitoring.statistics.get(view, [])


def drift(monitoring: Monitoring, view: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for (v, feature), points in sorted(monitoring.drift.items()):
        if v == view:
            out[feature] = [
                {"checked_at": p.ran_at.isoformat(), "baseline": p.baseline, "drift": p.drift, **p.metrics}
                for p in points
            ]
    return out


def services_using(catalog: Catalog, view: str) -> list[str]:
    return [
        obj.name
        for obj in catalog.objects["feature-services"].values()
        if isinstance(obj.definition, FeatureService) and view in obj.definition.feature_view_names
    ]


def skew(monitoring: Monitoring, catalog: Catalog, obj: CatalogObject) -> list[dict[str, Any]]:
    """The latest skew report of the service, or of each service that reads the view."""
    services = [obj.name] if obj.kind == "feature_service" else services_using(catalog, obj.name)
    out = []
    for service in services:
        if service in monitoring.skew:
            at, report = monitoring.skew[service]
            features = report.get("features", [])
            if obj.kind != "feature_service":
                features = [f for f in features if f.get("view") == obj.name]
            out.append({"feature_service": service, "checked_at": at.isoformat(), **report, "features": features})
    return out


def _sample_value(dtype: object) -> str:
    name = str(dtype).lower()
    if "float" in name:
        return "1.0"
    if "int" in name:
        return "1001"
    if "bool" in name:
        return "True"
    return '"a"'


def _service_inputs(catalog: Catalog, service: FeatureService) -> dict[str, str]:
    """What a read of `service` takes: the join keys of its views and the request fields of its
    on-demand views (and of the views those read), each with a sample value."""
    inputs: dict[str, str] = {}
    pending, seen = list(service.feature_view_names), set()
    while pending:
        name = pending.pop(0)
        if name in seen:
            continue
        seen.add(name)
        view = catalog.get("feature-views", name)
        found = view.definition if view else None
        for key in getattr(found, "join_keys", []) or []:
            inputs.setdefault(key, "1001")
        if isinstance(found, OnDemandFeatureView):
            pending += [p.name for p in found.source_projections]
            for request in found.request_fields:
                inputs.setdefault(request.name, _sample_value(request.dtype))
    return inputs


def snippet(catalog: Catalog, service: FeatureService) -> dict[str, str]:
    """Python code reading the service online and for training, with what its reads take."""
    inputs = _service_inputs(catalog, service)
    rows = ", ".join(f'"{k}": {v}' for k, v in inputs.items()) or '"<join key>": 1001'
    columns = "".join(f'    "{k}": [{v}, {v}],\n' for k, v in inputs.items())
    online = (
        "from potluck import FeatureStore\n\n"
        'store = FeatureStore(repo_path=".")\n'
        f'service = store.get_feature_service("{service.name}")\n'
        f"features = store.get_online_features(features=service, entity_rows=[{{{rows}}}]).to_dict()\n"
    )
    historical = (
        "from datetime import datetime, timezone\n\n"
        "import pandas as pd\n"
        "from potluck import FeatureStore\n\n"
        'store = FeatureStore(repo_path=".")\n'
        "entity_df = pd.DataFrame({\n"
        f"{columns}"
        '    "event_timestamp": [datetime.now(timezone.utc)] * 2,\n'
        "})\n"
        f'service = store.get_feature_service("{service.name}")\n'
        "training = store.get_historical_features(entity_df=entity_df, features=service).to_df()\n"
    )
    return {"online": online, "historical": historical}


def object_json(data: UiData, section: str, name: str) -> dict[str, Any] | None:
    """An object's page as JSON: definition, lineage, history, and for views freshness, statistics,
    drift and skew; None when there is no such object."""
    catalog = data.catalog()
    obj = catalog.get(section, name)
    if obj is None:
        return None
    out: dict[str, Any] = {
        "kind": obj.kind,
        "name": obj.name,
        "definition": definition(data, obj),
        "lineage": lineage_json(catalog.lineage.neighbourhood(obj.id)),
        "history": [h.to_json() for h in catalog.history.get((obj.kind, obj.name), [])],
    }
    if section in {"feature-views", "feature-services"}:
        monitoring = data.monitoring()
        out["skew"] = skew(monitoring, catalog, obj)
    if section == "feature-views":
        monitoring = data.monitoring()
        out["freshness"] = freshness(monitoring, name)
        out["statistics"] = [s.to_json() for s in statistics(monitoring, name)]
        out["drift"] = drift(monitoring, name)
        out["monitoring_read_at"] = monitoring.read_at.isoformat()
    if isinstance(obj.definition, FeatureService):
        out["snippet"] = snippet(catalog, obj.definition)
    return out


def search_json(catalog: Catalog, query: str) -> list[dict[str, Any]]:
    return [
        {**obj.summary(), "section": obj.section, "matched_features": features}
        for obj, features in catalog.search(query)
    ]


__all__ = ["SECTIONS", "lineage_json", "object_json", "overview", "search_json"]
