"""The PostgreSQL offline store: point-in-time joins and latest-row scans inside a PostgreSQL database.

The queries are the builders of `potluck.offline.sql` with the `POSTGRES` dialect (the same rules
as DuckDB's, see `query.py`). Sources are `PostgreSQLSource` tables or queries; `FileSource`
definitions are refused with an error naming the source (load the files into a table).

Entity rows (pandas, polars, Arrow, a Parquet path) are uploaded with COPY into a temporary table
of the job's session, numbered in input order; an entity SQL query runs in the database into one.
Results stream out through a server-side cursor in batches (`postgres_arrow`). Sessions run in UTC.

The last tie-break (rows equal in join keys, event and created timestamps) is the row's physical
position: for a table, its tuple position (`ctid`: block, then line), i.e. insertion order for a
table only appended to; for a query, the order in which it returns rows (no tie-break guaranteed
unless the query orders them).
"""

from __future__ import annotations

import itertools
import os
import weakref
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from potluck.definitions.errors import MissingExtraError, RetrievalError
from potluck.offline import postgres_arrow
from potluck.offline.postgres_config import PostgreSQLOfflineStoreConfig
from potluck.offline.protocol import EntityStats, RetrievalMetadata, SourceTable, ViewQuery
from potluck.offline.sql import POSTGRES, EntityInput, SourceInput, Sql, Strategy, latest_rows_sql, point_in_time_sql
from potluck.offline.sql.query import ROW
from potluck.offline.validation import (
    check_entity_columns,
    check_join_keys,
    check_key_types,
    check_output_names,
    check_source_columns,
    infer_timestamp_column,
)

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

_counter = itertools.count()
_BATCH_ROWS = 100_000
_NAIVE = "TIMESTAMP"
_POSITION = "__potluck_pos"
# A heap tuple's position (block, line): ordered as it is; as one number (blocks < 2**32, lines
# < 2**16) where a BIGINT is needed (a label vote's position), at the cost of a text conversion.
_CTID = "ctid"
_CTID_NUMBER = "((({pos}::text::point)[0]::bigint << 16) | ({pos}::text::point)[1]::bigint)"


def _driver() -> Any:
    try:
        import psycopg
    except ImportError:
        raise MissingExtraError("psycopg", "postgres") from None
    return psycopg


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _describe(conn: Any, relation: Sql) -> dict[str, str]:
    with conn.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {relation.text} AS __potluck_d LIMIT 0", relation.params)
        return {d.name: postgres_arrow.type_name(d.type_code) for d in cursor.description or []}


class PostgreSQLRetrievalJob:
    """A prepared point-in-time query; nothing runs until a `to_*` method is called.

    The entity rows live in a temporary table of a session. The session that planned the job is
    kept for its first read and returned to the pool when that read ends (or fails); a later
    read takes a session from the pool and uploads the entity rows again. A job never holds a
    connection between reads, so unclosed jobs cannot exhaust the pool.
    """

    def __init__(
        self, store: PostgreSQLOfflineStore, conn: Any, query: Sql, entity_stats: EntityStats | None, upload: Any
    ) -> None:
        self._store = store
        self._conn: Any = conn
        self._query = query
        self._upload = upload  # conn -> None: recreates the entity table in a new session
        self.entity_stats = entity_stats
        self.metadata: RetrievalMetadata | None = None
        self._finalizer = weakref.finalize(self, _release_later, store, [conn])

    def persist(self, storage: Any, allow_overwrite: bool = False, timeout: int | None = None) -> None:
        from potluck.offline.persist import persist

        persist(self, storage, allow_overwrite)

    def _session(self) -> Any:
        conn, self._conn = self._conn, None
        self._finalizer.detach()
        if conn is None:
            conn = self._store._connect()
            try:
                self._upload(conn)
            except BaseException:
                self._store._release(conn)
                raise
        return conn

    def _stream(self, batch_rows: int) -> Iterator[pa.RecordBatch]:
        conn = self._session()
        try:
            yield from postgres_arrow.batches(conn, self._query, batch_rows)
        finally:
            self._store._release(conn)

    def to_arrow_batches(self, batch_rows: int = _BATCH_ROWS) -> pa.RecordBatchReader:
        """The result as a stream of record batches, read from a server-side cursor as it is consumed."""
        import pyarrow as pa

        stream = self._stream(batch_rows)
        first = next(stream)  # runs the query; the first batch carries the result's schema
        schema = first.schema

        def rest() -> Iterator[pa.RecordBatch]:
            yield first
            for batch in stream:
                yield batch if batch.schema == schema else batch.cast(schema)

        return pa.RecordBatchReader.from_batches(schema, rest())

    def to_arrow(self) -> pa.Table:
        return self.to_arrow_batches().read_all()

    def to_df(self) -> pd.DataFrame:
        frame: pd.DataFrame = self.to_arrow().to_pandas()
        return frame

    def to_parquet(self, path: str | os.PathLike[str]) -> None:
        """Write the result to a Parquet file, batch by batch."""
        import pyarrow.parquet as pq

        reader = self.to_arrow_batches()
        with pq.ParquetWriter(str(path), reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)

    def to_sql(self) -> str:
        """The query text, its parameters listed in a trailing comment (for reading, not running)."""
        params = ", ".join(repr(p) for p in self._query.params)
        return f"{self._query.text}\n-- parameters: [{params}]"

    def close(self) -> None:
        conn, self._conn = self._conn, None
        self._finalizer.detach()
        if conn is not None:
            self._store._release(conn)


def _release_later(store: PostgreSQLOfflineStore, conns: list[Any]) -> None:
    for conn in conns:
        store._release(conn)


class PostgreSQLOfflineStore:
    """Offline store over tables and queries of a PostgreSQL database."""

    def __init__(self, config: PostgreSQLOfflineStoreConfig) -> None:
        _driver()
        self.config = config
        self._conninfo = config.conninfo()
        self._pool: Any = None

    def _connect(self) -> Any:
        if self._pool is None:
            try:
                from psycopg_pool import ConnectionPool
            except ImportError:
                raise MissingExtraError("psycopg-pool", "postgres") from None
            self._pool = ConnectionPool(
                self._conninfo,
                min_size=self.config.min_conn,
                max_size=self.config.max_conn,
                kwargs={"autocommit": True},
                open=True,
                name="potluck-offline",
            )
        try:
            conn = self._pool.getconn(timeout=self.config.connect_timeout_seconds)
        except Exception as err:
            raise RetrievalError(
                f"the postgres offline store got no connection to {self.config.host}:{self.config.port}/"
                f"{self.config.database} within {self.config.connect_timeout_seconds} s "
                f"({type(err).__name__}: {str(err).strip()}); check the server, or raise max_conn "
                f"({self.config.max_conn}) if many reads run at once"
            ) from None
        try:
            schema = POSTGRES.quote(self.config.db_schema)
            conn.execute("SELECT set_config('search_path', %s, false)", (f"{schema}, public",))
        except BaseException:
            self._pool.putconn(conn)
            raise
        return conn

    def _release(self, conn: Any) -> None:
        pool = self._pool
        try:
            if not conn.closed:
                conn.execute("DISCARD TEMP")
        except Exception:  # a broken connection is discarded by the pool
            pass
        if pool is not None and not pool.closed:
            pool.putconn(conn)

    # -- point-in-time join -------------------------------------------------------------------

    def get_historical_features(
        self,
        entity_df: Any,
        views: Sequence[ViewQuery],
        *,
        availability_time: bool = False,
        strategy: Strategy | None = None,
        aggregation_plan: str | None = None,
    ) -> PostgreSQLRetrievalJob:
        """Training data: every entity row with each view's features as of its timestamp.

        `strategy` (WINDOW or LATERAL; PostgreSQL has no as-of join) and `aggregation_plan` (only
        "join": window frames cannot depend on the row here) exist for tests; leave them unset.
        """
        if strategy is Strategy.ASOF:
            raise RetrievalError("the postgres offline store has no as-of join: use Strategy.WINDOW or LATERAL")
        if aggregation_plan == "window":
            raise RetrievalError("the postgres offline store computes aggregations by the join plan only")
        conn = self._connect()
        try:
            entity, types, upload = self._prepare_entity(conn, entity_df)
            check_output_names(entity.columns, views)
            inputs = [(view, self._source_input(conn, view, types)) for view in views]
            query = point_in_time_sql(
                POSTGRES,
                entity,
                inputs,
                availability_time=availability_time,
                strategy=strategy,
                joined_aggregations=frozenset(i for i, v in enumerate(views) if v.aggregations),
            )
        except BaseException:
            self._release(conn)
            raise
        stats = EntityStats(
            entity.columns, entity.timestamp_column, entity.row_count, entity.min_timestamp, entity.max_timestamp
        )
        return PostgreSQLRetrievalJob(self, conn, query, stats, upload)

    def _prepare_entity(self, conn: Any, entity_df: Any) -> tuple[EntityInput, dict[str, str], Any]:
        """Upload the entity rows into a temporary table; their input, column types and the upload
        itself (to recreate the table in another session)."""
        from potluck.offline.duckdb_store import _as_arrow

        name = f"__potluck_entity_{os.getpid()}_{next(_counter)}"
        quoted = POSTGRES.quote(name)
        text = str(entity_df) if isinstance(entity_df, (str, os.PathLike)) else None
        table = None
        if text is not None and (
            isinstance(entity_df, os.PathLike) or text.lower().endswith(".parquet") or os.path.isdir(text)
        ):
            table = _read_parquet(text)
        elif text is None:
            table = _as_arrow(entity_df)
        if table is not None:
            import numpy as np
            import pyarrow as pa

            check_entity_columns(table.column_names)
            if table.num_rows == 0:
                raise RetrievalError("entity_df is empty: it needs at least one row")
            table = table.append_column(ROW, pa.array(np.arange(table.num_rows, dtype=np.int64)))
        sql = (text or "").strip().rstrip(";")

        def upload(session: Any) -> None:
            psycopg = _driver()
            with session.cursor() as cursor:
                try:
                    if table is not None:
                        postgres_arrow.create_table(cursor, quoted, table, temporary=True)
                    else:
                        cursor.execute(
                            f"CREATE TEMPORARY TABLE {quoted} AS SELECT *, row_number() OVER () - 1 AS "
                            f"{POSTGRES.quote(ROW)} FROM ({sql}) AS __potluck_q"
                        )
                except psycopg.Error as err:
                    raise RetrievalError(f"entity_df could not be read: {str(err).strip()}") from None
                cursor.execute(f"ANALYZE {quoted}")

        upload(conn)
        relation = Sql(quoted)
        types = _describe(conn, relation)
        types.pop(ROW, None)
        check_entity_columns(list(types))
        ts_col = infer_timestamp_column(types)
        naive = types[ts_col] == _NAIVE
        ts_expr = POSTGRES.quote(ts_col) if naive else POSTGRES.to_utc(POSTGRES.quote(ts_col), types[ts_col])
        row = conn.execute(f"SELECT count(*), min({ts_expr}), max({ts_expr}) FROM {quoted}").fetchone()
        count, low, high = row if row else (0, None, None)
        if not count:
            raise RetrievalError("entity_df is empty: it needs at least one row")
        entity = EntityInput(
            relation=relation,
            columns=tuple(types),
            timestamp_column=ts_col,
            timestamp_is_utc_naive=naive,
            min_timestamp=low if isinstance(low, datetime) else None,
            max_timestamp=high if isinstance(high, datetime) else None,
            timestamp_type=types[ts_col],
            row_count=int(count),
        )
        return entity, types, upload

    def _source_input(self, conn: Any, view: ViewQuery, entity_types: dict[str, str] | None) -> SourceInput:
        if entity_types is not None:
            check_join_keys(view, entity_types)
        relation, ordinal_is_stable, row_count = self._relation(conn, view.source, view.view_name)
        try:
            columns = _describe(conn, relation)
        except _driver().Error as err:
            raise RetrievalError(
                f"feature view '{view.view_name}': source '{view.source.name}' ({view.source.location}) "
                f"could not be read: {str(err).strip()}"
            ) from None
        columns.pop(_POSITION, None)
        check_source_columns(view, columns, view.source.location)
        if entity_types is not None:
            check_key_types(view, entity_types, columns)
        created = view.source.created_timestamp_column
        return SourceInput(
            relation=relation,
            ordinal=POSTGRES.quote(_POSITION),
            timestamp_is_utc_naive=columns[view.source.timestamp_column] == _NAIVE,
            created_is_utc_naive=bool(created) and columns[created] == _NAIVE,
            timestamp_type=columns[view.source.timestamp_column],
            created_type=columns[created] if created else "",
            row_count=row_count,
            ordinal_is_stable=ordinal_is_stable,
            ordinal_number=_CTID_NUMBER.format(pos=POSTGRES.quote(_POSITION)) if ordinal_is_stable else "",
        )

    def _relation(self, conn: Any, source: SourceTable, view_name: str | None = None) -> tuple[Sql, bool, int | None]:
        """The source as a relation with its rows' positions in `__potluck_pos`, whether those are
        stable, and its estimated row count."""
        pos = POSTGRES.quote(_POSITION)
        if source.table:
            table = POSTGRES.table_name(source.table)
            row = conn.execute(
                "SELECT c.relkind, c.reltuples FROM pg_class c WHERE c.oid = to_regclass(%s)", (table,)
            ).fetchone()
            if row is None:
                who = f"feature view '{view_name}': " if view_name else ""
                raise RetrievalError(
                    f"{who}source '{source.name}': table {source.table} does not exist in database "
                    f"'{self.config.database}' (search path: {self.config.db_schema}, public)"
                )
            kind, estimate = str(row[0]), float(row[1])
            if kind in ("r", "m"):  # heap tables have tuple positions
                relation = Sql(f"(SELECT *, {_CTID} AS {pos} FROM {table})")
                return relation, True, int(estimate) if estimate >= 0 else None
            return Sql(f"(SELECT *, row_number() OVER () AS {pos} FROM {table})"), False, None
        if source.query:
            query = source.query.strip().rstrip(";")
            return Sql(f"(SELECT *, row_number() OVER () AS {pos} FROM ({query}) AS __potluck_sq)"), False, None
        raise RetrievalError(
            f"source '{source.name}' is a file source ({source.path}): the postgres offline store reads "
            "PostgreSQL tables and queries; load the files into a table and declare "
            "PostgreSQLSource(name=..., table=..., timestamp_field=...)"
        )

    # -- materialization, schema ----------------------------------------------------------------

    def latest_rows(
        self, view: ViewQuery, start: datetime | None, end: datetime, batch_rows: int
    ) -> Iterator[pa.RecordBatch]:
        """Per entity key, the latest row with `start <= event_ts <= end`, in batches of <= `batch_rows`."""
        if batch_rows < 1:
            raise ValueError("batch_rows must be at least 1")
        conn = self._connect()
        try:
            source = self._source_input(conn, view, None)
            lower = None if start is None else _naive_utc(start)
            query = latest_rows_sql(POSTGRES, view, source, lower, _naive_utc(end))
            yield from postgres_arrow.batches(conn, query, batch_rows)
        finally:
            self._release(conn)

    def events(
        self, view: ViewQuery, start: datetime | None, end: datetime, batch_rows: int
    ) -> Iterator[pa.RecordBatch]:
        """Every event of the view's source with `start <= event_ts <= end`, ordered by key then position."""
        from potluck.offline.sql.events import events_sql
        from potluck.offline.sql.windows import inputs_view

        if batch_rows < 1:
            raise ValueError("batch_rows must be at least 1")
        view = inputs_view(view) if view.aggregations else view
        conn = self._connect()
        try:
            source = self._source_input(conn, view, None)
            lower = None if start is None else _naive_utc(start)
            query = events_sql(POSTGRES, view, source, lower, _naive_utc(end))
            yield from postgres_arrow.batches(conn, query, batch_rows)
        finally:
            self._release(conn)

    def source_schema(self, source: SourceTable) -> pa.Schema:
        """The Arrow schema of a source's columns, as the database reports them."""
        import pyarrow as pa

        conn = self._connect()
        try:
            relation, _, _ = self._relation(conn, source)
            schema = postgres_arrow.result_schema(conn, Sql("SELECT * FROM ") + relation + " AS __potluck_r")
        finally:
            self._release(conn)
        return pa.schema([f for f in schema if f.name != _POSITION])

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> PostgreSQLOfflineStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_parquet(path: str) -> pa.Table:
    import pyarrow.parquet as pq

    from potluck.offline.duckdb_store import _entity_sql

    _, files = _entity_sql(path)
    try:
        import pyarrow as pa

        return pa.concat_tables([pq.read_table(f) for f in files or [path]])
    except (OSError, ValueError) as err:
        raise RetrievalError(f"entity_df could not be read: {err}") from None


__all__ = ["PostgreSQLOfflineStore", "PostgreSQLRetrievalJob"]


if TYPE_CHECKING:
    from potluck.offline.protocol import OfflineStore, RetrievalJob

    def _conforms(store: PostgreSQLOfflineStore, job: PostgreSQLRetrievalJob) -> tuple[OfflineStore, RetrievalJob]:
        return store, job
