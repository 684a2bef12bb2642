"""Where a feature service's served values are logged: `LoggingConfig` and its destinations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from potluck.definitions.base import canonical_json, check_column
from potluck.definitions.errors import DefinitionError

LOG_DATE_FIELD = "__log_date"
_REMOTE_SCHEMES = (
    "s3://",
    "s3a://",
    "gs://",
    "gcs://",
    "az://",
    "abfs://",
    "abfss://",
    "hdfs://",
    "http://",
    "https://",
)
_USE_FILE = "use FileLoggingDestination(path=...) from potluck.infra.offline_stores.file_source"


class LoggingDestination:
    """Base of the places logs are written to. Only `FileLoggingDestination` exists here."""

    kind: ClassVar[str] = "destination"

    def to_spec(self) -> dict[str, Any]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.to_spec() == other.to_spec()

    def __hash__(self) -> int:
        return hash(canonical_json(self.to_spec()))


class FileLoggingDestination(LoggingDestination):
    """Parquet files under `path` (relative paths are relative to the repository), partitioned
    by `__log_date` and then by the `partition_by` columns (join keys), Hive style."""

    kind = "file"

    def __init__(
        self,
        *,
        path: str,
        s3_endpoint_override: str = "",
        partition_by: Sequence[str] | None = None,
    ) -> None:
        label = "FileLoggingDestination"
        if not isinstance(path, str) or not path.strip():
            raise DefinitionError(f"{label}: 'path' is required: the folder logged rows are written to")
        if path.lower().startswith(_REMOTE_SCHEMES):
            raise DefinitionError(
                f"{label}: 'path' {path!r} is remote; logs are written to a local or mounted folder "
                "(write them there and sync the folder to object storage)"
            )
        if s3_endpoint_override:
            raise DefinitionError(
                f"{label}: 's3_endpoint_override' is not supported; logs are written to a local or mounted folder"
            )
        if partition_by is None:
            columns: list[str] = []
        elif isinstance(partition_by, (str, bytes)) or not isinstance(partition_by, Sequence):
            raise DefinitionError(f"{label}: 'partition_by' must be a list of column names, got {partition_by!r}")
        else:
            columns = [check_column(label, c, field="partition_by") for c in partition_by]
            if len(set(columns)) != len(columns):
                raise DefinitionError(f"{label}: 'partition_by' lists a column twice: {columns}")
        self.path = path
        self.s3_endpoint_override = ""
        self.partition_by: list[str] | None = columns or None

    @property
    def partition_columns(self) -> list[str]:
        """The folder levels of the written files: the log date first, then `partition_by`."""
        return [LOG_DATE_FIELD, *(c for c in self.partition_by or [] if c != LOG_DATE_FIELD)]

    def to_spec(self) -> dict[str, Any]:
        return {"type": self.kind, "path": self.path, "partition_by": list(self.partition_by or [])}

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> FileLoggingDestination:
        return cls(path=spec["path"], partition_by=list(spec.get("partition_by") or []) or None)

    def __repr__(self) -> str:
        return f"FileLoggingDestination(path={self.path!r}, partition_by={self.partition_by!r})"


class LoggingConfig:
    """Log a sampled share (`sample_rate`, in (0, 1]) of a feature service's online requests."""

    def __init__(self, destination: LoggingDestination, sample_rate: float = 1.0) -> None:
        label = "LoggingConfig"
        if not isinstance(destination, FileLoggingDestination):
            raise DefinitionError(f"{label}: 'destination' {type(destination).__name__} is not supported: {_USE_FILE}")
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float)):
            raise DefinitionError(f"{label}: 'sample_rate' must be a number in (0, 1], got {sample_rate!r}")
        if not 0 < sample_rate <= 1:
            raise DefinitionError(
                f"{label}: 'sample_rate' must be in (0, 1], got {sample_rate!r} "
                "(1.0 logs every request; remove logging_config to log none)"
            )
        self.destination: FileLoggingDestination = destination
        self.sample_rate = float(sample_rate)

    def to_spec(self) -> dict[str, Any]:
        return {"destination": self.destination.to_spec(), "sample_rate": self.sample_rate}

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> LoggingConfig:
        return cls(FileLoggingDestination.from_spec(spec["destination"]), spec.get("sample_rate", 1.0))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LoggingConfig) and self.to_spec() == other.to_spec()

    def __hash__(self) -> int:
        return hash((self.destination.path, self.sample_rate))

    def __repr__(self) -> str:
        return f"LoggingConfig(destination={self.destination!r}, sample_rate={self.sample_rate!r})"


class _UnsupportedDestination(LoggingDestination):
    """A destination of another offline store: constructing one says what to use instead."""

    store: ClassVar[str] = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise DefinitionError(
            f"{type(self).__name__}: logging to {self.store} is not supported (no {self.store} offline store); "
            f"{_USE_FILE}"
        )


class BigQueryLoggingDestination(_UnsupportedDestination):
    store = "BigQuery"


class RedshiftLoggingDestination(_UnsupportedDestination):
    store = "Redshift"


class SnowflakeLoggingDestination(_UnsupportedDestination):
    store = "Snowflake"
