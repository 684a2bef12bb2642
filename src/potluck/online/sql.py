"""What the SQL stores share: identifier quoting, the newest-wins condition, tile table names and records."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

    from potluck.online.protocol import OnlineView

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


def tile_table_name(view: OnlineView) -> str:
    """The (unquoted) table of a view's tile records, beside its rows' table."""
    return view.storage_name + "#tiles"


def tile_table(keys: list[bytes], versions: list[int], blobs: list[bytes]) -> pa.Table:
    """Tile records as the Arrow table `SupportsScan.scan_tiles` yields."""
    import pyarrow as pa

    return pa.table(
        {
            "entity_key": pa.array(keys, pa.binary()),
            "version": pa.array(versions, pa.int64()),
            "blob": pa.array(blobs, pa.binary()),
        }
    )
