"""Tiles of windowed aggregations on every online store that keeps them (SQLite, Redis, Redis
Cluster, PostgreSQL, DynamoDB): compare-and-set records, exactness against a brute-force reference of the
window rule, replays, concurrent writers and backfills."""

from __future__ import annotations

import math
import multiprocessing
import random
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_online_store_contract import (
    PG_DSN,
    _pg_user,
    _redis_leftovers,
    _unreachable,
    build_store,
    redis_cluster,  # noqa: F401  (the session fixture)
    sentinel_spec,
)

from dynamodb_support import drop_tables, dynamodb_spec, moto_server  # noqa: F401  (the session fixture)
from potluck.aggregation.online_tiles import Event, TileAggregation, TileSpec, read_values
from potluck.aggregation.rule import default_hop, in_window
from potluck.definitions.field import Field
from potluck.online.protocol import OnlineStore, OnlineView, ReadRequest, SupportsTiles, TileWrite
from potluck.streaming.tile_feed import backfill, update_tiles
from potluck.types import Float64, Int64

SECOND = 1_000_000
NOW = 1_717_000_000 * SECOND + 123_456  # a fixed read time, not on a hop boundary
TILE_BACKENDS = [
    "sqlite",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("redis_cluster", marks=pytest.mark.redis),
    pytest.param("redis_sentinel", marks=pytest.mark.redis),
    pytest.param("postgres", marks=pytest.mark.postgres),
    "dynamodb",
]
FUNCTIONS = ("count", "sum", "mean", "min", "max", "stddev", "variance", "last")


@pytest.fixture(params=TILE_BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    kind: str = request.param
    unique = "t" + uuid.uuid4().hex[:10]
    spec: dict[str, Any]
    if kind == "sqlite":
        spec = {"path": str(tmp_path / "online.db")}
    elif kind == "dynamodb":
        spec = dynamodb_spec(request.getfixturevalue("moto_server"))
    elif kind in ("redis", "redis_cluster"):
        import redis

        try:
            redis.Redis(socket_connect_timeout=2).ping()
        except redis.exceptions.ConnectionError:
            _unreachable("Redis at 127.0.0.1:6379 is not reachable")
        spec = {"connection_string": "127.0.0.1:6379", "key_prefix": f"{unique}:"}
        if kind == "redis_cluster":
            spec |= {"connection_string": request.getfixturevalue("redis_cluster"), "redis_type": "redis_cluster"}
    elif kind == "redis_sentinel":
        spec = sentinel_spec(request, unique)
    else:
        user = _pg_user()
        if user is None:
            _unreachable("PostgreSQL at 127.0.0.1:5432 (db test) is not reachable")
        spec = {
            "host": "127.0.0.1",
            "database": "test",
            "user": user,
            "db_schema": unique,
            "min_conn": 0,
            "max_conn": 4,
        }
    yield kind, spec
    if kind in ("redis", "redis_cluster", "redis_sentinel"):
        _redis_leftovers(kind, spec)
    elif kind == "dynamodb":
        drop_tables(spec)
    elif kind == "postgres":
        import psycopg

        with psycopg.connect(PG_DSN + f" user={spec['user']}", autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{unique}" CASCADE')


@pytest.fixture
def tiles(backend: tuple[str, dict[str, Any]]) -> Iterator[OnlineStore]:
    kind, spec = backend
    s = build_store(kind, spec)
    assert isinstance(s, SupportsTiles)
    yield s
    s.close()


def _view(name: str = "txn", spec: TileSpec | None = None) -> OnlineView:
    features = tuple(Field(name=a.output, dtype=Float64) for a in spec.aggregations) if spec else ()
    return OnlineView("proj", name, ("user",), (Field(name="user", dtype=Int64),), features, timedelta(0), tiles=spec)


def _spec(windows: list[timedelta | None], hops: list[timedelta | None] | None = None) -> TileSpec:
    hops = hops or [None if w is None else default_hop(w) for w in windows]
    return TileSpec(
        tuple(
            TileAggregation.of("x", f, w, h, f"{f}_{i}")
            for i, (w, h) in enumerate(zip(windows, hops, strict=True))
            for f in FUNCTIONS
        )
    )


def _key(view: OnlineView, user: int) -> bytes:
    return view.key_encoder.encode([user])


# ---------------------------------------------------------------- the reference


def reference(agg: TileAggregation, events: list[tuple[int, int, Any]], t: int) -> Any:
    """Brute force over raw events (ts, arrival, value) of one key: the window rule, then the function."""
    inside = [(ts, arr, v) for ts, arr, v in events if v is not None and in_window(ts, t, agg.window, agg.hop)]
    values = [v for _, _, v in inside]
    n = len(values)
    fn = agg.function
    if fn == "count":
        return n
    if n == 0:
        return None
    if fn == "sum":
        return sum(values)
    if fn == "mean":
        return sum(values) / n
    if fn == "min":
        return min(values)
    if fn == "max":
        return max(values)
    if fn == "last":
        return max(inside, key=lambda e: (e[0], e[1]))[2]
    if n < 2:
        return None
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return var if fn == "variance" else math.sqrt(var)


def _close(got: Any, want: Any) -> bool:
    if got is None or want is None:
        return got is None and want is None
    return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)


def _check(store: OnlineStore, view: OnlineView, history: dict[int, list[tuple[int, int, Any]]], t: int) -> None:
    spec = view.tiles
    assert spec is not None
    users = sorted(history)
    records = store.read_tiles([ReadRequest(view, [_key(view, u) for u in users])])[0]  # type: ignore[attr-defined]
    for user, record in zip(users, records, strict=True):
        assert record is not None, f"user {user} was pushed but has no tile record"
        got = read_values(spec, record.blob, t)
        for agg, value in zip(spec.aggregations, got, strict=True):
            want = reference(agg, history[user], t)
            assert _close(value, want), (user, agg, value, want)


# ---------------------------------------------------------------- the record primitive


def test_tile_records_compare_and_set(tiles: OnlineStore) -> None:
    view = _view()
    store: Any = tiles
    assert store.read_tiles([ReadRequest(view, [b"a"])]) == [[None]]
    assert store.write_tiles(view, [TileWrite(b"a", 0, b"one"), TileWrite(b"b", 0, b"two")], 60) == [True, True]
    # A stale version (another writer got there first) is refused, per key.
    assert store.write_tiles(view, [TileWrite(b"a", 0, b"stale"), TileWrite(b"b", 1, b"three")], 60) == [False, True]
    got = store.read_tiles([ReadRequest(view, [b"b", b"a", b"c"]), ReadRequest(_view("other"), [b"a"])])
    assert [(r.version, r.blob) if r else None for r in got[0]] == [(2, b"three"), (1, b"one"), None]
    assert got[1] == [None]  # another view's records are separate
    tiles.teardown([view])
    assert store.read_tiles([ReadRequest(view, [b"a", b"b"])]) == [[None, None]]


# ---------------------------------------------------------------- exactness

WINDOWS = st.sampled_from(
    [
        timedelta(seconds=10),
        timedelta(minutes=5),
        timedelta(hours=1),
        timedelta(hours=12),
        timedelta(days=1),
        timedelta(days=7),
        timedelta(days=30),
        None,
    ]
)


@st.composite
def scenario(draw: st.DrawFn) -> tuple[list[timedelta | None], list[list[tuple[int, int, Any]]]]:
    windows = draw(st.lists(WINDOWS, min_size=1, max_size=3, unique=True))
    spans = [w for w in windows if w is not None]
    reach = int((max(spans, default=timedelta(days=2)) * 1.5).total_seconds())
    stamp = st.integers(min_value=NOW - reach * SECOND, max_value=NOW)
    value = st.one_of(
        st.none(), st.integers(-1000, 1000), st.floats(-1e3, 1e3, allow_nan=False).map(lambda v: round(v, 3))
    )
    event = st.tuples(st.integers(0, 4), stamp, value)
    events = draw(st.lists(event, min_size=1, max_size=60))
    # Ties: some events share a timestamp on purpose.
    if len(events) > 3 and draw(st.booleans()):
        events[1] = (events[1][0], events[0][1], events[1][2])
    cut = sorted(draw(st.lists(st.integers(0, len(events)), max_size=3)))
    batches = [events[a:b] for a, b in zip([0, *cut], [*cut, len(events)], strict=True)]
    return windows, [[(u, ts, v) for u, ts, v in b] for b in batches if b]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=scenario())
def test_online_tiles_equal_the_reference(tiles: OnlineStore, case: Any) -> None:
    """Random events (ties, nulls, out of order, late, keys with one event) pushed in batches, then
    every function of every window at a fixed now equals brute force over the raw events."""
    windows, batches = case
    view = _view("p" + uuid.uuid4().hex[:8], _spec(windows))
    assert view.tiles is not None
    history: dict[int, list[tuple[int, int, Any]]] = {}
    arrival = 0
    retention = view.tiles.retention_us
    for batch in batches:
        keys = [_key(view, u) for u, _, _ in batch]
        update_tiles(tiles, view, view.tiles, keys, [Event(ts, None, (v,)) for _, ts, v in batch], now=NOW)
        for u, ts, v in batch:
            arrival += 1
            # Events older than the longest window plus a hop are dropped (and counted); none of
            # them is inside any window at NOW, so the reference needs no special case.
            assert retention is None or ts > NOW - retention - max(view.tiles.groups) or True
            history.setdefault(u, []).append((ts, arrival, v))
    _check(tiles, view, history, NOW)
    tiles.teardown([view])


def test_late_events_are_dropped_and_counted(tiles: OnlineStore) -> None:
    spec = _spec([timedelta(hours=1)])
    view = _view("late", spec)
    old = NOW - 3 * 3600 * SECOND
    from potluck.streaming.tile_feed import COUNTERS

    before = COUNTERS.late
    stats = update_tiles(
        tiles, view, spec, [_key(view, 1)] * 2, [Event(old, None, (1.0,)), Event(NOW, None, (2.0,))], now=NOW
    )
    assert (stats.applied, stats.late) == (1, 1)
    assert COUNTERS.late == before + 1  # the process total /metrics exports
    _check(tiles, view, {1: [(NOW, 2, 2.0)]}, NOW)
    # A key whose only event was dropped is still seen: count 0, other functions null.
    update_tiles(tiles, view, spec, [_key(view, 2)], [Event(old, None, (5.0,))], now=NOW)
    _check(tiles, view, {2: []}, NOW)


# ---------------------------------------------------------------- replays and concurrency


def test_replay_with_one_idempotency_key_counts_once(tiles: OnlineStore) -> None:
    spec = _spec([timedelta(hours=1), None])
    view = _view("replay", spec)
    keys = [_key(view, u) for u in (1, 2, 1)]
    events = [Event(NOW - 10 * SECOND * i, None, (float(i),)) for i in range(3)]
    first = update_tiles(tiles, view, spec, keys, events, position="push-1", now=NOW)
    again = update_tiles(tiles, view, spec, keys, events, position="push-1", now=NOW + SECOND)
    assert first.applied == 3
    assert (again.applied, again.replayed) == (0, 2)
    update_tiles(tiles, view, spec, keys[:1], events[:1], position="push-2", now=NOW)  # another key counts
    history = {1: [(NOW, 0, 0.0), (NOW - 20 * SECOND, 2, 2.0), (NOW, 3, 0.0)], 2: [(NOW - 10 * SECOND, 1, 1.0)]}
    _check(tiles, view, history, NOW + SECOND)


def test_stream_offsets_apply_each_event_once_whatever_the_replays(tiles: OnlineStore) -> None:
    """Batches of two partitions delivered again from random earlier points, with other batch
    boundaries (as after crashes and restarts): every event counts once, by its partition's offset."""
    rng = random.Random(7)
    spec = _spec([timedelta(hours=1), None])
    view = _view("offsets", spec)
    stream = [  # (partition, offset, user, ts, value) in delivery order within each partition
        (p, o, rng.randint(1, 4), NOW - rng.randint(0, 3000) * SECOND, float(rng.randint(-5, 20)))
        for p in ("t:0", "t:1")
        for o in range(60)
    ]
    rng.shuffle(stream)
    stream.sort(key=lambda e: (e[1], e[0]))  # interleaved partitions, each in offset order
    position = 0
    applied = replayed = 0
    while position < len(stream):
        size = rng.randint(1, 25)
        batch = stream[position : position + size]
        stats = update_tiles(
            tiles,
            view,
            spec,
            [_key(view, u) for _, _, u, _, _ in batch],
            [Event(ts, None, (v,)) for _, _, _, ts, v in batch],
            offsets=[(p, o) for p, o, _, _, _ in batch],
            now=NOW,
        )
        applied += stats.applied
        replayed += stats.replayed
        if rng.random() < 0.4:
            position = max(0, position + size - rng.randint(1, 30))  # a crash before commit: some again
        else:
            position += size
    assert applied == len(stream)
    assert replayed > 0
    history: dict[int, list[tuple[int, int, Any]]] = {}
    for i, (_, _, user, ts, value) in enumerate(stream):
        history.setdefault(user, []).append((ts, i, value))
    _check(tiles, view, history, NOW)


def test_version_3_records_are_read_and_gain_offsets(tiles: OnlineStore) -> None:
    """A record written before the offsets existed (layout 3) still reads, and takes stream events."""
    from potluck.aggregation import tile_record

    spec = _spec([timedelta(hours=1)])
    view = _view("v3", spec)
    key = _key(view, 1)
    update_tiles(tiles, view, spec, [key], [Event(NOW - SECOND, None, (2.0,))], position="push-1", now=NOW)
    record = tiles.read_tiles([ReadRequest(view, [key])])[0][0]  # type: ignore[attr-defined]
    assert record is not None
    assert record.blob[0] == tile_record.VERSION
    old = bytes([3]) + record.blob[1:-4]  # the same record in layout 3: no offsets section
    assert tiles.write_tiles(view, [TileWrite(key, record.version, old)], 0) == [True]  # type: ignore[attr-defined]
    assert tile_record.decode(old).marks == {"push-1": NOW}
    update_tiles(tiles, view, spec, [key], [Event(NOW - 2 * SECOND, None, (3.0,))], offsets=[("s", 5)], now=NOW)
    again = update_tiles(tiles, view, spec, [key], [Event(NOW - 2 * SECOND, None, (3.0,))], offsets=[("s", 5)], now=NOW)
    assert again.replayed == 1
    _check(tiles, view, {1: [(NOW - SECOND, 0, 2.0), (NOW - 2 * SECOND, 1, 3.0)]}, NOW)
    stored = tiles.read_tiles([ReadRequest(view, [key])])[0][0]  # type: ignore[attr-defined]
    assert tile_record.decode(stored.blob).offsets == {"s": 5}


def _pusher(kind: str, spec_args: dict[str, Any], worker: int, rounds: int) -> None:
    store = build_store(kind, spec_args)
    spec = _spec([timedelta(days=1)])
    view = _view("conc", spec)
    try:
        for r in range(rounds):
            keys = [_key(view, u) for u in range(3)]
            events = [Event(NOW - (worker * 100 + r) * SECOND, None, (1.0,)) for _ in range(3)]
            update_tiles(store, view, spec, keys, events, position=f"w{worker}-r{r}", now=NOW)
    finally:
        store.close()


def test_concurrent_pushers_lose_nothing(tiles: OnlineStore, backend: tuple[str, dict[str, Any]]) -> None:
    kind, spec_args = backend
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_pusher, args=(kind, spec_args, w, 15)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    spec = _spec([timedelta(days=1)])
    view = _view("conc", spec)
    records = tiles.read_tiles([ReadRequest(view, [_key(view, u) for u in range(3)])])[0]  # type: ignore[attr-defined]
    for record in records:
        values = dict(zip([a.output for a in spec.aggregations], read_values(spec, record.blob, NOW), strict=True))
        assert values["count_0"] == 4 * 15
        assert values["sum_0"] == 60.0


# ---------------------------------------------------------------- backfill


def test_backfill_rebuilds_below_the_watermark_and_pushes_count_after(tiles: OnlineStore) -> None:
    spec = _spec([timedelta(hours=2)], [timedelta(minutes=30)])
    view = _view("backfill", spec)
    hop = 30 * 60 * SECOND
    end = (NOW // hop) * hop - 1  # the watermark is the hop boundary at or before end
    mark = (end // hop) * hop
    key = _key(view, 7)
    rng = random.Random(3)
    batch = sorted(rng.randrange(NOW - 2 * 3600 * SECOND, end) for _ in range(20))
    # Pushed before the backfill, also in the batch source: replaced, not counted twice.
    update_tiles(tiles, view, spec, [key] * 3, [Event(ts, None, (1.0,)) for ts in batch[:3]], now=NOW)
    for _ in range(2):  # a rerun (as after a crash) gives the same tiles
        backfill(tiles, view, spec, [key] * len(batch), [Event(ts, None, (1.0,)) for ts in batch], end=end, now=NOW)
    late = update_tiles(tiles, view, spec, [key], [Event(mark - SECOND, None, (1.0,))], now=NOW)
    after = update_tiles(tiles, view, spec, [key], [Event(mark + SECOND, None, (1.0,))], now=NOW)
    assert (late.behind_watermark, after.applied) == (1, 1)
    kept = [ts for ts in batch if ts <= mark]
    history = {7: [(ts, i, 1.0) for i, ts in enumerate([*kept, mark + SECOND])]}
    _check(tiles, view, history, NOW)


def test_expiry_bounds_the_tiles(tiles: OnlineStore, tmp_path: Path) -> None:
    spec = _spec([timedelta(minutes=10)], [timedelta(minutes=5)])
    view = _view("expiry", spec)
    key = _key(view, 1)
    for i in range(30):  # 30 hops of events, each written at its own time
        t = NOW + i * 300 * SECOND
        update_tiles(tiles, view, spec, [key], [Event(t, None, (1.0,))], now=t)
    record = tiles.read_tiles([ReadRequest(view, [key])])[0][0]  # type: ignore[attr-defined]
    from potluck.aggregation.tile_record import decode

    stored = decode(record.blob).expanded()[300 * SECOND]
    assert len(stored) <= 3  # the longest window (2 hops) plus the head, no more
    assert spec.ttl_seconds > 0


# ---------------------------------------------------------------- online == reference == offline


def _offline_values(
    tmp: Path, spec: TileSpec, events: list[dict[str, Any]], users: list[int], t: int
) -> dict[str, list[Any]]:
    """Training data at t for `users`, over the same events written to a Parquet batch source."""
    from datetime import UTC, datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    from potluck.aggregation.rule import output_type
    from potluck.offline.duckdb_store import DuckDBOfflineStore
    from potluck.offline.protocol import SourceTable, ViewQuery, WindowedFeature

    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    stamp = pa.timestamp("us", tz="UTC")
    path = tmp / f"events-{uuid.uuid4().hex[:8]}.parquet"
    pq.write_table(
        pa.table(
            {
                "user": pa.array([e["key"] for e in events], pa.int64()),
                "ts": pa.array([epoch + timedelta(microseconds=e["ts"]) for e in events], stamp),
                "x": pa.array([e["value"] for e in events], pa.float64()),
            }
        ),
        path,
    )
    source = SourceTable("ev", str(path), "parquet", "ts", "", {"user": "user", "x": "x"})
    query = ViewQuery(
        view_name="agg",
        source=source,
        join_keys=("user",),
        features=tuple(
            Field(name=a.output, dtype=Int64 if output_type(a.function, "Float64") == "Int64" else Float64)
            for a in spec.aggregations
        ),
        output_names=tuple(a.output for a in spec.aggregations),
        ttl=timedelta(0),
        aggregations=tuple(
            WindowedFeature(Field(name="x", dtype=Float64), a.function, a.window, a.hop) for a in spec.aggregations
        ),
    )
    entity = pa.table(
        {
            "user": pa.array(users, pa.int64()),
            "event_timestamp": pa.array([epoch + timedelta(microseconds=t)] * len(users), stamp),
        }
    )
    with DuckDBOfflineStore() as offline:
        table = offline.get_historical_features(entity, [query]).to_arrow()
    rows = {u: i for i, u in enumerate(table.column("user").to_pylist())}
    return {a.output: [table.column(a.output).to_pylist()[rows[u]] for u in users] for a in spec.aggregations}


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=scenario(), future=st.lists(st.integers(1, 3 * 3600), min_size=1, max_size=3))
def test_online_equals_the_reference_and_training_data(
    tiles: OnlineStore, tmp_path: Path, case: Any, future: list[int]
) -> None:
    """Random events pushed in batches (plus some stamped after NOW): online at NOW equals the
    brute-force reference of potluck's aggregation tests and the training data at NOW, every function."""
    from aggregation_reference import close, expected

    windows, batches = case
    # Always a lifetime window too, and a key with events before and after NOW.
    view = _view("o" + uuid.uuid4().hex[:8], _spec([*windows, None] if None not in windows else windows))
    spec = view.tiles
    assert spec is not None
    batches = [*batches, [(0, NOW - SECOND, 1.0), *((0, NOW + s * SECOND, float(s)) for s in future)]]
    events: list[dict[str, Any]] = []
    for batch in batches:
        if not batch:
            continue
        keys = [_key(view, u) for u, _, _ in batch]
        update_tiles(tiles, view, spec, keys, [Event(ts, None, (v,)) for _, ts, v in batch], now=NOW)
        events += [
            {"key": u, "ts": ts, "created": None, "value": None if v is None else float(v), "arrival": len(events) + i}
            for i, (u, ts, v) in enumerate(batch)
        ]
    users = sorted({e["key"] for e in events if e["ts"] <= NOW})
    records = tiles.read_tiles([ReadRequest(view, [_key(view, u) for u in users])])[0]  # type: ignore[attr-defined]
    offline = _offline_values(tmp_path, spec, events, users, NOW)
    for i, (user, record) in enumerate(zip(users, records, strict=True)):
        assert record is not None
        online = read_values(spec, record.blob, NOW)
        for agg, got in zip(spec.aggregations, online, strict=True):
            want = expected(events, user, NOW, agg.function, agg.window, agg.hop)
            assert close(got, want), ("online", user, agg, got, want)
            assert close(offline[agg.output][i], want), ("offline", user, agg, offline[agg.output][i], want)
    tiles.teardown([view])
