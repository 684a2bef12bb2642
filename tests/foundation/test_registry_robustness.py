"""The registry with files it cannot write and rows edited by hand."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from repo_helpers import make_repo

from potluck import Entity, FeatureStore, ValueType
from potluck.definitions.errors import BackendUnavailableError, DefinitionError
from potluck.registry.sql import Change, SqlRegistryStore

BASE = datetime(2024, 1, 1, tzinfo=UTC)


def entity(name: str) -> Change:
    obj = Entity(name=name, join_keys=[f"{name}_id"], value_type=ValueType.INT64)
    return Change(obj.kind, obj.name, "created", obj.to_spec())


# --------------------------------------------------------------------------- read-only files


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder another user can reach (pytest's tmp_path is private to its owner)."""
    path = Path(tempfile.mkdtemp(prefix="potluck-ro-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for p in [path, *path.rglob("*")]:
            if p.is_dir():
                p.chmod(0o755)
        shutil.rmtree(path, ignore_errors=True)


READER = """
import json, sys
from datetime import UTC, datetime
from potluck import FeatureStore
from potluck.definitions.errors import BackendUnavailableError
from potluck.registry.sql import SqlRegistryStore

url, repo = sys.argv[1], sys.argv[2]
store = SqlRegistryStore(url, "test_project")
out = {
    "version": store.version(),
    "objects": sorted(o.name for o in store.load().all()),
    "intervals": len(store.materializations("driver_stats")),
}
fs = FeatureStore(repo_path=repo)
out["views"] = [v.name for v in fs.list_feature_views()]
out["plan_changes"] = fs.plan().has_changes
try:
    store.record_materialization("driver_stats", None, datetime(2024, 2, 1, tzinfo=UTC))
    out["write"] = "accepted"
except BackendUnavailableError as err:
    out["write"] = str(err)
print(json.dumps(out))
"""


def _without_write_access(args: list[str]) -> list[str]:
    """Root ignores file modes: run the command without the capabilities that let it."""
    if os.geteuid() != 0:
        return args
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot take write access away")
    caps = "-dac_override,-dac_read_search,-fowner"
    return [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}", "--", *args]


@pytest.mark.parametrize("writer_open", [False, True], ids=["no-writer", "writer-open"])
def test_reads_work_on_a_registry_file_this_process_cannot_write(shared_dir: Path, writer_open: bool) -> None:
    registry_dir = shared_dir / "registry"
    registry_dir.mkdir()
    db = registry_dir / "registry.db"
    url = f"sqlite:///{db}"
    repo = make_repo(shared_dir / "repo", registry=str(db))
    fs = FeatureStore(repo_path=repo)
    fs.apply()
    fs.close()
    writer = SqlRegistryStore(url, "test_project")
    writer.record_materialization("driver_stats", None, BASE)
    if not writer_open:  # the last connection gone, SQLite removed its -wal and -shm files
        writer.dispose()
        assert sorted(os.listdir(registry_dir)) == ["registry.db"]
    for p in [shared_dir, *shared_dir.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    before = sorted(os.listdir(registry_dir)), db.stat().st_mtime_ns

    proc = subprocess.run(
        _without_write_access([sys.executable, "-c", READER, url, str(repo)]),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=shared_dir,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["version"] == 1
    assert out["objects"] == ["driver", "driver_service", "driver_source", "driver_stats"]
    assert out["intervals"] == 1
    assert out["views"] == ["driver_stats"]
    assert out["plan_changes"] is False
    assert str(db) in out["write"]
    assert "write access" in out["write"]
    assert (sorted(os.listdir(registry_dir)), db.stat().st_mtime_ns) == before
    writer.dispose()


def test_readers_take_no_write_lock_and_writes_name_the_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/registry.db"
    writer = SqlRegistryStore(url, "proj")
    writer.commit(0, [entity("user")])
    writer.dispose()
    reader = SqlRegistryStore(url, "proj")
    with reader._db.transaction() as cur, pytest.raises(sqlite3.OperationalError, match="readonly"):
        cur.execute("INSERT INTO potluck_registry_meta VALUES ('x', 1, 'now')")
    assert reader.version() == 1
    reader.dispose()


# --------------------------------------------------------------------------- rows edited by hand


def _insert_raw(db: Path, rows: list[tuple[str, str, str]]) -> None:
    conn = sqlite3.connect(db)
    with conn:
        for kind, name, spec in rows:
            conn.execute(
                "INSERT INTO potluck_registry_objects (project, kind, name, spec, content_hash, version, updated_at) "
                "VALUES ('test_project', ?, ?, ?, 'x', 1, 'now')",
                (kind, name, spec),
            )
    conn.close()


BROKEN = [
    ("entity", "bad_json", "{not json"),
    ("gizmo", "thing", "{}"),
    ("entity", "no_keys", json.dumps({"name": "no_keys", "value_type": "INT64"})),
    ("entity", "wrong_type", json.dumps({"name": "wrong_type", "join_keys": ["k"], "value_type": "NO_SUCH_TYPE"})),
    ("entity", "renamed", json.dumps({"name": "other", "join_keys": ["k"], "value_type": "INT64"})),
    ("entity", "a_list", "[1, 2]"),
]


def test_broken_rows_are_named_and_the_others_load(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"sqlite:///{tmp_path}/registry.db"
    store = SqlRegistryStore(url, "test_project")
    store.commit(0, [entity("user")])
    _insert_raw(tmp_path / "registry.db", BROKEN)
    with caplog.at_level(logging.WARNING, logger="potluck.registry"):
        snap = store.load()
    assert [o.name for o in snap.all()] == ["user"]
    assert {name for _, name in snap.broken} == {name for _, name, _ in BROKEN}
    assert len(caplog.records) == len(BROKEN) == len(snap.warnings)
    expected = {
        "bad_json": "not valid JSON",
        "no_keys": "misses the field 'join_keys'",
        "wrong_type": "NO_SUCH_TYPE",
        "renamed": "names the object 'other'",
        "a_list": "JSON list, not an object",
    }
    for name, reason in expected.items():
        with pytest.raises(DefinitionError) as raised:
            snap.get("entity", name)
        message = str(raised.value)
        assert f"row kind='entity', name='{name}'" in message
        assert "test_project" in message
        assert reason in message
    assert any("unknown kind 'gizmo'" in w for w in snap.warnings)
    store.dispose()


def test_plan_and_apply_work_with_a_broken_row_and_apply_replaces_it(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    fs = FeatureStore(repo_path=repo)
    fs.apply()
    db = repo / "data" / "registry.db"
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE potluck_registry_objects SET spec = '{oops' WHERE kind = 'entity' AND name = 'driver'")
    conn.close()
    fs = FeatureStore(repo_path=repo)
    plan = fs.plan()
    assert [(d.kind, d.name, d.action) for d in plan.diffs if d.action != "unchanged"] == [
        ("entity", "driver", "created")
    ]
    assert [v.name for v in fs.list_feature_views()] == ["driver_stats"]
    fs.apply()
    assert fs.get_entity("driver").join_keys == ["driver_id"]
    assert fs.registry_snapshot().broken == {}


def test_a_broken_pending_drop_is_named_and_the_others_still_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests_support import run_cli

    repo = make_repo(tmp_path / "repo")
    fs = FeatureStore(repo_path=repo)
    fs.apply()
    fs.close()
    conn = sqlite3.connect(repo / "data" / "registry.db")
    (spec,) = conn.execute("SELECT spec FROM potluck_registry_objects WHERE kind = 'feature_view'").fetchone()
    insert = (
        "INSERT INTO potluck_online_pending (project, feature_view, generation, spec, recorded_at) "
        "VALUES ('test_project', 'driver_stats', ?, ?, '2026-01-01T00:00:00+00:00')"
    )
    with conn:
        conn.execute(insert, (7, "{oops"))  # edited by hand
        conn.execute(insert, (8, json.dumps({**json.loads(spec), "online_generation": 8})))  # a drop still owed
    conn.close()

    code, out, err = run_cli(capsys, "-c", str(repo), "apply")
    assert (code, err) == (0, "")
    assert "No changes" in out
    flat = " ".join(out.split())
    assert "feature view 'driver_stats' generation 7" in flat
    assert "potluck_online_pending row id=1" in flat
    conn = sqlite3.connect(repo / "data" / "registry.db")
    assert conn.execute("SELECT generation FROM potluck_online_pending").fetchall() == [(7,)]  # the good one ran
    conn.close()
    assert run_cli(capsys, "-c", str(repo), "teardown", "--yes")[0] == 0


def test_history_and_unknown_object_errors_still_name_things(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/registry.db"
    store = SqlRegistryStore(url, "test_project")
    store.commit(0, [entity("user")])
    _insert_raw(tmp_path / "registry.db", [("entity", "bad_json", "{")])
    snap = store.load()
    with pytest.raises(KeyError, match="usr"):
        snap.get("entity", "usr")
    assert store.history()[0].version == 1
    store.dispose()


def test_write_to_an_unwritable_registry_folder_is_a_clear_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        script = textwrap.dedent(
            """
            import sys
            from potluck.definitions.errors import BackendUnavailableError
            from potluck.registry.sql import SqlRegistryStore
            try:
                SqlRegistryStore(sys.argv[1], "p").version()
            except BackendUnavailableError as err:
                print(err)
            """
        )
        target = Path(tempfile.mkdtemp(prefix="potluck-ro-"))
        target.chmod(0o555)
        try:
            proc = subprocess.run(
                _without_write_access([sys.executable, "-c", script, f"sqlite:///{target}/sub/registry.db"]),
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
                cwd="/",
            )
        finally:
            shutil.rmtree(target, ignore_errors=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert f"registry 'sqlite:///{target}/sub/registry.db'" in proc.stdout
        return
    target = tmp_path / "ro"
    target.mkdir()
    target.chmod(0o555)
    with pytest.raises(BackendUnavailableError, match="registry 'sqlite:///"):
        SqlRegistryStore(f"sqlite:///{target}/sub/registry.db", "p").version()


# --------------------------------------------------------------------------- timeouts from the config


def test_registry_timeouts_come_from_feature_store_yaml(tmp_path: Path) -> None:
    from potluck.definitions.errors import ConfigError
    from potluck.repo.config import load_config

    text = (
        "project: p\nregistry:\n  path: data/registry.db\n  lock_timeout_seconds: 1.5\n  statement_timeout_seconds: 7\n"
    )
    (tmp_path / "feature_store.yaml").write_text(text)
    fs = FeatureStore(repo_path=tmp_path)
    timeouts = fs._registry_store._db.timeouts
    assert (timeouts.lock, timeouts.statement) == (1.5, 7)
    for bad in ("lock_timeout_seconds: .inf", "lock_timeout_seconds: 0", "statement_timeout_seconds: -1"):
        (tmp_path / "feature_store.yaml").write_text(f"project: p\nregistry:\n  path: r.db\n  {bad}\n")
        with pytest.raises(ConfigError, match=f"registry.{bad.split(':')[0]}"):
            load_config(tmp_path)
