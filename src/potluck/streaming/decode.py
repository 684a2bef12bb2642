"""Decoding stream messages into rows for the views they feed, with every bad message set apart.

One decoder per stream source: it knows the source's message format (`JsonFormat`, `AvroFormat`,
or Redis Streams field maps), its `field_mapping`, and the columns each view reading the source
needs, with their types. A message that cannot be decoded, lacks a needed column, has a null
join key or event time, or holds a value that does not fit the declared type becomes a
`DeadLetter` with the reason; the others become rows that `potluck.streaming.push.prepare_rows`
accepts for each of the views without error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from potluck.streaming.decode_avro import AvroReader, BadPayload
from potluck.streaming.decode_columns import ColumnConverter, bad_value_reason, field_map_value, key_target
from potluck.streaming.decode_plan import CREATED_TIME, Needed, Target, decode_plan
from potluck.streaming.push_values import BadValue
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


TOMBSTONE = "a tombstone: the message has no value (a deleted key)"
_MISSING = object()
_JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}


def field_map_payload(fields: Mapping[bytes, bytes]) -> bytes:
    """A field map as the JSON object a dead letter keeps of it."""
    return orjson.dumps(
        {k.decode("utf-8", "backslashreplace"): v.decode("utf-8", "backslashreplace") for k, v in fields.items()}
    )


class Decoder:
    """Decodes batches of one source's messages for the views that read it."""

    def __init__(self, source: DataSource, views: Sequence[FeatureView]) -> None:
        self.source = source
        self.views = list(views)
        self._plan = decode_plan(source, self.views)
        message_format: Any = getattr(source, "message_format", None)  # None for field-map streams
        self._format = "" if message_format is None else str(message_format.format_name)
        self._avro = (
            AvroReader(source.name, message_format.schema_json, [n.source_column for n in self._plan])
            if self._format == "avro"
            else None
        )
        self._context = f"decode stream source '{source.name}'"
        self._converters: dict[tuple[str, Target], ColumnConverter] = {}

    def decode(self, messages: Sequence[StreamMessage]) -> Decoded:
        rows, origin, field_rows, dead = self._parse(messages)
        bad: dict[int, str] = {}  # by row: why the row's message is set apart
        columns: dict[str, Any] = {}
        for needed in self._plan:
            columns[needed.name] = self._column(needed, rows, field_rows, bad)
        keep = [j for j in range(len(rows)) if j not in bad]
        for j, reason in bad.items():
            dead[origin[j]] = reason
        return Decoded(
            self._table(columns, [messages[origin[j]] for j in keep], keep, len(rows)), self._letters(messages, dead)
        )

    def _parse(
        self, messages: Sequence[StreamMessage]
    ) -> tuple[list[dict[str, Any]], list[int], list[int], dict[int, str]]:
        """Each message as a dict of its fields, or its reason in the dict of dead messages."""
        rows: list[dict[str, Any]] = []
        origin: list[int] = []
        field_rows: list[int] = []
        dead: dict[int, str] = {}
        loads, is_json, avro = orjson.loads, self._format == "json", self._avro
        field_maps = not self._format  # with a message format, the payload is `value` even if fields come too
        for i, message in enumerate(messages):
            value = message.value
            if field_maps and message.fields is not None:
                field_rows.append(len(rows))
                obj: Any = {k.decode("utf-8", "replace"): v for k, v in message.fields.items()}
            elif value is None:
                dead[i] = TOMBSTONE
                continue
            elif is_json:
                try:
                    obj = loads(value)
                except orjson.JSONDecodeError as err:
                    dead[i] = f"not JSON ({err})"
                    continue
                if type(obj) is not dict:
                    dead[i] = f"not a JSON object (the message is {_JSON_KINDS.get(type(obj), 'null')})"
                    continue
            elif avro is not None:
                try:
                    obj = avro.read(value)
                except BadPayload as err:
                    dead[i] = str(err)
                    continue
            else:
                dead[i] = (
                    "the source has no message format, so each message must be a field map (a Redis Streams entry)"
                )
                continue
            rows.append(obj)
            origin.append(i)
        return rows, origin, field_rows, dead

    def _column(self, needed: Needed, rows: list[dict[str, Any]], field_rows: list[int], bad: dict[int, str]) -> Any:
        source_column = needed.source_column
        values = [r.get(source_column, _MISSING) for r in rows]
        if _MISSING in values:
            optional = needed.role == CREATED_TIME
            for j, v in enumerate(values):
                if v is _MISSING:
                    if not optional:
                        bad.setdefault(j, f"field '{source_column}' is missing")
                    values[j] = None
        for j in bad:
            values[j] = None  # a row already set apart needs no checks
        targets = needed.targets or (key_target(values),)
        output = None
        for target in targets:
            typed = self._field_map_values(values, field_rows, target, source_column, bad) if field_rows else values
            if needed.required and None in typed:
                for j, v in enumerate(typed):
                    if v is None:
                        bad.setdefault(j, f"field '{source_column}' is null")
            converter = self._converters.get((needed.name, target))
            if converter is None:
                converter = self._converters[needed.name, target] = ColumnConverter(
                    source_column, target, self._context
                )
            array = converter.convert(typed, bad)
            output = array if output is None else output
        if needed.role == CREATED_TIME and output is not None and output.null_count:
            import pyarrow as pa
            import pyarrow.compute as pc

            output = pc.fill_null(output, pa.scalar(datetime.now(UTC), output.type))
        return output

    @staticmethod
    def _field_map_values(
        values: list[Any], field_rows: list[int], target: Target, column: str, bad: dict[int, str]
    ) -> list[Any]:
        typed = list(values)
        for j in field_rows:
            try:
                typed[j] = field_map_value(values[j], target)
            except BadValue as err:
                bad.setdefault(j, bad_value_reason(column, values[j], target.type_name, f": expected {err}"))
                typed[j] = None
        return typed

    def _table(self, columns: dict[str, Any], kept: list[StreamMessage], keep: list[int], rows: int) -> pa.Table:
        import pyarrow as pa
        import pyarrow.compute as pc

        if len(keep) != rows:
            indices = pa.array(keep, pa.int64())
            columns = {name: array.take(indices) for name, array in columns.items()}
        times = pa.array([m.timestamp_ms for m in kept], pa.int64())
        columns[PARTITION_COLUMN] = pa.array([m.partition for m in kept], pa.string())
        columns[OFFSET_COLUMN] = pa.array([m.offset for m in kept], pa.int64())
        columns[BROKER_TIME_COLUMN] = pc.multiply(times, 1000).cast(pa.timestamp("us", tz="UTC"))
        return pa.table(columns)

    def _letters(self, messages: Sequence[StreamMessage], dead: dict[int, str]) -> list[DeadLetter]:
        letters = []
        for i in sorted(dead):
            m = messages[i]
            value = field_map_payload(m.fields) if m.fields is not None and not self._format else m.value
            letters.append(DeadLetter(self.source.name, m.partition, m.offset, m.key, value, dead[i]))
        return letters
