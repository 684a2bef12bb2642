"""API keys: random, shown once, stored as a SHA-256 hash in the registry database.

A key reads `pk_<id>_<secret>`: the id is public (it names the key in lists and the audit log),
the 256-bit secret is only ever stored hashed. SHA-256 suffices for random secrets of this size; a
slow hash protects guessable passwords, which these are not.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from potluck.definitions.errors import NotFoundError
from potluck.server.auth.audit import AuditLog
from potluck.server.auth.policy import ROLES, Principal, Scope, parse_scope
from potluck.server.auth.storage import ServerTables

PREFIX = "pk_"
_CACHE_LIMIT = 10_000


@dataclass(frozen=True)
class ApiKeyInfo:
    id: str
    name: str
    role: str
    scopes: tuple[str, ...]
    created_at: datetime
    created_by: str
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _split(key: str) -> tuple[str, str] | None:
    if not key.startswith(PREFIX):
        return None
    key_id, sep, secret = key[len(PREFIX) :].partition("_")
    if not sep or not key_id or not secret:
        return None
    return key_id, secret


class ApiKeyStore:
    def __init__(self, tables: ServerTables, audit: AuditLog | None = None, cache_seconds: float = 5.0) -> None:
        self._tables = tables
        self._audit = audit or AuditLog(tables)
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._cache_lock = threading.Lock()

    def create(self, role: str, actor: str, name: str = "", scopes: list[str] | None = None) -> tuple[ApiKeyInfo, str]:
        """Create a key; returns its record and the key itself, which is not stored anywhere."""
        if role not in ROLES:
            raise ValueError(f"role '{role}': use one of {', '.join(ROLES)}")
        parsed = [str(parse_scope(s)) for s in scopes or []]
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        info = ApiKeyInfo(key_id, name, role, tuple(parsed), now, actor, None)
        with self._tables.transaction(write=True) as cur:
            cur.execute(
                "INSERT INTO potluck_api_keys (id, project, name, role, scopes, secret_hash, created_at, created_by) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key_id, self._tables.project, name, role, json.dumps(parsed), _hash(secret), now.isoformat(), actor),
            )
        self._audit.record(actor, "create_key", f"key:{key_id}", f"ok role={role} scopes={','.join(parsed) or '*'}")
        return info, f"{PREFIX}{key_id}_{secret}"

    def revoke(self, key_id: str, actor: str) -> None:
        with self._tables.transaction(write=True) as cur:
            changed = cur.execute(
                "UPDATE potluck_api_keys SET revoked_at = ? WHERE id = ? AND project = ? AND revoked_at IS NULL",
                (datetime.now(UTC).isoformat(), key_id, self._tables.project),
            )
        if not changed:
            self._audit.record(actor, "revoke_key", f"key:{key_id}", "failed: no such active key")
            raise NotFoundError(f"no active API key with id '{key_id}'; see `potluck auth list-keys`")
        self._audit.record(actor, "revoke_key", f"key:{key_id}", "ok")
        with self._cache_lock:
            self._cache.clear()

    def list(self) -> list[ApiKeyInfo]:
        with self._tables.transaction() as cur:
            cur.execute(
                "SELECT id, name, role, scopes, created_at, created_by, revoked_at FROM potluck_api_keys "
                "WHERE project = ? ORDER BY created_at",
                (self._tables.project,),
            )
            rows = cur.fetchall()
        return [
            ApiKeyInfo(
                r[0],
                r[1],
                r[2],
                tuple(json.loads(r[3])),
                datetime.fromisoformat(r[4]),
                r[5],
                datetime.fromisoformat(r[6]) if r[6] else None,
            )
            for r in rows
        ]

    def cached(self, key: str) -> tuple[Principal | None] | None:
        """The cached answer of `verify` for `key` (in a 1-tuple), or None when it must be looked up."""
        hit = self._cache.get(_hash(key))
        if hit is not None and hit[0] > time.monotonic():
            return (hit[1],)
        return None

    def verify(self, key: str) -> Principal | None:
        """The principal of a valid, unrevoked key, or None. Answers are cached briefly.

        A miss reads the registry database: call it off the event loop.
        """
        cache_key = _hash(key)
        now = time.monotonic()
        hit = self._cache.get(cache_key)
        if hit is not None and hit[0] > now:
            return hit[1]
        principal = self._lookup(key)
        with self._cache_lock:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[cache_key] = (now + self._cache_seconds, principal)
        return principal

    def _lookup(self, key: str) -> Principal | None:
        parts = _split(key)
        if parts is None:
            return None
        key_id, secret = parts
        with self._tables.transaction() as cur:
            cur.execute(
                "SELECT name, role, scopes, secret_hash FROM potluck_api_keys "
                "WHERE id = ? AND project = ? AND revoked_at IS NULL",
                (key_id, self._tables.project),
            )
            row = cur.fetchone()
        if row is None or not hmac.compare_digest(row[3], _hash(secret)):
            return None
        name, role, scopes_json, _ = row
        scopes: tuple[Scope, ...] | None = tuple(parse_scope(s) for s in json.loads(scopes_json)) or None
        actor = f"key:{key_id}" + (f" ({name})" if name else "")
        return Principal(actor=actor, roles=frozenset({role}), scopes=scopes)
