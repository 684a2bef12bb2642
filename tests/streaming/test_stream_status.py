"""`potluck stream status`: exact lag per view, source and partition, against a real Redis and Tansu,
with positions committed through the source plugins themselves (a running worker's way)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from potluck import FeatureStore
from potluck.streaming.sources import ConsumerOptions, StreamMessage, open_consumer
from potluck.streaming.status import PartitionLag, stream_status
from tests_support import require_server, run_cli

REDIS_FEATURES = """\
from datetime import timedelta

from potluck import Entity, FeatureView, Field, FileSource, RedisStreamSource, ValueType
from potluck.data_format import JsonFormat
from potluck.definitions.aggregation_views import StreamFeatureView
from potluck.types import Float64

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
fmt = JsonFormat(schema_json="user_id integer, event_timestamp timestamp, amount double")
clicks = RedisStreamSource(name="clicks", stream="{clicks}", connection_string="127.0.0.1:6379",
                           timestamp_field="event_timestamp", message_format=fmt)
orders = RedisStreamSource(name="orders", stream="{orders}", connection_string="127.0.0.1:6379",
                           timestamp_field="event_timestamp", message_format=fmt)
profiles = FileSource(name="profiles", path="data/profiles.parquet", timestamp_field="event_timestamp")
schema = [Field(name="amount", dtype=Float64)]
last_click = FeatureView(name="last_click", entities=[user], ttl=timedelta(0), schema=schema, source=clicks)
click_stream = StreamFeatureView(name="click_stream", entities=[user], source=clicks, schema=schema,
                                 timestamp_field="event_timestamp")
last_order = FeatureView(name="last_order", entities=[user], ttl=timedelta(0), schema=schema, source=orders)
profile = FeatureView(name="profile", entities=[user], ttl=timedelta(0), schema=schema, source=profiles)
"""


def make_repo(root: Path, features: str) -> FeatureStore:
    import pandas as pd

    (root / "data").mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {"user_id": [1], "event_timestamp": [pd.Timestamp("2026-01-01", tz="UTC")], "amount": [1.0]}
    ).to_parquet(root / "data" / "profiles.parquet")
    (root / "feature_store.yaml").write_text(
        "project: shop\nregistry: data/registry.db\nonline_store:\n  type: sqlite\n  path: data/online.db\n"
    )
    (root / "features.py").write_text(features)
    store = FeatureStore(repo_path=root)
    store.apply()
    return store


def consume_and_commit(store: FeatureStore, source_name: str, commit_after: dict[str, int], total: int) -> None:
    """Read `total` messages as group potluck-shop, then commit per partition the offset of the
    message that many messages into it (`commit_after`: partition -> count, 0 commits nothing there)."""
    source = next(s for s in store.list_data_sources() if s.name == source_name)
    consumer = open_consumer(source, ConsumerOptions(group="potluck-shop", consumer_name="status-test"))
    try:
        got: list[StreamMessage] = []
        for _ in range(100):
            got += consumer.poll(total - len(got), 0.5)
            if len(got) >= total:
                break
        assert len(got) == total
        positions = {}
        for partition, count in commit_after.items():
            mine = sorted(m.offset for m in got if m.partition == partition)
            if count:
                positions[partition] = mine[count - 1]
        consumer.commit(positions)
    finally:
        consumer.close()


@pytest.fixture
def redis_streams() -> Iterator[tuple[str, str]]:
    require_server("Redis", "127.0.0.1", 6379)
    import redis

    prefix = f"potluck-test-status-{uuid.uuid4().hex[:10]}"
    names = (f"{prefix}-clicks", f"{prefix}-orders")
    yield names
    client = redis.Redis(host="127.0.0.1", port=6379)
    client.delete(*names, *client.keys(f"{prefix}*"))
    client.close()


def xadd(stream: str, n: int) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379)
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        body = {"user_id": i % 3, "event_timestamp": "2026-01-01T00:00:00+00:00", "amount": float(i)}
        pipe.xadd(stream, {"value": json.dumps(body)})
    pipe.execute()
    client.close()


def table_rows(text: str) -> list[list[str]]:
    """The body rows of a rich table, as lists of stripped cells."""
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells and cells[0] not in ("", "view"):
            rows.append(cells)
    return rows


def test_redis_status_table_and_json(
    tmp_path: Path, redis_streams: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    clicks, orders = redis_streams
    store = make_repo(tmp_path, REDIS_FEATURES.replace("{clicks}", clicks).replace("{orders}", orders))
    xadd(clicks, 50)
    xadd(orders, 30)
    consume_and_commit(store, "clicks", {clicks: 20}, 20)
    consume_and_commit(store, "orders", {orders: 30}, 30)
    xadd(orders, 4)  # after the commit

    assert stream_status(store) == [
        PartitionLag("click_stream", "clicks", clicks, 30),
        PartitionLag("last_click", "clicks", clicks, 30),
        PartitionLag("last_order", "orders", orders, 4),
    ]

    code, out, err = run_cli(capsys, "-c", str(tmp_path), "stream", "status", "-o", "json")
    assert code == 0, err
    assert json.loads(out) == {
        "consumer_group": "potluck-shop",
        "lag": [
            {"view": "click_stream", "source": "clicks", "partition": clicks, "lag": 30},
            {"view": "last_click", "source": "clicks", "partition": clicks, "lag": 30},
            {"view": "last_order", "source": "orders", "partition": orders, "lag": 4},
        ],
    }

    code, out, err = run_cli(capsys, "-c", str(tmp_path), "stream", "status", "-v", "last_order", "-v", "last_click")
    assert code == 0, err
    assert "potluck-shop" in out
    assert "total 34" in out
    assert table_rows(out) == [["last_click", "clicks", clicks, "30"], ["last_order", "orders", orders, "4"]]
    code, out, err = run_cli(capsys, "-c", str(tmp_path), "stream", "status")
    assert code == 0, err
    assert "total 34" in out  # clicks' lag once, though two views read it

    # A group that never committed is behind by everything the stream holds (it starts at the earliest).
    code, out, err = run_cli(capsys, "-c", str(tmp_path), "stream", "status", "--group", "nobody", "-o", "json")
    assert code == 0, err
    assert [r["lag"] for r in json.loads(out)["lag"]] == [50, 50, 34]


def test_status_refuses_unknown_and_batch_views(
    tmp_path: Path, redis_streams: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    clicks, orders = redis_streams
    make_repo(tmp_path, REDIS_FEATURES.replace("{clicks}", clicks).replace("{orders}", orders))
    code, _, err = run_cli(capsys, "-c", str(tmp_path), "stream", "status", "-v", "lst_click")
    assert code == 1
    assert "'lst_click'" in err
    assert "last_click" in err  # the suggestion
    assert "Traceback" not in err
    code, _, err = run_cli(capsys, "-c", str(tmp_path), "stream", "status", "-v", "profile")
    assert code == 1
    assert "'profile'" in err
    assert "not a stream source" in err



def test_status_without_stream_views_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    batch_only = REDIS_FEATURES.split("clicks = ", maxsplit=1)[0].replace("RedisStreamSource, ", "") + (
        'profiles = FileSource(name="profiles", path="data/profiles.parquet", timestamp_field="event_timestamp")\n'
        "profile = FeatureView(name=\"profile\", entities=[user], ttl=timedelta(0),\n"
        "                      schema=[Field(name=\"amount\", dtype=Float64)], source=profiles)\n"
    )
    make_repo(tmp_path, batch_only)
    code, out, _ = run_cli(capsys, "-c", str(tmp_path), "stream", "status")
    assert code == 0
    assert "no feature view reads a stream source" in out
    code, out, _ = run_cli(capsys, "-c", str(tmp_path), "stream", "status", "-o", "json")
    assert (code, json.loads(out)["lag"]) == (0, [])

KAFKA_FEATURES = """\
from datetime import timedelta

from potluck import Entity, FeatureView, Field, KafkaSource, ValueType
from potluck.data_format import JsonFormat
from potluck.types import Float64

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
payments = KafkaSource(name="payments", kafka_bootstrap_servers="{bootstrap}", topic="{topic}",
                       timestamp_field="event_timestamp",
                       message_format=JsonFormat(schema_json="user_id integer, event_timestamp timestamp, amount double"))
last_payment = FeatureView(name="last_payment", entities=[user], ttl=timedelta(0),
                           schema=[Field(name="amount", dtype=Float64)], source=payments)
"""


def test_kafka_status_exact_lag_per_partition(
    tmp_path: Path, kafka_broker: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from stream_support import TEST_CONSUMER_SETTINGS, create_topic, produce_one_per_batch, unique_name

    topic = unique_name("status")
    create_topic(kafka_broker, topic, partitions=2)
    produce_one_per_batch(kafka_broker, topic, [b"{}"] * 12, partition=0)
    produce_one_per_batch(kafka_broker, topic, [b"{}"] * 7, partition=1)
    features = KAFKA_FEATURES.replace("{bootstrap}", kafka_broker).replace("{topic}", topic)
    store = make_repo(tmp_path, features)
    (tmp_path / "feature_store.yaml").write_text(
        (tmp_path / "feature_store.yaml").read_text()
        + f"stream:\n  consumer_group: {unique_name('g')}\n  settings: {json.dumps(TEST_CONSUMER_SETTINGS)}\n"
    )
    store = FeatureStore(repo_path=tmp_path)
    group = store.config.stream.group("shop")
    source = store.list_data_sources()[0]
    options = ConsumerOptions(group=group, consumer_name="status-test", settings=TEST_CONSUMER_SETTINGS)
    consumer = open_consumer(source, options)
    try:
        got: list[StreamMessage] = []
        for _ in range(100):
            got += consumer.poll(19 - len(got), 0.5)
            if len(got) >= 19:
                break
        assert len(got) == 19
        consumer.commit({f"{topic}:0": 4, f"{topic}:1": 1})  # 5 and 2 messages written
    finally:
        consumer.close()

    code, out, err = run_cli(capsys, "-c", str(tmp_path), "stream", "status", "-o", "json")
    assert code == 0, err
    assert json.loads(out) == {
        "consumer_group": group,
        "lag": [
            {"view": "last_payment", "source": "payments", "partition": f"{topic}:0", "lag": 7},
            {"view": "last_payment", "source": "payments", "partition": f"{topic}:1", "lag": 5},
        ],
    }
    code, out, err = run_cli(capsys, "-c", str(tmp_path), "stream", "status")
    assert code == 0, err
    assert table_rows(out) == [
        ["last_payment", "payments", f"{topic}:0", "7"],
        ["last_payment", "payments", f"{topic}:1", "5"],
    ]


def test_an_unreachable_server_is_reported_per_source(
    tmp_path: Path, redis_streams: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from tests_support import free_port

    clicks, orders = redis_streams
    features = REDIS_FEATURES.replace("{clicks}", clicks).replace("{orders}", orders)
    # orders' server is not running; clicks' is, and is still read.
    features = features.replace(
        'name="orders", stream="' + orders + '", connection_string="127.0.0.1:6379"',
        'name="orders", stream="' + orders + f'", connection_string="127.0.0.1:{free_port()}"',
    )
    make_repo(tmp_path, features)
    xadd(clicks, 3)
    code, out, err = run_cli(capsys, "-c", str(tmp_path), "stream", "status", "-o", "json")
    assert code == 1, (out, err)
    rows = json.loads(out)["lag"]
    assert [(r["view"], r["partition"], r["lag"]) for r in rows] == [
        ("click_stream", clicks, 3),
        ("last_click", clicks, 3),
        ("last_order", None, None),
    ]
    assert "error" not in rows[0]
    assert rows[2]["error"]
    code, out, _ = run_cli(capsys, "-c", str(tmp_path), "stream", "status")
    assert code == 1
    assert table_rows(out)[2][:3] == ["last_order", "orders", ""]
    assert table_rows(out)[2][3].startswith("unavailable:")
