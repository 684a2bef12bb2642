"""Decoding stream messages into rows for the views they feed, with every bad message set apart.

One decoder per stream source: it knows the source's message format (`JsonFormat`, `AvroFormat`,
or Redis Streams field maps), its `field_mapping`, and the columns each view reading the source
needs, with their types. A message that cannot be decoded, lacks a needed column, has a null
join key or event time, or holds a value that does not fit the declared type becomes a
`DeadLetter` with the reason; the others become rows that `potluck.streaming.push.prepare_rows`
accepts for each of the views without error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from potluck.streaming.sources import StreamMessage

if TYPE_CHECKING:
    import pyarrow as pa

    from potluck.definitions import DataSource, FeatureView

# Columns the decoded table carries besides the event's own: each row's position in the stream.
PARTITION_COLUMN = "__potluck_partition"
OFFSET_COLUMN = "__potluck_offset"
BROKER_TIME_COLUMN = "__potluck_broker_time"  # the broker's timestamp of the message (UTC), null if none


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message the worker could not use, and why."""

    source: str
    partition: str
    offset: int
    key: bytes | None
    value: bytes | None  # the raw payload (for field maps: their JSON encoding)
    reason: str  # names the field and what was wrong, e.g. "field 'trips' is 'abc', not an Int64"


@dataclass(frozen=True, slots=True)
class Decoded:
    """The good messages of a batch as one table, in message order, and the bad ones.

    `table` holds, per row, the fields the source's views need under their field names (after
    `field_mapping`), the source's timestamp column (and created column, when it has one) under
    the source's names, and the position columns above.
    """

    table: pa.Table
    dead: list[DeadLetter]


class Decoder:
    """Decodes batches of one source's messages for the views that read it."""

    def __init__(self, source: DataSource, views: Sequence[FeatureView]) -> None:
        self.source = source
        self.views = list(views)

    def decode(self, messages: Sequence[StreamMessage]) -> Decoded:
        raise NotImplementedError
