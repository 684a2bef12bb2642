"""Registry storage in SQL (SQLite or PostgreSQL): one JSON row per object, versioned and audited.

Concurrency: every apply runs in one transaction that first moves the project's version from the
version the writer planned against to the next one (a compare-and-set). A writer whose base version
is stale changes no row and gets `RegistryConflictError`; nothing is overwritten silently.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from potluck.definitions.base import Definition, canonical_json
from potluck.definitions.errors import BackendUnavailableError, ConfigError, RegistryConflictError
from potluck.registry.snapshot import RegistrySnapshot

if TYPE_CHECKING:
    import sqlalchemy as sa


@dataclass(frozen=True)
class Change:
    """One object's change in an apply: `created`, `updated` or `deleted`."""

    kind: str
    name: str
    action: str
    spec: dict[str, Any] | None  # the new spec; None when deleted


@dataclass(frozen=True)
class HistoryEntry:
    version: int
    applied_at: datetime
    author: str
    changes: list[dict[str, str]]


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


def _engine_url(url: str) -> str:
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _schema(metadata: sa.MetaData) -> dict[str, sa.Table]:
    import sqlalchemy as sa

    return {
        "meta": sa.Table(
            "potluck_registry_meta",
            metadata,
            sa.Column("project", sa.String(255), primary_key=True),
            sa.Column("version", sa.BigInteger, nullable=False),
            sa.Column("updated_at", sa.String(40), nullable=False),
        ),
        "objects": sa.Table(
            "potluck_registry_objects",
            metadata,
            sa.Column("project", sa.String(255), primary_key=True),
            sa.Column("kind", sa.String(64), primary_key=True),
            sa.Column("name", sa.String(255), primary_key=True),
            sa.Column("spec", sa.Text, nullable=False),
            sa.Column("content_hash", sa.String(64), nullable=False),
            sa.Column("version", sa.BigInteger, nullable=False),
            sa.Column("updated_at", sa.String(40), nullable=False),
        ),
        "history": sa.Table(
            "potluck_registry_history",
            metadata,
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
            sa.Column("project", sa.String(255), nullable=False, index=True),
            sa.Column("version", sa.BigInteger, nullable=False),
            sa.Column("applied_at", sa.String(40), nullable=False),
            sa.Column("author", sa.String(255), nullable=False),
            sa.Column("changes", sa.Text, nullable=False),
        ),
        "materializations": sa.Table(
            "potluck_materializations",
            metadata,
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
            sa.Column("project", sa.String(255), nullable=False),
            sa.Column("feature_view", sa.String(255), nullable=False),
            sa.Column("start_ts", sa.String(40)),
            sa.Column("end_ts", sa.String(40), nullable=False),
            sa.Column("recorded_at", sa.String(40), nullable=False),
            sa.Index("ix_potluck_mat_view", "project", "feature_view"),
        ),
    }


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class SqlRegistryStore:
    """Reads and writes one project's definitions in a SQL database."""

    def __init__(self, url: str, project: str, identity: str | None = None) -> None:
        import sqlalchemy as sa

        self.url = url
        self.project = project
        self.identity = identity or default_identity()
        if url.startswith("sqlite:///"):
            path = url[len("sqlite:///") :]
            os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
        try:
            self._engine = sa.create_engine(
                _engine_url(url),
                connect_args={"timeout": 30} if url.startswith("sqlite") else {},
                pool_pre_ping=True,
            )
        except (ImportError, sa.exc.ArgumentError) as err:
            raise ConfigError(f"registry '{url}': {err}") from None
        if url.startswith("sqlite"):
            sa.event.listen(self._engine, "connect", _sqlite_pragmas)
            # Let SQLAlchemy emit BEGIN itself so a whole apply is one SQLite transaction.
            sa.event.listen(self._engine, "begin", _sqlite_begin)
        metadata = sa.MetaData()
        self._t = _schema(metadata)
        try:
            metadata.create_all(self._engine, checkfirst=True)
        except sa.exc.OperationalError as err:
            raise BackendUnavailableError(f"registry '{_redact(url)}' is unreachable: {err.orig}") from None
        except sa.exc.IntegrityError:
            pass  # another process created the tables at the same moment

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[sa.Connection]:
        import sqlalchemy as sa

        engine = self._engine.execution_options(potluck_write=True) if write else self._engine
        try:
            with engine.begin() as conn:
                yield conn
        except sa.exc.OperationalError as err:
            raise BackendUnavailableError(f"registry '{_redact(self.url)}': {err.orig}") from None

    def version(self) -> int:
        import sqlalchemy as sa

        meta = self._t["meta"]
        with self._connect() as conn:
            row = conn.execute(sa.select(meta.c.version).where(meta.c.project == self.project)).first()
        return int(row[0]) if row else 0

    def load(self) -> RegistrySnapshot:
        import sqlalchemy as sa

        meta, objects = self._t["meta"], self._t["objects"]
        with self._connect() as conn:
            row = conn.execute(sa.select(meta.c.version).where(meta.c.project == self.project)).first()
            rows = conn.execute(
                sa.select(objects.c.kind, objects.c.name, objects.c.spec).where(objects.c.project == self.project)
            ).all()
        version = int(row[0]) if row else 0
        return RegistrySnapshot.from_rows(self.project, version, ((k, n, json.loads(s)) for k, n, s in rows))

    def commit(self, base_version: int, changes: Sequence[Change], author: str | None = None) -> int:
        """Apply `changes` atomically if the registry is still at `base_version`; return the new version."""
        import sqlalchemy as sa

        meta, objects, history = self._t["meta"], self._t["objects"], self._t["history"]
        new_version = base_version + 1
        now = _now()
        try:
            with self._connect(write=True) as conn:
                if base_version == 0:
                    exists = conn.execute(sa.select(meta.c.version).where(meta.c.project == self.project)).first()
                    if exists:
                        raise self._conflict(base_version, int(exists[0]))
                    conn.execute(sa.insert(meta).values(project=self.project, version=1, updated_at=now))
                else:
                    moved = conn.execute(
                        sa.update(meta)
                        .where(meta.c.project == self.project, meta.c.version == base_version)
                        .values(version=new_version, updated_at=now)
                    )
                    if moved.rowcount != 1:
                        raise self._conflict(base_version, None)
                for change in changes:
                    key = (
                        objects.c.project == self.project,
                        objects.c.kind == change.kind,
                        objects.c.name == change.name,
                    )
                    conn.execute(sa.delete(objects).where(*key))
                    if change.spec is not None:
                        body = canonical_json(change.spec)
                        conn.execute(
                            sa.insert(objects).values(
                                project=self.project,
                                kind=change.kind,
                                name=change.name,
                                spec=body,
                                content_hash=_hash(body),
                                version=new_version,
                                updated_at=now,
                            )
                        )
                conn.execute(
                    sa.insert(history).values(
                        project=self.project,
                        version=new_version,
                        applied_at=now,
                        author=author or self.identity,
                        changes=json.dumps([{"kind": c.kind, "name": c.name, "action": c.action} for c in changes]),
                    )
                )
        except sa.exc.IntegrityError:
            raise self._conflict(base_version, None) from None
        return new_version

    def _conflict(self, base: int, current: int | None) -> RegistryConflictError:
        now = current if current is not None else self.version()
        return RegistryConflictError(
            f"the registry of project '{self.project}' changed while this apply was prepared "
            f"(planned against version {base}, now at version {now}); run plan/apply again"
        )

    def history(self, limit: int = 50) -> list[HistoryEntry]:
        import sqlalchemy as sa

        history = self._t["history"]
        with self._connect() as conn:
            rows = conn.execute(
                sa.select(history.c.version, history.c.applied_at, history.c.author, history.c.changes)
                .where(history.c.project == self.project)
                .order_by(history.c.version.desc())
                .limit(limit)
            ).all()
        return [HistoryEntry(int(v), datetime.fromisoformat(a), au, json.loads(c)) for v, a, au, c in rows]

    def record_materialization(self, feature_view: str, start: datetime | None, end: datetime) -> None:
        import sqlalchemy as sa

        table = self._t["materializations"]
        with self._connect(write=True) as conn:
            conn.execute(
                sa.insert(table).values(
                    project=self.project,
                    feature_view=feature_view,
                    start_ts=start.isoformat() if start else None,
                    end_ts=end.isoformat(),
                    recorded_at=_now(),
                )
            )

    def materializations(self, feature_view: str | None = None) -> list[MaterializationInterval]:
        import sqlalchemy as sa

        table = self._t["materializations"]
        query = sa.select(table.c.feature_view, table.c.start_ts, table.c.end_ts, table.c.recorded_at).where(
            table.c.project == self.project
        )
        if feature_view is not None:
            query = query.where(table.c.feature_view == feature_view)
        with self._connect() as conn:
            rows = conn.execute(query.order_by(table.c.id)).all()
        out = []
        for view, start, end, recorded in rows:
            end_ts, recorded_ts = _ts(end), _ts(recorded)
            assert end_ts is not None
            assert recorded_ts is not None
            out.append(MaterializationInterval(view, _ts(start), end_ts, recorded_ts))
        return out

    def teardown(self) -> None:
        """Remove every row of this project (definitions, history, materializations)."""
        import sqlalchemy as sa

        with self._connect(write=True) as conn:
            for table in self._t.values():
                conn.execute(sa.delete(table).where(table.c.project == self.project))

    def dispose(self) -> None:
        self._engine.dispose()


def _hash(body: str) -> str:
    import hashlib

    return hashlib.sha256(body.encode()).hexdigest()[:16]


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def _sqlite_begin(conn: Any) -> None:
    # Writers take SQLite's write lock up front so two applies never deadlock on an upgrade.
    immediate = conn.get_execution_options().get("potluck_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # transactions are begun explicitly (BEGIN IMMEDIATE)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def changes_for(
    objects: Sequence[Definition], deletes: Sequence[Definition], snapshot: RegistrySnapshot
) -> list[Change]:
    """The changes that bring `snapshot` to contain `objects` and not `deletes`."""
    changes = []
    for obj in objects:
        current = snapshot.of_kind(obj.kind).get(obj.name)
        if current is None:
            changes.append(Change(obj.kind, obj.name, "created", obj.to_spec()))
        elif current.to_spec() != obj.to_spec():
            changes.append(Change(obj.kind, obj.name, "updated", obj.to_spec()))
    for obj in deletes:
        if obj.name in snapshot.of_kind(obj.kind):
            changes.append(Change(obj.kind, obj.name, "deleted", None))
    return changes
