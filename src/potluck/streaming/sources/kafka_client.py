"""What the Kafka plugin and the dead-letter topic share: the lazy import, client settings, error kinds."""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any, NoReturn

from potluck.definitions.errors import PotluckError
from potluck.streaming.sources import StreamUnavailableError

# Settings the plugin owns: overriding them would commit offsets before the writes are durable.
_RESERVED = {
    "group.id": "the worker's consumer group (ConsumerOptions.group) sets it",
    "enable.auto.commit": "the worker commits only after its writes are durable",
    "enable.auto.offset.store": "the worker commits only after its writes are durable",
}

# librdkafka error names (KafkaError.name()) meaning "the broker cannot be reached now".
_UNAVAILABLE = {
    "_TRANSPORT",
    "_ALL_BROKERS_DOWN",
    "_TIMED_OUT",
    "_TIMED_OUT_QUEUE",
    "_MSG_TIMED_OUT",
    "_WAIT_COORD",
    "_RESOLVE",
    "_CONNECT",
    "COORDINATOR_NOT_AVAILABLE",
    "NOT_COORDINATOR",
    "COORDINATOR_LOAD_IN_PROGRESS",
    "NETWORK_EXCEPTION",
    "REQUEST_TIMED_OUT",
    "LEADER_NOT_AVAILABLE",
    "NOT_LEADER_FOR_PARTITION",
}

# Commit refusals meaning "this member no longer owns the partition" (a rebalance moved it).
_REVOKED = {
    "ILLEGAL_GENERATION",
    "UNKNOWN_MEMBER_ID",
    "REBALANCE_IN_PROGRESS",
    "FENCED_INSTANCE_ID",
    "_ASSIGNMENT_LOST",
    "_STATE",
}


def confluent_kafka() -> ModuleType:
    try:
        import confluent_kafka as module
    except ImportError:
        raise PotluckError("Kafka sources need the confluent-kafka package: pip install 'potluck[kafka]'") from None
    return module


def client_value(value: Any) -> str:
    """A setting as librdkafka spells it (booleans as true/false)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def merged_settings(
    label: str, base: Mapping[str, Any], layers: Mapping[str, Mapping[str, Any]]
) -> tuple[dict[str, str], dict[str, str]]:
    """`base` then each layer in order (later wins), and where each key came from (for error messages)."""
    config = {key: client_value(value) for key, value in base.items()}
    origin = dict.fromkeys(config, "the plugin")
    for where, layer in layers.items():
        for key, value in layer.items():
            if key in _RESERVED:
                raise PotluckError(f"{label}: setting '{key}' in {where} is not allowed: {_RESERVED[key]}")
            config[key] = client_value(value)
            origin[key] = where
    return config, origin


def error_name(err: Any) -> str:
    name = err.name() if hasattr(err, "name") else ""
    return str(name)


def is_unavailable(err: Any) -> bool:
    return error_name(err) in _UNAVAILABLE


def is_revoked(err: Any) -> bool:
    return error_name(err) in _REVOKED


def refused_settings(label: str, exc: Exception, origin: Mapping[str, str]) -> PotluckError:
    """The error for settings librdkafka refused, naming the property and where it was set."""
    text = str(exc.args[0].str() if exc.args and hasattr(exc.args[0], "str") else exc)
    where = next((f" (set in {origin[key]})" for key in origin if f'"{key}"' in text), "")
    return PotluckError(
        f"{label}: the Kafka client refused its settings: {text}{where}; "
        f"see librdkafka's CONFIGURATION.md for the property names and values"
    )


def raise_for(label: str, err: Any, doing: str) -> NoReturn:
    """Raise the Potluck error for a librdkafka error met while `doing`."""
    text = err.str() if hasattr(err, "str") else str(err)
    if is_unavailable(err) and not (hasattr(err, "fatal") and err.fatal()):
        raise StreamUnavailableError(f"{label}: the Kafka broker is unavailable while {doing}: {text}")
    raise PotluckError(f"{label}: Kafka error while {doing}: {text}")
