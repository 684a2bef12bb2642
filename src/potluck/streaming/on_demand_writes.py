"""On-demand views stored at write time (`write_to_online_store=True`): their rows follow every write.

When rows are written to a source view (push, `write_to_online_store`, materialize), each stored
on-demand view reading it gets rows computed by the one transform runner:

- one source view: from the written rows themselves, each output row with the event and created
  time of its input row. Newest-wins then keeps, for every key, the output of the very input row
  the source table keeps, whatever the order of concurrent writers.
- several source views: from the current online rows of all sources for the written keys, read
  after the source write, with the newest input event time and the time of computing as created
  time. The last writer reads the final rows of every source, so concurrent writers converge.

All outputs are computed, or (several sources) checked on the rows as they will be, before any
row is written: a function that fails or a missing request field writes nothing. Source rows are
written before output rows, so a write killed in between is healed by retrying it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from potluck.definitions import FeatureView, OnDemandFeatureView
from potluck.definitions.errors import RetrievalError
from potluck.definitions.types import is_basic
from potluck.online.protocol import OnlineStore, OnlineView, ReadRequest
from potluck.transforms.code import Udf
from potluck.transforms.runner import build_inputs, check_request_fields, run_transform

if TYPE_CHECKING:
    import pyarrow as pa

_TS = "event_timestamp"
_CREATED = "created_timestamp"


@dataclass(frozen=True)
class StoredView:
    """A stored on-demand view, its function, its online table and its sources' online tables."""

    view: OnDemandFeatureView
    udf: Udf
    target: OnlineView
    sources: tuple[OnlineView, ...]  # one per source view, in the order of `view.source_projections`

    @property
    def needs_request(self) -> bool:
        return bool(self.view.request_fields)


Followup = Callable[[], None]


def _request(view: OnDemandFeatureView, given: Mapping[str, Any] | None, rows: Sequence[int] | None) -> dict[str, Any]:
    """The view's request fields from the written rows' columns (`rows`: which rows, None: all)."""
    columns = given or {}
    check_request_fields(view, list(columns), "the written rows")
    out: dict[str, Any] = {}
    for f in view.request_fields:
        column = columns[f.name]
        if rows is not None:
            values = column.to_pylist() if hasattr(column, "to_pylist") else list(column)
            column = [values[i] for i in rows]
        out[f.name] = column
    return out


def _output_table(stored: StoredView, keys: Mapping[str, Any], arrays: list[Any], ts: Any, created: Any) -> pa.Table:
    import pyarrow as pa

    columns: dict[str, Any] = {k: keys[k] for k in stored.view.join_keys}
    columns.update(zip(stored.view.feature_names, arrays, strict=True))
    columns[_TS] = ts
    columns[_CREATED] = created
    return pa.table(columns)


def from_written_rows(stored: StoredView, rows: pa.Table, request: Mapping[str, Any] | None) -> pa.Table:
    """Outputs of a one-source view for written source rows (keys, features and the two times)."""
    view = stored.view
    (proj,) = view.source_projections
    sources = {(proj.name_to_use, f.name): rows.column(f.name) for f in proj.features}
    inputs = build_inputs(view, sources, _request(view, request, None), rows.num_rows)
    arrays = run_transform(view, stored.udf, inputs, view.features)
    keys = {k: rows.column(k) for k in view.join_keys}
    return _output_table(stored, keys, arrays, rows.column(_TS), rows.column(_CREATED))


def _unique_keys(stored: StoredView, rows: pa.Table) -> tuple[list[bytes], list[int]]:
    """The encoded keys of `rows`, each once, and per key the last row holding it."""
    encoder = stored.target.key_encoder
    columns = [rows.column(k).to_pylist() for k in stored.view.join_keys]
    last: dict[bytes, int] = {}
    for i, values in enumerate(zip(*columns, strict=True)):
        key = encoder.encode(list(values))
        last.pop(key, None)
        last[key] = i
    return list(last), list(last.values())


def from_online_rows(
    stored: StoredView,
    online: OnlineStore,
    rows: pa.Table,
    request: Mapping[str, Any] | None,
    overlay: tuple[str, pa.Table] | None = None,
) -> pa.Table:
    """Outputs of a view for the keys of `rows`, from the current online rows of all its sources.

    With `overlay` (a source view's name and the rows about to be written to it), those rows count
    where they are at least as new as the stored ones: the outputs as they will be after the write.
    """
    import pyarrow as pa

    from potluck.online import typed_values

    view = stored.view
    keys, positions = _unique_keys(stored, rows)
    results = online.read([ReadRequest(source, keys) for source in stored.sources])
    inputs: dict[tuple[str, str], Any] = {}
    newest: list[int | None] = [None] * len(keys)
    for proj, source, result in zip(view.source_projections, stored.sources, results, strict=True):
        found, stamps = list(result.rows), list(result.event_ts)
        if overlay is not None and overlay[0] == proj.name:
            written = overlay[1]
            ts = written.column(_TS).cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_pylist()
            values = [written.column(f.name).to_pylist() for f in source.features]
            for j, i in enumerate(positions):
                old = stamps[j]
                if old is None or ts[i] >= old:
                    found[j], stamps[j] = [column[i] for column in values], ts[i]
        index = {f.name: n for n, f in enumerate(source.features)}
        for f in proj.features:
            column = [None if row is None else row[index[f.name]] for row in found]
            dtype = source.features[index[f.name]].dtype
            inputs[(proj.name_to_use, f.name)] = (
                column if is_basic(dtype) else typed_values.column_to_arrow(dtype, column)
            )
        newest = [s if n is None or (s is not None and s > n) else n for n, s in zip(newest, stamps, strict=True)]
    table = build_inputs(view, inputs, _request(view, request, positions), len(keys))
    arrays = run_transform(view, stored.udf, table, view.features)
    key_columns = {k: rows.column(k).take(pa.array(positions, pa.int64())) for k in view.join_keys}
    stamp_type = pa.timestamp("us", tz="UTC")
    ts_column = pa.array(newest, pa.int64()).cast(stamp_type)
    created = pa.array([datetime.now(UTC)] * len(keys), stamp_type)
    out = _output_table(stored, key_columns, arrays, ts_column, created)
    return out.filter(ts_column.is_valid())  # a key none of the sources holds (reset meanwhile): nothing to store


def followups(
    source: FeatureView,
    rows: pa.Table,
    stored: Sequence[StoredView],
    online: OnlineStore,
    request: Mapping[str, Any] | None,
) -> list[Followup]:
    """The writes of the stored views that read `source`, to run once `rows` are written to it.

    Everything that can fail on the data runs here, before any write: the one-source outputs are
    computed, several-source outputs are computed once on the rows as they will be.
    """
    out: list[Followup] = []
    for s in stored:
        if source.name not in [p.name for p in s.view.source_projections]:
            continue
        if len(s.sources) == 1:
            table = from_written_rows(s, rows, request)
            out.append(_writer(online, s.target, table))
        else:
            from_online_rows(s, online, rows, request, overlay=(source.name, rows))
            out.append(_recompute(online, s, rows, request))
    return out


def _writer(online: OnlineStore, target: OnlineView, table: pa.Table) -> Followup:
    def write() -> None:
        online.write(target, table)

    return write


def _recompute(online: OnlineStore, stored: StoredView, rows: pa.Table, request: Mapping[str, Any] | None) -> Followup:
    def write() -> None:
        online.write(stored.target, from_online_rows(stored, online, rows, request))

    return write


def direct_rows(stored: StoredView, table: Any) -> pa.Table:
    """Outputs for rows written to the on-demand view itself: its inputs (source features under
    `feature` or `view__feature`, request fields), join keys and event time are columns of `table`
    (the push module's `Columns`)."""
    import pyarrow as pa

    from potluck.streaming.push_values import to_column

    view = stored.view
    context = f"write to on-demand feature view '{view.name}'"
    names = table.column_names
    ts_type = pa.timestamp("us", tz="UTC")
    missing = [k for k in view.join_keys if k not in names]
    if _TS not in names:
        missing.append(_TS)
    sources: dict[tuple[str, str], Any] = {}
    for proj in view.source_projections:
        for f in proj.features:
            full = f"{proj.name_to_use}__{f.name}"
            name = full if full in names else f.name if f.name in names else None
            if name is None:
                missing.append(f.name)
                continue
            sources[(proj.name_to_use, f.name)] = to_column(
                table.column(name), f.dtype.to_arrow(), name, context, f.dtype.name, f.dtype
            )
    if missing:
        raise RetrievalError(
            f"{context}: missing column(s) {', '.join(repr(m) for m in missing)}; the rows need its join keys, "
            f"'{_TS}', every source feature (as 'feature' or 'view__feature') and its request fields"
        )
    request = {
        f.name: to_column(table.column(f.name), f.dtype.to_arrow(), f.name, context, f.dtype.name, f.dtype)
        for f in view.request_fields
        if f.name in names
    }
    inputs = build_inputs(view, sources, _request(view, request, None), table.num_rows)
    arrays = run_transform(view, stored.udf, inputs, view.features)
    keys = {}
    for f in view.entity_columns:
        keys[f.name] = to_column(table.column(f.name), f.dtype.to_arrow(), f.name, context, f.dtype.name)
        if keys[f.name].null_count:
            raise RetrievalError(f"{context}: join key '{f.name}' is null in a row; every row needs a key")
    ts = to_column(table.column(_TS), ts_type, _TS, context, "a timestamp")
    if ts.null_count:
        raise RetrievalError(f"{context}: '{_TS}' is null in a row")
    created_name = "created" if "created" in names else _CREATED if _CREATED in names else None
    created = (
        to_column(table.column(created_name), ts_type, created_name, context, "a timestamp")
        if created_name is not None
        else pa.array([datetime.now(UTC)] * table.num_rows, ts_type)
    )
    return _output_table(stored, keys, arrays, ts, created)
