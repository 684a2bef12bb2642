"""The registry database under concurrent threads, failed transactions and sessions holding locks."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from potluck import Entity, ValueType
from potluck.definitions.errors import BackendUnavailableError, RegistryConflictError
from potluck.registry.dbapi import Timeouts
from potluck.registry.sql import Change, SqlRegistryStore

BASE = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/registry.db"
    return str(request.getfixturevalue("postgres_database"))


@pytest.fixture
def pg_admin(postgres_database: str) -> Iterator[Any]:
    """A separate psycopg connection to the test database (autocommit)."""
    import psycopg

    with psycopg.connect(postgres_database, autocommit=True) as conn:
        yield conn


def entity(name: str) -> Change:
    obj = Entity(name=name, join_keys=[f"{name}_id"], value_type=ValueType.INT64)
    return Change(obj.kind, obj.name, "created", obj.to_spec())


HAMMER = """
import sys, threading
from datetime import UTC, datetime, timedelta
from potluck.definitions.errors import BackendUnavailableError
from potluck.registry.cache import CachedRegistry
from potluck.registry.sql import SqlRegistryStore

url = sys.argv[1]
store = SqlRegistryStore(url, "proj")
cached = CachedRegistry(store, cache_ttl_seconds=0)
base = datetime(2024, 1, 1, tzinfo=UTC)
recorded = []
unexpected = []

def work(n):
    for i in range(60):
        try:
            store.version()
            store.materializations("v")
            store.load()
            cached.snapshot()
            if i % 3 == 0:
                end = base + timedelta(seconds=n * 1000 + i)
                store.record_materialization("v", None, end)
                recorded.append(end)
            if i % 5 == 0:
                # A failing transaction: its connection is discarded, never closed under another thread.
                try:
                    with store._db.transaction(write=True) as cur:
                        cur.execute("SELECT * FROM no_such_table")
                except BackendUnavailableError:
                    pass
                except Exception as err:
                    if "no_such_table" not in str(err):
                        raise
        except BackendUnavailableError:
            pass
        except Exception as err:
            unexpected.append(repr(err))

threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
ends = {m.end for m in store.materializations("v")}
missing = [e for e in recorded if e not in ends]
store.dispose()
print(len(recorded), len(missing), unexpected[:3])
sys.exit(1 if missing or unexpected else 0)
"""


def test_threads_hammering_one_store_never_crash_or_lose_records(registry_url: str) -> None:
    SqlRegistryStore(registry_url, "proj").commit(0, [entity("user")])
    proc = subprocess.run(
        [sys.executable, "-c", HAMMER, registry_url], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode >= 0, f"the process died of signal {-proc.returncode}: {proc.stderr[-2000:]}"
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    recorded = int(proc.stdout.split()[0])
    assert recorded > 0


def test_concurrent_record_materialization_every_success_is_committed(postgres_database: str) -> None:
    store = SqlRegistryStore(postgres_database, "proj")
    outcomes: list[tuple[str, datetime]] = []
    errors: list[BaseException] = []

    def work(n: int) -> None:
        for i in range(25):
            end = BASE + timedelta(seconds=n * 100 + i)
            try:
                store.record_materialization("v", None, end)
                outcomes.append(("ok", end))
                store.materializations("v")
                store.version()
            except (BackendUnavailableError, RegistryConflictError):
                outcomes.append(("refused", end))
            except BaseException as err:
                errors.append(err)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    stored = [m.end for m in SqlRegistryStore(postgres_database, "proj").materializations("v")]
    ok = [end for outcome, end in outcomes if outcome == "ok"]
    assert sorted(stored) == sorted(ok)
    assert len(ok) == 200  # nothing in this run holds locks for seconds: every call succeeds
    store.dispose()


def _in_thread(fn: Callable[[], Any], seconds: float) -> Any:
    """Run fn in a thread; fail (instead of hanging the suite) when it does not finish in time."""
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(("value", fn()))
        except BaseException as err:
            result.append(("error", err))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert result, f"still waiting after {seconds} s"
    kind, value = result[0]
    if kind == "error":
        raise value
    return value


def test_open_fails_within_the_lock_timeout_when_another_session_holds_the_tables(
    postgres_database: str, pg_admin: Any
) -> None:
    SqlRegistryStore(postgres_database, "proj").commit(0, [entity("user")])
    pg_admin.execute("BEGIN")
    pg_admin.execute("LOCK TABLE potluck_registry_meta IN ACCESS EXCLUSIVE MODE")
    try:
        store = SqlRegistryStore(postgres_database, "proj", timeouts=Timeouts(lock=1.0))
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError, match=r"registry 'postgresql://\*\*\*@.*lock") as raised:
            _in_thread(store.version, 30)
        assert time.monotonic() - started < 20
        assert "potluck_test_" in str(raised.value)
    finally:
        pg_admin.execute("ROLLBACK")
    assert store.version() == 1  # the failed session was discarded; the next call works
    store.dispose()


def test_plain_open_runs_no_ddl_postgres(postgres_database: str, pg_admin: Any) -> None:
    writer = SqlRegistryStore(postgres_database, "proj")
    writer.commit(0, [entity("user")])
    writer.record_materialization("v", None, BASE)
    writer.dispose()
    # EXCLUSIVE allows reads but blocks what DDL such as CREATE INDEX needs.
    pg_admin.execute("BEGIN")
    for table in ("potluck_registry_meta", "potluck_registry_objects", "potluck_registry_history"):
        pg_admin.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
    pg_admin.execute("LOCK TABLE potluck_materializations IN EXCLUSIVE MODE")
    try:

        def open_and_read() -> tuple[int, int, int]:
            store = SqlRegistryStore(postgres_database, "proj")
            try:
                return store.version(), len(store.load().all()), len(store.materializations("v"))
            finally:
                store.dispose()

        assert _in_thread(open_and_read, 30) == (1, 1, 1)
    finally:
        pg_admin.execute("ROLLBACK")


def test_plain_open_runs_no_ddl_sqlite(tmp_path: Path) -> None:
    import sqlite3

    url = f"sqlite:///{tmp_path}/registry.db"
    writer = SqlRegistryStore(url, "proj")
    writer.commit(0, [entity("user")])
    writer.dispose()
    holder = sqlite3.connect(tmp_path / "registry.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the write lock any DDL would need
    try:

        def open_and_read() -> tuple[int, int]:
            store = SqlRegistryStore(url, "proj", timeouts=Timeouts(lock=20))
            try:
                return store.version(), len(store.load().all())
            finally:
                store.dispose()

        started = time.monotonic()
        assert _in_thread(open_and_read, 60) == (1, 1)
        assert time.monotonic() - started < 15
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def _sessions(admin: Any, database: str) -> list[tuple[str, str]]:
    name = database.rsplit("/", 1)[1]
    rows = admin.execute(
        "SELECT state, query FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,)
    ).fetchall()
    return [(str(s), str(q)) for s, q in rows]


def _settled_sessions(admin: Any, database: str, expected: int) -> int:
    """The number of sessions, once the server has ended the closed ones (it does so asynchronously)."""
    deadline = time.monotonic() + 10
    count = len(_sessions(admin, database))
    while count != expected and time.monotonic() < deadline:
        time.sleep(0.05)
        count = len(_sessions(admin, database))
    return count


def test_failed_transactions_leave_no_session_in_a_transaction(postgres_database: str, pg_admin: Any) -> None:
    a = SqlRegistryStore(postgres_database, "proj")
    b = SqlRegistryStore(postgres_database, "proj")
    a.commit(0, [entity("user")])
    for _ in range(3):
        with pytest.raises(RegistryConflictError):
            b.commit(0, [entity("merchant")])

    def fail_inside() -> None:
        with b._db.transaction(write=True) as cur:
            cur.execute("SELECT 1")
            raise RuntimeError("the caller failed inside the transaction")

    with pytest.raises(RuntimeError):
        fail_inside()
    with pytest.raises(Exception, match="no_such_table"), b._db.transaction() as cur:
        cur.execute("SELECT * FROM no_such_table")
    deadline = time.monotonic() + 10  # discarded sessions end asynchronously on the server
    states = [state for state, _ in _sessions(pg_admin, postgres_database)]
    while any(state != "idle" for state in states) and time.monotonic() < deadline:
        time.sleep(0.05)
        states = [state for state, _ in _sessions(pg_admin, postgres_database)]
    assert states
    assert all(state == "idle" for state in states), states
    with b._db.transaction() as cur:
        cur.execute("SELECT current_setting('lock_timeout'), current_setting('statement_timeout')")
        assert cur.fetchone() == ("5s", "30s")
        cur.execute("SELECT current_setting('idle_in_transaction_session_timeout')")
        assert cur.fetchone() == ("1min",)
    a.dispose()
    b.dispose()


def test_dispose_closes_the_connections_of_every_thread(postgres_database: str, pg_admin: Any) -> None:
    store = SqlRegistryStore(postgres_database, "proj")
    store.version()
    release = threading.Event()
    ready = threading.Barrier(5)

    def hold() -> None:
        store.version()
        ready.wait()
        release.wait(30)

    threads = [threading.Thread(target=hold) for _ in range(4)]
    for t in threads:
        t.start()
    ready.wait()
    assert len(_sessions(pg_admin, postgres_database)) == 5
    store.dispose()
    assert _settled_sessions(pg_admin, postgres_database, 0) == 0
    release.set()
    for t in threads:
        t.join()


def test_connections_of_finished_threads_are_closed(postgres_database: str, pg_admin: Any) -> None:
    store = SqlRegistryStore(postgres_database, "proj")
    for _ in range(3):
        threads = [threading.Thread(target=store.version) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    gc.collect()
    assert _settled_sessions(pg_admin, postgres_database, 0) == 0
    store.dispose()


def test_a_forked_child_opens_its_own_connection(registry_url: str) -> None:
    store = SqlRegistryStore(registry_url, "proj")
    store.commit(0, [entity("user")])
    script = textwrap.dedent(
        """
        import os, sys
        from potluck.registry.sql import SqlRegistryStore
        store = SqlRegistryStore(sys.argv[1], "proj")
        assert store.version() == 1
        pid = os.fork()
        if pid == 0:
            ok = store.version() == 1 and len(store.load().all()) == 1
            store.dispose()
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert store.version() == 1  # the parent's session survived the child's dispose
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, registry_url], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    store.dispose()


SERVER_TABLES = """
import sys, threading
from potluck.server.auth import ApiKeyStore, AuditLog, ServerTables

tables = ServerTables(sys.argv[1], "proj")
audit = AuditLog(tables)
keys = ApiKeyStore(tables, audit, cache_seconds=0)
unexpected = []
created = []

def work(n):
    try:
        for i in range(15):
            _, key = keys.create("reader", f"actor{n}", name=f"k{n}-{i}")
            created.append(key)
            assert keys.verify(key) is not None
            keys.list()
            audit.records(10)
            try:
                with tables.transaction(write=True) as cur:
                    cur.execute("SELECT * FROM no_such_table")
            except Exception as err:
                if "no_such_table" not in str(err):
                    raise
    except Exception as err:
        unexpected.append(repr(err))

threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
for t in threads:
    t.start()
for t in threads:
    t.join()
listed = len(keys.list())
tables.close()
print(len(created), listed, unexpected[:3])
sys.exit(1 if unexpected or listed != len(created) else 0)
"""


def test_server_tables_under_concurrent_threads(registry_url: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SERVER_TABLES, registry_url], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode >= 0, f"the process died of signal {-proc.returncode}: {proc.stderr[-2000:]}"
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert proc.stdout.split()[:2] == ["90", "90"]


def _open_files(path: Path) -> int:
    fds = Path("/proc/self/fd")
    count = 0
    for fd in fds.iterdir():
        try:
            if os.readlink(fd) == str(path):
                count += 1
        except OSError:
            continue
    return count


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc to count open files")
def test_online_sqlite_store_threads_use_their_own_connections_and_close_them(tmp_path: Path) -> None:
    import pyarrow as pa

    from potluck import Field
    from potluck.online.protocol import OnlineView, ReadRequest
    from potluck.online.sqlite import SqliteOnlineStore
    from potluck.repo.config import SqliteOnlineStoreConfig
    from potluck.types import Int64

    path = tmp_path / "online.db"
    store = SqliteOnlineStore(SqliteOnlineStoreConfig(), path=path)
    view = OnlineView(
        "proj",
        "users",
        ("user_id",),
        (Field(name="user_id", dtype=Int64),),
        (Field(name="v", dtype=Int64),),
        timedelta(0),
    )
    store.create([view])
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(30):
                ts = pa.array([BASE + timedelta(seconds=i)], pa.timestamp("us", tz="UTC"))
                table = pa.table({"user_id": [n], "v": [i], "event_timestamp": ts, "created_timestamp": ts})
                store.write(view, table)
                store.read([ReadRequest(view, [view.key_encoder.encode((n,))])])
        except BaseException as err:
            errors.append(err)

    for _ in range(3):
        threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors[:3]
    gc.collect()
    # Only the main thread's connection is open; the 18 finished threads closed theirs (SQLite may
    # keep their file descriptors until the last lock on the file goes, hence no count of files).
    assert len(store._all) == 1
    (result,) = store.read([ReadRequest(view, [view.key_encoder.encode((n,)) for n in range(6)])])
    assert [row[0] if row else None for row in result.rows] == [29] * 6
    store.close()
    assert _open_files(path) == 0


SDK_THREADS = """
import sys, threading
from datetime import UTC, datetime, timedelta
from potluck import FeatureStore

fs = FeatureStore(repo_path=sys.argv[1])
unexpected = []
done = []

def reader():
    try:
        for _ in range(150):
            fs.materialization_intervals()
            fs.refresh_registry()
            fs.list_feature_views()
    except Exception as err:
        unexpected.append(repr(err))

def materializer():
    try:
        base = datetime(2024, 1, 1, tzinfo=UTC)
        for i in range(10):
            fs.materialize(base - timedelta(days=1), base + timedelta(hours=2, minutes=i))
            done.append(i)
    except Exception as err:
        unexpected.append(repr(err))

threads = [threading.Thread(target=reader) for _ in range(4)] + [threading.Thread(target=materializer)]
for t in threads:
    t.start()
for t in threads:
    t.join()
intervals = len(fs.materialization_intervals("driver_stats"))
fs.close()
print(len(done), intervals, unexpected[:3])
sys.exit(1 if unexpected or intervals != len(done) else 0)
"""


def test_sdk_threads_reading_intervals_while_materializing(registry_url: str, tmp_path: Path) -> None:
    from repo_helpers import make_repo

    from potluck import FeatureStore

    repo = make_repo(tmp_path / "repo", registry=registry_url)
    fs = FeatureStore(repo_path=repo)
    fs.apply()
    fs.close()
    proc = subprocess.run(
        [sys.executable, "-c", SDK_THREADS, str(repo)], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode >= 0, f"the process died of signal {-proc.returncode}: {proc.stderr[-2000:]}"
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert proc.stdout.split()[:2] == ["10", "10"]


def test_dispose_leaves_a_transaction_in_progress_to_finish(postgres_database: str, pg_admin: Any) -> None:
    store = SqlRegistryStore(postgres_database, "proj")
    store.version()
    inside, finish = threading.Event(), threading.Event()
    seen: list[Any] = []

    def long_transaction() -> None:
        with store._db.transaction() as cur:
            inside.set()
            finish.wait(30)
            cur.execute("SELECT 1")
            seen.append(cur.fetchone())

    thread = threading.Thread(target=long_transaction)
    thread.start()
    assert inside.wait(30)
    store.dispose()  # closes the idle connection now, the busy one when its transaction ends
    assert _settled_sessions(pg_admin, postgres_database, 1) == 1
    finish.set()
    thread.join(30)
    assert seen == [(1,)]
    gc.collect()
    assert _settled_sessions(pg_admin, postgres_database, 0) == 0
