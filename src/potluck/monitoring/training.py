"""The training side of a skew report: the rows a model was trained on and when they were built.

Training data is a retrieval job (`get_historical_features(...)`), a Parquet file or folder, or a
saved dataset (by name or object). What the report needs besides the rows: when the data was built
and, where recorded, the definition (content hash) of each feature view it was built from, to tell
whether a view's definition changed since.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from potluck.definitions.errors import RetrievalError

if TYPE_CHECKING:
    from potluck.store import FeatureStore


@dataclass
class TrainingData:
    data: Any  # what `compute_statistics` profiles: a retrieval job or a Parquet path
    name: str
    built_at: datetime | None = None  # None: built now (a retrieval job runs on the current definitions)
    view_hashes: dict[str, str] = field(default_factory=dict)  # view -> content hash at build time, if recorded


def training_data(store: FeatureStore, training: Any) -> TrainingData:
    """`training` as a skew report reads it (see the module docstring)."""
    if isinstance(training, (str, os.PathLike)):
        path = Path(training)
        if path.exists():
            return TrainingData(str(path), f"dataset:{path}", _built_at(path))
        if isinstance(training, str) and not path.suffix and os.sep not in training:
            return _saved(store, training)
        raise RetrievalError(f"training data '{training}' does not exist; pass a Parquet file or folder")
    if callable(getattr(training, "to_arrow", None)):
        return TrainingData(training, "retrieval_job")
    if hasattr(training, "storage") and hasattr(training, "name"):
        return _saved(store, training)
    raise RetrievalError(
        "training data must be a saved dataset (name or object), a retrieval job or a Parquet path; "
        f"got {type(training).__name__}"
    )


def _saved(store: FeatureStore, dataset: Any) -> TrainingData:
    get = getattr(store, "get_saved_dataset", None)
    if get is None:
        raise RetrievalError(
            f"training data '{dataset}' is not a Parquet path, and this store has no saved datasets; "
            "pass a Parquet file or folder or a retrieval job"
        )
    saved = get(dataset) if isinstance(dataset, str) else dataset
    path = getattr(saved.storage, "path", None) or getattr(getattr(saved.storage, "file_options", None), "uri", None)
    if not path:
        raise RetrievalError(f"saved dataset '{saved.name}': its storage has no file path to read")
    built = getattr(saved, "created_timestamp", None) or getattr(saved, "created_at", None)
    hashes = getattr(saved, "view_hashes", None) or {}
    return TrainingData(str(path), f"saved_dataset:{saved.name}", built, dict(hashes))


def _built_at(path: Path) -> datetime:
    """When a Parquet dataset was written: its newest file's modification time."""
    files = [path] if path.is_file() else [p for p in path.rglob("*.parquet") if p.is_file()]
    newest = max((p.stat().st_mtime for p in files), default=path.stat().st_mtime)
    return datetime.fromtimestamp(newest, UTC)


def changed_views(store: FeatureStore, training: TrainingData, views: list[str]) -> dict[str, str]:
    """The views whose definition changed since `training` was built, each with a line saying how."""
    out: dict[str, str] = {}
    if training.built_at is None and not training.view_hashes:
        return out
    for name in views:
        versions = store._registry_store.feature_view_versions(name)
        if not versions:
            continue
        current = versions[-1]
        recorded = training.view_hashes.get(name)
        if recorded is not None:
            if recorded != current.content_hash:
                out[name] = (
                    f"view '{name}' is now {current.tag} ({current.content_hash[:12]}), built from {recorded[:12]}"
                )
        elif training.built_at is not None and len(versions) > 1 and current.created_at > training.built_at:
            out[name] = (
                f"view '{name}' {current.tag} applied {current.created_at:%Y-%m-%d %H:%M:%S}, "
                f"after the dataset was built ({training.built_at:%Y-%m-%d %H:%M:%S})"
            )
    return out
