"""Avro messages read with the source's schema (fastavro), plain or in the Confluent wire format.

A Confluent-framed message is magic byte 0, a 4-byte schema id, then the Avro payload: the id is
skipped and the payload read with the declared schema (no schema registry is asked). A message
starting with byte 0 is read as framed first and, when that does not consume it exactly, as plain.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import orjson

from potluck.definitions.errors import PotluckError

CONFLUENT_HEADER = 5  # magic byte 0 + 4-byte big-endian schema id


class BadPayload(ValueError):
    """A payload that is not a record of the schema; the message says why."""


class AvroReader:
    """Reads one source's Avro payloads into dicts of field values (logical types as Python values)."""

    def __init__(self, source_name: str, schema_json: str, needed: Sequence[str]) -> None:
        try:
            import fastavro
        except ImportError:
            raise PotluckError(
                f"source '{source_name}' has Avro messages, which need fastavro: pip install 'potluck[avro]'"
            ) from None
        label = f"source '{source_name}': the AvroFormat schema_json"
        try:
            parsed = fastavro.parse_schema(orjson.loads(schema_json))
        except (orjson.JSONDecodeError, ValueError, TypeError, KeyError) as err:
            raise PotluckError(f"{label} is not a valid Avro schema: {err}") from None
        if not isinstance(parsed, dict) or parsed.get("type") != "record":
            raise PotluckError(f'{label} must be a record schema (an object with "type": "record")')
        fields = {f["name"] for f in parsed.get("fields", [])}
        missing = [n for n in needed if n not in fields]
        if missing:
            raise PotluckError(
                f"{label} has no field {', '.join(repr(n) for n in missing)}, which the views reading it need; "
                f"its fields: {', '.join(sorted(fields))}"
            )
        self._schema = parsed
        self._read = fastavro.schemaless_reader

    def _exactly(self, data: bytes) -> dict[str, Any]:
        stream = io.BytesIO(data)
        try:
            record = self._read(stream, self._schema, None)
        except Exception as err:  # untrusted bytes: fastavro raises many kinds (EOF, struct, unicode, index)
            raise BadPayload(f"not Avro for the schema ({type(err).__name__}: {str(err)[:80]})") from None
        left = len(data) - stream.tell()
        if left:
            raise BadPayload(f"not Avro for the schema ({left} bytes left after the record)")
        assert isinstance(record, dict)
        return record

    def read(self, payload: bytes) -> dict[str, Any]:
        if len(payload) >= CONFLUENT_HEADER and payload[0] == 0:
            try:
                return self._exactly(payload[CONFLUENT_HEADER:])
            except BadPayload:
                pass
        return self._exactly(payload)
