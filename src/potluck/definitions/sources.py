"""Data sources: where a feature view's rows come from."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from potluck.definitions.base import Definition, check_column, check_name, check_tags, check_text
from potluck.definitions.errors import DefinitionError

FILE_FORMATS = ("parquet", "csv")


class ParquetFormat:
    """Marks a `FileSource` as Parquet (the default); accepted for Feast compatibility."""

    name = "parquet"


class CsvFormat:
    name = "csv"


def _format_name(file_format: object, path: str, label: str) -> str:
    if file_format is None:
        return "csv" if path.lower().endswith((".csv", ".csv.gz")) else "parquet"
    name = file_format if isinstance(file_format, str) else getattr(file_format, "name", None)
    if name not in FILE_FORMATS:
        raise DefinitionError(f"{label}: 'file_format' must be one of {', '.join(FILE_FORMATS)}, got {file_format!r}")
    return str(name)


def check_field_mapping(label: str, field_mapping: object) -> dict[str, str]:
    """A source's `field_mapping` (source column -> field name), checked, in a stable order."""
    mapping = field_mapping or {}
    if not isinstance(mapping, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
    ):
        raise DefinitionError(f"{label}: 'field_mapping' must map source column names to field names")
    for target in mapping.values():
        check_column(label, target, field="field_mapping")
    return dict(sorted(mapping.items()))


class DataSource(Definition):
    kind = "data_source"
    source_type = "abstract"
    timestamp_field: str
    created_timestamp_column: str
    field_mapping: dict[str, str]

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> DataSource:
        kind = spec.get("type")
        if kind == FileSource.source_type:
            return FileSource._from_spec(spec)
        if kind == PushSource.source_type:
            return PushSource._from_spec(spec)
        if kind == PostgreSQLSource.source_type:
            return PostgreSQLSource._from_spec(spec)
        if kind == "kafka":
            from potluck.definitions.stream_sources import KafkaSource

            return KafkaSource._from_spec(spec)
        if kind == "redis_stream":
            from potluck.definitions.stream_sources import RedisStreamSource

            return RedisStreamSource._from_spec(spec)
        if kind == "spark":
            from potluck.definitions.spark_source import SparkSource

            return SparkSource._from_spec(spec)
        if kind == "request":
            from potluck.definitions.request_source import RequestSource

            return RequestSource._from_spec(spec)
        raise DefinitionError(f"unknown data source type {kind!r}")

    def column_for(self, field_name: str) -> str:
        """The source column that holds `field_name` (after `field_mapping`)."""
        for source_col, mapped in self.field_mapping.items():
            if mapped == field_name:
                return source_col
        return field_name


class FileSource(DataSource):
    """Rows in a Parquet file or directory of Parquet files, or a CSV file."""

    source_type = "file"

    def __init__(
        self,
        *,
        path: str,
        name: str = "",
        timestamp_field: str = "",
        created_timestamp_column: str = "",
        field_mapping: dict[str, str] | None = None,
        file_format: object = None,
        description: str = "",
        tags: dict[str, str] | None = None,
        owner: str = "",
        event_timestamp_column: str = "",
        s3_endpoint_override: str | None = None,
    ) -> None:
        if not isinstance(path, (str, PurePath)) or not str(path):
            raise DefinitionError(f"FileSource {name or ''}: 'path' must be a non-empty string".replace("  ", " "))
        path = str(path)
        if not name:
            stem = PurePath(path.rstrip("/")).name.split(".")[0] or "source"
            name = "".join(c if c.isalnum() or c in "_-" else "_" for c in stem)
            if name[0].isdigit():
                name = f"source_{name}"
        self.name = check_name("FileSource", name)
        label = f"FileSource '{self.name}'"
        self.path = path
        self.file_format = _format_name(file_format, path, label)
        timestamp_field = timestamp_field or event_timestamp_column
        if not timestamp_field:
            raise DefinitionError(
                f"{label}: 'timestamp_field' is required: name the column holding each row's event time"
            )
        self.timestamp_field = check_column(label, timestamp_field, field="timestamp_field")
        self.created_timestamp_column = (
            check_column(label, created_timestamp_column, field="created_timestamp_column")
            if created_timestamp_column
            else ""
        )
        self.field_mapping = check_field_mapping(label, field_mapping)
        self.description = check_text(label, description, "description")
        self.tags = check_tags(label, tags)
        self.owner = check_text(label, owner, "owner")
        self.s3_endpoint_override = s3_endpoint_override

    def to_spec(self) -> dict[str, Any]:
        return {
            "type": self.source_type,
            "name": self.name,
            "path": self.path,
            "file_format": self.file_format,
            "timestamp_field": self.timestamp_field,
            "created_timestamp_column": self.created_timestamp_column,
            "field_mapping": self.field_mapping,
            "description": self.description,
            "tags": self.tags,
            "owner": self.owner,
        }

    @classmethod
    def _from_spec(cls, spec: Mapping[str, Any]) -> FileSource:
        return cls(
            name=spec["name"],
            path=spec["path"],
            file_format=spec.get("file_format"),
            timestamp_field=spec["timestamp_field"],
            created_timestamp_column=spec.get("created_timestamp_column", ""),
            field_mapping=spec.get("field_mapping"),
            description=spec.get("description", ""),
            tags=spec.get("tags"),
            owner=spec.get("owner", ""),
        )


class PostgreSQLSource(DataSource):
    """Rows in a PostgreSQL table (`name` or `schema.name`) or returned by a query, for the
    `postgres` offline store (Feast's PostgreSQLSource)."""

    source_type = "postgres"

    def __init__(
        self,
        name: str | None = None,
        query: str | None = None,
        table: str | None = None,
        timestamp_field: str = "",
        created_timestamp_column: str = "",
        field_mapping: dict[str, str] | None = None,
        description: str = "",
        tags: dict[str, str] | None = None,
        owner: str = "",
    ) -> None:
        if bool(query) == bool(table):
            raise DefinitionError(
                f"PostgreSQLSource {name or table or ''}: give exactly one of 'table' and 'query'".replace("  ", " ")
            )
        if table is not None and (not isinstance(table, str) or any(not part for part in table.split("."))):
            raise DefinitionError(f"PostgreSQLSource {name or ''}: 'table' must be 'name' or 'schema.name'")
        self.name = check_name("PostgreSQLSource", name or str(table))
        label = f"PostgreSQLSource '{self.name}'"
        if query is not None and not isinstance(query, str):
            raise DefinitionError(f"{label}: 'query' must be a SQL string")
        self.table = table or ""
        self.query = query or ""
        if not timestamp_field:
            raise DefinitionError(
                f"{label}: 'timestamp_field' is required: name the column holding each row's event time"
            )
        self.timestamp_field = check_column(label, timestamp_field, field="timestamp_field")
        self.created_timestamp_column = (
            check_column(label, created_timestamp_column, field="created_timestamp_column")
            if created_timestamp_column
            else ""
        )
        mapping = field_mapping or {}
        if not isinstance(mapping, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
        ):
            raise DefinitionError(f"{label}: 'field_mapping' must map source column names to field names")
        for target in mapping.values():
            check_column(label, target, field="field_mapping")
        self.field_mapping = dict(sorted(mapping.items()))
        self.description = check_text(label, description, "description")
        self.tags = check_tags(label, tags)
        self.owner = check_text(label, owner, "owner")

    def get_table_query_string(self) -> str:
        """What the source reads, as SQL that can follow FROM (Feast's method of the same name)."""
        if self.table:
            return ".".join('"' + part.replace('"', '""') + '"' for part in self.table.split("."))
        return f"({self.query})"

    def to_spec(self) -> dict[str, Any]:
        return {
            "type": self.source_type,
            "name": self.name,
            "table": self.table,
            "query": self.query,
            "timestamp_field": self.timestamp_field,
            "created_timestamp_column": self.created_timestamp_column,
            "field_mapping": self.field_mapping,
            "description": self.description,
            "tags": self.tags,
            "owner": self.owner,
        }

    @classmethod
    def _from_spec(cls, spec: Mapping[str, Any]) -> PostgreSQLSource:
        return cls(
            name=spec["name"],
            table=spec.get("table") or None,
            query=spec.get("query") or None,
            timestamp_field=spec["timestamp_field"],
            created_timestamp_column=spec.get("created_timestamp_column", ""),
            field_mapping=spec.get("field_mapping"),
            description=spec.get("description", ""),
            tags=spec.get("tags"),
            owner=spec.get("owner", ""),
        )


class PushSource(DataSource):
    """Rows pushed by applications; `batch_source` keeps them for training data."""

    source_type = "push"

    def __init__(
        self,
        *,
        name: str,
        batch_source: DataSource,
        description: str = "",
        tags: dict[str, str] | None = None,
        owner: str = "",
    ) -> None:
        self.name = check_name("PushSource", name)
        label = f"PushSource '{name}'"
        if not isinstance(batch_source, FileSource):
            raise DefinitionError(f"{label}: 'batch_source' must be a FileSource, got {batch_source!r}")
        self.batch_source = batch_source
        self.description = check_text(label, description, "description")
        self.tags = check_tags(label, tags)
        self.owner = check_text(label, owner, "owner")

    @property
    def timestamp_field(self) -> str:  # type: ignore[override]
        return self.batch_source.timestamp_field

    @property
    def created_timestamp_column(self) -> str:  # type: ignore[override]
        return self.batch_source.created_timestamp_column

    @property
    def field_mapping(self) -> dict[str, str]:  # type: ignore[override]
        return self.batch_source.field_mapping

    def to_spec(self) -> dict[str, Any]:
        return {
            "type": self.source_type,
            "name": self.name,
            "batch_source": self.batch_source.to_spec(),
            "description": self.description,
            "tags": self.tags,
            "owner": self.owner,
        }

    @classmethod
    def _from_spec(cls, spec: Mapping[str, Any]) -> PushSource:
        return cls(
            name=spec["name"],
            batch_source=FileSource._from_spec(spec["batch_source"]),
            description=spec.get("description", ""),
            tags=spec.get("tags"),
            owner=spec.get("owner", ""),
        )


def batch_source(source: DataSource) -> DataSource:
    """The source a view's historical rows are read from: a `FileSource`, a `SparkSource` or a
    `PostgreSQLSource` (a table or query of the offline database)."""
    from potluck.definitions.spark_source import SparkSource

    if isinstance(source, SparkSource | PostgreSQLSource):
        return source
    return batch_file_source(source)


def batch_file_source(source: DataSource) -> FileSource:
    """The file a source's historical rows live in."""
    if isinstance(source, FileSource):
        return source
    batch = getattr(source, "batch_source", None)  # PushSource, KafkaSource, RedisStreamSource
    if isinstance(batch, FileSource):
        return batch
    raise DefinitionError(
        f"data source '{source.name}' has no batch file; give it batch_source=FileSource(...) to read it offline"
    )
