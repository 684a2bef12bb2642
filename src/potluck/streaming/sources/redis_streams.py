"""The Redis Streams plugin: a `RedisStreamSource` read through a consumer group, in ID order.

The worker skips, per entity, events at or below the highest offset it already applied from a
partition, so delivery must follow the stream's ID order. One consumer of a group reads a stream
at a time: it holds a lease key (`<stream>:potluck:lease:<group>`, renewed on every poll) and any
other consumer of the group waits as a hot standby, its polls returning nothing. Every read runs
in a script that first checks the lease, so a consumer that lost it (paused past its expiry)
cannot read behind its successor's back. On taking the lease, a consumer first claims and
re-delivers the whole group's pending entries (read but not acknowledged, by whichever
consumer), then reads new entries.

Offsets: an entry ID "ms-seq" is `ms << 20 | seq` (grows with the ID, fits in int64 until the
year 2248, reversible so a commit can XACK).
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from potluck.definitions import DataSource
from potluck.definitions.errors import ConfigError, MissingExtraError, PotluckError
from potluck.definitions.stream_sources import RedisStreamSource
from potluck.online.redis_connection import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_RETRIES,
    DEFAULT_SOCKET_TIMEOUT,
    count_option,
    parse_connection_string,
    seconds_option,
    truthy,
)
from potluck.streaming.sources import ConsumerOptions, StreamConsumer, StreamMessage, StreamUnavailableError

SEQ_BITS = 20
MAX_SEQ = 1 << SEQ_BITS
MAX_MS = 1 << (63 - SEQ_BITS)
DEFAULT_LEASE_TTL_MS = 10_000
ACK_CHUNK = 1_000
# Consumer settings read here; every other key of `ConsumerOptions.settings` goes to redis.Redis.
LEASE_TTL_SETTING = "lease_ttl_ms"

# KEYS[1]: the lease, KEYS[2]: the stream; ARGV[1]: this consumer's token, ARGV[2]: lease ms,
# ARGV[3...]: a command on the stream, run only while this consumer holds the lease.
# Returns {0} without the lease, else {1, the command's reply}.
FENCED_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {0}
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, redis.call(unpack(ARGV, 3))}
"""
RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def entry_offset(entry_id: bytes | str, stream: str = "") -> int:
    """The offset of the entry ID "ms-seq": `ms << 20 | seq`."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms_text, _, seq_text = text.partition("-")
    ms, seq = int(ms_text), int(seq_text or 0)
    if seq >= MAX_SEQ or ms >= MAX_MS:
        raise PotluckError(
            f"Redis stream '{stream}': entry ID {text} cannot be a stream offset (sequence numbers must be "
            f"below {MAX_SEQ} and milliseconds below {MAX_MS}); add entries with '*' IDs"
        )
    return ms << SEQ_BITS | seq


def entry_id(offset: int) -> str:
    """The entry ID of an offset (the inverse of `entry_offset`)."""
    return f"{offset >> SEQ_BITS}-{offset & (MAX_SEQ - 1)}"


def _source(source: DataSource) -> RedisStreamSource:
    if not isinstance(source, RedisStreamSource):
        raise PotluckError(f"data source '{source.name}' is not a RedisStreamSource")
    return source


def _client(source: RedisStreamSource, settings: Mapping[str, Any]) -> Any:
    try:
        import redis
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry
    except ImportError:
        raise MissingExtraError("redis", "redis") from None
    where = f"RedisStreamSource '{source.name}': 'connection_string'"
    nodes, options = parse_connection_string(source.connection_string, where)
    host, port = nodes[0]
    kwargs: dict[str, Any] = {
        "host": host,
        "port": port,
        "db": count_option(options, "db", 0, where),
        "username": options.get("username"),
        "password": options.get("password"),
        "ssl": truthy(options.get("ssl", "false")),
        "socket_connect_timeout": seconds_option(options, "socket_connect_timeout", DEFAULT_CONNECT_TIMEOUT, where),
        "socket_timeout": seconds_option(options, "socket_timeout", DEFAULT_SOCKET_TIMEOUT, where),
        # One quick retry for a pooled connection a restarted server closed; a timeout is not retried.
        "retry": Retry(
            ExponentialBackoff(cap=0.05, base=0.01),
            count_option(options, "retries", DEFAULT_RETRIES, where),
            supported_errors=(redis.exceptions.ConnectionError,),
        ),
    }
    if "ssl_cert_reqs" in options:
        kwargs["ssl_cert_reqs"] = options["ssl_cert_reqs"]
    kwargs.update({k: v for k, v in settings.items() if k != LEASE_TTL_SETTING})
    return redis.Redis(**kwargs)


@contextmanager
def _errors(source: RedisStreamSource) -> Iterator[None]:
    """Redis errors as Potluck errors naming the source: unreachable -> `StreamUnavailableError`."""
    import redis

    where = f"RedisStreamSource '{source.name}' (Redis at {source.connection_string.split(',')[0]})"
    try:
        yield
    except redis.exceptions.AuthenticationError as err:
        raise ConfigError(f"{where}: authentication failed ({err}); fix the password in 'connection_string'") from None
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as err:
        raise StreamUnavailableError(f"{where} is unreachable: {err}") from None
    except redis.exceptions.ResponseError as err:
        text = str(err)
        if text.startswith(("WRONGPASS", "NOAUTH", "NOPERM")):
            raise ConfigError(f"{where}: {text}; fix the credentials in 'connection_string'") from None
        if text.startswith("WRONGTYPE"):
            raise PotluckError(f"{where}: key '{source.stream}' is not a stream; fix 'stream'") from None
        raise PotluckError(f"{where}: Redis refused a command: {text}") from None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _group_lag(client: Any, source: RedisStreamSource, group: str) -> int:
    """Entries of the stream the group has not acknowledged (trimmed ones cannot be counted)."""
    try:
        groups = client.xinfo_groups(source.stream)
    except Exception as err:  # a missing stream is an empty one
        if "no such key" in str(err).lower():
            return 0
        raise
    info = next((g for g in groups if _text(g.get("name")) == group), None)
    if info is None:
        return int(client.xlen(source.stream))
    pending = int(info.get("pending") or 0)
    lag = info.get("lag")
    if lag is None:  # Redis cannot tell after deletions: count what is still there
        last = _text(info.get("last-delivered-id") or "0-0")
        lag = _count_after(client, source.stream, last)
    return pending + int(lag)


def _count_after(client: Any, stream: str, last: str) -> int:
    count, start = 0, f"({last}"
    while True:
        page = client.xrange(stream, min=start, max="+", count=10_000)
        if not page:
            return count
        count += len(page)
        start = f"({_text(page[-1][0])}"


class RedisStreamConsumer:
    """A `StreamConsumer` of one Redis stream through a consumer group (see the module's doc)."""

    def __init__(self, source: RedisStreamSource, options: ConsumerOptions) -> None:
        self.source = source
        self.group = options.group
        self.consumer_name = options.consumer_name
        self.partition = source.stream
        self.token = f"{options.consumer_name}:{uuid.uuid4().hex}"  # who holds the lease, unique per session
        self.lease_key = f"{source.stream}:potluck:lease:{options.group}"
        raw_ttl = options.settings.get(LEASE_TTL_SETTING, DEFAULT_LEASE_TTL_MS)
        if not isinstance(raw_ttl, int) or raw_ttl < 100:
            raise ConfigError(f"RedisStreamSource '{source.name}': {LEASE_TTL_SETTING} must be a whole number >= 100")
        self.lease_ms = raw_ttl
        if options.auto_offset_reset not in ("earliest", "latest"):
            raise ConfigError(
                f"RedisStreamSource '{source.name}': auto_offset_reset must be 'earliest' or 'latest', "
                f"got {options.auto_offset_reset!r}"
            )
        self._start_id = "0" if options.auto_offset_reset == "earliest" else "$"
        self.client = _client(source, options.settings)
        self._socket_timeout = float(self.client.connection_pool.connection_kwargs.get("socket_timeout") or 3.0)
        self._value_field = source.value_field.encode() if source.message_format is not None else None
        self._holding = False
        self._claim_cursor: str | None = None  # while set, the group's pending entries are being re-read
        self._last_delivered = -1  # never deliver an offset at or below this in this session
        self._unacked: deque[tuple[int, bytes]] = deque()
        self._committed: int | None = None
        with _errors(source):
            self._fenced_sha = self.client.script_load(FENCED_LUA)
            self._create_group()

    def _create_group(self) -> None:
        import redis

        try:
            self.client.xgroup_create(self.source.stream, self.group, id=self._start_id, mkstream=True)
        except redis.exceptions.ResponseError as err:
            if not str(err).startswith("BUSYGROUP"):
                raise

    # ------------------------------------------------------------ the lease

    def _fenced(self, *command: Any) -> tuple[bool, Any]:
        reply = self.client.evalsha(
            self._fenced_sha, 2, self.lease_key, self.source.stream, self.token, self.lease_ms, *command
        )
        if int(reply[0]) != 1:
            self._holding = False
            return False, None
        return True, reply[1] if len(reply) > 1 else None

    def _take_lease(self) -> bool:
        if self.client.set(self.lease_key, self.token, nx=True, px=self.lease_ms):
            self._holding = True
            self._claim_cursor = "0-0"  # first re-deliver every pending entry of the group
            return True
        return False

    # ------------------------------------------------------------ reading

    def poll(self, max_messages: int, timeout: float) -> list[StreamMessage]:
        with _errors(self.source):
            if not self._holding and not self._take_lease():
                time.sleep(max(0.0, min(timeout, self.lease_ms / 1000)))
                if not self._take_lease():
                    return []
            if self._claim_cursor is not None:
                claimed = self._claim(max_messages)
                if claimed is None or claimed:
                    return claimed or []
            out = self._read_new(max_messages)
            if out or timeout <= 0 or not self._holding:
                return out
            self._wait(timeout)
            return self._read_new(max_messages)

    def _claim(self, max_messages: int) -> list[StreamMessage] | None:
        """Pending entries of the whole group claimed to this consumer, in ID order; None without the lease."""
        while self._claim_cursor is not None:
            held, reply = self._fenced(
                "XAUTOCLAIM", self.source.stream, self.group, self.consumer_name, 0, self._claim_cursor,
                "COUNT", max_messages,
            )  # fmt: skip
            if not held:
                return None
            cursor = _text(reply[0])
            self._claim_cursor = None if cursor == "0-0" else cursor
            out = self._messages(reply[1])
            if out:
                return out
        return []

    def _read_new(self, max_messages: int) -> list[StreamMessage]:
        held, reply = self._fenced(
            "XREADGROUP", "GROUP", self.group, self.consumer_name, "COUNT", max_messages,
            "STREAMS", self.source.stream, ">",
        )  # fmt: skip
        if not held or not reply:
            return []
        return self._messages(reply[0][1])

    def _wait(self, timeout: float) -> None:
        """Block until the stream has an entry after the newest one, at most `timeout` (and well within the
        lease and the socket timeout, so the lease is renewed and a slow answer is not taken for a dead server)."""
        block_ms = int(min(timeout * 1000, self.lease_ms / 3, self._socket_timeout * 500))
        if block_ms <= 0:
            return
        newest = self.client.xrevrange(self.source.stream, count=1)
        after = _text(newest[0][0]) if newest else "0-0"
        self.client.xread({self.source.stream: after}, count=1, block=block_ms)

    def _messages(self, entries: Sequence[Any]) -> list[StreamMessage]:
        out = []
        for entry in entries:
            if not entry or entry[1] is None:  # trimmed while pending: nothing to deliver
                continue
            raw_id, flat = entry[0], entry[1]
            offset = entry_offset(raw_id, self.source.stream)
            if offset <= self._last_delivered:  # delivered already in this session (before a lease handover)
                continue
            fields = {bytes(flat[i]): bytes(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}
            self._last_delivered = offset
            self._unacked.append((offset, bytes(raw_id)))
            value = fields.get(self._value_field) if self._value_field is not None else None
            out.append(
                StreamMessage(
                    partition=self.partition,
                    offset=offset,
                    value=value,
                    timestamp_ms=offset >> SEQ_BITS,
                    fields=fields,
                )
            )
        return out

    # ------------------------------------------------------------ positions

    def commit(self, positions: Mapping[str, int]) -> None:
        position = positions.get(self.partition)
        if position is None:
            return
        done = [raw for offset, raw in self._unacked if offset <= position]
        with _errors(self.source):
            for i in range(0, len(done), ACK_CHUNK):
                self.client.xack(self.source.stream, self.group, *done[i : i + ACK_CHUNK])
        while self._unacked and self._unacked[0][0] <= position:
            acked, _ = self._unacked.popleft()
            self._committed = max(self._committed if self._committed is not None else -1, acked)

    def committed(self) -> dict[str, int]:
        if self._committed is None:
            with _errors(self.source):
                self._committed = self._acked_before()
        return {self.partition: self._committed}

    def _acked_before(self) -> int:
        """The last entry the group acknowledged: the one before its oldest pending entry, else the last delivered."""
        info = next(
            (g for g in self.client.xinfo_groups(self.source.stream) if _text(g.get("name")) == self.group), None
        )
        if info is None:
            return -1
        if int(info.get("pending") or 0) == 0:
            last = _text(info.get("last-delivered-id") or "0-0")
            return -1 if last == "0-0" else entry_offset(last, self.source.stream)
        oldest = self.client.xpending(self.source.stream, self.group)["min"]
        before = self.client.xrevrange(self.source.stream, max=f"({_text(oldest)}", min="-", count=1)
        return entry_offset(before[0][0], self.source.stream) if before else -1

    def ready(self) -> bool:
        return self._holding

    def lag(self) -> dict[str, int]:
        with _errors(self.source):
            return {self.partition: _group_lag(self.client, self.source, self.group)}

    def close(self) -> None:
        try:
            with _errors(self.source):
                self.client.eval(RELEASE_LUA, 1, self.lease_key, self.token)
        except StreamUnavailableError:
            pass  # the lease expires on its own
        finally:
            self._holding = False
            self.client.close()


def open_redis_stream_consumer(source: DataSource, options: ConsumerOptions) -> StreamConsumer:
    return RedisStreamConsumer(_source(source), options)


def read_redis_stream_lag(source: DataSource, options: ConsumerOptions) -> dict[str, int]:
    """Per stream, the entries `options.group` has not acknowledged (read-only: does not join the group)."""
    stream_source = _source(source)
    client = _client(stream_source, options.settings)
    try:
        with _errors(stream_source):
            return {stream_source.stream: _group_lag(client, stream_source, options.group)}
    finally:
        client.close()
