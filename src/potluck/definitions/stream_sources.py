"""Stream sources: `KafkaSource` and its message formats (`JsonFormat`, `AvroFormat`).

Declared here and stored in the registry; consuming them is the stream worker's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from potluck.definitions.base import check_column, check_name, check_tags, check_text
from potluck.definitions.errors import DefinitionError
from potluck.definitions.sources import DataSource, FileSource


class StreamFormat:
    """How messages of a stream are encoded."""

    format_name = ""

    def __init__(self, schema_json: str) -> None:
        if not isinstance(schema_json, str):
            raise DefinitionError(f"{type(self).__name__}: 'schema_json' must be a string, got {schema_json!r}")
        self.schema_json = schema_json

    def to_spec(self) -> dict[str, str]:
        return {"format": self.format_name, "schema_json": self.schema_json}

    @staticmethod
    def from_spec(spec: Mapping[str, Any]) -> StreamFormat:
        kinds: dict[str, type[StreamFormat]] = {"json": JsonFormat, "avro": AvroFormat}
        kind = spec.get("format")
        if kind not in kinds:
            raise DefinitionError(f"unknown stream message format {kind!r}; use one of {', '.join(kinds)}")
        return kinds[str(kind)](str(spec.get("schema_json", "")))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StreamFormat) and self.to_spec() == other.to_spec()

    def __hash__(self) -> int:
        return hash((self.format_name, self.schema_json))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(schema_json={self.schema_json!r})"


class JsonFormat(StreamFormat):
    """JSON messages; `schema_json` describes their fields (Feast: a Spark DDL string)."""

    format_name = "json"


class AvroFormat(StreamFormat):
    """Avro messages; `schema_json` is the Avro schema as JSON."""

    format_name = "avro"


class KafkaSource(DataSource):
    """Events on a Kafka topic; `batch_source` holds them for training data."""

    source_type = "kafka"

    def __init__(
        self,
        *,
        name: str,
        timestamp_field: str,
        message_format: StreamFormat,
        kafka_bootstrap_servers: str | None = None,
        topic: str | None = None,
        bootstrap_servers: str | None = None,
        created_timestamp_column: str = "",
        field_mapping: dict[str, str] | None = None,
        description: str = "",
        tags: dict[str, str] | None = None,
        owner: str = "",
        batch_source: DataSource | None = None,
        watermark_delay_threshold: timedelta | None = None,
    ) -> None:
        self.name = check_name("KafkaSource", name)
        label = f"KafkaSource '{name}'"
        servers = kafka_bootstrap_servers or bootstrap_servers
        if not isinstance(servers, str) or not servers.strip():
            raise DefinitionError(f"{label}: 'kafka_bootstrap_servers' is required, e.g. 'localhost:9092'")
        self.kafka_bootstrap_servers = servers
        if not isinstance(topic, str) or not topic.strip():
            raise DefinitionError(f"{label}: 'topic' is required: the Kafka topic to read")
        self.topic = topic
        if not isinstance(message_format, StreamFormat):
            raise DefinitionError(
                f"{label}: 'message_format' must be JsonFormat(schema_json=...) or AvroFormat(schema_json=...) "
                f"from potluck.data_format, got {message_format!r}"
            )
        self.message_format = message_format
        self.timestamp_field = check_column(label, timestamp_field, field="timestamp_field")
        self.created_timestamp_column = (
            check_column(label, created_timestamp_column, field="created_timestamp_column")
            if created_timestamp_column
            else ""
        )
        mapping = field_mapping or {}
        if not isinstance(mapping, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
        ):
            raise DefinitionError(f"{label}: 'field_mapping' must map source column names to field names")
        self.field_mapping = dict(sorted(mapping.items()))
        if batch_source is not None and not isinstance(batch_source, FileSource):
            raise DefinitionError(f"{label}: 'batch_source' must be a FileSource, got {batch_source!r}")
        self.batch_source = batch_source
        if watermark_delay_threshold is not None and (
            not isinstance(watermark_delay_threshold, timedelta) or watermark_delay_threshold < timedelta(0)
        ):
            raise DefinitionError(
                f"{label}: 'watermark_delay_threshold' must be a non-negative datetime.timedelta, "
                f"got {watermark_delay_threshold!r}"
            )
        self.watermark_delay_threshold = watermark_delay_threshold
        self.description = check_text(label, description, "description")
        self.tags = check_tags(label, tags)
        self.owner = check_text(label, owner, "owner")

    def to_spec(self) -> dict[str, Any]:
        delay = self.watermark_delay_threshold
        return {
            "type": self.source_type,
            "name": self.name,
            "kafka_bootstrap_servers": self.kafka_bootstrap_servers,
            "topic": self.topic,
            "message_format": self.message_format.to_spec(),
            "timestamp_field": self.timestamp_field,
            "created_timestamp_column": self.created_timestamp_column,
            "field_mapping": self.field_mapping,
            "batch_source": None if self.batch_source is None else self.batch_source.to_spec(),
            "watermark_delay_threshold_seconds": None if delay is None else delay.total_seconds(),
            "description": self.description,
            "tags": self.tags,
            "owner": self.owner,
        }

    @classmethod
    def _from_spec(cls, spec: Mapping[str, Any]) -> KafkaSource:
        batch = spec.get("batch_source")
        delay = spec.get("watermark_delay_threshold_seconds")
        return cls(
            name=spec["name"],
            kafka_bootstrap_servers=spec["kafka_bootstrap_servers"],
            topic=spec["topic"],
            message_format=StreamFormat.from_spec(spec["message_format"]),
            timestamp_field=spec["timestamp_field"],
            created_timestamp_column=spec.get("created_timestamp_column", ""),
            field_mapping=spec.get("field_mapping"),
            batch_source=None if batch is None else FileSource._from_spec(batch),
            watermark_delay_threshold=None if delay is None else timedelta(seconds=float(delay)),
            description=spec.get("description", ""),
            tags=spec.get("tags"),
            owner=spec.get("owner", ""),
        )


class RedisStreamSource(DataSource):
    """Events on a Redis stream, read through a consumer group; `batch_source` holds them for training data.

    Without `message_format` each entry's field map is the event (field name -> text value); with
    `JsonFormat`/`AvroFormat` the event is the payload in the entry's `value_field`.
    `connection_string` has the Redis online store's form ("host:port,password=...,ssl=true,db=N");
    it is stored in the registry as given (no `${ENV}` interpolation), so a password in it is stored in clear.
    """

    source_type = "redis_stream"

    def __init__(
        self,
        *,
        name: str,
        stream: str,
        connection_string: str,
        timestamp_field: str,
        created_timestamp_column: str = "",
        field_mapping: dict[str, str] | None = None,
        message_format: StreamFormat | None = None,
        value_field: str = "value",
        batch_source: DataSource | None = None,
        watermark_delay_threshold: timedelta | None = None,
        description: str = "",
        tags: dict[str, str] | None = None,
        owner: str = "",
    ) -> None:
        self.name = check_name("RedisStreamSource", name)
        label = f"RedisStreamSource '{name}'"
        if not isinstance(stream, str) or not stream.strip():
            raise DefinitionError(f"{label}: 'stream' is required: the key of the Redis stream to read")
        self.stream = stream
        self.connection_string = _check_redis_connection(label, connection_string)
        if message_format is not None and not isinstance(message_format, StreamFormat):
            raise DefinitionError(
                f"{label}: 'message_format' must be None (entries are field maps), JsonFormat(schema_json=...) "
                f"or AvroFormat(schema_json=...) from potluck.data_format, got {message_format!r}"
            )
        self.message_format = message_format
        if not isinstance(value_field, str) or not value_field:
            raise DefinitionError(
                f"{label}: 'value_field' must name the entry field that holds the encoded event, got {value_field!r}"
            )
        self.value_field = value_field
        self.timestamp_field = check_column(label, timestamp_field, field="timestamp_field")
        self.created_timestamp_column = (
            check_column(label, created_timestamp_column, field="created_timestamp_column")
            if created_timestamp_column
            else ""
        )
        self.field_mapping = _check_field_mapping(label, field_mapping)
        if batch_source is not None and not isinstance(batch_source, FileSource):
            raise DefinitionError(f"{label}: 'batch_source' must be a FileSource, got {batch_source!r}")
        self.batch_source = batch_source
        self.watermark_delay_threshold = _check_delay(label, watermark_delay_threshold)
        self.description = check_text(label, description, "description")
        self.tags = check_tags(label, tags)
        self.owner = check_text(label, owner, "owner")

    def to_spec(self) -> dict[str, Any]:
        delay = self.watermark_delay_threshold
        return {
            "type": self.source_type,
            "name": self.name,
            "stream": self.stream,
            "connection_string": self.connection_string,
            "message_format": None if self.message_format is None else self.message_format.to_spec(),
            "value_field": self.value_field,
            "timestamp_field": self.timestamp_field,
            "created_timestamp_column": self.created_timestamp_column,
            "field_mapping": self.field_mapping,
            "batch_source": None if self.batch_source is None else self.batch_source.to_spec(),
            "watermark_delay_threshold_seconds": None if delay is None else delay.total_seconds(),
            "description": self.description,
            "tags": self.tags,
            "owner": self.owner,
        }

    @classmethod
    def _from_spec(cls, spec: Mapping[str, Any]) -> RedisStreamSource:
        batch = spec.get("batch_source")
        delay = spec.get("watermark_delay_threshold_seconds")
        fmt = spec.get("message_format")
        return cls(
            name=spec["name"],
            stream=spec["stream"],
            connection_string=spec["connection_string"],
            message_format=None if fmt is None else StreamFormat.from_spec(fmt),
            value_field=spec.get("value_field", "value"),
            timestamp_field=spec["timestamp_field"],
            created_timestamp_column=spec.get("created_timestamp_column", ""),
            field_mapping=spec.get("field_mapping"),
            batch_source=None if batch is None else FileSource._from_spec(batch),
            watermark_delay_threshold=None if delay is None else timedelta(seconds=float(delay)),
            description=spec.get("description", ""),
            tags=spec.get("tags"),
            owner=spec.get("owner", ""),
        )


def _check_redis_connection(label: str, connection_string: object) -> str:
    """The connection string, once it parses as the Redis online store's would (one server)."""
    from potluck.definitions.errors import ConfigError
    from potluck.online.redis_connection import count_option, parse_connection_string, seconds_option

    where = f"{label}: 'connection_string'"
    if not isinstance(connection_string, str) or not connection_string.strip():
        raise DefinitionError(f"{where} is required, e.g. 'localhost:6379' or 'host:6379,password=...,db=0'")
    try:
        nodes, options = parse_connection_string(connection_string, where)
        count_option(options, "db", 0, where)
        for timeout in ("socket_timeout", "socket_connect_timeout"):
            seconds_option(options, timeout, 1.0, where)
    except ConfigError as err:
        raise DefinitionError(str(err)) from None
    if len(nodes) > 1:
        raise DefinitionError(f"{where}: give one server (host:port); a stream lives on one Redis server")
    return connection_string


def _check_field_mapping(label: str, field_mapping: object) -> dict[str, str]:
    mapping = field_mapping or {}
    if not isinstance(mapping, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
    ):
        raise DefinitionError(f"{label}: 'field_mapping' must map source column names to field names")
    return dict(sorted(mapping.items()))


def _check_delay(label: str, delay: object) -> timedelta | None:
    if delay is not None and (not isinstance(delay, timedelta) or delay < timedelta(0)):
        raise DefinitionError(
            f"{label}: 'watermark_delay_threshold' must be a non-negative datetime.timedelta, got {delay!r}"
        )
    return delay
