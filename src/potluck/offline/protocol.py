"""The offline store protocol: point-in-time joins and latest-row scans over batch sources."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from potluck.definitions.field import Field

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class SourceTable:
    """A batch source as the offline engine sees it: where its rows are and its column roles.

    The rows are in exactly one of: files (`path`), a table of the engine (`table`, `name` or
    `schema.name`) or a query in the engine's SQL (`query`). `columns` maps each output name (join
    key or feature field) to the source column holding it, after the source's `field_mapping`.
    """

    name: str
    path: str  # absolute path of a file, a directory of Parquet files, or a glob; "" for a table or query
    file_format: str  # "parquet" | "csv" for files (Spark also "json" | "avro"); "" otherwise
    timestamp_column: str
    created_timestamp_column: str  # "" when the source has none
    columns: dict[str, str]
    table: str = ""  # a table (or view) of the engine's database
    query: str = ""  # a SELECT in the engine's SQL
    # A SparkSource's date partition column and that column's format (Python strftime), for pruning.
    date_partition_column: str = ""
    date_partition_format: str = "%Y-%m-%d"

    @property
    def location(self) -> str:
        """Where the rows are, for messages: the path, the table or the query."""
        return self.path or self.table or self.query


@dataclass(frozen=True)
class LabelRule:
    """How a label view resolves several labelers' labels for one entity row (docs/semantics.md).

    `policy` is "labeler_priority" or "majority_vote" (last write wins is a plain view's join).
    """

    policy: str
    labeler_field: str  # the labeler feature's name (a key of `SourceTable.columns`)
    priorities: tuple[str, ...] = ()  # labeler_priority: highest first


@dataclass(frozen=True)
class WindowedFeature:
    """How one feature of an aggregation view is computed: a function of an input column over a window."""

    input: Field  # the column aggregated (its source column is `SourceTable.columns[input.name]`)
    function: str  # canonical: one of potluck.aggregation.rule.FUNCTIONS
    window_us: int | None  # None: a lifetime window
    hop_us: int | None


@dataclass(frozen=True)
class ViewQuery:
    """One feature view's part of a retrieval: which features, joined on which keys, how fresh.

    With `aggregations` (one per feature), each feature is a windowed aggregate of the source's
    events at the entity row's time instead of the point-in-time row's value; `ttl` is unused.
    """

    view_name: str
    source: SourceTable
    join_keys: tuple[str, ...]  # entity-dataframe column names, equal to the view's join keys
    features: tuple[Field, ...]
    output_names: tuple[str, ...]  # one per feature: `feature` or `view__feature`
    ttl: timedelta  # zero means unbounded
    labels: LabelRule | None = None  # a label view's conflict policy, when it is not last write wins
    aggregations: tuple[WindowedFeature, ...] = ()

    @property
    def source_fields(self) -> tuple[Field, ...]:
        """The fields read from the source: the features, or for aggregations their distinct inputs."""
        if not self.aggregations:
            return self.features
        out: dict[str, Field] = {}
        for a in self.aggregations:
            out.setdefault(a.input.name, a.input)
        return tuple(out.values())


@dataclass(frozen=True)
class RetrievalMetadata:
    """What a retrieval job was built from (Feast's `RetrievalJob.metadata`, with more).

    `features`: `view:feature` references; `keys`: the entity dataframe's columns other than its
    timestamp (join keys and request data); the entity rows' count and min/max event time (UTC);
    `registry_version`: the registry the job was planned against; `repo_path` resolves relative
    storage paths.
    """

    features: list[str]
    keys: list[str]
    min_event_timestamp: datetime | None = None
    max_event_timestamp: datetime | None = None
    entity_rows: int | None = None
    join_keys: list[str] | None = None
    full_feature_names: bool = False
    feature_service: str | None = None
    registry_version: int | None = None
    repo_path: str | None = None


@dataclass(frozen=True)
class EntityStats:
    """The entity rows of a point-in-time join: their columns, timestamp column, count and bounds."""

    columns: tuple[str, ...]
    timestamp_column: str
    row_count: int | None
    min_timestamp: datetime | None  # naive UTC
    max_timestamp: datetime | None


class RetrievalJob(Protocol):
    def to_arrow(self) -> pa.Table: ...
    def to_arrow_batches(self, batch_rows: int = ...) -> pa.RecordBatchReader: ...
    def to_df(self) -> Any: ...
    def to_parquet(self, path: str) -> None: ...
    def to_sql(self) -> str: ...


class OfflineStore(Protocol):
    def get_historical_features(
        self,
        entity_df: Any,
        views: Sequence[ViewQuery],
        *,
        availability_time: bool = False,
    ) -> RetrievalJob: ...

    def latest_rows(
        self, view: ViewQuery, start: datetime | None, end: datetime, batch_rows: int
    ) -> Iterator[pa.RecordBatch]:
        """Per entity, the latest row with start <= event_ts <= end, streamed in batches.

        Batches hold the join keys, the features (named by field), `event_timestamp` and
        `created_timestamp` (UTC, microseconds).
        """
        ...

    def source_schema(self, source: SourceTable) -> pa.Schema: ...

    def close(self) -> None: ...


@runtime_checkable
class SupportsAppend(Protocol):
    """Capability: appending rows to a source (push to the offline store)."""

    def append(self, source: SourceTable, table: pa.Table, *, part_name: str | None = None) -> None:
        """Append `table`; with `part_name` (a directory source only), as the part file of that name,
        replacing one written before under it."""
        ...


@dataclass
class SourceScan:
    """A view's source rows in a time range as a SQL relation on an engine cursor, for statistics.

    The relation's columns are the view's features under their own names; `position` is a SQL
    expression unique per row (stable across runs), `row_count` the number of rows when known
    without reading them. The caller closes `cursor`.
    """

    cursor: Any
    relation: Any  # potluck.offline.sql.Sql
    position: str | None
    row_count: int | None


@runtime_checkable
class SupportsSourceScan(Protocol):
    """Capability: a view's source rows as a relation the monitoring statistics run over in the engine."""

    def source_scan(self, view: ViewQuery, start: datetime | None, end: datetime | None) -> SourceScan: ...

    def engine_cursor(self) -> Any:
        """A new cursor of the engine, for statistics over other relations (datasets); the caller closes it."""


@runtime_checkable
class SupportsEventScan(Protocol):
    """Capability: reading a view's raw events in a time range (backfill of online tiles)."""

    def events(
        self, view: ViewQuery, start: datetime | None, end: datetime, batch_rows: int
    ) -> Iterator[pa.RecordBatch]:
        """Events with start <= event_ts <= end, ordered by join keys then physical position."""
        ...
