"""What statistics are computed over: a view's source in a time range, a feature service's views,
a training dataset (a retrieval job or a Parquet file), any Parquet of logged rows, an Arrow table."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from potluck.definitions.errors import RetrievalError
from potluck.monitoring.statistics import Column, describe
from potluck.offline.protocol import SupportsSourceScan, ViewQuery
from potluck.offline.sql import Sql

# Columns of a dataset that are not features: the entity timestamp and the engine's own columns.
_NOT_FEATURES = frozenset({"event_timestamp", "created_timestamp", "__potluck_row", "file_row_number", "file_index"})
SEPARATOR = "__"  # `view__feature` columns of training data with full feature names


@dataclass
class Scan:
    """Rows to profile: a relation on a cursor, the columns to profile and how to hash a row."""

    cursor: Any
    relation: Sql
    columns: list[Column]
    source: str
    position: str | None = None
    row_count: int | None = None
    owns_cursor: bool = True


def view_scans(
    offline: SupportsSourceScan,
    queries: Sequence[ViewQuery],
    start: datetime | None,
    end: datetime | None,
) -> Iterator[Scan]:
    """One scan per view: its features over its batch source, event time in [start, end]."""
    for query in queries:
        scan = offline.source_scan(query, start, end)
        try:
            types = describe(scan.cursor, scan.relation)
            columns = [Column(f.name, query.view_name, types[f.name]) for f in query.features]
        except BaseException:
            scan.cursor.close()
            raise
        yield Scan(scan.cursor, scan.relation, columns, f"view:{query.view_name}", scan.position, scan.row_count)


@contextmanager
def dataset_scan(
    offline: SupportsSourceScan, data: Any, features: Sequence[str] | None = None, name: str | None = None
) -> Iterator[Scan]:
    """A training dataset or logged rows: a retrieval job, a Parquet file or folder, an Arrow table."""
    relation_of = getattr(data, "relation", None)
    keep: list[Any] = []
    if callable(relation_of):  # a retrieval job of the DuckDB store: profiled where it runs
        cursor, query = relation_of()
        relation, owns, source, position, rows = Sql("(") + query + ")", False, name or "retrieval_job", None, None
    else:
        cursor, owns = offline.engine_cursor(), True
        position = None
        if isinstance(data, (str, os.PathLike)):
            files = parquet_files(Path(data))
            relation = Sql("read_parquet(?, file_row_number = true, union_by_name = true)", (files,))
            position, source = "file_index, file_row_number", name or f"dataset:{data}"
            found = cursor.execute("SELECT sum(num_rows) FROM parquet_file_metadata(?)", [files]).fetchall()
            rows = int(found[0][0]) if found and found[0][0] is not None else None
        else:
            table = _arrow(data)
            keep.append(table)
            cursor.register("__potluck_profiled", table)
            relation, source, rows = Sql('"__potluck_profiled"'), name or "table", table.num_rows
    try:
        types = describe(cursor, relation)
        columns = _dataset_columns(types, features, source)
        yield Scan(cursor, relation, columns, source, position, rows, owns)
    finally:
        if owns:
            cursor.close()
        keep.clear()


def parquet_files(path: Path) -> list[str]:
    if path.is_dir():
        files = sorted(str(p) for p in path.rglob("*.parquet") if p.is_file() and not p.name.startswith("."))
        if not files:
            raise RetrievalError(f"dataset folder '{path}' holds no *.parquet file")
        return files
    if not path.is_file():
        raise RetrievalError(f"dataset '{path}' does not exist; pass a Parquet file or a folder of them")
    return [str(path)]


def _arrow(data: Any) -> Any:
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    if type(data).__module__.startswith("pandas"):
        return pa.Table.from_pandas(data, preserve_index=False)
    if hasattr(data, "to_arrow"):
        return data.to_arrow()
    raise RetrievalError(
        "statistics need a feature view or service (or its name), a retrieval job, a Parquet path, "
        f"a pandas DataFrame or an Arrow table; got {type(data).__name__}"
    )


def _dataset_columns(types: dict[str, str], features: Sequence[str] | None, source: str) -> list[Column]:
    if features is not None:
        unknown = [f for f in features if f not in types]
        if unknown:
            raise RetrievalError(
                f"{source}: no column {', '.join(repr(u) for u in unknown)}; it has {', '.join(types)}"
            )
        names = list(features)
    else:
        names = [n for n in types if n not in _NOT_FEATURES and not n.startswith("__potluck")]
    columns = []
    for name in names:
        view, _, feature = name.rpartition(SEPARATOR)
        columns.append(Column(feature, view, types[name], name) if view else Column(name, None, types[name]))
    return columns


@contextmanager
def log_scan(
    offline: SupportsSourceScan,
    files: Sequence[str],
    columns: Sequence[str],
    source: str,
    start: datetime | None,
    end: datetime | None,
) -> Iterator[Scan]:
    """Logged serving rows (a feature service's log files) with a log time in [start, end]: the
    `view__feature` value columns, as served (a value not found counts as a null)."""
    if not files:
        raise RetrievalError(f"{source}: no log files in the time range; nothing was logged there yet")
    where: list[str] = []
    params: list[Any] = [list(files)]
    if start is not None:
        where.append('"__log_timestamp" >= ?')
        params.append(start)
    if end is not None:
        where.append('"__log_timestamp" <= ?')
        params.append(end)
    read = "read_parquet(?, file_row_number = true, union_by_name = true, hive_partitioning = false)"
    text = f"(SELECT *, file_index FROM {read}{' WHERE ' + ' AND '.join(where) if where else ''})"
    relation = Sql(text, tuple(params))
    cursor = offline.engine_cursor()
    try:
        types = describe(cursor, relation)
        found = cursor.execute(f"SELECT count(*) FROM {text}", params).fetchall()
        missing = [c for c in columns if c not in types]
        if missing:
            raise RetrievalError(f"{source}: the log files have no column {', '.join(repr(m) for m in missing)}")
        yield Scan(
            cursor,
            relation,
            _dataset_columns(types, list(columns), source),
            source,
            "file_index, file_row_number",
            int(found[0][0]),
        )
    finally:
        cursor.close()
