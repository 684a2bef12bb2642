"""A real feature server over SQLite, as the backing store of the remote online store in the contract suite."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from tests_support import serve

# Every view of tests/contracts/test_online_store_contract.py: (name, key kind, features, ttl seconds).
_INT_V = "[Field(name='v', dtype=Int64)]"
VIEWS = [
    (
        "all_types",
        "user",
        "[Field(name=n, dtype=t) for n, t in [('i32', Int32), ('i64', Int64), ('f32', Float32), ('f64', Float64),"
        " ('s', String), ('b', Bytes), ('flag', Bool), ('ts', UnixTimestamp), ('a_i32', Array(Int32)),"
        " ('a_i64', Array(Int64)), ('a_f32', Array(Float32)), ('a_f64', Array(Float64)), ('a_s', Array(String)),"
        " ('a_b', Array(Bytes)), ('a_flag', Array(Bool)), ('a_ts', Array(UnixTimestamp))]]",
        0,
    ),
    (
        "feast_types",
        "user",
        "[Field(name=n, dtype=t) for n, t in [('m', Map), ('j', Json), ('st', ADDRESS), ('u', Uuid), ('tu', TimeUuid),"
        " ('d', Decimal), ('pdf', PdfBytes), ('img', ImageBytes), ('zts', ZonedTimestamp), ('a_m', Array(Map)),"
        " ('a_j', Array(Json)), ('a_st', Array(ADDRESS)), ('a_u', Array(Uuid)), ('a_d', Array(Decimal)),"
        " ('a_a', Array(Array(Int64))), ('set_s', Set(String)), ('n', Int64)]]",
        0,
    ),
    ("partial", "user", "[Field(name='a', dtype=Int64), Field(name='b', dtype=String)]", 0),
    ("users_vs", "user", "[Field(name='v', dtype=Int64), Field(name='s', dtype=String)]", 0),
    ("pairs", "pair", "[Field(name='score', dtype=Float64)]", 0),
    ("far_future", "user", "[Field(name='seen', dtype=UnixTimestamp)]", 0),
    ("fresh", "user", _INT_V, 3600),
    *(
        (name, "user", _INT_V, 0)
        for name in (
            "users",
            "large_batch",
            "points_a",
            "points_b",
            "batch",
            "far_times",
            "old_times",
            "concurrent",
            "never_created",
            "gone",
            "kept",
        )
    ),
]

_HEADER = """\
from datetime import timedelta

from potluck import Entity, FeatureView, Field, FileSource, PushSource, ValueType
from potluck.types import (
    Array, Bool, Bytes, Decimal, Float32, Float64, ImageBytes, Int32, Int64, Json, Map, PdfBytes, Set, String, Struct,
    TimeUuid, UnixTimestamp, Uuid, ZonedTimestamp,
)

ADDRESS = Struct({"city": String, "visits": Int64, "seen": UnixTimestamp, "tags": Array(String), "raw": Bytes})

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
user32 = Entity(name="user32", join_keys=["user_id"], value_type=ValueType.INT32)
merchant = Entity(name="merchant", join_keys=["merchant"], value_type=ValueType.STRING)
ENTITIES = {"user": [user], "pair": [user32, merchant]}


def view(name, kind, schema, ttl):
    keys = [Field(name="user_id", dtype=Int64)] if kind == "user" else [
        Field(name="user_id", dtype=Int32), Field(name="merchant", dtype=String)
    ]
    batch = FileSource(
        name=f"{name}_batch", path=f"data/{name}", timestamp_field="event_timestamp", created_timestamp_column="created"
    )
    source = PushSource(name=f"{name}_push", batch_source=batch)
    return FeatureView(
        name=name, entities=ENTITIES[kind], schema=[*keys, *schema], source=source, ttl=timedelta(seconds=ttl)
    )

"""


def build_contract_repo(root: Path) -> Path:
    """A SQLite repository declaring every view of the contract suite, applied."""
    from potluck import FeatureStore

    lines = [_HEADER]
    for name, kind, schema, ttl in VIEWS:
        (root / "data" / name).mkdir(parents=True)
        lines.append(f"{name} = view({name!r}, {kind!r}, {schema}, {ttl})\n")
    (root / "features.py").write_text("".join(lines))
    (root / "feature_store.yaml").write_text(
        "project: contract\nregistry: data/registry.db\nonline_store:\n  type: sqlite\n  path: data/online.db\n"
    )
    store = FeatureStore(repo_path=root)
    store.apply()
    store.close()
    return root


@contextlib.contextmanager
def serve_repo(root: Path) -> Iterator[str]:
    """The feature server app of `potluck serve` over the repository at `root`, on a loopback port."""
    from potluck import FeatureStore
    from potluck.server import ServerSettings, create_app
    from potluck.server.store_backend import StoreBackend

    store = FeatureStore(repo_path=root)
    try:
        with serve(create_app(StoreBackend(store), ServerSettings(auth="off"))) as url:
            yield url
    finally:
        store.close()
