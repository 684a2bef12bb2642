"""`get_online_features`: validate entity rows, look keys up in one store call, apply ttl, fan out."""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

from potluck.definitions.errors import RetrievalError
from potluck.definitions.field import Field
from potluck.definitions.types import PotluckType, is_basic
from potluck.online import typed_values
from potluck.online.keys import KeyTypeError
from potluck.online.protocol import OnlineStore, OnlineView, ReadRequest, ReadResult

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TIMESTAMP_SUFFIX = "__ts"


class FieldStatus(enum.StrEnum):
    """Per value: whether it was found and fresh enough to serve."""

    PRESENT = "PRESENT"
    NOT_FOUND = "NOT_FOUND"
    OUTSIDE_MAX_AGE = "OUTSIDE_MAX_AGE"
    NULL_VALUE = "NULL_VALUE"  # an on-demand output that is null although its inputs were found


_PRESENT, _NOT_FOUND, _OUTSIDE = FieldStatus.PRESENT, FieldStatus.NOT_FOUND, FieldStatus.OUTSIDE_MAX_AGE


@dataclass(frozen=True)
class OnlineSelection:
    """Features of one view to serve, and their output column names (same length)."""

    view: OnlineView
    features: tuple[str, ...]
    output_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.features) != len(self.output_names):
            raise ValueError("OnlineSelection: features and output_names must have the same length")
        known = [f.name for f in self.view.features]
        for name in self.features:
            if name not in known:
                from potluck.definitions.errors import suggestion

                raise RetrievalError(
                    f"feature view '{self.view.name}' has no feature '{name}'. {suggestion(name, known)}"
                )

    @cached_property
    def indices(self) -> tuple[int, ...]:
        names = [f.name for f in self.view.features]
        return tuple(names.index(f) for f in self.features)


@dataclass
class _ViewPart:
    selection: OnlineSelection
    positions: list[int] | None  # per entity row: index into the unique lookups (None: one per row)
    rows: list[list[Any] | None]  # per unique lookup: served row (None unless PRESENT)
    stamps: list[int | None]  # per unique lookup: event time in microseconds
    status: list[FieldStatus]  # per unique lookup


def _per_row(part: _ViewPart, unique: list[Any]) -> list[Any]:
    """A per-lookup list spread out to one value per entity row."""
    if part.positions is None:
        return unique
    return [unique[p] for p in part.positions]


@dataclass
class ComputedPart:
    """The outputs of one on-demand view: values and statuses per output, one entry per entity row."""

    view_name: str
    output_names: tuple[str, ...]
    dtypes: tuple[PotluckType, ...]
    values: list[list[Any]]
    statuses: list[list[FieldStatus]]
    key_fields: tuple[Field, ...] = ()  # the join keys of the views it read


@dataclass
class OnlineResponse:
    """The features of each entity row, column-oriented, in input order."""

    entity_columns: dict[str, list[Any]]
    num_rows: int
    _parts: list[_ViewPart] = field(repr=False)
    _values: dict[str, list[Any]] | None = field(default=None, repr=False)
    # On-demand outputs, served after the regular views' features.
    _computed: list[ComputedPart] = field(default_factory=list, repr=False)
    # Every column of the entity rows (request data included), for on-demand views.
    request_columns: dict[str, list[Any]] = field(default_factory=dict, repr=False)

    @cached_property
    def feature_names(self) -> list[str]:
        """Entity columns first, then the feature outputs in request order."""
        return [*self.entity_columns, *self.output_names]

    @cached_property
    def output_names(self) -> list[str]:
        names = [name for part in self._parts for name in part.selection.output_names]
        return names + [name for c in self._computed for name in c.output_names]

    @cached_property
    def dtypes(self) -> dict[str, PotluckType]:
        """output name -> the declared type of its feature."""
        out = {
            name: part.selection.view.features[idx].dtype
            for part in self._parts
            for idx, name in zip(part.selection.indices, part.selection.output_names, strict=True)
        }
        out.update((name, dtype) for c in self._computed for name, dtype in zip(c.output_names, c.dtypes, strict=True))
        return out

    @cached_property
    def view_names(self) -> dict[str, str]:
        """output name -> the feature view it was read from."""
        out = {name: part.selection.view.name for part in self._parts for name in part.selection.output_names}
        out.update((name, c.view_name) for c in self._computed for name in c.output_names)
        return out

    @property
    def values(self) -> dict[str, list[Any]]:
        """output name -> values per entity row (None unless PRESENT)."""
        if self._values is not None:
            return self._values
        out: dict[str, list[Any]] = {}
        for part in self._parts:
            served = _per_row(part, part.rows)
            names = part.selection.output_names
            if None in served:
                for idx, name in zip(part.selection.indices, names, strict=True):
                    out[name] = [None if r is None else r[idx] for r in served]
            elif served:
                by_feature = list(zip(*served, strict=True))
                for idx, name in zip(part.selection.indices, names, strict=True):
                    out[name] = list(by_feature[idx])
            else:
                for name in names:
                    out[name] = []
        for c in self._computed:
            out.update(zip(c.output_names, c.values, strict=True))
        self._values = out
        return out

    @cached_property
    def statuses(self) -> dict[str, list[FieldStatus]]:
        out: dict[str, list[FieldStatus]] = {}
        for part in self._parts:
            column = _per_row(part, part.status)
            for name in part.selection.output_names:
                out[name] = column
        for c in self._computed:
            out.update(zip(c.output_names, c.statuses, strict=True))
        return out

    def statuses_of(self, name: str) -> list[FieldStatus]:
        """The statuses of one regular view's output, without building the other columns'."""
        for part in self._parts:
            if name in part.selection.output_names:
                return _per_row(part, part.status)
        raise KeyError(name)

    @cached_property
    def event_timestamps(self) -> dict[str, list[datetime | None]]:
        """output name -> event time of the row read (None when not found), UTC."""
        out: dict[str, list[datetime | None]] = {}
        for part in self._parts:
            unique = [None if us is None else _EPOCH + timedelta(microseconds=us) for us in part.stamps]
            column = _per_row(part, unique)
            for name in part.selection.output_names:
                out[name] = column
        computed: list[datetime | None] = [_EPOCH] * self.num_rows  # computed now: epoch zero, as Feast
        for c in self._computed:
            out.update((name, computed) for name in c.output_names)
        return out

    def event_micros(self) -> dict[str, list[int | None]]:
        """As `event_timestamps`, in microseconds since the epoch (no datetime built): for the feature log."""
        out: dict[str, list[int | None]] = {}
        for part in self._parts:
            column = _per_row(part, part.stamps)
            for name in part.selection.output_names:
                out[name] = column
        zeros: list[int | None] = [0] * self.num_rows
        for c in self._computed:
            out.update((name, zeros) for name in c.output_names)
        return out

    def _seconds(self) -> dict[str, list[int]]:
        """output name -> event time of its row in whole seconds since the epoch (0 when not found)."""
        out: dict[str, list[int]] = {}
        for part in self._parts:
            column = _per_row(part, [0 if us is None else us // 1_000_000 for us in part.stamps])
            for name in part.selection.output_names:
                out[name] = column
        zeros = [0] * self.num_rows
        for c in self._computed:
            out.update((name, zeros) for name in c.output_names)
        return out

    def to_dict(self, include_event_timestamps: bool = False) -> dict[str, list[Any]]:
        """Join-key columns, then feature columns, each a list (Feast's shape).

        With `include_event_timestamps`, every column `<name>` is followed by `<name>__ts`: the
        event time of its row in whole seconds since the epoch, 0 for join keys and rows not
        found (as Feast gives them).
        """
        values = self.values
        if not include_event_timestamps:
            return {**self.entity_columns, **values}
        out: dict[str, list[Any]] = {}
        zeros = [0] * self.num_rows
        for name, column in self.entity_columns.items():
            out[name] = column
            out[name + TIMESTAMP_SUFFIX] = zeros
        seconds = self._seconds()
        for name in self.output_names:
            out[name] = values[name]
            out[name + TIMESTAMP_SUFFIX] = seconds[name]
        return out

    def to_arrow(self, include_event_timestamps: bool = False) -> pa.Table:
        """The columns of `to_dict` as an Arrow table, each with its declared type (`__ts`: int64)."""
        import pyarrow as pa

        types: dict[str, pa.DataType] = {}  # join keys
        dtypes: dict[str, Any] = {}  # features
        for part in self._parts:
            view = part.selection.view
            for key, key_field in zip(view.join_keys, view.key_fields, strict=True):
                types.setdefault(key, key_field.dtype.to_arrow())
            features = view.features
            for idx, name in zip(part.selection.indices, part.selection.output_names, strict=True):
                dtypes[name] = features[idx].dtype
        for c in self._computed:
            dtypes.update(zip(c.output_names, c.dtypes, strict=True))
            for key_field in c.key_fields:
                types.setdefault(key_field.name, key_field.dtype.to_arrow())
        arrays: dict[str, pa.Array] = {}
        for name, column in self.to_dict(include_event_timestamps).items():
            dtype = dtypes.get(name)
            if dtype is not None and not is_basic(dtype):
                arrays[name] = typed_values.column_to_arrow(dtype, column)
            else:
                arrays[name] = pa.array(
                    column, type=dtype.to_arrow() if dtype is not None else types.get(name, pa.int64())
                )
        return pa.table(arrays)

    def to_df(self, include_event_timestamps: bool = False) -> pd.DataFrame:
        """The columns of `to_dict` as a pandas DataFrame, typed by pandas from the Python values as
        Feast does: an integer column with a null becomes float64, Float32 becomes float64."""
        import pandas as pd

        return pd.DataFrame(self.to_dict(include_event_timestamps))


def _entity_columns(
    entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
) -> dict[str, list[Any]]:
    if type(entity_rows) is list and entity_rows and type(entity_rows[0]) is dict:
        # The common shape (plain dicts, all with the same keys) without per-row checks.
        first = entity_rows[0]
        if len(entity_rows) == 1:
            return {k: [v] for k, v in first.items()}
        width = len(first)
        if all(type(row) is dict and len(row) == width for row in entity_rows):
            try:
                return {name: [row[name] for row in entity_rows] for name in first}
            except KeyError:
                pass  # rows with different keys: the general path names the problem
    if isinstance(entity_rows, Mapping):
        columns = {str(k): list(v) for k, v in entity_rows.items()}
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            shown = ", ".join(f"'{k}': {len(v)}" for k, v in columns.items())
            raise RetrievalError(f"entity_rows: every column must have the same length ({shown})")
        return columns
    if isinstance(entity_rows, (str, bytes)) or not isinstance(entity_rows, Sequence):
        raise RetrievalError("entity_rows must be a list of dicts or a dict of lists")
    names: dict[str, None] = {}
    for row in entity_rows:
        if not isinstance(row, Mapping):
            raise RetrievalError(f"entity_rows: every row must be a dict, got {row!r}")
        names.update(dict.fromkeys(row))
    missing = object()
    columns = {}
    for name in names:
        column = [row.get(name, missing) for row in entity_rows]
        columns[name] = column
    for name, column in columns.items():
        for i, value in enumerate(column):
            if value is missing:
                raise RetrievalError(f"entity_rows: row {i} has no value for '{name}'")
    return columns


def _all_at_least(stamps: list[int | None], oldest: int) -> bool:
    """Whether every stamp (none of them None) is at or after `oldest`."""
    return not stamps or min(cast("list[int]", stamps)) >= oldest


def _now_micros(now: datetime | None) -> int:
    if now is None:
        return time.time_ns() // 1000
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    delta = now - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass
class _ReadPlan:
    """The store lookups of one request, and how their results map back to the entity rows."""

    columns: dict[str, list[Any]]
    num_rows: int
    requests: list[ReadRequest]
    positions: list[list[int] | None]  # per view: entity row -> unique lookup (None: one per row)


def _plan_reads(
    selections: Sequence[OnlineSelection],
    entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
) -> _ReadPlan:
    columns = _entity_columns(entity_rows)
    num_rows = len(next(iter(columns.values()))) if columns else 0
    requests: list[ReadRequest] = []
    positions: list[list[int] | None] = []
    for sel in selections:
        view = sel.view
        join_columns = []
        for key in view.join_keys:
            column = columns.get(key)
            if column is None:
                raise RetrievalError(
                    f"feature view '{view.name}' needs the join key '{key}', but the entity rows "
                    f"only have {', '.join(repr(c) for c in columns) or 'no columns'}"
                )
            join_columns.append(column)
        try:
            if len(join_columns) == 1:
                keys = view.key_encoder.encode_column(join_columns[0])
            else:
                encode = view.key_encoder.encode
                keys = [encode(values) for values in zip(*join_columns, strict=True)]
        except KeyTypeError as err:
            raise RetrievalError(f"feature view '{view.name}': {err}") from None
        if len(keys) == 1:
            positions.append(None)
            requests.append(ReadRequest(view, keys))
            continue
        index: dict[bytes, int] = {}
        setdefault = index.setdefault
        pos = [setdefault(k, len(index)) for k in keys]
        if len(index) == len(keys):
            positions.append(None)
            requests.append(ReadRequest(view, keys))
        else:
            positions.append(pos)
            requests.append(ReadRequest(view, list(index)))
    return _ReadPlan(columns, num_rows, requests, positions)


def _assemble(
    selections: Sequence[OnlineSelection], plan: _ReadPlan, results: Sequence[ReadResult], now: datetime | None
) -> OnlineResponse:
    now_us = _now_micros(now)
    parts: list[_ViewPart] = []
    for sel, part_pos, result in zip(selections, plan.positions, results, strict=True):
        ttl = sel.view.ttl_micros
        oldest = now_us - ttl if ttl > 0 else None
        rows = result.rows
        stamps = result.event_ts
        if None not in rows and None not in stamps and (oldest is None or _all_at_least(stamps, oldest)):
            # Every lookup found and fresh (the usual case).
            parts.append(_ViewPart(sel, part_pos, rows, stamps, [_PRESENT] * len(rows)))
            continue
        status: list[FieldStatus] = []
        served: list[list[Any] | None] = []
        for row, ts in zip(rows, stamps, strict=True):
            if row is None or ts is None:
                status.append(_NOT_FOUND)
                served.append(None)
            elif oldest is not None and ts < oldest:
                status.append(_OUTSIDE)
                served.append(None)
            else:
                status.append(_PRESENT)
                served.append(row)
        parts.append(_ViewPart(sel, part_pos, served, stamps, status))
    # Only join keys are echoed: request data and other columns of the entity rows are not features.
    keys = {key for sel in selections for key in sel.view.join_keys}
    columns = plan.columns if len(keys) == len(plan.columns) else {k: v for k, v in plan.columns.items() if k in keys}
    return OnlineResponse(columns, plan.num_rows, parts, request_columns=plan.columns)


def get_online_features(
    store: OnlineStore,
    selections: Sequence[OnlineSelection],
    entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
    *,
    now: datetime | None = None,
) -> OnlineResponse:
    """Read the latest feature values of each entity row from `store`."""
    from potluck.retrieval.tile_reads import read_all

    plan = _plan_reads(selections, entity_rows)
    results = read_all(store, plan.requests, _now_micros(now)) if plan.requests else []
    return _assemble(selections, plan, results, now)


def _async_reader(store: OnlineStore) -> Any:
    """The store's `read_async` (see `SupportsAsyncRead`), found without a costly protocol check."""
    return getattr(store, "read_async", None)


async def get_online_features_async(
    store: OnlineStore,
    selections: Sequence[OnlineSelection],
    entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
    *,
    now: datetime | None = None,
) -> OnlineResponse:
    """As `get_online_features`; stores with `read_async` (`SupportsAsyncRead`) are read without
    blocking the event loop.

    Other stores are read in the calling thread (their reads are local or short).
    """
    from potluck.retrieval.tile_reads import read_all_async

    plan = _plan_reads(selections, entity_rows)
    results: list[ReadResult] = await read_all_async(store, plan.requests, _now_micros(now)) if plan.requests else []
    return _assemble(selections, plan, results, now)


__all__ = [
    "ComputedPart",
    "FieldStatus",
    "OnlineResponse",
    "OnlineSelection",
    "TIMESTAMP_SUFFIX",
    "get_online_features",
    "get_online_features_async",
]
