"""Reading sources and entity rows into Spark, each with a row position for the join's last tie-break.

A source is a `SparkSource` table or query, or files (a `FileSource`, or a `SparkSource` path):
local paths are resolved to the same sorted file list as on DuckDB (`duckdb_sources.source_files`),
and a Parquet row's position is (file index in that list, row number within the file), exactly
DuckDB's, so both engines break the last tie alike. Other cases, documented in docs/spark.md:
CSV, JSON and Avro rows take Spark's row id in scan order; tables, queries and remote paths
take a hash of the row's columns (deterministic, not the storage order).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from potluck.definitions.errors import RetrievalError
from potluck.offline import duckdb_sources
from potluck.offline.protocol import ViewQuery
from potluck.offline.sql.spark_dialect import SPARK

POSITION = "__potluck_pos"
_FILE_SHIFT = 40


def spark_uri(path: str) -> str:
    """A local file as Spark names it in `_metadata.file_path` (`file:/...`, percent-encoded)."""
    return "file:" + Path(path).absolute().as_uri()[len("file://") :]


def _reader(spark: Any, file_format: str) -> Any:
    reader = spark.read.format(file_format)
    if file_format == "csv":
        reader = reader.option("header", "true").option("inferSchema", "true")
    return reader


def _with_file_positions(frame: Any, files: list[str], file_format: str) -> Any:
    from pyspark.sql import functions as F

    if file_format == "parquet":
        row = F.col("_metadata.row_index")
    else:
        row = F.monotonically_increasing_id()
    if len(files) == 1:
        index = F.lit(0).cast("bigint")
    else:
        pairs: list[Any] = []
        for i, path in enumerate(files):
            pairs += [F.lit(spark_uri(path)), F.lit(i).cast("bigint")]
        index = F.create_map(*pairs)[F.col("_metadata.file_path")]
    return frame.withColumn(POSITION, F.shiftleft(index, _FILE_SHIFT).bitwiseOR(row))


def _hashed(frame: Any) -> Any:
    """Positions for rows without a stored order: a hash of their hashable columns."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import MapType

    columns = [F.col(SPARK.quote(f.name)) for f in frame.schema.fields if not isinstance(f.dataType, MapType)]
    return frame.withColumn(POSITION, F.xxhash64(*columns) if columns else F.lit(0).cast("bigint"))


def read_files(spark: Any, files: list[str], file_format: str, who: str) -> Any:
    """The rows of local files, with `POSITION`; `who` begins the error message when they cannot be read."""
    try:
        frame = _reader(spark, file_format).load(files)
    except Exception as err:
        raise RetrievalError(f"{who}: {_first_line(err)}") from None
    return _with_file_positions(frame, files, file_format)


def source_frame(spark: Any, view: ViewQuery, key_types: dict[str, str]) -> tuple[Any, bool, int | None]:
    """A view's source as a DataFrame with `POSITION`; whether positions are stored ones; its row count
    when Parquet footers tell it (None otherwise)."""
    table = view.source
    who = f"feature view '{view.view_name}': source '{table.name}'"
    try:
        if table.table:
            return _hashed(spark.table(table.table)), False, None
        if table.query:
            return _hashed(spark.sql(table.query)), False, None
    except Exception as err:
        what = f"table '{table.table}'" if table.table else "query"
        raise RetrievalError(f"{who}: Spark could not read its {what}: {_first_line(err)}") from None
    if "://" in table.path:
        try:
            frame = _reader(spark, table.file_format).load(table.path)
        except Exception as err:
            raise RetrievalError(f"{who}: Spark could not read '{table.path}': {_first_line(err)}") from None
        return _hashed(frame), False, None
    files = duckdb_sources.source_files(table, view.view_name, allow_empty_directory=True)
    if not files:
        return empty_frame(spark, view, key_types), True, 0
    rows = _parquet_rows(files) if table.file_format == "parquet" else None
    reading = f"{who}: Spark could not read its {table.file_format} files"
    return read_files(spark, files, table.file_format, reading), table.file_format == "parquet", rows


def _parquet_rows(files: list[str]) -> int | None:
    import pyarrow.parquet as pq

    try:
        return int(sum(pq.ParquetFile(f).metadata.num_rows for f in files))
    except (OSError, ValueError):
        return None


def empty_frame(spark: Any, view: ViewQuery, key_types: dict[str, str]) -> Any:
    """No rows, with a view's source columns typed from its declarations (a source with no file yet)."""
    table = view.source
    typed: dict[str, str] = {}
    for key in view.join_keys:
        typed.setdefault(table.columns.get(key, key), key_types.get(key, "BIGINT"))
    for feature in view.source_fields:
        typed.setdefault(table.columns.get(feature.name, feature.name), SPARK.type_name(feature.dtype))
    for column in (table.timestamp_column, table.created_timestamp_column):
        if column:
            typed.setdefault(column, "TIMESTAMP")
    typed[POSITION] = "BIGINT"
    schema = ", ".join(f"{SPARK.quote(name)} {kind}" for name, kind in typed.items())
    return spark.createDataFrame([], schema)


def entity_files(path: str) -> list[str]:
    if os.path.isdir(path):
        files = sorted(str(p) for p in Path(path).rglob("*.parquet") if p.is_file() and not p.name.startswith("."))
        if not files:
            raise RetrievalError(f"entity_df directory '{path}' holds no *.parquet file")
        return files
    if not os.path.isfile(path):
        raise RetrievalError(f"entity_df file '{path}' does not exist")
    return [path]


def _first_line(err: BaseException) -> str:
    """What went wrong, in one line: the root cause of a Java error, else the message's first line."""
    java = getattr(err, "java_exception", None)
    if java is not None:
        try:
            while java.getCause() is not None:
                java = java.getCause()
            text = str(java.getMessage() or java.toString())
        except Exception:
            text = str(err)
    else:
        text = str(err)
    text = text.strip()
    return text.splitlines()[0] if text else type(err).__name__


# Spark type names as the shared validation (DuckDB spellings) compares them by family.
_TYPE_NAMES = {
    "bigint": "BIGINT",
    "int": "INTEGER",
    "smallint": "SMALLINT",
    "tinyint": "TINYINT",
    "double": "DOUBLE",
    "float": "FLOAT",
    "string": "VARCHAR",
    "boolean": "BOOLEAN",
    "binary": "BLOB",
    "timestamp": "TIMESTAMP WITH TIME ZONE",
    "timestamp_ntz": "TIMESTAMP",
    "date": "DATE",
    "void": "NULL",
}


def type_names(frame: Any) -> dict[str, str]:
    """Each column's type, spelled as `potluck.offline.validation` compares them."""
    out: dict[str, str] = {}
    for f in frame.schema.fields:
        simple = f.dataType.simpleString()
        out[f.name] = _TYPE_NAMES.get(simple, simple.upper())
    return out


def spark_type(frame: Any, column: str) -> str:
    """A column's Spark type name (`timestamp`, `timestamp_ntz`, `date`, ...)."""
    return str(frame.schema[column].dataType.simpleString())
