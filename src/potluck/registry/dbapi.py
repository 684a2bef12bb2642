"""A thin layer over the DB-API drivers the registry runs on: sqlite3 and psycopg.

Statements are written once with `?` placeholders; the PostgreSQL driver gets `%s`. Every value is
a bound parameter. Importing the stdlib `sqlite3` is cheap, which keeps `potluck apply` fast.

Connections: every thread has its own (a DB-API connection is never used by two threads at once),
a forked child opens new ones, and a connection whose transaction failed is rolled back and
discarded. SQLite readers open the file read-only, so commands that only read work on a file this
process cannot write. Every wait is bounded: connect, lock and statement timeouts.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from potluck.definitions.errors import BackendUnavailableError, ConfigError, MissingExtraError

_SCHEMA_NAME = re.compile(r"CREATE\s+(?:UNIQUE\s+)?(?:TABLE|INDEX)\s+IF\s+NOT\s+EXISTS\s+(\w+)", re.IGNORECASE)
# Connections inherited by a forked child: never used, never closed there (closing could end the
# parent's session), kept referenced so they are not finalized either.
_INHERITED: list[Any] = []


_PASSWORD_PARAM = re.compile(r"(?i)(password=)[^&]*")


def redact(url: str) -> str:
    """The URL without credentials (user info and `password=` parameters)."""
    if "://" in url:
        scheme, rest = url.split("://", 1)
        netloc, slash, path = rest.partition("/")
        if "@" in netloc:
            url = f"{scheme}://***@{netloc.rsplit('@', 1)[1]}{slash}{path}"
    return _PASSWORD_PARAM.sub(r"\1***", url)


def dialect_of(url: str) -> str:
    """`sqlite` or `postgres`, from a registry URL."""
    if url.startswith("sqlite:///"):
        return "sqlite"
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        return "postgres"
    raise ConfigError(f"registry '{redact(url)}': use a file path, sqlite:///PATH or postgresql://...")


@dataclass(frozen=True)
class Timeouts:
    """Bounds on every wait of a registry session, in seconds."""

    lock: float = 5.0  # waiting for a lock held by another session (SQLite: the busy timeout)
    statement: float = 30.0  # one statement (PostgreSQL)
    connect: float = 10.0
    idle_in_transaction: float = 60.0  # PostgreSQL ends a session left idle inside a transaction


def schema_object_name(statement: str) -> str:
    """The table or index a `CREATE ... IF NOT EXISTS name` statement creates."""
    match = _SCHEMA_NAME.search(statement)
    if match is None:
        raise ValueError(f"not a CREATE TABLE/INDEX IF NOT EXISTS statement: {statement[:60]!r}")
    return match.group(1)


class _Tracked:
    """One open connection, its mode, and the lock its owner thread holds while using it."""

    __slots__ = ("busy", "closing", "conn", "pid")

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.busy = threading.Lock()
        self.closing = False
        self.pid = os.getpid()

    def retire(self, wait: float = 0.0) -> None:
        """Close now if idle (waiting up to `wait` seconds), else let the owner close it when done."""
        if self.busy.acquire(timeout=wait) if wait > 0 else self.busy.acquire(blocking=False):
            try:
                self.close()
            finally:
                self.busy.release()
        else:
            self.closing = True

    def close(self) -> None:
        if self.pid != os.getpid():
            return
        with contextlib.suppress(Exception):  # a broken connection may fail to close; it is gone either way
            self.conn.close()


class _Slot:
    """The connections of one thread, by mode ("ro" or "rw")."""

    def __init__(self) -> None:
        self.conns: dict[str, _Tracked] = {}


def _release(conns: dict[str, _Tracked], open_: dict[int, _Tracked], lock: threading.Lock) -> None:
    """Close the connections of a thread that ended."""
    for tracked in list(conns.values()):
        with lock:
            open_.pop(id(tracked), None)
        tracked.retire()
    conns.clear()


class Database:
    """One registry database: opens per-thread connections, creates its schema, runs transactions."""

    def __init__(self, url: str, timeouts: Timeouts | None = None, schema: Sequence[str] = ()) -> None:
        self.url = url
        self.timeouts = timeouts or Timeouts()
        self.dialect = dialect_of(url)
        if self.dialect == "sqlite":
            self.path = url[len("sqlite:///") :]
            self._abspath = os.path.abspath(self.path)
        else:
            self.dsn = "postgresql://" + url.split("://", 1)[1]
        self.schema = list(schema)
        self._schema_names = [schema_object_name(s) for s in self.schema]
        self._schema_ready = not self.schema
        self._schema_lock = threading.Lock()
        self._lock = threading.Lock()
        self._open: dict[int, _Tracked] = {}
        self._local = threading.local()
        self._pid = os.getpid()

    @property
    def name(self) -> str:
        return f"registry '{redact(self.url)}'"

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

    # ------------------------------------------------------------ connections

    def _connect(self, mode: str) -> Any:
        try:
            if self.dialect == "sqlite":
                return self._connect_sqlite(mode)
            return self._connect_postgres()
        except self.driver.Error as err:
            raise self._unavailable(err, mode == "rw", "cannot be opened") from None
        except OSError as err:
            raise BackendUnavailableError(f"{self.name}: cannot create its folder: {err}") from None

    def _connect_sqlite(self, mode: str) -> Any:
        import sqlite3

        busy = self.timeouts.lock
        if mode == "rw":
            os.makedirs(os.path.dirname(self._abspath) or ".", exist_ok=True)
            conn = sqlite3.connect(self._abspath, timeout=busy, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={int(busy * 1000)}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            return conn
        uri = Path(self._abspath).as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=busy, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={int(busy * 1000)}")
        try:
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        except sqlite3.OperationalError:
            conn.close()
            if not self._unwritable_without_writer():
                raise
            # A WAL database in a folder this process cannot write, with no writer active (no -wal
            # file): SQLite cannot create its shared-memory file, so read the file as immutable.
            conn = sqlite3.connect(
                uri + "&immutable=1", uri=True, timeout=busy, isolation_level=None, check_same_thread=False
            )
        return conn

    def _unwritable_without_writer(self) -> bool:
        folder = os.path.dirname(self._abspath) or "."
        return not os.access(folder, os.W_OK) and not os.path.exists(self._abspath + "-wal")

    def _connect_postgres(self) -> Any:
        t = self.timeouts
        conn = self.driver.connect(self.dsn, autocommit=True, connect_timeout=max(1, math.ceil(t.connect)))
        try:
            conn.execute(
                f"SET lock_timeout = {_ms(t.lock)}; SET statement_timeout = {_ms(t.statement)}; "
                f"SET idle_in_transaction_session_timeout = {_ms(t.idle_in_transaction)}"
            )
        except BaseException:
            conn.close()
            raise
        return conn

    def _tracked(self, mode: str) -> _Tracked:
        if self._pid != os.getpid():
            self._after_fork()
        slot: _Slot | None = getattr(self._local, "slot", None)
        if slot is None:
            slot = _Slot()
            self._local.slot = slot
            weakref.finalize(slot, _release, slot.conns, self._open, self._lock)
        tracked = slot.conns.get(mode)
        if tracked is None:
            tracked = _Tracked(self._connect(mode))
            slot.conns[mode] = tracked
            with self._lock:
                self._open[id(tracked)] = tracked
        return tracked

    def _discard(self, tracked: _Tracked) -> None:
        slot: _Slot | None = getattr(self._local, "slot", None)
        if slot is not None:
            for mode, t in list(slot.conns.items()):
                if t is tracked:
                    del slot.conns[mode]
        with self._lock:
            self._open.pop(id(tracked), None)
        tracked.close()

    def _after_fork(self) -> None:
        with self._lock:
            _INHERITED.extend(self._open.values())
            self._open = {}
        old = getattr(self._local, "slot", None)
        if old is not None:
            _INHERITED.append(old)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._pid = os.getpid()

    # ------------------------------------------------------------ schema

    def _missing(self) -> list[str]:
        marks = ", ".join("?" * len(self._schema_names))
        if self.dialect == "sqlite":
            sql = f"SELECT name FROM sqlite_master WHERE name IN ({marks})"
        else:
            sql = f"SELECT relname FROM pg_class WHERE relname IN ({marks}) AND pg_table_is_visible(oid)"
        with self._transaction(write=False) as cur:
            cur.execute(sql, self._schema_names)
            present = {row[0] for row in cur.fetchall()}
        return [n for n in self._schema_names if n not in present]

    def ensure_schema(self) -> None:
        """Create the tables and indexes that are missing; with all present, only a catalog read runs.

        A plain open therefore never takes the locks DDL needs, and a process holding locks on the
        registry cannot make other processes' opens wait beyond the lock timeout.
        """
        if self._schema_ready:
            return
        with self._schema_lock:
            if self._schema_ready:
                return
            if self.dialect == "sqlite" and not os.path.exists(self._abspath):
                missing = list(self._schema_names)
            else:
                missing = self._missing()
            for attempt in range(2):
                if not missing:
                    break
                try:
                    with self._transaction(write=True) as cur:
                        for name, statement in zip(self._schema_names, self.schema, strict=True):
                            if name in missing:
                                cur.execute(statement)
                    break
                except (self.driver.IntegrityError, self.driver.ProgrammingError):
                    if attempt:
                        raise
                    missing = self._missing()  # another process created them at the same moment
            self._schema_ready = True

    # ------------------------------------------------------------ transactions

    @contextmanager
    def transaction(self, write: bool = False) -> Iterator[Cursor]:
        """A transaction; writers take SQLite's write lock up front so applies never deadlock."""
        self.ensure_schema()
        with self._transaction(write) as cur:
            yield cur

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Cursor]:
        driver = self.driver
        mode = "rw" if write or self.dialect == "postgres" else "ro"
        tracked = self._tracked(mode)
        conn = tracked.conn
        with tracked.busy:
            try:
                try:
                    conn.execute("BEGIN IMMEDIATE" if write and self.dialect == "sqlite" else "BEGIN")
                    yield Cursor(conn.cursor(), self.dialect)
                    conn.execute("COMMIT")
                except BaseException as err:
                    clean = isinstance(err, Exception) and not isinstance(err, driver.Error)
                    if not (clean and self._rolled_back(conn)):
                        self._discard(tracked)
                    raise
            except (driver.OperationalError, driver.InternalError, driver.InterfaceError) as err:
                raise self._unavailable(err, write) from None
            finally:
                if tracked.closing:
                    self._discard(tracked)

    def _rolled_back(self, conn: Any) -> bool:
        try:
            conn.execute("ROLLBACK")
        except Exception:
            return False
        return True

    def _unavailable(self, err: Exception, write: bool, what: str = "") -> BackendUnavailableError:
        text = (f"{what}: " if what else "") + str(err).strip()
        if self.dialect == "sqlite" and write and ("readonly" in text or "unable to open" in text):
            return BackendUnavailableError(
                f"{self.name} cannot be written by this process ({text}): reading works, but apply and "
                f"materialize need write access to {self._abspath} and its folder"
            )
        if "locked" in text or "lock timeout" in text:
            text += f" (waited {self.timeouts.lock:g} s for another session's lock)"
        return BackendUnavailableError(f"{self.name}: {text}")

    def close(self) -> None:
        """Close every connection of every thread; one in use is closed by its thread when done."""
        if self._pid != os.getpid():
            self._after_fork()
            return
        with self._lock:
            tracked, self._open = list(self._open.values()), {}
        self._local = threading.local()
        for t in tracked:
            t.retire(wait=1.0)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


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

    def fetchmany(self, size: int) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self._cursor.fetchmany(size)]

    def column_names(self) -> list[str]:
        """The columns of the last statement's result, in order."""
        return [str(d[0]) for d in self._cursor.description or ()]
