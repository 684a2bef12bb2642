"""The SQL registry on SQLite and PostgreSQL: atomic applies, conflicts, history, cached readers."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from potluck import Entity, FeatureView, Field, FileSource, ValueType
from potluck.definitions.errors import RegistryConflictError
from potluck.registry.cache import CachedRegistry
from potluck.registry.snapshot import RegistrySnapshot
from potluck.registry.sql import Change, SqlRegistryStore
from potluck.types import Float64


@pytest.fixture(params=["sqlite", "postgres"])
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/registry.db"
    return str(request.getfixturevalue("postgres_database"))


def entity(name: str) -> Entity:
    return Entity(name=name, join_keys=[f"{name}_id"], value_type=ValueType.INT64)


def created(obj: Entity) -> Change:
    return Change(obj.kind, obj.name, "created", obj.to_spec())


def test_commit_and_load_round_trip(registry_url: str) -> None:
    store = SqlRegistryStore(registry_url, "proj", identity="alice")
    view = FeatureView(
        name="v",
        entities=[entity("user")],
        schema=[Field(name="x", dtype=Float64)],
        source=FileSource(path="d.parquet", timestamp_field="ts"),
        ttl=timedelta(hours=1),
    )
    version = store.commit(0, [created(entity("user")), Change(view.kind, view.name, "created", view.to_spec())])
    assert version == 1
    snap = store.load()
    assert snap.version == 1
    assert snap.get("feature_view", "v") == view
    assert snap.get("entity", "user") == entity("user")
    [entry] = store.history()
    assert (entry.version, entry.author) == (1, "alice")
    assert {c["name"] for c in entry.changes} == {"user", "v"}
    other_project = SqlRegistryStore(registry_url, "other")
    assert other_project.load().all() == []
    store.dispose()
    other_project.dispose()


def test_stale_writer_gets_conflict_not_overwrite(registry_url: str) -> None:
    a = SqlRegistryStore(registry_url, "proj")
    b = SqlRegistryStore(registry_url, "proj")
    a.commit(0, [created(entity("user"))])
    with pytest.raises(RegistryConflictError, match="planned against version 0, now at version 1"):
        b.commit(0, [created(entity("merchant"))])
    a.commit(1, [created(entity("merchant"))])
    with pytest.raises(RegistryConflictError):
        b.commit(1, [Change("entity", "user", "deleted", None)])
    assert {e.name for e in a.load().all()} == {"user", "merchant"}
    a.dispose()
    b.dispose()


def test_failed_apply_leaves_previous_state(registry_url: str) -> None:
    store = SqlRegistryStore(registry_url, "proj")
    store.commit(0, [created(entity("user"))])
    bad = Change("entity", "broken", "created", {"not": object()})  # cannot be encoded
    with pytest.raises(TypeError):
        store.commit(1, [created(entity("merchant")), bad])
    snap = store.load()
    assert snap.version == 1
    assert [e.name for e in snap.all()] == ["user"]
    store.dispose()


def _apply_many(url: str, worker: int, count: int) -> None:
    from potluck.registry.sql import SqlRegistryStore as Store

    store = Store(url, "proj")
    for i in range(count):
        obj = Entity(name=f"e_{worker}_{i}", join_keys=["k"])
        while True:
            base = store.version()
            try:
                store.commit(base, [Change(obj.kind, obj.name, "created", obj.to_spec())])
                break
            except RegistryConflictError:
                continue
    store.dispose()


def test_concurrent_writers_in_processes_lose_nothing(registry_url: str) -> None:
    SqlRegistryStore(registry_url, "proj").dispose()
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_apply_many, args=(registry_url, w, 8)) for w in range(4)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(120)
        assert p.exitcode == 0
    store = SqlRegistryStore(registry_url, "proj")
    snap = store.load()
    assert len(snap.all()) == 32
    assert snap.version == 32
    assert len(store.history(100)) == 32
    store.dispose()


KILL_SCRIPT = """
import sys, time
from potluck.definitions import Entity
from potluck.registry.sql import Change, SqlRegistryStore

class Slow:
    def __init__(self, n):
        self.n = n
    def __iter__(self):
        for i in range(self.n):
            if i == 5:
                print("mid-apply", flush=True)
                time.sleep(60)
            e = Entity(name=f"e{i}", join_keys=["k"])
            yield Change(e.kind, e.name, "created", e.to_spec())

store = SqlRegistryStore(sys.argv[1], "proj")
store.commit(1, Slow(10))
"""


def test_process_killed_mid_apply_leaves_previous_state(registry_url: str, tmp_path: Path) -> None:
    store = SqlRegistryStore(registry_url, "proj")
    store.commit(0, [created(entity("user"))])
    script = tmp_path / "slow_apply.py"
    script.write_text(KILL_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), registry_url], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "mid-apply"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    snap = store.load()
    assert snap.version == 1
    assert [e.name for e in snap.all()] == ["user"]
    store.commit(1, [created(entity("merchant"))])  # the registry is usable, not locked
    assert store.load().version == 2
    store.dispose()


def test_cached_reader_sees_new_version_within_ttl_without_blocking(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/registry.db"
    writer = SqlRegistryStore(url, "proj")
    reader = CachedRegistry(SqlRegistryStore(url, "proj"), cache_ttl_seconds=0.2)
    assert reader.snapshot().version == 0
    writer.commit(0, [created(entity("user"))])
    assert reader.snapshot().version == 0  # still cached
    time.sleep(0.3)
    reader.snapshot()  # stale: returns the old one at once and refreshes in the background
    deadline = time.monotonic() + 5
    while reader.snapshot().version != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert reader.snapshot().version == 1
    writer.dispose()


def test_cached_reader_reloads_only_when_the_version_moved(tmp_path: Path) -> None:
    class CountingStore(SqlRegistryStore):
        loads = 0

        def load(self) -> RegistrySnapshot:
            CountingStore.loads += 1
            return super().load()

    url = f"sqlite:///{tmp_path}/registry.db"
    writer = SqlRegistryStore(url, "proj")
    writer.commit(0, [created(entity("user"))])
    reader = CachedRegistry(CountingStore(url, "proj"), cache_ttl_seconds=0.05)
    first = reader.snapshot()
    for _ in range(5):  # several stale reads, each starting a background check
        time.sleep(0.08)
        assert reader.snapshot() is first
    time.sleep(0.2)
    assert CountingStore.loads == 1  # the checks found the same version: nothing parsed again
    writer.commit(1, [created(entity("merchant"))])
    deadline = time.monotonic() + 5
    while reader.snapshot().version != 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert reader.snapshot().version == 2
    assert CountingStore.loads == 2
    writer.dispose()


def test_materialization_intervals(registry_url: str) -> None:
    from datetime import UTC, datetime

    store = SqlRegistryStore(registry_url, "proj")
    end = datetime(2024, 1, 2, tzinfo=UTC)
    store.record_materialization("v", None, end)
    store.record_materialization("v", end, end + timedelta(days=1))
    intervals = store.materializations("v")
    assert [i.end for i in intervals] == [end, end + timedelta(days=1)]
    assert intervals[0].start is None
    store.teardown()
    assert store.materializations() == []
    store.dispose()
