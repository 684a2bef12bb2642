"""Turning resolved feature views into what the stores need (ViewQuery, OnlineView)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING

from potluck.aggregation.rule import micros
from potluck.definitions import ConflictPolicy, Definition, FeatureView, LabelView, OnDemandFeatureView
from potluck.definitions.field import Field
from potluck.definitions.sources import FileSource, PostgreSQLSource, batch_source
from potluck.definitions.spark_source import SparkSource
from potluck.offline.protocol import LabelRule, SourceTable, ViewQuery, WindowedFeature
from potluck.online.protocol import OnlineView
from potluck.repo.sources import resolve_source_path
from potluck.retrieval.references import ViewSelection

if TYPE_CHECKING:
    from potluck.aggregation.online_tiles import TileSpec


def source_table(view: FeatureView, repo_path: str) -> SourceTable:
    source = batch_source(view.source)
    if view.aggregations:
        # Aggregations read the events' own time (a stream view's `timestamp_field`), and the
        # batch file's column names.
        names = [*view.join_keys, *(f.name for f in view.input_fields)]
        timestamp, column_for = view.event_timestamp_field, source.column_for
    else:
        names = [*view.join_keys, *view.feature_names]
        timestamp, column_for = source.timestamp_field, view.source.column_for
    columns = {name: column_for(name) for name in names}
    if isinstance(source, PostgreSQLSource):  # a table or query of the offline database
        return SourceTable(
            name=source.name,
            path="",
            file_format="",
            timestamp_column=timestamp,
            created_timestamp_column=source.created_timestamp_column,
            columns=columns,
            table=source.table,
            query=source.query,
        )
    if isinstance(source, SparkSource):
        kind = source.relation_kind
        return SourceTable(
            name=source.name,
            path=resolve_source_path(source.path, repo_path) if kind == "path" else "",
            file_format=source.file_format or "parquet",
            timestamp_column=timestamp,
            created_timestamp_column=source.created_timestamp_column,
            columns=columns,
            table=source.table,
            query=source.query if kind == "query" else "",
            date_partition_column=source.date_partition_column,
            date_partition_format=source.date_partition_column_format,
        )
    assert isinstance(source, FileSource)
    return SourceTable(
        name=source.name,
        path=resolve_source_path(source.path, repo_path),
        file_format=source.file_format,
        timestamp_column=timestamp,
        created_timestamp_column=source.created_timestamp_column,
        columns=columns,
    )


def windowed_features(view: FeatureView, features: tuple[Field, ...]) -> tuple[WindowedFeature, ...]:
    """How each selected output of an aggregation view is computed (empty for a plain view)."""
    if not view.aggregations:
        return ()
    inputs = {f.name: f for f in view.input_fields}
    by_output = {a.output_name: a for a in view.aggregations}
    out = []
    for f in features:
        agg = by_output[f.name]
        window, hop = agg.time_window, agg.hop
        out.append(
            WindowedFeature(
                input=inputs[agg.column],
                function=agg.canonical_function,
                window_us=None if window is None else micros(window),
                hop_us=None if hop is None else micros(hop),
            )
        )
    return tuple(out)


def view_query(selection: ViewSelection, repo_path: str) -> ViewQuery:
    view = selection.view
    return ViewQuery(
        view_name=view.name,
        source=source_table(view, repo_path),
        join_keys=tuple(view.join_keys),
        features=selection.features,
        output_names=selection.output_names,
        ttl=view.ttl,
        labels=label_rule(view),
        aggregations=windowed_features(view, selection.features),
    )


def label_rule(view: FeatureView) -> LabelRule | None:
    """How training data resolves a label view's labelers; None for last write wins (a plain view's join)."""
    if not isinstance(view, LabelView) or view.conflict_policy is ConflictPolicy.LAST_WRITE_WINS:
        return None
    return LabelRule(view.conflict_policy.value, view.labeler_field, view.labeler_priorities)


def full_view_query(view: FeatureView, repo_path: str) -> ViewQuery:
    """All of a view's features under their own names (materialization)."""
    return view_query(ViewSelection(view, tuple(view.features), tuple(view.feature_names)), repo_path)


def tile_spec(view: FeatureView) -> TileSpec | None:
    """The tile layout of a view with aggregations (None for a plain view)."""
    aggregations = getattr(view, "aggregations", None)
    if not aggregations:
        return None
    from potluck.aggregation.online_tiles import TileAggregation, TileSpec
    from potluck.aggregation.rule import effective_hop, output_name

    return TileSpec(
        tuple(
            TileAggregation.of(
                a.column, a.function, a.time_window, effective_hop(a.time_window, a.slide_interval), output_name(a)
            )
            for a in aggregations
        )
    )


def online_view(view: FeatureView, project: str) -> OnlineView:
    spec = tile_spec(view)
    if spec is not None:
        by_name = {f.name: f for f in view.features}
        return OnlineView(
            project=project,
            name=view.name,
            join_keys=tuple(view.join_keys),
            key_fields=tuple(view.entity_columns),
            features=tuple(by_name[a.output] for a in spec.aggregations),
            ttl=timedelta(0),  # tiles expire by the retention rule, not by ttl
            generation=view.online_generation,
            tiles=spec,
        )
    return OnlineView(
        project=project,
        name=view.name,
        join_keys=tuple(view.join_keys),
        key_fields=tuple(view.entity_columns),
        features=tuple(view.features),
        ttl=view.ttl if view.ttl > timedelta(0) else timedelta(0),
        generation=view.online_generation,
    )


def stored_ttl(view: OnDemandFeatureView, views: Mapping[str, Definition]) -> timedelta:
    """How old a stored on-demand row may be: the smallest non-zero ttl of its source views (zero: no limit)."""
    ttls = [
        v.ttl
        for p in view.source_projections
        if isinstance(v := views.get(p.name), FeatureView) and v.ttl > timedelta(0)
    ]
    return min(ttls, default=timedelta(0))


def stored_view(view: OnDemandFeatureView, project: str, ttl: timedelta = timedelta(0)) -> OnlineView:
    """The online table of an on-demand view stored at write time (`write_to_online_store=True`)."""
    return OnlineView(
        project=project,
        name=view.name,
        join_keys=tuple(view.join_keys),
        key_fields=tuple(view.entity_columns),
        features=tuple(view.features),
        ttl=ttl,
        generation=view.online_generation,
    )


def any_online_view(view: FeatureView | OnDemandFeatureView, project: str) -> OnlineView:
    """The online table of a regular view or of a stored on-demand view (for creating and dropping it)."""
    return online_view(view, project) if isinstance(view, FeatureView) else stored_view(view, project)
