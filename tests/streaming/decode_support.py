"""Sources, views and a per-message brute-force reference for the decoder tests."""

from __future__ import annotations

import re
import struct
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa

from potluck import Aggregation, Entity, FeatureView, Field, FileSource, PushSource, StreamFeatureView
from potluck.definitions.stream_sources import AvroFormat, JsonFormat, KafkaSource
from potluck.streaming.decode import BROKER_TIME_COLUMN, OFFSET_COLUMN, PARTITION_COLUMN
from potluck.streaming.push_values import BadValue, _converter, parse_time
from potluck.types import Bool, Float32, Int32, Int64, String

driver = Entity(name="driver", join_keys=["driver_id"])
SCHEMA = [
    Field(name="driver_id", dtype=Int64),
    Field(name="rate", dtype=Float32),
    Field(name="trips", dtype=Int32),
    Field(name="ok", dtype=Bool),
    Field(name="name", dtype=String),
]
MAPPING = {"rate_src": "rate"}
AVRO_SCHEMA = {
    "type": "record",
    "name": "Ride",
    "fields": [
        {"name": "driver_id", "type": ["null", "long"]},
        {"name": "rate_src", "type": ["null", "double"]},
        {"name": "trips", "type": "long"},
        {"name": "ok", "type": "boolean"},
        {"name": "name", "type": ["null", "string"]},
        {"name": "ts", "type": ["null", {"type": "long", "logicalType": "timestamp-micros"}]},
        {"name": "created", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}]},
        {"name": "extra", "type": "string"},
    ],
}


def kafka_source(message_format: Any) -> KafkaSource:
    return KafkaSource(
        name="rides",
        kafka_bootstrap_servers="127.0.0.1:9092",
        topic="rides",
        timestamp_field="ts",
        created_timestamp_column="created",
        field_mapping=MAPPING,
        message_format=message_format,
    )


def field_map_source() -> PushSource:
    batch = FileSource(
        name="rides_batch",
        path="data/rides",
        timestamp_field="ts",
        created_timestamp_column="created",
        field_mapping=MAPPING,
    )
    return PushSource(name="rides", batch_source=batch)


def views(source: Any) -> list[FeatureView]:
    plain = FeatureView(name="rides_plain", entities=[driver], source=source, schema=SCHEMA)
    agg = StreamFeatureView(
        name="rides_agg",
        entities=[driver],
        source=source,
        schema=[Field(name="trips", dtype=Int32)],  # the join key undeclared: typed from its values
        timestamp_field="ts",
        aggregations=[Aggregation(column="trips", function="sum", time_window=timedelta(hours=1))],
    )
    return [plain, agg]


JSON_SOURCE = kafka_source(JsonFormat(schema_json="driver_id integer, ts timestamp, rate_src float"))
AVRO_SOURCE = kafka_source(AvroFormat(schema_json=orjson.dumps(AVRO_SCHEMA).decode()))
FIELD_SOURCE = field_map_source()

# The message columns in the decoder's order, their declared type, and whether null is refused.
COLUMNS: list[tuple[str, Any, bool]] = [
    ("driver_id", pa.int64(), True),
    ("rate_src", pa.float32(), False),
    ("trips", pa.int32(), False),
    ("ok", pa.bool_(), False),
    ("name", pa.string(), False),
    ("ts", "time", True),
    ("created", "time", False),
]
OUTPUT = {"rate_src": "rate"}
KINDS = {
    "undecodable": re.compile(r"^not (JSON|Avro for the schema) \("),
    "not_object": re.compile(r"^not a JSON object \("),
    "tombstone": re.compile(r"^a tombstone"),
    "missing": re.compile(r"^field '(\w+)' is missing$"),
    "null": re.compile(r"^field '(\w+)' is null$"),
    "wrong_type": re.compile(r"^field '(\w+)' is .*, not an? \w+"),
}


def reason_kind(reason: str) -> tuple[str, str | None]:
    for kind, pattern in KINDS.items():
        match = pattern.match(reason)
        if match:
            return kind, (match.group(1) if match.groups() and kind not in ("undecodable", "not_object") else None)
    raise AssertionError(f"unrecognised dead-letter reason {reason!r}")


def _float32(value: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def _value(column: str, target: Any, value: Any) -> Any:
    """One value by the push rules, value by value (BadValue when refused)."""
    if target == "time":
        return parse_time(value)
    if pa.types.is_string(target):
        if value is None or isinstance(value, str):
            return value
        raise BadValue("text")
    converted = _converter(target)(value)  # type: ignore[misc]
    return _float32(converted) if pa.types.is_float32(target) and converted is not None else converted


def field_map_text(target: Any, raw: bytes) -> Any:
    text = raw.decode()
    if text == "" and (target == "time" or not pa.types.is_string(target)):
        return None
    if target == "time":
        if re.fullmatch(r"[+-]?[0-9]+", text):
            return int(text)
        try:
            return float(text)
        except ValueError:
            return text
    if target == pa.bool_():
        return {"1": "true", "0": "false"}.get(text, text)
    return text


def reference(obj: Any, field_map: bool = False) -> tuple[str, Any]:
    """('good', row) or (kind, field) for one parsed message, checking the columns in order."""
    if not isinstance(obj, dict):
        return "not_object", None
    row: dict[str, Any] = {}
    for column, target, required in COLUMNS:
        if column not in obj:
            if column == "created":
                row[column] = None
                continue
            return "missing", column
        value = obj[column]
        if field_map:
            try:
                value = field_map_text(target, value)
            except UnicodeDecodeError:
                return "wrong_type", column
        if value is None and required:
            return "null", column
        try:
            row[OUTPUT.get(column, column)] = _value(column, target, value)
        except BadValue:
            return "wrong_type", column
    return "good", row


def table_rows(table: pa.Table) -> list[dict[str, Any]]:
    """The decoded rows with times as epoch microseconds."""
    out = []
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for row in table.to_pylist():
        for name in ("ts", "created", BROKER_TIME_COLUMN):
            if isinstance(row.get(name), datetime):
                row[name] = (row[name] - epoch) // timedelta(microseconds=1)
        out.append(row)
    return out


POSITIONS = (PARTITION_COLUMN, OFFSET_COLUMN, BROKER_TIME_COLUMN)
