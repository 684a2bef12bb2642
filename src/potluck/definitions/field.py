"""`Field`: a named, typed column of a feature view's schema."""

from __future__ import annotations

from typing import Any

from potluck.definitions.base import check_column, check_tags, check_text
from potluck.definitions.errors import DefinitionError
from potluck.definitions.types import TYPE_CLASSES, PotluckType, dtype_from_name


class Field:
    """A feature (or entity column) with its type, as in `Field(name="age", dtype=Int64)`."""

    __slots__ = ("description", "dtype", "name", "tags")

    def __init__(
        self,
        *,
        name: str,
        dtype: PotluckType,
        description: str = "",
        tags: dict[str, str] | None = None,
        vector_index: bool = False,
        vector_length: int = 0,
        vector_search_metric: str | None = None,
    ) -> None:
        self.name = check_column("Field", name, field="name")
        given = [
            option
            for option, value in (
                ("vector_index", vector_index),
                ("vector_length", vector_length),
                ("vector_search_metric", vector_search_metric),
            )
            if value
        ]
        if given:
            raise DefinitionError(
                f"Field '{name}': {', '.join(given)} set, but vector search is not supported; "
                "remove the vector options (the field can still hold the vector, e.g. dtype=Array(Float32))"
            )
        if not isinstance(dtype, TYPE_CLASSES):
            raise DefinitionError(
                f"Field '{name}': 'dtype' must be a type from potluck.types "
                f"(Int64, Float32, String, Map, Json, Array(Float32), Struct({...}), ...), got {dtype!r}"
            )
        self.dtype = dtype
        self.description = check_text(f"Field '{name}'", description, "description")
        self.tags = check_tags(f"Field '{name}'", tags)

    def to_spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype.name,
            "description": self.description,
            "tags": self.tags,
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Field:
        return cls(
            name=spec["name"],
            dtype=dtype_from_name(spec["dtype"]),
            description=spec.get("description", ""),
            tags=spec.get("tags"),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Field) and self.to_spec() == other.to_spec()

    def __hash__(self) -> int:
        return hash((self.name, self.dtype.name))

    def __repr__(self) -> str:
        return f"Field(name={self.name!r}, dtype={self.dtype.name})"
