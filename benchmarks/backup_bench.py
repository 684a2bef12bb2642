"""Online snapshot and restore throughput, against the raw floor, on SQLite and a private Redis.

    python benchmarks/backup_bench.py [--rows 500000] [--backends sqlite,redis] [--out results/backup_500k.json]

One view of 10 features is materialized (`rows` entities), then timed:
- `potluck_snapshot`: `potluck.backup.online_snapshot.take` (100k rows per Parquet file, checksums, manifest);
- `raw_snapshot`: the same rows read by hand into Parquet files of the same size (SQLite: one keyset query per
  chunk; Redis: one SCAN of the key names, sorted, MGET per chunk), no checksums or manifest: the floor;
- `potluck_restore`: `restore(..., overwrite=True)` into the emptied view (checksums, newest-wins writes);
- `raw_restore`: the Parquet files written back by hand (SQLite `executemany` upsert; Redis pipelined SET).
Feast has no online snapshot or restore; its recovery is a full materialization (see `run.py materialize`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
CHUNK = 100_000
FEATURES = """\
from datetime import timedelta
from potluck import Entity, FeatureView, Field, FileSource, ValueType
from potluck.types import Float64, Int64, String

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
user_stats = FeatureView(
    name="user_stats", entities=[user], ttl=timedelta(days=30),
    schema=[*(Field(name=f"f{i}", dtype=Float64) for i in range(7)),
            Field(name="n", dtype=Int64), Field(name="s", dtype=String), Field(name="t", dtype=String)],
    source=FileSource(name="src", path="data/stats.parquet", timestamp_field="ts"),
)
"""


def repo(root: Path, rows: int, backend: str, redis_port: int | None) -> Path:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    (root / "data").mkdir(parents=True)
    online = (
        "online_store:\n  type: sqlite\n  path: data/online.db\n"
        if backend == "sqlite"
        else f"online_store:\n  type: redis\n  connection_string: 127.0.0.1:{redis_port}\n"
    )
    (root / "feature_store.yaml").write_text("project: bench\nregistry: data/registry.db\n" + online)
    (root / "features.py").write_text(FEATURES)
    rng = np.random.default_rng(1)
    now = datetime.now(UTC) - timedelta(hours=1)
    columns: dict[str, Any] = {
        "user_id": pa.array(np.arange(rows, dtype=np.int64)),
        "ts": pa.array([now] * rows, pa.timestamp("us", tz="UTC")),
        **{f"f{i}": pa.array(rng.random(rows)) for i in range(7)},
        "n": pa.array(rng.integers(0, 1000, rows)),
        "s": pa.array(rng.choice(["alpha", "beta", "gamma"], rows)),
        "t": pa.array(rng.choice(["x" * 20, "y" * 10], rows)),
    }
    pq.write_table(pa.table(columns), root / "data" / "stats.parquet")
    return root


def raw_snapshot(store: Any, view: Any, out: Path, backend: str) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.mkdir()
    n = 0
    if backend == "sqlite":
        conn = sqlite3.connect(store.path)
        table = '"' + view.storage_name + '"'
        last = b""
        while True:
            rows = conn.execute(
                f"SELECT entity_key, event_ts, created_ts, value FROM {table} WHERE entity_key > ? "
                "ORDER BY entity_key LIMIT ?",
                (last, CHUNK),
            ).fetchall()
            if not rows:
                break
            k, e, c, v = zip(*rows, strict=True)
            pq.write_table(
                pa.table({"entity_key": k, "event_ts": e, "created_ts": pa.array(c, pa.int64()), "value": v}),
                out / f"{n:06d}.parquet",
                compression="zstd",
            )
            n += len(rows)
            last = rows[-1][0]
        return n
    client = store.client
    prefix = store.view_prefix(view)
    names = sorted(client.scan_iter(match=prefix + b"{*", count=10_000))
    for start in range(0, len(names), CHUNK):
        part = names[start : start + CHUNK]
        values = client.mget(part)
        keys = [bytes.fromhex(name[len(prefix) + 1 : -1].decode()) for name in part]
        event, created, blobs = [], [], []
        for value in values:
            times, _, blob = value.partition(b";")
            ev, _, cr = times.partition(b",")
            event.append(int(ev))
            created.append(int(cr) if cr else None)
            blobs.append(blob)
        pq.write_table(
            pa.table(
                {"entity_key": keys, "event_ts": event, "created_ts": pa.array(created, pa.int64()), "value": blobs}
            ),
            out / f"{start:09d}.parquet",
            compression="zstd",
        )
        n += len(part)
    return n


def raw_restore(store: Any, view: Any, folder: Path, backend: str) -> int:
    import pyarrow.parquet as pq

    n = 0
    for path in sorted(folder.glob("*.parquet")):
        t = pq.read_table(path)
        k, e, c, v = (t.column(x).to_pylist() for x in ("entity_key", "event_ts", "created_ts", "value"))
        if backend == "sqlite":
            conn = sqlite3.connect(store.path)
            table = '"' + view.storage_name + '"'
            conn.execute("BEGIN")
            conn.executemany(
                f"INSERT INTO {table} (entity_key, event_ts, created_ts, value) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (entity_key) DO UPDATE SET event_ts = excluded.event_ts, "
                "created_ts = excluded.created_ts, value = excluded.value",
                zip(k, e, c, v, strict=True),
            )
            conn.execute("COMMIT")
            conn.close()
        else:
            pipe = store.client.pipeline(transaction=False)
            for key, ev, cr, blob in zip(k, e, c, v, strict=True):
                pipe.set(store.redis_key(view, key), b"%d,%s;%s" % (ev, b"" if cr is None else str(cr).encode(), blob))
            pipe.execute()
        n += len(k)
    return n


def run(backend: str, rows: int, work: Path) -> dict[str, Any]:
    from potluck import FeatureStore
    from potluck.backup.online_snapshot import online_views, restore, take

    proc = None
    port = None
    if backend == "redis":
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        time.sleep(0.5)
    try:
        store = FeatureStore(repo_path=repo(work / backend, rows, backend, port))
        store.apply()
        store.materialize(datetime(1970, 1, 1, tzinfo=UTC), datetime.now(UTC), ["user_stats"])
        online: Any = store._online
        [view] = online_views(store)
        out: dict[str, Any] = {"backend": backend, "rows": rows}

        def timed(name: str, fn: Any) -> None:
            began = time.perf_counter()
            fn()
            out[name + "_s"] = round(time.perf_counter() - began, 3)
            out[name + "_rows_per_s"] = round(rows / out[name + "_s"])

        timed("potluck_snapshot", lambda: take(store, work / f"{backend}-snap", chunk_rows=CHUNK))
        timed("raw_snapshot", lambda: raw_snapshot(online, view, work / f"{backend}-raw", backend))
        online.teardown([view])
        timed("potluck_restore", lambda: restore(store, work / f"{backend}-snap", overwrite=True))
        online.teardown([view])
        online.create([view])
        timed("raw_restore", lambda: raw_restore(online, view, work / f"{backend}-raw", backend))
        out["snapshot_vs_raw"] = round(out["potluck_snapshot_s"] / out["raw_snapshot_s"], 2)
        out["restore_vs_raw"] = round(out["potluck_restore_s"] / out["raw_restore_s"], 2)
        out["snapshot_bytes"] = sum(p.stat().st_size for p in (work / f"{backend}-snap").rglob("*.parquet"))
        store.close()
        return out
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--backends", default="sqlite,redis")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="potluck-backup-bench-"))
    try:
        results = [run(b, args.rows, work) for b in args.backends.split(",")]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    report = {"load_average": load, "results": results}
    print(json.dumps(report, indent=2))
    if args.out:
        (HERE / args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
