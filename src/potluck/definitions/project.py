"""`Project`: the repository's project as a definition, with its description and tags."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from potluck.definitions.base import Definition, check_name, check_tags, check_text


class Project(Definition):
    """`Project(name=, description=, tags=)`; its name must be feature_store.yaml's `project`.

    `created_timestamp` and `last_updated_timestamp` are accepted for Feast's signature; the
    registry keeps its own times in its history.
    """

    kind = "project"

    def __init__(
        self,
        *,
        name: str,
        description: str = "",
        tags: dict[str, str] | None = None,
        owner: str = "",
        created_timestamp: datetime | None = None,
        last_updated_timestamp: datetime | None = None,
    ) -> None:
        self.name = check_name("Project", name)
        label = f"Project '{name}'"
        self.description = check_text(label, description, "description")
        self.tags = check_tags(label, tags)
        self.owner = check_text(label, owner, "owner")
        self.created_timestamp = created_timestamp
        self.last_updated_timestamp = last_updated_timestamp

    def to_spec(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "tags": self.tags, "owner": self.owner}

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Project:
        return cls(
            name=spec["name"],
            description=spec.get("description", ""),
            tags=spec.get("tags"),
            owner=spec.get("owner", ""),
        )
