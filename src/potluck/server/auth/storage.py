"""Tables of the server in the registry database: API keys and the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from potluck.registry.dbapi import Cursor, Database, Timeouts, dialect_of


def schema(dialect: str) -> list[str]:
    """The server's tables and indexes; each is created only when missing."""
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

    def __init__(self, url: str, project: str, timeouts: Timeouts | None = None) -> None:
        self.db = Database(url, timeouts, schema(dialect_of(url)))
        self.project = project

    @contextmanager
    def transaction(self, write: bool = False) -> Iterator[Cursor]:
        with self.db.transaction(write=write) as cur:
            yield cur

    def close(self) -> None:
        self.db.close()
