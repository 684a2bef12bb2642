"""The DuckDB offline store: point-in-time joins and latest-row scans over Parquet and CSV files.

The join runs entirely inside DuckDB (see `potluck.offline.sql.query` for the exact semantics,
the as-of strategy and the tie-break rule) and results stream out as Arrow. Timestamps: naive
values are taken as UTC, zoned values are converted to UTC, everything is compared at microsecond
precision, and the entity timestamp column comes back as `timestamp[us, tz=UTC]`.

The last tie-break (rows equal in join keys, event and created timestamps) is the row's physical
position: files in sorted path order, then row number within the file; the last row wins.

Each retrieval job owns its own DuckDB cursor (connection to the store's in-memory database),
so jobs can be run from different threads and their temporary objects never collide.
"""

from __future__ import annotations

import itertools
import os
import re
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from potluck.definitions.errors import RetrievalError
from potluck.offline import duckdb_sources
from potluck.offline.protocol import EntityStats, RetrievalMetadata, SourceScan, SourceTable, ViewQuery
from potluck.offline.sql import (
    DUCKDB,
    EntityInput,
    SourceInput,
    Sql,
    Strategy,
    latest_rows_grouped_sql,
    point_in_time_sql,
    windows,
)
from potluck.offline.sql.query import ROW
from potluck.offline.validation import (
    check_entity_columns,
    check_join_keys,
    check_key_types,
    check_output_names,
    check_source_columns,
    infer_timestamp_column,
)
from potluck.online.time_range import RANGE_TEXT, holds_times, row_out_of_range
from potluck.repo.config import DuckDBOfflineStoreConfig

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    import pyarrow as pa

_counter = itertools.count()
_NAIVE_US = "TIMESTAMP"
_ZONED_US = "TIMESTAMP WITH TIME ZONE"
_BATCH_ROWS = 1_000_000
# When offline_store.memory_limit is unset: half of DuckDB's own default (80% of the memory it
# detects, container limits included), so 40% of memory, but at least this floor when there is
# that much; the floor alone when DuckDB's default cannot be read.
DEFAULT_MEMORY_FLOOR = "1GB"
_FLOOR_BYTES = 1_000_000_000
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGTP]?i?B|bytes)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4, "P": 1000**5}
# Parquet virtual columns: a row's position is (file_index, file_row_number).
_PARQUET_POSITION = "((CAST(file_index AS BIGINT) << 40) | file_row_number)"
_PARQUET_VIRTUAL = frozenset({"file_index", "file_row_number"})


def _arrow_table(rel: Any) -> pa.Table:
    fetch = getattr(rel, "to_arrow_table", None) or rel.fetch_arrow_table
    return fetch()


def _arrow_reader(rel: Any, batch_rows: int) -> pa.RecordBatchReader:
    fetch = getattr(rel, "to_arrow_reader", None) or rel.fetch_arrow_reader
    return fetch(batch_rows)


def _describe(cursor: duckdb.DuckDBPyConnection, relation: Sql) -> dict[str, str]:
    rows = cursor.execute("DESCRIBE SELECT * FROM " + relation.text, list(relation.params)).fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


def parse_size(text: str) -> int | None:
    """Bytes in a DuckDB size such as `18.8 GiB`, `953.6 MiB`, `1.0 GB` or `512 bytes`; None if unreadable."""
    match = _SIZE.match(text)
    if match is None:
        return None
    number, unit = float(match.group(1)), match.group(2)
    if unit.lower() == "bytes":
        return int(number)
    prefix = unit[0].upper() if len(unit) > 1 else ""
    scale = 1024 ** list(_UNITS).index(prefix) if unit[1:2].lower() == "i" else _UNITS[prefix]
    return int(number * scale)


def default_memory_limit(duckdb_default: str) -> str:
    """The store's memory limit when none is configured, from DuckDB's own default limit.

    Half of DuckDB's default, and never below 1GB unless DuckDB's default itself is lower. A
    fixed 1GB made a 1M-row join written by `COPY` a fifth slower at equal CPU time: the ordered
    Parquet writer gets too little of the limit next to the sorted result and writes mostly on
    one thread (measured in ADR 0002, Revision 2).
    """
    detected = parse_size(duckdb_default)
    if detected is None:
        return DEFAULT_MEMORY_FLOOR
    return f"{max(detected // 2, min(detected, _FLOOR_BYTES)) // 2**20}MiB"


def _reserved_error(view: ViewQuery, column: str) -> RetrievalError:
    return RetrievalError(
        f"feature view '{view.view_name}': source '{view.source.name}' ({view.source.path}) has a column "
        f"named '{column}', which the DuckDB offline store reserves for a row's position in the files; "
        "rename that column in the source files"
    )


def _reserved_column(cursor: duckdb.DuckDBPyConnection, view: ViewQuery, files: list[str]) -> RetrievalError | None:
    """Why a Parquet source could not be scanned with its positions, if a stored column takes their name."""
    if view.source.file_format != "parquet" or not files:
        return None
    try:
        stored = _describe(cursor, Sql("read_parquet(?)", (files,)))
    except Exception:
        return None
    for name in sorted(_PARQUET_VIRTUAL):
        if name in stored:
            return _reserved_error(view, name)
    return None


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


class DuckDBRetrievalJob:
    """A prepared point-in-time query; nothing runs until a `to_*` method is called."""

    def __init__(
        self,
        cursor: duckdb.DuckDBPyConnection,
        query: Sql,
        keep_alive: list[Any],
        entity_stats: EntityStats | None = None,
    ) -> None:
        self._cursor = cursor
        self._query = query
        self._keep_alive = keep_alive  # Arrow tables registered on the cursor
        self.entity_stats = entity_stats
        self.metadata: RetrievalMetadata | None = None  # set by the FeatureStore that built the job

    def persist(self, storage: Any, allow_overwrite: bool = False, timeout: int | None = None) -> None:
        """Write the result to `storage` (a `SavedDatasetFileStorage`): a temporary file, then renamed."""
        from potluck.offline.persist import persist

        persist(self, storage, allow_overwrite)

    def _relation(self) -> Any:
        return self._cursor.sql(self._query.text, params=list(self._query.params))

    def to_arrow(self) -> pa.Table:
        return _arrow_table(self._relation())

    def to_arrow_batches(self, batch_rows: int = _BATCH_ROWS) -> pa.RecordBatchReader:
        """The result as a stream of record batches (the query runs as the stream is read)."""
        return _arrow_reader(self._relation(), batch_rows)

    def to_df(self) -> pd.DataFrame:
        frame: pd.DataFrame = self.to_arrow().to_pandas()
        return frame

    def to_parquet(self, path: str | os.PathLike[str]) -> None:
        """Write the result to a Parquet file, streamed by DuckDB without passing through Python."""
        target = str(path)
        self._cursor.execute("COPY (" + self._query.text + ") TO ? (FORMAT parquet)", [*self._query.params, target])

    def relation(self) -> tuple[duckdb.DuckDBPyConnection, Sql]:
        """The job's cursor and query, for running more SQL over its result (monitoring statistics)."""
        return self._cursor, self._query

    def to_sql(self) -> str:
        """The query text, its parameters listed in a trailing comment (for reading, not running)."""
        params = ", ".join(repr(p) for p in self._query.params)
        return f"{self._query.text}\n-- parameters: [{params}]"

    def close(self) -> None:
        self._keep_alive.clear()
        self._cursor.close()


class DuckDBOfflineStore:
    """Offline store over local files, computed by an in-process DuckDB database."""

    def __init__(self, config: DuckDBOfflineStoreConfig | None = None) -> None:
        import duckdb

        self.config = config or DuckDBOfflineStoreConfig()
        # Memory is bounded by default: beyond the limit DuckDB spills joins and sorts to the
        # temporary directory (created on first spill, removed when the store closes).
        settings: dict[str, Any] = {
            "temp_directory": self.config.temp_directory
            or os.path.join(tempfile.gettempdir(), f"potluck-duckdb-{os.getpid()}-{uuid.uuid4().hex[:8]}"),
        }
        if self.config.memory_limit:
            settings["memory_limit"] = self.config.memory_limit
        if self.config.threads:
            settings["threads"] = self.config.threads
        self._con = duckdb.connect(":memory:", config=settings)
        if not self.config.memory_limit:
            row = self._con.execute("SELECT current_setting('memory_limit')").fetchone()
            limit = default_memory_limit(str(row[0]) if row else "")
            self._con.execute(f"SET memory_limit = '{limit}'")
        self._con.execute("SET TimeZone = 'UTC'")

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cursor = self._con.cursor()
        cursor.execute("SET TimeZone = 'UTC'")
        cursor.execute("SET enable_progress_bar = false")
        return cursor

    # -- point-in-time join -------------------------------------------------------------------

    def get_historical_features(
        self,
        entity_df: Any,
        views: Sequence[ViewQuery],
        *,
        availability_time: bool = False,
        strategy: Strategy | None = None,
        aggregation_plan: str | None = None,
    ) -> DuckDBRetrievalJob:
        """Training data: every entity row with each view's features as of its timestamp.

        `strategy` forces the join strategy, `aggregation_plan` ("window" or "join") the plan of
        aggregation views (tests use them to cross-check the plans); leave them unset.
        """
        cursor = self._cursor()
        keep_alive: list[Any] = []
        try:
            entity = self._prepare_entity(cursor, entity_df, keep_alive)
            check_output_names(entity.columns, views)
            inputs = [(view, self._source_input(cursor, view, entity)) for view in views]
            joined = frozenset(
                i
                for i, (view, source) in enumerate(inputs)
                if view.aggregations
                and not availability_time  # always joined
                and (
                    aggregation_plan == "join"
                    or (aggregation_plan is None and self._join_is_cheaper(cursor, view, source, entity))
                )
            )
            query = point_in_time_sql(
                DUCKDB,
                entity.input,
                inputs,
                availability_time=availability_time,
                strategy=strategy,
                joined_aggregations=joined,
            )
        except BaseException:
            cursor.close()
            raise
        given = entity.input
        stats = EntityStats(
            given.columns, given.timestamp_column, given.row_count, given.min_timestamp, given.max_timestamp
        )
        return DuckDBRetrievalJob(cursor, query, keep_alive, stats)

    def _join_is_cheaper(
        self, cursor: duckdb.DuckDBPyConnection, view: ViewQuery, source: SourceInput, entity: _Entity
    ) -> bool:
        """The aggregation plan by estimated cost, from the source's rows, distinct keys and time span."""
        q = DUCKDB.quote
        keys = [q(view.source.columns.get(k, k)) for k in view.join_keys]
        key = keys[0] if len(keys) == 1 else f"struct_pack({', '.join(keys)})"
        ts = q(view.source.timestamp_column)
        rows = cursor.execute(
            f"SELECT count({ts}), approx_count_distinct({key}), epoch_us(max({ts})) - epoch_us(min({ts})) "
            f"FROM {source.relation.text}",
            list(source.relation.params),
        ).fetchall()
        row = rows[0] if rows else None
        if row is None or not row[0]:
            return True
        entity_rows = entity.input.row_count or 1
        return windows.choose_join(view, entity_rows, int(row[0]), int(row[1] or 1), int(row[2] or 0))

    def _prepare_entity(self, cursor: duckdb.DuckDBPyConnection, entity_df: Any, keep_alive: list[Any]) -> _Entity:
        name = f"__potluck_entity_{next(_counter)}"
        table = _as_arrow(entity_df)
        if table is not None:
            import numpy as np
            import pyarrow as pa

            check_entity_columns(table.column_names)
            if table.num_rows == 0:
                raise RetrievalError("entity_df is empty: it needs at least one row")
            table = table.append_column(ROW, pa.array(np.arange(table.num_rows, dtype=np.int64)))
            keep_alive.append(table)
            cursor.register(name, table)
            relation = Sql(DUCKDB.quote(name))
        else:
            relation = _entity_relation(cursor, entity_df, name)
        types = _describe(cursor, relation)
        types.pop(ROW, None)
        check_entity_columns(list(types))
        ts_col = infer_timestamp_column(types)
        naive = types[ts_col].upper() == _NAIVE_US
        ts_expr = DUCKDB.quote(ts_col) if naive else DUCKDB.to_utc(DUCKDB.quote(ts_col), types[ts_col])
        try:
            count, low, high = cursor.execute(
                f"SELECT count(*), min({ts_expr}), max({ts_expr}) FROM {relation.text}", list(relation.params)
            ).fetchone() or (0, None, None)
        except Exception as err:  # DuckDB raises a family of its own errors
            raise RetrievalError(f"entity_df could not be read: {err}") from None
        if count == 0:
            raise RetrievalError("entity_df is empty: it needs at least one row")
        return _Entity(
            EntityInput(
                relation=relation,
                columns=tuple(types),
                timestamp_column=ts_col,
                timestamp_is_utc_naive=naive,
                min_timestamp=low if isinstance(low, datetime) else None,
                max_timestamp=high if isinstance(high, datetime) else None,
                timestamp_type=types[ts_col],
                row_count=int(count),
            ),
            types,
        )

    def _source_input(self, cursor: duckdb.DuckDBPyConnection, view: ViewQuery, entity: _Entity | None) -> SourceInput:
        if entity is not None:
            check_join_keys(view, entity.types)
        table = view.source
        if table.table or table.query or table.file_format not in ("parquet", "csv"):
            what = f"table '{table.table}'" if table.table else "query" if table.query else f"{table.file_format} files"
            raise RetrievalError(
                f"feature view '{view.view_name}': source '{table.name}' reads a {what}, which the DuckDB offline "
                "store cannot read; use the offline store of that source in feature_store.yaml (offline_store: "
                "type: spark for a SparkSource), or Parquet or CSV files"
            )
        files = duckdb_sources.source_files(view.source, view.view_name, allow_empty_directory=True)
        row_count: int | None = None
        if files:
            relation, ordinal = duckdb_sources.scan(view.source, files)
            if view.source.file_format == "parquet":
                row_count = duckdb_sources.parquet_row_count(cursor, files)
        else:
            row_count = 0
            relation, ordinal = duckdb_sources.empty_scan(view, entity.types if entity is not None else {})
        try:
            columns = _describe(cursor, relation)
        except Exception as err:
            reserved = _reserved_column(cursor, view, files)
            if reserved is not None:
                raise reserved from None
            raise RetrievalError(
                f"feature view '{view.view_name}': source '{view.source.name}' ({view.source.path}) "
                f"could not be read: {err}"
            ) from None
        if view.source.file_format == "parquet" and "file_index" in columns:
            # A stored column of that name would hide the file position the tie-break relies on.
            raise _reserved_error(view, "file_index")
        check_source_columns(view, columns, view.source.path)
        if entity is not None:
            check_key_types(view, entity.types, columns)
        created = view.source.created_timestamp_column
        return SourceInput(
            relation=relation,
            ordinal=ordinal,
            timestamp_is_utc_naive=columns[view.source.timestamp_column].upper() == _NAIVE_US,
            created_is_utc_naive=bool(created) and columns[created].upper() == _NAIVE_US,
            timestamp_type=columns[view.source.timestamp_column],
            created_type=columns[created] if created else "",
            row_count=row_count,
            ordinal_is_stable=bool(files) and view.source.file_format == "parquet",
        )

    # -- materialization, schema, writes ------------------------------------------------------

    def latest_rows(
        self, view: ViewQuery, start: datetime | None, end: datetime, batch_rows: int
    ) -> Iterator[pa.RecordBatch]:
        """Per entity key, the latest row with `start <= event_ts <= end`, in batches of <= `batch_rows`."""
        if batch_rows < 1:
            raise ValueError("batch_rows must be at least 1")
        cursor = self._cursor()
        try:
            source = self._source_input(cursor, view, None)
            types = _describe(cursor, source.relation)
            zoned = frozenset(name for name, kind in types.items() if kind.upper() == _ZONED_US)
            lower = None if start is None else _naive_utc(start)
            query = latest_rows_grouped_sql(
                DUCKDB,
                view,
                source,
                lower,
                _naive_utc(end),
                zoned_columns=zoned,
                by_position=view.source.file_format != "csv",  # a CSV row number is not stable
            )
            reader = _arrow_reader(cursor.sql(query.text, params=list(query.params)), batch_rows)
            for batch in reader:
                for offset in range(0, batch.num_rows, batch_rows):
                    yield batch.slice(offset, batch_rows)
        finally:
            cursor.close()

    def engine_cursor(self) -> duckdb.DuckDBPyConnection:
        """A new cursor on the store's database (its memory limit and spill folder); the caller closes it."""
        return self._cursor()

    def source_scan(self, view: ViewQuery, start: datetime | None, end: datetime | None) -> SourceScan:
        """The view's source rows with `start <= event_ts <= end` (either bound optional), its features
        under their own names, on a new cursor (the caller closes it)."""
        cursor = self._cursor()
        try:
            source = self._source_input(cursor, view, None)
            ts = DUCKDB.quote(view.source.timestamp_column)
            if not source.timestamp_is_utc_naive:
                ts = DUCKDB.to_utc(ts, source.timestamp_type)
            columns = ", ".join(
                f"{DUCKDB.quote(view.source.columns.get(f.name, f.name))} AS {DUCKDB.quote(f.name)}"
                for f in view.features
            )
            text = f"(SELECT {columns}, {source.ordinal} AS __potluck_position FROM {source.relation.text}"
            params = list(source.relation.params)
            bounds = [(">=", start), ("<=", end)]
            where = [f"{ts} {op} ?" for op, bound in bounds if bound is not None]
            params += [_naive_utc(bound) for _, bound in bounds if bound is not None]
            text += (" WHERE " + " AND ".join(where) if where else "") + ")"
            relation = Sql(text, tuple(params))
            count = source.row_count if not where else None
            if count is None:  # reads the timestamp column only
                rows = cursor.execute(f"SELECT count(*) FROM {relation.text}", list(relation.params)).fetchall()
                count = int(rows[0][0]) if rows else 0
        except BaseException:
            cursor.close()
            raise
        return SourceScan(cursor=cursor, relation=relation, position="__potluck_position", row_count=count)

    def events(
        self, view: ViewQuery, start: datetime | None, end: datetime, batch_rows: int
    ) -> Iterator[pa.RecordBatch]:
        """Every event of the view's source with `start <= event_ts <= end`, ordered by key then
        position (`potluck.offline.sql.events`); for an aggregation view, its input columns."""
        from potluck.offline.sql.events import events_sql
        from potluck.offline.sql.windows import inputs_view

        if batch_rows < 1:
            raise ValueError("batch_rows must be at least 1")
        view = inputs_view(view) if view.aggregations else view
        cursor = self._cursor()
        try:
            source = self._source_input(cursor, view, None)
            lower = None if start is None else _naive_utc(start)
            query = events_sql(DUCKDB, view, source, lower, _naive_utc(end))
            yield from _arrow_reader(cursor.sql(query.text, params=list(query.params)), batch_rows)
        finally:
            cursor.close()

    def source_schema(self, source: SourceTable) -> pa.Schema:
        """The Arrow schema of a source as DuckDB reads it (Parquet metadata or a CSV sniff)."""
        files = duckdb_sources.source_files(source)
        relation = Sql("read_csv(?)" if source.file_format == "csv" else "read_parquet(?)", (files,))
        cursor = self._cursor()
        try:
            rel = cursor.sql("SELECT * FROM " + relation.text + " LIMIT 0", params=list(relation.params))
            return _arrow_table(rel).schema
        finally:
            cursor.close()

    def append(self, source: SourceTable, table: pa.Table, *, part_name: str | None = None) -> None:
        """Append rows to a Parquet source atomically (new part file, or rewrite of a single file);
        `part_name` names the part file (directory sources only).

        Times outside years 1 to 9999 are refused: they could be stored but never served.
        """
        append_rows(source, table, part_name=part_name)

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> DuckDBOfflineStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def append_rows(source: SourceTable, table: pa.Table, *, part_name: str | None = None) -> None:
    """Append rows to a Parquet file source (`duckdb_sources.append`), refusing times outside years 1 to 9999."""
    for name, column in zip(table.column_names, table.columns, strict=True):
        found = row_out_of_range(column) if holds_times(column.type) else None
        if found is not None:
            bad, shown = found
            raise RetrievalError(
                f"append to source '{source.name}': column '{name}' row {bad} ({shown}) "
                f"is outside the supported range ({RANGE_TEXT})"
            )
    duckdb_sources.append(source, table, part_name=part_name)


class _Entity:
    __slots__ = ("input", "types")

    def __init__(self, input: EntityInput, types: dict[str, str]) -> None:
        self.input = input
        self.types = types

    @property
    def columns(self) -> tuple[str, ...]:
        return self.input.columns


def _as_arrow(entity_df: Any) -> pa.Table | None:
    """The entity rows as an Arrow table for in-memory inputs, None for paths and SQL."""
    import pyarrow as pa

    if isinstance(entity_df, pa.Table):
        return entity_df
    if isinstance(entity_df, pa.RecordBatch):
        return pa.Table.from_batches([entity_df])
    module = type(entity_df).__module__
    if module.startswith("pandas"):
        import pandas as pd

        if isinstance(entity_df, pd.DataFrame):
            return pa.Table.from_pandas(entity_df, preserve_index=False)
    if module.startswith("polars"):
        import polars as pl

        if isinstance(entity_df, pl.DataFrame):
            return entity_df.to_arrow()
        if isinstance(entity_df, pl.LazyFrame):
            return entity_df.collect().to_arrow()
    if isinstance(entity_df, (str, os.PathLike)):
        return None
    raise RetrievalError(
        "entity_df must be a pandas, polars or pyarrow table, a Parquet path or a SQL query, "
        f"got {type(entity_df).__name__}"
    )


def _entity_relation(cursor: duckdb.DuckDBPyConnection, entity_df: str | os.PathLike[str], name: str) -> Sql:
    """The entity rows of a Parquet path or SQL query, with their input position in the row column.

    Parquet files are scanned in place, the position being (file in sorted path order, row in the
    file), so the rows are neither copied nor numbered by a window over the whole input. A file
    holding a column named like a position column (which would hide it), and SQL queries, are
    copied into a temporary table numbered in scan order instead.
    """
    source, files = _entity_sql(entity_df)
    if files is not None:
        scan = Sql("read_parquet(?)", (files,))
        try:
            columns = _describe(cursor, scan)
        except Exception as err:  # DuckDB raises a family of its own errors
            raise RetrievalError(f"entity_df could not be read: {err}") from None
        if not _PARQUET_VIRTUAL.intersection(columns):
            return Sql(f"(SELECT *, {_PARQUET_POSITION} AS {DUCKDB.quote(ROW)} FROM ") + scan + ")"
    try:
        cursor.execute(
            f"CREATE TEMP TABLE {DUCKDB.quote(name)} AS SELECT *, "
            f"row_number() OVER () - 1 AS {DUCKDB.quote(ROW)} FROM ({source.text})",
            list(source.params),
        )
    except Exception as err:  # DuckDB raises a family of its own errors
        raise RetrievalError(f"entity_df could not be read: {err}") from None
    return Sql(DUCKDB.quote(name))


def _entity_sql(entity_df: str | os.PathLike[str]) -> tuple[Sql, list[str] | None]:
    """A query of the entity rows, and the Parquet files it reads (None for a SQL query)."""
    text = str(entity_df)
    is_path = isinstance(entity_df, os.PathLike) or text.lower().endswith(".parquet") or os.path.isdir(text)
    if not is_path:
        return Sql(text.strip().rstrip(";")), None
    path = Path(text)
    if path.is_dir():
        files = sorted(str(p) for p in path.rglob("*.parquet") if p.is_file() and not p.name.startswith("."))
        if not files:
            raise RetrievalError(f"entity_df directory '{path}' holds no *.parquet file")
    elif path.is_file():
        files = [str(path)]
    else:
        raise RetrievalError(f"entity_df file '{path}' does not exist")
    return Sql("SELECT * FROM read_parquet(?)", (files,)), files


__all__ = ["DuckDBOfflineStore", "DuckDBRetrievalJob"]


if TYPE_CHECKING:
    from potluck.offline.protocol import OfflineStore, RetrievalJob, SupportsAppend, SupportsSourceScan

    def _conforms(
        store: DuckDBOfflineStore, job: DuckDBRetrievalJob
    ) -> tuple[OfflineStore, SupportsAppend, SupportsSourceScan, RetrievalJob]:
        return store, store, store, job
