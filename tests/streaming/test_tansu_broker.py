"""The test broker itself: topics, production and consumption work on Tansu."""

from __future__ import annotations

from stream_support import TEST_CONSUMER_SETTINGS, create_topic, produce, unique_name


def test_tansu_round_trip(kafka_broker: str) -> None:
    from confluent_kafka import Consumer

    topic = unique_name("smoke")
    create_topic(kafka_broker, topic, partitions=2)
    produce(kafka_broker, topic, [b"a", b"b"], keys=[b"k1", b"k2"], partition=1)
    consumer = Consumer(
        {"bootstrap.servers": kafka_broker, "group.id": unique_name("g"), "auto.offset.reset": "earliest",
         **TEST_CONSUMER_SETTINGS}
    )  # fmt: skip
    try:
        consumer.subscribe([topic])
        got: list[tuple[int, int, bytes | None, bytes | None]] = []
        for _ in range(40):
            for msg in consumer.consume(10, 0.5):
                if msg.error() is None:
                    got.append((msg.partition(), msg.offset(), msg.key(), msg.value()))
            if len(got) >= 2:
                break
    finally:
        consumer.close()
    assert got == [(1, 0, b"k1", b"a"), (1, 1, b"k2", b"b")]
