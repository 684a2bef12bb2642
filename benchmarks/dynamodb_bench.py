"""DynamoDB online store on the moto emulator: Potluck vs Feast 0.67 vs boto3 by hand.

One view (10 features: ints, floats, strings), N entities. Per tool, in its own process:
write the N rows, write them again (a replay: Potluck's conditions fail, Feast overwrites), then
read one entity and 100 entities many times. The emulator's cost per request dominates every figure
(it is a Python server): the ratios say how many requests each tool makes, not how fast DynamoDB is.

- potluck: `DynamoDBOnlineStore.write` / `read` (conditional UpdateItem per row, BatchGetItem).
- feast:   `DynamoDBOnlineStore.online_write_batch` (Arrow -> protos included, as materialization
           does) / `online_read`, from benchmarks/.venv-feast (setup_feast.sh installs feast[aws]).
- raw:     boto3 by hand: `BatchWriteItem` of 25 unconditional puts of pre-encoded items, and
           `BatchGetItem` without decoding. The floor, not a competitor: it does not keep the newest row.
           `conditional_replay_s`: the replay as Potluck does it, one conditional UpdateItem per row,
           one at a time (the floor of newest-wins writes).

    .venv/bin/python benchmarks/dynamodb_bench.py [--rows 2000] [--reads 200] [--tools potluck,raw,feast]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
REGION = "us-east-1"
T0 = datetime(2024, 5, 1, tzinfo=UTC)
FEATURES = [("i0", "int"), ("i1", "int"), ("i2", "int"), ("f0", "float"), ("f1", "float"), ("f2", "float"),
            ("f3", "float"), ("s0", "str"), ("s1", "str"), ("s2", "str")]  # fmt: skip


def _table(rows: int) -> Any:
    import pyarrow as pa

    cols: dict[str, Any] = {"user_id": pa.array(range(rows), pa.int64())}
    for name, kind in FEATURES:
        if kind == "int":
            cols[name] = pa.array([i * 7 % 1000 for i in range(rows)], pa.int64())
        elif kind == "float":
            cols[name] = pa.array([i / 3 for i in range(rows)], pa.float64())
        else:
            cols[name] = pa.array([f"value-{i % 97}" for i in range(rows)], pa.string())
    stamp = pa.timestamp("us", tz="UTC")
    cols["event_timestamp"] = pa.array([T0 + timedelta(seconds=i) for i in range(rows)], stamp)
    cols["created_timestamp"] = pa.array([T0] * rows, stamp)
    return pa.table(cols)


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _latencies(fn: Callable[[int], Any], calls: int) -> dict[str, float]:
    times = []
    for i in range(calls):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    times.sort()
    return {"p50_ms": statistics.median(times) * 1000, "p99_ms": times[int(len(times) * 0.99) - 1] * 1000}


# ---------------------------------------------------------------- the tools (each in its own process)


def run_potluck(endpoint: str, rows: int, reads: int) -> dict[str, Any]:
    sys.path.insert(0, str(HERE.parent / "src"))
    from potluck.definitions.field import Field
    from potluck.online.dynamodb import DynamoDBOnlineStore
    from potluck.online.dynamodb_config import DynamoDBOnlineStoreConfig
    from potluck.online.protocol import OnlineView, ReadRequest
    from potluck.types import Float64, Int64, String

    types = {"int": Int64, "float": Float64, "str": String}
    view = OnlineView(
        "bench",
        "users",
        ("user_id",),
        (Field(name="user_id", dtype=Int64),),
        tuple(Field(name=n, dtype=types[k]) for n, k in FEATURES),
        timedelta(0),
    )
    prefix = "p" + uuid.uuid4().hex[:8]
    config = DynamoDBOnlineStoreConfig(
        type="dynamodb", region=REGION, endpoint_url=endpoint, table_name_template=prefix + ".{table_name}"
    )
    store = DynamoDBOnlineStore(config)
    store.create([view])
    table = _table(rows)
    out = {"write_s": _timed(lambda: store.write(view, table))}
    out["replay_s"] = _timed(lambda: store.write(view, table))
    keys = [view.key_encoder.encode((i,)) for i in range(rows)]
    got = store.read([ReadRequest(view, keys[:3])])[0].rows
    if got[2] is None or got[2][0] != 14:
        raise SystemExit(f"potluck read back {got}")
    out["read_1"] = _latencies(lambda i: store.read([ReadRequest(view, [keys[i * 37 % rows]])]), reads)
    out["read_100"] = _latencies(
        lambda i: store.read([ReadRequest(view, [keys[(i * 100 + j) % rows] for j in range(100)])]), max(reads // 5, 10)
    )
    store.teardown([view])
    store.close()
    return out


def run_raw(endpoint: str, rows: int, reads: int) -> dict[str, Any]:
    sys.path.insert(0, str(HERE.parent / "src"))
    import boto3

    from potluck.definitions.field import Field
    from potluck.online.protocol import OnlineView
    from potluck.online.rows import encode_rows
    from potluck.types import Float64, Int64, String

    types = {"int": Int64, "float": Float64, "str": String}
    view = OnlineView(
        "bench",
        "users",
        ("user_id",),
        (Field(name="user_id", dtype=Int64),),
        tuple(Field(name=n, dtype=types[k]) for n, k in FEATURES),
        timedelta(0),
    )
    keys, event, created, blobs = encode_rows(view, _table(rows)).python()  # encoding not timed
    client = boto3.session.Session().client("dynamodb", region_name=REGION, endpoint_url=endpoint)
    name = "r" + uuid.uuid4().hex[:8] + ".users"
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "entity_key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "entity_key", "AttributeType": "B"}],
        BillingMode="PAY_PER_REQUEST",
    )
    items = [
        {
            "PutRequest": {
                "Item": {
                    "entity_key": {"B": k},
                    "event_ts": {"N": str(e)},
                    "created_ts": {"N": str(c)},
                    "value": {"B": b},
                }
            }
        }
        for k, e, c, b in zip(keys, event, created, blobs, strict=True)
    ]

    def write() -> None:
        for start in range(0, len(items), 25):
            request = {name: items[start : start + 25]}
            while request:
                request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}

    out = {"write_s": _timed(write), "replay_s": _timed(write)}

    def conditional() -> None:  # the same work as Potluck's, by hand: one conditional write per row, in turn
        condition = "attribute_not_exists(event_ts) OR event_ts < :e OR (event_ts = :e AND created_ts <= :c)"
        for k, e, c, b in zip(keys, event, created, blobs, strict=True):
            with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):
                client.update_item(
                    TableName=name,
                    Key={"entity_key": {"B": k}},
                    UpdateExpression="SET event_ts = :e, created_ts = :c, #v = :v",
                    ConditionExpression=condition,
                    ExpressionAttributeNames={"#v": "value"},
                    ExpressionAttributeValues={":e": {"N": str(e)}, ":c": {"N": str(c)}, ":v": {"B": b}},
                )

    out["conditional_replay_s"] = _timed(conditional)

    def get(wanted: list[bytes]) -> None:
        request = {name: {"Keys": [{"entity_key": {"B": k}} for k in wanted]}}
        while request:
            request = client.batch_get_item(RequestItems=request).get("UnprocessedKeys") or {}

    out["read_1"] = _latencies(lambda i: get([keys[i * 37 % rows]]), reads)
    out["read_100"] = _latencies(lambda i: get([keys[(i * 100 + j) % rows] for j in range(100)]), max(reads // 5, 10))
    client.delete_table(TableName=name)
    return out


def run_feast(endpoint: str, rows: int, reads: int) -> dict[str, Any]:
    import tempfile

    from feast import Entity, FeatureView, Field, FileSource, ValueType
    from feast.infra.online_stores.dynamodb import DynamoDBOnlineStore, DynamoDBOnlineStoreConfig
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value
    from feast.repo_config import RepoConfig
    from feast.types import Float64, Int64, String
    from feast.utils import _convert_arrow_to_proto

    types = {"int": Int64, "float": Float64, "str": String}
    folder = tempfile.mkdtemp()
    config = RepoConfig(
        project="f" + uuid.uuid4().hex[:8],
        registry=os.path.join(folder, "registry.db"),
        provider="local",
        online_store=DynamoDBOnlineStoreConfig(region=REGION, endpoint_url=endpoint),
        entity_key_serialization_version=3,
        repo_path=folder,
    )
    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
    source = FileSource(name="src", path=os.path.join(folder, "x.parquet"), timestamp_field="event_timestamp")
    view = FeatureView(
        name="users",
        entities=[user],
        schema=[Field(name="user_id", dtype=Int64), *(Field(name=n, dtype=types[k]) for n, k in FEATURES)],
        source=source,
    )
    store = DynamoDBOnlineStore()
    store.update(config, [], [view], [], [user], partial=False)
    table = _table(rows)

    def write() -> None:
        data = _convert_arrow_to_proto(table, view, {"user_id": ValueType.INT64})
        store.online_write_batch(config, view, data, None)

    out = {"write_s": _timed(write), "replay_s": _timed(write)}
    keys = [EntityKey(join_keys=["user_id"], entity_values=[Value(int64_val=i)]) for i in range(rows)]
    got = store.online_read(config, view, keys[:3])
    if got[2][1] is None or got[2][1]["i0"].int64_val != 14:
        raise SystemExit(f"feast read back {got}")
    out["read_1"] = _latencies(lambda i: store.online_read(config, view, [keys[i * 37 % rows]]), reads)
    out["read_100"] = _latencies(
        lambda i: store.online_read(config, view, [keys[(i * 100 + j) % rows] for j in range(100)]), max(reads // 5, 10)
    )
    store.teardown(config, [view], [user])
    return out


# ---------------------------------------------------------------- the orchestration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    binary = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(binary), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/moto-api/", timeout=1):
                return proc, url
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("moto_server did not start") from None
            time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--tools", default="potluck,raw,feast")
    parser.add_argument("--tool", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tool:
        fn = {"potluck": run_potluck, "raw": run_raw, "feast": run_feast}[args.tool]
        print(json.dumps(fn(args.endpoint, args.rows, args.reads)))
        return
    proc, url = _start_moto()
    results: dict[str, Any] = {"rows": args.rows, "load": os.getloadavg()[0]}
    try:
        for tool in args.tools.split(","):
            python = str(HERE / ".venv-feast" / "bin" / "python") if tool == "feast" else sys.executable
            done = subprocess.run(
                [
                    python,
                    __file__,
                    "--tool",
                    tool,
                    "--endpoint",
                    url,
                    "--rows",
                    str(args.rows),
                    "--reads",
                    str(args.reads),
                ],
                capture_output=True,
                text=True,
                env={**os.environ, **CREDENTIALS},
                check=False,
            )
            if done.returncode != 0:
                results[tool] = {"error": done.stderr.strip().splitlines()[-1:]}
                continue
            results[tool] = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        proc.terminate()
        proc.wait()
    print(json.dumps(results, indent=2))
    base = results.get("raw", {})
    for tool in ("potluck", "feast"):
        r = results.get(tool, {})
        if "write_s" not in r or "write_s" not in base:
            continue
        print(
            f"{tool}: write {args.rows / r['write_s']:.0f} rows/s ({r['write_s'] / base['write_s']:.1f}x raw), "
            f"replay {r['replay_s'] / base['replay_s']:.1f}x raw "
            f"({r['replay_s'] / base['conditional_replay_s']:.2f}x conditional by hand), read 1 p50 {r['read_1']['p50_ms']:.2f} ms "
            f"({r['read_1']['p50_ms'] / base['read_1']['p50_ms']:.2f}x raw), read 100 p50 "
            f"{r['read_100']['p50_ms']:.1f} ms ({r['read_100']['p50_ms'] / base['read_100']['p50_ms']:.2f}x raw)"
        )


if __name__ == "__main__":
    main()
