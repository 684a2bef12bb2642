"""SQL fragments with bound parameters, and the per-engine differences a query builder needs.

A `Sql` is text plus the values its placeholders stand for, so values never enter SQL text.
Identifiers are quoted by `Dialect.quote` and nowhere else. A `Dialect` holds everything that
differs between engines: identifier quoting, the placeholder style, timestamp arithmetic,
composite sort keys and whether the engine has an as-of join.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
    """What differs between SQL engines for the point-in-time join and latest-row queries.

    Every difference is a field: a flag the builders read, or a template with named slots
    (`{expr}`, `{value}`, ...). A new engine is one instance of this class (CONTRIBUTING.md lists
    the fields); the builders in this package never test an engine's name.
    """

    name: str
    placeholder: str = "?"
    # An `ASOF LEFT JOIN` (else the as-of match is a running maximum over a window, or LATERAL).
    supports_asof: bool = False
    # `QUALIFY` after a SELECT with window functions (else the select is wrapped and filtered).
    supports_qualify: bool = False
    # Window frames whose `RANGE ... PRECEDING` offset is a column (the sawtooth window plan of
    # aggregation views; else aggregations always use the join plan).
    supports_row_frames: bool = False
    # `arg_max` runs as a window function over a growing frame (`ROWS BETWEEN UNBOUNDED PRECEDING
    # AND CURRENT ROW`) with composite keys: the as-of match is then one running arg-max
    # (`Strategy.RUNNING`), the default of an engine without an as-of join.
    supports_running_arg_max: bool = False
    # Type names for casting features to their declared types.
    type_names: dict[str, str] = field(default_factory=dict)
    supports_struct: bool = False
    max_timestamp: str = "'infinity'::TIMESTAMP"
    min_timestamp: str = "'-infinity'::TIMESTAMP"
    max_bigint: str = "9223372036854775807"
    utc_timestamp_type: str = "TIMESTAMP"  # naive, holds UTC wall time
    utc_timestamptz_type: str = "TIMESTAMPTZ"
    zoned_type_names: tuple[str, ...] = ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ")
    # `{micros}` (a placeholder) as an interval, subtracted from a timestamp.
    interval_micros: str = "({micros} * INTERVAL '1 microsecond')"
    # The whole subtraction `{expr} - {micros}` microseconds, for engines without intervals of that size.
    minus_micros_template: str | None = None
    # `{a}` modulo `{b}` (truncating); `mod()` keeps `%` out of SQL text, where drivers with
    # `%s` placeholders would read it as one.
    modulo: str = "mod({a}, {b})"
    # A timestamp as integer microseconds since the epoch.
    epoch_us: str = "CAST(EXTRACT(EPOCH FROM {expr}) * 1000000 AS BIGINT)"
    # Naive or zoned timestamp -> naive UTC wall time; for a zoned column (`zoned_to_utc`, when set)
    # a cheaper form; naive UTC -> the zoned instant.
    to_utc_template: str = "(CAST({expr} AS TIMESTAMPTZ) AT TIME ZONE 'UTC')"
    zoned_to_utc: str | None = None
    to_zoned_template: str = "CAST({expr} AS {zoned})"
    # A value ordered like the tuple of `{items}`: each item from `composite_item`.
    composite_template: str = "ROW({items})"
    composite_item: str = "{expr}"
    composite_field_template: str = "({expr}).f{number}"
    # The value of `{value}` at the row with the greatest `{key}`, nulls of `{value}` skipped;
    # `{filter}` is ` FILTER (WHERE cond)` or empty, `{and_filter}` is ` AND cond` or empty.
    arg_max_template: str = "(array_agg({value} ORDER BY {key} DESC) FILTER (WHERE {value} IS NOT NULL{and_filter}))[1]"
    # The latest row of a group as one aggregate (`latest_rows_grouped_sql`): `{value}` is a struct
    # of `{fields}` (each from `row_struct_item`: a field `{name}` holding the column `{column}`, the
    # name quoted), taken at the greatest `{key}`, which is never null. None: no such aggregate.
    arg_max_row_template: str | None = None
    row_struct_item: str = "{column} := {column}"
    # `(created, ordinal)` packed into one 128-bit number (None: the engine has no such integers).
    packed_sort_key_template: str | None = None
    # The character quoting identifiers (doubled inside them).
    quote_char: str = '"'
    # Naive datetime parameters bound as UTC instants (a driver that would read them in the local zone).
    zoned_params: bool = False
    # The keyword after `name AS` that keeps a CTE computed once ("" when the engine has none).
    materialized: str = "MATERIALIZED "
    # Array and struct types: `{element}`; `{fields}` as `name type` pairs joined by `struct_separator`.
    array_template: str = "{element}[]"
    struct_template: str = "STRUCT({fields})"
    struct_field_template: str = "{name} {type}"

    @property
    def packs_sort_keys(self) -> bool:
        return self.packed_sort_key_template is not None

    def quote(self, identifier: str) -> str:
        """The one way an identifier enters SQL text: quoted (`quote_char`), inner quotes doubled."""
        if "\x00" in identifier:
            raise ValueError(f"identifier {identifier!r} contains a NUL character")
        c = self.quote_char
        return c + identifier.replace(c, c + c) + c

    def qualified(self, alias: str, identifier: str) -> str:
        return f"{self.quote(alias)}.{self.quote(identifier)}"

    def table_name(self, dotted: str) -> str:
        """A table given as `name` or `schema.name`, each part quoted."""
        return ".".join(self.quote(part) for part in dotted.split("."))

    def param(self, value: Any) -> Sql:
        if self.zoned_params and isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return Sql(self.placeholder, (value,))

    def minus_micros(self, expr: str, micros: int) -> Sql:
        """`expr - micros microseconds`, the amount bound as a parameter."""
        if self.minus_micros_template is not None:
            return Sql(self.minus_micros_template.format(expr=expr, micros=self.placeholder), (micros,))
        return Sql(f"({expr} - {self.interval_micros.format(micros=self.placeholder)})", (micros,))

    def mod(self, a: str, b: str | int) -> str:
        return self.modulo.format(a=a, b=b)

    def epoch_micros(self, expr: str) -> str:
        return self.epoch_us.format(expr=expr)

    def composite(self, exprs: Sequence[str]) -> str:
        """A value ordered lexicographically by `exprs` (a struct or row), for one comparison."""
        items = ", ".join(self.composite_item.format(index=i, expr=e) for i, e in enumerate(exprs))
        return self.composite_template.format(items=items)

    def composite_field(self, expr: str, index: int) -> str:
        """Field `index` of a value built by `composite`."""
        return self.composite_field_template.format(expr=expr, index=index, number=index + 1)

    def arg_max(self, value: str, key: str, where: str | None = None) -> str:
        """An aggregate: `value` at the row with the greatest `key` (rows with a null `value` skipped),
        over the rows where `where` holds."""
        return self.arg_max_template.format(
            value=value,
            key=key,
            filter=f" FILTER (WHERE {where})" if where else "",
            and_filter=f" AND ({where})" if where else "",
        )

    def arg_max_row(self, fields: Sequence[str], key: str) -> str:
        """An aggregate: the struct of the columns `fields` (same names) at the row with the greatest `key`."""
        if self.arg_max_row_template is None:
            raise ValueError(f"the {self.name} dialect has no latest-row aggregate")
        items = ", ".join(self.row_struct_item.format(name=f, column=self.quote(f)) for f in fields)
        return self.arg_max_row_template.format(fields=items, key=key)

    def filtered(self, select: Sql, condition: str) -> Sql:
        """`select` keeping the rows where `condition` holds; the condition may name the select's
        output columns, including window functions' (QUALIFY, or a wrapping select)."""
        if self.supports_qualify:
            return select + f" QUALIFY {condition}"
        return Sql("SELECT * FROM (") + select + f") AS {self.quote('__potluck_q')} WHERE {condition}"

    def to_utc(self, expr: str, type_name: str = "") -> str:
        """A timestamp (naive, zoned or finer-grained) as naive UTC wall time in microseconds.

        Connections run with the session time zone set to UTC, so a plain cast converts. For a
        zoned column (`type_name` as the engine reports it) `zoned_to_utc` may give a cheaper form
        (DuckDB: reuse the instant's epoch, skipping the calendar conversion of the cast).
        """
        if self.zoned_to_utc is not None and self.is_zoned(type_name):
            return self.zoned_to_utc.format(expr=expr, naive=self.utc_timestamp_type)
        return self.to_utc_template.format(expr=expr, naive=self.utc_timestamp_type)

    def to_zoned(self, expr: str) -> str:
        """A naive UTC timestamp as the zoned instant it stands for (the inverse of `to_utc`)."""
        return self.to_zoned_template.format(expr=expr, zoned=self.utc_timestamptz_type)

    def packed_sort_key(self, created: str, ordinal: str) -> str | None:
        """`(created, ordinal)` as one 128-bit number ordered like the pair; None if not available.

        `created` is a naive microsecond timestamp or null, `ordinal` a non-negative BIGINT. A
        null created timestamp sorts with -infinity, before every value (as in the join's sort
        key); +infinity sorts after every value. The created part is its epoch in microseconds
        (the encoding of the infinities sits just outside every finite epoch), shifted by 64 bits.
        """
        if self.packed_sort_key_template is None:
            return None
        return self.packed_sort_key_template.format(created=created, ordinal=ordinal, int64_max=_INT64_MAX, shift=2**64)

    def is_zoned(self, type_name: str) -> bool:
        """Whether an engine type name is a time-zone-aware timestamp at microsecond precision."""
        return type_name.upper() in self.zoned_type_names

    def cast(self, expr: str, type_name: str) -> str:
        return f"CAST({expr} AS {type_name})"

    def array_type(self, element: str) -> str:
        return self.array_template.format(element=element)

    def struct_type(self, fields: Sequence[tuple[str, str]]) -> str:
        pairs = ", ".join(self.struct_field_template.format(name=self.quote(k), type=t) for k, t in fields)
        return self.struct_template.format(fields=pairs)

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
    supports_qualify=True,
    supports_row_frames=True,
    supports_running_arg_max=True,
    interval_micros="to_microseconds({micros})",
    epoch_us="epoch_us({expr})",
    modulo="({a} % {b})",
    to_utc_template="CAST({expr} AS {naive})",
    # The instant's epoch, reused: several times cheaper than the cast; infinities (null epoch) cast.
    zoned_to_utc="COALESCE(make_timestamp(epoch_us({expr})), CAST({expr} AS {naive}))",
    to_zoned_template="COALESCE(make_timestamptz(epoch_us({expr})), CAST({expr} AS {zoned}))",
    composite_template="{{{items}}}",
    composite_item="'k{index}': {expr}",
    composite_field_template="struct_extract({expr}, 'k{index}')",
    arg_max_template="arg_max({value}, {key}){filter}",
    arg_max_row_template="arg_max_null(struct_pack({fields}), {key})",
    packed_sort_key_template=(
        "(CAST(COALESCE(epoch_us({created}), CASE WHEN {created} = 'infinity'::TIMESTAMP "
        "THEN {int64_max} ELSE -{int64_max} END) AS HUGEINT) * {shift} + {ordinal})"
    ),
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
