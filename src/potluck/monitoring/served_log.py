"""The served values of a feature service: its feature log (Feast's log schema) as a DuckDB relation.

The feature server writes the log (`potluck.feature_logs`): per entity row the join keys, the
request fields, per feature its value `{view}__{feature}`, `...__timestamp` (the event time of the
row served) and `...__status`, and `__log_timestamp`, `__request_id`. This module finds the files
of one service, selects a log-time window and draws a seeded sample of rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from potluck.definitions.errors import RetrievalError
from potluck.feature_logs.spec import LOG_TIMESTAMP, REQUEST_ID, STATUS_SUFFIX, TIMESTAMP_SUFFIX
from potluck.monitoring.sources import parquet_files
from potluck.monitoring.statistics import Column, describe
from potluck.offline.sql import DUCKDB, Sql

if TYPE_CHECKING:
    import pyarrow as pa

    from potluck.retrieval.references import ViewSelection
    from potluck.store import FeatureStore

_POSITION = "file_index, file_row_number"


@dataclass(frozen=True)
class LoggedFeature:
    """One feature of the service as the log holds it."""

    view: str
    feature: str
    column: str  # the value column, `{view}__{feature}` (or the selection's alias)
    on_demand: bool  # an on-demand output: compared by distribution only

    @property
    def timestamp_column(self) -> str:
        return self.column + TIMESTAMP_SUFFIX

    @property
    def status_column(self) -> str:
        return self.column + STATUS_SUFFIX


@dataclass
class ServedLog:
    service: str
    path: Path
    keys: tuple[str, ...]
    features: list[LoggedFeature]
    selections: list[ViewSelection]  # the regular views, as `get_historical_features` reads them
    files: list[str]

    def relation(self, start: datetime | None, end: datetime | None) -> Sql:
        """The logged rows with `start <= __log_timestamp <= end` (either bound optional)."""
        text = "(SELECT *, file_index FROM read_parquet(?, file_row_number = true, hive_partitioning = false, union_by_name = true)"
        params: list[Any] = [self.files]
        bounds = [(">=", start), ("<=", end)]
        where = [f"{DUCKDB.quote(LOG_TIMESTAMP)} {op} ?" for op, bound in bounds if bound is not None]
        params += [_utc(bound) for _, bound in bounds if bound is not None]
        text += (" WHERE " + " AND ".join(where) if where else "") + ")"
        return Sql(text, tuple(params))

    def value_columns(self, cursor: Any, relation: Sql) -> list[Column]:
        """The served values, as statistics columns (feature `feature` of view `view`)."""
        types = describe(cursor, relation)
        missing = [f.column for f in self.features if f.column not in types]
        if missing:
            raise RetrievalError(
                f"feature service '{self.service}': the log under {self.path} has no column "
                f"{', '.join(repr(m) for m in missing[:5])}; the service changed since these rows were logged "
                "(pass --start after the change)"
            )
        return [Column(f.feature, f.view, types[f.column], f.column) for f in self.features]

    def sample(self, cursor: Any, relation: Sql, rows: int, seed: int) -> pa.Table:
        """`rows` logged rows drawn without replacement, the same in every run over the same files:
        those with the smallest hash of (file, row number, seed)."""
        q = DUCKDB.quote
        names = [*self.keys, LOG_TIMESTAMP, REQUEST_ID]
        for f in self.features:
            if not f.on_demand:
                names += [f.column, f.timestamp_column, f.status_column]
        present = describe(cursor, relation)
        cols = ", ".join(q(n) for n in dict.fromkeys(names) if n in present)
        text = (
            f"SELECT {cols} FROM {relation.text} "
            f"ORDER BY hash({_POSITION}, {int(seed)}), file_index, file_row_number LIMIT {int(rows)}"
        )
        relation_out = cursor.sql(text, params=list(relation.params))
        fetch = getattr(relation_out, "to_arrow_table", None) or relation_out.fetch_arrow_table
        table: pa.Table = fetch()
        return table


def served_log(store: FeatureStore, feature_service: str) -> ServedLog:
    """The log of `feature_service` as the registry defines it now; an error when it logs nothing."""
    from potluck.retrieval.on_demand import resolve_request
    from potluck.server.store_backend import log_spec

    spec = log_spec(store, feature_service)
    if spec is None:
        raise RetrievalError(
            f"feature service '{feature_service}' has no logging_config, so no served values are logged; "
            "give it LoggingConfig(destination=FileLoggingDestination(path=...)) and serve it (docs/skew.md)"
        )
    request = resolve_request(
        store.get_feature_service(feature_service), store.registry_snapshot(), full_feature_names=True
    )
    features = [
        LoggedFeature(s.view.name, f.name, name, False)
        for s in request.selections
        for name, f in zip(s.output_names, s.features, strict=True)
    ]
    features += [
        LoggedFeature(c.view.name, f.name, name, True)
        for c in request.on_demand
        for name, f in zip(c.output_names, c.features, strict=True)
    ]
    if not spec.path.exists():
        raise RetrievalError(
            f"feature service '{feature_service}': no logged rows yet under {spec.path}; "
            "serve it with `potluck serve` and read it by feature_service"
        )
    files = parquet_files(spec.path)
    return ServedLog(
        feature_service, spec.path, tuple(n for n, _ in spec.keys), features, list(request.selections), files
    )


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
