"""What every definition object shares: a name, metadata, a JSON spec and a content hash."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from potluck.definitions.errors import DefinitionError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")  # matched in full: `$` would let "name\n" pass
_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_NAME_LENGTH = 255  # the registry's name columns (VARCHAR(255)) hold at most this many characters


def check_name(kind: str, name: object, *, field: str = "name") -> str:
    """Validate an object name: letters, digits, `_` and `-`, not starting with a digit, at most 255 long."""
    if not isinstance(name, str) or not name:
        raise DefinitionError(f"{kind}: '{field}' must be a non-empty string, got {name!r}")
    _check_length(kind, name, field)
    if not _NAME.fullmatch(name):
        raise DefinitionError(
            f"{kind} {name!r}: '{field}' may only contain letters, digits, '_' and '-', and must not start with a digit"
        )
    return name


def _check_length(owner: str, name: str, field: str) -> None:
    if len(name) > MAX_NAME_LENGTH:
        raise DefinitionError(
            f"{owner} '{name[:40]}...': '{field}' is {len(name)} characters long; use at most {MAX_NAME_LENGTH}"
        )


def check_column(owner: str, name: object, *, field: str) -> str:
    """Validate a column name (feature, join key, timestamp): an identifier."""
    if not isinstance(name, str) or not name:
        raise DefinitionError(f"{owner}: '{field}' must be a non-empty string, got {name!r}")
    _check_length(owner, name, field)
    if not _COLUMN.fullmatch(name):
        raise DefinitionError(
            f"{owner}: '{field}' value {name!r} must be an identifier "
            "(letters, digits and '_', not starting with a digit)"
        )
    return name


def check_tags(owner: str, tags: object) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise DefinitionError(f"{owner}: 'tags' must be a mapping of strings to strings, got {tags!r}")
    return dict(sorted(tags.items()))


def check_text(owner: str, value: object, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DefinitionError(f"{owner}: '{field}' must be a string, got {value!r}")
    return value


def canonical_json(spec: Any) -> str:
    return json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class Definition:
    """Base of Entity, data sources, FeatureView and FeatureService."""

    kind: ClassVar[str] = "object"
    name: str
    description: str
    tags: dict[str, str]
    owner: str

    def to_spec(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Definition:
        raise NotImplementedError

    def content_hash(self) -> str:
        """A stable hash of the definition's content (same content, same hash, across runs)."""
        return hashlib.sha256(canonical_json(self.to_spec()).encode()).hexdigest()[:16]

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.to_spec() == other.to_spec()

    def __hash__(self) -> int:
        return hash((self.kind, self.name))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
