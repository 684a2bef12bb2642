"""What an alert is: one rule firing for one view (and feature), with a stable dedup key."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

AlertKind = Literal["drift", "stale", "materialization", "skew"]
ALERT_KINDS: tuple[AlertKind, ...] = ("drift", "stale", "materialization", "skew")
_MAX_KEY = 255  # PagerDuty's limit on a dedup key


@dataclass(frozen=True)
class Alert:
    project: str
    kind: AlertKind
    view: str
    feature: str | None  # None: the alert is about the whole view (staleness, materialization)
    rule: str  # e.g. psi, ks, mean_change, max_staleness, materialization_failed; skew: the feature service
    summary: str = ""
    details: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)  # JSON values only

    @property
    def key(self) -> str:
        return dedup_key(self.project, self.kind, self.view, self.feature, self.rule)

    def subject(self) -> str:
        return self.view if self.feature is None else f"{self.view}:{self.feature}"


def dedup_key(project: str, kind: str, view: str, feature: str | None, rule: str) -> str:
    """`potluck/<project>/<kind>/<view>/<feature>/<rule>`, each part URL-quoted (no feature: empty).

    Past 255 characters, the end is replaced by a hash of the whole key.
    """
    parts = [quote(p, safe="") for p in (project, kind, view, feature or "", rule)]
    key = "potluck/" + "/".join(parts)
    if len(key) <= _MAX_KEY:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"{key[: _MAX_KEY - 33]}~{digest}"


@dataclass(frozen=True)
class Scope:
    """What one run checked, as (kind, view) pairs, or (kind, view, rule) triples where one run
    checks only some rules of a view (skew: one feature service): a previously firing alert inside
    it that no longer fires is resolved; alerts outside it are left as they are."""

    checked: frozenset[tuple[str, ...]] = frozenset()

    @classmethod
    def of(cls, kind: AlertKind, views: Iterable[str], rule: str | None = None) -> Scope:
        if rule is not None:
            return cls(frozenset((kind, v, rule) for v in views))
        return cls(frozenset((kind, v) for v in views))

    def __or__(self, other: Scope) -> Scope:
        return Scope(self.checked | other.checked)

    def covers(self, kind: str, view: str, rule: str | None = None) -> bool:
        return (kind, view) in self.checked or (rule is not None and (kind, view, rule) in self.checked)
