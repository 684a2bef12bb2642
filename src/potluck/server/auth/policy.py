"""Who may do what: roles, scopes, and the check of a request against them.

Roles: reader (online reads), writer (push and write-to-online-store; implies reader), admin
(materialize and everything else), metrics (only /metrics). Scopes restrict a credential to feature services and views by name
or tag; a credential without scopes is unrestricted within its role. A resource no scope matches is
denied.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from potluck.server.backend import Resource

ROLES = ("reader", "writer", "admin", "metrics")
_IMPLIED: dict[str, frozenset[str]] = {
    "reader": frozenset({"reader"}),
    "writer": frozenset({"reader", "writer"}),
    "admin": frozenset(ROLES),
    "metrics": frozenset({"metrics"}),
}
SCOPE_KINDS = ("feature_service", "feature_view", "tag")
# What a request does to the resources it touches; scopes are checked for each (named in 403 answers).
READ, WRITE, MATERIALIZE = "read", "write", "materialize"


def parse_scope(text: str) -> Scope:
    """`feature_service:NAME`, `feature_view:NAME` or `tag:KEY=VALUE`."""
    kind, sep, rest = text.partition(":")
    if not sep or kind not in SCOPE_KINDS or not rest:
        raise ValueError(f"scope '{text}': use feature_service:NAME, feature_view:NAME or tag:KEY=VALUE")
    if kind == "tag":
        key, eq, value = rest.partition("=")
        if not eq or not key:
            raise ValueError(f"scope '{text}': a tag scope is tag:KEY=VALUE")
        return Scope("tag", key, value)
    return Scope(kind, rest)


@dataclass(frozen=True)
class Scope:
    kind: str
    name: str
    value: str = ""

    def __str__(self) -> str:
        return f"tag:{self.name}={self.value}" if self.kind == "tag" else f"{self.kind}:{self.name}"

    def matches(self, resource: Resource) -> bool:
        if self.kind == "tag":
            return resource.tags.get(self.name) == self.value
        return self.kind == resource.kind and self.name == resource.name


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    actor: str  # for audit records, e.g. "key:ab12cd34 (ci)" or "oidc:alice"
    roles: frozenset[str]
    scopes: tuple[Scope, ...] | None = None  # None: unrestricted within the roles
    extra: Mapping[str, str] = field(default_factory=dict)

    def has_role(self, role: str) -> bool:
        return any(role in _IMPLIED.get(r, ()) for r in self.roles)

    def denied(self, resources: Iterable[Resource]) -> Resource | None:
        """The first resource this principal may not touch, or None when all are allowed."""
        if self.scopes is None:
            return None
        for resource in resources:
            if not self._allows(resource):
                return resource
        return None

    def _allows(self, resource: Resource) -> bool:
        if any(s.matches(resource) for s in self.scopes or ()):
            return True
        # a service is allowed when every view it reads is allowed on its own
        return (
            resource.kind == "feature_service"
            and bool(resource.members)
            and all(self._allows(m) for m in resource.members)
        )


ANONYMOUS = Principal(actor="anonymous", roles=frozenset({"admin"}))
