"""`SupportsScan` (online snapshots) on every online store: rows and tile records listed in key order, chunk by
chunk, against a brute-force reference; written back byte for byte, newest wins; tile records only where absent."""

# ruff: noqa: F811  (the contract suite's fixtures, imported, are the tests' parameters)
from __future__ import annotations

import random
from typing import Any

import pyarrow as pa
import pytest
from test_online_store_contract import (  # noqa: F401  (fixtures)
    BACKENDS,
    at,
    backend,
    int_view,
    redis_cluster,
    rows_table,
    store,
)

from dynamodb_support import moto_server  # noqa: F401  (the session fixture)
from potluck.definitions.field import Field
from potluck.online.protocol import OnlineStore, OnlineView, SupportsScan, SupportsTiles, TileWrite
from potluck.online.rows import encode_rows, newest_per_key
from potluck.types import Float64, Int64, String

# Known gaps: a feature server's client cannot list the server's rows (snapshot the store it serves from).
GAPS = {"remote"}
SCAN_BACKENDS = [b for b in BACKENDS if (b if isinstance(b, str) else b.values[0]) not in GAPS]
on_scanning_stores = pytest.mark.parametrize("backend", SCAN_BACKENDS, indirect=True)
VIEW = (Field(name="x", dtype=Float64), Field(name="s", dtype=String))


def scannable(store: OnlineStore, backend: tuple[str, dict[str, Any]]) -> Any:
    # Every store but the known gaps lists its rows: one that does not fails here (add it to GAPS if it must).
    assert isinstance(store, SupportsScan), f"the {backend[0]} online store does not implement SupportsScan"
    return store


def test_the_known_gaps_are_still_gaps() -> None:
    from potluck.online.remote import RemoteOnlineStore

    assert not issubclass(RemoteOnlineStore, SupportsScan), "remote lists rows now: remove it from GAPS"


def listed(store: Any, view: OnlineView, chunk: int) -> list[tuple[Any, ...]]:
    out = []
    for part in store.scan_rows(view, None, chunk):
        assert 0 < len(part) <= chunk
        out += list(zip(*part.python(), strict=True))
    return out


def some_rows(view: OnlineView, n: int, seed: int) -> pa.Table:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        rows.append(
            {
                "user_id": rng.choice([rng.randrange(-5, 300), -(2**63), 2**63 - 1]),
                "x": rng.choice([None, rng.uniform(-1, 1)]),
                "s": rng.choice([None, "", "é" * rng.randrange(4)]),
                "event_timestamp": at(rng.randrange(0, 50)),
                "created_timestamp": rng.choice([None, at(rng.randrange(0, 50))]),
            }
        )
    return rows_table(view, rows)


def reference(view: OnlineView, tables: list[pa.Table]) -> list[tuple[Any, ...]]:
    """What newest-wins writes of `tables`, in order, leave: one row per key, in byte order."""
    best: dict[bytes, tuple[Any, ...]] = {}
    for table in tables:
        for key, event, created, blob in zip(*encode_rows(view, table).python(), strict=True):
            held = best.get(key)
            floor = -(2**63)
            if held is None or (event, floor if created is None else created) >= (
                held[1],
                floor if held[2] is None else held[2],
            ):
                best[key] = (key, event, created, blob)
    return [best[k] for k in sorted(best)]


@on_scanning_stores
def test_rows_are_listed_in_key_order_chunk_by_chunk(store: OnlineStore, backend: tuple[str, dict[str, Any]]) -> None:
    online = scannable(store, backend)
    view = int_view("scanned", VIEW)
    store.create([view])
    assert listed(online, view, 10) == []  # never written: empty, not an error
    batches = [some_rows(view, 120, seed) for seed in (1, 2)]
    for batch in batches:
        store.write(view, batch)
    want = reference(view, batches)
    assert len(want) > 60
    assert listed(online, view, 7) == want
    assert listed(online, view, 10_000) == want
    after = want[20][0]
    rest = [r for part in online.scan_rows(view, after, 9) for r in zip(*part.python(), strict=True)]
    assert rest == want[21:]


@on_scanning_stores
def test_stored_rows_are_written_back_as_they_are_newest_wins(
    store: OnlineStore, backend: tuple[str, dict[str, Any]]
) -> None:
    online = scannable(store, backend)
    source, copy = int_view("source", VIEW), int_view("copy", VIEW)
    store.create([source, copy])
    store.write(source, some_rows(source, 80, 3))
    for part in online.scan_rows(source, None, 13):
        online.write_stored(copy, part)
    original = listed(online, source, 1000)
    assert listed(online, copy, 1000) == original
    # Writing them back again changes nothing; an older row is ignored, a newer one replaces.
    key, event = original[0][:2]
    older = newest_per_key(encode_rows(copy, some_rows(copy, 1, 4)))
    older.keys = pa.array([key], pa.binary())
    older.event_us = pa.array([event - 1], pa.int64())
    online.write_stored(copy, older)
    for part in online.scan_rows(source, None, 1000):
        online.write_stored(copy, part)
    assert listed(online, copy, 1000) == original
    newer = older
    newer.event_us = pa.array([event + 1], pa.int64())
    online.write_stored(copy, newer)
    got = listed(online, copy, 1000)
    assert got[0] == (key, event + 1, newer.created_us[0].as_py(), newer.blobs[0].as_py())
    assert got[1:] == original[1:]


@on_scanning_stores
def test_tile_records_are_listed_and_put_only_where_absent(
    store: OnlineStore, backend: tuple[str, dict[str, Any]]
) -> None:
    online = scannable(store, backend)
    assert isinstance(store, SupportsTiles)
    source = int_view("tiled", (Field(name="n", dtype=Int64),))
    copy = int_view("tiled_copy", (Field(name="n", dtype=Int64),))
    keys = sorted({source.key_encoder.encode((i,)) for i in range(-20, 40)})
    assert list(online.scan_tiles(source, None, 5)) == []
    assert all(store.write_tiles(source, [TileWrite(k, 0, b"v1" + k) for k in keys], 3600))
    assert all(store.write_tiles(source, [TileWrite(k, 1, b"v2" + k) for k in keys[::3]], 3600))
    want = [(k, 2 if i % 3 == 0 else 1, (b"v2" if i % 3 == 0 else b"v1") + k) for i, k in enumerate(keys)]
    got = [tuple(r.values()) for t in online.scan_tiles(source, None, 7) for r in t.to_pylist()]
    assert got == want
    tail = [tuple(r.values()) for t in online.scan_tiles(source, keys[9], 7) for r in t.to_pylist()]
    assert tail == want[10:]
    taken = pa.concat_tables(list(online.scan_tiles(source, None, 1000)))
    held = taken.slice(0, 4).set_column(2, "blob", pa.array([b"mine"] * 4, pa.binary()))
    assert online.put_tiles(copy, held, 3600) == 4
    assert online.put_tiles(copy, taken, 3600) == len(keys) - 4  # the four already there are kept
    copied = [tuple(r.values()) for t in online.scan_tiles(copy, None, 1000) for r in t.to_pylist()]
    assert copied[4:] == want[4:]
    assert [c[2] for c in copied[:4]] == [b"mine"] * 4
    # A record put back keeps its version: the next compare-and-set continues from it.
    assert store.write_tiles(copy, [TileWrite(keys[0], 2, b"v3")], 3600) == [True]
