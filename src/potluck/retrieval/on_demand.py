"""Requests that include on-demand feature views: what to read for their inputs, and their outputs.

A request is split into the regular views' selections, hidden selections of the on-demand views'
source features, and the on-demand outputs. Training data and serving both read the hidden inputs
with the regular ones, then hand them to the one transform runner (`potluck.transforms`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from potluck.definitions import OnDemandFeatureView
from potluck.definitions.errors import RetrievalError, UnknownFeatureError, suggestion
from potluck.definitions.field import Field
from potluck.definitions.types import PotluckType, is_basic
from potluck.online import typed_values
from potluck.registry.snapshot import RegistrySnapshot
from potluck.retrieval.online import ComputedPart, FieldStatus, OnlineResponse
from potluck.retrieval.references import (
    FeatureRequest,
    Reference,
    VersionsOf,
    ViewSelection,
    check_collisions,
    output_name,
    parse_references,
    resolve_references,
)
from potluck.transforms.code import Udf, load_udf
from potluck.transforms.runner import (
    InputLayout,
    build_inputs,
    check_request_fields,
    input_layout,
    run_transform,
    run_transform_values,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from potluck.offline.protocol import RetrievalJob, RetrievalMetadata

_INPUT_PREFIX = "__potluck_input__"  # hidden columns of the on-demand views' source features


def input_column(view: str, feature: str) -> str:
    return f"{_INPUT_PREFIX}{view}__{feature}"


@dataclass(frozen=True)
class OnDemandSelection:
    """The outputs wanted from one on-demand view, and the column names they come out as."""

    view: OnDemandFeatureView
    features: tuple[Field, ...]
    output_names: tuple[str, ...]


@dataclass(frozen=True)
class ResolvedRequest:
    selections: list[ViewSelection]  # the regular views asked for
    inputs: list[ViewSelection] = field(default_factory=list)  # hidden: on-demand sources
    on_demand: list[OnDemandSelection] = field(default_factory=list)
    # Serving only: on-demand views stored at write time, read from their own tables like regular views.
    stored: list[OnDemandSelection] = field(default_factory=list)

    @cached_property
    def online_inputs(self) -> tuple[list[ViewSelection], dict[str, str]]:
        """The hidden selections serving reads, and the hidden columns a regular selection already
        serves (same view, same feature), mapped to that output: a view is not read twice."""
        served: dict[tuple[int, str], str] = {}
        for sel in self.selections:
            for f, name in zip(sel.features, sel.output_names, strict=True):
                served.setdefault((id(sel.view), f.name), name)
        to_read: list[ViewSelection] = []
        reused: dict[str, str] = {}
        for sel in self.inputs:
            found = [served.get((id(sel.view), f.name)) for f in sel.features]
            if None in found:
                to_read.append(sel)
            else:
                reused.update(zip(sel.output_names, cast("list[str]", found), strict=True))
        return to_read, reused

    @cached_property
    def offline_reads(self) -> tuple[list[ViewSelection], dict[str, str]]:
        """The selections training data reads, and the hidden columns a regular selection already
        serves, mapped to that output. A hidden feature of a view the request also reads otherwise
        joins with that view's selection: each view is joined once."""
        served: dict[tuple[int, str], str] = {}
        position: dict[int, int] = {}
        for i, sel in enumerate(self.selections):
            position.setdefault(id(sel.view), i)
            for f, name in zip(sel.features, sel.output_names, strict=True):
                served.setdefault((id(sel.view), f.name), name)
        merged = list(self.selections)
        separate: list[ViewSelection] = []
        reused: dict[str, str] = {}
        for sel in self.inputs:
            pairs = []
            for f, name in zip(sel.features, sel.output_names, strict=True):
                visible = served.get((id(sel.view), f.name))
                if visible is None:
                    pairs.append((f, name))
                else:
                    reused[name] = visible
            if not pairs:
                continue
            at = position.get(id(sel.view))
            if at is None:
                separate.append(ViewSelection(sel.view, tuple(f for f, _ in pairs), tuple(n for _, n in pairs)))
            else:
                base = merged[at]
                merged[at] = ViewSelection(
                    base.view,
                    base.features + tuple(f for f, _ in pairs),
                    base.output_names + tuple(n for _, n in pairs),
                )
        return merged + separate, reused

    @cached_property
    def serving(self) -> _Serving:
        """What serving reads from a response, per on-demand selection (worked out once per plan)."""
        return serving(self)

    def udfs(self, repo_path: str | Path) -> list[Udf]:
        return [load_udf(s.view, repo_path) for s in self.on_demand]


def _on_demand_selections(
    refs: Sequence[Reference], snapshot: RegistrySnapshot, full_feature_names: bool, owners: dict[str, str]
) -> list[OnDemandSelection]:
    views = snapshot.of_kind(OnDemandFeatureView.kind)
    grouped: dict[str, tuple[OnDemandFeatureView, list[Field]]] = {}
    for ref in refs:
        view = views[ref.view]
        assert isinstance(view, OnDemandFeatureView)
        if ref.version is not None:
            raise RetrievalError(f"on-demand feature view '{ref.view}' has no versions; use '{ref.view}:{ref.feature}'")
        found = next((f for f in view.features if f.name == ref.feature), None)
        if found is None:
            raise UnknownFeatureError(
                f"on-demand feature view '{ref.view}' has no feature '{ref.feature}'. "
                f"{suggestion(ref.feature, view.feature_names)}"
            )
        entry = grouped.setdefault(ref.alias or ref.view, (view, []))
        if found not in entry[1]:
            entry[1].append(found)
    out = []
    for key, (view, fields) in grouped.items():
        names = tuple(output_name(key, f.name, full_feature_names) for f in fields)
        check_collisions(owners, key, names)
        out.append(OnDemandSelection(view, tuple(fields), names))
    return out


def _input_selections(on_demand: Sequence[OnDemandSelection], snapshot: RegistrySnapshot) -> list[ViewSelection]:
    wanted: dict[str, list[Field]] = {}
    for sel in on_demand:
        for proj in sel.view.source_projections:
            fields = wanted.setdefault(proj.name, [])
            fields.extend(f for f in proj.features if f not in fields)
    out = []
    for name, fields in wanted.items():
        view = snapshot.feature_view(name)
        registered = {f.name: f for f in view.features}
        for f in fields:
            if f.name not in registered:
                raise RetrievalError(
                    f"on-demand feature view reads '{name}:{f.name}', which the view no longer has; run apply"
                )
        chosen = tuple(registered[f.name] for f in fields)
        out.append(ViewSelection(view, chosen, tuple(input_column(name, f.name) for f in chosen)))
    return out


def resolve_request(
    features: FeatureRequest,
    snapshot: RegistrySnapshot,
    *,
    full_feature_names: bool,
    versions: VersionsOf | None = None,
    serving: bool = False,
) -> ResolvedRequest:
    """The views a request reads. On-demand views stored at write time come first among the on-demand
    ones (in both paths, so columns come out in the same order); with `serving`, they are read from
    their tables (`stored`) instead of being computed."""
    refs = parse_references(features, snapshot)
    on_demand_names = snapshot.of_kind(OnDemandFeatureView.kind)
    owners: dict[str, str] = {}
    regular = [r for r in refs if r.view not in on_demand_names]
    selections = resolve_references(
        regular, snapshot, full_feature_names=full_feature_names, versions=versions, owners=owners
    )
    if len(regular) == len(refs):
        return ResolvedRequest(selections)
    on_demand = _on_demand_selections(
        [r for r in refs if r.view in on_demand_names], snapshot, full_feature_names, owners
    )
    stored = [s for s in on_demand if s.view.write_to_online_store]
    computed = [s for s in on_demand if not s.view.write_to_online_store]
    if serving:
        return ResolvedRequest(selections, _input_selections(computed, snapshot), computed, stored)
    ordered = stored + computed
    return ResolvedRequest(selections, _input_selections(ordered, snapshot), ordered)


def _source_columns(sel: OnDemandSelection, columns: dict[str, Any]) -> dict[tuple[str, str], Any]:
    return {
        (proj.name_to_use, f.name): columns[input_column(proj.name, f.name)]
        for proj in sel.view.source_projections
        for f in proj.features
    }


# -- training data -------------------------------------------------------------------------------
class OnDemandRetrievalJob:
    """A retrieval whose on-demand outputs are computed batch by batch as the result is read."""

    def __init__(self, inner: RetrievalJob, request: ResolvedRequest, udfs: list[Udf], batch_rows: int) -> None:
        self._inner = inner
        self._request = request
        self._udfs = udfs
        self._batch_rows = batch_rows
        self.metadata: RetrievalMetadata | None = None  # set by the FeatureStore that built the job

    def persist(self, storage: Any, allow_overwrite: bool = False, timeout: int | None = None) -> None:
        """Write the result to `storage` (a `SavedDatasetFileStorage`): a temporary file, then renamed."""
        from potluck.offline.persist import persist

        persist(self, storage, allow_overwrite)

    def _schema(self, base: pa.Schema) -> pa.Schema:
        import pyarrow as pa

        kept = [f for f in base if not f.name.startswith(_INPUT_PREFIX)]
        added = [
            pa.field(name, f.dtype.to_arrow())
            for sel in self._request.on_demand
            for name, f in zip(sel.output_names, sel.features, strict=True)
        ]
        return pa.schema([*kept, *added])

    def _transform(self, batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
        import pyarrow as pa

        columns = {name: batch.column(name) for name in batch.schema.names}
        for hidden, visible in self._request.offline_reads[1].items():
            columns[hidden] = columns[visible]
        arrays = [columns[f.name] for f in schema if f.name in columns]
        for sel, udf in zip(self._request.on_demand, self._udfs, strict=True):
            check_request_fields(sel.view, list(columns), "the entity dataframe's columns")
            request = {f.name: columns[f.name] for f in sel.view.request_fields}
            inputs = build_inputs(sel.view, _source_columns(sel, columns), request, batch.num_rows)
            arrays.extend(run_transform(sel.view, udf, inputs, sel.features))
        return pa.RecordBatch.from_arrays(arrays, schema=schema)

    def to_arrow_batches(self, batch_rows: int | None = None) -> pa.RecordBatchReader:
        """The result in batches of at most `batch_rows` rows; each batch is transformed as it is read."""
        import pyarrow as pa

        reader = self._inner.to_arrow_batches(batch_rows or self._batch_rows)
        schema = self._schema(reader.schema)

        def batches() -> Iterator[pa.RecordBatch]:
            for batch in reader:
                yield self._transform(batch, schema)

        return pa.RecordBatchReader.from_batches(schema, batches())

    def to_arrow(self) -> pa.Table:
        return self.to_arrow_batches().read_all()

    def to_df(self) -> Any:
        return self.to_arrow().to_pandas()

    def to_parquet(self, path: str) -> None:
        import pyarrow.parquet as pq

        reader = self.to_arrow_batches()
        with pq.ParquetWriter(str(path), reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)

    def to_sql(self) -> str:
        """The point-in-time query of the inputs (the on-demand outputs are computed in Python)."""
        return self._inner.to_sql()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


# -- serving -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _ServingPlan:
    """What serving one on-demand selection reads from a response, worked out once per request plan."""

    selection: OnDemandSelection
    # ((source as referenced, feature), column of the response that holds it, its type if not basic)
    inputs: tuple[tuple[tuple[str, str], str, PotluckType | None], ...]
    request_fields: tuple[str, ...]
    status_columns: tuple[str, ...]  # one column per source view: its row's status
    key_fields: tuple[Field, ...]
    dtypes: tuple[PotluckType, ...]  # of the outputs
    layout: InputLayout


@dataclass(frozen=True)
class _Serving:
    plans: list[_ServingPlan]
    visible: tuple[str, ...]  # the regular selections' outputs, in order
    keys: frozenset[str]  # the join keys echoed back


def serving(request: ResolvedRequest) -> _Serving:
    _, reused = request.online_inputs
    hidden = {name: f.dtype for i in request.inputs for f, name in zip(i.features, i.output_names, strict=True)}
    plans = []
    keys = {k for s in request.selections for k in s.view.join_keys}
    keys.update(k for s in request.stored for k in s.view.join_keys)
    for sel in request.on_demand:
        view = sel.view
        sources = {p.name for p in view.source_projections}
        columns = {
            (p.name_to_use, f.name): input_column(p.name, f.name) for p in view.source_projections for f in p.features
        }
        firsts = [input_column(p.name, p.features[0].name) for p in view.source_projections if p.features]
        key_fields = tuple(k for i in request.inputs if i.view.name in sources for k in i.view.entity_columns)
        keys.update(k.name for k in key_fields)
        plans.append(
            _ServingPlan(
                sel,
                tuple(
                    (key, reused.get(c, c), None if is_basic(hidden[c]) else hidden[c]) for key, c in columns.items()
                ),
                tuple(f.name for f in view.request_fields),
                tuple(reused.get(c, c) for c in firsts),
                key_fields,
                tuple(f.dtype for f in sel.features),
                input_layout(view),
            )
        )
    visible = tuple(name for s in request.selections for name in s.output_names)
    visible += tuple(name for s in request.stored for name in s.output_names)
    return _Serving(plans, visible, frozenset(keys))


_RANK = {FieldStatus.PRESENT: 0, FieldStatus.OUTSIDE_MAX_AGE: 1, FieldStatus.NOT_FOUND: 2}


def _worst(statuses: Sequence[list[FieldStatus]], num_rows: int) -> list[FieldStatus]:
    """Per row, the worst status among the source views read for it (NOT_FOUND, then OUTSIDE_MAX_AGE)."""
    present = FieldStatus.PRESENT
    out = [present] * num_rows
    rank = _RANK
    for column in statuses:
        if column.count(present) == num_rows:
            continue
        for i, status in enumerate(column):
            if rank[status] > rank[out[i]]:
                out[i] = status
    return out


def with_on_demand(response: OnlineResponse, request: ResolvedRequest, udfs: Sequence[Udf]) -> OnlineResponse:
    """`response` (an OnlineResponse read for `request`'s selections, then its inputs) with the hidden
    input columns replaced by the on-demand outputs."""
    num_rows = response.num_rows
    values = response.values
    given = response.request_columns
    present, null_value = FieldStatus.PRESENT, FieldStatus.NULL_VALUE
    plan_of = request.serving
    computed = []
    for plan, udf in zip(plan_of.plans, udfs, strict=True):
        sel = plan.selection
        view = sel.view
        if not all(name in given for name in plan.request_fields):
            check_request_fields(view, list(given), "the entity rows")
        inputs = {
            key: values[name] if dtype is None else typed_values.column_to_arrow(dtype, values[name])
            for key, name, dtype in plan.inputs
        }
        request_data = {name: given[name] for name in plan.request_fields}
        out_values = run_transform_values(view, udf, inputs, request_data, num_rows, sel.features, plan.layout)
        worst = _worst([response.statuses_of(c) for c in plan.status_columns], num_rows)
        out_statuses = [
            [
                present if v is not None else (w if w is not present else null_value)
                for v, w in zip(column, worst, strict=True)
            ]
            for column in out_values
        ]
        computed.append(
            ComputedPart(view.name, sel.output_names, plan.dtypes, out_values, out_statuses, plan.key_fields)
        )
    keys = plan_of.keys
    entity = {k: v for k, v in response.entity_columns.items() if k in keys}
    served = {name: values[name] for name in plan_of.visible}
    for c in computed:
        served.update(zip(c.output_names, c.values, strict=True))
    visible = response._parts[: len(request.selections) + len(request.stored)]
    return OnlineResponse(entity, num_rows, visible, served, _computed=computed, request_columns=given)
