"""`SparkSource`: a view's rows in a Spark table, a Spark SQL query, or files Spark reads (Feast's names).

Exactly as in Feast, one of `table`, `query` or `path` is given (`table` alone; a `query` may come
with a `path`, and the query is then the one read). `path` needs `file_format`, one of parquet,
csv, json or avro (Avro needs Spark's spark-avro package on the session's classpath). These
sources are read by the Spark offline store only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from potluck.definitions.base import check_column, check_name, check_tags, check_text
from potluck.definitions.errors import DefinitionError
from potluck.definitions.sources import DataSource, check_field_mapping

SPARK_FILE_FORMATS = ("parquet", "csv", "json", "avro")


class SparkSource(DataSource):
    """Rows Spark reads: `table=` (a catalog table), `query=` (Spark SQL) or `path=` with `file_format=`."""

    source_type = "spark"

    def __init__(
        self,
        *,
        name: str | None = None,
        table: str | None = None,
        query: str | None = None,
        path: str | None = None,
        file_format: str | None = None,
        created_timestamp_column: str | None = None,
        field_mapping: dict[str, str] | None = None,
        description: str | None = "",
        tags: dict[str, str] | None = None,
        owner: str | None = "",
        timestamp_field: str | None = None,
        date_partition_column: str | None = None,
        date_partition_column_format: str | None = "%Y-%m-%d",
        table_format: object = None,
    ) -> None:
        if not name and not table:
            raise DefinitionError("SparkSource: give it a 'name' (or a 'table', whose name it then takes)")
        if not name:  # Feast names it after the table; here characters a name cannot hold become '_'
            name = "".join(c if c.isalnum() or c in "_-" else "_" for c in str(table))
        self.name = check_name("SparkSource", name)
        label = f"SparkSource '{self.name}'"
        for key, value in (("table", table), ("query", query), ("path", path)):
            if value is not None and not isinstance(value, str):
                raise DefinitionError(f"{label}: '{key}' must be a string, got {value!r}")
        if table and (query or path):
            raise DefinitionError(f"{label}: 'table' cannot be combined with 'query' or 'path'; give one of them")
        if not (table or query or path):
            raise DefinitionError(f"{label}: give one of 'table', 'query' or 'path' (with 'file_format')")
        if table_format is not None:
            raise DefinitionError(f"{label}: 'table_format' (Iceberg, Delta, Hudi) is not supported; use 'table'")
        if path and file_format is None:
            raise DefinitionError(f"{label}: 'path' needs 'file_format', one of {', '.join(SPARK_FILE_FORMATS)}")
        if file_format is not None and file_format not in SPARK_FILE_FORMATS:
            raise DefinitionError(
                f"{label}: 'file_format' must be one of {', '.join(SPARK_FILE_FORMATS)}, got {file_format!r}"
            )
        self.table = table or ""
        self.query = query or ""
        self.path = path or ""
        self.file_format = file_format or ""
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
        self.date_partition_column = (
            check_column(label, date_partition_column, field="date_partition_column") if date_partition_column else ""
        )
        self.date_partition_column_format = check_text(
            label, date_partition_column_format or "%Y-%m-%d", "date_partition_column_format"
        )
        self.field_mapping = check_field_mapping(label, field_mapping)
        self.description = check_text(label, description or "", "description")
        self.tags = check_tags(label, tags)
        self.owner = check_text(label, owner or "", "owner")

    @property
    def relation_kind(self) -> str:
        """What Spark reads: "table", "query" or "path" (Feast's order when several are given)."""
        return "table" if self.table else "query" if self.query else "path"

    def to_spec(self) -> dict[str, Any]:
        return {
            "type": self.source_type,
            "name": self.name,
            "table": self.table,
            "query": self.query,
            "path": self.path,
            "file_format": self.file_format,
            "timestamp_field": self.timestamp_field,
            "created_timestamp_column": self.created_timestamp_column,
            "date_partition_column": self.date_partition_column,
            "date_partition_column_format": self.date_partition_column_format,
            "field_mapping": self.field_mapping,
            "description": self.description,
            "tags": self.tags,
            "owner": self.owner,
        }

    @classmethod
    def _from_spec(cls, spec: Mapping[str, Any]) -> SparkSource:
        return cls(
            name=spec["name"],
            table=spec.get("table") or None,
            query=spec.get("query") or None,
            path=spec.get("path") or None,
            file_format=spec.get("file_format") or None,
            timestamp_field=spec["timestamp_field"],
            created_timestamp_column=spec.get("created_timestamp_column", ""),
            date_partition_column=spec.get("date_partition_column", ""),
            date_partition_column_format=spec.get("date_partition_column_format", "%Y-%m-%d"),
            field_mapping=spec.get("field_mapping"),
            description=spec.get("description", ""),
            tags=spec.get("tags"),
            owner=spec.get("owner", ""),
        )
