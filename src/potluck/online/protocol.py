"""The online store protocol: newest-wins writes and key lookups of the latest feature rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

from potluck.definitions.field import Field

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class OnlineView:
    """What an online store needs to know of a feature view."""

    project: str
    name: str
    join_keys: tuple[str, ...]
    key_fields: tuple[Field, ...]  # one per join key, typed
    features: tuple[Field, ...]
    ttl: timedelta  # zero means no expiry


class OnlineStore(Protocol):
    def create(self, views: Sequence[OnlineView]) -> None: ...

    def teardown(self, views: Sequence[OnlineView]) -> None: ...

    def write(self, view: OnlineView, rows: pa.Table) -> int:
        """Write rows (join keys, features, `event_timestamp`, `created_timestamp`); newest wins."""
        ...

    def close(self) -> None: ...
