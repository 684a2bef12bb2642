"""Spark SQL as a dialect of the shared query builders (`query.py`, `windows.py`, `labels.py`).

What differs from DuckDB, as data: identifiers in backquotes; timestamps are Spark's TIMESTAMP (an
instant, read in the session time zone, which the store sets to UTC), so "naive UTC" and "zoned"
are the same type and a TIMESTAMP_NTZ or DATE column becomes one by a cast; no infinite timestamps
(the first and last representable instants stand for them); timestamp arithmetic on integer
microseconds (`unix_micros`, `timestamp_micros`); composite keys are `named_struct`s, which Spark
orders field by field; no as-of join (the as-of match is one running `max_by` over a window keyed by
the sort key as a struct, the builders' `Strategy.RUNNING`); window
frames whose bounds depend on the row are refused, so aggregations use the join plan. Parameters
are positional `?` markers bound by `spark.sql(query, args=[...])`; naive datetimes are bound as
UTC instants (pyspark would read them in the process's local zone).
"""

from __future__ import annotations

from potluck.offline.sql.dialect import Dialect

SPARK = Dialect(
    name="spark",
    placeholder="?",
    quote_char="`",
    zoned_params=True,
    supports_asof=False,
    supports_qualify=False,
    supports_row_frames=False,
    supports_running_arg_max=True,
    supports_struct=True,
    materialized="",
    interval_micros="",  # unused: `minus_micros_template` below
    minus_micros_template="timestamp_micros(unix_micros({expr}) - {micros})",
    epoch_us="unix_micros({expr})",
    to_utc_template="CAST({expr} AS TIMESTAMP)",
    to_zoned_template="{expr}",
    zoned_type_names=(),
    composite_template="named_struct({items})",
    composite_item="'k{index}', {expr}",
    composite_field_template="{expr}.k{index}",
    # max_by skips rows whose key is null: nulling the key of null values skips those too.
    arg_max_template="max_by({value}, CASE WHEN {value} IS NOT NULL{and_filter} THEN {key} END)",
    arg_max_row_template="max_by(named_struct({fields}), {key})",
    row_struct_item="'{name}', {column}",  # the builders' own field names (`__f0`, ...): no quote inside
    array_template="ARRAY<{element}>",
    struct_template="STRUCT<{fields}>",
    struct_field_template="{name}: {type}",
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
