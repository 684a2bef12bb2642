"""The online store protocol: newest-wins writes and key lookups of the latest feature rows.

Stores that serve windowed aggregations also keep one tile record per (view, entity key): an
opaque blob with a version, replaced only by compare-and-set (`SupportsTiles`). What the blob
holds (partial aggregates per hop, idempotency marks) is `potluck.aggregation.tiles`' business.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from potluck.definitions.field import Field

if TYPE_CHECKING:
    import pyarrow as pa

    from potluck.aggregation.online_tiles import TileSpec
    from potluck.online.keys import KeyEncoder
    from potluck.online.rows import EncodedRows
    from potluck.online.values import RowCodec


@dataclass(frozen=True)
class OnlineView:
    """What an online store needs to know of a feature view."""

    project: str
    name: str
    join_keys: tuple[str, ...]
    key_fields: tuple[Field, ...]  # one per join key, typed
    features: tuple[Field, ...]
    ttl: timedelta  # zero means no expiry
    generation: int = 0  # the registry version that (re)defined the view's online shape; 0: before generations
    # Windowed aggregations: `features` are their outputs, served from tile records, not rows.
    tiles: TileSpec | None = field(default=None, compare=False)

    # Derived helpers, computed once per view object (cached_property bypasses the frozen check).
    @cached_property
    def key_encoder(self) -> KeyEncoder:
        from potluck.online.keys import KeyEncoder

        return KeyEncoder(self.join_keys, self.key_fields)

    @cached_property
    def row_codec(self) -> RowCodec:
        from potluck.online.values import RowCodec

        return RowCodec(self.features)

    @cached_property
    def storage_name(self) -> str:
        """The table (SQL) or key segment (Redis) holding this view's rows.

        A view deleted and created again, or reshaped, gets a new generation and so a new, empty
        namespace: rows written under an earlier definition are never read (docs/adr/0006).
        """
        base = f"{self.project}:{self.name}"
        return f"{base}@{self.generation}" if self.generation else base

    @cached_property
    def ttl_micros(self) -> int:
        return (self.ttl.days * 86_400 + self.ttl.seconds) * 1_000_000 + self.ttl.microseconds


class ReadRequest(NamedTuple):
    """Rows of one view to look up, by encoded entity key (see `potluck.online.keys`)."""

    view: OnlineView
    keys: Sequence[bytes]


@dataclass
class ReadResult:
    """Per requested key, in order: the decoded row (all view features, view order) and its event time.

    A key with no stored row (or a row of an older schema) has `None` in both lists.
    Event times are microseconds since the Unix epoch, UTC.
    """

    rows: list[list[Any] | None]
    event_ts: list[int | None]


class OnlineStore(Protocol):
    def create(self, views: Sequence[OnlineView]) -> None: ...

    def teardown(self, views: Sequence[OnlineView]) -> None: ...

    def write(self, view: OnlineView, rows: pa.Table) -> int:
        """Write rows (join keys, features, `event_timestamp`, `created_timestamp`); newest wins.

        Returns the number of rows accepted for writing (rows with a null join key are skipped).
        """
        ...

    def read(self, requests: Sequence[ReadRequest]) -> list[ReadResult]:
        """Look up all requests in as few round trips as the backend allows; one result per request."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class SupportsAsyncRead(Protocol):
    """An online store that can read without blocking the running event loop."""

    async def read_async(self, requests: Sequence[ReadRequest]) -> list[ReadResult]:
        """As `OnlineStore.read`, awaited."""
        ...


@dataclass(frozen=True)
class TileRecord:
    """A stored tile record: its version (1 for the first write, +1 per write) and its blob."""

    version: int
    blob: bytes


class TileWrite(NamedTuple):
    """Replace the tile record of `key` with `blob`, if its version is still `expected` (0: absent)."""

    key: bytes
    expected: int
    blob: bytes


@runtime_checkable
class SupportsTiles(Protocol):
    """An online store that keeps tile records (windowed aggregations) beside the feature rows."""

    def read_tiles(self, requests: Sequence[ReadRequest]) -> list[list[TileRecord | None]]:
        """The tile record of every requested key (None: none stored), in one round trip where possible."""
        ...

    def write_tiles(self, view: OnlineView, writes: Sequence[TileWrite], ttl_seconds: int) -> list[bool]:
        """Compare-and-set each write atomically (keys are distinct); True where it was applied.

        `ttl_seconds` > 0 lets the backend expire a record not written for that long (Redis).
        """
        ...


@runtime_checkable
class SupportsScan(Protocol):
    """An online store whose stored rows and tile records can be listed and written back as stored (backups).

    Keys are compared as bytes (their encoding is shared by every store), so every store lists a view
    in the same order, and a snapshot of one store restores into any other.
    """

    def scan_rows(self, view: OnlineView, after: bytes | None, chunk_rows: int) -> Iterator[EncodedRows]:
        """The view's stored rows whose key is after `after` (all when None), in key order, chunk by chunk."""
        ...

    def write_stored(self, view: OnlineView, rows: EncodedRows) -> int:
        """Write stored rows back as they are (keys, times, blobs), newest wins as in `write`; returns how many."""
        ...

    def scan_tiles(self, view: OnlineView, after: bytes | None, chunk_rows: int) -> Iterator[pa.Table]:
        """The view's tile records (`entity_key`, `version`, `blob`) after `after`, in key order, chunk by chunk."""
        ...

    def put_tiles(self, view: OnlineView, tiles: pa.Table, ttl_seconds: int) -> int:
        """Store tile records (`entity_key`, `version`, `blob`) where the key has none; returns how many were stored.

        A record already there is kept, as newest-wins keeps a newer row (a restore that replaces
        everything empties the view first).
        """
        ...
