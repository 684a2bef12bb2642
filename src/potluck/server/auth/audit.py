"""The audit log of admin actions: materializations and API key changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from potluck.server.auth.storage import ServerTables


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str
    action: str
    resource: str
    outcome: str


class AuditLog:
    def __init__(self, tables: ServerTables) -> None:
        self._tables = tables

    def record(self, actor: str, action: str, resource: str, outcome: str) -> None:
        with self._tables.transaction(write=True) as cur:
            cur.execute(
                "INSERT INTO potluck_audit_log (project, at, actor, action, resource, outcome) VALUES (?, ?, ?, ?, ?, ?)",
                (self._tables.project, datetime.now(UTC).isoformat(), actor, action, resource, outcome[:255]),
            )

    def records(self, limit: int = 100) -> list[AuditRecord]:
        """The latest records, newest first."""
        with self._tables.transaction() as cur:
            cur.execute(
                "SELECT id, at, actor, action, resource, outcome FROM potluck_audit_log "
                "WHERE project = ? ORDER BY id DESC LIMIT ?",
                (self._tables.project, limit),
            )
            rows = cur.fetchall()
        return [AuditRecord(int(r[0]), datetime.fromisoformat(r[1]), r[2], r[3], r[4], r[5]) for r in rows]
