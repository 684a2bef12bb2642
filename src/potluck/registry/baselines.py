"""Monitoring baselines and the results of monitoring runs, kept in the registry database.

A baseline is a saved profile (opaque JSON here) under a name; saving a name again adds its next
version and keeps every earlier one. A run's result (its report and the current profile) is kept
per baseline so `potluck monitor show` can show the last one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from potluck.definitions.errors import NotFoundError, RegistryConflictError, suggestion
from potluck.registry.dbapi import Database

BASELINES = "potluck_monitoring_baselines"
RUNS = "potluck_monitoring_runs"


def baselines_ddl(dialect: str) -> list[str]:
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT" if dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
    return [
        f"""CREATE TABLE IF NOT EXISTS {BASELINES} (
            project VARCHAR(255) NOT NULL,
            name VARCHAR(255) NOT NULL,
            version BIGINT NOT NULL,
            profile TEXT NOT NULL,
            created_at VARCHAR(40) NOT NULL,
            author VARCHAR(255) NOT NULL,
            PRIMARY KEY (project, name, version))""",
        f"""CREATE TABLE IF NOT EXISTS {RUNS} (
            id {serial},
            project VARCHAR(255) NOT NULL,
            baseline VARCHAR(255) NOT NULL,
            baseline_version BIGINT NOT NULL,
            ran_at VARCHAR(40) NOT NULL,
            report TEXT NOT NULL,
            profile TEXT NOT NULL)""",
        f"CREATE INDEX IF NOT EXISTS ix_potluck_monitoring_runs ON {RUNS} (project, baseline, id)",
    ]


@dataclass(frozen=True)
class StoredBaseline:
    name: str
    version: int
    profile: str  # JSON
    created_at: datetime
    author: str


@dataclass(frozen=True)
class StoredRun:
    baseline: str
    baseline_version: int
    ran_at: datetime
    report: str  # JSON
    profile: str  # JSON of the current profile


class BaselineStore:
    """The baselines and run results of one project."""

    def __init__(self, database: Database, project: str, author: str) -> None:
        self._db = database
        self.project = project
        self.author = author

    def save(self, name: str, profile: str) -> int:
        """Store `profile` as the next version of baseline `name`; returns that version (1, 2, ...).

        Savers of one name are serialized (SQLite: the write lock every write transaction takes first;
        PostgreSQL: a transaction-scoped advisory lock on the name), and the primary key refuses a
        duplicate version should they ever race anyway, which is then retried.
        """
        for _ in range(5):
            try:
                with self._db.transaction(write=True) as cur:
                    if self._db.dialect == "postgres":
                        key = f"potluck_baseline:{self.project}:{name}"
                        cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (key,))
                    cur.execute(
                        f"SELECT max(version) FROM {BASELINES} WHERE project = ? AND name = ?", (self.project, name)
                    )
                    row = cur.fetchone()
                    version = int(row[0]) + 1 if row and row[0] is not None else 1
                    cur.execute(
                        f"INSERT INTO {BASELINES} (project, name, version, profile, created_at, author) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (self.project, name, version, profile, datetime.now(UTC).isoformat(), self.author),
                    )
                return version
            except self._db.driver.IntegrityError:
                continue
        raise RegistryConflictError(f"baseline '{name}': could not save a new version (concurrent savers); try again")

    def get(self, name: str, version: int | None = None) -> StoredBaseline:
        sql = f"SELECT name, version, profile, created_at, author FROM {BASELINES} WHERE project = ? AND name = ?"
        params: list[object] = [self.project, name]
        if version is not None:
            sql += " AND version = ?"
            params.append(version)
        with self._db.transaction() as cur:
            cur.execute(sql + " ORDER BY version DESC LIMIT 1", params)
            row = cur.fetchone()
        if row is None:
            names = [b.name for b in self.latest()]
            if version is not None and name in names:
                raise NotFoundError(f"baseline '{name}' has no version {version}", name=name, kind="baseline")
            lead = f"baseline '{name}' does not exist."
            hint = suggestion(name, names) if names else "Save one with `potluck monitor baseline --name NAME ...`."
            raise NotFoundError(f"{lead} {hint}", lead=lead, name=name, kind="baseline", candidates=names)
        return StoredBaseline(str(row[0]), int(row[1]), str(row[2]), datetime.fromisoformat(row[3]), str(row[4]))

    def latest(self) -> list[StoredBaseline]:
        """The newest version of every baseline, by name."""
        with self._db.transaction() as cur:
            cur.execute(
                f"SELECT b.name, b.version, b.profile, b.created_at, b.author FROM {BASELINES} b "
                f"JOIN (SELECT name, max(version) AS version FROM {BASELINES} WHERE project = ? GROUP BY name) m "
                "ON b.name = m.name AND b.version = m.version WHERE b.project = ? ORDER BY b.name",
                (self.project, self.project),
            )
            rows = cur.fetchall()
        return [StoredBaseline(str(r[0]), int(r[1]), str(r[2]), datetime.fromisoformat(r[3]), str(r[4])) for r in rows]

    def versions(self, name: str) -> list[tuple[int, datetime, str]]:
        with self._db.transaction() as cur:
            cur.execute(
                f"SELECT version, created_at, author FROM {BASELINES} WHERE project = ? AND name = ? ORDER BY version",
                (self.project, name),
            )
            rows = cur.fetchall()
        return [(int(v), datetime.fromisoformat(c), str(a)) for v, c, a in rows]

    def record_run(self, baseline: str, version: int, report: str, profile: str) -> None:
        with self._db.transaction(write=True) as cur:
            cur.execute(
                f"INSERT INTO {RUNS} (project, baseline, baseline_version, ran_at, report, profile) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (self.project, baseline, version, datetime.now(UTC).isoformat(), report, profile),
            )

    def last_runs(self) -> list[StoredRun]:
        """The newest run of each baseline."""
        with self._db.transaction() as cur:
            cur.execute(
                f"SELECT r.baseline, r.baseline_version, r.ran_at, r.report, r.profile FROM {RUNS} r "
                f"JOIN (SELECT baseline, max(id) AS id FROM {RUNS} WHERE project = ? GROUP BY baseline) m "
                "ON r.id = m.id ORDER BY r.baseline",
                (self.project,),
            )
            rows = cur.fetchall()
        return [StoredRun(str(r[0]), int(r[1]), datetime.fromisoformat(r[2]), str(r[3]), str(r[4])) for r in rows]

    def run_reports(self, limit: int = 200) -> list[tuple[str, datetime, str]]:
        """(baseline, ran at, report JSON) of the newest `limit` runs, oldest first: drift over time."""
        with self._db.transaction() as cur:
            cur.execute(
                f"SELECT baseline, ran_at, report FROM {RUNS} WHERE project = ? ORDER BY id DESC LIMIT ?",
                (self.project, limit),
            )
            rows = cur.fetchall()
        return [(str(b), datetime.fromisoformat(at), str(r)) for b, at, r in reversed(rows)]

    def teardown(self) -> None:
        with self._db.transaction(write=True) as cur:
            for table in (BASELINES, RUNS):
                cur.execute(f"DELETE FROM {table} WHERE project = ?", (self.project,))
