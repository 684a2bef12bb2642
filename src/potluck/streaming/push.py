"""Pushing rows into the views of a push source: validated first, then written newest-wins."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from potluck.definitions import DataSource, FeatureView, PushSource
from potluck.definitions.errors import RetrievalError
from potluck.definitions.sources import batch_file_source
from potluck.offline.protocol import OfflineStore, SupportsAppend
from potluck.online.protocol import OnlineStore
from potluck.repo.sources import source_schema
from potluck.retrieval.plans import online_view, source_table
from potluck.streaming.on_demand_writes import Followup, StoredView, direct_rows, followups
from potluck.streaming.push_values import to_column

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


class Columns:
    """Pushed rows by column: Python lists (dicts of columns) or Arrow columns (tables, DataFrames)."""

    def __init__(self, columns: dict[str, Any], num_rows: int) -> None:
        self.columns = columns
        self.num_rows = num_rows

    @property
    def column_names(self) -> list[str]:
        return list(self.columns)

    def column(self, name: str) -> Any:
        return self.columns[name]


def to_columns(rows: Any) -> Columns:
    """The rows to push, column by column; Python values stay as they are until checked per view.

    In a dict of columns, a value that is not a list (nor a tuple, array or Series) is one value
    for every row: it is repeated to the length of the list columns, as pandas does. A dict of
    scalars only is one row. A list is always a column, so an array feature's single value is
    given as a list holding one list.
    """
    if isinstance(rows, Mapping):
        return _dict_columns(rows)
    import pyarrow as pa

    try:
        table = to_arrow_table(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        if not hasattr(rows, "columns") or not hasattr(rows, "__getitem__"):
            raise
        # Objects Arrow cannot type on its own (UUIDs, sets, mixed dicts): Python values per column.
        return Columns({str(c): list(rows[c].tolist()) for c in rows.columns}, len(rows))
    return Columns({name: table.column(name) for name in table.column_names}, table.num_rows)


def _is_column(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return True
    return hasattr(value, "__len__") and hasattr(value, "__iter__") and not isinstance(value, (str, bytes, Mapping))


def _dict_columns(rows: Mapping[Any, Any]) -> Columns:
    lists = {str(k): list(v) for k, v in rows.items() if _is_column(v)}
    lengths = {len(v) for v in lists.values()}
    if len(lengths) > 1:
        shown = ", ".join(f"'{k}': {len(v)}" for k, v in lists.items())
        raise RetrievalError(
            f"push: every column of 'df' must have the same number of values ({shown}); "
            "a single value (not a list) is repeated for every row"
        )
    num_rows = lengths.pop() if lengths else (1 if rows else 0)
    columns = {str(k): lists[str(k)] if str(k) in lists else [v] * num_rows for k, v in rows.items()}
    return Columns(columns, num_rows)


def to_arrow_table(rows: Any) -> pa.Table:
    import pyarrow as pa

    if isinstance(rows, pa.Table):
        return rows
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


def _first_null(values: pa.Array) -> int | None:
    import pyarrow.compute as pc

    if not values.null_count:
        return None
    return int(pc.index(values.is_null(), True).as_py())


def pushed_fields(view: FeatureView) -> list[Any]:
    """The value columns a push to `view` carries: its features, or for a view with aggregations
    the columns it aggregates (typed by its schema)."""
    aggregations = getattr(view, "aggregations", None)
    if not aggregations:
        return list(view.features)
    inputs = {f.name: f for f in view.input_fields}
    return [inputs[c] for c in dict.fromkeys(a.column for a in aggregations) if c in inputs]


def prepare_rows(view: FeatureView, table: Columns | pa.Table) -> pa.Table:
    """The pushed rows as the online store's columns; every column checked against the view's schema.

    Columns the view does not declare are left out here (see `offline_rows` for the batch source).
    """
    import pyarrow as pa

    source = view.source
    context = f"push to feature view '{view.name}'"
    ts_type = pa.timestamp("us", tz="UTC")
    inputs = pushed_fields(view)
    needed = [*view.join_keys, source.timestamp_field, *(f.name for f in inputs)]
    missing = [c for c in needed if c not in table.column_names]
    if missing:
        raise RetrievalError(
            f"{context}: missing column(s) {', '.join(repr(c) for c in missing)}; "
            f"the view needs {', '.join(repr(c) for c in needed)} (other columns are ignored online)"
        )

    def cast(name: str, target: pa.DataType, what: str) -> pa.Array:
        return to_column(table.column(name), target, name, context, what)

    columns: dict[str, pa.Array] = {}
    for key_field in view.entity_columns:
        key = cast(key_field.name, key_field.dtype.to_arrow(), key_field.dtype.name)
        null = _first_null(key)
        if null is not None:
            raise RetrievalError(f"{context}: join key '{key_field.name}' is null in row {null}; every row needs a key")
        columns[key_field.name] = key
    for f in inputs:
        columns[f.name] = to_column(table.column(f.name), f.dtype.to_arrow(), f.name, context, f.dtype.name, f.dtype)
    columns["event_timestamp"] = cast(source.timestamp_field, ts_type, "a timestamp")
    if source.created_timestamp_column and source.created_timestamp_column in table.column_names:
        columns["created_timestamp"] = cast(source.created_timestamp_column, ts_type, "a timestamp")
    else:
        columns["created_timestamp"] = pa.array([datetime.now(UTC)] * table.num_rows, ts_type)
    null = _first_null(columns["event_timestamp"])
    if null is not None:
        raise RetrievalError(f"{context}: '{source.timestamp_field}' is null in row {null}")
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
    stored: Sequence[StoredView] = (),
    idempotency_key: str | None = None,
) -> int:
    """Validate `rows` for every view of `source`, then write them; returns the rows pushed.

    `stored`: the on-demand views stored at write time that read these views (their rows follow).
    Views with aggregations get the rows as tile updates; with `idempotency_key`, a push repeated
    with the same key changes none of their tiles again (plain views are newest-wins anyway).
    """
    table = to_columns(rows)
    if table.num_rows == 0:
        return 0
    prepared = [(view, prepare_rows(view, table)) for view in views]  # all checks before any write
    to_offline = mode in (PushMode.OFFLINE, PushMode.ONLINE_AND_OFFLINE) and offline is not None and views
    appended = offline_rows(source, prepared, table, repo_path) if to_offline else None
    if to_offline and not isinstance(offline, SupportsAppend):
        raise RetrievalError(f"push to '{source.name}': the offline store cannot append rows")
    to_online = mode in (PushMode.ONLINE, PushMode.ONLINE_AND_OFFLINE) and online is not None
    after: list[Followup] = []
    if to_online and stored:  # on-demand outputs computed (and so checked) before anything is written
        assert online is not None
        for view, data in prepared:
            if view.online:
                after.extend(followups(view, data, stored, online, table.columns))
    # Online first: a failed online write leaves nothing behind. Online writes are newest-wins, so
    # when the offline append fails after them, retrying the same push changes nothing online.
    # Source rows before on-demand rows: a push killed in between is healed by pushing it again.
    if to_online:
        assert online is not None
        for view, data in prepared:
            if not view.online:
                continue
            target = online_view(view, project)
            if target.tiles is None:
                online.write(target, data)
                continue
            from potluck.streaming.tile_feed import events_from_table, update_tiles

            keys, events = events_from_table(target, target.tiles, data)
            update_tiles(online, target, target.tiles, keys, events, position=idempotency_key)
        for write in after:
            write()
    if appended is not None:
        assert isinstance(offline, SupportsAppend)
        offline.append(source_table(views[0], repo_path), appended)
    return int(table.num_rows)


# The time columns Feast's remote client (and Potluck's) sends to /write-to-online-store, whatever the
# view's source calls them.
CLIENT_EVENT_TIME, CLIENT_CREATED_TIME = "event_timestamp", "created"


def _source_time_names(view: FeatureView, table: Columns) -> Columns:
    """`table` with the client's time columns named as the view's source names them.

    A `created` column the view does not know is dropped when the source keeps no created time.
    """
    source = view.source
    names = table.column_names
    renames: dict[str, str] = {}
    if source.timestamp_field not in names and CLIENT_EVENT_TIME in names:
        renames[CLIENT_EVENT_TIME] = source.timestamp_field
    declared = {*view.join_keys, *view.feature_names, source.timestamp_field, source.created_timestamp_column}
    if CLIENT_CREATED_TIME in names and CLIENT_CREATED_TIME not in declared:
        created = source.created_timestamp_column
        renames[CLIENT_CREATED_TIME] = created if created and created not in names else ""
    if not renames:
        return table
    columns = {renames.get(n, n): table.column(n) for n in names if renames.get(n, n)}
    return Columns(columns, table.num_rows)


def write_online(
    view: FeatureView, rows: Any, *, project: str, online: OnlineStore, stored: Sequence[StoredView] = ()
) -> int:
    """Write `rows` to the online table of one view, newest wins (the rules of a push); returns the rows written.

    The event time is the source's timestamp column or, failing that, `event_timestamp`; the created
    time its created column or `created`. The rows of `stored` on-demand views that read it follow.
    """
    if not view.online:
        raise RetrievalError(f"write to feature view '{view.name}': the view is not online (online=False)")
    table = _source_time_names(view, to_columns(rows))
    if table.num_rows == 0:
        return 0
    data = prepare_rows(view, table)
    after = followups(view, data, stored, online, table.columns) if stored else []
    online.write(online_view(view, project), data)
    for write in after:
        write()
    return int(table.num_rows)


def write_on_demand(stored: StoredView, rows: Any, *, online: OnlineStore) -> int:
    """Write rows to an on-demand view stored at write time: its function runs over the given inputs."""
    table = to_columns(rows)
    if table.num_rows == 0:
        return 0
    online.write(stored.target, direct_rows(stored, table))
    return int(table.num_rows)


def write_offline(view: FeatureView, rows: Any, *, repo_path: str, offline: OfflineStore) -> int:
    """Append rows to a view's batch source, by the same rules as an offline push."""
    table = to_columns(rows)
    if table.num_rows == 0:
        return 0
    data = offline_rows(view.source, [(view, prepare_rows(view, table))], table, repo_path)
    if not isinstance(offline, SupportsAppend):
        raise RetrievalError(f"write to the offline store of feature view '{view.name}': it cannot append rows")
    offline.append(source_table(view, repo_path), data)
    return int(table.num_rows)


def offline_rows(
    source: DataSource, prepared: list[tuple[FeatureView, pa.Table]], table: Columns, repo_path: str
) -> pa.Table:
    """The rows for the batch source: the views' validated columns under the source's names.

    When the batch source already has files, the rows take exactly its columns: a pushed column
    the views do not declare is kept when the source has it (converted to its type), and a source
    column that was not pushed is null. Without files yet, the views' columns start the schema.
    """
    import pyarrow as pa

    batch = batch_file_source(source)
    validated: dict[str, Any] = {}
    for _view, data in prepared:
        for name in data.column_names:
            if name == "event_timestamp":
                target = batch.timestamp_field
            elif name == "created_timestamp":
                target = batch.created_timestamp_column
            else:
                target = batch.column_for(name)
            if target and target not in validated:
                validated[target] = data.column(name)
    schema = source_schema(source, repo_path)
    if schema is None:
        return pa.table(validated)
    context = f"push to the batch source '{batch.name}'"
    out: dict[str, Any] = {}
    for f in schema:
        if f.name in validated:
            out[f.name] = validated[f.name]
        elif f.name in table.column_names:
            out[f.name] = to_column(table.column(f.name), f.type, f.name, context, str(f.type))
        else:
            out[f.name] = pa.nulls(table.num_rows, f.type)
    return pa.table(out)
