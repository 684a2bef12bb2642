"""Registry storage in SQL (SQLite or PostgreSQL): one JSON row per object, versioned and audited.

Concurrency: every apply runs in one transaction that first moves the project's version from the
version the writer planned against to the next one (a compare-and-set). A writer whose base version
is stale changes no row and gets `RegistryConflictError`; nothing is overwritten silently.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from potluck.definitions.base import canonical_json
from potluck.definitions.errors import RegistryConflictError
from potluck.definitions.feature_view import CURRENT_VERSION
from potluck.definitions.versions import version_tag
from potluck.registry.baselines import BaselineStore, baselines_ddl
from potluck.registry.dbapi import Cursor, Database, Timeouts, dialect_of
from potluck.registry.diff import field_changes
from potluck.registry.pending import pending_online_ddl
from potluck.registry.snapshot import RegistrySnapshot
from potluck.registry.versions import TABLE as VERSIONS_TABLE
from potluck.registry.versions import (
    FeatureViewVersion,
    assign_version,
    content_hash,
    content_of,
    read_versions,
    versions_ddl,
)


@dataclass(frozen=True)
class Change:
    """One object's change in an apply: `created`, `updated` or `deleted`.

    Feature views also get a version number (see registry/versions.py): `pin` is the number
    `version="vN"` asks for; with `promote=False` the new definition is only recorded as a
    version and the registered one stays current.
    """

    kind: str
    name: str
    action: str
    spec: dict[str, Any] | None  # the new spec; None when deleted
    pin: int | None = None
    promote: bool = True


@dataclass(frozen=True)
class HistoryEntry:
    version: int
    applied_at: datetime
    author: str
    changes: list[dict[str, Any]]  # kind, name, action (and version, and "fields" changed by an update)


@dataclass(frozen=True)
class MaterializationInterval:
    feature_view: str
    start: datetime | None
    end: datetime
    recorded_at: datetime


def default_identity() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"


def schema(dialect: str) -> list[str]:
    """The registry's tables and indexes; each is created only when missing (see Database.ensure_schema)."""
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT" if dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
    return [
        """CREATE TABLE IF NOT EXISTS potluck_registry_meta (
            project VARCHAR(255) PRIMARY KEY,
            version BIGINT NOT NULL,
            updated_at VARCHAR(40) NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS potluck_registry_objects (
            project VARCHAR(255) NOT NULL,
            kind VARCHAR(64) NOT NULL,
            name VARCHAR(255) NOT NULL,
            spec TEXT NOT NULL,
            content_hash VARCHAR(64) NOT NULL,
            version BIGINT NOT NULL,
            updated_at VARCHAR(40) NOT NULL,
            PRIMARY KEY (project, kind, name))""",
        f"""CREATE TABLE IF NOT EXISTS potluck_registry_history (
            id {serial},
            project VARCHAR(255) NOT NULL,
            version BIGINT NOT NULL,
            applied_at VARCHAR(40) NOT NULL,
            author VARCHAR(255) NOT NULL,
            changes TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS ix_potluck_history_project ON potluck_registry_history (project, version)",
        f"""CREATE TABLE IF NOT EXISTS potluck_materializations (
            id {serial},
            project VARCHAR(255) NOT NULL,
            feature_view VARCHAR(255) NOT NULL,
            start_ts VARCHAR(40),
            end_ts VARCHAR(40) NOT NULL,
            recorded_at VARCHAR(40) NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS ix_potluck_mat_view ON potluck_materializations (project, feature_view)",
        pending_online_ddl(dialect),
        versions_ddl(),
        *baselines_ddl(dialect),
    ]


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


_log = logging.getLogger("potluck.registry")


class _StaleVersion(Exception):
    """The registry moved past the version an apply was planned against."""


class SqlRegistryStore:
    """Reads and writes one project's definitions in a SQL database."""

    def __init__(self, url: str, project: str, identity: str | None = None, timeouts: Timeouts | None = None) -> None:
        self.url = url
        self.project = project
        self.identity = identity or default_identity()
        self._db = Database(url, timeouts, schema(dialect_of(url)))

    def version(self) -> int:
        with self._db.transaction() as cur:
            cur.execute("SELECT version FROM potluck_registry_meta WHERE project = ?", (self.project,))
            row = cur.fetchone()
        return int(row[0]) if row else 0

    def load(self) -> RegistrySnapshot:
        with self._db.transaction() as cur:
            cur.execute("SELECT version FROM potluck_registry_meta WHERE project = ?", (self.project,))
            row = cur.fetchone()
            cur.execute("SELECT kind, name, spec FROM potluck_registry_objects WHERE project = ?", (self.project,))
            rows = cur.fetchall()
        version = int(row[0]) if row else 0
        snapshot = RegistrySnapshot.from_rows(self.project, version, rows)
        for warning in snapshot.warnings:
            _log.warning("%s", warning)
        return snapshot

    def commit(
        self,
        base_version: int,
        changes: Iterable[Change],
        author: str | None = None,
        also: Callable[[Cursor, int], None] | None = None,
    ) -> int:
        """Apply `changes` atomically if the registry is still at `base_version`; return the new version.

        `also(cursor, new_version)` runs inside the same transaction, after the changes: what it
        writes commits with them or not at all.
        """
        new_version = base_version + 1
        now = _now()
        driver = self._db.driver
        applied: list[dict[str, Any]] = []
        try:
            with self._db.transaction(write=True) as cur:
                if base_version == 0:
                    cur.execute("SELECT version FROM potluck_registry_meta WHERE project = ?", (self.project,))
                    exists = cur.fetchone()
                    if exists:
                        raise _StaleVersion
                    cur.execute(
                        "INSERT INTO potluck_registry_meta (project, version, updated_at) VALUES (?, 1, ?)",
                        (self.project, now),
                    )
                else:
                    moved = cur.execute(
                        "UPDATE potluck_registry_meta SET version = ?, updated_at = ? WHERE project = ? AND version = ?",
                        (new_version, now, self.project, base_version),
                    )
                    if moved != 1:
                        raise _StaleVersion
                for change in changes:
                    entry: dict[str, Any] = {"kind": change.kind, "name": change.name, "action": change.action}
                    spec = change.spec
                    if spec is not None and change.action == "updated":
                        entry["fields"] = self._field_changes(cur, change, spec)
                    if spec is not None and change.kind == "feature_view":
                        meta = (new_version, now, author or self.identity)
                        number = self._version_of(cur, change, spec, meta)
                        entry["version"] = version_tag(number)
                        if not change.promote:
                            entry["action"] = "recorded"  # a new version only; the current one stays
                            applied.append(entry)
                            continue
                        spec = {**spec, CURRENT_VERSION: number}
                    cur.execute(
                        "DELETE FROM potluck_registry_objects WHERE project = ? AND kind = ? AND name = ?",
                        (self.project, change.kind, change.name),
                    )
                    if spec is not None:
                        body = canonical_json(spec)
                        cur.execute(
                            "INSERT INTO potluck_registry_objects "
                            "(project, kind, name, spec, content_hash, version, updated_at) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (self.project, change.kind, change.name, body, _hash(body), new_version, now),
                        )
                    applied.append(entry)
                cur.execute(
                    "INSERT INTO potluck_registry_history (project, version, applied_at, author, changes) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (self.project, new_version, now, author or self.identity, json.dumps(applied)),
                )
                if also is not None:
                    also(cur, new_version)
        except (driver.IntegrityError, _StaleVersion):
            raise self._conflict(base_version) from None
        return new_version

    def _registered_spec(self, cur: Cursor, kind: str, name: str) -> dict[str, Any] | None:
        cur.execute(
            "SELECT spec FROM potluck_registry_objects WHERE project = ? AND kind = ? AND name = ?",
            (self.project, kind, name),
        )
        row = cur.fetchone()
        return json.loads(row[0]) if row else None

    def _field_changes(self, cur: Cursor, change: Change, spec: dict[str, Any]) -> list[dict[str, Any]]:
        """What an update changes, field by field (the history shows who changed what)."""
        old = self._registered_spec(cur, change.kind, change.name)
        if old is None:
            return []
        return [c.to_json() for c in field_changes(content_of(old), content_of(spec))]

    def _version_of(self, cur: Cursor, change: Change, spec: dict[str, Any], meta: tuple[int, str, str]) -> int:
        old = self._registered_spec(cur, change.kind, change.name)
        return assign_version(cur, self.project, change.name, spec, pin=change.pin, old_spec=old, meta=meta)

    def feature_view_versions(self, name: str) -> list[FeatureViewVersion]:
        """The applied definitions of feature view `name`, oldest first.

        A view registered before versions were recorded has none yet: its registered definition
        is then listed as v0 (the next change of the view records it so).
        """
        with self._db.transaction() as cur:
            found = read_versions(cur, self.project, name)
            if found:
                return found
            cur.execute(
                "SELECT spec, version, updated_at FROM potluck_registry_objects "
                "WHERE project = ? AND kind = 'feature_view' AND name = ?",
                (self.project, name),
            )
            row = cur.fetchone()
        if row is None:
            return []
        spec = json.loads(row[0])
        return [FeatureViewVersion(name, 0, spec, content_hash(spec), int(row[1]), datetime.fromisoformat(row[2]), "")]

    def _conflict(self, base: int) -> RegistryConflictError:
        now = self.version()
        return RegistryConflictError(
            f"the registry of project '{self.project}' changed while this apply was prepared "
            f"(planned against version {base}, now at version {now}); run plan/apply again"
        )

    def history(self, limit: int = 50) -> list[HistoryEntry]:
        with self._db.transaction() as cur:
            cur.execute(
                "SELECT version, applied_at, author, changes FROM potluck_registry_history "
                "WHERE project = ? ORDER BY version DESC LIMIT ?",
                (self.project, limit),
            )
            rows = cur.fetchall()
        return [HistoryEntry(int(v), datetime.fromisoformat(a), au, json.loads(c)) for v, a, au, c in rows]

    def record_materialization(self, feature_view: str, start: datetime | None, end: datetime) -> None:
        with self._db.transaction(write=True) as cur:
            cur.execute(
                "INSERT INTO potluck_materializations (project, feature_view, start_ts, end_ts, recorded_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (self.project, feature_view, start.isoformat() if start else None, end.isoformat(), _now()),
            )

    def materializations(self, feature_view: str | None = None) -> list[MaterializationInterval]:
        sql = "SELECT feature_view, start_ts, end_ts, recorded_at FROM potluck_materializations WHERE project = ?"
        params: list[Any] = [self.project]
        if feature_view is not None:
            sql += " AND feature_view = ?"
            params.append(feature_view)
        with self._db.transaction() as cur:
            cur.execute(sql + " ORDER BY id", params)
            rows = cur.fetchall()
        out = []
        for view, start, end, recorded in rows:
            out.append(
                MaterializationInterval(view, _ts(start), datetime.fromisoformat(end), datetime.fromisoformat(recorded))
            )
        return out

    def forget_materializations(self, feature_view: str, after: datetime | None = None) -> int:
        """Delete the view's intervals whose end is after `after` (all when None); returns how many."""
        with self._db.transaction(write=True) as cur:
            cur.execute(
                "SELECT id, end_ts FROM potluck_materializations WHERE project = ? AND feature_view = ?",
                (self.project, feature_view),
            )
            doomed = [row_id for row_id, end in cur.fetchall() if after is None or datetime.fromisoformat(end) > after]
            for row_id in doomed:
                cur.execute("DELETE FROM potluck_materializations WHERE id = ?", (row_id,))
        return len(doomed)

    def teardown(self) -> None:
        """Remove every row of this project (definitions, versions, history, materializations).

        The version counter is kept (it only moves on): online generations are registry versions
        (ADR 0006), so a view created after a teardown never reuses the namespace of one before it.
        """
        with self._db.transaction(write=True) as cur:
            for table in (
                "potluck_registry_objects",
                "potluck_registry_history",
                "potluck_materializations",
                VERSIONS_TABLE,
            ):
                cur.execute(f"DELETE FROM {table} WHERE project = ?", (self.project,))
            cur.execute("UPDATE potluck_registry_meta SET updated_at = ? WHERE project = ?", (_now(), self.project))
        self.baselines.teardown()

    @property
    def baselines(self) -> BaselineStore:
        """Monitoring baselines and run results of this project (kept beside the definitions)."""
        return BaselineStore(self._db, self.project, self.identity)

    @property
    def database(self) -> Database:
        """The registry's database, for tables kept beside the definitions (e.g. pending online drops)."""
        return self._db

    def dispose(self) -> None:
        self._db.close()


def _hash(body: str) -> str:
    import hashlib

    return hashlib.sha256(body.encode()).hexdigest()[:16]
