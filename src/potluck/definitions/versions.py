"""Feature view version names: `latest`, `vN` (also spelled `versionN`), numbered from 0."""

from __future__ import annotations

import re

from potluck.definitions.errors import DefinitionError

LATEST = "latest"
_PINNED = re.compile(r"v(?:ersion)?(\d+)", re.IGNORECASE)


def parse_version(text: object, owner: str) -> int | None:
    """The version number `text` names, or None for `latest`; anything else is an error naming `owner`."""
    if isinstance(text, str):
        if text.lower() == LATEST:
            return None
        match = _PINNED.fullmatch(text)
        if match:
            return int(match.group(1))
    raise DefinitionError(f"{owner}: version={text!r} must be 'latest' or 'vN' (such as 'v0' or 'v2')")


def version_tag(number: int) -> str:
    return f"v{number}"
