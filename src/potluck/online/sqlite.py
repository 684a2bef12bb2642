"""SQLite online store: one WITHOUT ROWID table per view, keyed by the encoded entity key.

WAL journal and a busy timeout make one writer and many readers in several processes safe;
newest-wins is enforced by `INSERT ... ON CONFLICT ... DO UPDATE ... WHERE` inside the database.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from potluck.definitions.errors import BackendUnavailableError
from potluck.online.protocol import OnlineView, ReadRequest, ReadResult, TileRecord, TileWrite
from potluck.online.rows import EncodedRows, encode_rows, sorted_by_key
from potluck.online.sql import newer_condition, quote_ident, tile_table, tile_table_name

if TYPE_CHECKING:
    import pyarrow as pa

    from potluck.repo.config import RepoConfig, SqliteOnlineStoreConfig

WRITE_CHUNK_ROWS = 50_000
_MAX_PARAMS = 900
# Rows per upsert statement: several rows per statement cut the per-row cost of executemany.
# 4 parameters a row keeps it under the oldest SQLite limit of 999 parameters.
ROWS_PER_STATEMENT = 249
# Page cache per connection (KiB); random-key upserts slow down sharply when the B-tree spills.
CACHE_KIB = 64 * 1024
# Connections a forked child inherited: never used or closed there, kept so they are not finalized.
_INHERITED: list[Any] = []


class SqliteOnlineStore:
    """Online store in a SQLite file."""

    def __init__(
        self,
        config: SqliteOnlineStoreConfig,
        repo_config: RepoConfig | None = None,
        *,
        path: str | Path | None = None,
    ) -> None:
        if path is None:
            path = repo_config.resolve(config.path) if repo_config is not None else config.path
        self.path = str(path)
        self._busy_ms = config.busy_timeout_ms
        self._local = threading.local()
        self._sql: dict[tuple[str, str, int], str] = {}
        self._created: set[str] = set()
        self._points: dict[tuple[str, ...], str] = {}
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    # ------------------------------------------------------------ connections

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection: a connection is never shared by threads or inherited by a fork."""
        if self._pid != os.getpid():
            _INHERITED.append((self._local, self._all))
            self._local, self._all, self._lock = threading.local(), [], threading.Lock()
            self._pid = os.getpid()
        holder: _Holder | None = getattr(self._local, "holder", None)
        if holder is None:
            holder = _Holder(self._connect())
            self._local.holder = holder
            with self._lock:
                self._all.append(holder.conn)
            # Closed when the thread ends, so finished threads leave no open connection behind.
            weakref.finalize(holder, _close_finished, holder.conn, self._all, self._lock, self._pid)
        return holder.conn

    def _connect(self) -> sqlite3.Connection:
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=self._busy_ms / 1000, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_ms)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        except (sqlite3.Error, OSError) as err:
            raise BackendUnavailableError(f"cannot open the SQLite online store {self.path}: {err}") from err
        return conn

    # ------------------------------------------------------------ statements

    @staticmethod
    def _table(view: OnlineView) -> str:
        return quote_ident(view.storage_name)

    def _statement(self, view: OnlineView, kind: str, rows: int = 1) -> str:
        cached = self._sql.get((view.storage_name, kind, rows))
        if cached is not None:
            return cached
        t = self._table(view)
        if kind == "upsert":
            # Rows of one statement are applied in order, so a later row of the same key sees
            # the earlier one exactly as with one statement per row.
            sql = (
                f"INSERT INTO {t} (entity_key, event_ts, created_ts, value) VALUES "
                + ", ".join(["(?, ?, ?, ?)"] * rows)
                + " ON CONFLICT (entity_key) DO UPDATE SET event_ts = excluded.event_ts, "
                "created_ts = excluded.created_ts, value = excluded.value "
                f"WHERE {newer_condition(t)}"
            )
        else:
            sql = f"SELECT event_ts, value FROM {t} WHERE entity_key = ?"
        self._sql[(view.storage_name, kind, rows)] = sql
        return sql

    # ------------------------------------------------------------ protocol

    def create(self, views: Sequence[OnlineView]) -> None:
        conn = self._conn()
        with _errors(self.path):
            for view in views:
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {self._table(view)} ("
                    "entity_key BLOB PRIMARY KEY, event_ts INTEGER NOT NULL, "
                    "created_ts INTEGER, value BLOB NOT NULL) WITHOUT ROWID"
                )
                self._created.add(view.storage_name)

    def teardown(self, views: Sequence[OnlineView]) -> None:
        conn = self._conn()
        with _errors(self.path):
            for view in views:
                conn.execute(f"DROP TABLE IF EXISTS {self._table(view)}")
                conn.execute(f"DROP TABLE IF EXISTS {quote_ident(tile_table_name(view))}")
                self._created.discard(view.storage_name)
                self._created.discard(tile_table_name(view))

    def write(self, view: OnlineView, rows: pa.Table) -> int:
        if view.storage_name not in self._created:
            self.create([view])
        written = 0
        for start in range(0, max(rows.num_rows, 1), WRITE_CHUNK_ROWS):
            written += self.write_stored(view, encode_rows(view, rows.slice(start, WRITE_CHUNK_ROWS)))
        return written

    def write_stored(self, view: OnlineView, rows: EncodedRows) -> int:
        """Upsert encoded rows newest-wins, in one transaction."""
        if not len(rows):
            return 0
        conn = self._conn()
        if view.storage_name not in self._created:
            self.create([view])
        per = ROWS_PER_STATEMENT
        sql = self._statement(view, "upsert", per)
        # Key order keeps B-tree page accesses local; the sort is stable, so rows of one key
        # are still applied in batch order.
        keys, event, created, blobs = sorted_by_key(rows).python()
        n = len(keys)
        params: list[Any] = [None] * (4 * n)
        params[0::4], params[1::4], params[2::4], params[3::4] = keys, event, created, blobs
        full = n - n % per
        step = 4 * per
        with _errors(self.path):
            try:
                conn.execute("BEGIN IMMEDIATE")
                if full:
                    conn.executemany(sql, (params[i : i + step] for i in range(0, 4 * full, step)))
                if full < n:
                    conn.execute(self._statement(view, "upsert", n - full), params[4 * full :])
                conn.execute("COMMIT")
            except sqlite3.Error:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return n

    def scan_rows(self, view: OnlineView, after: bytes | None, chunk_rows: int) -> Iterator[EncodedRows]:
        import pyarrow as pa

        sql = (
            f"SELECT entity_key, event_ts, created_ts, value FROM {self._table(view)} "
            "WHERE entity_key > ? ORDER BY entity_key LIMIT ?"
        )
        for chunk in self._scan(sql, after, chunk_rows):
            keys, event, created, blobs = zip(*chunk, strict=True)
            yield EncodedRows(
                pa.array(keys, pa.binary()),
                pa.array(event, pa.int64()),
                pa.array(created, pa.int64()),
                pa.array(blobs, pa.binary()),
            )

    def _scan(self, sql: str, after: bytes | None, chunk_rows: int) -> Iterator[list[Any]]:
        """Pages of a keyset scan; a table that does not exist is empty."""
        conn = self._conn()
        last = b"" if after is None else after  # every key is longer than the empty one
        while True:
            with _errors(self.path):
                try:
                    chunk = conn.execute(sql, (last, chunk_rows)).fetchall()
                except sqlite3.OperationalError as err:
                    if "no such table" not in str(err):
                        raise
                    return
            if not chunk:
                return
            yield chunk
            if len(chunk) < chunk_rows:
                return
            last = chunk[-1][0]

    def read(self, requests: Sequence[ReadRequest]) -> list[ReadResult]:
        conn = self._conn()
        if len(requests) > 1 and all(len(req.keys) == 1 for req in requests):
            try:
                with _errors(self.path):
                    return self._read_points(conn, requests)
            except sqlite3.OperationalError as err:
                if "no such table" not in str(err):
                    raise
        results: list[ReadResult] = []
        with _errors(self.path):
            for req in requests:
                try:
                    results.append(self._read_one(conn, req))
                except sqlite3.OperationalError as err:
                    if "no such table" not in str(err):
                        raise
                    results.append(ReadResult([None] * len(req.keys), [None] * len(req.keys)))
        return results

    def _read_points(self, conn: sqlite3.Connection, requests: Sequence[ReadRequest]) -> list[ReadResult]:
        """One key in each of several views: one statement (UNION ALL of primary-key lookups)."""
        names = tuple(req.view.storage_name for req in requests)
        sql = self._points.get(names)
        if sql is None:
            sql = " UNION ALL ".join(
                f"SELECT {i}, event_ts, value FROM {self._table(req.view)} WHERE entity_key = ?"
                for i, req in enumerate(requests)
            )
            if len(self._points) > 256:
                self._points.clear()
            self._points[names] = sql
        found = {row[0]: row for row in conn.execute(sql, [req.keys[0] for req in requests])}
        results: list[ReadResult] = []
        for i, req in enumerate(requests):
            hit = found.get(i)
            values = None if hit is None else req.view.row_codec.decode(hit[2])
            results.append(ReadResult([values], [None if values is None or hit is None else hit[1]]))
        return results

    def _read_one(self, conn: sqlite3.Connection, req: ReadRequest) -> ReadResult:
        decode = req.view.row_codec.decode
        keys = req.keys
        if len(keys) == 1:
            row = conn.execute(self._statement(req.view, "get"), (keys[0],)).fetchone()
            if row is None:
                return ReadResult([None], [None])
            values = decode(row[1])
            return ReadResult([values], [None if values is None else row[0]])
        found = self._read_many(conn, req.view, keys)
        rows_out: list[list[Any] | None] = []
        ts_out: list[int | None] = []
        for key in keys:
            hit = found.get(key)
            values = None if hit is None else decode(hit[1])
            rows_out.append(values)
            ts_out.append(None if values is None or hit is None else hit[0])
        return ReadResult(rows_out, ts_out)

    def _read_many(
        self, conn: sqlite3.Connection, view: OnlineView, keys: Sequence[bytes]
    ) -> dict[bytes, tuple[int, bytes]]:
        found: dict[bytes, tuple[int, bytes]] = {}
        t = self._table(view)
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _MAX_PARAMS):
            chunk = unique[start : start + _MAX_PARAMS]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT entity_key, event_ts, value FROM {t} WHERE entity_key IN ({marks})"
            for key, ts, value in conn.execute(sql, chunk):
                found[key] = (ts, value)
        return found

    # ------------------------------------------------------------ tiles

    def read_tiles(self, requests: Sequence[ReadRequest]) -> list[list[TileRecord | None]]:
        conn = self._conn()
        out: list[list[TileRecord | None]] = []
        with _errors(self.path):
            for req in requests:
                found: dict[bytes, TileRecord] = {}
                table = quote_ident(tile_table_name(req.view))
                unique = list(dict.fromkeys(req.keys))
                try:
                    for start in range(0, len(unique), _MAX_PARAMS):
                        chunk = unique[start : start + _MAX_PARAMS]
                        sql = f"SELECT entity_key, version, blob FROM {table} WHERE entity_key IN ({','.join('?' * len(chunk))})"
                        for key, version, blob in conn.execute(sql, chunk):
                            found[key] = TileRecord(version, blob)
                except sqlite3.OperationalError as err:
                    if "no such table" not in str(err):
                        raise
                out.append([found.get(k) for k in req.keys])
        return out

    def write_tiles(self, view: OnlineView, writes: Sequence[TileWrite], ttl_seconds: int) -> list[bool]:
        conn = self._conn()
        name = tile_table_name(view)
        table = quote_ident(name)
        if name not in self._created:
            with _errors(self.path):
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {table} (entity_key BLOB PRIMARY KEY, "
                    "version INTEGER NOT NULL, blob BLOB NOT NULL) WITHOUT ROWID"
                )
            self._created.add(name)
        # The version check is inside the upsert: a record changed since it was read is left alone.
        sql = (
            f"INSERT INTO {table} (entity_key, version, blob) VALUES (?, ?, ?) ON CONFLICT (entity_key) "
            f"DO UPDATE SET version = excluded.version, blob = excluded.blob WHERE {table}.version = excluded.version - 1"
        )
        applied: list[bool] = []
        with _errors(self.path):
            try:
                conn.execute("BEGIN IMMEDIATE")
                for w in writes:
                    cur = conn.execute(sql, (w.key, w.expected + 1, w.blob))
                    applied.append(cur.rowcount == 1)
                conn.execute("COMMIT")
            except sqlite3.Error:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return applied

    def scan_tiles(self, view: OnlineView, after: bytes | None, chunk_rows: int) -> Iterator[pa.Table]:

        table = quote_ident(tile_table_name(view))
        sql = f"SELECT entity_key, version, blob FROM {table} WHERE entity_key > ? ORDER BY entity_key LIMIT ?"
        for chunk in self._scan(sql, after, chunk_rows):
            keys, versions, blobs = zip(*chunk, strict=True)
            yield tile_table(list(keys), list(versions), list(blobs))

    def put_tiles(self, view: OnlineView, tiles: pa.Table, ttl_seconds: int) -> int:
        conn = self._conn()
        name = tile_table_name(view)
        table = quote_ident(name)
        with _errors(self.path):
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {table} (entity_key BLOB PRIMARY KEY, "
                "version INTEGER NOT NULL, blob BLOB NOT NULL) WITHOUT ROWID"
            )
            self._created.add(name)
            sql = (
                f"INSERT INTO {table} (entity_key, version, blob) VALUES (?, ?, ?) ON CONFLICT (entity_key) DO NOTHING"
            )
            rows = zip(*(tiles.column(c).to_pylist() for c in ("entity_key", "version", "blob")), strict=True)
            try:
                conn.execute("BEGIN IMMEDIATE")
                stored = sum(conn.execute(sql, row).rowcount for row in rows)
                conn.execute("COMMIT")
            except sqlite3.Error:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return stored

    def close(self) -> None:
        if self._pid != os.getpid():
            return
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()


class _Holder:
    """A thread's connection; the thread-local slot holds it, so it dies with the thread."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn


def _close_finished(conn: sqlite3.Connection, open_: list[sqlite3.Connection], lock: threading.Lock, pid: int) -> None:
    if os.getpid() != pid:
        return
    with lock:
        if conn in open_:
            open_.remove(conn)
    with contextlib.suppress(sqlite3.Error):
        conn.close()


class _errors:
    """Map SQLite errors that mean "cannot use the database" to BackendUnavailableError."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, sqlite3.OperationalError):
            msg = str(exc)
            if any(s in msg for s in ("locked", "unable to open", "disk I/O", "readonly")):
                raise BackendUnavailableError(f"SQLite online store {self.path}: {msg}") from exc
