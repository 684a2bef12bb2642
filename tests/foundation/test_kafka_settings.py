"""KafkaSource(kafka_settings=...): validated, stored in the registry spec, shown by plan."""

from __future__ import annotations

from typing import Any

import pytest

from potluck import KafkaSource
from potluck.data_format import JsonFormat
from potluck.definitions.errors import DefinitionError
from potluck.repo.plan import FieldChange, field_changes


def kafka(**settings: Any) -> KafkaSource:
    return KafkaSource(
        name="events",
        kafka_bootstrap_servers="broker:9092",
        topic="t",
        timestamp_field="ts",
        message_format=JsonFormat(schema_json="id bigint, ts timestamp"),
        kafka_settings=settings or None,
    )


def test_round_trip_through_the_spec() -> None:
    source = kafka(**{"security.protocol": "SASL_SSL", "fetch.max.bytes": 1024, "check.crcs": True, "x.y": 0.5})
    spec = source.to_spec()
    assert spec["kafka_settings"] == {"check.crcs": True, "fetch.max.bytes": 1024, "security.protocol": "SASL_SSL",
                                      "x.y": 0.5}  # fmt: skip
    again = KafkaSource._from_spec(spec)
    assert again.kafka_settings == source.kafka_settings
    assert again.to_spec() == spec


def test_absent_when_empty_so_older_specs_are_unchanged() -> None:
    spec = kafka().to_spec()
    assert "kafka_settings" not in spec
    assert KafkaSource._from_spec(spec).kafka_settings == {}


def test_plan_shows_a_changed_setting() -> None:
    old = kafka(**{"security.protocol": "SSL"}).to_spec()
    new = kafka(**{"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN"}).to_spec()
    assert field_changes(old, new) == [
        FieldChange("kafka_settings.sasl.mechanism", None, "PLAIN"),
        FieldChange("kafka_settings.security.protocol", "SSL", "SASL_SSL"),
    ]
    assert field_changes(kafka().to_spec(), kafka(a=1).to_spec()) == [FieldChange("kafka_settings.a", None, 1)]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({" ": "x"}, r"KafkaSource 'events': 'kafka_settings' keys must be non-empty strings"),
        ({"a": ["x"]}, r"KafkaSource 'events': kafka_settings\['a'\] must be a string, number or boolean"),
        ({"a": None}, r"kafka_settings\['a'\] must be a string, number or boolean, got None"),
    ],
)
def test_invalid_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        kafka(**settings)
    with pytest.raises(DefinitionError, match=r"'kafka_settings' must map"):
        KafkaSource(
            name="events",
            kafka_bootstrap_servers="b:1",
            topic="t",
            timestamp_field="ts",
            message_format=JsonFormat(schema_json=""),
            kafka_settings=["a"],  # type: ignore[arg-type]
        )
