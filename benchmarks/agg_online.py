"""Online windowed aggregations: reads of 3 windows x 3 functions against a plain view's read, and
push throughput into tiles, on SQLite and Redis.

Usage: PYTHONPATH=src python benchmarks/agg_online.py [--entities 1000] [--events-per-entity 200]
       [--rounds 300] [--out benchmarks/results/agg_online_X.json]

Data: `entities` users, each with `events-per-entity` events spread over the last 7 days (so the
7-day window reads about 169 hourly tiles per key, the 1-hour one 13 five-minute tiles). The
aggregation view has count, sum and mean of `amount` over 1 hour, 1 day and 7 days (default hops);
the plain view has 9 Float64 features. Reads go through `retrieval.online.get_online_features`
(planning, the store call(s), finalizing, the response), for 1 and 100 entities per request;
`rounds` requests each, median and p99 reported. Push throughput: every event pushed through
`tile_feed.update_tiles` in pushes of 500 events (as `store.push` does after validation).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from potluck.aggregation.online_tiles import Event, TileAggregation, TileSpec
from potluck.aggregation.rule import default_hop
from potluck.definitions.field import Field
from potluck.online.protocol import OnlineStore, OnlineView
from potluck.retrieval.online import OnlineSelection, get_online_features
from potluck.streaming.tile_feed import now_micros, update_tiles
from potluck.types import Float64, Int64

WINDOWS = [timedelta(hours=1), timedelta(days=1), timedelta(days=7)]
FUNCTIONS = ["count", "sum", "mean"]
PUSH_EVENTS = 500


def _store(kind: str, folder: Path, prefix: str) -> OnlineStore:
    if kind == "sqlite":
        from potluck.online.sqlite import SqliteOnlineStore
        from potluck.repo.config import SqliteOnlineStoreConfig

        return SqliteOnlineStore(SqliteOnlineStoreConfig(), path=folder / "online.db")
    from potluck.online.redis import RedisOnlineStore
    from potluck.repo.config import RedisOnlineStoreConfig

    return RedisOnlineStore(RedisOnlineStoreConfig(type="redis", connection_string="127.0.0.1:6379", key_prefix=prefix))


def _views() -> tuple[OnlineView, OnlineView]:
    key = (Field(name="user", dtype=Int64),)
    spec = TileSpec(
        tuple(
            TileAggregation.of("amount", f, w, default_hop(w), f"{f}_amount_{int(w.total_seconds())}s")
            for w in WINDOWS
            for f in FUNCTIONS
        )
    )
    agg_features = tuple(
        Field(name=a.output, dtype=Int64 if a.function == "count" else Float64) for a in spec.aggregations
    )
    agg = OnlineView("bench", "agg", ("user",), key, agg_features, timedelta(0), tiles=spec)
    plain_features = tuple(Field(name=f"f{i}", dtype=Float64) for i in range(9))
    plain = OnlineView("bench", "plain", ("user",), key, plain_features, timedelta(0))
    return agg, plain


def _timed(fn: Any, rounds: int) -> dict[str, float]:
    fn()  # warm
    samples = []
    for _ in range(rounds):
        began = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - began)
    samples.sort()
    return {
        "median_ms": round(statistics.median(samples) * 1000, 3),
        "p99_ms": round(samples[int(len(samples) * 0.99) - 1] * 1000, 3),
    }


def run(kind: str, entities: int, per_entity: int, rounds: int) -> dict[str, Any]:
    rng = random.Random(5)
    agg, plain = _views()
    assert agg.tiles is not None
    with tempfile.TemporaryDirectory() as tmp:
        store = _store(kind, Path(tmp), f"bench{uuid.uuid4().hex[:8]}:")
        try:
            store.create([agg, plain])
            now = now_micros()
            week = 7 * 86_400_000_000
            events = [(u, now - rng.randrange(week)) for u in range(entities) for _ in range(per_entity)]
            rng.shuffle(events)
            began = time.perf_counter()
            for start in range(0, len(events), PUSH_EVENTS):
                chunk = events[start : start + PUSH_EVENTS]
                keys = [agg.key_encoder.encode([u]) for u, _ in chunk]
                update_tiles(store, agg, agg.tiles, keys, [Event(ts, None, (rng.uniform(0, 100),)) for _, ts in chunk])
            push_seconds = time.perf_counter() - began
            store.write(
                plain,
                pa.table({"user": list(range(entities)), **{f"f{i}": [float(i)] * entities for i in range(9)},
                          "event_timestamp": pa.array([now] * entities, pa.timestamp("us", tz="UTC"))}),
            )  # fmt: skip
            agg_sel = [OnlineSelection(agg, tuple(f.name for f in agg.features), tuple(f.name for f in agg.features))]
            plain_sel = [
                OnlineSelection(plain, tuple(f.name for f in plain.features), tuple(f.name for f in plain.features))
            ]
            reads: dict[str, Any] = {}
            for n in (1, 100):
                rows = {"user": rng.sample(range(entities), n)}
                got = get_online_features(store, agg_sel, rows).to_dict()
                assert all(c is not None for c in got["count_amount_604800s"])
                a = _timed(lambda rows=rows: get_online_features(store, agg_sel, rows), rounds)
                p = _timed(lambda rows=rows: get_online_features(store, plain_sel, rows), rounds)
                reads[f"{n}_entities"] = {
                    "aggregation": a,
                    "plain": p,
                    "ratio_median": round(a["median_ms"] / p["median_ms"], 2),
                }
        finally:
            store.teardown([agg, plain])
            store.close()
    return {
        "backend": kind,
        "entities": entities,
        "events": len(events),
        "push_events_per_second": round(len(events) / push_seconds),
        "push_batch_events": PUSH_EVENTS,
        "reads": reads,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, default=1000)
    parser.add_argument("--events-per-entity", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--backends", default="sqlite,redis")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results = [run(k, args.entities, args.events_per_entity, args.rounds) for k in args.backends.split(",")]
    text = json.dumps({"python": sys.version.split()[0], "results": results}, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
