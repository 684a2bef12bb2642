"""Every applied definition of each feature view, numbered v0, v1, ... (docs/adr/0007-feature-view-versions.md).

Rows are written inside the apply's transaction (see `SqlRegistryStore.commit`): a version exists
exactly when the apply that made it committed. A definition becomes a new version only when its
content differs from the view's latest recorded version; a pin (`version="vN"`) reuses vN.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from potluck.definitions import FeatureView
from potluck.definitions.base import canonical_json
from potluck.definitions.errors import DefinitionError
from potluck.definitions.feature_view import CURRENT_VERSION, ONLINE_GENERATION
from potluck.definitions.versions import version_tag
from potluck.registry.dbapi import Cursor

TABLE = "potluck_feature_view_versions"
_REGISTRY_KEYS = (ONLINE_GENERATION, CURRENT_VERSION)  # assigned by the registry, not the definition's content


def versions_ddl() -> str:
    """The version table (part of the registry schema; created when missing, so older registries get it)."""
    return f"""CREATE TABLE IF NOT EXISTS {TABLE} (
        project VARCHAR(255) NOT NULL,
        feature_view VARCHAR(255) NOT NULL,
        version_number BIGINT NOT NULL,
        spec TEXT NOT NULL,
        content_hash VARCHAR(64) NOT NULL,
        registry_version BIGINT NOT NULL,
        created_at VARCHAR(40) NOT NULL,
        author VARCHAR(255) NOT NULL,
        PRIMARY KEY (project, feature_view, version_number))"""


def content_of(spec: dict[str, Any]) -> dict[str, Any]:
    """A view's spec without what the registry assigns (its online generation and version number)."""
    return {k: v for k, v in spec.items() if k not in _REGISTRY_KEYS}


def content_hash(spec: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(content_of(spec)).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class FeatureViewVersion:
    """One applied definition of a feature view."""

    name: str
    number: int
    spec: dict[str, Any]
    content_hash: str
    registry_version: int  # the registry version whose apply recorded it
    created_at: datetime
    author: str

    @property
    def tag(self) -> str:
        return version_tag(self.number)

    def view(self) -> FeatureView:
        """The definition, as the view it was (its `current_version_number` is this version)."""
        view = FeatureView.from_spec(self.spec)
        view.current_version_number = self.number
        return view


def read_versions(cur: Cursor, project: str, name: str | None = None) -> list[FeatureViewVersion]:
    """The recorded versions of `name` (of every view when None), by view and number."""
    sql = (
        f"SELECT feature_view, version_number, spec, content_hash, registry_version, created_at, author "
        f"FROM {TABLE} WHERE project = ?"
    )
    params: list[Any] = [project]
    if name is not None:
        sql += " AND feature_view = ?"
        params.append(name)
    cur.execute(sql + " ORDER BY feature_view, version_number", params)
    return [
        FeatureViewVersion(view, int(n), json.loads(spec), digest, int(reg), datetime.fromisoformat(at), author)
        for view, n, spec, digest, reg, at, author in cur.fetchall()
    ]


def _insert(
    cur: Cursor, project: str, name: str, number: int, spec: dict[str, Any], meta: tuple[int, str, str]
) -> None:
    registry_version, now, author = meta
    body = content_of(spec)
    cur.execute(
        f"INSERT INTO {TABLE} (project, feature_view, version_number, spec, content_hash, registry_version, "
        "created_at, author) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (project, name, number, canonical_json(body), content_hash(body), registry_version, now, author),
    )


def assign_version(
    cur: Cursor,
    project: str,
    name: str,
    spec: dict[str, Any],
    *,
    pin: int | None,
    old_spec: dict[str, Any] | None,
    meta: tuple[int, str, str],
) -> int:
    """Inside an apply: the version number of `spec`, recording it when it is a new version.

    `old_spec` is the view's registered definition before this apply; a view applied before
    versions were recorded has no rows yet, and its old definition becomes v0 first.
    `meta` is (registry version, time, author) of the apply.
    """
    cur.execute(
        f"SELECT version_number, content_hash FROM {TABLE} WHERE project = ? AND feature_view = ? "
        "ORDER BY version_number",
        (project, name),
    )
    known = {int(n): digest for n, digest in cur.fetchall()}
    if not known and old_spec is not None:
        _insert(cur, project, name, 0, old_spec, meta)
        known[0] = content_hash(old_spec)
    digest = content_hash(spec)
    following = max(known) + 1 if known else 0
    if pin is not None:
        if pin in known:
            if known[pin] != digest:
                raise DefinitionError(
                    f"FeatureView '{name}': version={version_tag(pin)!r} is pinned, but the definition to apply "
                    f"is not the recorded {version_tag(pin)}; plan again"
                )
            return pin
        if pin != following:
            shown = ", ".join(version_tag(n) for n in sorted(known)) or "none yet"
            raise DefinitionError(
                f"FeatureView '{name}': version={version_tag(pin)!r} does not exist (versions: {shown}); pin an "
                f"existing version, or {version_tag(following)} to declare the next one"
            )
        _insert(cur, project, name, pin, spec, meta)
        return pin
    if known and known[following - 1] == digest:
        return following - 1  # the latest recorded version again (e.g. promoting an unpromoted one)
    _insert(cur, project, name, following, spec, meta)
    return following
