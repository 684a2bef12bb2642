"""An immutable view of the registry at one version."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from potluck.definitions import DEFINITION_KINDS, Definition
from potluck.definitions.errors import not_found

T = TypeVar("T", bound=Definition)

KIND_LABELS = {
    "entity": "Entity",
    "data_source": "Data source",
    "feature_view": "Feature view",
    "feature_service": "Feature service",
}


def decode(kind: str, spec: Mapping[str, Any]) -> Definition:
    return DEFINITION_KINDS[kind].from_spec(spec)


@dataclass(frozen=True)
class RegistrySnapshot:
    """The definitions of one project at one registry version."""

    project: str
    version: int
    objects: dict[str, dict[str, Definition]] = field(default_factory=dict)  # kind -> name -> object

    @classmethod
    def from_rows(cls, project: str, version: int, rows: Iterable[tuple[str, str, dict[str, Any]]]) -> RegistrySnapshot:
        objects: dict[str, dict[str, Definition]] = {kind: {} for kind in DEFINITION_KINDS}
        for kind, name, spec in rows:
            objects.setdefault(kind, {})[name] = decode(kind, spec)
        return cls(project, version, objects)

    def of_kind(self, kind: str) -> dict[str, Definition]:
        return self.objects.get(kind, {})

    def get(self, kind: str, name: str) -> Definition:
        found = self.of_kind(kind)
        if name not in found:
            raise not_found(KIND_LABELS.get(kind, kind), name, found, key=kind)
        return found[name]

    def all(self) -> list[Definition]:
        return [obj for kind in DEFINITION_KINDS for obj in self.of_kind(kind).values()]
