"""The Kafka stream plugin against a real Tansu broker."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from potluck import KafkaSource
from potluck.data_format import JsonFormat
from potluck.definitions.errors import PotluckError
from potluck.streaming.decode import DeadLetter
from potluck.streaming.sources import (
    ConsumerOptions,
    StreamConsumer,
    StreamMessage,
    StreamUnavailableError,
    open_consumer,
    read_lag,
)
from potluck.streaming.sources.kafka_dead_letter import KafkaDeadLetterTopic
from stream_support import (
    TEST_CONSUMER_SETTINGS,
    create_topic,
    produce,
    produce_one_per_batch,
    start_tansu,
    stop_tansu,
    unique_name,
)
from tests_support import free_port

pytest.importorskip("confluent_kafka")


def source_for(bootstrap: str, topic: str, **settings: Any) -> KafkaSource:
    return KafkaSource(
        name="events",
        kafka_bootstrap_servers=bootstrap,
        topic=topic,
        timestamp_field="ts",
        message_format=JsonFormat(schema_json="id bigint, ts timestamp"),
        kafka_settings=settings or None,
    )


def options(group: str, reset: str = "earliest", **settings: Any) -> ConsumerOptions:
    return ConsumerOptions(
        group=group, consumer_name="worker-1", auto_offset_reset=reset, settings={**TEST_CONSUMER_SETTINGS, **settings}
    )


def poll_until(consumer: StreamConsumer, count: int, deadline_s: float = 30) -> list[StreamMessage]:
    """Poll until `count` messages arrived (failing after `deadline_s`), then a little more to catch extras."""
    got: list[StreamMessage] = []
    deadline = time.monotonic() + deadline_s
    while len(got) < count:
        assert time.monotonic() < deadline, f"got {len(got)} of {count} messages"
        got.extend(consumer.poll(100, 0.5))
    got.extend(consumer.poll(100, 0.3))
    return got


def wait_assigned(consumer: StreamConsumer, partitions: int, deadline_s: float = 30) -> None:
    """Poll (nothing expected) until the consumer owns `partitions` partitions."""
    deadline = time.monotonic() + deadline_s
    while len(consumer.committed()) < partitions:
        assert time.monotonic() < deadline, "the consumer was never assigned its partitions"
        assert consumer.poll(10, 0.2) == []


@pytest.fixture
def topic(kafka_broker: str) -> str:
    name = unique_name("events")
    create_topic(kafka_broker, name, partitions=3)
    return name


@pytest.fixture
def consumers() -> Iterator[list[StreamConsumer]]:
    opened: list[StreamConsumer] = []
    yield opened
    for consumer in opened:
        consumer.close()


def open_(consumers: list[StreamConsumer], source: KafkaSource, opts: ConsumerOptions) -> StreamConsumer:
    consumer = open_consumer(source, opts)
    consumers.append(consumer)
    return consumer


def by_partition(messages: list[StreamMessage]) -> dict[str, list[tuple[int, bytes | None, bytes | None]]]:
    out: dict[str, list[tuple[int, bytes | None, bytes | None]]] = {}
    for m in messages:
        out.setdefault(m.partition, []).append((m.offset, m.key, m.value))
    return out


def test_messages_of_several_partitions_in_order(
    kafka_broker: str, topic: str, consumers: list[StreamConsumer]
) -> None:
    expected: dict[str, list[tuple[int, bytes | None, bytes | None]]] = {}
    for p in range(3):
        values = [f"p{p}-{i}".encode() for i in range(5 + p)]
        keys = [f"k{i}".encode() for i in range(5 + p)]
        produce(kafka_broker, topic, values, keys=keys, partition=p)
        expected[f"{topic}:{p}"] = [(i, keys[i], values[i]) for i in range(len(values))]
    before_ms = int(time.time() * 1000) - 60_000
    consumer = open_(consumers, source_for(kafka_broker, topic), options(unique_name("g")))
    got = poll_until(consumer, sum(len(v) for v in expected.values()))
    assert by_partition(got) == expected
    assert all(m.timestamp_ms is not None and m.timestamp_ms > before_ms for m in got)


def test_commit_then_resume_and_uncommitted_delivered_again(
    kafka_broker: str, topic: str, consumers: list[StreamConsumer]
) -> None:
    source, group = source_for(kafka_broker, topic), unique_name("g")
    produce(kafka_broker, topic, [f"a{i}".encode() for i in range(6)], partition=0)
    produce(kafka_broker, topic, [f"b{i}".encode() for i in range(4)], partition=1)
    first = open_(consumers, source, options(group))
    got = poll_until(first, 10)
    assert len(got) == 10
    first.commit({f"{topic}:0": 2, f"{topic}:1": 3})  # a0..a2 and all of b written
    assert first.committed() == {f"{topic}:0": 2, f"{topic}:1": 3, f"{topic}:2": -1}
    first.close()

    second = open_(consumers, source, options(group))
    again = poll_until(second, 3)
    assert by_partition(again) == {f"{topic}:0": [(i, None, f"a{i}".encode()) for i in range(3, 6)]}


def test_new_group_earliest_sees_all_latest_only_new(
    kafka_broker: str, topic: str, consumers: list[StreamConsumer]
) -> None:
    source = source_for(kafka_broker, topic)
    # One per batch: Tansu's "latest" is the last batch's base offset + 1.
    produce_one_per_batch(kafka_broker, topic, [b"old1", b"old2"], partition=2)
    latest = open_(consumers, source, options(unique_name("g"), reset="latest"))
    wait_assigned(latest, 3)
    assert latest.poll(10, 1.0) == []
    produce(kafka_broker, topic, [b"new1"], partition=2)
    assert [m.value for m in poll_until(latest, 1)] == [b"new1"]

    earliest = open_(consumers, source, options(unique_name("g"), reset="earliest"))
    assert [m.value for m in poll_until(earliest, 3)] == [b"old1", b"old2", b"new1"]


def test_settings_pass_through_and_clear_errors(kafka_broker: str, topic: str, consumers: list[StreamConsumer]) -> None:
    with pytest.raises(PotluckError, match=r"events.*session\.timeout\.ms.*worker's stream settings"):
        open_consumer(source_for(kafka_broker, topic), options(unique_name("g"), **{"session.timeout.ms": "abc"}))
    with pytest.raises(PotluckError, match=r"No such configuration property.*no\.such\.property.*kafka_settings"):
        open_consumer(source_for(kafka_broker, topic, **{"no.such.property": 1}), options(unique_name("g")))
    with pytest.raises(PotluckError, match=r"auto_offset_reset is 'newest'; use 'earliest' or 'latest'"):
        open_consumer(source_for(kafka_broker, topic), options(unique_name("g"), reset="newest"))
    with pytest.raises(PotluckError, match=r"enable\.auto\.commit.*not allowed"):
        open_consumer(source_for(kafka_broker, topic), options(unique_name("g"), **{"enable.auto.commit": True}))
    # The source's settings, then the worker's (later wins); client.id and booleans accepted.
    source = source_for(kafka_broker, topic, **{"client.id": "from-source", "check.crcs": True})
    consumer = open_(consumers, source, options(unique_name("g"), **{"client.id": "from-worker"}))
    produce(kafka_broker, topic, [b"x"], partition=0)
    assert [m.value for m in poll_until(consumer, 1)] == [b"x"]


def test_lag_is_exact(kafka_broker: str, topic: str, consumers: list[StreamConsumer]) -> None:
    produce_one_per_batch(kafka_broker, topic, [f"v{i}".encode() for i in range(7)], partition=0)
    produce_one_per_batch(kafka_broker, topic, [f"w{i}".encode() for i in range(3)], partition=1)
    source, group = source_for(kafka_broker, topic), unique_name("g")
    consumer = open_(consumers, source, options(group))
    poll_until(consumer, 10)
    expected = {f"{topic}:0": 7, f"{topic}:1": 3, f"{topic}:2": 0}
    assert consumer.lag() == expected
    assert read_lag(source, options(group)) == expected
    consumer.commit({f"{topic}:0": 4, f"{topic}:1": 2})
    expected = {f"{topic}:0": 2, f"{topic}:1": 0, f"{topic}:2": 0}
    assert consumer.lag() == expected
    assert read_lag(source, options(group)) == expected


def test_read_lag_does_not_disturb_a_running_consumer(
    kafka_broker: str, topic: str, consumers: list[StreamConsumer]
) -> None:
    source, group = source_for(kafka_broker, topic), unique_name("g")
    consumer = open_(consumers, source, options(group))
    wait_assigned(consumer, 3)
    produce_one_per_batch(kafka_broker, topic, [b"1", b"2", b"3"], partition=1)
    got = poll_until(consumer, 3)
    consumer.commit({f"{topic}:1": got[0].offset})
    for _ in range(3):
        assert read_lag(source, options(group)) == {f"{topic}:0": 0, f"{topic}:1": 2, f"{topic}:2": 0}
    # Still the owner of every partition: a new message arrives, and a commit is recorded (not skipped).
    produce(kafka_broker, topic, [b"4"], partition=2)
    assert [m.value for m in poll_until(consumer, 1)] == [b"4"]
    assert len(consumer.committed()) == 3
    consumer.commit({f"{topic}:2": 0})
    assert consumer.committed()[f"{topic}:2"] == 0


def test_commit_of_a_partition_lost_in_a_rebalance_is_skipped(
    kafka_broker: str, topic: str, consumers: list[StreamConsumer]
) -> None:
    source, group = source_for(kafka_broker, topic), unique_name("g")
    for p in range(3):
        produce_one_per_batch(kafka_broker, topic, [f"p{p}-{i}".encode() for i in range(4)], partition=p)
    first = open_(consumers, source, options(group))
    poll_until(first, 12)
    second = open_(consumers, source, options(group))
    deadline = time.monotonic() + 60
    while not (first.committed() and second.committed() and len(first.committed()) + len(second.committed()) == 3):
        assert time.monotonic() < deadline, "the group never rebalanced over both consumers"
        first.poll(100, 0.1)
        second.poll(100, 0.1)
    mine, theirs = sorted(first.committed()), sorted(second.committed())
    second.commit(dict.fromkeys(theirs, 1))
    # The first consumer still holds positions of every partition it read; only its own are committed.
    first.commit({f"{topic}:{p}": 3 for p in range(3)})
    expected = {**dict.fromkeys(mine, 3), **dict.fromkeys(theirs, 1)}
    assert {**first.committed(), **second.committed()} == expected
    assert read_lag(source, options(group)) == {name: 3 - offset for name, offset in expected.items()}


def test_dead_letter_topic_round_trip(kafka_broker: str, consumers: list[StreamConsumer]) -> None:
    dead_topic = unique_name("dead")
    create_topic(kafka_broker, dead_topic, partitions=1)
    letters = [
        DeadLetter("events", "events:2", 17, b"k", b"{bad json", "message is not JSON"),
        DeadLetter("events", "events:0", 3, None, b'{"id": "x"}', "field 'id' is 'x', not an Int64"),
    ]
    KafkaDeadLetterTopic(kafka_broker, dead_topic, {}).send(letters)
    from confluent_kafka import Consumer

    reader = Consumer(
        {"bootstrap.servers": kafka_broker, "group.id": unique_name("g"), "auto.offset.reset": "earliest",
         **TEST_CONSUMER_SETTINGS}
    )  # fmt: skip
    try:
        reader.subscribe([dead_topic])
        got: list[Any] = []
        deadline = time.monotonic() + 30
        while len(got) < 2:
            assert time.monotonic() < deadline
            got.extend(m for m in reader.consume(10, 0.5) if m.error() is None)
    finally:
        reader.close()
    seen = [(m.key(), m.value(), dict(m.headers())) for m in got]
    assert seen == [
        (
            letter.key,
            letter.value,
            {
                "potluck-reason": letter.reason.encode(),
                "potluck-source": b"events",
                "potluck-partition": letter.partition.encode(),
                "potluck-offset": str(letter.offset).encode(),
            },
        )
        for letter in letters
    ]


def _signal(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    os.kill(proc.pid, sig)


def _raises_unavailable(call: Any, bound_s: float) -> float:
    """Call until it raises StreamUnavailableError (returning nothing meanwhile); the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < bound_s:
        try:
            assert call() == []
        except StreamUnavailableError as err:
            message = str(err)
            break
    else:
        pytest.fail(f"no StreamUnavailableError within {bound_s} s")
    assert "Kafka broker is unavailable" in message
    return time.monotonic() - started


def test_broker_stopped_then_resumed(consumers: list[StreamConsumer]) -> None:
    port = free_port()
    proc = start_tansu(port)
    try:
        bootstrap = f"127.0.0.1:{port}"
        topic = unique_name("events")
        create_topic(bootstrap, topic, partitions=1)
        produce(bootstrap, topic, [f"a{i}".encode() for i in range(5)], partition=0)
        source, group = source_for(bootstrap, topic), unique_name("g")
        fast = {"socket.timeout.ms": 2000, "socket.connection.setup.timeout.ms": 2000}
        consumer = open_(consumers, source, options(group, **fast))
        first = poll_until(consumer, 5)
        assert [m.value for m in first] == [f"a{i}".encode() for i in range(5)]
        consumer.commit({f"{topic}:0": 4})

        _signal(proc, signal.SIGSTOP)
        try:
            # Committed before the group session (6 s) expires, while the partition is still assigned:
            # the commit fails. On a loaded machine the client may declare the assignment lost first;
            # then the commit is skipped (a revoked partition is never committed), never reported done.
            failure = ""
            try:
                consumer.commit({f"{topic}:0": 4})
            except StreamUnavailableError as err:
                failure = str(err)
            if failure:
                assert "Kafka broker is unavailable while committing" in failure
            else:
                assert not consumer.ready(), "a commit to a stopped broker neither failed nor was skipped"
            took = _raises_unavailable(lambda: consumer.poll(10, 0.5), bound_s=30)
            print(f"poll raised StreamUnavailableError after {took:.1f} s more")
        finally:
            _signal(proc, signal.SIGCONT)

        produce(bootstrap, topic, [f"b{i}".encode() for i in range(5)], partition=0)
        got: list[StreamMessage] = []
        deadline = time.monotonic() + 60
        while len(got) < 5:
            assert time.monotonic() < deadline, f"after the broker resumed, got {got}"
            try:
                got.extend(consumer.poll(100, 0.5))
            except StreamUnavailableError:
                time.sleep(0.2)  # the worker backs off and polls again
        got.extend(consumer.poll(100, 0.5))
        assert [(m.offset, m.value) for m in got] == [(5 + i, f"b{i}".encode()) for i in range(5)]
        consumer.commit({f"{topic}:0": got[-1].offset})
        assert consumer.committed() == {f"{topic}:0": 9}
    finally:
        for consumer in consumers:
            consumer.close()
        consumers.clear()
        stop_tansu(proc)
