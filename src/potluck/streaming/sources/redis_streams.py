"""The redis_streams stream plugin (being built)."""

from __future__ import annotations

from potluck.definitions import DataSource
from potluck.streaming.sources import ConsumerOptions, StreamConsumer


def open_redis_stream_consumer(source: DataSource, options: ConsumerOptions) -> StreamConsumer:
    raise NotImplementedError


def read_redis_stream_lag(source: DataSource, options: ConsumerOptions) -> dict[str, int]:
    raise NotImplementedError
