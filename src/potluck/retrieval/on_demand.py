"""Requests that include on-demand feature views: what to read for their inputs, and their outputs.

A request is split into the regular views' selections, hidden selections of the on-demand views'
source features, and the on-demand outputs. Training data and serving both read the hidden inputs
with the regular ones, then hand them to the one transform runner (`potluck.transforms`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from potluck.definitions import FeatureView, OnDemandFeatureView
from potluck.definitions.errors import RetrievalError, UnknownFeatureError, suggestion
from potluck.definitions.field import Field
from potluck.registry.snapshot import RegistrySnapshot
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
from potluck.transforms.runner import build_inputs, check_request_fields, run_transform

if TYPE_CHECKING:
    import pyarrow as pa

    from potluck.offline.protocol import RetrievalJob

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
        view = snapshot.get_view(name)
        assert isinstance(view, FeatureView)
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
) -> ResolvedRequest:
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
    return ResolvedRequest(selections, _input_selections(on_demand, snapshot), on_demand)


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
def _worst(statuses: Sequence[Sequence[Any]], num_rows: int) -> list[Any]:
    """Per row, the worst status among the source views read for it (NOT_FOUND, then OUTSIDE_MAX_AGE)."""
    from potluck.retrieval.online import FieldStatus

    rank = {FieldStatus.PRESENT: 0, FieldStatus.OUTSIDE_MAX_AGE: 1, FieldStatus.NOT_FOUND: 2}
    out = [FieldStatus.PRESENT] * num_rows
    for column in statuses:
        for i, status in enumerate(column):
            if rank[status] > rank[out[i]]:
                out[i] = status
    return out


def with_on_demand(response: Any, request: ResolvedRequest, udfs: Sequence[Udf]) -> Any:
    """`response` (an OnlineResponse read for `request`'s selections, then its inputs) with the hidden
    input columns replaced by the on-demand outputs."""
    from potluck.definitions.types import is_basic
    from potluck.online import typed_values
    from potluck.retrieval.online import ComputedPart, FieldStatus, OnlineResponse

    num_rows = response.num_rows
    values = response.values
    statuses = response.statuses
    dtypes = response.dtypes
    given = response.request_columns
    computed = []
    for sel, udf in zip(request.on_demand, udfs, strict=True):
        view = sel.view
        check_request_fields(view, list(given), "the entity rows")
        inputs = {}
        for proj in view.source_projections:
            for f in proj.features:
                name = input_column(proj.name, f.name)
                column = values[name]
                dtype = dtypes[name]
                inputs[(proj.name_to_use, f.name)] = (
                    column if is_basic(dtype) else typed_values.column_to_arrow(dtype, column)
                )
        request_data = {f.name: given[f.name] for f in view.request_fields}
        table = build_inputs(view, inputs, request_data, num_rows)
        arrays = run_transform(view, udf, table, sel.features)
        used = [statuses[input_column(p.name, p.features[0].name)] for p in view.source_projections if p.features]
        worst = _worst(used, num_rows)
        out_values = [a.to_pylist() for a in arrays]
        out_statuses = [
            [
                FieldStatus.PRESENT
                if v is not None
                else (w if w is not FieldStatus.PRESENT else FieldStatus.NULL_VALUE)
                for v, w in zip(column, worst, strict=True)
            ]
            for column in out_values
        ]
        sources = {p.name for p in view.source_projections}
        key_fields = tuple(k for i in request.inputs if i.view.name in sources for k in i.view.entity_columns)
        computed.append(
            ComputedPart(
                view.name, sel.output_names, tuple(f.dtype for f in sel.features), out_values, out_statuses, key_fields
            )
        )
    visible = response._parts[: len(request.selections)]
    keys = {key for part in visible for key in part.selection.view.join_keys}
    keys |= {k.name for c in computed for k in c.key_fields}
    entity = {k: v for k, v in response.entity_columns.items() if k in keys}
    return OnlineResponse(entity, num_rows, visible, _computed=computed, request_columns=given)
