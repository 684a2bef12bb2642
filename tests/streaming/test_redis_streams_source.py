"""The Redis Streams plugin against real redis-server processes: order, offsets, commits, the lease, lag, faults."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from potluck.data_format import JsonFormat
from potluck.definitions.errors import ConfigError
from potluck.definitions.stream_sources import RedisStreamSource
from potluck.streaming.sources import (
    ConsumerOptions,
    StreamConsumer,
    StreamMessage,
    StreamUnavailableError,
    open_consumer,
    read_lag,
)
from potluck.streaming.sources.redis_streams import entry_id, entry_offset
from tests_support import REDIS_HOST, REDIS_PORT, free_port, require_server, start_redis_server

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_client() -> Iterator[Any]:
    require_server("Redis", REDIS_HOST, REDIS_PORT)
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    yield client
    client.close()


@pytest.fixture
def stream(redis_client: Any) -> Iterator[str]:
    """A unique stream key; it and every key under it (leases) are deleted afterwards."""
    name = f"potluck-test:{uuid.uuid4().hex}"
    yield name
    keys = [name, *redis_client.scan_iter(match=f"{name}:*")]
    redis_client.delete(*keys)


def _source(stream: str, connection: str = f"{REDIS_HOST}:{REDIS_PORT}", **extra: Any) -> RedisStreamSource:
    return RedisStreamSource(name="tx", stream=stream, connection_string=connection, timestamp_field="ts", **extra)


def _open(source: RedisStreamSource, name: str = "w1", group: str = "g", **settings: Any) -> StreamConsumer:
    reset = settings.pop("auto_offset_reset", "earliest")
    return open_consumer(
        source, ConsumerOptions(group=group, consumer_name=name, auto_offset_reset=reset, settings=settings)
    )


def _add(client: Any, stream: str, n: int, start: int = 0) -> list[bytes]:
    return [client.xadd(stream, {"user_id": str(i), "amount": f"{i}.5", "ts": f"2024-01-01T00:00:{i % 60:02d}"}) for i in range(start, start + n)]  # fmt: skip


def _drain(consumer: StreamConsumer, want: int, batch: int = 7) -> list[StreamMessage]:
    """Poll until `want` messages came (a deadline only guards against a hang)."""
    out: list[StreamMessage] = []
    deadline = time.monotonic() + 30
    while len(out) < want:
        assert time.monotonic() < deadline, f"only {len(out)} of {want} messages arrived"
        out.extend(consumer.poll(batch, 0.2))
    return out


def _ids(messages: list[StreamMessage]) -> list[str]:
    return [entry_id(m.offset) for m in messages]


def test_offsets_map_entry_ids_in_order_and_back() -> None:
    ids = ["0-0", "0-1", "1-0", "1700000000000-5", "1700000000000-4194303", "1700000000001-0"]
    offsets = [entry_offset(i) for i in ids]
    assert offsets == sorted(offsets)
    assert [entry_id(o) for o in offsets] == ids
    assert max(offsets) < 2**63
    with pytest.raises(Exception, match="entry ID 5-4194304 cannot be a stream offset"):
        entry_offset("5-4194304", "s")


def test_entries_arrive_in_id_order_with_their_fields_and_offsets(redis_client: Any, stream: str) -> None:
    added = _add(redis_client, stream, 50)
    consumer = _open(_source(stream))
    try:
        got = _drain(consumer, 50)
        assert consumer.poll(10, 0.05) == []
    finally:
        consumer.close()
    expected = redis_client.xrange(stream)
    assert [e[0] for e in expected] == added
    assert [m.offset for m in got] == [entry_offset(e[0]) for e in expected]
    assert [m.fields for m in got] == [e[1] for e in expected]
    assert all(m.partition == stream and m.value is None for m in got)
    assert [m.timestamp_ms for m in got] == [int(e[0].split(b"-")[0]) for e in expected]


def test_a_message_format_reads_the_value_field(redis_client: Any, stream: str) -> None:
    redis_client.xadd(stream, {"payload": b'{"user_id": 1}', "other": b"x"})
    redis_client.xadd(stream, {"other": b"no payload"})
    fmt = JsonFormat(schema_json="user_id bigint")
    consumer = _open(_source(stream, message_format=fmt, value_field="payload"))
    try:
        first, second = _drain(consumer, 2)
    finally:
        consumer.close()
    assert first.value == b'{"user_id": 1}'
    assert second.value is None
    assert second.fields == {b"other": b"no payload"}


def test_restart_resumes_after_the_last_ack(redis_client: Any, stream: str) -> None:
    _add(redis_client, stream, 30)
    everything = [entry_offset(e[0]) for e in redis_client.xrange(stream)]
    source = _source(stream)
    first = _open(source)
    try:
        assert first.committed() == {stream: -1}
        got = _drain(first, 20, batch=20)
        first.commit({stream: got[11].offset})
        assert first.committed() == {stream: everything[11]}
    finally:
        first.close()
    again = _open(source)  # same consumer name: its own pending entries come back first
    try:
        assert again.committed() == {stream: everything[11]}
        rest = _drain(again, 18)
        assert [m.offset for m in rest] == everything[12:]
        again.commit({stream: rest[-1].offset})
        assert again.committed() == {stream: everything[-1]}
    finally:
        again.close()
    third = _open(source)
    try:
        assert third.poll(10, 0.05) == []
        assert third.committed() == {stream: everything[-1]}
    finally:
        third.close()


def test_uncommitted_entries_are_redelivered_to_another_consumer_name(redis_client: Any, stream: str) -> None:
    _add(redis_client, stream, 25)
    everything = [entry_offset(e[0]) for e in redis_client.xrange(stream)]
    source = _source(stream)
    first = _open(source, "w1")
    try:
        got = _drain(first, 15, batch=5)
        first.commit({stream: got[4].offset})
    finally:
        first.close()
    second = _open(source, "w2")
    try:
        rest = _drain(second, 20)
    finally:
        second.close()
    assert [m.offset for m in rest] == everything[5:]
    assert redis_client.xpending(stream, "g")["pending"] == 20


def test_earliest_and_latest_for_a_new_group(redis_client: Any, stream: str) -> None:
    _add(redis_client, stream, 5)
    source = _source(stream)
    early = _open(source, group="early")
    late = _open(source, group="late", auto_offset_reset="latest")
    try:
        assert late.poll(10, 0.05) == []
        newer = _add(redis_client, stream, 3, start=5)
        assert [m.fields[b"user_id"] for m in _drain(early, 8)] == [str(i).encode() for i in range(8)]
        assert _ids(_drain(late, 3)) == [i.decode() for i in newer]
    finally:
        early.close()
        late.close()


def test_a_second_consumer_waits_for_the_lease_and_takes_over_without_loss(redis_client: Any, stream: str) -> None:
    _add(redis_client, stream, 40)
    everything = [entry_offset(e[0]) for e in redis_client.xrange(stream)]
    source = _source(stream)
    first = _open(source, "w1")
    standby = _open(source, "w2")
    try:
        got = _drain(first, 20, batch=10)
        for _ in range(3):
            assert standby.poll(10, 0.05) == []  # the lease is held: nothing, not even new entries
        first.commit({stream: got[13].offset})
    finally:
        first.close()  # releases the lease
    try:
        taken = _drain(standby, 26)
        assert standby.poll(10, 0.05) == []
    finally:
        standby.close()
    assert [m.offset for m in taken] == everything[14:]  # in order, nothing lost, no acked entry again


def test_an_expired_lease_is_taken_over_and_the_old_holder_reads_nothing(redis_client: Any, stream: str) -> None:
    _add(redis_client, stream, 12)
    everything = [entry_offset(e[0]) for e in redis_client.xrange(stream)]
    source = _source(stream)
    stale = _open(source, "w1", lease_ttl_ms=300)
    successor = _open(source, "w2", lease_ttl_ms=300)
    try:
        got = _drain(stale, 6, batch=6)
        stale.commit({stream: got[1].offset})
        # `stale` stops polling (a paused worker): its lease expires and the standby takes over.
        taken = _drain(successor, 10, batch=4)
        assert [m.offset for m in taken] == everything[2:]
        _add(redis_client, stream, 2, start=12)
        assert stale.poll(10, 0.05) == []  # fenced: it no longer holds the lease
        assert [m.fields[b"user_id"] for m in _drain(successor, 2)] == [b"12", b"13"]
        successor.close()  # nothing committed: all but the first two entries are pending
        # The old holder takes the lease back: it gets the pending entries it had not delivered yet, in
        # order, and never one at or below what it delivered before (its worker still holds those).
        back = _drain(stale, 8, batch=3)
        assert [m.offset for m in back] == everything[6:] + [
            entry_offset(e[0]) for e in redis_client.xrange(stream)[12:]
        ]
        stale.commit({stream: back[-1].offset})
        assert redis_client.xpending(stream, "g")["pending"] == 0  # its earlier deliveries were acked too
    finally:
        stale.close()
        successor.close()


def test_lag_counts_entries_not_acknowledged(redis_client: Any, stream: str) -> None:
    source = _source(stream)
    options = ConsumerOptions(group="g", consumer_name="w1")
    assert read_lag(source, options) == {stream: 0}  # no stream yet
    _add(redis_client, stream, 30)
    assert read_lag(source, options) == {stream: 30}  # no group yet: the whole stream
    consumer = _open(source)
    try:
        got = _drain(consumer, 20, batch=20)
        consumer.commit({stream: got[11].offset})
        assert consumer.lag() == {stream: 30 - 12}
        assert read_lag(source, options) == {stream: 30 - 12}
        undelivered = redis_client.xrange(stream, min=f"({entry_id(got[-1].offset)}", count=3)
        redis_client.xdel(stream, undelivered[2][0])  # deleted before being read: Redis loses its count
        assert read_lag(source, options) == {stream: 30 - 12 - 1}
        assert consumer.lag() == {stream: 30 - 12 - 1}
    finally:
        consumer.close()
    assert not redis_client.exists(f"{stream}:potluck:lease:g")


@contextmanager
def private_redis(folder: Path, *extra: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    proc = start_redis_server(port, folder, *extra)
    try:
        yield proc, port
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_frozen_server_is_unavailable_then_resumes(tmp_path: Path) -> None:
    import redis

    with private_redis(tmp_path) as (proc, port):
        client = redis.Redis(port=port)
        _add(client, "s", 3)
        source = _source("s", f"127.0.0.1:{port},socket_timeout=1,socket_connect_timeout=1")
        consumer = _open(source)
        try:
            got = _drain(consumer, 3)
            outcome: list[object] = []

            def poll() -> None:
                try:
                    outcome.append(consumer.poll(10, 5.0))
                except Exception as err:  # the test inspects it
                    outcome.append(err)

            waiting = threading.Thread(target=poll)
            waiting.start()
            time.sleep(0.1)  # let it block on the empty stream
            os.kill(proc.pid, signal.SIGSTOP)
            waiting.join(timeout=30)
            assert not waiting.is_alive()
            assert isinstance(outcome[0], StreamUnavailableError), outcome
            assert "unreachable" in str(outcome[0])
            with pytest.raises(StreamUnavailableError):
                consumer.commit({"s": got[-1].offset})
            os.kill(proc.pid, signal.SIGCONT)
            _add(client, "s", 2, start=3)
            consumer.commit({"s": got[-1].offset})
            assert [m.fields[b"user_id"] for m in _drain(consumer, 2)] == [b"3", b"4"]
            assert client.xpending("s", "g")["pending"] == 2
        finally:
            consumer.close()
            client.close()


def test_a_wrong_password_is_a_clear_error(tmp_path: Path) -> None:
    with private_redis(tmp_path, "--requirepass", "s3cret") as (_, port):
        good = _open(_source("s", f"127.0.0.1:{port},password=s3cret"))
        good.close()
        bad = _source("s", f"127.0.0.1:{port},password=wrong")
        with pytest.raises(ConfigError, match=r"RedisStreamSource 'tx' .*authentication failed.*fix the password"):
            _open(bad)
        with pytest.raises(ConfigError, match="authentication failed"):
            read_lag(bad, ConsumerOptions(group="g", consumer_name="w"))
