"""Registry export and import on SQLite and PostgreSQL: equal files, equal objects and history, refusals, atomicity."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from potluck import Entity, FeatureView, Field, FileSource, ValueType
from potluck.backup.registry_file import SECTIONS, export_registry, import_registry
from potluck.definitions.errors import BackupError
from potluck.monitoring.alerts.model import Alert
from potluck.monitoring.gauges import DriftGauge
from potluck.monitoring.state import MonitorState
from potluck.registry.pending import PendingOnlineChanges
from potluck.registry.sql import Change, SqlRegistryStore
from potluck.server.auth.audit import AuditLog
from potluck.server.auth.storage import ServerTables
from potluck.types import Float64, Int64
from tests_support import POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER


@pytest.fixture(params=["sqlite", "postgres"])
def urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two empty registries of one kind: the source and the target."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/a.db", f"sqlite:///{tmp_path}/b.db"
        return
    first = str(request.getfixturevalue("postgres_database"))
    with _second_postgres() as second:
        yield first, second


class _second_postgres:
    def __enter__(self) -> str:
        import psycopg

        self.name = f"potluck_test_{uuid.uuid4().hex[:12]}"
        self.admin = f"host={POSTGRES_HOST} port={POSTGRES_PORT} user={POSTGRES_USER} dbname=test"
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        return f"postgresql://{POSTGRES_USER}@{POSTGRES_HOST}:{POSTGRES_PORT}/{self.name}"

    def __exit__(self, *exc: object) -> None:
        import psycopg

        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def _view(features: list[Field]) -> FeatureView:
    return FeatureView(
        name="driver-stats",  # a dash: names are data, never SQL text
        entities=[Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)],
        schema=features,
        source=FileSource(name="src", path="data/d.parquet", timestamp_field="ts"),
        ttl=timedelta(hours=2),
    )


def populate(url: str, project: str) -> None:
    """Every kind of row the registry database keeps for a project."""
    store = SqlRegistryStore(url, project, identity="alice@host")
    driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
    v0 = _view([Field(name="conv", dtype=Float64)])
    v1 = _view([Field(name="conv", dtype=Float64), Field(name="trips", dtype=Int64)])
    store.commit(
        0, [Change("entity", "driver", "created", driver.to_spec()), Change(v0.kind, v0.name, "created", v0.to_spec())]
    )
    pending = PendingOnlineChanges(store.database, project)

    def also(cur: Any, _version: int) -> None:
        pending.record(cur, [v0], [])

    store.commit(1, [Change(v1.kind, v1.name, "updated", v1.to_spec())], author="bob@host", also=also)
    t = datetime(2024, 5, 1, tzinfo=UTC)
    store.record_materialization(v1.name, t, t + timedelta(hours=1))
    store.record_materialization(v1.name, None, t + timedelta(hours=2))
    store.baselines.save("base", json.dumps({"features": [{"name": "conv", "mean": 0.5}]}))
    store.baselines.save("base", '{"features": [], "note": "not canonical JSON"}')
    store.baselines.record_run("base", 2, '{"drift": false}', '{"features": []}')
    state = MonitorState(url, project)
    state.record("slack", [Alert(project, "drift", v1.name, "conv", "psi")], [])
    state.record_materialization([v1.name], "boom: the offline store was down")
    state.record_drift([v1.name], [DriftGauge(v1.name, "conv", True, 0.31, 0.12, 0.001, 0.2)], t)
    tables = ServerTables(url, project)
    AuditLog(tables).record("admin", "materialize", v1.name, "ok")
    AuditLog(tables).record("admin", "create-key", "key k1", "ok")
    for closeable in (store, state, tables):
        getattr(closeable, "dispose", getattr(closeable, "close", None))()


def state_of(url: str, project: str) -> dict[str, Any]:
    """What the registry holds for `project`, read through the registry's own readers."""
    store = SqlRegistryStore(url, project)
    state = MonitorState(url, project)
    try:
        snap = store.load()
        return {
            "version": snap.version,
            "objects": sorted((o.kind, o.name, json.dumps(o.to_spec(), sort_keys=True)) for o in snap.all()),
            "history": [(h.version, h.applied_at, h.author, h.changes) for h in store.history(100)],
            "versions": [
                (v.number, v.spec, v.content_hash, v.author) for v in store.feature_view_versions("driver-stats")
            ],
            "materializations": store.materializations(),
            "baselines": [(b.name, b.version, b.profile) for b in store.baselines.latest()],
            "runs": store.baselines.last_runs(),
            "failures": state.materialization_failures(),
            "drift": state.drift_results(),
            "alerts": state.firing("slack"),
            "pending": [
                (d.view.name, d.view.online_generation) for d in PendingOnlineChanges(store.database, project).list()
            ],
        }
    finally:
        store.dispose()
        state.close()


def test_export_import_export_gives_the_same_file_and_state(urls: tuple[str, str], tmp_path: Path) -> None:
    source, target = urls
    populate(source, "proj")
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    summary = export_registry(source, "proj", first)
    assert summary.counts["objects"] == 2
    assert summary.counts["history"] == 2
    assert summary.counts["feature_view_versions"] == 2
    assert summary.counts["audit_log"] == 2
    assert all(summary.counts[s.name] for s in SECTIONS if not s.optional), summary.counts
    imported = import_registry(target, "proj", first)
    assert imported.counts == summary.counts
    assert imported.registry_version == 2
    export_registry(target, "proj", second)
    assert first.read_bytes() == second.read_bytes()
    assert state_of(target, "proj") == state_of(source, "proj")
    lines = first.read_bytes().splitlines()
    header, end = json.loads(lines[0]), json.loads(lines[-1])["end"]
    assert (header["format_version"], header["project"], header["registry_version"]) == (1, "proj", 2)
    assert end["sha256"] == hashlib.sha256(b"".join(line + b"\n" for line in lines[:-1])).hexdigest()
    records = [json.loads(x) for x in lines[1:-1]]
    spec = next(r["row"]["spec"] for r in records if r["section"] == "objects" and r["row"]["kind"] == "feature_view")
    assert isinstance(spec, dict)
    assert spec["name"] == "driver-stats"


def test_an_export_moves_between_sqlite_and_postgres(postgres_database: str, tmp_path: Path) -> None:
    sqlite = f"sqlite:///{tmp_path}/r.db"
    populate(sqlite, "proj")
    export_registry(sqlite, "proj", tmp_path / "a.jsonl")
    import_registry(postgres_database, "proj", tmp_path / "a.jsonl")
    export_registry(postgres_database, "proj", tmp_path / "b.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert state_of(postgres_database, "proj") == state_of(sqlite, "proj")


def test_import_refuses_another_project_unless_told(urls: tuple[str, str], tmp_path: Path) -> None:
    source, target = urls
    populate(source, "proj")
    export_registry(source, "proj", tmp_path / "e.jsonl")
    with pytest.raises(BackupError, match=r"export of project 'proj', not of 'other'.*--allow-other-project"):
        import_registry(target, "other", tmp_path / "e.jsonl")
    assert SqlRegistryStore(target, "other").version() == 0
    summary = import_registry(target, "other", tmp_path / "e.jsonl", allow_other_project=True)
    assert summary.source_project == "proj"
    moved, original = state_of(target, "other"), state_of(source, "proj")
    assert moved["objects"] == original["objects"]
    assert moved["history"] == original["history"]
    assert SqlRegistryStore(target, "proj").version() == 0  # nothing landed under the old name


def test_import_refuses_a_non_empty_registry_unless_forced(urls: tuple[str, str], tmp_path: Path) -> None:
    source, target = urls
    populate(source, "proj")
    export_registry(source, "proj", tmp_path / "e.jsonl")
    other = SqlRegistryStore(target, "proj")
    entity = Entity(name="customer", join_keys=["customer_id"])
    other.commit(0, [Change("entity", "customer", "created", entity.to_spec())])
    other.commit(1, [Change("entity", "customer", "updated", entity.to_spec())])
    other.commit(2, [Change("entity", "customer", "updated", entity.to_spec())])
    with pytest.raises(BackupError, match=r"not empty \(1 objects, 3 history\).*--force"):
        import_registry(target, "proj", tmp_path / "e.jsonl")
    assert [o.name for o in other.load().all()] == ["customer"]
    summary = import_registry(target, "proj", tmp_path / "e.jsonl", force=True)
    assert summary.replaced == {"objects": 1, "history": 3}
    # the counter never moves back (online generations are registry versions): one past where it was
    assert summary.registry_version == 4
    got, want = state_of(target, "proj"), state_of(source, "proj")
    assert got["objects"] == want["objects"]
    assert got["history"] == want["history"]
    assert got["version"] == 4
    other.dispose()


def test_a_teardown_leaves_an_empty_registry_and_the_counter_moves_on(urls: tuple[str, str], tmp_path: Path) -> None:
    source, _ = urls
    populate(source, "proj")
    export_registry(source, "proj", tmp_path / "e.jsonl")
    store = SqlRegistryStore(source, "proj")
    store.teardown()  # what FeatureStore.teardown removes from the registry database
    PendingOnlineChanges(store.database, "proj").clear()
    MonitorState(source, "proj").teardown()
    with ServerTables(source, "proj").transaction(write=True) as cur:
        cur.execute("DELETE FROM potluck_audit_log WHERE project = ?", ("proj",))
    summary = import_registry(source, "proj", tmp_path / "e.jsonl")  # empty again: no --force needed
    assert summary.registry_version == 3
    assert store.version() == 3
    assert len(store.load().all()) == 2
    store.dispose()


def test_a_damaged_or_truncated_file_writes_nothing(urls: tuple[str, str], tmp_path: Path) -> None:
    source, target = urls
    populate(source, "proj")
    path = tmp_path / "e.jsonl"
    export_registry(source, "proj", path)
    lines = path.read_bytes().splitlines(keepends=True)
    (tmp_path / "cut.jsonl").write_bytes(b"".join(lines[:-1]))
    with pytest.raises(BackupError, match="incomplete"):
        import_registry(target, "proj", tmp_path / "cut.jsonl")
    edited = [lines[0], *(x.replace(b"alice@host", b"mallory@host") for x in lines[1:])]
    (tmp_path / "edited.jsonl").write_bytes(b"".join(edited))
    with pytest.raises(BackupError, match="damaged"):
        import_registry(target, "proj", tmp_path / "edited.jsonl")
    # A row that fails while being written (an unknown column), with a matching digest: all or nothing.
    bad = [*lines[:-1]]
    last = json.loads(bad[-1])
    last["row"]["no_such_column"] = 1
    bad[-1] = json.dumps(last).encode() + b"\n"
    count = len(bad) - 1
    digest = hashlib.sha256(b"".join(bad)).hexdigest()
    (tmp_path / "bad.jsonl").write_bytes(
        b"".join(bad) + json.dumps({"end": {"records": count, "sha256": digest}}).encode() + b"\n"
    )
    with pytest.raises(BackupError, match="no_such_column"):
        import_registry(target, "proj", tmp_path / "bad.jsonl")
    assert SqlRegistryStore(target, "proj").version() == 0
    assert state_of(target, "proj")["history"] == []


def test_export_of_a_project_never_applied_is_an_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/r.db"
    populate(url, "proj")
    with pytest.raises(BackupError, match="holds no project 'nope'"):
        export_registry(url, "nope", tmp_path / "e.jsonl")
    assert not (tmp_path / "e.jsonl").exists()
    assert not (tmp_path / "e.jsonl.partial").exists()


def test_api_keys_only_when_asked(tmp_path: Path) -> None:
    from potluck.server.auth.keys import ApiKeyStore

    source, target = f"sqlite:///{tmp_path}/a.db", f"sqlite:///{tmp_path}/b.db"
    populate(source, "proj")
    tables = ServerTables(source, "proj")
    ApiKeyStore(tables).create("admin", "ops", name="ci")
    export_registry(source, "proj", tmp_path / "plain.jsonl")
    assert b"api_keys" not in (tmp_path / "plain.jsonl").read_bytes()
    summary = export_registry(source, "proj", tmp_path / "keys.jsonl", include_api_keys=True)
    assert summary.counts["api_keys"] == 1
    import_registry(target, "proj", tmp_path / "keys.jsonl")
    assert [k.name for k in ApiKeyStore(ServerTables(target, "proj")).list()] == ["ci"]
