"""The training side of a skew report: the rows a model was trained on and when they were built.

Training data is a retrieval job (`get_historical_features(...)`), a Parquet file or folder, or a
saved dataset (by name or object). What the report needs besides the rows: when the data was built
(a saved dataset: the registry version its job was planned against; a Parquet path: its files'
modification time), to tell whether a view's definition changed since.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
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
    registry_version: int | None = None  # the registry version a saved dataset's job was planned against


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
    from potluck.definitions.saved_dataset import SavedDataset

    if isinstance(training, SavedDataset):
        return _saved(store, training)
    raise RetrievalError(
        "training data must be a saved dataset (name or object), a retrieval job or a Parquet path; "
        f"got {type(training).__name__}"
    )


def _saved(store: FeatureStore, dataset: Any) -> TrainingData:
    """A saved dataset (its name: looked up in the registry, the error naming the nearest ones)."""
    from potluck.offline.persist import storage_path

    saved = store.get_saved_dataset(dataset) if isinstance(dataset, str) else dataset
    path = storage_path(saved.storage, store.repo_path)
    built = saved.last_updated_timestamp or saved.created_timestamp
    return TrainingData(str(path), f"saved_dataset:{saved.name}", built, saved.registry_version)


def _built_at(path: Path) -> datetime:
    """When a Parquet dataset was written: its newest file's modification time."""
    files = [path] if path.is_file() else [p for p in path.rglob("*.parquet") if p.is_file()]
    newest = max((p.stat().st_mtime for p in files), default=path.stat().st_mtime)
    return datetime.fromtimestamp(newest, UTC)


def changed_views(store: FeatureStore, training: TrainingData, views: list[str]) -> dict[str, str]:
    """The views whose definition changed since `training` was built, each with a line saying how."""
    out: dict[str, str] = {}
    if training.built_at is None and training.registry_version is None:
        return out
    for name in views:
        versions = store._registry_store.feature_view_versions(name)
        if len(versions) < 2:  # never redefined
            continue
        current = versions[-1]
        if training.registry_version is not None:
            if current.registry_version > training.registry_version:
                out[name] = (
                    f"view '{name}' {current.tag} applied in registry version {current.registry_version}, "
                    f"after the dataset was built (version {training.registry_version})"
                )
        elif training.built_at is not None and _aware(current.created_at) > _aware(training.built_at):
            out[name] = (
                f"view '{name}' {current.tag} applied {current.created_at:%Y-%m-%d %H:%M:%S}, "
                f"after the dataset was built ({training.built_at:%Y-%m-%d %H:%M:%S})"
            )
    return out


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
