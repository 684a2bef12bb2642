"""Saved datasets: a retrieval job's result kept in storage, recorded in the registry (Feast's names).

`SavedDataset` is a registry record, not a definition a repository declares: `apply` never creates
or deletes one; `FeatureStore.create_saved_dataset` does. Values only; reading the data goes through
the retrieval job the store attaches (`with_retrieval_job`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from potluck.definitions.base import canonical_json, check_name, check_tags, check_text
from potluck.definitions.errors import DefinitionError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

SAVED_DATASET_KIND = "saved_dataset"
_REMOTE = ("s3://", "s3a://", "gs://", "gcs://", "az://", "abfs://", "abfss://", "hdfs://", "http://", "https://")


class SavedDatasetStorage:
    """Base of the places a saved dataset is kept. Only `SavedDatasetFileStorage` exists here."""

    kind: ClassVar[str] = "storage"

    def to_spec(self) -> dict[str, Any]:
        raise NotImplementedError

    @staticmethod
    def from_spec(spec: Mapping[str, Any]) -> SavedDatasetStorage:
        if spec.get("type") != SavedDatasetFileStorage.kind:
            raise DefinitionError(f"saved dataset storage: unknown type {spec.get('type')!r} (known: 'file')")
        return SavedDatasetFileStorage(path=str(spec["path"]))

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.to_spec() == other.to_spec()

    def __hash__(self) -> int:
        return hash(canonical_json(self.to_spec()))


class SavedDatasetFileStorage(SavedDatasetStorage):
    """One Parquet file at `path` (relative paths are relative to the repository)."""

    kind = "file"

    def __init__(self, path: str, file_format: Any = None, s3_endpoint_override: str | None = None) -> None:
        label = "SavedDatasetFileStorage"
        if not isinstance(path, str) or not path.strip():
            raise DefinitionError(f"{label}: 'path' is required: the Parquet file the dataset is written to")
        if path.lower().startswith(_REMOTE):
            raise DefinitionError(f"{label}: 'path' {path!r} is remote; use a local or mounted file path")
        name = file_format if isinstance(file_format, str) or file_format is None else getattr(file_format, "name", "")
        if name not in (None, "parquet"):
            raise DefinitionError(f"{label}: 'file_format' must be Parquet (ParquetFormat()), got {file_format!r}")
        if s3_endpoint_override:
            raise DefinitionError(f"{label}: 's3_endpoint_override' is not supported: files are local")
        self.path = path

    def to_spec(self) -> dict[str, Any]:
        return {"type": self.kind, "path": self.path, "file_format": "parquet"}

    def __repr__(self) -> str:
        return f"SavedDatasetFileStorage(path={self.path!r})"


def _time(value: Any, field: str, name: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    raise DefinitionError(f"saved dataset '{name}': '{field}' must be a datetime, got {value!r}")


class SavedDataset:
    """A retrieval job's result kept in `storage`, with what it was built from.

    `features` are `view:feature` references; `join_keys` the entity columns. The store fills in
    the rest when it saves one: the entity dataframe's row count and min/max event time
    (`entity_rows`, `min_event_timestamp`, `max_event_timestamp`), `row_count` of the result, the
    `registry_version` the job was built against and the created/updated times.
    """

    kind: ClassVar[str] = SAVED_DATASET_KIND

    def __init__(
        self,
        name: str,
        features: Sequence[str],
        join_keys: Sequence[str],
        storage: SavedDatasetStorage,
        full_feature_names: bool = False,
        tags: Mapping[str, str] | None = None,
        feature_service_name: str | None = None,
        description: str = "",
    ) -> None:
        self.name = check_name("SavedDataset", name)
        label = f"saved dataset '{name}'"
        if isinstance(features, str) or not all(isinstance(f, str) for f in features):
            raise DefinitionError(f"{label}: 'features' must be a list of 'view:feature' strings")
        if isinstance(join_keys, str) or not all(isinstance(k, str) for k in join_keys):
            raise DefinitionError(f"{label}: 'join_keys' must be a list of column names")
        if not isinstance(storage, SavedDatasetStorage):
            raise DefinitionError(f"{label}: 'storage' must be a SavedDatasetFileStorage, got {storage!r}")
        self.features = list(features)
        self.join_keys = list(join_keys)
        self.storage = storage
        self.full_feature_names = bool(full_feature_names)
        self.tags = check_tags(label, tags)
        self.feature_service_name = feature_service_name
        self.description = check_text(label, description, "description")
        self.created_timestamp: datetime | None = None
        self.last_updated_timestamp: datetime | None = None
        self.min_event_timestamp: datetime | None = None
        self.max_event_timestamp: datetime | None = None
        self.entity_rows: int | None = None
        self.row_count: int | None = None
        self.registry_version: int | None = None
        self._retrieval_job: Any = None

    # -- data -----------------------------------------------------------------------------------
    def with_retrieval_job(self, retrieval_job: Any) -> SavedDataset:
        self._retrieval_job = retrieval_job
        return self

    def _job(self) -> Any:
        if self._retrieval_job is None:
            raise DefinitionError(
                f"saved dataset '{self.name}' has no data attached; get it with store.get_saved_dataset('{self.name}')"
            )
        return self._retrieval_job

    def to_df(self) -> pd.DataFrame:
        frame: pd.DataFrame = self._job().to_df()
        return frame

    def to_arrow(self) -> pa.Table:
        table: pa.Table = self._job().to_arrow()
        return table

    # -- the registry record ----------------------------------------------------------------------
    def to_spec(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "name": self.name,
            "features": list(self.features),
            "join_keys": list(self.join_keys),
            "full_feature_names": self.full_feature_names,
            "storage": self.storage.to_spec(),
            "tags": dict(self.tags),
            "feature_service_name": self.feature_service_name,
            "description": self.description,
            "created_timestamp": iso(self.created_timestamp),
            "last_updated_timestamp": iso(self.last_updated_timestamp),
            "min_event_timestamp": iso(self.min_event_timestamp),
            "max_event_timestamp": iso(self.max_event_timestamp),
            "entity_rows": self.entity_rows,
            "row_count": self.row_count,
            "registry_version": self.registry_version,
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> SavedDataset:
        name = str(spec["name"])
        out = cls(
            name=name,
            features=list(spec["features"]),
            join_keys=list(spec["join_keys"]),
            storage=SavedDatasetStorage.from_spec(spec["storage"]),
            full_feature_names=bool(spec.get("full_feature_names", False)),
            tags=spec.get("tags") or {},
            feature_service_name=spec.get("feature_service_name"),
            description=spec.get("description") or "",
        )
        for field in ("created_timestamp", "last_updated_timestamp", "min_event_timestamp", "max_event_timestamp"):
            setattr(out, field, _time(spec.get(field), field, name))
        for field in ("entity_rows", "row_count", "registry_version"):
            value = spec.get(field)
            setattr(out, field, int(value) if value is not None else None)
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SavedDataset) and self.to_spec() == other.to_spec()

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"SavedDataset(name={self.name!r}, features={self.features!r}, storage={self.storage!r})"
