"""The Kafka stream plugin: a `KafkaSource`'s topic consumed with confluent-kafka (librdkafka).

Partitions are named "topic:N" and offsets are Kafka's. Offsets are never committed by the client
itself: the worker commits, synchronously, once what it read is durably written. Settings are
layered: the plugin's own, then the source's `kafka_settings`, then the worker's (later wins).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from potluck.definitions import DataSource, KafkaSource
from potluck.definitions.errors import PotluckError
from potluck.streaming.sources import ConsumerOptions, StreamConsumer, StreamMessage, StreamUnavailableError
from potluck.streaming.sources.kafka_client import (
    confluent_kafka,
    is_revoked,
    is_unavailable,
    merged_settings,
    raise_for,
    refused_settings,
)

log = logging.getLogger("potluck.streaming")
client_log = logging.getLogger("potluck.streaming.kafka")  # librdkafka's own log lines

# How long a metadata, committed-offset or watermark request may take before the broker counts as unavailable.
REQUEST_TIMEOUT = 10.0
COMMIT_TIMEOUT = 10.0  # how long a commit waits for the broker's answer
_RESETS = ("earliest", "latest")


def _label(source: DataSource) -> str:
    return f"Kafka source '{source.name}'"


def _kafka_source(source: DataSource) -> KafkaSource:
    if not isinstance(source, KafkaSource):
        raise PotluckError(f"data source '{source.name}' is a {source.source_type} source, not a KafkaSource")
    return source


def partition_name(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


def _client(source: KafkaSource, options: ConsumerOptions, extra: Mapping[str, Any]) -> Any:
    """A confluent_kafka.Consumer of `options.group` with the layered settings and `extra` callbacks."""
    ck = confluent_kafka()
    label = _label(source)
    if options.auto_offset_reset not in _RESETS:
        raise PotluckError(f"{label}: auto_offset_reset is {options.auto_offset_reset!r}; use 'earliest' or 'latest'")
    base = {
        "bootstrap.servers": source.kafka_bootstrap_servers,
        "client.id": options.consumer_name,
        "auto.offset.reset": options.auto_offset_reset,
        "enable.partition.eof": False,
    }
    config, origin = merged_settings(
        label,
        base,
        {"the source's kafka_settings": source.kafka_settings, "the worker's stream settings": options.settings},
    )
    config.update({"group.id": options.group, "enable.auto.commit": "false", "enable.auto.offset.store": "false"})
    try:
        return ck.Consumer({**config, "logger": client_log, **extra})
    except (ck.KafkaException, ValueError, TypeError) as exc:
        raise refused_settings(label, exc, origin) from None


def _lag(label: str, consumer: Any, partitions: list[Any], seen: Mapping[str, int]) -> dict[str, int]:
    """Per partition, messages after the committed position (all retained ones when nothing was committed).

    Tansu reports as high watermark the base offset of the last record batch + 1, so the last
    offset this consumer saw (+ 1) is taken when greater.
    """
    ck = confluent_kafka()
    if not partitions:
        return {}
    try:
        committed = consumer.committed(partitions, timeout=REQUEST_TIMEOUT)
        out: dict[str, int] = {}
        for tp in committed:
            name = partition_name(tp.topic, tp.partition)
            if tp.error is not None:
                raise_for(label, tp.error, f"reading the committed offset of {name}")
            low, high = consumer.get_watermark_offsets(
                ck.TopicPartition(tp.topic, tp.partition), timeout=REQUEST_TIMEOUT, cached=False
            )
            high = max(high, seen.get(name, -1) + 1)
            out[name] = max(0, high - (tp.offset if tp.offset >= 0 else low))
    except ck.KafkaException as exc:
        raise_for(label, exc.args[0], "reading the lag")
    return out


class KafkaConsumer:
    """A `StreamConsumer` of one KafkaSource's topic, a member of the worker's consumer group."""

    def __init__(self, source: KafkaSource, options: ConsumerOptions) -> None:
        self.source = source
        self._label = _label(source)
        self._errors: list[Any] = []
        self._seen: dict[str, int] = {}  # the last offset delivered per partition
        self._ck = confluent_kafka()
        self._fetched: list[Any] = []  # messages fetched while awaiting a commit, for the next poll
        self._commit_results: list[tuple[Any, list[Any]]] = []
        self._commits_sent = 0
        self._consumer = _client(
            source,
            options,
            {"error_cb": self._errors.append, "on_commit": lambda err, tps: self._commit_results.append((err, tps))},
        )
        self._closed = False
        self._consumer.subscribe([source.topic])

    def poll(self, max_messages: int, timeout: float) -> list[StreamMessage]:
        ck = self._ck
        if self._fetched:
            raw, self._fetched = self._fetched[:max_messages], self._fetched[max_messages:]
        else:
            try:
                raw = self._consumer.consume(num_messages=max_messages, timeout=timeout)
            except ck.KafkaException as exc:
                raise_for(self._label, exc.args[0], "polling")
        out: list[StreamMessage] = []
        for msg in raw:
            err = msg.error()
            if err is not None:
                self._message_error(err)
                continue
            name = partition_name(msg.topic(), msg.partition())
            kind, stamp = msg.timestamp()
            out.append(
                StreamMessage(
                    partition=name,
                    offset=msg.offset(),
                    value=msg.value(),
                    key=msg.key(),
                    timestamp_ms=None if kind == ck.TIMESTAMP_NOT_AVAILABLE else stamp,
                )
            )
            self._seen[name] = msg.offset()
        errors, self._errors[:] = list(self._errors), []
        for err in errors:
            if err.fatal():
                raise_for(self._label, err, "polling")
        if not out:
            unavailable = [err for err in errors if is_unavailable(err)]
            if unavailable:
                raise_for(self._label, unavailable[-1], "polling")
        return out

    def _message_error(self, err: Any) -> None:
        name = err.name()
        if name == "_PARTITION_EOF":
            return
        if name in ("UNKNOWN_TOPIC_OR_PART", "_UNKNOWN_TOPIC", "_UNKNOWN_PARTITION"):
            raise StreamUnavailableError(
                f"{self._label}: topic '{self.source.topic}' does not exist on "
                f"{self.source.kafka_bootstrap_servers} (yet): {err.str()}"
            )
        raise_for(self._label, err, "polling")

    def _assigned(self) -> list[Any]:
        try:
            return list(self._consumer.assignment())
        except self._ck.KafkaException as exc:
            raise_for(self._label, exc.args[0], "reading the assignment")

    def commit(self, positions: Mapping[str, int]) -> None:
        ck = self._ck
        owned = {partition_name(tp.topic, tp.partition) for tp in self._assigned()}
        offsets = []
        for name, offset in positions.items():
            if name not in owned:
                # Revoked in a rebalance: its new owner replays from the last commit.
                log.info("%s: not committing %s at %d: the partition is no longer assigned", self._label, name, offset)
                continue
            topic, _, number = name.rpartition(":")
            offsets.append(ck.TopicPartition(topic, int(number), offset + 1))
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=offsets, asynchronous=True)
        except ck.KafkaException as exc:
            self._commit_failed(exc.args[0])
            return
        self._commits_sent += 1
        err, partitions = self._await_commits()
        if err is not None:
            self._commit_failed(err)
            return
        for tp in partitions:
            if tp.error is not None:
                self._commit_failed(tp.error, f" of {partition_name(tp.topic, tp.partition)}")

    def _await_commits(self) -> tuple[Any, list[Any]]:
        """The result of the last commit once the broker answered every commit sent.

        librdkafka's synchronous commit waits without limit while the coordinator is unreachable, so
        commits are sent asynchronously and their results awaited here, for at most COMMIT_TIMEOUT
        seconds. Messages fetched meanwhile are kept for the next `poll`.
        """
        deadline = time.monotonic() + COMMIT_TIMEOUT
        wait = 0.002  # consume() returns at its timeout, not at the commit's answer: short waits, growing
        while len(self._commit_results) < self._commits_sent:
            left = deadline - time.monotonic()
            if left <= 0:
                raise StreamUnavailableError(
                    f"{self._label}: the Kafka broker is unavailable while committing: "
                    f"no answer within {COMMIT_TIMEOUT:.0f} s"
                )
            try:
                self._fetched.extend(self._consumer.consume(num_messages=500, timeout=min(wait, left)))
                wait = min(wait * 2, 0.1)
            except self._ck.KafkaException as exc:
                raise_for(self._label, exc.args[0], "committing")
        last = self._commit_results[-1]
        self._commit_results.clear()
        self._commits_sent = 0
        return last

    def _commit_failed(self, err: Any, where: str = "") -> None:
        if is_revoked(err):
            log.warning("%s: commit refused after a rebalance (%s); its new owner replays", self._label, err.str())
            return
        if err.name() == "_NO_OFFSET":
            return
        raise_for(self._label, err, f"committing{where}")

    def committed(self) -> dict[str, int]:
        ck = self._ck
        assigned = self._assigned()
        if not assigned:
            return {}
        try:
            result = self._consumer.committed(assigned, timeout=REQUEST_TIMEOUT)
        except ck.KafkaException as exc:
            raise_for(self._label, exc.args[0], "reading the committed offsets")
        return {partition_name(tp.topic, tp.partition): tp.offset - 1 if tp.offset >= 0 else -1 for tp in result}

    def lag(self) -> dict[str, int]:
        return _lag(self._label, self._consumer, self._assigned(), self._seen)

    def ready(self) -> bool:
        try:
            return bool(self._consumer.assignment())
        except self._ck.KafkaException:
            return False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._consumer.close()


def open_kafka_consumer(source: DataSource, options: ConsumerOptions) -> StreamConsumer:
    return KafkaConsumer(_kafka_source(source), options)


def read_kafka_lag(source: DataSource, options: ConsumerOptions) -> dict[str, int]:
    """The lag of `options.group` per partition of the topic, read without joining the group."""
    kafka = _kafka_source(source)
    label = _label(kafka)
    ck = confluent_kafka()
    consumer = _client(kafka, options, {})
    try:
        try:
            metadata = consumer.list_topics(kafka.topic, timeout=REQUEST_TIMEOUT)
        except ck.KafkaException as exc:
            raise_for(label, exc.args[0], "reading the topic's partitions")
        topic = metadata.topics.get(kafka.topic)
        if topic is None or topic.error is not None:
            detail = "" if topic is None else f": {topic.error.str()}"
            raise StreamUnavailableError(f"{label}: topic '{kafka.topic}' is not available{detail}")
        partitions = [ck.TopicPartition(kafka.topic, n) for n in sorted(topic.partitions)]
        return _lag(label, consumer, partitions, {})
    finally:
        consumer.close()
