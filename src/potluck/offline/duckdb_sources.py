"""Reading and appending to file sources (Parquet file, Parquet directory, glob, CSV) with DuckDB.

A source path is resolved to an explicit, sorted list of files: a directory means every
`*.parquet` file below it (recursively), a path with `*`, `?` or `[` is a glob. The list order
defines the physical order used as the last tie-break of the point-in-time join (file position,
then row number within the file), so it must be stable: files are sorted by their path.

Appending to a directory writes a new part file under a temporary name and renames it into
place; part names start with a nanosecond timestamp, so later appends sort later and win
remaining ties. Appending to a single Parquet file rewrites it to a temporary file in the same
folder and renames it over the original (atomic on POSIX; concurrent appenders to one file are
not coordinated, use a directory source for that).
"""

from __future__ import annotations

import glob
import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from potluck.definitions.errors import PotluckError, RetrievalError
from potluck.offline.protocol import SourceTable, ViewQuery
from potluck.offline.sql import DUCKDB, Sql

if TYPE_CHECKING:
    import pyarrow as pa

_GLOB_CHARS = ("*", "?", "[")
_CSV_ROW = '"__potluck_csv_row"'


def is_glob(path: str) -> bool:
    return any(c in path for c in _GLOB_CHARS)


def source_files(
    source: SourceTable, view_name: str | None = None, *, allow_empty_directory: bool = False
) -> list[str]:
    """The files of a source in their stable order, or a RetrievalError naming what is missing.

    With `allow_empty_directory`, an existing directory holding no file yet (a push source's batch
    directory before its first push) gives an empty list instead of an error.
    """
    who = f"view '{view_name}': " if view_name else ""
    path = source.path
    if is_glob(path):
        files = sorted(p for p in glob.glob(path, recursive=True) if os.path.isfile(p))
        if not files:
            raise RetrievalError(f"{who}source '{source.name}': no file matches '{path}'")
        return files
    if os.path.isdir(path):
        pattern = f"*.{source.file_format}"  # *.parquet, *.csv (Spark also *.json, *.avro)
        files = sorted(str(p) for p in Path(path).rglob(pattern) if p.is_file() and not p.name.startswith("."))
        if not files and not allow_empty_directory:
            raise RetrievalError(f"{who}source '{source.name}': directory '{path}' holds no {pattern} file")
        return files
    if not os.path.isfile(path):
        raise RetrievalError(f"{who}source '{source.name}': file '{path}' does not exist")
    return [path]


def scan(source: SourceTable, files: list[str]) -> tuple[Sql, str]:
    """A DuckDB relation reading the files, and the SQL expression of a row's physical position."""
    if source.file_format == "csv":
        # The CSV reader has no row-number column; a window over the whole ordered scan numbers
        # rows, in a subquery so that the numbering is done before any filter or join reorders them.
        return (
            Sql(f"(SELECT *, row_number() OVER () AS {_CSV_ROW} FROM read_csv(?))", (files,)),
            _CSV_ROW,
        )
    return (
        Sql("read_parquet(?, file_row_number = true)", (files,)),
        "((CAST(file_index AS BIGINT) << 40) | file_row_number)",
    )


def parquet_row_count(cursor: Any, files: list[str]) -> int | None:
    """The number of rows in Parquet files, from their footers (no data is read)."""
    try:
        row = cursor.execute("SELECT sum(num_rows) FROM parquet_file_metadata(?)", [files]).fetchone()
    except Exception:  # an unreadable file is reported by the caller with its context
        return None
    return int(row[0]) if row and row[0] is not None else None


def empty_scan(view: ViewQuery, key_types: dict[str, str]) -> tuple[Sql, str]:
    """A relation with a view's source columns and no rows, typed from the view's declarations.

    A source without files has no schema of its own: features take their declared types, join keys
    the types in `key_types` (the entity columns', BIGINT when unknown), timestamps naive UTC.
    """
    table = view.source
    typed: dict[str, str] = {}
    for key in view.join_keys:
        typed.setdefault(table.columns.get(key, key), key_types.get(key, "BIGINT"))
    for feature in view.source_fields:
        typed.setdefault(table.columns.get(feature.name, feature.name), DUCKDB.type_name(feature.dtype))
    for column in (table.timestamp_column, table.created_timestamp_column):
        if column:
            typed.setdefault(column, DUCKDB.utc_timestamp_type)
    select = ", ".join(f"CAST(NULL AS {kind}) AS {DUCKDB.quote(name)}" for name, kind in typed.items())
    return Sql(f"(SELECT {select} WHERE false)"), "CAST(0 AS BIGINT)"


def is_directory_source(source: SourceTable) -> bool:
    """Whether appends to `source` add part files to a folder (not a single file nor a glob)."""
    path = source.path
    return not is_glob(path) and (
        os.path.isdir(path) or not (os.path.isfile(path) or path.lower().endswith(".parquet"))
    )


def append(source: SourceTable, table: pa.Table, *, part_name: str | None = None) -> None:
    """Append rows to a Parquet source (see the module docstring for how it stays atomic).

    `part_name`: the name of the new part file in a directory source (replacing a file of that
    name); by default a timestamped name.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if source.file_format != "parquet":
        raise PotluckError(f"source '{source.name}': appending is supported for Parquet sources only")
    path = source.path
    if is_glob(path):
        raise PotluckError(f"source '{source.name}': cannot append to a glob path '{path}'; use a directory")
    if part_name is not None and not is_directory_source(source):
        raise PotluckError(f"source '{source.name}': '{path}' is a single file; named parts need a directory")
    if os.path.isfile(path):
        existing = pq.read_table(path)
        combined = pa.concat_tables([existing, _conform(source, table, existing.schema)])
        _write_atomically(combined, path)
        return
    if not os.path.isdir(path) and path.lower().endswith(".parquet"):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        _write_atomically(table, path)
        return
    os.makedirs(path, exist_ok=True)
    schema = _directory_schema(path)
    data = _conform(source, table, schema) if schema is not None else table
    name = part_name or f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:12]}.parquet"
    _write_atomically(data, os.path.join(path, name))


def _directory_schema(path: str) -> pa.Schema | None:
    import pyarrow.parquet as pq

    files = sorted(p for p in Path(path).rglob("*.parquet") if p.is_file() and not p.name.startswith("."))
    return pq.read_schema(files[-1]) if files else None


def _map_as_struct(source: SourceTable, column: str, values: pa.ChunkedArray, target: pa.StructType) -> pa.Array:
    """Map values into a Parquet source whose column holds them as a struct (pandas writes dicts so)."""
    import pyarrow as pa

    fields = {target.field(i).name for i in range(target.num_fields)}
    rows = [None if m is None else dict(m) for m in values.to_pylist()]
    for row, entries in enumerate(rows):
        extra = sorted(set(entries or ()) - fields)
        if extra:
            raise PotluckError(
                f"source '{source.name}': column '{column}' row {row} has map key(s) {', '.join(map(repr, extra))} "
                f"that its struct column lacks (it holds {', '.join(map(repr, sorted(fields)))})"
            )
    return pa.array(rows, type=target)


def _conform(source: SourceTable, table: pa.Table, schema: pa.Schema) -> pa.Table:
    import pyarrow as pa

    missing = [n for n in schema.names if n not in table.column_names]
    if missing:
        raise PotluckError(
            f"source '{source.name}': rows to append lack column(s) {', '.join(repr(m) for m in missing)}"
        )
    table = table.select(schema.names)
    try:
        for i, target in enumerate(schema.types):
            if pa.types.is_map(table.schema.types[i]) and pa.types.is_struct(target):
                table = table.set_column(i, schema.names[i], _map_as_struct(source, schema.names[i], table[i], target))
        return table.cast(schema)
    except (ValueError, TypeError, NotImplementedError) as err:
        raise PotluckError(f"source '{source.name}': rows to append do not fit its schema: {err}") from None


def _write_atomically(table: pa.Table, path: str) -> None:
    import pyarrow.parquet as pq

    folder, base = os.path.split(path)
    tmp = os.path.join(folder, f".{base}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
