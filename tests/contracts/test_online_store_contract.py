"""The online store contract: every backend passes the same tests against a real server."""

from __future__ import annotations

import asyncio
import decimal
import multiprocessing
import os
import random
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from dynamodb_support import build_dynamodb_store, drop_tables, dynamodb_spec, moto_server  # noqa: F401
from potluck.definitions.errors import RetrievalError
from potluck.definitions.field import Field
from potluck.online.protocol import OnlineStore, OnlineView, ReadRequest
from potluck.repo.config import (
    PostgresOnlineStoreConfig,
    RedisOnlineStoreConfig,
    SqliteOnlineStoreConfig,
)
from potluck.retrieval.online import (
    FieldStatus,
    OnlineSelection,
    get_online_features,
    get_online_features_async,
)
from potluck.types import (
    Array,
    Bool,
    Bytes,
    Decimal,
    Float32,
    Float64,
    ImageBytes,
    Int32,
    Int64,
    Json,
    Map,
    PdfBytes,
    Set,
    String,
    Struct,
    TimeUuid,
    UnixTimestamp,
    Uuid,
    ZonedTimestamp,
)

T0 = datetime(2024, 5, 1, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PG_DSN = "host=127.0.0.1 port=5432 dbname=test connect_timeout=3"
BACKENDS = [
    "sqlite",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("redis_cluster", marks=pytest.mark.redis),
    pytest.param("redis_sentinel", marks=pytest.mark.redis),
    pytest.param("postgres", marks=pytest.mark.postgres),
    "remote",
    "dynamodb",
]


# ---------------------------------------------------------------- servers


def _unreachable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _pg_user() -> str | None:
    import psycopg

    for user in ("postgres", "root"):
        try:
            with psycopg.connect(PG_DSN + f" user={user}"):
                return user
        except psycopg.OperationalError:
            continue
    return None


def _free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 10000 < 65536:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + 10000))  # the cluster bus port must be free too
                except OSError:
                    continue
            return port


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A three-node Redis Cluster on loopback ports, started from the local redis-server binary."""

    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if not server or not cli:
        _unreachable("redis-server / redis-cli not found; cannot start a Redis Cluster")
    assert server
    assert cli
    base = tmp_path_factory.mktemp("redis-cluster")
    ports = [_free_port() for _ in range(3)]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            folder = base / str(port)
            folder.mkdir()
            procs.append(
                subprocess.Popen(
                    [
                        server,
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--dir",
                        str(folder),
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--protected-mode",
                        "no",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in ports:
            _wait(lambda p=port: _ping(p))
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *[f"127.0.0.1:{p}" for p in ports],
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )
        for port in ports:
            _wait(lambda p=port: _cluster_ok(p))
        yield ",".join(f"127.0.0.1:{p}" for p in ports)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _ping(port: int) -> bool:
    import redis

    with redis.Redis(port=port) as client:
        return bool(client.ping())


def _cluster_ok(port: int) -> bool:
    import redis

    with redis.Redis(port=port) as client:
        info = client.cluster("INFO")
    return bool(info.get("cluster_state") == "ok")


def _wait(check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except Exception:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("server did not become ready")
        time.sleep(0.05)


# ---------------------------------------------------------------- stores


def build_store(kind: str, spec: dict[str, Any]) -> OnlineStore:
    """A store from a picklable spec (so that child processes can build the same one)."""
    if kind == "sqlite":
        from potluck.online.sqlite import SqliteOnlineStore

        return SqliteOnlineStore(SqliteOnlineStoreConfig(), path=spec["path"])
    if kind in ("redis", "redis_cluster", "redis_sentinel"):
        from potluck.online.redis import RedisOnlineStore

        return RedisOnlineStore(RedisOnlineStoreConfig(type="redis", **spec))
    if kind == "dynamodb":
        return build_dynamodb_store(spec)  # type: ignore[no-any-return]
    if kind == "remote":
        from potluck.online.remote import RemoteOnlineStore, RemoteOnlineStoreConfig

        return RemoteOnlineStore(RemoteOnlineStoreConfig(type="remote", **spec))
    from potluck.online.postgres import PostgresOnlineStore

    return PostgresOnlineStore(PostgresOnlineStoreConfig(type="postgres", **spec))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    kind: str = request.param
    unique = "t" + uuid.uuid4().hex[:10]
    spec: dict[str, Any]
    if kind == "sqlite":
        spec = {"path": str(tmp_path / "online.db")}
    elif kind == "redis":
        import redis

        try:
            redis.Redis(socket_connect_timeout=2).ping()
        except redis.exceptions.ConnectionError:
            _unreachable("Redis at 127.0.0.1:6379 is not reachable")
        spec = {"connection_string": "127.0.0.1:6379", "key_prefix": f"{unique}:"}
    elif kind == "remote":
        server = request.getfixturevalue("remote_server")
        spec = {"path": server}
    elif kind == "dynamodb":
        spec = dynamodb_spec(request.getfixturevalue("moto_server"))
    elif kind == "redis_cluster":
        nodes = request.getfixturevalue("redis_cluster")
        spec = {"connection_string": nodes, "redis_type": "redis_cluster", "key_prefix": f"{unique}:"}
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


def sentinel_spec(request: pytest.FixtureRequest, unique: str) -> dict[str, Any]:
    """The store spec over the session's Sentinel deployment (the `redis_sentinel` fixture)."""
    hosts = request.getfixturevalue("redis_sentinel")
    return {"redis_type": "redis_sentinel", "sentinel_master": "m", "sentinel_hosts": hosts, "key_prefix": f"{unique}:"}


@pytest.fixture
def remote_server(remote_repo: Path, tmp_path: Path) -> Iterator[str]:
    """A real `potluck serve` app (uvicorn on a loopback port) over its own copy of the SQLite repository."""
    from remote_support import serve_repo

    root = tmp_path / "server"
    shutil.copytree(remote_repo, root)
    with serve_repo(root) as url:
        yield url


@pytest.fixture(scope="session")
def remote_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository declaring every view of this suite, applied once (copied for each test)."""
    from remote_support import build_contract_repo

    return build_contract_repo(tmp_path_factory.mktemp("remote-repo"))


def _redis_leftovers(kind: str, spec: dict[str, Any]) -> None:
    store = build_store(kind, spec)
    client: Any = store.client  # type: ignore[attr-defined]
    try:
        keys = list(client.scan_iter(match=spec["key_prefix"] + "*", count=10_000))
        for key in keys:
            client.unlink(key)
    finally:
        store.close()


@pytest.fixture
def store(backend: tuple[str, dict[str, Any]]) -> Iterator[OnlineStore]:
    kind, spec = backend
    s = build_store(kind, spec)
    yield s
    s.close()


# ---------------------------------------------------------------- views and helpers

ALL_TYPES = (
    Field(name="i32", dtype=Int32),
    Field(name="i64", dtype=Int64),
    Field(name="f32", dtype=Float32),
    Field(name="f64", dtype=Float64),
    Field(name="s", dtype=String),
    Field(name="b", dtype=Bytes),
    Field(name="flag", dtype=Bool),
    Field(name="ts", dtype=UnixTimestamp),
    Field(name="a_i32", dtype=Array(Int32)),
    Field(name="a_i64", dtype=Array(Int64)),
    Field(name="a_f32", dtype=Array(Float32)),
    Field(name="a_f64", dtype=Array(Float64)),
    Field(name="a_s", dtype=Array(String)),
    Field(name="a_b", dtype=Array(Bytes)),
    Field(name="a_flag", dtype=Array(Bool)),
    Field(name="a_ts", dtype=Array(UnixTimestamp)),
)


def int_view(
    name: str = "users",
    features: tuple[Field, ...] = (Field(name="v", dtype=Int64),),
    ttl: timedelta = timedelta(0),
) -> OnlineView:
    return OnlineView("proj", name, ("user_id",), (Field(name="user_id", dtype=Int64),), features, ttl)


def rows_table(view: OnlineView, rows: list[dict[str, Any]]) -> pa.Table:
    fields = [pa.field(k, f.dtype.to_arrow()) for k, f in zip(view.join_keys, view.key_fields, strict=True)]
    fields += [pa.field(f.name, f.dtype.to_arrow()) for f in view.features]
    fields += [
        pa.field("event_timestamp", pa.timestamp("us", tz="UTC")),
        pa.field("created_timestamp", pa.timestamp("us", tz="UTC")),
    ]
    schema = pa.schema(fields)
    return pa.table({f.name: [r.get(f.name) for r in rows] for f in schema}, schema=schema)


def read_values(store: OnlineStore, view: OnlineView, ids: list[Any]) -> list[Any]:
    keys = [view.key_encoder.encode((i,)) for i in ids]
    (result,) = store.read([ReadRequest(view, keys)])
    return [None if r is None else r[0] for r in result.rows]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# ---------------------------------------------------------------- the contract


def test_round_trip_of_every_type_with_nulls(store: OnlineStore) -> None:
    view = int_view("all_types", ALL_TYPES)
    store.create([view])
    full = {
        "i32": -(2**31),
        "i64": 2**62,
        "f32": 1.5,
        "f64": -2.25e300,
        "s": "héllo ✓",
        "b": b"\x00\xff",
        "flag": True,
        "ts": datetime(2023, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        "a_i32": [1, -2],
        "a_i64": [2**40, None],
        "a_f32": [0.5],
        "a_f64": [1e-300, 2.0],
        "a_s": ["a", "", "ü"],
        "a_b": [b"", b"\x01"],
        "a_flag": [True, False],
        "a_ts": [datetime(2020, 1, 1, tzinfo=UTC)],
    }
    empty = {k: ([] if k.startswith("a_") else None) for k in full}
    rows = [
        {"user_id": 1, **full, "event_timestamp": T0},
        {"user_id": 2, "event_timestamp": T0},  # every feature null
        {"user_id": 3, **empty, "event_timestamp": T0},
    ]
    assert store.write(view, rows_table(view, rows)) == 3
    keys = [view.key_encoder.encode((i,)) for i in (1, 2, 3)]
    (result,) = store.read([ReadRequest(view, keys)])
    names = [f.name for f in ALL_TYPES]
    assert result.rows[0] == [full[n] for n in names]
    assert result.rows[1] == [None] * len(names)
    assert result.rows[2] == [empty[n] for n in names]
    assert result.event_ts == [int(T0.timestamp()) * 1_000_000] * 3


ADDRESS = Struct({"city": String, "visits": Int64, "seen": UnixTimestamp, "tags": Array(String), "raw": Bytes})
FEAST_TYPES = (
    Field(name="m", dtype=Map),
    Field(name="j", dtype=Json),
    Field(name="st", dtype=ADDRESS),
    Field(name="u", dtype=Uuid),
    Field(name="tu", dtype=TimeUuid),
    Field(name="d", dtype=Decimal),
    Field(name="pdf", dtype=PdfBytes),
    Field(name="img", dtype=ImageBytes),
    Field(name="zts", dtype=ZonedTimestamp),
    Field(name="a_m", dtype=Array(Map)),
    Field(name="a_j", dtype=Array(Json)),
    Field(name="a_st", dtype=Array(ADDRESS)),
    Field(name="a_u", dtype=Array(Uuid)),
    Field(name="a_d", dtype=Array(Decimal)),
    Field(name="a_a", dtype=Array(Array(Int64))),
    Field(name="set_s", dtype=Set(String)),
    Field(name="n", dtype=Int64),  # a native type between them keeps its place
)
SEEN = datetime(2021, 6, 7, 8, 9, 10, 123456, tzinfo=UTC)
U1 = uuid.UUID("12345678-1234-5678-1234-567812345678")
U2 = uuid.UUID("a8098c1a-f86e-11da-bd1a-00112444be1e")
# The values as the SDK returns them (the Python form) ...
FEAST_VALUES: dict[str, Any] = {
    "m": {"colour": "red", "": "empty key", "ü": "✓"},
    "j": {"nested": [1, 2.5, None, True, "x"], "n": {"deep": {}}},
    "st": {"city": "Zürich", "visits": 2**40, "seen": SEEN, "tags": ["a", ""], "raw": b"\x00\xff"},
    "u": U1,
    "tu": U2,
    "d": decimal.Decimal("12345678901234567890.000000001"),
    "pdf": b"%PDF-1.7\x00",
    "img": b"\x89PNG",
    "zts": SEEN,
    "a_m": [{"a": "b"}, {}],
    "a_j": [[1], "text", {"k": None}],
    "a_st": [{"city": None, "visits": None, "seen": None, "tags": None, "raw": None}],
    "a_u": [U1, U2],
    "a_d": [decimal.Decimal("-0.5"), decimal.Decimal("1E+3")],
    "a_a": [[1, 2], [], [-(2**63)]],
    "set_s": {"x", "y"},
    "n": 7,
}


def _arrow_form(dtype: Any, value: Any) -> Any:
    from potluck.online.typed_values import to_arrow_form

    return to_arrow_form(dtype, value)


def test_round_trip_of_feasts_other_types(store: OnlineStore) -> None:
    view = int_view("feast_types", FEAST_TYPES)
    store.create([view])
    # ... written in their Arrow form (as materialization and push hand them over).
    row = {f.name: _arrow_form(f.dtype, FEAST_VALUES[f.name]) for f in FEAST_TYPES}
    empty = {"a_m": [], "a_j": [], "a_st": [], "a_u": [], "a_d": [], "a_a": [], "set_s": [], "j": "null"}
    rows = [
        {"user_id": 1, **row, "event_timestamp": T0},
        {"user_id": 2, "event_timestamp": T0},
        {"user_id": 3, **empty, "event_timestamp": T0},
    ]
    assert store.write(view, rows_table(view, rows)) == 3
    names = [f.name for f in FEAST_TYPES]
    (result,) = store.read([ReadRequest(view, [view.key_encoder.encode((i,)) for i in (1, 2, 3)])])
    assert result.rows[0] == [FEAST_VALUES[n] for n in names]
    assert result.rows[1] == [None] * len(names)
    expected_empty = {**dict.fromkeys(names), **empty, "set_s": set(), "j": None}
    assert result.rows[2] == [expected_empty[n] for n in names]

    selection = [OnlineSelection(view, tuple(names), tuple(names))]
    response = get_online_features(store, selection, [{"user_id": 1}, {"user_id": 2}])
    assert response.to_dict() == {"user_id": [1, 2], **{n: [FEAST_VALUES[n], None] for n in names}}
    awaited = asyncio.run(get_online_features_async(store, selection, [{"user_id": 1}, {"user_id": 2}]))
    assert awaited.to_dict() == response.to_dict()
    table = response.to_arrow()
    for f in FEAST_TYPES:
        assert table.schema.field(f.name).type == f.dtype.to_arrow(), f.name
    assert table.column("m").to_pylist()[0] == list(FEAST_VALUES["m"].items())
    assert table.column("j").to_pylist()[0] == '{"nested":[1,2.5,null,true,"x"],"n":{"deep":{}}}'
    assert table.column("st").to_pylist()[0] == FEAST_VALUES["st"]
    assert table.column("u").to_pylist() == [str(U1), None]
    assert table.column("d").to_pylist() == ["12345678901234567890.000000001", None]


def test_missing_features_are_written_as_null(store: OnlineStore) -> None:
    view = int_view("partial", (Field(name="a", dtype=Int64), Field(name="b", dtype=String)))
    store.create([view])
    table = pa.table({"user_id": [1], "a": [5], "event_timestamp": pa.array([T0], pa.timestamp("us", tz="UTC"))})
    store.write(view, table)
    (result,) = store.read([ReadRequest(view, [view.key_encoder.encode((1,))])])
    assert result.rows == [[5, None]]


def test_newest_wins_whatever_the_write_order(store: OnlineStore) -> None:
    view = int_view()
    store.create([view])
    rng = random.Random(3)
    versions = [
        {"user_id": k, "v": v, "event_timestamp": at(v), "created_timestamp": at(0)}
        for k in range(20)
        for v in range(15)
    ]
    rng.shuffle(versions)
    for start in range(0, len(versions), 37):  # several batches, keys repeated inside batches
        store.write(view, rows_table(view, versions[start : start + 37]))
    assert read_values(store, view, list(range(20))) == [14] * 20


def test_newest_wins_inside_one_large_batch(store: OnlineStore) -> None:
    # Large enough for every store to split it into several statements or script calls.
    view = int_view("large_batch")
    store.create([view])
    versions = [
        {"user_id": k, "v": v, "event_timestamp": at(v // 3), "created_timestamp": at(v % 3)}
        for k in range(60)
        for v in range(40)
    ]
    random.Random(5).shuffle(versions)
    assert store.write(view, rows_table(view, versions)) >= 60
    assert read_values(store, view, list(range(60))) == [39] * 60


def test_one_key_in_each_of_several_views_some_never_written(store: OnlineStore) -> None:
    written, absent = int_view("points_a"), int_view("points_b")
    store.create([written])
    store.write(written, rows_table(written, [{"user_id": 1, "v": 5, "event_timestamp": at(1)}]))
    key = written.key_encoder.encode((1,))
    first, second = store.read([ReadRequest(written, [key]), ReadRequest(absent, [key])])
    assert [None if r is None else r[0] for r in first.rows] == [5]
    assert second.rows == [None]
    assert second.event_ts == [None]
    again = store.read([ReadRequest(written, [key]), ReadRequest(written, [written.key_encoder.encode((2,))])])
    assert [r.rows[0] is None for r in again] == [False, True]


def test_replaying_a_write_is_a_no_op(store: OnlineStore) -> None:
    view = int_view()
    store.create([view])
    new = rows_table(view, [{"user_id": 1, "v": 2, "event_timestamp": at(2)}])
    old = rows_table(view, [{"user_id": 1, "v": 1, "event_timestamp": at(1)}])
    store.write(view, new)
    store.write(view, old)
    store.write(view, new)
    store.write(view, old)
    assert read_values(store, view, [1]) == [2]


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        # (value, event second, created second or None) applied in order
        ([(1, 10, 5), (2, 10, None)], 1),  # a null created is the oldest
        ([(1, 10, 5), (2, 10, 5)], 2),  # equal event and created: the later write wins
        ([(1, 10, 5), (2, 10, 4)], 1),
        ([(1, 10, 5), (2, 10, 6)], 2),
        ([(1, 10, None), (2, 10, None)], 2),
        ([(1, 10, None), (2, 10, 0)], 2),
        ([(1, 10, 5), (2, 9, 100)], 1),  # an older event loses whatever its created time
        ([(1, 10, 100), (2, 11, None)], 2),
    ],
)
def test_ties_on_event_time_go_to_created_time(
    store: OnlineStore, steps: list[tuple[int, int, int | None]], expected: int
) -> None:
    view = int_view()
    store.create([view])
    for value, event, created in steps:
        row = {
            "user_id": 7,
            "v": value,
            "event_timestamp": at(event),
            "created_timestamp": None if created is None else at(created),
        }
        store.write(view, rows_table(view, [row]))
    assert read_values(store, view, [7]) == [expected]
    # The same rows in one batch give the same result.
    batch_view = int_view("batch")
    store.create([batch_view])
    rows = [
        {"user_id": 7, "v": v, "event_timestamp": at(e), "created_timestamp": None if c is None else at(c)}
        for v, e, c in steps
    ]
    store.write(batch_view, rows_table(batch_view, rows))
    assert read_values(store, batch_view, [7]) == [expected]


BEYOND_2_53_US = 2**53 + 4  # as doubles, 2^53 + 3 and 2^53 + 4 are the same number


@pytest.mark.parametrize("field", ["event_timestamp", "created_timestamp"])
def test_newest_wins_exactly_past_2_53_microseconds(store: OnlineStore, field: str) -> None:
    view = int_view("far_times")
    store.create([view])
    newer = EPOCH + timedelta(microseconds=BEYOND_2_53_US)
    older = newer - timedelta(microseconds=1)
    base = {"user_id": 3, "event_timestamp": newer, "created_timestamp": newer}
    store.write(view, rows_table(view, [{**base, "v": 2, field: newer}]))
    store.write(view, rows_table(view, [{**base, "v": 1, field: older}]))
    assert read_values(store, view, [3]) == [2]
    store.write(view, rows_table(view, [{**base, "v": 3, field: newer + timedelta(microseconds=1)}]))
    assert read_values(store, view, [3]) == [3]


def test_newest_wins_across_times_before_1970(store: OnlineStore) -> None:
    view = int_view("old_times")
    store.create([view])
    for value, seconds in [(1, -100), (2, -1000), (3, -99.999999), (4, -5), (5, -1000000)]:
        when = EPOCH + timedelta(seconds=seconds)
        store.write(view, rows_table(view, [{"user_id": 4, "v": value, "event_timestamp": when}]))
    assert read_values(store, view, [4]) == [4]


def test_times_no_read_could_return_are_refused_at_write(store: OnlineStore) -> None:
    view = int_view("far_future", (Field(name="seen", dtype=UnixTimestamp),))
    store.create([view])
    far = pa.array([253402300800], pa.timestamp("s", tz="UTC"))  # 10000-01-01
    ok = pa.array([T0], pa.timestamp("us", tz="UTC"))
    for event, seen in ((far, ok), (ok, far)):
        table = pa.table({"user_id": [1], "seen": seen, "event_timestamp": event})
        with pytest.raises(RetrievalError, match=r"row 0 \(253402300800 s since 1970-01-01\).*years 1 and 9999"):
            store.write(view, table)
    (result,) = store.read([ReadRequest(view, [view.key_encoder.encode((1,))])])
    assert result.rows == [None]


def _concurrent_writer(kind: str, spec: dict[str, Any], seed: int) -> None:
    view = int_view("concurrent")
    store = build_store(kind, spec)
    rng = random.Random(seed)
    rows = [
        {"user_id": k, "v": v, "event_timestamp": at(v // 2), "created_timestamp": at(v % 2)}
        for k in range(40)
        for v in range(20)
    ]
    rng.shuffle(rows)
    for start in range(0, len(rows), 25):
        store.write(view, rows_table(view, rows[start : start + 25]))
    store.close()


def test_newest_wins_under_concurrent_writers(backend: tuple[str, dict[str, Any]]) -> None:
    kind, spec = backend
    view = int_view("concurrent")
    store = build_store(kind, spec)
    store.create([view])
    # Children fork from a server that has imported the heavy modules once (and started no threads).
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__, "pyarrow.compute", "redis", "psycopg", "psycopg_pool"])
    procs = [ctx.Process(target=_concurrent_writer, args=(kind, spec, seed)) for seed in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    assert read_values(store, view, list(range(40))) == [19] * 40
    store.close()


def test_reads_keep_order_duplicates_and_report_missing_keys(store: OnlineStore) -> None:
    view = int_view()
    store.create([view])
    store.write(view, rows_table(view, [{"user_id": i, "v": i * 10, "event_timestamp": at(i)} for i in range(5)]))
    assert read_values(store, view, [3, 99, 1, 3, 0]) == [30, None, 10, 30, 0]
    keys = [view.key_encoder.encode((i,)) for i in (4, 42)]
    (result,) = store.read([ReadRequest(view, keys)])
    assert result.event_ts[1] is None
    assert result.rows[1] is None
    assert result.event_ts[0] == int(at(4).timestamp() * 1_000_000)


def test_reading_a_view_never_written_gives_not_found(store: OnlineStore) -> None:
    view = int_view("never_created")
    assert read_values(store, view, [1, 2]) == [None, None]


def test_several_views_and_composite_keys_in_one_read(store: OnlineStore) -> None:
    users = int_view("users")
    pairs = OnlineView(
        "proj",
        "pairs",
        ("user_id", "merchant"),
        (Field(name="user_id", dtype=Int32), Field(name="merchant", dtype=String)),
        (Field(name="score", dtype=Float64),),
        timedelta(0),
    )
    store.create([users, pairs])
    store.write(users, rows_table(users, [{"user_id": 1, "v": 11, "event_timestamp": T0}]))
    store.write(
        pairs,
        rows_table(
            pairs,
            [
                {"user_id": 1, "merchant": "m1", "score": 0.5, "event_timestamp": T0},
                {"user_id": 1, "merchant": "m2", "score": 0.7, "event_timestamp": T0},
                {"user_id": 2, "merchant": "m1", "score": 0.9, "event_timestamp": T0},
            ],
        ),
    )
    response = get_online_features(
        store,
        [OnlineSelection(users, ("v",), ("v",)), OnlineSelection(pairs, ("score",), ("score",))],
        [
            {"user_id": 1, "merchant": "m2"},
            {"user_id": 2, "merchant": "m1"},
            {"user_id": 1, "merchant": "m3"},
        ],
    )
    assert response.to_dict() == {
        "user_id": [1, 2, 1],
        "merchant": ["m2", "m1", "m3"],
        "v": [11, None, 11],
        "score": [0.7, 0.9, None],
    }
    assert response.statuses["score"] == [FieldStatus.PRESENT, FieldStatus.PRESENT, FieldStatus.NOT_FOUND]


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_awaited_reads_equal_blocking_reads_under_concurrency(store: OnlineStore, loop: str) -> None:
    import uvloop

    run = asyncio.run if loop == "asyncio" else uvloop.run  # uvicorn serves on uvloop when installed
    users = int_view("users_vs", features=(Field(name="v", dtype=Int64), Field(name="s", dtype=String)))
    store.create([users])
    rows = [{"user_id": i, "v": i * 3, "s": f"s{i}", "event_timestamp": at(i)} for i in range(0, 300, 2)]
    store.write(users, rows_table(users, rows))
    selection = [OnlineSelection(users, ("s", "v"), ("s", "v"))]
    # Many reads in flight on one event loop: each must get its own answer, in its own order.
    requests = [[{"user_id": (i * 7 + j) % 320} for j in range(i % 5 + 1)] for i in range(120)]

    async def read_all() -> list[dict[str, list[Any]]]:
        answers = await asyncio.gather(*(get_online_features_async(store, selection, r) for r in requests))
        return [a.to_dict(include_event_timestamps=True) for a in answers]

    awaited = run(read_all())
    blocking = [get_online_features(store, selection, r).to_dict(include_event_timestamps=True) for r in requests]
    assert awaited == blocking
    assert any(None in a["v"] for a in awaited)
    assert any(None not in a["v"] for a in awaited)
    # A second event loop gets a working connection of its own.
    assert run(read_all()) == blocking


REMOTE_CLOCK = "a feature server applies a view's ttl at its own clock: a reader's `now` in the past cannot be honoured"
REMOTE_TABLES = "a feature server owns its tables: `apply` on the server drops them, not the remote client"


def _gap(request: pytest.FixtureRequest, kind: str, reason: str) -> None:
    if request.node.callspec.params.get("backend") == kind:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))


def test_rows_older_than_ttl_are_outside_max_age(store: OnlineStore, request: pytest.FixtureRequest) -> None:
    _gap(request, "remote", REMOTE_CLOCK)
    view = int_view("fresh", ttl=timedelta(hours=1))
    store.create([view])
    store.write(
        view,
        rows_table(
            view,
            [
                {"user_id": 1, "v": 1, "event_timestamp": at(0)},
                {"user_id": 2, "v": 2, "event_timestamp": at(3000)},
            ],
        ),
    )
    sel = [OnlineSelection(view, ("v",), ("v",))]
    response = get_online_features(store, sel, {"user_id": [1, 2, 3]}, now=at(3600 + 10))
    assert response.to_dict()["v"] == [None, 2, None]
    assert response.statuses["v"] == [FieldStatus.OUTSIDE_MAX_AGE, FieldStatus.PRESENT, FieldStatus.NOT_FOUND]
    assert response.event_timestamps["v"] == [at(0), at(3000), None]
    exactly = get_online_features(store, sel, {"user_id": [1]}, now=at(3600))
    assert exactly.statuses["v"] == [FieldStatus.PRESENT]  # the bound is inclusive


def test_teardown_removes_the_data(store: OnlineStore, request: pytest.FixtureRequest) -> None:
    _gap(request, "remote", REMOTE_TABLES)
    view, other = int_view("gone"), int_view("kept")
    store.create([view, other])
    for v in (view, other):
        store.write(v, rows_table(v, [{"user_id": i, "v": i, "event_timestamp": T0} for i in range(30)]))
    store.teardown([view])
    assert read_values(store, view, [1, 2]) == [None, None]
    assert read_values(store, other, [1, 2]) == [1, 2]
    store.create([view])
    assert read_values(store, view, [1]) == [None]


@pytest.mark.redis
@pytest.mark.parametrize("backend", ["redis", "redis_cluster", "redis_sentinel"], indirect=True)
def test_key_ttl_seconds_sets_a_physical_expiry(backend: tuple[str, dict[str, Any]]) -> None:
    kind, spec = backend
    store: Any = build_store(kind, {**spec, "key_ttl_seconds": 1000})
    view = int_view("expiring")
    store.write(view, rows_table(view, [{"user_id": 1, "v": 1, "event_timestamp": T0}]))
    key = store.redis_key(view, view.key_encoder.encode((1,)))
    assert 0 < store.client.ttl(key) <= 1000
    plain: Any = build_store(kind, spec)
    plain.write(view, rows_table(view, [{"user_id": 2, "v": 1, "event_timestamp": T0}]))
    assert plain.client.ttl(plain.redis_key(view, view.key_encoder.encode((2,)))) == -1
    store.close()
    plain.close()
