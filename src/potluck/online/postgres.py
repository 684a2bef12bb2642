"""PostgreSQL online store: one table per view in `db_schema`, pooled psycopg 3 connections.

Writes COPY a deduplicated batch into a session temp table, then upsert it with
`INSERT ... SELECT ... ON CONFLICT ... DO UPDATE ... WHERE <newer>`, in key order so concurrent
writers take row locks in the same order. Reads of several views are one UNION ALL query.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from potluck.definitions.errors import BackendUnavailableError, MissingExtraError
from potluck.online.protocol import OnlineView, ReadRequest, ReadResult, TileRecord, TileWrite
from potluck.online.rows import EncodedRows, encode_rows, newest_per_key
from potluck.online.sql import newer_condition, quote_ident, tile_table, tile_table_name

if TYPE_CHECKING:
    import pyarrow as pa

    from potluck.repo.config import PostgresOnlineStoreConfig, RepoConfig

WRITE_CHUNK_ROWS = 50_000
_MAX_IDENT = 63
_STAGE = "potluck_online_stage"


def table_name(view: OnlineView, name: str | None = None) -> str:
    """The view's table name, shortened with a hash suffix when over PostgreSQL's 63-byte limit."""
    name = view.storage_name if name is None else name
    if len(name.encode("utf-8")) <= _MAX_IDENT:
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:12]
    return name.encode("utf-8")[:48].decode("utf-8", "ignore") + "_" + digest


def conninfo(config: PostgresOnlineStoreConfig) -> str:
    """Connection parameters, with every wait bounded: connect, each statement, a dead peer (TCP keepalive)."""
    from psycopg.conninfo import make_conninfo

    extra: dict[str, Any] = {
        "connect_timeout": config.connect_timeout_seconds,
        "options": f"-c statement_timeout={_ms(config.statement_timeout_seconds)}",
        "keepalives": 1,
        "keepalives_idle": config.keepalives_idle or 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "tcp_user_timeout": _ms(max(config.statement_timeout_seconds, 10.0)),
    }
    if config.dsn:
        from psycopg.conninfo import conninfo_to_dict

        given = conninfo_to_dict(config.dsn)
        for key in given:  # what the dsn sets wins; its server options are kept
            if key == "options":
                extra["options"] = f"{given['options']} {extra['options']}"
            else:
                extra.pop(key, None)
        return make_conninfo(config.dsn, **extra)
    params: dict[str, Any] = {"host": config.host, "port": config.port, "dbname": config.database}
    for key, param in (
        ("user", "user"),
        ("password", "password"),
        ("sslmode", "sslmode"),
        ("sslkey_path", "sslkey"),
        ("sslcert_path", "sslcert"),
        ("sslrootcert_path", "sslrootcert"),
    ):
        value = getattr(config, key)
        if value is not None:
            params[param] = value
    return make_conninfo("", **params, **extra)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class PostgresOnlineStore:
    """Online store in PostgreSQL.

    Reads run under the connection's `statement_timeout`; writes and DDL raise it to
    `write_timeout_seconds` for their transaction.
    """

    def __init__(self, config: PostgresOnlineStoreConfig, repo_config: RepoConfig | None = None) -> None:
        try:
            import psycopg
            import psycopg_pool
        except ImportError:
            raise MissingExtraError("psycopg", "postgres") from None
        self._psycopg = psycopg
        self._pool_mod = psycopg_pool
        self.schema = config.db_schema
        self._where = f"{config.host}:{config.port}/{config.database}" if not config.dsn else "the dsn"
        self._write_timeout = f"SET LOCAL statement_timeout = {_ms(config.write_timeout_seconds)}"
        self.pool = psycopg_pool.ConnectionPool(
            conninfo(config),
            min_size=config.min_conn,
            max_size=max(config.max_conn, config.min_conn, 1),
            open=False,
            # A request waits at most this long for a connection: a down server gives a fast 503.
            timeout=config.pool_timeout_seconds,
            # Connections broken by a server restart or a network cut are replaced at checkout,
            # so the first request after the server comes back does not fail.
            check=psycopg_pool.ConnectionPool.check_connection,
            kwargs={"autocommit": False},
        )
        self.pool.open(wait=False)

    # ------------------------------------------------------------ helpers

    def _table(self, view: OnlineView) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(table_name(view))}"

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        psycopg = self._psycopg
        try:
            with self.pool.connection() as conn:
                yield conn
        except (self._pool_mod.PoolTimeout, psycopg.OperationalError) as err:
            raise BackendUnavailableError(f"PostgreSQL at {self._where} is unavailable: {err}") from err

    # ------------------------------------------------------------ protocol

    def create(self, views: Sequence[OnlineView]) -> None:
        errors = self._psycopg.errors
        for attempt in range(3):
            try:
                with self._connection() as conn:
                    conn.execute(self._write_timeout)
                    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(self.schema)}")
                    for view in views:
                        conn.execute(
                            f"CREATE TABLE IF NOT EXISTS {self._table(view)} ("
                            "entity_key bytea PRIMARY KEY, event_ts bigint NOT NULL, "
                            "created_ts bigint, value bytea NOT NULL)"
                        )
                return
            except (errors.UniqueViolation, errors.DuplicateTable, errors.DuplicateSchema):
                # Two processes creating the same table at once; the other one won.
                if attempt == 2:
                    raise

    def teardown(self, views: Sequence[OnlineView]) -> None:
        with self._connection() as conn:
            conn.execute(self._write_timeout)
            for view in views:
                conn.execute(f"DROP TABLE IF EXISTS {self._table(view)}")
                conn.execute(f"DROP TABLE IF EXISTS {self._tile_table(view)}")

    def write(self, view: OnlineView, rows: pa.Table) -> int:
        written = 0
        for start in range(0, max(rows.num_rows, 1), WRITE_CHUNK_ROWS):
            written += self.write_stored(view, encode_rows(view, rows.slice(start, WRITE_CHUNK_ROWS)))
        return written

    def write_stored(self, view: OnlineView, rows: EncodedRows) -> int:
        """Upsert encoded rows newest-wins (one statement; the table is created when missing)."""
        if not len(rows):
            return 0
        errors = self._psycopg.errors
        batch = list(zip(*newest_per_key(rows).python(), strict=True))
        created = False
        for attempt in range(5):
            try:
                self._upsert(view, batch)
                break
            except errors.UndefinedTable:
                if created:
                    raise
                self.create([view])
                created = True
            except (errors.DeadlockDetected, errors.SerializationFailure):
                if attempt == 4:
                    raise
                time.sleep(0.01 * (attempt + 1))
        return len(rows)

    def scan_rows(self, view: OnlineView, after: bytes | None, chunk_rows: int) -> Iterator[EncodedRows]:
        import pyarrow as pa

        sql = (
            f"SELECT entity_key, event_ts, created_ts, value FROM {self._table(view)} "
            "WHERE entity_key > %s ORDER BY entity_key LIMIT %s"
        )
        for chunk in self._scan(sql, after, chunk_rows):
            keys, event, created, blobs = zip(*chunk, strict=True)
            yield EncodedRows(
                pa.array([bytes(k) for k in keys], pa.binary()),
                pa.array(event, pa.int64()),
                pa.array(created, pa.int64()),
                pa.array([bytes(b) for b in blobs], pa.binary()),
            )

    def _scan(self, sql: str, after: bytes | None, chunk_rows: int) -> Iterator[list[Any]]:
        """Pages of a keyset scan (each its own short transaction); a table that does not exist is empty."""
        errors = self._psycopg.errors
        last = b"" if after is None else after  # every key is longer than the empty one
        while True:
            with self._connection() as conn:
                try:
                    chunk = conn.execute(sql, (last, chunk_rows)).fetchall()
                except errors.UndefinedTable:
                    conn.rollback()
                    return
                conn.rollback()
            if not chunk:
                return
            yield chunk
            if len(chunk) < chunk_rows:
                return
            last = bytes(chunk[-1][0])

    def _upsert(self, view: OnlineView, batch: list[tuple[bytes, int, int | None, bytes]]) -> None:
        table = self._table(view)
        with self._connection() as conn, conn.cursor() as cur:
            cur.execute(self._write_timeout)
            cur.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} (entity_key bytea, event_ts bigint, "
                "created_ts bigint, value bytea) ON COMMIT DELETE ROWS"
            )
            with cur.copy(
                f"COPY {_STAGE} (entity_key, event_ts, created_ts, value) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["bytea", "int8", "int8", "bytea"])
                for row in batch:
                    copy.write_row(row)
            cur.execute(
                f"INSERT INTO {table} AS t (entity_key, event_ts, created_ts, value) "
                f"SELECT entity_key, event_ts, created_ts, value FROM {_STAGE} ORDER BY entity_key "
                "ON CONFLICT (entity_key) DO UPDATE SET event_ts = excluded.event_ts, "
                "created_ts = excluded.created_ts, value = excluded.value "
                f"WHERE {newer_condition('t')}"
            )

    def read(self, requests: Sequence[ReadRequest]) -> list[ReadResult]:
        if not requests:
            return []
        errors = self._psycopg.errors
        found: list[dict[bytes, tuple[int, bytes]]] = [{} for _ in requests]
        with self._connection() as conn:
            try:
                self._select(conn, list(enumerate(requests)), found)
            except errors.UndefinedTable:
                conn.rollback()  # some view has no table yet: look the others up one by one
                for i, req in enumerate(requests):
                    try:
                        self._select(conn, [(i, req)], found)
                    except errors.UndefinedTable:
                        conn.rollback()
            conn.rollback()  # reads only; end the transaction before the pool takes the connection
        results = []
        for req, hits in zip(requests, found, strict=True):
            decode = req.view.row_codec.decode
            rows: list[list[Any] | None] = []
            stamps: list[int | None] = []
            for key in req.keys:
                hit = hits.get(key)
                values = None if hit is None else decode(hit[1])
                rows.append(values)
                stamps.append(None if values is None or hit is None else hit[0])
            results.append(ReadResult(rows, stamps))
        return results

    def _select(
        self,
        conn: Any,
        requests: list[tuple[int, ReadRequest]],
        found: list[dict[bytes, tuple[int, bytes]]],
    ) -> None:
        parts = []
        params: list[Any] = []
        for i, req in requests:
            parts.append(
                f"SELECT {int(i)} AS i, entity_key, event_ts, value FROM {self._table(req.view)} "
                "WHERE entity_key = ANY(%s)"
            )
            params.append(list(dict.fromkeys(req.keys)))
        for i, key, ts, value in conn.execute(" UNION ALL ".join(parts), params):
            found[i][bytes(key)] = (ts, bytes(value))

    # ------------------------------------------------------------ tiles

    def _tile_table(self, view: OnlineView) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(table_name(view, tile_table_name(view)))}"

    def read_tiles(self, requests: Sequence[ReadRequest]) -> list[list[TileRecord | None]]:
        if not requests:
            return []
        errors = self._psycopg.errors
        found: list[dict[bytes, TileRecord]] = [{} for _ in requests]
        with self._connection() as conn:
            try:
                self._select_tiles(conn, list(enumerate(requests)), found)
            except errors.UndefinedTable:
                conn.rollback()  # some view has no tiles yet: look the others up one by one
                for i, req in enumerate(requests):
                    try:
                        self._select_tiles(conn, [(i, req)], found)
                    except errors.UndefinedTable:
                        conn.rollback()
            conn.rollback()
        return [[hits.get(k) for k in req.keys] for req, hits in zip(requests, found, strict=True)]

    def _select_tiles(
        self, conn: Any, requests: list[tuple[int, ReadRequest]], found: list[dict[bytes, TileRecord]]
    ) -> None:
        sql = " UNION ALL ".join(
            f"SELECT {int(i)} AS i, entity_key, version, blob FROM {self._tile_table(req.view)} "
            "WHERE entity_key = ANY(%s)"
            for i, req in requests
        )
        for i, key, version, blob in conn.execute(sql, [list(dict.fromkeys(r.keys)) for _, r in requests]):
            found[i][bytes(key)] = TileRecord(int(version), bytes(blob))

    def write_tiles(self, view: OnlineView, writes: Sequence[TileWrite], ttl_seconds: int) -> list[bool]:
        if not writes:
            return []
        errors = self._psycopg.errors
        table = self._tile_table(view)
        # One statement; the version check is in the upsert, keys in order so writers lock alike.
        sql = (
            f"INSERT INTO {table} AS t (entity_key, version, blob) "
            "SELECT k, e + 1, b FROM unnest(%s::bytea[], %s::bigint[], %s::bytea[]) AS u(k, e, b) ORDER BY k "
            "ON CONFLICT (entity_key) DO UPDATE SET version = excluded.version, blob = excluded.blob "
            "WHERE t.version = excluded.version - 1 RETURNING entity_key"
        )
        params = [[w.key for w in writes], [w.expected for w in writes], [w.blob for w in writes]]
        for attempt in range(5):
            try:
                with self._connection() as conn:
                    conn.execute(self._write_timeout)
                    done = {bytes(row[0]) for row in conn.execute(sql, params)}
                return [w.key in done for w in writes]
            except errors.UndefinedTable:
                with self._connection() as conn:
                    conn.execute(self._write_timeout)
                    # IF NOT EXISTS still races with another writer creating the same one: theirs is as good.
                    try:
                        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(self.schema)}")
                    except (errors.UniqueViolation, errors.DuplicateSchema):
                        conn.rollback()
                    try:
                        conn.execute(
                            f"CREATE TABLE IF NOT EXISTS {table} (entity_key bytea PRIMARY KEY, "
                            "version bigint NOT NULL, blob bytea NOT NULL)"
                        )
                    except (errors.UniqueViolation, errors.DuplicateTable):
                        conn.rollback()
            except (errors.DeadlockDetected, errors.SerializationFailure, errors.UniqueViolation):
                # UniqueViolation: two writers inserted the same new key at once; re-read and retry.
                if attempt == 4:
                    raise
                time.sleep(0.01 * (attempt + 1))
        return [False] * len(writes)

    def scan_tiles(self, view: OnlineView, after: bytes | None, chunk_rows: int) -> Iterator[pa.Table]:
        sql = (
            f"SELECT entity_key, version, blob FROM {self._tile_table(view)} "
            "WHERE entity_key > %s ORDER BY entity_key LIMIT %s"
        )
        for chunk in self._scan(sql, after, chunk_rows):
            yield tile_table([bytes(r[0]) for r in chunk], [int(r[1]) for r in chunk], [bytes(r[2]) for r in chunk])

    def put_tiles(self, view: OnlineView, tiles: pa.Table, ttl_seconds: int) -> int:
        if not tiles.num_rows:
            return 0
        table = self._tile_table(view)
        sql = (
            f"INSERT INTO {table} (entity_key, version, blob) "
            "SELECT k, v, b FROM unnest(%s::bytea[], %s::bigint[], %s::bytea[]) AS u(k, v, b) ORDER BY k "
            "ON CONFLICT (entity_key) DO NOTHING"
        )
        params = [tiles.column(c).to_pylist() for c in ("entity_key", "version", "blob")]
        with self._connection() as conn:
            conn.execute(self._write_timeout)
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(self.schema)}")
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {table} (entity_key bytea PRIMARY KEY, "
                "version bigint NOT NULL, blob bytea NOT NULL)"
            )
            stored = conn.execute(sql, params).rowcount
        return int(stored)

    def close(self) -> None:
        self.pool.close()
