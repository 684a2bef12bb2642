"""What the SQL stores share: identifier quoting and the newest-wins condition."""

from __future__ import annotations

INT64_MIN_SQL = "-9223372036854775808"


def quote_ident(name: str) -> str:
    """Quote an SQL identifier (table, schema, column); the only way identifiers enter SQL text."""
    if "\x00" in name:
        raise ValueError("an SQL identifier cannot contain a NUL character")
    return '"' + name.replace('"', '""') + '"'


def newer_condition(table: str) -> str:
    """True when the proposed row (`excluded`) should replace the stored row of `table`."""
    return (
        f"excluded.event_ts > {table}.event_ts OR (excluded.event_ts = {table}.event_ts AND "
        f"COALESCE(excluded.created_ts, {INT64_MIN_SQL}) >= COALESCE({table}.created_ts, {INT64_MIN_SQL}))"
    )
