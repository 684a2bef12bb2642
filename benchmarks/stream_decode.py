"""Microseconds per message to decode 100k JSON stream messages (python benchmarks/stream_decode.py).

- decoder: `potluck.streaming.decode.Decoder` (orjson per message, then one vectorised conversion
  per column by the push rules), on clean batches and on batches with 1% bad messages.
- per message: the same values decoded one message at a time (the isolation floor).
- pyarrow.json: the batch's payloads joined with newlines and parsed with an explicit schema, as a
  bound on parsing alone; not used, because it cannot tell a missing field from a null one, an
  integer from an integral float (Float32 refuses integers above 2**24), or number from text times.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable
from datetime import timedelta

import orjson
import pyarrow as pa
import pyarrow.json as pj

from potluck import Aggregation, Entity, FeatureView, Field, StreamFeatureView
from potluck.definitions.stream_sources import JsonFormat, KafkaSource
from potluck.streaming.decode import Decoder
from potluck.streaming.sources import StreamMessage
from potluck.types import Bool, Float32, Int32, Int64, String

SOURCE = KafkaSource(
    name="rides",
    kafka_bootstrap_servers="127.0.0.1:9092",
    topic="rides",
    timestamp_field="ts",
    message_format=JsonFormat(schema_json="driver_id bigint, ts timestamp, rate double, trips int"),
)
DRIVER = Entity(name="driver", join_keys=["driver_id"])
SCHEMA = [
    Field(name="driver_id", dtype=Int64),
    Field(name="rate", dtype=Float32),
    Field(name="trips", dtype=Int32),
    Field(name="ok", dtype=Bool),
    Field(name="name", dtype=String),
]
VIEWS = [
    FeatureView(name="rides", entities=[DRIVER], source=SOURCE, schema=SCHEMA),
    StreamFeatureView(
        name="rides_agg",
        entities=[DRIVER],
        source=SOURCE,
        schema=[SCHEMA[2]],
        timestamp_field="ts",
        aggregations=[Aggregation(column="trips", function="sum", time_window=timedelta(hours=1))],
    ),
]


def messages(count: int, bad_every: int = 0) -> list[StreamMessage]:
    out = []
    for i in range(count):
        event = {
            "driver_id": 1000 + i % 5000,
            "ts": f"2026-11-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z",
            "rate": (i % 997) / 10,
            "trips": i % 50,
            "ok": i % 2 == 0,
            "name": f"d{i % 100}",
            "extra": "x",
        }
        if bad_every and i % bad_every == 0:
            event["trips"] = "many"
        out.append(StreamMessage(f"rides:{i % 4}", i, orjson.dumps(event), None, 1_790_000_000_000 + i))
    return out


def best(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000, help="messages per decode call (the worker's poll size)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    decoder = Decoder(SOURCE, VIEWS)
    clean, dirty = messages(args.messages), messages(args.messages, bad_every=100)
    step = args.batch

    def batched(batch: list[StreamMessage]) -> Callable[[], object]:
        return lambda: [decoder.decode(batch[i : i + step]) for i in range(0, len(batch), step)]

    def one_by_one() -> None:
        for m in clean:
            decoder.decode([m])

    schema = pa.schema(
        [
            ("driver_id", pa.int64()),
            ("ts", pa.string()),
            ("rate", pa.float64()),
            ("trips", pa.int64()),
            ("ok", pa.bool_()),
            ("name", pa.string()),
        ]
    )
    options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")

    def pyarrow_json() -> None:
        for i in range(0, len(clean), step):
            pj.read_json(io.BytesIO(b"\n".join(m.value or b"" for m in clean[i : i + step])), parse_options=options)

    n = args.messages
    print(f"{n} JSON messages, batches of {step}: microseconds per message (best of {args.repeat})")
    for label, run, repeat in [
        ("decoder, clean batches", batched(clean), args.repeat),
        ("decoder, 1% bad messages", batched(dirty), args.repeat),
        ("per message (batches of one)", one_by_one, 1),
        ("pyarrow.json parse only (not used)", pyarrow_json, args.repeat),
    ]:
        print(f"  {label:38s} {best(run, repeat) / n * 1e6:8.2f}")


if __name__ == "__main__":
    main()
