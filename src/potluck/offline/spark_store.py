"""The Spark offline store: point-in-time joins and latest-row scans computed by Spark SQL.

The queries are the shared builders' (`potluck.offline.sql`) in the Spark SQL dialect
(`sql/spark_dialect.py`), so the semantics, tie-breaks and rules are DuckDB's. Sources and entity
rows are registered as temporary views (`spark_sources.py`); values are bound parameters of
`spark.sql(query, args=[...])`. Results stay in Spark until a `to_*` method asks for them:
`to_spark_df` hands over the DataFrame, `to_arrow` collects it as Arrow. Rows for materialization
are written by Spark to the staging location as Parquet and read back in bounded batches.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from potluck.definitions.errors import RetrievalError
from potluck.offline import spark_sources
from potluck.offline.protocol import EntityStats, RetrievalMetadata, SourceTable, ViewQuery
from potluck.offline.spark_config import SparkOfflineStoreConfig
from potluck.offline.spark_session import import_pyspark, spark_session
from potluck.offline.sql import EntityInput, SourceInput, Sql, Strategy, latest_rows_grouped_sql, point_in_time_sql
from potluck.offline.sql.query import ROW
from potluck.offline.sql.spark_dialect import SPARK
from potluck.offline.validation import (
    check_entity_columns,
    check_join_keys,
    check_key_types,
    check_output_names,
    check_source_columns,
    infer_timestamp_column,
)

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

_counter = itertools.count()
_BATCH_ROWS = 1_000_000
_INSTANT = "timestamp"  # Spark's TIMESTAMP: an instant, compared as is (the session zone is UTC)


def _temp_name(kind: str) -> str:
    return f"__potluck_{kind}_{next(_counter)}_{uuid.uuid4().hex[:8]}"


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value


def _from_micros(value: Any) -> datetime | None:
    if value is None:
        return None
    return datetime(1970, 1, 1) + timedelta(microseconds=int(value))


class SparkRetrievalJob:
    """A prepared point-in-time query on a Spark session; nothing runs until a `to_*` method is called."""

    def __init__(self, store: SparkOfflineStore, query: Sql, views: list[str], entity_stats: EntityStats) -> None:
        self._store = store
        self._query = query
        self._views = views  # temporary views the query reads, dropped by `close`
        self.entity_stats = entity_stats
        self.metadata: RetrievalMetadata | None = None  # set by the FeatureStore that built the job

    def to_spark_df(self) -> Any:
        """The result as a Spark DataFrame (lazy; ordered like the entity rows)."""
        return self._store.sql(self._query)

    def to_arrow(self) -> pa.Table:
        return _utc_times(self.to_spark_df().toArrow())

    def to_arrow_batches(self, batch_rows: int = _BATCH_ROWS) -> pa.RecordBatchReader:
        import pyarrow as pa

        table = self.to_arrow()
        return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=batch_rows))

    def to_df(self) -> pd.DataFrame:
        frame: pd.DataFrame = self.to_arrow().to_pandas()
        return frame

    def to_parquet(self, path: str | os.PathLike[str]) -> None:
        """Write the result to one Parquet file, in order."""
        import pyarrow.parquet as pq

        pq.write_table(self.to_arrow(), str(path))

    def persist(self, storage: Any, allow_overwrite: bool = False, timeout: int | None = None) -> None:
        from potluck.offline.persist import persist

        persist(self, storage, allow_overwrite)

    def to_sql(self) -> str:
        """The Spark SQL text, its parameters listed in a trailing comment (for reading, not running)."""
        params = ", ".join(repr(p) for p in self._query.params)
        return f"{self._query.text}\n-- parameters: [{params}]"

    def close(self) -> None:
        self._store.drop_views(self._views)
        self._views = []


def _utc_times(table: pa.Table) -> pa.Table:
    """Timestamp columns as `timestamp[us, tz=UTC]` (Spark hands them in the session zone, or as ns)."""
    import pyarrow as pa

    target = pa.timestamp("us", tz="UTC")
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type != target:
            column = table.column(i)
            if field.type.tz is None:
                column = column.cast(pa.timestamp(field.type.unit, tz="UTC"))
            table = table.set_column(i, field.name, column.cast(target))
    return table


def _arrow_bounds(table: pa.Table, column: str) -> tuple[int, int | None, int | None]:
    """The row count and the least and greatest timestamp of `column` in microseconds since the
    epoch (UTC; a timestamp without zone is UTC wall time, as Spark reads it in the UTC session)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = table.column(column)
    if pa.types.is_date(values.type):
        values = values.cast(pa.timestamp("s"))
    if not pa.types.is_timestamp(values.type):
        raise RetrievalError(f"entity_df column '{column}' is not a timestamp (it is {values.type})")
    bounds = pc.min_max(values.cast(pa.int64()))
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    # Floored to microseconds, as Spark stores them (monotone, so the bounds stay the bounds).
    per_us = {"s": (1_000_000, 1), "ms": (1_000, 1), "us": (1, 1), "ns": (1, 1_000)}[values.type.unit]

    def micros(value: int | None) -> int | None:
        return None if value is None else value * per_us[0] // per_us[1]

    return table.num_rows, micros(low), micros(high)


class _Entity:
    __slots__ = ("input", "spark_types", "types")

    def __init__(self, input: EntityInput, types: dict[str, str], spark_types: dict[str, str]) -> None:
        self.input = input
        self.types = types
        self.spark_types = spark_types


class SparkOfflineStore:
    """Offline store whose joins and scans run on a Spark session (the active one, or one from `spark_conf`)."""

    def __init__(self, config: SparkOfflineStoreConfig | None = None, session: Any = None) -> None:
        self.config = config or SparkOfflineStoreConfig()
        import_pyspark()
        self._spark = session if session is not None else spark_session(self.config)
        self._spark.conf.set("spark.sql.session.timeZone", "UTC")

    @property
    def spark(self) -> Any:
        return self._spark

    def sql(self, query: Sql) -> Any:
        """A DataFrame of a query with bound parameters."""
        return self._spark.sql(query.text, args=list(query.params))

    def _register(self, frame: Any, kind: str, views: list[str]) -> str:
        name = _temp_name(kind)
        frame.createOrReplaceTempView(name)
        views.append(name)
        return name

    def drop_views(self, views: Sequence[str]) -> None:
        for name in views:
            self._spark.catalog.dropTempView(name)

    # -- point-in-time join -------------------------------------------------------------------

    def get_historical_features(
        self,
        entity_df: Any,
        views: Sequence[ViewQuery],
        *,
        availability_time: bool = False,
        strategy: Strategy | None = None,
        aggregation_plan: str | None = None,
    ) -> SparkRetrievalJob:
        """Training data: every entity row with each view's features as of its timestamp (as on DuckDB).

        `strategy` forces the join strategy (tests cross-check them); aggregation views always use
        the join plan, whatever `aggregation_plan` asks (Spark has no row-dependent window frames).
        """
        temp: list[str] = []
        try:
            entity = self._prepare_entity(entity_df, temp)
            check_output_names(entity.input.columns, views)
            inputs = [(view, self._source_input(view, entity, temp)) for view in views]
            query = point_in_time_sql(
                SPARK,
                entity.input,
                inputs,
                availability_time=availability_time,
                strategy=strategy,
                joined_aggregations=frozenset(i for i, v in enumerate(views) if v.aggregations),
            )
        except BaseException:
            self.drop_views(temp)
            raise
        given = entity.input
        stats = EntityStats(
            given.columns, given.timestamp_column, given.row_count, given.min_timestamp, given.max_timestamp
        )
        return SparkRetrievalJob(self, query, temp, stats)

    def _entity_frame(self, entity_df: Any) -> tuple[Any, pa.Table | None]:
        """The entity rows as a DataFrame with their input position in the row column, and the Arrow
        table it was uploaded from (None when the rows were in Spark or in files already)."""
        from pyspark.sql import DataFrame
        from pyspark.sql import functions as F

        if isinstance(entity_df, DataFrame):
            check_entity_columns(entity_df.columns)
            return entity_df.withColumn(ROW, F.monotonically_increasing_id()), None
        if isinstance(entity_df, (str, os.PathLike)):
            text = str(entity_df)
            if isinstance(entity_df, os.PathLike) or text.lower().endswith(".parquet") or os.path.isdir(text):
                files = spark_sources.entity_files(text)
                frame = spark_sources.read_files(self._spark, files, "parquet", "entity_df could not be read")
                return frame.withColumnRenamed(spark_sources.POSITION, ROW), None
            try:
                frame = self._spark.sql(text.strip().rstrip(";"))
            except Exception as err:
                raise RetrievalError(f"entity_df could not be read: {spark_sources._first_line(err)}") from None
            check_entity_columns(frame.columns)
            return frame.withColumn(ROW, F.monotonically_increasing_id()), None
        import numpy as np
        import pyarrow as pa

        from potluck.offline.duckdb_store import _as_arrow

        table = _as_arrow(entity_df)
        assert table is not None
        check_entity_columns(table.column_names)
        if table.num_rows == 0:
            raise RetrievalError("entity_df is empty: it needs at least one row")
        table = table.append_column(ROW, pa.array(np.arange(table.num_rows, dtype=np.int64)))
        return self._spark.createDataFrame(table), table

    def _prepare_entity(self, entity_df: Any, temp: list[str]) -> _Entity:
        frame, uploaded = self._entity_frame(entity_df)
        types = spark_sources.type_names(frame)
        spark_types = {f.name: f.dataType.simpleString() for f in frame.schema.fields}
        types.pop(ROW, None)
        check_entity_columns(list(types))
        ts_col = infer_timestamp_column(types)
        naive = spark_types[ts_col] == _INSTANT
        name = self._register(frame, "entity", temp)
        if uploaded is not None:
            row = _arrow_bounds(uploaded, ts_col)  # on the driver: no Spark job before the query
        else:
            ts = SPARK.quote(ts_col) if naive else SPARK.to_utc(SPARK.quote(ts_col))
            try:
                row = self._spark.sql(
                    f"SELECT count(*), unix_micros(min({ts})), unix_micros(max({ts})) FROM {SPARK.quote(name)}"
                ).collect()[0]
            except Exception as err:
                raise RetrievalError(f"entity_df could not be read: {spark_sources._first_line(err)}") from None
        if not row[0]:
            raise RetrievalError("entity_df is empty: it needs at least one row")
        return _Entity(
            EntityInput(
                relation=Sql(SPARK.quote(name)),
                columns=tuple(types),
                timestamp_column=ts_col,
                timestamp_is_utc_naive=naive,
                min_timestamp=_from_micros(row[1]),
                max_timestamp=_from_micros(row[2]),
                timestamp_type=spark_types[ts_col],
                row_count=int(row[0]),
            ),
            types,
            spark_types,
        )

    def _source_input(self, view: ViewQuery, entity: _Entity | None, temp: list[str]) -> SourceInput:
        if entity is not None:
            check_join_keys(view, entity.types)
        frame, stable, rows = spark_sources.source_frame(self._spark, view, entity.spark_types if entity else {})
        columns = spark_sources.type_names(frame)
        location = view.source.table or ("a query" if view.source.query else view.source.path)
        check_source_columns(view, columns, location)
        if entity is not None:
            check_key_types(view, entity.types, columns)
        name = self._register(frame, "source", temp)
        ts_type = spark_sources.spark_type(frame, view.source.timestamp_column)
        created = view.source.created_timestamp_column
        created_type = spark_sources.spark_type(frame, created) if created else ""
        return SourceInput(
            relation=Sql(SPARK.quote(name)),
            ordinal=SPARK.quote(spark_sources.POSITION),
            timestamp_is_utc_naive=ts_type == _INSTANT,
            created_is_utc_naive=bool(created) and created_type == _INSTANT,
            timestamp_type=ts_type,
            created_type=created_type,
            row_count=rows,
            ordinal_is_stable=stable,
        )

    # -- materialization, schema --------------------------------------------------------------

    def _staged(self, query: Sql, batch_rows: int) -> Iterator[pa.RecordBatch]:
        """A query's rows written by Spark as Parquet under the staging location, read back in order
        in batches of at most `batch_rows`; the staged files are removed afterwards."""
        import pyarrow.dataset as ds

        if batch_rows < 1:
            raise ValueError("batch_rows must be at least 1")
        base = self.config.staging_location
        if base is not None and "://" in base:
            # Remote staging cannot be listed from here: collect through Arrow instead.
            table = _utc_times(self.sql(query).toArrow())
            yield from table.to_batches(max_chunksize=batch_rows)
            return
        if base is not None:
            os.makedirs(base, exist_ok=True)
        folder = os.path.join(base or tempfile.gettempdir(), _temp_name("staged"))
        try:
            self.sql(query).write.mode("overwrite").parquet(folder)
            files = sorted(
                os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".parquet") and f.startswith("part-")
            )
            if not files:
                return
            dataset = ds.dataset(files, format="parquet")
            for batch in dataset.to_batches(batch_size=batch_rows):
                yield from _utc_times(_table_of(batch)).to_batches(max_chunksize=batch_rows)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def latest_rows(
        self, view: ViewQuery, start: datetime | None, end: datetime, batch_rows: int
    ) -> Iterator[pa.RecordBatch]:
        """Per entity key, the latest row with `start <= event_ts <= end`, in batches of <= `batch_rows`."""
        temp: list[str] = []
        try:
            yield from self._staged(self.latest_rows_query(view, start, end, temp), batch_rows)
        finally:
            self.drop_views(temp)

    def latest_rows_query(self, view: ViewQuery, start: datetime | None, end: datetime, temp: list[str]) -> Sql:
        """The latest-rows query over the view's source, registered as a temporary view whose name is
        added to `temp` (the caller drops it with `drop_views`).

        One aggregation per key (`latest_rows_grouped_sql`: `max_by` of the row at the greatest
        `(event_ts, created_ts, position)`), the same rows as the window query of `latest_rows_sql`
        without sorting every row: Spark aggregates each partition before its one shuffle.
        """
        source = self._source_input(view, None, temp)
        lower = None if start is None else _naive_utc(start)
        return latest_rows_grouped_sql(SPARK, view, source, lower, _naive_utc(end))

    def events(
        self, view: ViewQuery, start: datetime | None, end: datetime, batch_rows: int
    ) -> Iterator[pa.RecordBatch]:
        """Every event with `start <= event_ts <= end`, ordered by key then position (`sql/events.py`)."""
        temp: list[str] = []
        try:
            yield from self._staged(self.events_query(view, start, end, temp), batch_rows)
        finally:
            self.drop_views(temp)

    def events_query(
        self, view: ViewQuery, start: datetime | None, end: datetime, temp: list[str], *, position: str | None = None
    ) -> Sql:
        """The event scan (`events_sql`, with `position` unordered) over the view's source, registered
        as a temporary view whose name is added to `temp` (the caller drops it with `drop_views`)."""
        from potluck.offline.sql.events import events_sql
        from potluck.offline.sql.windows import inputs_view

        view = inputs_view(view) if view.aggregations else view
        source = self._source_input(view, None, temp)
        lower = None if start is None else _naive_utc(start)
        return events_sql(SPARK, view, source, lower, _naive_utc(end), position=position)

    def source_schema(self, source: SourceTable) -> pa.Schema:
        """The Arrow schema of a source as Spark reads it."""
        view = ViewQuery(source.name, source, (), (), (), timedelta(0))
        frame, _, _ = spark_sources.source_frame(self._spark, view, {})
        schema: pa.Schema = frame.drop(spark_sources.POSITION).limit(0).toArrow().schema
        return schema

    def append(self, source: SourceTable, table: pa.Table, *, part_name: str | None = None) -> None:
        """Append rows to a Parquet file source, exactly as the DuckDB store does (`duckdb_store.append_rows`)."""
        if source.table or source.query or "://" in source.path:
            raise RetrievalError(
                f"append to source '{source.name}': only local Parquet file sources can be appended to; "
                "write to a Spark table with Spark itself"
            )
        from potluck.offline.duckdb_store import append_rows

        append_rows(source, table, part_name=part_name)

    def close(self) -> None:
        """Nothing to release: the session belongs to the process (other stores and jobs may share it)."""

    def __enter__(self) -> SparkOfflineStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _table_of(batch: pa.RecordBatch) -> pa.Table:
    import pyarrow as pa

    return pa.Table.from_batches([batch])


__all__ = ["SparkOfflineStore", "SparkRetrievalJob"]


if TYPE_CHECKING:
    from potluck.offline.protocol import OfflineStore, RetrievalJob, SupportsAppend, SupportsEventScan

    def _conforms(
        store: SparkOfflineStore, job: SparkRetrievalJob
    ) -> tuple[OfflineStore, SupportsAppend, SupportsEventScan, RetrievalJob]:
        return store, store, store, job
