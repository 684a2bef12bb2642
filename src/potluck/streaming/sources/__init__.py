"""Stream sources the worker consumes, as plugins of one small protocol (`StreamConsumer`).

A plugin is a factory registered for a source type (`KafkaSource.source_type`, ...). It turns a
declared source into a consumer of its messages, each carrying its position: a partition name
and an offset that only grows within the partition. The worker commits positions only after
what it read from them is durably written, so the protocol's `commit` must be synchronous.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from potluck.definitions import DataSource
from potluck.definitions.errors import PotluckError


@dataclass(frozen=True, slots=True)
class StreamMessage:
    """One message as the broker delivered it.

    `partition` names the ordered log it came from ("topic:3" for Kafka, the stream key for Redis
    Streams); `offset` orders messages within it. `value` is the encoded payload; a source whose
    messages are field maps (Redis Streams without a message format) passes them in `fields`.
    """

    partition: str
    offset: int
    value: bytes | None
    key: bytes | None = None
    timestamp_ms: int | None = None
    fields: Mapping[bytes, bytes] | None = None


@dataclass(frozen=True, slots=True)
class ConsumerOptions:
    """How the worker wants a source consumed (the plugin maps these onto its client)."""

    group: str  # the consumer group: workers of one group share the partitions
    consumer_name: str  # this worker's name within the group (stable across restarts where possible)
    auto_offset_reset: str = "earliest"  # where a group with no committed position starts: earliest | latest
    settings: Mapping[str, Any] = field(default_factory=dict)  # passed to the client unchanged (security, timeouts)


class StreamUnavailableError(PotluckError):
    """The broker cannot be reached now; the worker pauses and retries with backoff."""


@runtime_checkable
class StreamConsumer(Protocol):
    """Reads one source's messages in order within each partition."""

    def poll(self, max_messages: int, timeout: float) -> list[StreamMessage]:
        """Up to `max_messages` messages, waiting at most `timeout` seconds for the first.

        After a restart (or a rebalance), delivery resumes at the committed positions, so
        messages read but not committed are delivered again. Raises `StreamUnavailableError`
        when the broker is unreachable.
        """
        ...

    def commit(self, positions: Mapping[str, int]) -> None:
        """Durably record, per partition, the offset of the last message fully written.

        Returns only once the broker has recorded it; raises `StreamUnavailableError` otherwise.
        """
        ...

    def committed(self) -> dict[str, int]:
        """Per partition assigned to this consumer, the offset of the last committed message
        (-1 when nothing was committed yet)."""
        ...

    def lag(self) -> dict[str, int]:
        """Per partition, the messages after the committed position (for metrics and status)."""
        ...

    def ready(self) -> bool:
        """Whether this consumer holds partitions to read (Kafka: an assignment; Redis Streams: the
        lease). The worker's idle clock (`--exit-when-idle`) runs only while every consumer is ready,
        so the time a consumer waits to join its group does not count as idle."""
        ...

    def close(self) -> None: ...


ConsumerFactory = Callable[[DataSource, ConsumerOptions], StreamConsumer]
# Reads a group's lag per partition without joining the group (so a running worker is not disturbed).
LagReader = Callable[[DataSource, ConsumerOptions], dict[str, int]]


@dataclass(frozen=True, slots=True)
class StreamPlugin:
    open: ConsumerFactory
    read_lag: LagReader


_PLUGINS: dict[str, StreamPlugin] = {}


def register_stream_plugin(source_type: str, factory: ConsumerFactory, lag_reader: LagReader) -> None:
    """Make sources of `source_type` consumable by the worker (NATS JetStream, Kinesis, ...)."""
    _PLUGINS[source_type] = StreamPlugin(factory, lag_reader)


def _builtin_plugins() -> None:
    if "kafka" not in _PLUGINS:
        from potluck.streaming.sources.kafka import open_kafka_consumer, read_kafka_lag

        _PLUGINS["kafka"] = StreamPlugin(open_kafka_consumer, read_kafka_lag)
    if "redis_stream" not in _PLUGINS:
        from potluck.streaming.sources.redis_streams import open_redis_stream_consumer, read_redis_stream_lag

        _PLUGINS["redis_stream"] = StreamPlugin(open_redis_stream_consumer, read_redis_stream_lag)


def _plugin(source: DataSource) -> StreamPlugin:
    _builtin_plugins()
    plugin = _PLUGINS.get(source.source_type)
    if plugin is None:
        raise PotluckError(
            f"data source '{source.name}' (type {source.source_type}) is not a stream the worker can consume; "
            f"stream source types: {', '.join(sorted(_PLUGINS))}"
        )
    return plugin


def open_consumer(source: DataSource, options: ConsumerOptions) -> StreamConsumer:
    """A consumer of `source` by its type's plugin."""
    return _plugin(source).open(source, options)


def read_lag(source: DataSource, options: ConsumerOptions) -> dict[str, int]:
    """The lag per partition of `options.group` on `source`, read without joining the group."""
    return _plugin(source).read_lag(source, options)


def is_stream_source(source: DataSource) -> bool:
    _builtin_plugins()
    return source.source_type in _PLUGINS
