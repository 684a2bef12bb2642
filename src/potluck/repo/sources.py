"""Reading the schema of a data source's files, for validation at plan and apply time."""

from __future__ import annotations

import glob
import os
from typing import TYPE_CHECKING, Any

from potluck.definitions import DataSource
from potluck.definitions.errors import RepositoryError
from potluck.definitions.sources import PostgreSQLSource, batch_file_source
from potluck.definitions.spark_source import SparkSource
from potluck.definitions.stream_sources import KafkaSource, RedisStreamSource

if TYPE_CHECKING:
    import pyarrow as pa


def resolve_source_path(path: str, repo_path: str) -> str:
    if "://" in path or os.path.isabs(path):
        return path
    return os.path.normpath(os.path.join(repo_path, path))


def source_schema(source: DataSource, repo_path: str) -> pa.Schema | None:
    """The Arrow schema of a source's files; None if a push or stream source has no file yet (or none at all)."""
    if isinstance(source, (KafkaSource, RedisStreamSource)) and source.batch_source is None:
        return None
    if isinstance(source, SparkSource):
        return _spark_source_schema(source, repo_path)
    file_source = batch_file_source(source)
    path = resolve_source_path(file_source.path, repo_path)
    exists = os.path.exists(path) or (any(c in path for c in "*?[") and glob.glob(path))
    if not exists:
        if source is not file_source:
            return None
        raise RepositoryError(
            f"data source '{source.name}': file '{file_source.path}' does not exist (resolved to {path}); "
            "create it or fix the 'path'"
        )
    try:
        return _read_schema(path, file_source.file_format)
    except _NoFiles:
        if source is not file_source:
            return None  # a push source whose batch folder has received no rows yet
        raise RepositoryError(f"data source '{source.name}': no data files under '{path}'") from None
    except (OSError, ValueError) as err:
        raise RepositoryError(f"data source '{source.name}': cannot read '{path}': {err}") from None


def _spark_source_schema(source: SparkSource, repo_path: str) -> pa.Schema | None:
    """A Parquet path's schema from its footer; None for tables, queries and other formats (only Spark
    reads those: their columns are checked when the Spark offline store first reads them)."""
    if source.relation_kind != "path" or source.file_format != "parquet" or "://" in source.path:
        return None
    path = resolve_source_path(source.path, repo_path)
    if not os.path.exists(path) and not glob.glob(path):
        raise RepositoryError(
            f"data source '{source.name}': path '{source.path}' does not exist (resolved to {path}); "
            "create it or fix the 'path'"
        )
    try:
        return _read_schema(path, "parquet")
    except _NoFiles:
        raise RepositoryError(f"data source '{source.name}': no data files under '{path}'") from None
    except (OSError, ValueError) as err:
        raise RepositoryError(f"data source '{source.name}': cannot read '{path}': {err}") from None


class _NoFiles(Exception):
    pass


def _first_file(path: str, suffix: str) -> str:
    if any(c in path for c in "*?["):
        matches = sorted(p for p in glob.glob(path, recursive=True) if os.path.isfile(p))
    elif os.path.isdir(path):
        matches = sorted(
            os.path.join(root, name)
            for root, _, names in os.walk(path)
            for name in names
            if name.endswith(suffix) and not name.startswith((".", "_"))
        )
    else:
        return path
    if not matches:
        raise _NoFiles(path)
    return matches[0]


def _read_schema(path: str, file_format: str) -> pa.Schema:
    """The schema from the first file's footer (Parquet) or header (CSV), without scanning rows."""
    if file_format == "csv":
        import pyarrow.csv as pcsv

        with pcsv.open_csv(_first_file(path, ".csv")) as reader:
            return reader.schema
    import pyarrow.parquet as pq

    return pq.read_schema(_first_file(path, ".parquet"))


def database_source_schema(source: PostgreSQLSource, offline_type: str, offline: Any) -> pa.Schema:
    """The Arrow schema of a table or query source, as the offline store's database reports it."""
    from potluck.definitions.errors import RetrievalError
    from potluck.offline.protocol import SourceTable

    if offline_type != "postgres":
        raise RepositoryError(
            f"data source '{source.name}' is a PostgreSQLSource, which needs offline_store.type: postgres "
            f"in feature_store.yaml (this repository's offline store is {offline_type})"
        )
    table = SourceTable(
        name=source.name,
        path="",
        file_format="",
        timestamp_column=source.timestamp_field,
        created_timestamp_column=source.created_timestamp_column,
        columns={},
        table=source.table,
        query=source.query,
    )
    try:
        schema: pa.Schema = offline.source_schema(table)
    except RetrievalError as err:
        raise RepositoryError(str(err)) from None
    except Exception as err:  # the driver's errors: a bad query, no such table
        raise RepositoryError(f"data source '{source.name}' could not be read: {str(err).strip()}") from None
    return schema
