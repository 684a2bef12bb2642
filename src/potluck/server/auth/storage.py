"""Tables of the server in the registry database: API keys and the audit log."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from potluck.registry.dbapi import Cursor, Database


def _ddl(dialect: str) -> list[str]:
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT" if dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
    return [
        """CREATE TABLE IF NOT EXISTS potluck_api_keys (
            id VARCHAR(32) PRIMARY KEY,
            project VARCHAR(255) NOT NULL,
            name VARCHAR(255) NOT NULL,
            role VARCHAR(32) NOT NULL,
            scopes TEXT NOT NULL,
            secret_hash VARCHAR(128) NOT NULL,
            created_at VARCHAR(40) NOT NULL,
            created_by VARCHAR(255) NOT NULL,
            revoked_at VARCHAR(40))""",
        f"""CREATE TABLE IF NOT EXISTS potluck_audit_log (
            id {serial},
            project VARCHAR(255) NOT NULL,
            at VARCHAR(40) NOT NULL,
            actor VARCHAR(255) NOT NULL,
            action VARCHAR(64) NOT NULL,
            resource TEXT NOT NULL,
            outcome VARCHAR(255) NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS ix_potluck_audit_project ON potluck_audit_log (project, id)",
    ]


class ServerTables:
    """One registry database, with the server's tables created on first use. Thread-safe."""

    def __init__(self, url: str, project: str) -> None:
        self.db = Database(url)
        self.project = project
        self._lock = threading.Lock()
        self._ready = False

    @contextmanager
    def transaction(self, write: bool = False) -> Iterator[Cursor]:
        with self._lock:
            if not self._ready:
                self._create()
            with self.db.transaction(write=write) as cur:
                yield cur

    def _create(self) -> None:
        driver = self.db.driver
        try:
            with self.db.transaction(write=True) as cur:
                for statement in _ddl(self.db.dialect):
                    cur.execute(statement)
        except (driver.IntegrityError, driver.ProgrammingError):
            pass  # another process created them at the same moment
        self._ready = True

    def close(self) -> None:
        with self._lock:
            self.db.close()
