"""Checking a set of definitions for consistency and completing what can be inferred.

Runs before plan and apply: every view's entities and source exist, every declared field is a
column of the source with a compatible type, feature services name existing views and features.
Views that declare no features get them from the source's columns; entity columns get their
type from the schema, the entity's `value_type`, or the source, in that order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from potluck.definitions import (
    VIEW_KINDS,
    DataSource,
    Definition,
    Entity,
    FeatureService,
    FeatureView,
    Field,
    OnDemandFeatureView,
    Project,
    PushSource,
    StreamFeatureView,
)
from potluck.definitions.errors import DefinitionError, RepositoryError, suggestion
from potluck.definitions.feature_view import FeatureViewProjection
from potluck.definitions.stream_sources import KafkaSource, RedisStreamSource
from potluck.definitions.types import PotluckType, dtype_from_arrow, dtype_from_value_type, is_compatible
from potluck.registry.snapshot import RegistrySnapshot

if TYPE_CHECKING:
    import pyarrow as pa

SchemaOf = Callable[[DataSource], "pa.Schema | None"]  # None: the source has no rows yet


def _label(obj: Definition, where: Callable[[Definition], str]) -> str:
    return f"{where(obj)}: {type(obj).__name__} '{obj.name}'"


def resolve_definitions(
    objects: Sequence[Definition],
    existing: RegistrySnapshot | None,
    schema_of: SchemaOf,
    where: Callable[[Definition], str] = lambda _: "<sdk>",
    project: str | None = None,
) -> list[Definition]:
    """Validate `objects` (against themselves and `existing`) and return them completed.

    A `Project` among them must be named `project` (feature_store.yaml's project), and there is at most one.
    """
    by_kind: dict[str, dict[str, Definition]] = {}
    for obj in objects:
        bucket = by_kind.setdefault(obj.kind, {})
        if obj.name in bucket and bucket[obj.name] != obj:
            raise RepositoryError(f"{_label(obj, where)} is defined twice with different content")
        bucket[obj.name] = obj

    def known(kind: str) -> dict[str, Definition]:
        merged = dict(existing.of_kind(kind)) if existing else {}
        merged.update(by_kind.get(kind, {}))
        return merged

    projects = [o for o in objects if isinstance(o, Project)]
    for obj in projects:
        if project is not None and obj.name != project:
            raise RepositoryError(
                f"{_label(obj, where)} is named '{obj.name}' but feature_store.yaml's project is "
                f"'{project}'; give both the same name"
            )
    if len({p.name for p in projects}) > 1:
        raise RepositoryError(f"more than one Project is defined ({', '.join(_label(p, where) for p in projects)})")
    entities = known(Entity.kind)
    sources = dict(by_kind.get(DataSource.kind, {}))
    resolved: list[Definition] = [o for o in objects if o.kind in (Project.kind, Entity.kind, DataSource.kind)]
    views: dict[str, FeatureView] = {}
    for obj in objects:
        if isinstance(obj, FeatureView):
            label = _label(obj, where)
            if obj.name in views and views[obj.name].kind != obj.kind:
                raise RepositoryError(
                    f"{label}: a {views[obj.name].kind} has the same name; feature views, stream feature views "
                    "and label views share one namespace, so give them distinct names"
                )
            view = _resolve_view(obj, entities, schema_of, label)
            _add_source(view.source, "source", label, sources, resolved)
            views[view.name] = view
            resolved.append(view)
    all_views: dict[str, Definition] = {}
    for kind in VIEW_KINDS:
        all_views.update(known(kind))
    for name, view in views.items():
        for kind in VIEW_KINDS:  # a view that changed kind replaces the old one under its new kind
            if kind != view.kind and existing is not None and name in existing.of_kind(kind):
                raise RepositoryError(
                    f"{_label(view, where)}: the registry holds a {kind} named '{name}' (views of every kind share one "
                    "namespace); delete it first "
                    f"(potluck delete {name} --kind {kind}) or rename the view"
                )
    all_views.update(views)
    on_demand = {**known(OnDemandFeatureView.kind)}
    for obj in objects:
        if isinstance(obj, OnDemandFeatureView):
            odfv = _resolve_on_demand(obj, all_views, entities, _label(obj, where))
            for src in odfv.request_sources:
                _add_source(src, "request source", _label(obj, where), sources, resolved)
            on_demand[odfv.name] = odfv
            resolved.append(odfv)
    servable: dict[str, Definition] = {**all_views, **on_demand}
    for obj in objects:
        if isinstance(obj, FeatureService):
            resolved.append(_check_service(obj, servable, _label(obj, where)))
    return resolved


def _resolve_on_demand(
    odfv: OnDemandFeatureView, views: dict[str, Definition], entities: dict[str, Definition], label: str
) -> OnDemandFeatureView:
    """Check an on-demand view's sources exist and complete its source selections with their types."""
    if odfv.name in views:
        raise RepositoryError(
            f"{label} has the name of a feature view; on-demand and regular feature views need distinct names"
        )
    for name in odfv.entity_names:
        if name not in entities:
            raise RepositoryError(f"{label} uses entity '{name}', which is not defined. {suggestion(name, entities)}")
    projections = []
    for proj in odfv.source_projections:
        view = views.get(proj.name)
        if not isinstance(view, FeatureView):
            raise RepositoryError(
                f"{label} uses feature view '{proj.name}' as a source, which is not defined. "
                f"{suggestion(proj.name, views)}"
            )
        by_name = {f.name: f for f in view.features}
        wanted = [f.name for f in proj.features] or view.feature_names
        for name in wanted:
            if name not in by_name:
                raise RepositoryError(
                    f"{label} uses feature '{proj.name}:{name}', which the view does not have. "
                    f"{suggestion(name, by_name)}"
                )
        projections.append(FeatureViewProjection(proj.name, [by_name[n] for n in wanted], proj.name_alias))
    spec = odfv.to_spec()
    spec["sources"] = [
        {
            "type": "feature_view",
            "feature_view_name": p.name,
            "name_alias": p.name_alias,
            "features": [f.to_spec() for f in p.features],
        }
        for p in projections
    ] + [{"type": "request", "source": r.to_spec()} for r in odfv.request_sources]
    spec.pop("entity_columns", None)
    if odfv.write_to_online_store:
        keys = _stored_keys(odfv, [views[p.name] for p in projections], entities, label)
        spec["entity_columns"] = [f.to_spec() for f in keys]
    if spec == odfv.to_spec():
        return odfv
    completed = OnDemandFeatureView.from_spec(spec)
    completed.udf = odfv.udf
    return completed


def _stored_keys(
    odfv: OnDemandFeatureView, sources: Sequence[Definition], entities: dict[str, Definition], label: str
) -> list[Field]:
    """The typed join keys of a view stored at write time: its source views', which must all agree."""
    views = [v for v in sources if isinstance(v, FeatureView)]
    what = "write_to_online_store=True"
    for view in views:
        if not view.online:
            raise RepositoryError(
                f"{label}: {what} needs its source feature view '{view.name}' online (online=True): its outputs "
                "are computed from the sources' online rows"
            )
        if getattr(view, "aggregations", ()):
            raise RepositoryError(
                f"{label}: {what} cannot read the windowed aggregations of '{view.name}' (a window's value changes "
                "as time passes, not only when rows are written); compute it at read time (write_to_online_store=False)"
            )
    declared: list[Field] = []
    for name in odfv.entity_names:
        entity = entities[name]
        assert isinstance(entity, Entity)
        if entity.value_type.name in ("UNKNOWN", "NULL"):
            raise RepositoryError(f"{label}: {what} needs a value_type on its entity '{name}' (the key's type)")
        declared.append(Field(name=entity.join_key, dtype=dtype_from_value_type(entity.value_type)))
    if not views:
        if not declared:
            raise RepositoryError(
                f"{label}: {what} needs the keys of its stored rows: give it a feature view source or entities=[...]"
            )
        return declared
    first = views[0]
    keys = {f.name: f for f in first.entity_columns}
    for view in views[1:]:
        other = {f.name: f for f in view.entity_columns}
        if set(other) != set(keys):
            raise RepositoryError(
                f"{label}: {what} needs source feature views with the same join keys, but '{first.name}' has "
                f"{sorted(keys)} and '{view.name}' has {sorted(other)}; split it into one view per key"
            )
        for name, f in other.items():
            if f.dtype != keys[name].dtype:
                raise RepositoryError(
                    f"{label}: join key '{name}' is {keys[name].dtype.name} in '{first.name}' but {f.dtype.name} "
                    f"in '{view.name}'; give it one type"
                )
    if declared and {f.name for f in declared} != set(keys):
        raise RepositoryError(
            f"{label}: its entities have join keys {sorted(f.name for f in declared)} but its source feature views "
            f"have {sorted(keys)}; make them agree or leave out entities"
        )
    return [keys[k] for k in first.join_keys]


def _resolve_view(view: FeatureView, entities: dict[str, Definition], schema_of: SchemaOf, label: str) -> FeatureView:
    for name in view.entity_names:
        if name not in entities:
            raise RepositoryError(
                f"{label} uses entity '{name}', which is not defined. Define it (Entity(name='{name}', ...)) "
                f"in the repository. {suggestion(name, entities)}"
            )
    source = view.source
    schema = schema_of(source)
    table = _batch_table(source)
    columns: dict[str, pa.DataType] = {}
    if schema is not None:
        columns = {f.name: f.type for f in schema}
        where = getattr(table, "path", source.name)
        needed = [view.event_timestamp_field, table.timestamp_field, table.created_timestamp_column] + [
            table.column_for(k) for k in view.join_keys
        ]
        for column in [c for c in needed if c]:
            if column not in columns:
                raise RepositoryError(
                    f"{label}: column '{column}' is missing from source '{source.name}' ({where}). "
                    f"{suggestion(column, columns)}"
                )
        for f in view.input_fields:
            col = table.column_for(f.name)
            if col not in columns:
                raise RepositoryError(
                    f"{label}: field '{f.name}' is not a column of source '{source.name}' ({where}). "
                    f"{suggestion(col, columns)}"
                )
            if not is_compatible(f.dtype, columns[col]):
                raise RepositoryError(
                    f"{label}: field '{f.name}' is declared {f.dtype.name} but column '{col}' of source "
                    f"'{source.name}' holds {columns[col]}; fix the Field dtype or the data"
                )
    elif not isinstance(source, (PushSource, KafkaSource, RedisStreamSource)):
        raise RepositoryError(f"{label}: source '{source.name}' has no data at {getattr(source, 'path', '?')}")
    features = list(view.features)
    if not features:
        if schema is None:
            raise RepositoryError(f"{label}: declare its features in 'schema'; they cannot be inferred")
        features = _infer_features(view, columns, label)
    key_fields = []
    for key, entity_name in zip(view.join_keys, view.entity_names, strict=True):
        declared = next((f for f in view.entity_columns if f.name == key), None)
        if declared is None:
            declared = Field(name=key, dtype=_key_type(key, entity_name, entities, table, columns, label))
        key_fields.append(declared)
    if features == view.features and key_fields == view.entity_columns:
        return view
    spec = view.to_spec()
    spec["features"] = [f.to_spec() for f in features]
    spec["entity_columns"] = [f.to_spec() for f in key_fields]
    try:
        completed = type(view).from_spec(spec)
    except DefinitionError as err:  # a rule that holds only once the inferred features are known
        own = f"{type(view).__name__} '{view.name}': "
        message = str(err)
        raise RepositoryError(f"{label}: {message.removeprefix(own)}") from None
    if isinstance(completed, StreamFeatureView) and isinstance(view, StreamFeatureView):
        completed.udf = view.udf
    completed.version = view.version  # which applied definition to make current: not part of the spec
    return completed


def _batch_table(source: DataSource) -> DataSource:
    """The source whose files training data reads: a stream source's batch source, else the source."""
    batch = getattr(source, "batch_source", None)
    return batch if isinstance(batch, DataSource) else source


def _key_type(
    key: str,
    entity_name: str,
    entities: dict[str, Definition],
    source: DataSource,
    columns: dict[str, pa.DataType],
    label: str,
) -> PotluckType:
    entity = entities[entity_name]
    assert isinstance(entity, Entity)
    if entity.value_type.name not in ("UNKNOWN", "NULL"):
        return dtype_from_value_type(entity.value_type)
    col = source.column_for(key)
    found = dtype_from_arrow(columns[col]) if col in columns else None
    if found is None:
        raise RepositoryError(
            f"{label}: the type of join key '{key}' is unknown; set value_type on entity "
            f"'{entity_name}' or declare Field(name='{key}', ...) in the view's schema"
        )
    return found


def _infer_features(view: FeatureView, columns: dict[str, pa.DataType], label: str) -> list[Field]:
    source = view.source
    skip = {source.timestamp_field, source.created_timestamp_column} | {source.column_for(k) for k in view.join_keys}
    inverse = dict(source.field_mapping.items())
    features = []
    for col, arrow_type in columns.items():
        if col in skip:
            continue
        dtype = dtype_from_arrow(arrow_type)
        if dtype is None:
            continue
        features.append(Field(name=inverse.get(col, col), dtype=dtype))
    if not features:
        raise RepositoryError(f"{label}: its source has no feature columns to infer a schema from")
    return features


def _check_log_partitions(service: FeatureService, views: dict[str, Definition], label: str) -> None:
    """Logs may be partitioned (after the log date) by the join keys of the service's views only."""
    assert service.logging_config is not None
    keys: list[str] = []
    for view_name in service.feature_view_names:
        view = views[view_name]
        if not isinstance(view, FeatureView):
            continue
        keys.extend(k for k in view.join_keys if k not in keys)
    allowed = ["__log_date", *keys]
    for column in service.logging_config.destination.partition_by or []:
        if column not in allowed:
            raise RepositoryError(
                f"{label}: logging_config partition_by column '{column}' is not a join key of its views; "
                f"use one of {allowed}"
            )


def _check_service(service: FeatureService, views: dict[str, Definition], label: str) -> FeatureService:
    """Check a service's selections; a selection of a whole view lists all of the view's features."""
    spec = service.to_spec()
    for selection, (view_name, feature_names, _) in zip(spec["features"], service.selections, strict=True):
        view = views.get(view_name)
        if view is None:
            raise RepositoryError(
                f"{label} uses feature view '{view_name}', which is not defined. {suggestion(view_name, views)}"
            )
        assert isinstance(view, (FeatureView, OnDemandFeatureView))
        for name in feature_names:
            if name not in view.feature_names:
                raise RepositoryError(
                    f"{label} uses feature '{view_name}:{name}', which the view does not have. "
                    f"{suggestion(name, view.feature_names)}"
                )
        if not feature_names:
            selection["features"] = view.feature_names
    if service.logging_config is not None:
        _check_log_partitions(service, views, label)
    return service if spec == service.to_spec() else FeatureService.from_spec(spec)


def _add_source(
    src: DataSource, what: str, label: str, sources: dict[str, Definition], resolved: list[Definition]
) -> None:
    """Record a source a view reads; another source under the same name is an error naming both."""
    if src.name in sources and sources[src.name] != src:
        raise RepositoryError(
            f"{label}: its {what} '{src.name}' differs from another data source of the same name; "
            "give the sources distinct names"
        )
    if src.name not in sources:
        sources[src.name] = src
        resolved.append(src)
