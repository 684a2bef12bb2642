"""Pushing rows into the views of a push source: validated first, then written newest-wins."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from potluck.definitions import FeatureView, PushSource
from potluck.definitions.errors import RetrievalError
from potluck.offline.protocol import OfflineStore, SupportsAppend
from potluck.online.protocol import OnlineStore
from potluck.retrieval.plans import online_view, source_table

if TYPE_CHECKING:
    import pyarrow as pa


class PushMode(enum.Enum):
    ONLINE = "online"
    OFFLINE = "offline"
    ONLINE_AND_OFFLINE = "online_and_offline"

    @classmethod
    def parse(cls, value: PushMode | str) -> PushMode:
        if isinstance(value, PushMode):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            raise RetrievalError(
                f"push: 'to' must be one of online, offline, online_and_offline; got {value!r}"
            ) from None


def to_arrow_table(rows: Any) -> pa.Table:
    import pyarrow as pa

    if isinstance(rows, pa.Table):
        return rows
    if isinstance(rows, Mapping):
        lengths = {len(v) for v in rows.values()}
        if len(lengths) > 1:
            raise RetrievalError("push: every column of 'df' must have the same number of values")
        try:
            return pa.table({k: list(v) for k, v in rows.items()})
        except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
            raise RetrievalError(f"push: the rows cannot be read as columns: {err}") from None
    if hasattr(rows, "to_arrow") and not hasattr(rows, "columns"):
        return rows.to_arrow()
    try:
        import pandas as pd

        if isinstance(rows, pd.DataFrame):
            return pa.Table.from_pandas(rows, preserve_index=False)
    except ImportError:
        pass
    if hasattr(rows, "to_arrow"):
        return rows.to_arrow()
    raise RetrievalError("push: 'df' must be a pandas or polars DataFrame, a pyarrow Table or a dict of columns")


def _cast(table: pa.Table, column: str, target: pa.DataType, what: str) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    values = table.column(column)
    if pa.types.is_timestamp(target):
        if pa.types.is_string(values.type):
            try:
                values = pc.cast(
                    pc.strptime(values, format="%Y-%m-%dT%H:%M:%S%z", unit="us", error_is_null=False), target
                )
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                values = pc.cast(values, pa.timestamp("us"))
        if pa.types.is_timestamp(values.type) and values.type.tz is None:
            values = pc.assume_timezone(values.cast(pa.timestamp("us")), "UTC")
    try:
        return pc.cast(values, target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        raise RetrievalError(
            f"push: column '{column}' holds {values.type} values that cannot be stored as {what}"
        ) from None


def prepare_rows(view: FeatureView, table: pa.Table) -> pa.Table:
    """The pushed rows as the online store's columns; every column checked against the view's schema."""
    import pyarrow as pa

    source = view.source
    ts_type = pa.timestamp("us", tz="UTC")
    needed = [*view.join_keys, source.timestamp_field, *view.feature_names]
    missing = [c for c in needed if c not in table.column_names]
    if missing:
        raise RetrievalError(
            f"push to feature view '{view.name}': missing column(s) {', '.join(repr(c) for c in missing)}"
        )
    allowed = {*needed, source.created_timestamp_column} - {""}
    unknown = [c for c in table.column_names if c not in allowed]
    if unknown:
        raise RetrievalError(
            f"push to feature view '{view.name}': unknown column(s) {', '.join(repr(c) for c in unknown)}; "
            f"the view's columns are {', '.join(sorted(allowed))}"
        )
    columns: dict[str, pa.Array] = {}
    for key_field in view.entity_columns:
        columns[key_field.name] = _cast(table, key_field.name, key_field.dtype.to_arrow(), key_field.dtype.name)
    for f in view.features:
        columns[f.name] = _cast(table, f.name, f.dtype.to_arrow(), f.dtype.name)
    columns["event_timestamp"] = _cast(table, source.timestamp_field, ts_type, "a timestamp")
    if source.created_timestamp_column and source.created_timestamp_column in table.column_names:
        columns["created_timestamp"] = _cast(table, source.created_timestamp_column, ts_type, "a timestamp")
    else:
        columns["created_timestamp"] = pa.array([datetime.now(UTC)] * table.num_rows, ts_type)
    if columns["event_timestamp"].null_count:
        raise RetrievalError(f"push to feature view '{view.name}': '{source.timestamp_field}' has null values")
    return pa.table(columns)


def push(
    source: PushSource,
    views: Sequence[FeatureView],
    rows: Any,
    mode: PushMode,
    *,
    project: str,
    repo_path: str,
    online: OnlineStore | None,
    offline: OfflineStore | None,
) -> int:
    """Validate `rows` for every view of `source`, then write them; returns the rows pushed."""
    import pyarrow as pa

    table = to_arrow_table(rows)
    if table.num_rows == 0:
        return 0
    prepared = [(view, prepare_rows(view, table)) for view in views]  # all checks before any write
    if mode in (PushMode.OFFLINE, PushMode.ONLINE_AND_OFFLINE) and offline is not None and views:
        batch = source.batch_source
        out: dict[str, Any] = {}
        for _view, data in prepared:  # the union of the views' columns, each validated
            for name in data.column_names:
                if name == "event_timestamp":
                    target = batch.timestamp_field
                elif name == "created_timestamp":
                    target = batch.created_timestamp_column
                else:
                    target = batch.column_for(name)
                if target and target not in out:
                    out[target] = data.column(name)
        if not isinstance(offline, SupportsAppend):
            raise RetrievalError(f"push to '{source.name}': the offline store cannot append rows")
        offline.append(source_table(views[0], repo_path), pa.table(out))
    if mode in (PushMode.ONLINE, PushMode.ONLINE_AND_OFFLINE) and online is not None:
        for view, data in prepared:
            if view.online:
                online.write(online_view(view, project), data)
    return int(table.num_rows)
