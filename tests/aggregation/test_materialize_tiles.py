"""Materialize of aggregation views backfills their online tiles from the batch source: values at the
end equal the brute-force reference, pushes after the watermark count once, and a materialize killed
with SIGKILL and run again leaves the same tiles as one clean run."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aggregation_reference import close, expected
from potluck import FeatureStore
from potluck.aggregation.online_tiles import read_values
from potluck.aggregation.rule import micros
from potluck.aggregation.tile_record import decode
from potluck.online.protocol import ReadRequest
from potluck.retrieval.plans import online_view

FEATURES = """\
from datetime import timedelta

from potluck import Aggregation, BatchFeatureView, Entity, Field, FileSource, PushSource, StreamFeatureView
from potluck.types import Float64, Int64

user = Entity(name="user", join_keys=["user_id"])
tx = FileSource(name="tx", path="data/tx", timestamp_field="ts", created_timestamp_column="created")
tx_push = PushSource(name="tx_push", batch_source=tx)
INPUTS = [Field(name="amount", dtype=Float64), Field(name="items", dtype=Int64)]
AGGS = [
    Aggregation(column="amount", function="sum", time_window=timedelta(minutes=10)),
    Aggregation(column="amount", function="stddev", time_window=timedelta(hours=1)),
    Aggregation(column="items", function="count", time_window=timedelta(days=1)),
    Aggregation(column="items", function="last", time_window=timedelta(days=1)),
    Aggregation(column="amount", function="max"),
]
tx_stream = StreamFeatureView(name="tx_stream", entities=[user], source=tx_push, schema=INPUTS, timestamp_field="ts",
                              aggregations=AGGS)
tx_batch = BatchFeatureView(name="tx_batch", entities=[user], source=tx, schema=INPUTS, aggregations=AGGS, online=True)
"""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# On an hour boundary, so the stream view's hop-aligned watermark is END itself.
END = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
USERS = 300
VIEWS = ("tx_stream", "tx_batch")

CHILD = """\
import os, signal, sys
import potluck.materialize.tiles as tiles
from potluck import FeatureStore
from potluck.streaming import tile_feed

tile_feed.now_micros = lambda: int(sys.argv[4])

calls = 0
real = tiles.backfill

def dying(*args, **kwargs):
    global calls
    calls += 1
    if calls == int(sys.argv[2]):
        os.kill(os.getpid(), signal.SIGKILL)  # mid-run: some keys rebuilt, the rest not yet
    return real(*args, **kwargs)

tiles.backfill = dying
store = FeatureStore(repo_path=sys.argv[1])
store.materialize(None, __import__("datetime").datetime.fromisoformat(sys.argv[3]), batch_rows=97)
"""


def _us(value: datetime) -> int:
    return micros(value - EPOCH)


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiles are written and read at END (the clock of the tile feed), so reads at END are exact."""
    from potluck.streaming import tile_feed

    monkeypatch.setattr(tile_feed, "now_micros", lambda: _us(END))


def _events(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        ts = END - timedelta(seconds=rng.randrange(0, 2 * 86_400))
        if rng.random() < 0.1:
            ts = END - timedelta(seconds=rng.randrange(0, 600))  # crowd the short windows
        out.append(
            {
                "key": rng.randrange(USERS),
                "ts": ts,
                "created": ts + timedelta(seconds=rng.choice([0, 0, 5])),
                "amount": None if rng.random() < 0.1 else round(rng.uniform(-50, 500), 2),
                "items": None if rng.random() < 0.1 else rng.randrange(10),
                "arrival": i,
            }
        )
    return out


def _write(root: Path, events: list[dict[str, Any]]) -> None:
    ts_type = pa.timestamp("us", tz="UTC")
    for part, chunk in enumerate((events[: len(events) // 2], events[len(events) // 2 :])):
        pq.write_table(
            pa.table(
                {
                    "user_id": pa.array([e["key"] for e in chunk], pa.int64()),
                    "ts": pa.array([e["ts"] for e in chunk], ts_type),
                    "created": pa.array([e["created"] for e in chunk], ts_type),
                    "amount": pa.array([e["amount"] for e in chunk], pa.float64()),
                    "items": pa.array([e["items"] for e in chunk], pa.int64()),
                }
            ),
            root / "data" / "tx" / f"part-{part}.parquet",
        )


def _repo(root: Path, events: list[dict[str, Any]]) -> Path:
    (root / "data" / "tx").mkdir(parents=True)
    (root / "feature_store.yaml").write_text("project: aggm\nregistry: data/registry.db\n")
    (root / "features.py").write_text(FEATURES)
    _write(root, events)
    store = FeatureStore(repo_path=root)
    store.apply()
    store.close()
    return root


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    return _events(3000, seed=11)


def _records(root: Path, view_name: str) -> tuple[Any, list[Any]]:
    store = FeatureStore(repo_path=root)
    view = store.registry_snapshot().get(
        "stream_feature_view" if view_name == "tx_stream" else "feature_view", view_name
    )
    target = online_view(view, "aggm")  # type: ignore[arg-type]
    keys = [target.key_encoder.encode([u]) for u in range(USERS)]
    found = store._online.read_tiles([ReadRequest(target, keys)])[0]  # type: ignore[attr-defined]
    store.close()
    return target, found


def _tiles(root: Path, view_name: str) -> list[Any]:
    """Each key's tiles, lifetime base and future events (not its write time)."""
    _, found = _records(root, view_name)
    out = []
    for record in found:
        r = None if record is None else decode(record.blob)
        out.append(None if r is None else (r.tiles, r.base, r.pending))
    return out


def _check_reference(root: Path, events: list[dict[str, Any]], t: int) -> None:
    raw = [{**e, "ts": _us(e["ts"]), "created": _us(e["created"])} for e in events]
    for view_name in VIEWS:
        target, found = _records(root, view_name)
        spec = target.tiles
        seen = {e["key"] for e in raw if e["ts"] <= t}
        for user, record in enumerate(found):
            assert (record is not None) == (user in seen), (view_name, user)
            if record is None:
                continue
            got = read_values(spec, record.blob, t)
            for agg, value in zip(spec.aggregations, got, strict=True):
                column = [{**e, "value": e[agg.column]} for e in raw]
                want = expected(column, user, t, agg.function, agg.window, agg.hop)
                assert close(value, want), (view_name, user, agg.output, value, want)


def test_materialize_backfills_tiles_equal_to_the_reference(tmp_path: Path, events: list[dict[str, Any]]) -> None:
    root = _repo(tmp_path / "repo", events)
    store = FeatureStore(repo_path=root)
    results = store.materialize(None, END, batch_rows=97)  # type: ignore[arg-type]
    assert {r.feature_view: r.rows for r in results} == {"tx_batch": 3000, "tx_stream": 3000}
    store.close()
    _check_reference(root, events, _us(END))
    # Pushed events after the watermark count once; a push of an event the batch source already
    # holds (at or before the watermark) changes nothing.
    store = FeatureStore(repo_path=root)
    after = {"user_id": [1, 1], "ts": [END + timedelta(seconds=30), END - timedelta(seconds=30)],
             "created": [END, END], "amount": [7.0, 9.0], "items": [1, 2]}  # fmt: skip
    store.push("tx_push", after)
    store.close()
    pushed = [
        {"key": 1, "ts": END + timedelta(seconds=30), "created": END, "amount": 7.0, "items": 1, "arrival": 10**6}
    ]
    target, found = _records(root, "tx_stream")
    got = dict(
        zip(
            [a.output for a in target.tiles.aggregations],
            read_values(target.tiles, found[1].blob, _us(END) + 60_000_000),
            strict=True,
        )
    )
    raw = [{**e, "ts": _us(e["ts"]), "created": _us(e["created"]), "value": e["amount"]} for e in [*events, *pushed]]
    assert close(got["sum_amount_600s"], expected(raw, 1, _us(END) + 60_000_000, "sum", 600_000_000, 300_000_000))
    # A materialize run again gives the same tiles, keeping the pushes after the watermark.
    before = _tiles(root, "tx_stream")
    store = FeatureStore(repo_path=root)
    store.materialize(None, END)  # type: ignore[arg-type]
    store.close()
    assert _tiles(root, "tx_stream") == before


@pytest.mark.parametrize("die_at", [3])
def test_materialize_killed_and_rerun_gives_the_same_tiles(
    tmp_path: Path, events: list[dict[str, Any]], die_at: int
) -> None:
    clean = _repo(tmp_path / "clean", events)
    store = FeatureStore(repo_path=clean)
    store.materialize(None, END, batch_rows=97)  # type: ignore[arg-type]
    store.close()
    killed = tmp_path / "killed"
    shutil.copytree(clean / "data" / "tx", killed / "data" / "tx")
    (killed / "feature_store.yaml").write_text((clean / "feature_store.yaml").read_text())
    (killed / "features.py").write_text(FEATURES)
    FeatureStore(repo_path=killed).apply()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(killed), str(die_at), END.isoformat(), str(_us(END))],
        env=env,
        check=False,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    partial = [_tiles(killed, v) for v in VIEWS]
    assert any(r is None for r in partial[0] + partial[1])  # the run died before every key was written
    store = FeatureStore(repo_path=killed)
    store.materialize(None, END, batch_rows=97)  # type: ignore[arg-type]
    store.close()
    for view_name in VIEWS:
        assert _tiles(killed, view_name) == _tiles(clean, view_name)
    _check_reference(killed, events, _us(END))
