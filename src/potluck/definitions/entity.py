"""`Entity`: what features describe (a user, a merchant), identified by join keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from potluck.definitions.base import Definition, check_column, check_name, check_tags, check_text
from potluck.definitions.errors import DefinitionError
from potluck.definitions.types import ValueType


class Entity(Definition):
    kind = "entity"

    def __init__(
        self,
        *,
        name: str,
        join_keys: list[str] | None = None,
        value_type: ValueType | None = None,
        description: str = "",
        tags: dict[str, str] | None = None,
        owner: str = "",
    ) -> None:
        self.name = check_name("Entity", name)
        label = f"Entity '{name}'"
        if join_keys is None:
            join_keys = [name]
        if isinstance(join_keys, str) or not isinstance(join_keys, (list, tuple)) or not join_keys:
            raise DefinitionError(f"{label}: 'join_keys' must be a non-empty list of column names")
        if len(join_keys) != 1:
            raise DefinitionError(
                f"{label}: 'join_keys' must hold exactly one column; for a composite key "
                "declare one entity per column and list them all in the feature view's 'entities'"
            )
        self.join_keys = [check_column(label, k, field="join_keys") for k in join_keys]
        if value_type is not None and not isinstance(value_type, ValueType):
            raise DefinitionError(f"{label}: 'value_type' must be a potluck.ValueType, got {value_type!r}")
        self.value_type = value_type or ValueType.UNKNOWN
        self.description = check_text(label, description, "description")
        self.tags = check_tags(label, tags)
        self.owner = check_text(label, owner, "owner")

    @property
    def join_key(self) -> str:
        return self.join_keys[0]

    def to_spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "join_keys": list(self.join_keys),
            "value_type": self.value_type.name,
            "description": self.description,
            "tags": self.tags,
            "owner": self.owner,
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Entity:
        return cls(
            name=spec["name"],
            join_keys=spec["join_keys"],
            value_type=ValueType[spec.get("value_type", "UNKNOWN")],
            description=spec.get("description", ""),
            tags=spec.get("tags"),
            owner=spec.get("owner", ""),
        )
