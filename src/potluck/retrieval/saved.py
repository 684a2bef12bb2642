"""Saved datasets: a retrieval job's result written to storage and recorded in the registry.

A saved dataset is a registry row of kind `saved_dataset` (beside the definitions, committed as an
apply is: a new registry version and a history entry), which `apply` never deletes. Its file is
written first (whole, then renamed into place), the record second: a record always names a
complete file.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from potluck.definitions import FeatureService
from potluck.definitions.errors import DatasetExistsError, RegistryConflictError, RetrievalError, not_found
from potluck.definitions.saved_dataset import SAVED_DATASET_KIND, SavedDataset, SavedDatasetStorage
from potluck.offline.persist import SavedFileJob, persist, storage_path

if TYPE_CHECKING:
    from potluck.offline.protocol import RetrievalMetadata
    from potluck.registry.cache import CachedRegistry
    from potluck.registry.snapshot import RegistrySnapshot
    from potluck.registry.sql import SqlRegistryStore

_RETRIES = 5


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class SavedDatasets:
    """Creates, reads and lists one project's saved datasets."""

    def __init__(self, registry_store: SqlRegistryStore, registry: CachedRegistry, repo_path: Path) -> None:
        self._store = registry_store
        self._registry = registry
        self._repo_path = repo_path

    def create(
        self,
        job: Any,
        name: str,
        storage: SavedDatasetStorage,
        tags: Mapping[str, str] | None = None,
        feature_service: FeatureService | None = None,
        allow_overwrite: bool = False,
    ) -> SavedDataset:
        metadata: RetrievalMetadata | None = getattr(job, "metadata", None)
        if metadata is None:
            raise RetrievalError(
                f"saved dataset '{name}': 'from_' must be a retrieval job of store.get_historical_features(...), "
                f"got {type(job).__name__}"
            )
        if feature_service is not None and not isinstance(feature_service, FeatureService):
            raise RetrievalError(f"saved dataset '{name}': 'feature_service' must be a FeatureService")
        dataset = SavedDataset(
            name=name,
            features=metadata.features,
            join_keys=metadata.join_keys if metadata.join_keys is not None else metadata.keys,
            storage=storage,
            full_feature_names=metadata.full_feature_names,
            tags=tags,
            feature_service_name=feature_service.name if feature_service is not None else metadata.feature_service,
        )
        existing = self._registry.refresh().records.get(SAVED_DATASET_KIND, {}).get(name)
        if existing is not None and not allow_overwrite:
            raise DatasetExistsError(
                f"saved dataset '{name}' already exists (created {existing.get('created_timestamp')}); "
                "pass allow_overwrite=True to replace it"
            )
        path = persist(job, storage, allow_overwrite)
        import pyarrow.parquet as pq

        now = datetime.now(UTC)
        dataset.row_count = int(pq.ParquetFile(path).metadata.num_rows)
        dataset.entity_rows = metadata.entity_rows
        dataset.min_event_timestamp = _utc(metadata.min_event_timestamp)
        dataset.max_event_timestamp = _utc(metadata.max_event_timestamp)
        dataset.registry_version = metadata.registry_version
        dataset.last_updated_timestamp = now
        self._record(dataset, now)
        return dataset.with_retrieval_job(SavedFileJob(path))

    def _record(self, dataset: SavedDataset, now: datetime) -> None:
        from potluck.registry.sql import Change

        for attempt in range(_RETRIES):
            snapshot = self._registry.refresh()
            old = snapshot.records.get(SAVED_DATASET_KIND, {}).get(dataset.name)
            created = old.get("created_timestamp") if old else None
            dataset.created_timestamp = datetime.fromisoformat(created) if created else now
            change = Change(SAVED_DATASET_KIND, dataset.name, "updated" if old else "created", dataset.to_spec())
            try:
                self._store.commit(snapshot.version, [change])
                break
            except RegistryConflictError:
                if attempt == _RETRIES - 1:
                    raise
        self._registry.refresh()

    def _decoded(self, spec: Mapping[str, Any]) -> SavedDataset:
        dataset = SavedDataset.from_spec(spec)
        return dataset.with_retrieval_job(SavedFileJob(storage_path(dataset.storage, self._repo_path)))

    def get(self, name: str) -> SavedDataset:
        records = self._records(self._registry.snapshot())
        if name not in records:
            records = self._records(self._registry.refresh())
        if name not in records:
            raise not_found("Saved dataset", name, records, key=SAVED_DATASET_KIND)
        return self._decoded(records[name])

    def list(self, tags: Mapping[str, str] | None = None) -> list[SavedDataset]:
        records = self._records(self._registry.refresh())
        found = [self._decoded(records[name]) for name in sorted(records)]
        return [d for d in found if all(d.tags.get(k) == v for k, v in (tags or {}).items())]

    @staticmethod
    def _records(snapshot: RegistrySnapshot) -> dict[str, dict[str, Any]]:
        return snapshot.records.get(SAVED_DATASET_KIND, {})
