"""The metadata a training-data job carries (`RetrievalJob.metadata`): what it was built from."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from potluck.definitions import FeatureService
from potluck.offline.protocol import EntityStats, RetrievalMetadata

if TYPE_CHECKING:
    from potluck.retrieval.on_demand import ResolvedRequest


def retrieval_metadata(
    features: Any,
    request: ResolvedRequest,
    entity: EntityStats | None,
    full_feature_names: bool,
    registry_version: int,
) -> RetrievalMetadata:
    """`features` as the caller gave them (a list, a FeatureService or its name), resolved as `request`."""
    refs = [f"{s.view.name}:{f.name}" for s in request.selections for f in s.features]
    refs += [f"{s.view.name}:{f.name}" for s in request.on_demand for f in s.features]
    join_keys: dict[str, None] = {}
    for selection in (*request.selections, *request.inputs):
        join_keys.update(dict.fromkeys(selection.view.join_keys))
    service = features.name if isinstance(features, FeatureService) else features if isinstance(features, str) else None
    keys = [c for c in entity.columns if c != entity.timestamp_column] if entity is not None else list(join_keys)
    return RetrievalMetadata(
        features=refs,
        keys=keys,
        min_event_timestamp=entity.min_timestamp if entity is not None else None,
        max_event_timestamp=entity.max_timestamp if entity is not None else None,
        entity_rows=entity.row_count if entity is not None else None,
        join_keys=[k for k in join_keys if entity is None or k in entity.columns] or list(join_keys),
        full_feature_names=full_feature_names,
        feature_service=service,
        registry_version=registry_version,
    )
