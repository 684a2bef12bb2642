"""The stream decoder against a per-message brute-force reference: JSON, Avro and field maps."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro
import orjson
import pyarrow as pa
import pytest
from decode_support import (
    AVRO_SCHEMA,
    AVRO_SOURCE,
    FIELD_SOURCE,
    JSON_SOURCE,
    POSITIONS,
    driver,
    reason_kind,
    reference,
    table_rows,
    views,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from potluck import Aggregation, Field, StreamFeatureView
from potluck.definitions.errors import PotluckError
from potluck.definitions.stream_sources import AvroFormat
from potluck.streaming.decode import Decoder
from potluck.streaming.push import prepare_rows
from potluck.streaming.sources import StreamMessage
from potluck.types import Int32

PARSED_AVRO = fastavro.parse_schema(AVRO_SCHEMA)
KIND = st.sampled_from(["good"] * 6 + ["undecodable", "not_object", "tombstone", "missing", "null", "wrong_type"])
SECONDS = st.integers(946_684_800, 4_102_444_800)  # 2000 to 2100
TIMES = st.one_of(
    SECONDS,
    SECONDS.map(lambda s: datetime.fromtimestamp(s, UTC).isoformat()),
    SECONDS.map(lambda s: datetime.fromtimestamp(s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")),
    st.integers(946_684_800_000, 4_102_444_800_000).map(lambda ms: ms / 1000),
)
GOOD_JSON: dict[str, Any] = {
    "driver_id": st.one_of(st.integers(1, 2**63 - 1), st.integers(1, 10**6).map(float), st.integers(1, 10**9).map(str)),
    "rate_src": st.one_of(
        st.none(), st.floats(-1e30, 1e30, allow_nan=False), st.integers(-(2**24), 2**24), st.floats(-1e6, 1e6).map(repr)
    ),
    "trips": st.integers(-(2**31), 2**31 - 1),
    "ok": st.one_of(st.booleans(), st.sampled_from(["true", "False", "TRUE"])),
    "name": st.one_of(st.none(), st.text(max_size=6)),
    "ts": TIMES,
    "created": st.one_of(st.none(), TIMES),
}
BAD_JSON: dict[str, list[Any]] = {
    "driver_id": ["abc", 1.5, True, 2**63, [1]],
    "rate_src": [2**25, 1e39, "x", True],
    "trips": [2**31, "abc", 1.5, False],
    "ok": [1, "yes", 0.0],
    "name": [{"a": 1}, [1, 2]],
    "ts": ["not a time", True, 1e20],
    "created": ["soon", False],
}
EXTRAS = st.dictionaries(
    st.sampled_from(["extra", "zz", "nested"]),
    st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(), st.just({"a": [1]})),
)


@st.composite
def json_message(draw: st.DrawFn) -> tuple[str, bytes | None]:
    kind = draw(KIND)
    obj = {**draw(EXTRAS), **{column: draw(values) for column, values in GOOD_JSON.items()}}
    if draw(st.booleans()):
        del obj["created"]  # optional: the decode time stands in
    if kind == "missing":
        del obj[draw(st.sampled_from(["driver_id", "rate_src", "trips", "ok", "name", "ts"]))]
    elif kind == "null":
        obj[draw(st.sampled_from(["driver_id", "ts"]))] = None
    elif kind == "wrong_type":
        column = draw(st.sampled_from(sorted(BAD_JSON)))
        obj[column] = draw(st.sampled_from(BAD_JSON[column]))
    payload: bytes | None = orjson.dumps(obj)
    if kind == "undecodable":
        payload = draw(st.sampled_from([b"{", b"\xff\xfe", b"nope", b'{"a": 1} x', b""]))
    elif kind == "not_object":
        payload = orjson.dumps(draw(st.sampled_from([[1], 5, "s", True, None])))
    elif kind == "tombstone":
        payload = None
    return kind, payload


def json_parse(message: StreamMessage) -> Any:
    try:
        return orjson.loads(message.value)  # type: ignore[arg-type]
    except orjson.JSONDecodeError:
        return "undecodable"


AVRO_TIMES = st.integers(946_684_800_000_000, 4_102_444_800_000_000).map(
    lambda us: datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
)


@st.composite
def avro_message(draw: st.DrawFn) -> tuple[str, bytes | None]:
    kind = draw(st.sampled_from(["good"] * 6 + ["undecodable", "tombstone", "null", "wrong_type"]))
    record = {
        "driver_id": draw(st.integers(1, 2**63 - 1)),
        "rate_src": draw(st.one_of(st.none(), st.floats(-1e30, 1e30, allow_nan=False))),
        "trips": draw(st.integers(-(2**31), 2**31 - 1)),
        "ok": draw(st.booleans()),
        "name": draw(st.one_of(st.none(), st.text(max_size=6))),
        "ts": draw(AVRO_TIMES),
        "created": draw(st.one_of(st.none(), AVRO_TIMES)),
        "extra": draw(st.text(max_size=4)),
    }
    if kind == "null":
        record[draw(st.sampled_from(["driver_id", "ts"]))] = None
    elif kind == "wrong_type":
        column = draw(st.sampled_from(["trips", "rate_src"]))
        record[column] = 2**40 if column == "trips" else 1e39
    out = io.BytesIO()
    fastavro.schemaless_writer(out, PARSED_AVRO, record)
    payload: bytes | None = out.getvalue()
    assert payload is not None
    if kind == "undecodable":
        payload = draw(st.sampled_from([payload[:-1], payload + b"\x01\x02", b""]))
    elif kind == "tombstone":
        payload = None
    if payload and draw(st.booleans()):
        payload = b"\x00" + draw(st.binary(min_size=4, max_size=4)) + payload  # Confluent wire format
    return kind, payload


def avro_parse(message: StreamMessage) -> Any:
    payload = message.value
    assert payload is not None
    tries = [payload[5:]] if len(payload) >= 5 and payload[0] == 0 else []
    for data in [*tries, payload]:
        stream = io.BytesIO(data)
        try:
            record = fastavro.schemaless_reader(stream, PARSED_AVRO, None)
        except Exception:
            continue
        if stream.tell() == len(data):
            return record
    return "undecodable"


FIELD_GOOD: dict[str, Any] = {
    "driver_id": st.integers(1, 2**63 - 1).map(str),
    "rate_src": st.one_of(
        st.just(""), st.floats(-1e30, 1e30, allow_nan=False).map(repr), st.integers(-(2**24), 2**24).map(str)
    ),
    "trips": st.integers(-(2**31), 2**31 - 1).map(str),
    "ok": st.sampled_from(["1", "0", "true", "False"]),
    "name": st.text(max_size=6),
    "ts": st.one_of(SECONDS.map(str), SECONDS.map(lambda s: datetime.fromtimestamp(s, UTC).isoformat())),
    "created": st.one_of(st.just(""), SECONDS.map(str)),
}
FIELD_BAD: dict[str, list[bytes]] = {
    "driver_id": [b"x", b"1.5"],
    "rate_src": [b"abc", b"1e39"],
    "trips": [b"abc", b"1.5", str(2**31).encode()],
    "ok": [b"yes", b"2"],
    "name": [b"\xff"],
    "ts": [b"later"],
}


@st.composite
def field_message(draw: st.DrawFn) -> tuple[str, dict[bytes, bytes]]:
    kind = draw(st.sampled_from(["good"] * 6 + ["missing", "null", "wrong_type"]))
    fields = {k.encode(): draw(v).encode() for k, v in FIELD_GOOD.items()}
    fields[b"extra"] = b"\xfe ignored"
    if draw(st.booleans()):
        del fields[b"created"]
    if kind == "missing":
        del fields[draw(st.sampled_from(["driver_id", "rate_src", "trips", "ok", "name", "ts"])).encode()]
    elif kind == "null":
        fields[draw(st.sampled_from(["driver_id", "ts"])).encode()] = b""
    elif kind == "wrong_type":
        column = draw(st.sampled_from(sorted(FIELD_BAD)))
        fields[column.encode()] = draw(st.sampled_from(FIELD_BAD[column]))
    return kind, fields


def positioned(drawn: list[Any], data: st.DataObject, field_maps: bool = False) -> list[StreamMessage]:
    offsets = {"rides:0": 0, "rides:1": 0}
    messages = []
    for _kind, payload in drawn:
        partition = data.draw(st.sampled_from(sorted(offsets)))
        offsets[partition] += data.draw(st.integers(1, 3))
        stamp = data.draw(st.one_of(st.none(), st.integers(0, 4_102_444_800_000)))
        key = data.draw(st.one_of(st.none(), st.binary(max_size=3)))
        value, fields = (None, payload) if field_maps else (payload, None)
        messages.append(StreamMessage(partition, offsets[partition], value, key, stamp, fields))
    return messages


def check(decoder: Decoder, messages: list[StreamMessage], parse: Any, field_maps: bool = False) -> list[str]:
    """Decoded rows and dead letters equal the reference's, message by message; the reference kinds."""
    started = datetime.now(UTC)
    decoded = decoder.decode(messages)
    finished = datetime.now(UTC)
    expected_rows, expected_dead, kinds = [], [], []
    for m in messages:
        if m.value is None and m.fields is None:
            kind, detail = "tombstone", None
        else:
            obj = {k.decode(): v for k, v in m.fields.items()} if m.fields is not None else parse(m)
            kind, detail = ("undecodable", None) if obj == "undecodable" else reference(obj, field_maps)
        kinds.append(kind)
        if kind == "good":
            stamp = None if m.timestamp_ms is None else m.timestamp_ms * 1000
            expected_rows.append(
                {
                    **detail,
                    "__potluck_partition": m.partition,
                    "__potluck_offset": m.offset,
                    "__potluck_broker_time": stamp,
                }
            )
        else:
            expected_dead.append((m.partition, m.offset, kind, detail))
    got_dead = [(d.partition, d.offset, *reason_kind(d.reason)) for d in decoded.dead]
    assert got_dead == expected_dead, [d.reason for d in decoded.dead]
    for letter, m in zip(decoded.dead, [m for m, k in zip(messages, kinds, strict=True) if k != "good"], strict=True):
        assert (letter.source, letter.key) == ("rides", m.key)
        assert letter.value == (
            m.value
            if m.fields is None
            else orjson.dumps(
                {
                    k.decode("utf-8", "backslashreplace"): v.decode("utf-8", "backslashreplace")
                    for k, v in m.fields.items()
                }
            )
        )
    rows = table_rows(decoded.table)
    for got, want in zip(rows, expected_rows, strict=True):
        if want["created"] is None:  # absent or null: the decode time
            lo, hi = ((t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) for t in (started, finished))
            assert lo <= got.pop("created") <= hi
            assert got == {k: v for k, v in want.items() if k != "created"}
        else:
            assert got == want
    assert len(rows) == len(expected_rows)
    for view in decoder.views:
        prepared = prepare_rows(view, decoded.table)
        assert prepared.num_rows == len(expected_rows)
    return kinds


@settings(max_examples=80, deadline=None)
@given(st.lists(json_message(), max_size=30), st.data())
def test_json_batches_match_the_per_message_reference(drawn: list[Any], data: st.DataObject) -> None:
    messages = positioned(drawn, data)
    kinds = check(Decoder(JSON_SOURCE, views(JSON_SOURCE)), messages, json_parse)
    assert kinds == [k for k, _ in drawn]  # each generated message is what it was meant to be


@settings(max_examples=60, deadline=None)
@given(st.lists(avro_message(), max_size=30), st.data())
def test_avro_batches_match_the_per_message_reference(drawn: list[Any], data: st.DataObject) -> None:
    check(Decoder(AVRO_SOURCE, views(AVRO_SOURCE)), positioned(drawn, data), avro_parse)


@settings(max_examples=60, deadline=None)
@given(st.lists(field_message(), max_size=30), st.data())
def test_field_map_batches_match_the_per_message_reference(drawn: list[Any], data: st.DataObject) -> None:
    messages = positioned(drawn, data, field_maps=True)
    kinds = check(Decoder(FIELD_SOURCE, views(FIELD_SOURCE)), messages, None, field_maps=True)
    assert kinds == [k for k, _ in drawn]


def _json(partition: str, offset: int, obj: Any) -> StreamMessage:
    return StreamMessage(partition, offset, orjson.dumps(obj))


def test_field_mapping_names_the_output_and_the_reasons() -> None:
    decoder = Decoder(JSON_SOURCE, views(JSON_SOURCE))
    good = {"driver_id": 7, "rate_src": 0.5, "trips": 3, "ok": True, "name": "x", "ts": "2026-01-01T00:00:00Z"}
    decoded = decoder.decode([_json("p", 1, good), _json("p", 2, {**good, "rate_src": "fast"})])
    assert decoded.table.column("rate").to_pylist() == [0.5]
    assert "rate_src" not in decoded.table.column_names
    assert [d.reason for d in decoded.dead] == [
        'field \'rate_src\' is \'fast\', not a Float32 (expected a number (or "NaN", "Infinity", "-Infinity"))'
    ]


def test_confluent_wire_format_and_tombstones() -> None:
    decoder = Decoder(AVRO_SOURCE, views(AVRO_SOURCE))
    record = {
        "driver_id": 5,
        "rate_src": 1.5,
        "trips": 2,
        "ok": False,
        "name": None,
        "extra": "",
        "ts": datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC),
        "created": None,
    }
    out = io.BytesIO()
    fastavro.schemaless_writer(out, PARSED_AVRO, record)
    framed = b"\x00\x00\x00\x00\x2a" + out.getvalue()
    decoded = decoder.decode([StreamMessage("t:0", 10, framed, b"k"), StreamMessage("t:0", 11, None, b"k")])
    row = decoded.table.to_pylist()[0]
    assert (row["driver_id"], row["rate"], row["ts"]) == (5, 1.5, record["ts"])
    assert [(d.offset, d.key, d.value, d.reason.split(":")[0]) for d in decoded.dead] == [
        (11, b"k", None, "a tombstone")
    ]


def test_empty_batch_has_the_schema() -> None:
    for source in (JSON_SOURCE, AVRO_SOURCE, FIELD_SOURCE):
        decoded = Decoder(source, views(source)).decode([])
        assert decoded.dead == []
        assert decoded.table.num_rows == 0
        assert decoded.table.schema.field("rate").type == pa.float32()
        assert decoded.table.schema.field("ts").type == pa.timestamp("us", tz="UTC")
        assert decoded.table.column_names[-3:] == list(POSITIONS)


def test_undeclared_join_key_is_typed_from_its_values() -> None:
    agg = StreamFeatureView(
        name="agg",
        entities=[driver],
        source=JSON_SOURCE,
        schema=[Field(name="trips", dtype=Int32)],
        timestamp_field="ts",
        aggregations=[Aggregation(column="trips", function="sum", time_window=timedelta(hours=1))],
    )
    decoder = Decoder(JSON_SOURCE, [agg])
    rows = [_json("p", i, {"driver_id": key, "trips": 1, "ts": 1_700_000_000}) for i, key in enumerate(["a", "b", 3])]
    decoded = decoder.decode(rows)
    assert decoded.table.column("driver_id").to_pylist() == ["a", "b", "3"]  # text, as a push would make it
    assert prepare_rows(agg, decoded.table).num_rows == 3


def test_avro_schema_without_a_needed_field_is_refused_up_front() -> None:
    schema = {**AVRO_SCHEMA, "fields": [f for f in AVRO_SCHEMA["fields"] if f["name"] != "trips"]}  # type: ignore[attr-defined]
    source = JSON_SOURCE.__class__(
        name="rides",
        kafka_bootstrap_servers="127.0.0.1:9092",
        topic="rides",
        timestamp_field="ts",
        field_mapping={"rate_src": "rate"},
        message_format=AvroFormat(schema_json=orjson.dumps(schema).decode()),
    )
    with pytest.raises(PotluckError, match="has no field 'trips'"):
        Decoder(source, views(source))
