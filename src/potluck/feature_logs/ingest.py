"""`write_logged_features`: rows logged elsewhere (Feast's log schema) written into a service's log."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from potluck.definitions.errors import RetrievalError
from potluck.feature_logs.spec import LOG_DATE, LOG_TIMESTAMP, LogSpec
from potluck.feature_logs.writer import write_partitions


def _table(logs: Any, label: str) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(logs, pa.Table):
        return logs
    if isinstance(logs, (str, os.PathLike)):
        path = Path(logs)
        if not path.exists():
            raise RetrievalError(f"{label}: the logs path '{path}' does not exist")
        if path.is_dir():
            import pyarrow.dataset as ds

            return ds.dataset(path, format="parquet", ignore_prefixes=["."]).to_table()
        return pq.read_table(path)
    if type(logs).__module__.startswith("pandas"):
        return pa.Table.from_pandas(logs, preserve_index=False)
    raise RetrievalError(f"{label}: logs must be a pyarrow Table, a pandas DataFrame or a Parquet path")


def conform(spec: LogSpec, logs: Any) -> Any:
    """`logs` as a table of `spec.schema`; an error names every missing, unknown or unconvertible column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    label = f"write_logged_features (feature service '{spec.service}')"
    table = _table(logs, label)
    schema = spec.schema
    given = set(table.column_names)
    wanted = [f.name for f in schema]
    missing = [n for n in wanted if n not in given and n != LOG_DATE]
    unknown = [n for n in table.column_names if n not in set(wanted)]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(repr(n) for n in missing)}")
        if unknown:
            parts.append(f"unknown column(s) {', '.join(repr(n) for n in unknown)}")
        raise RetrievalError(f"{label}: {'; '.join(parts)}; the log's columns are {', '.join(wanted)}")
    arrays = []
    for field in schema:
        if field.name == LOG_DATE and LOG_DATE not in given:
            stamps = table.column(LOG_TIMESTAMP).cast(pa.timestamp("us", tz="UTC"))
            arrays.append(pc.cast(pc.floor_temporal(stamps, unit="day"), pa.date32()))
            continue
        column = table.column(field.name)
        try:
            arrays.append(column.cast(field.type) if column.type != field.type else column)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as err:
            raise RetrievalError(
                f"{label}: column '{field.name}' is {column.type} and does not convert to {field.type} ({err})"
            ) from None
    if table.column(LOG_TIMESTAMP).null_count:
        raise RetrievalError(f"{label}: column '{LOG_TIMESTAMP}' has nulls; every logged row needs its log time")
    return pa.Table.from_arrays(arrays, schema=schema)


def write_logged_features(
    spec: LogSpec, logs: Any, logging_config: Any = None, repo_path: str | os.PathLike[str] = "."
) -> list[Path]:
    """Write `logs` into `spec`'s log (or `logging_config`'s destination, relative to `repo_path`);
    returns the files written."""
    if logging_config is not None:
        destination = logging_config.destination
        path = Path(destination.path)
        spec = replace(
            spec,
            path=path if path.is_absolute() else Path(repo_path) / path,
            partition_by=tuple(destination.partition_columns),
        )
    return write_partitions(spec, conform(spec, logs))
