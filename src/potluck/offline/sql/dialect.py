"""SQL fragments with bound parameters, and the per-engine differences a query builder needs.

A `Sql` is text plus the values its placeholders stand for, so values never enter SQL text.
Identifiers are quoted by `Dialect.quote` and nowhere else. A `Dialect` holds everything that
differs between engines: identifier quoting, the placeholder style, timestamp arithmetic,
composite sort keys and whether the engine has an as-of join.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from potluck.definitions.errors import PotluckError
from potluck.definitions.types import Array, PotluckType, PrimitiveType, Set, Struct


@dataclass(frozen=True)
class Sql:
    """SQL text and the values of its placeholders, in order."""

    text: str
    params: tuple[Any, ...] = ()

    def __add__(self, other: Sql | str) -> Sql:
        if isinstance(other, str):
            return Sql(self.text + other, self.params)
        return Sql(self.text + other.text, self.params + other.params)

    def __radd__(self, other: str) -> Sql:
        return Sql(other + self.text, self.params)


def join(parts: Iterable[Sql | str], separator: str = ", ") -> Sql:
    """Concatenate fragments, keeping their parameters in order."""
    text: list[str] = []
    params: list[Any] = []
    for part in parts:
        if isinstance(part, Sql):
            text.append(part.text)
            params.extend(part.params)
        else:
            text.append(part)
    return Sql(separator.join(text), tuple(params))


_INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class Dialect:
    """What differs between SQL engines for the point-in-time join and latest-row queries."""

    name: str
    placeholder: str = "?"
    supports_asof: bool = False
    # Type names for casting features to their declared types.
    type_names: dict[str, str] = field(default_factory=dict)
    array_suffix: str = "[]"
    supports_struct: bool = False
    max_timestamp: str = "'infinity'::TIMESTAMP"
    min_timestamp: str = "'-infinity'::TIMESTAMP"
    max_bigint: str = "9223372036854775807"
    utc_timestamp_type: str = "TIMESTAMP"  # naive, holds UTC wall time
    utc_timestamptz_type: str = "TIMESTAMPTZ"
    packs_sort_keys: bool = False  # has 128-bit integers for `packed_sort_key`

    def quote(self, identifier: str) -> str:
        """The one way an identifier enters SQL text: double-quoted, inner quotes doubled."""
        if "\x00" in identifier:
            raise ValueError(f"identifier {identifier!r} contains a NUL character")
        return '"' + identifier.replace('"', '""') + '"'

    def qualified(self, alias: str, identifier: str) -> str:
        return f"{self.quote(alias)}.{self.quote(identifier)}"

    def param(self, value: Any) -> Sql:
        return Sql(self.placeholder, (value,))

    def minus_micros(self, expr: str, micros: int) -> Sql:
        """`expr - micros microseconds`, the amount bound as a parameter."""
        if self.name == "postgres":
            return Sql(f"({expr} - {self.placeholder} * INTERVAL '1 microsecond')", (micros,))
        return Sql(f"({expr} - to_microseconds({self.placeholder}))", (micros,))

    def composite(self, exprs: Sequence[str]) -> str:
        """A value ordered lexicographically by `exprs` (a struct or row), for one comparison."""
        if self.name == "duckdb":
            return "{" + ", ".join(f"'k{i}': {e}" for i, e in enumerate(exprs)) + "}"
        return "ROW(" + ", ".join(exprs) + ")"

    def composite_field(self, expr: str, index: int) -> str:
        """Field `index` of a value built by `composite`."""
        if self.name == "duckdb":
            return f"struct_extract({expr}, 'k{index}')"
        return f"({expr}).f{index + 1}"

    def to_utc(self, expr: str, type_name: str = "") -> str:
        """A timestamp (naive, zoned or finer-grained) as naive UTC wall time in microseconds.

        DuckDB connections run with the session time zone set to UTC, so a plain cast converts;
        for a zoned column (`type_name` as the engine reports it) the instant's epoch is reused
        directly, which skips the calendar conversion of the cast (several times cheaper). Epochs
        of infinite values are null, and those fall back to the cast.
        """
        if self.name == "postgres":
            return f"(CAST({expr} AS TIMESTAMPTZ) AT TIME ZONE 'UTC')"
        if self.is_zoned(type_name):
            return f"COALESCE(make_timestamp(epoch_us({expr})), CAST({expr} AS {self.utc_timestamp_type}))"
        return f"CAST({expr} AS {self.utc_timestamp_type})"

    def to_zoned(self, expr: str) -> str:
        """A naive UTC timestamp as the zoned instant it stands for (the inverse of `to_utc`).

        DuckDB: built from the epoch, which skips the calendar conversion of a cast (about ten
        times cheaper); infinities, whose epoch is null, fall back to the cast.
        """
        if self.name == "duckdb":
            return f"COALESCE(make_timestamptz(epoch_us({expr})), CAST({expr} AS {self.utc_timestamptz_type}))"
        return self.cast(expr, self.utc_timestamptz_type)

    def packed_sort_key(self, created: str, ordinal: str) -> str | None:
        """`(created, ordinal)` as one 128-bit number ordered like the pair; None if not available.

        `created` is a naive microsecond timestamp or null, `ordinal` a non-negative BIGINT. A
        null created timestamp sorts with -infinity, before every value (as in the join's sort
        key); +infinity sorts after every value. The created part is its epoch in microseconds
        (the encoding of the infinities sits just outside every finite epoch), shifted by 64 bits.
        """
        if not self.packs_sort_keys:
            return None
        epoch = (
            f"COALESCE(epoch_us({created}), CASE WHEN {created} = 'infinity'::TIMESTAMP "
            f"THEN {_INT64_MAX} ELSE -{_INT64_MAX} END)"
        )
        return f"(CAST({epoch} AS HUGEINT) * {2**64} + {ordinal})"

    def is_zoned(self, type_name: str) -> bool:
        """Whether an engine type name is a time-zone-aware timestamp at microsecond precision."""
        return type_name.upper() in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ")

    def cast(self, expr: str, type_name: str) -> str:
        return f"CAST({expr} AS {type_name})"

    def epoch_us(self, expr: str) -> str:
        """A naive UTC timestamp as integer microseconds since the epoch."""
        return f"epoch_us({expr})"

    def arg_max(self, value: str, key: str) -> str:
        """The aggregate: `value` of the row with the greatest `key`, among rows whose value is not null."""
        return f"arg_max({value}, {key})"

    # Whether a window frame's bounds may be expressions of the row (the sawtooth window plan needs them).
    row_dependent_frames: bool = True
    materialized: str = "MATERIALIZED "  # the keyword after `name AS` that keeps a CTE computed once

    def array_type(self, element: str) -> str:
        return element + self.array_suffix

    def struct_type(self, fields: Sequence[tuple[str, str]]) -> str:
        return "STRUCT(" + ", ".join(f"{self.quote(k)} {t}" for k, t in fields) + ")"

    def type_name(self, dtype: PotluckType) -> str:
        if isinstance(dtype, (Array, Set)):
            return self.array_type(self.type_name(dtype.base_type))
        if isinstance(dtype, Struct) and self.supports_struct:
            return self.struct_type([(k, self.type_name(t)) for k, t in dtype.fields])
        if isinstance(dtype, PrimitiveType) and dtype.name in self.type_names:
            return self.type_names[dtype.name]
        raise PotluckError(f"type {dtype.name} is not supported by the {self.name} offline store")


DUCKDB = Dialect(
    name="duckdb",
    placeholder="?",
    supports_asof=True,
    packs_sort_keys=True,
    type_names={
        "Bytes": "BLOB",
        "String": "VARCHAR",
        "Bool": "BOOLEAN",
        "Int32": "INTEGER",
        "Int64": "BIGINT",
        "Float32": "FLOAT",
        "Float64": "DOUBLE",
        "UnixTimestamp": "TIMESTAMPTZ",
        "ZonedTimestamp": "TIMESTAMPTZ",
        "PdfBytes": "BLOB",
        "ImageBytes": "BLOB",
        "Json": "VARCHAR",
        "Uuid": "VARCHAR",
        "TimeUuid": "VARCHAR",
        "Decimal": "VARCHAR",
        "Map": "MAP(VARCHAR, VARCHAR)",
    },
    supports_struct=True,
)

POSTGRES = Dialect(
    name="postgres",
    placeholder="%s",
    supports_asof=False,
    type_names={
        "Bytes": "BYTEA",
        "String": "TEXT",
        "Bool": "BOOLEAN",
        "Int32": "INTEGER",
        "Int64": "BIGINT",
        "Float32": "REAL",
        "Float64": "DOUBLE PRECISION",
        "UnixTimestamp": "TIMESTAMPTZ",
        "ZonedTimestamp": "TIMESTAMPTZ",
        "PdfBytes": "BYTEA",
        "ImageBytes": "BYTEA",
        "Json": "TEXT",
        "Uuid": "TEXT",
        "TimeUuid": "TEXT",
        "Decimal": "TEXT",
    },
    max_timestamp="'infinity'::TIMESTAMP",
    min_timestamp="'-infinity'::TIMESTAMP",
)
