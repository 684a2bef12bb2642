"""`RequestSource`: values that arrive with each request (online) or entity dataframe (offline)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from potluck.definitions.base import check_name, check_tags, check_text
from potluck.definitions.errors import DefinitionError
from potluck.definitions.field import Field
from potluck.definitions.sources import DataSource


class RequestSource(DataSource):
    """Named, typed fields given by the caller: keys of the entity rows, columns of the entity dataframe."""

    source_type = "request"

    def __init__(
        self,
        *,
        name: str,
        schema: Sequence[Field],
        description: str = "",
        tags: dict[str, str] | None = None,
        owner: str = "",
    ) -> None:
        self.name = check_name("RequestSource", name)
        label = f"RequestSource '{name}'"
        if isinstance(schema, (str, bytes)) or not isinstance(schema, Sequence) or not schema:
            raise DefinitionError(f"{label}: 'schema' must be a non-empty list of Field objects")
        seen: set[str] = set()
        for i, f in enumerate(schema):
            if not isinstance(f, Field):
                raise DefinitionError(f"{label}: 'schema[{i}]' must be a Field, got {f!r}")
            if f.name in seen:
                raise DefinitionError(f"{label}: the schema declares field '{f.name}' twice")
            seen.add(f.name)
        self.schema = list(schema)
        self.description = check_text(label, description, "description")
        self.tags = check_tags(label, tags)
        self.owner = check_text(label, owner, "owner")
        # A request source has no table: no timestamps and no column mapping.
        self.timestamp_field = ""
        self.created_timestamp_column = ""
        self.field_mapping = {}

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.schema]

    def to_spec(self) -> dict[str, Any]:
        return {
            "type": self.source_type,
            "name": self.name,
            "schema": [f.to_spec() for f in self.schema],
            "description": self.description,
            "tags": self.tags,
            "owner": self.owner,
        }

    @classmethod
    def _from_spec(cls, spec: Mapping[str, Any]) -> RequestSource:
        return cls(
            name=spec["name"],
            schema=[Field.from_spec(f) for f in spec["schema"]],
            description=spec.get("description", ""),
            tags=spec.get("tags"),
            owner=spec.get("owner", ""),
        )
