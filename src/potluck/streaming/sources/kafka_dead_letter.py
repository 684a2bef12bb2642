"""A dead-letter topic: messages the worker could not use, produced to a Kafka topic with the reason."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from potluck.definitions.errors import PotluckError
from potluck.streaming.decode import DeadLetter
from potluck.streaming.sources import StreamUnavailableError
from potluck.streaming.sources.kafka_client import confluent_kafka, merged_settings, refused_settings

FLUSH_TIMEOUT = 30.0  # seconds a send may wait for the broker's acknowledgements


class KafkaDeadLetterTopic:
    """Produces each dead letter's raw value and key to `topic`, with headers `potluck-reason`,
    `potluck-source`, `potluck-partition` and `potluck-offset`; `send` returns once all are acknowledged."""

    def __init__(self, bootstrap_servers: str, topic: str, settings: Mapping[str, Any] | None = None) -> None:
        ck = confluent_kafka()
        self.topic = topic
        self._label = f"dead-letter topic '{topic}'"
        base = {"bootstrap.servers": bootstrap_servers, "enable.idempotence": True, "linger.ms": 5}
        config, origin = merged_settings(self._label, base, {"the dead-letter settings": settings or {}})
        try:
            self._producer = ck.Producer({**config, "logger": logging.getLogger("potluck.streaming.kafka")})
        except (ck.KafkaException, ValueError, TypeError) as exc:
            raise refused_settings(self._label, exc, origin) from None

    def send(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        failures: list[str] = []

        def delivered(err: Any, _msg: Any) -> None:
            if err is not None:
                failures.append(err.str())

        try:
            for letter in letters:
                headers = [
                    ("potluck-reason", letter.reason.encode()),
                    ("potluck-source", letter.source.encode()),
                    ("potluck-partition", letter.partition.encode()),
                    ("potluck-offset", str(letter.offset).encode()),
                ]
                self._produce(letter, headers, delivered)
            left = self._producer.flush(FLUSH_TIMEOUT)
        except BufferError as err:
            raise StreamUnavailableError(f"{self._label}: the producer's queue is full: {err}") from None
        if left:
            raise StreamUnavailableError(
                f"{self._label}: {left} dead letters were not acknowledged within {FLUSH_TIMEOUT:.0f} s"
            )
        if failures:
            raise StreamUnavailableError(f"{self._label}: {len(failures)} dead letters were refused: {failures[0]}")

    def _produce(self, letter: DeadLetter, headers: list[tuple[str, bytes]], delivered: Any) -> None:
        ck = confluent_kafka()
        try:
            self._producer.produce(
                self.topic, value=letter.value, key=letter.key, headers=headers, on_delivery=delivered
            )
        except ck.KafkaException as exc:
            raise PotluckError(f"{self._label}: could not produce a dead letter: {exc.args[0].str()}") from None
        self._producer.poll(0)
