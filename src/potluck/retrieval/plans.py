"""Turning resolved feature views into what the stores need (ViewQuery, OnlineView)."""

from __future__ import annotations

from datetime import timedelta

from potluck.definitions import ConflictPolicy, FeatureView, LabelView
from potluck.definitions.sources import batch_file_source
from potluck.offline.protocol import LabelRule, SourceTable, ViewQuery
from potluck.online.protocol import OnlineView
from potluck.repo.sources import resolve_source_path
from potluck.retrieval.references import ViewSelection


def source_table(view: FeatureView, repo_path: str) -> SourceTable:
    source = batch_file_source(view.source)
    names = [*view.join_keys, *view.feature_names]
    return SourceTable(
        name=source.name,
        path=resolve_source_path(source.path, repo_path),
        file_format=source.file_format,
        timestamp_column=source.timestamp_field,
        created_timestamp_column=source.created_timestamp_column,
        columns={name: view.source.column_for(name) for name in names},
    )


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
    )


def label_rule(view: FeatureView) -> LabelRule | None:
    """How training data resolves a label view's labelers; None for last write wins (a plain view's join)."""
    if not isinstance(view, LabelView) or view.conflict_policy is ConflictPolicy.LAST_WRITE_WINS:
        return None
    return LabelRule(view.conflict_policy.value, view.labeler_field, view.labeler_priorities)


def full_view_query(view: FeatureView, repo_path: str) -> ViewQuery:
    """All of a view's features under their own names (materialization)."""
    return view_query(ViewSelection(view, tuple(view.features), tuple(view.feature_names)), repo_path)


def online_view(view: FeatureView, project: str) -> OnlineView:
    return OnlineView(
        project=project,
        name=view.name,
        join_keys=tuple(view.join_keys),
        key_fields=tuple(view.entity_columns),
        features=tuple(view.features),
        ttl=view.ttl if view.ttl > timedelta(0) else timedelta(0),
        generation=view.online_generation,
    )
