"""The kafka stream plugin (being built)."""

from __future__ import annotations

from potluck.definitions import DataSource
from potluck.streaming.sources import ConsumerOptions, StreamConsumer


def open_kafka_consumer(source: DataSource, options: ConsumerOptions) -> StreamConsumer:
    raise NotImplementedError


def read_kafka_lag(source: DataSource, options: ConsumerOptions) -> dict[str, int]:
    raise NotImplementedError
