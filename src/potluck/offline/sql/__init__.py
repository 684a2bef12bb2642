"""Engine-neutral SQL for the offline stores: a dialect object and the query builders."""

from potluck.offline.sql.dialect import DUCKDB, POSTGRES, Dialect, Sql, join
from potluck.offline.sql.query import (
    EntityInput,
    SourceInput,
    Strategy,
    latest_rows_grouped_sql,
    latest_rows_sql,
    point_in_time_sql,
)

__all__ = [
    "DUCKDB",
    "POSTGRES",
    "Dialect",
    "EntityInput",
    "SourceInput",
    "Sql",
    "Strategy",
    "join",
    "latest_rows_grouped_sql",
    "latest_rows_sql",
    "point_in_time_sql",
]
