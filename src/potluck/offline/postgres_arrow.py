"""Arrow tables into PostgreSQL (COPY) and query results out of it (a server-side cursor), in batches.

Upload: the table's column types are mapped to PostgreSQL types, the rows written by Arrow's CSV
writer and streamed with `COPY ... FROM STDIN (FORMAT csv)`: no Python object per value. Empty
strings are quoted and nulls are bare empty fields, which COPY tells apart.

Download: a named (server-side) cursor in binary format, fetched `batch_rows` at a time; each
batch becomes Arrow columns typed from the result's column types (microsecond timestamps, zoned
ones in UTC), so memory holds one batch, not the result.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from potluck.definitions.errors import RetrievalError
from potluck.offline.sql import POSTGRES, Sql

if TYPE_CHECKING:
    import pyarrow as pa

_cursors = itertools.count()

# PostgreSQL type OIDs -> type names as the offline checks spell them (DuckDB's spelling where it differs).
_TYPE_NAMES = {
    16: "BOOLEAN",
    17: "BYTEA",
    20: "BIGINT",
    21: "SMALLINT",
    23: "INTEGER",
    25: "TEXT",
    700: "REAL",
    701: "DOUBLE",
    1042: "VARCHAR",
    1043: "VARCHAR",
    1082: "DATE",
    1114: "TIMESTAMP",
    1184: "TIMESTAMP WITH TIME ZONE",
    1700: "DECIMAL",
    114: "JSON",
    3802: "JSONB",
    2950: "UUID",
}
_ARRAYS = {1000: 16, 1001: 17, 1016: 20, 1005: 21, 1007: 23, 1009: 25, 1021: 700, 1022: 701, 1015: 1043, 1115: 1114}


def type_name(oid: int) -> str:
    """The type name of a result column (arrays as `ELEMENT[]`)."""
    if oid in _ARRAYS:
        return type_name(_ARRAYS[oid]) + "[]"
    return _TYPE_NAMES.get(oid, f"OID {oid}")


def arrow_type(oid: int) -> pa.DataType | None:
    """The Arrow type of a result column; None to let Arrow infer it from the values."""
    import pyarrow as pa

    simple: dict[int, pa.DataType] = {
        16: pa.bool_(),
        17: pa.binary(),
        20: pa.int64(),
        21: pa.int16(),
        23: pa.int32(),
        25: pa.string(),
        700: pa.float32(),
        701: pa.float64(),
        1042: pa.string(),
        1043: pa.string(),
        1082: pa.date32(),
        1114: pa.timestamp("us"),
        1184: pa.timestamp("us", tz="UTC"),
        114: pa.string(),
        3802: pa.string(),
    }
    if oid in _ARRAYS:
        inner = arrow_type(_ARRAYS[oid])
        return None if inner is None else pa.list_(inner)
    return simple.get(oid)


def postgres_type(name: str, dtype: pa.DataType) -> str:
    """The PostgreSQL column type for an Arrow column, or a RetrievalError naming it."""
    import pyarrow as pa

    t = pa.types
    if t.is_dictionary(dtype):
        return postgres_type(name, dtype.value_type)
    checks: list[tuple[Any, str]] = [
        (t.is_boolean, "BOOLEAN"),
        (t.is_int8, "SMALLINT"),
        (t.is_int16, "SMALLINT"),
        (t.is_uint8, "SMALLINT"),
        (t.is_int32, "INTEGER"),
        (t.is_uint16, "INTEGER"),
        (t.is_int64, "BIGINT"),
        (t.is_uint32, "BIGINT"),
        (t.is_uint64, "NUMERIC(20)"),
        (t.is_float16, "REAL"),
        (t.is_float32, "REAL"),
        (t.is_float64, "DOUBLE PRECISION"),
        (t.is_decimal, "NUMERIC"),
        (t.is_string, "TEXT"),
        (t.is_large_string, "TEXT"),
        (t.is_date, "DATE"),
        (t.is_null, "TEXT"),
    ]
    for check, pg in checks:
        if check(dtype):
            return pg
    if t.is_timestamp(dtype):
        return "TIMESTAMPTZ" if dtype.tz is not None else "TIMESTAMP"
    raise RetrievalError(
        f"column '{name}' has type {dtype}, which cannot be uploaded to the PostgreSQL offline store; "
        "use numbers, strings, booleans, dates or timestamps"
    )


def _csv_ready(table: pa.Table) -> pa.Table:
    """Columns as the CSV writer and COPY agree on them: dictionaries decoded, times in microseconds."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    for given in table.columns:
        column = given
        dtype = column.type
        if pa.types.is_dictionary(dtype):
            column = pc.cast(column, dtype.value_type)
            dtype = column.type
        if pa.types.is_timestamp(dtype) and dtype.unit != "us":
            column = column.cast(pa.timestamp("us", tz=dtype.tz), safe=False)  # truncates below a microsecond
        if pa.types.is_null(dtype):
            column = column.cast(pa.string())
        columns.append(column)
    return pa.Table.from_arrays(columns, names=table.column_names)


def copy_into(cursor: Any, table_sql: str, table: pa.Table, chunk_rows: int = 200_000) -> None:
    """Stream `table`'s rows into the existing table `table_sql` (quoted) with COPY."""
    import pyarrow.csv as pacsv

    ready = _csv_ready(table)
    columns = ", ".join(POSTGRES.quote(c) for c in ready.column_names)
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    with cursor.copy(f"COPY {table_sql} ({columns}) FROM STDIN (FORMAT csv)") as copy:
        for offset in range(0, max(ready.num_rows, 1), chunk_rows):
            part = ready.slice(offset, chunk_rows)
            if part.num_rows == 0:
                break
            sink = io.BytesIO()
            pacsv.write_csv(part, sink, options)
            copy.write(sink.getvalue())


def create_table(cursor: Any, table_sql: str, table: pa.Table, *, temporary: bool, extra: str = "") -> None:
    """Create `table_sql` with `table`'s columns (plus `extra` column definitions) and load its rows."""
    columns = [f"{POSTGRES.quote(f.name)} {postgres_type(f.name, f.type)}" for f in table.schema]
    if extra:
        columns.append(extra)
    kind = "TEMPORARY TABLE" if temporary else "TABLE"
    cursor.execute(f"CREATE {kind} {table_sql} ({', '.join(columns)})")
    copy_into(cursor, table_sql, table)


# Planner settings for the join queries, in the reading transaction only. The planner cannot
# estimate the rows of the builders' CTEs (a semi-joined source reads as a few hundred rows when it
# holds millions) and then picks nested loops that run for hours; hash and merge joins are right
# for these queries whatever the sizes (a LATERAL subquery still runs as a loop: it is the only
# plan there). JIT compilation costs more than it saves on them. A cursor is planned for its first
# rows (10% by default): every row is read here, so it is planned for all of them.
READ_SETTINGS = ("SET LOCAL enable_nestloop = off", "SET LOCAL jit = off", "SET LOCAL cursor_tuple_fraction = 1.0")


def batches(conn: Any, query: Sql, batch_rows: int) -> Iterator[pa.RecordBatch]:
    """The rows of `query` as record batches of at most `batch_rows`, from a server-side cursor."""
    import pyarrow as pa

    with conn.transaction(), conn.cursor(name=f"potluck_read_{next(_cursors)}", binary=True) as cursor:
        for setting in READ_SETTINGS:
            conn.execute(setting)
        cursor.itersize = batch_rows
        cursor.execute(query.text, query.params)
        description = cursor.description or []
        names = [d.name for d in description]
        types = [arrow_type(d.type_code) for d in description]
        schema: pa.Schema | None = None
        while True:
            rows = cursor.fetchmany(batch_rows)
            if not rows and schema is not None:
                return
            columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
            arrays = [pa.array(values, type=kind) for values, kind in zip(columns, types, strict=True)]
            batch = pa.RecordBatch.from_arrays(arrays, names=names)
            if schema is None:
                schema = batch.schema
            elif batch.schema != schema:
                batch = batch.cast(schema)
            yield batch
            if not rows or len(rows) < batch_rows:
                return


def result_schema(conn: Any, query: Sql) -> pa.Schema:
    """The Arrow schema of `query`'s result, without reading rows."""
    import pyarrow as pa

    with conn.cursor() as cursor:
        cursor.execute(Sql("SELECT * FROM (").text + query.text + ") AS __potluck_s LIMIT 0", query.params)
        fields = [pa.field(d.name, arrow_type(d.type_code) or pa.string()) for d in cursor.description or []]
    return pa.schema(fields)
