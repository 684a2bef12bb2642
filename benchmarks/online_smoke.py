"""Online store smoke benchmark: materialization rows/s and single-entity read latency.

Writes 1.2M rows over 110k entities (a user view with 10 features, a merchant view with 2) to
SQLite and Redis through `materialize_view`, then times 10k `get_online_features(...).to_dict()`
calls for one entity (12 features, 2 views) next to the same lookups done by hand.

    PYTHONPATH=src python benchmarks/online_smoke.py [--rows 1200000] [--reads 10000] [--stores sqlite,redis]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from potluck.definitions.field import Field
from potluck.materialize.local import materialize_view
from potluck.online.protocol import OnlineStore, OnlineView
from potluck.repo.config import RedisOnlineStoreConfig, SqliteOnlineStoreConfig
from potluck.retrieval.online import OnlineSelection, get_online_features
from potluck.types import Bool, Float32, Float64, Int64, String

USER_FEATURES = (
    Field(name="clicks", dtype=Int64),
    Field(name="views", dtype=Int64),
    Field(name="orders", dtype=Int64),
    Field(name="spend", dtype=Float64),
    Field(name="avg_basket", dtype=Float64),
    Field(name="score", dtype=Float64),
    Field(name="ctr", dtype=Float32),
    Field(name="country", dtype=String),
    Field(name="segment", dtype=String),
    Field(name="is_new", dtype=Bool),
)
MERCHANT_FEATURES = (Field(name="rating", dtype=Float64), Field(name="sales", dtype=Int64))


def views(project: str) -> tuple[OnlineView, OnlineView]:
    user = OnlineView(
        project,
        "user_stats",
        ("user_id",),
        (Field(name="user_id", dtype=Int64),),
        USER_FEATURES,
        timedelta(days=3650),
    )
    merchant = OnlineView(
        project,
        "merchant_stats",
        ("merchant_id",),
        (Field(name="merchant_id", dtype=Int64),),
        MERCHANT_FEATURES,
        timedelta(days=3650),
    )
    return user, merchant


def batches(key: str, entities: int, rows: int, features: tuple[Field, ...], size: int) -> Iterator[pa.RecordBatch]:
    rng = np.random.default_rng(7)
    base = datetime(2024, 1, 1, tzinfo=UTC)
    for start in range(0, rows, size):
        n = min(size, rows - start)
        cols: dict[str, pa.Array] = {key: pa.array(rng.integers(0, entities, n))}
        for f in features:
            name = f.dtype.name
            if name == "Int64":
                cols[f.name] = pa.array(rng.integers(0, 1000, n))
            elif name in ("Float64", "Float32"):
                cols[f.name] = pa.array(rng.random(n), pa.float64() if name == "Float64" else pa.float32())
            elif name == "String":
                cols[f.name] = pa.array(np.array(["DE", "FR", "US", "NL"])[rng.integers(0, 4, n)])
            else:
                cols[f.name] = pa.array(rng.random(n) > 0.5)
        secs = rng.integers(0, 30 * 86_400, n) * 1_000_000 + int(base.timestamp() * 1_000_000)
        cols["event_timestamp"] = pa.array(secs, pa.timestamp("us", tz="UTC"))
        cols["created_timestamp"] = pa.array(secs + 1000, pa.timestamp("us", tz="UTC"))
        yield pa.RecordBatch.from_pydict(cols)


def timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def pct(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100)[int(q) - 1]


def run(name: str, store: OnlineStore, raw: Callable[[int, int], object], rows: int, reads: int) -> None:
    user, merchant = views("bench")
    store.teardown([user, merchant])
    store.create([user, merchant])
    user_rows = rows * 10 // 12
    t = time.perf_counter()
    written = materialize_view(batches("user_id", 100_000, user_rows, USER_FEATURES, 100_000), store, user)
    written += materialize_view(
        batches("merchant_id", 10_000, rows - user_rows, MERCHANT_FEATURES, 100_000), store, merchant
    )
    elapsed = time.perf_counter() - t
    print(f"{name}: materialized {written:,} rows in {elapsed:.2f} s = {written / elapsed:,.0f} rows/s")
    sels = [
        OnlineSelection(user, tuple(f.name for f in USER_FEATURES), tuple(f.name for f in USER_FEATURES)),
        OnlineSelection(merchant, tuple(f.name for f in MERCHANT_FEATURES), tuple(f.name for f in MERCHANT_FEATURES)),
    ]
    rng = np.random.default_rng(1)
    ids = [
        (int(a), int(b)) for a, b in zip(rng.integers(0, 100_000, reads), rng.integers(0, 10_000, reads), strict=True)
    ]
    it = iter(ids * 2)

    def ours() -> object:
        u, m = next(it)
        return get_online_features(store, sels, [{"user_id": u, "merchant_id": m}]).to_dict()

    it_raw = iter(ids * 2)

    def by_hand() -> object:
        u, m = next(it_raw)
        return raw(u, m)

    for _ in range(200):
        ours()
        by_hand()
    ours_ms = timed(ours, reads)
    raw_ms = timed(by_hand, reads)
    o50, r50 = statistics.median(ours_ms), statistics.median(raw_ms)
    print(
        f"{name}: get_online_features p50 {o50:.3f} ms p99 {pct(ours_ms, 99):.3f} ms | "
        f"raw p50 {r50:.3f} ms p99 {pct(raw_ms, 99):.3f} ms | ratio p50 {o50 / r50:.2f}x"
    )
    store.teardown([user, merchant])
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_200_000)
    parser.add_argument("--reads", type=int, default=10_000)
    parser.add_argument("--stores", default="sqlite,redis")
    args = parser.parse_args()
    user, merchant = views("bench")
    if "sqlite" in args.stores:
        import sqlite3

        from potluck.online.sqlite import SqliteOnlineStore

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "online.db"
            store = SqliteOnlineStore(SqliteOnlineStoreConfig(), path=path)
            conn = sqlite3.connect(path, isolation_level=None)
            t1 = '"bench:user_stats"'
            t2 = '"bench:merchant_stats"'

            def raw_sqlite(u: int, m: int) -> object:
                a = conn.execute(
                    f"SELECT event_ts, value FROM {t1} WHERE entity_key = ?", (user.key_encoder.encode((u,)),)
                ).fetchone()
                b = conn.execute(
                    f"SELECT event_ts, value FROM {t2} WHERE entity_key = ?",
                    (merchant.key_encoder.encode((m,)),),
                ).fetchone()
                return a, b

            run("sqlite", store, raw_sqlite, args.rows, args.reads)
            conn.close()
    if "redis" in args.stores:
        import redis

        from potluck.online.redis import RedisOnlineStore

        prefix = f"bench-{uuid.uuid4().hex[:8]}:"
        rstore = RedisOnlineStore(RedisOnlineStoreConfig(type="redis", key_prefix=prefix))
        client = redis.Redis()

        def raw_redis(u: int, m: int) -> object:
            pipe = client.pipeline(transaction=False)
            pipe.get(rstore.redis_key(user, user.key_encoder.encode((u,))))
            pipe.get(rstore.redis_key(merchant, merchant.key_encoder.encode((m,))))
            return pipe.execute()

        run("redis", rstore, raw_redis, args.rows, args.reads)
        client.close()


if __name__ == "__main__":
    main()
