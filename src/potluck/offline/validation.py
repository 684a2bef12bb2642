"""Checks of a historical retrieval request that hold for every engine.

Column types are compared by family (integers of any width match each other, strings match
strings, ...), using the engine's type names as DuckDB spells them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from potluck.definitions.errors import RetrievalError
from potluck.offline.protocol import ViewQuery

EVENT_TIMESTAMP = "event_timestamp"
RESERVED_PREFIX = "__potluck_"

_INTEGERS = {
    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
    "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT",
}  # fmt: skip
_FLOATS = {"FLOAT", "DOUBLE", "REAL"}
_STRINGS = {"VARCHAR", "TEXT", "STRING"}


def type_family(type_name: str) -> str:
    t = type_name.upper()
    if t in _INTEGERS:
        return "integer"
    if t in _FLOATS or t.startswith("DECIMAL"):
        return "floating-point"
    if t in _STRINGS or t.startswith("VARCHAR"):
        return "string"
    if t.startswith("TIMESTAMP"):
        return "timestamp"
    if t in {"BLOB", "BYTEA"}:
        return "binary"
    return t.lower()


def is_timestamp(type_name: str) -> bool:
    return type_family(type_name) == "timestamp"


def infer_timestamp_column(columns: Mapping[str, str]) -> str:
    """`event_timestamp` if present, else the single timestamp-typed column."""
    if EVENT_TIMESTAMP in columns:
        kind = type_family(columns[EVENT_TIMESTAMP])
        if kind not in {"timestamp", "date"}:
            raise RetrievalError(
                f"entity_df column '{EVENT_TIMESTAMP}' must hold timestamps, it has type {columns[EVENT_TIMESTAMP]}"
            )
        return EVENT_TIMESTAMP
    candidates = [name for name, t in columns.items() if is_timestamp(t)]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise RetrievalError(
            f"entity_df has no event-timestamp column: add a column '{EVENT_TIMESTAMP}' or exactly one "
            f"timestamp-typed column (columns: {', '.join(repr(c) for c in columns)})"
        )
    raise RetrievalError(
        f"entity_df has several timestamp columns ({', '.join(repr(c) for c in candidates)}) and none "
        f"named '{EVENT_TIMESTAMP}'; rename the one holding the event time to '{EVENT_TIMESTAMP}'"
    )


def check_entity_columns(columns: Sequence[str]) -> None:
    reserved = [c for c in columns if c.startswith(RESERVED_PREFIX)]
    if reserved:
        raise RetrievalError(
            f"entity_df column(s) {', '.join(repr(c) for c in reserved)} use the reserved prefix '{RESERVED_PREFIX}'"
        )


def check_join_keys(view: ViewQuery, entity_columns: Mapping[str, str]) -> None:
    missing = [k for k in view.join_keys if k not in entity_columns]
    if missing:
        raise RetrievalError(
            f"entity_df lacks join key column(s) {', '.join(repr(k) for k in missing)} needed by feature "
            f"view '{view.view_name}' (entity_df columns: {', '.join(repr(c) for c in entity_columns)})"
        )


def check_key_types(view: ViewQuery, entity_columns: Mapping[str, str], source_columns: Mapping[str, str]) -> None:
    for key in view.join_keys:
        source_col = view.source.columns.get(key, key)
        entity_type, source_type = entity_columns[key], source_columns[source_col]
        if entity_type.upper() == "NULL":  # an all-null column matches nothing, whatever its type
            continue
        if type_family(entity_type) != type_family(source_type):
            raise RetrievalError(
                f"join key '{key}' of feature view '{view.view_name}' has type {entity_type} in entity_df "
                f"but {source_type} in source '{view.source.name}' (column '{source_col}'); "
                "convert the entity_df column to match"
            )


def check_source_columns(view: ViewQuery, source_columns: Mapping[str, str], location: str) -> None:
    table = view.source
    needed: list[tuple[str, str]] = [(table.timestamp_column, "timestamp column")]
    if table.created_timestamp_column:
        needed.append((table.created_timestamp_column, "created timestamp column"))
    needed += [(table.columns.get(k, k), f"join key '{k}'") for k in view.join_keys]
    role = "aggregated column" if view.aggregations else "feature"
    needed += [(table.columns.get(f.name, f.name), f"{role} '{f.name}'") for f in view.source_fields]
    for column, role in needed:
        if column not in source_columns:
            raise RetrievalError(
                f"source '{table.name}' ({location}) has no column '{column}' ({role} of feature view "
                f"'{view.view_name}'); its columns are {', '.join(repr(c) for c in source_columns)}"
            )
    for column, role in needed[: 2 if table.created_timestamp_column else 1]:
        if type_family(source_columns[column]) not in {"timestamp", "date"}:
            raise RetrievalError(
                f"source '{table.name}' ({location}): {role} '{column}' of feature view "
                f"'{view.view_name}' must hold timestamps, it has type {source_columns[column]}"
            )


def check_output_names(entity_columns: Sequence[str], views: Sequence[ViewQuery]) -> None:
    owner: dict[str, str] = dict.fromkeys(entity_columns, "entity_df")
    for view in views:
        if len(view.output_names) != len(view.features):
            raise RetrievalError(f"feature view '{view.view_name}': one output name is needed per feature")
        for name in view.output_names:
            if name in owner:
                first = owner[name]
                where = "an entity_df column" if first == "entity_df" else f"feature view '{first}'"
                raise RetrievalError(
                    f"output column '{name}' of feature view '{view.view_name}' collides with {where}; "
                    "use full_feature_names=True or rename the column"
                )
            owner[name] = view.view_name
