"""The offline engines the contract suite runs on, behind one fixture (`offline_engine` / `store`).

Tests write their data as Parquet files and describe it with a file `SourceTable`; each engine
exposes that data as its own kind of source (DuckDB reads the files; PostgreSQL loads them into
tables), so one test checks every engine against the same brute-force reference.

To add an engine: a factory in `ENGINES` yielding an `Engine` (its store, how it exposes the test
data, how many property examples it runs, and its known gaps as strict expected failures).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from potluck.offline.protocol import SourceTable, ViewQuery
from potluck.offline.sql import Strategy


def _parquet_relation(table: pa.Table, folder: Path) -> str:
    import pyarrow.parquet as pq

    path = folder / f"relation-{uuid.uuid4().hex[:8]}.parquet"
    pq.write_table(table, path)
    return "read_parquet('" + str(path).replace("'", "''") + "')"


@dataclass
class Engine:
    """An offline store with the way it sees the tests' data, and what it does not do (yet)."""

    name: str
    store: Any
    expose: Callable[[SourceTable], SourceTable] = lambda source: source
    # Rows as a relation the engine's SQL can read (for entity dataframes given as SQL queries).
    relation: Callable[[pa.Table, Path], str] = _parquet_relation
    reads_files: bool = True  # FileSource paths (Parquet, CSV, folders, globs) are read as they are
    example_scale: float = 1.0  # share of each property test's examples run on this engine
    strategies: tuple[Strategy | None, ...] = (
        None,
        Strategy.ASOF,
        Strategy.WINDOW,
        Strategy.RUNNING,
        Strategy.RANGE,
        Strategy.LATERAL,
    )
    aggregation_plans: tuple[str | None, ...] = (None, "window", "join")
    # Known gaps: a test's name (or `name[params]`, the engine's id left out) -> the reason.
    gaps: dict[str, str] = field(default_factory=dict)

    def examples(self, n: int) -> int:
        """How many examples a property test of `n` examples (on DuckDB) runs here."""
        return max(3, round(n * self.example_scale))

    def strategy(self, wanted: Strategy | None) -> Strategy | None:
        """A strategy the engine has: the wanted one, else its default."""
        return wanted if wanted in self.strategies else None

    def plan(self, wanted: str | None) -> str | None:
        return wanted if wanted in self.aggregation_plans else None

    def view(self, view: ViewQuery) -> ViewQuery:
        if not view.source.path:
            return view  # already one of the engine's sources
        return replace(view, source=self.expose(view.source))

    # The store's methods, on the engine's own sources.
    def get_historical_features(self, entity_df: Any, views: Sequence[ViewQuery], **kw: Any) -> Any:
        return self.store.get_historical_features(entity_df, [self.view(v) for v in views], **kw)

    def latest_rows(self, view: ViewQuery, start: datetime | None, end: datetime, batch_rows: int) -> Iterator[Any]:
        return self.store.latest_rows(self.view(view), start, end, batch_rows)

    def events(self, view: ViewQuery, start: datetime | None, end: datetime, batch_rows: int) -> Iterator[Any]:
        return self.store.events(self.view(view), start, end, batch_rows)

    def source_schema(self, source: SourceTable) -> Any:
        return self.store.source_schema(self.expose(source) if source.path else source)

    def relation_of(self, table: pa.Table, folder: Path) -> str:
        """`table`'s rows as something that can follow FROM in the engine's SQL."""
        return self.relation(table, folder)

    def __getattr__(self, name: str) -> Any:
        if name == "store":
            raise AttributeError(name)
        return getattr(self.store, name)


@contextlib.contextmanager
def duckdb_engine() -> Iterator[Engine]:
    from potluck.offline.duckdb_store import DuckDBOfflineStore
    from potluck.repo.config import DuckDBOfflineStoreConfig

    store = DuckDBOfflineStore(DuckDBOfflineStoreConfig(threads=2, memory_limit="2GB"))
    try:
        yield Engine("duckdb", store)
    finally:
        store.close()


def _spark_relation(table: pa.Table, folder: Path) -> str:
    import pyarrow.parquet as pq

    path = folder / f"relation-{uuid.uuid4().hex[:8]}.parquet"
    pq.write_table(table, path)
    return "parquet.`" + str(path).replace("`", "``") + "`"


@contextlib.contextmanager
def spark_engine() -> Iterator[Engine]:
    """The Spark store on the test run's one Spark session (`spark_support.start_spark` reuses it)."""
    from potluck.offline.spark_store import SparkOfflineStore
    from spark_support import start_spark

    store = SparkOfflineStore(session=start_spark())
    yield Engine(
        "spark",
        store,
        relation=_spark_relation,
        example_scale=0.08,  # every example is a few Spark jobs
        strategies=(None, Strategy.RUNNING, Strategy.WINDOW, Strategy.LATERAL),
        aggregation_plans=(None, "join"),
        gaps=SPARK_GAPS,
    )


# Known gaps of the Spark engine (docs/spark.md), as strict expected failures.
_NO_INFINITY = "Spark timestamps have no infinities (years 1 to 9999 only)"
SPARK_GAPS: dict[str, str] = {
    "test_output_timestamp_equals_the_input_instant_at_the_extremes": _NO_INFINITY,
    "test_positional_dedup_orders_null_and_infinite_created_timestamps": _NO_INFINITY,
    "test_views_are_joined_narrowest_first_and_columns_keep_the_requested_order": (
        "the test reads DuckDB's as-of plan in the SQL text; Spark's plan has no as-of join"
    ),
    "test_source_column_named_like_a_row_position_is_an_error": (
        "Spark reserves no column name for row positions (it reads them from _metadata), so nothing is refused"
    ),
}

@contextlib.contextmanager
def postgres_engine() -> Iterator[Engine]:
    """The PostgreSQL offline store on a database of its own; the tests' files become tables."""
    import psycopg
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from potluck.offline import duckdb_sources, postgres_arrow
    from potluck.offline.postgres_config import PostgreSQLOfflineStoreConfig
    from potluck.offline.postgres_store import PostgreSQLOfflineStore
    from potluck.offline.sql import POSTGRES
    from tests_support import POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, require_server

    require_server("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    database = f"potluck_offline_{uuid.uuid4().hex[:10]}"
    admin = f"host={POSTGRES_HOST} port={POSTGRES_PORT} user={POSTGRES_USER} dbname=test"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    config = PostgreSQLOfflineStoreConfig(
        type="postgres", host=POSTGRES_HOST, port=POSTGRES_PORT, database=database, user=POSTGRES_USER, max_conn=4
    )
    loader = psycopg.connect(config.conninfo(), autocommit=True)
    loaded: dict[tuple[Any, ...], str] = {}

    def load(table: pa.Table) -> str:
        name = f"t{len(loaded)}_{uuid.uuid4().hex[:6]}"
        with loader.cursor() as cursor:
            postgres_arrow.create_table(cursor, POSTGRES.quote(name), table, temporary=False)
        return name

    def expose(source: SourceTable) -> SourceTable:
        files = duckdb_sources.source_files(source)
        key = (source.path, *((f, os.stat(f).st_mtime_ns, os.stat(f).st_size) for f in files))
        if key not in loaded:
            if source.file_format == "csv":
                parts = [pacsv.read_csv(f) for f in files]
            else:
                parts = [pq.read_table(f) for f in files]
            loaded[key] = load(pa.concat_tables(parts, promote_options="default"))
        return replace(source, path="", file_format="", table=loaded[key])

    store = PostgreSQLOfflineStore(config)
    try:
        yield Engine(
            "postgres",
            store,
            expose=expose,
            relation=lambda table, folder: POSTGRES.quote(load(table)),
            reads_files=False,
            example_scale=0.25,
            strategies=(None, Strategy.WINDOW, Strategy.RANGE, Strategy.LATERAL),
            aggregation_plans=(None, "join"),
            gaps={
                "test_the_sawtooth_at_fixed_points[window]": (
                    "window frames cannot depend on the row here: aggregations use the join plan"
                ),
                # psycopg has no Python value for an infinite timestamp, so results holding one fail.
                "test_output_timestamp_equals_the_input_instant_at_the_extremes": (
                    "infinite entity timestamps cannot be read back (psycopg has no value for them)"
                ),
                # DuckDB's two-scan plan, over test data whose infinite timestamps the upload cannot carry.
                "test_positional_dedup_orders_null_and_infinite_created_timestamps": (
                    "the two-scan de-duplication is DuckDB's; infinite created timestamps are not uploaded"
                ),
            },
        )
    finally:
        store.close()
        loader.close()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


# name -> a context manager yielding the engine for the whole session, and the marks of its tests.
ENGINES: dict[str, tuple[Callable[[], contextlib.AbstractContextManager[Engine]], tuple[Any, ...]]] = {
    "duckdb": (duckdb_engine, ()),
    "spark": (spark_engine, (pytest.mark.spark,)),
    "postgres": (postgres_engine, (pytest.mark.postgres,)),
}


def engine_params() -> list[Any]:
    return [pytest.param(name, marks=marks, id=name) for name, (_, marks) in ENGINES.items()]


def apply_gaps(engine: Engine, request: pytest.FixtureRequest) -> None:
    """Mark the running test as a strict expected failure when it is one of the engine's known gaps."""
    node = request.node
    name = getattr(node, "originalname", node.name)
    callspec = getattr(node, "callspec", None)
    params = "-".join(p for p in (callspec.id.split("-") if callspec else []) if p != engine.name)
    for key in (name, f"{name}[{params}]"):
        if key in engine.gaps:
            node.add_marker(pytest.mark.xfail(strict=True, reason=f"{engine.name}: {engine.gaps[key]}"))
            return


def require_files(engine: Engine) -> None:
    """Skip a test of reading source files on an engine whose sources are not files."""
    if not engine.reads_files:
        pytest.skip(f"reads FileSource files; the {engine.name} engine reads its own tables")


@pytest.fixture(scope="session", params=engine_params())
def offline_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """Each offline engine, once per session (shared by every contract test)."""
    factory, _ = ENGINES[request.param]
    with factory() as engine:
        yield engine


@pytest.fixture
def store(offline_engine: Engine, request: pytest.FixtureRequest) -> Engine:
    """The engine for one test, with the engine's known gaps applied as strict expected failures."""
    apply_gaps(offline_engine, request)
    return offline_engine
