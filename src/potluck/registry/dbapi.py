"""A thin layer over the DB-API drivers the registry runs on: sqlite3 and psycopg.

Statements are written once with `?` placeholders; the PostgreSQL driver gets `%s`. Every value is
a bound parameter. Importing the stdlib `sqlite3` is cheap, which keeps `potluck apply` fast.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from potluck.definitions.errors import BackendUnavailableError, ConfigError, MissingExtraError


def redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


class Database:
    """One registry database: opens connections and runs transactions."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///"):
            self.dialect = "sqlite"
            self.path = url[len("sqlite:///") :]
            os.makedirs(os.path.dirname(os.path.abspath(self.path)) or ".", exist_ok=True)
        elif url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
            self.dialect = "postgres"
            self.dsn = "postgresql://" + url.split("://", 1)[1]
        else:
            raise ConfigError(f"registry '{redact(url)}': use a file path, sqlite:///PATH or postgresql://...")
        self._conn: Any = None
        self._pid = os.getpid()

    @property
    def driver(self) -> Any:
        if self.dialect == "sqlite":
            import sqlite3

            return sqlite3
        try:
            import psycopg
        except ImportError:
            raise MissingExtraError("psycopg", "postgres") from None
        return psycopg

    def _connect(self) -> Any:
        try:
            if self.dialect == "sqlite":
                import sqlite3

                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA busy_timeout=30000")
                conn.execute("PRAGMA synchronous=NORMAL")
                return conn
            return self.driver.connect(self.dsn, autocommit=True, connect_timeout=10)
        except self.driver.Error as err:
            raise BackendUnavailableError(f"registry '{redact(self.url)}' is unreachable: {err}") from None

    def connection(self) -> Any:
        if self._conn is None or self._pid != os.getpid():
            self._conn = self._connect()
            self._pid = os.getpid()
        return self._conn

    @contextmanager
    def transaction(self, write: bool = False) -> Iterator[Cursor]:
        """A transaction; writers take SQLite's write lock up front so applies never deadlock."""
        driver = self.driver
        try:
            conn = self.connection()
            if self.dialect == "sqlite":
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                cursor = Cursor(conn.cursor(), self.dialect)
                try:
                    yield cursor
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            else:
                with conn.transaction():
                    yield Cursor(conn.cursor(), self.dialect)
        except driver.OperationalError as err:
            self.close()
            raise BackendUnavailableError(f"registry '{redact(self.url)}': {err}") from None

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


class Cursor:
    def __init__(self, cursor: Any, dialect: str) -> None:
        self._cursor = cursor
        self._dialect = dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        if self._dialect == "postgres":
            sql = sql.replace("?", "%s")
        self._cursor.execute(sql, tuple(params))
        return int(self._cursor.rowcount)

    def fetchone(self) -> tuple[Any, ...] | None:
        row = self._cursor.fetchone()
        return tuple(row) if row is not None else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self._cursor.fetchall()]
