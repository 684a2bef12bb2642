"""Spark SQL as a dialect of the shared query builders (`query.py`, `windows.py`, `labels.py`).

What differs from DuckDB: identifiers in backticks; timestamps are Spark's TIMESTAMP (an instant,
read in the session time zone, which the store sets to UTC), so "naive UTC" and "zoned" are the
same type and a TIMESTAMP_NTZ or DATE column becomes one by a cast; no infinite timestamps (the
first and last representable instants stand for them); timestamp arithmetic on integer
microseconds (`unix_micros`, `timestamp_micros`); composite keys are `named_struct`s, which
Spark orders field by field; no as-of join (the builders' LATERAL strategy, which Spark
decorrelates into a join); window frames whose bounds depend on the row are refused, so
aggregations use the join plan. Parameters are positional `?` markers bound by `spark.sql(query,
args=[...])`; naive datetimes are bound as UTC instants.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from potluck.offline.sql.dialect import Dialect, Sql


@dataclass(frozen=True)
class SparkDialect(Dialect):
    def quote(self, identifier: str) -> str:
        """The one way an identifier enters Spark SQL text: backquoted, inner backquotes doubled."""
        if "\x00" in identifier:
            raise ValueError(f"identifier {identifier!r} contains a NUL character")
        return "`" + identifier.replace("`", "``") + "`"

    def param(self, value: Any) -> Sql:
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)  # pyspark would read a naive value in the process's zone
        return Sql(self.placeholder, (value,))

    def minus_micros(self, expr: str, micros: int) -> Sql:
        return Sql(f"timestamp_micros(unix_micros({expr}) - {self.placeholder})", (micros,))

    def composite(self, exprs: Sequence[str]) -> str:
        return "named_struct(" + ", ".join(f"'k{i}', {e}" for i, e in enumerate(exprs)) + ")"

    def composite_field(self, expr: str, index: int) -> str:
        return f"{expr}.k{index}"

    def to_utc(self, expr: str, type_name: str = "") -> str:
        return f"CAST({expr} AS TIMESTAMP)"

    def to_zoned(self, expr: str) -> str:
        return expr

    def is_zoned(self, type_name: str) -> bool:
        return False

    def epoch_us(self, expr: str) -> str:
        return f"unix_micros({expr})"

    def arg_max(self, value: str, key: str) -> str:
        # max_by skips rows whose key is null: a null key on null values skips those too.
        return f"max_by({value}, CASE WHEN {value} IS NOT NULL THEN {key} END)"

    def array_type(self, element: str) -> str:
        return f"ARRAY<{element}>"

    def struct_type(self, fields: Sequence[tuple[str, str]]) -> str:
        return "STRUCT<" + ", ".join(f"{self.quote(k)}: {t}" for k, t in fields) + ">"


SPARK = SparkDialect(
    name="spark",
    placeholder="?",
    supports_asof=False,
    packs_sort_keys=False,
    supports_struct=True,
    row_dependent_frames=False,
    materialized="",
    type_names={
        "Bytes": "BINARY",
        "String": "STRING",
        "Bool": "BOOLEAN",
        "Int32": "INT",
        "Int64": "BIGINT",
        "Float32": "FLOAT",
        "Float64": "DOUBLE",
        "UnixTimestamp": "TIMESTAMP",
        "ZonedTimestamp": "TIMESTAMP",
        "PdfBytes": "BINARY",
        "ImageBytes": "BINARY",
        "Json": "STRING",
        "Uuid": "STRING",
        "TimeUuid": "STRING",
        "Decimal": "STRING",
        "Map": "MAP<STRING, STRING>",
    },
    max_timestamp="TIMESTAMP'9999-12-31 23:59:59.999999'",
    min_timestamp="TIMESTAMP'0001-01-01 00:00:00'",
    utc_timestamp_type="TIMESTAMP",
    utc_timestamptz_type="TIMESTAMP",
)
