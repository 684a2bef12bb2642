"""The one runner of on-demand feature views, for training batches and online requests alike.

Both paths hand it an Arrow table of inputs typed by the declared schemas: every source feature
under `feature` and `view__feature`, and every request field by name. It calls the function in
the view's mode and returns the declared outputs, checked and cast to their declared types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from potluck.definitions.errors import RetrievalError, TransformError
from potluck.definitions.field import Field
from potluck.definitions.on_demand import OnDemandFeatureView
from potluck.definitions.types import PotluckType, is_compatible
from potluck.transforms.code import Udf
from potluck.transforms.pyvalues import Check, py_check, py_column

if TYPE_CHECKING:
    import pyarrow as pa


class RequestDataMissingError(RetrievalError):
    """A request field an on-demand view needs was not given."""


def input_names(view: OnDemandFeatureView) -> list[tuple[str, str, str]]:
    """(source view as referenced, feature, input column) for each source feature, both names each."""
    out: list[tuple[str, str, str]] = []
    for proj in view.source_projections:
        for f in proj.features:
            out.append((proj.name_to_use, f.name, f"{proj.name_to_use}__{f.name}"))
            out.append((proj.name_to_use, f.name, f.name))
    return out


def check_request_fields(view: OnDemandFeatureView, given: Sequence[str], where: str) -> None:
    missing = [f.name for f in view.request_fields if f.name not in given]
    if missing:
        raise RequestDataMissingError(
            f"on-demand feature view '{view.name}' needs request field(s) {', '.join(repr(m) for m in missing)}, "
            f"which {where} do not have; add them"
        )


def typed_array(dtype: PotluckType, values: Any, what: str) -> pa.Array:
    """`values` (an Arrow array or Python values) as an Arrow array of the declared type."""
    import pyarrow as pa

    target = dtype.to_arrow()
    try:
        if isinstance(values, (pa.Array, pa.ChunkedArray)):
            if values.type == target:
                return values
            if not (pa.types.is_null(values.type) or is_compatible(dtype, values.type)):
                raise TypeError(f"holds {values.type}")
            return values.cast(target)
        return pa.array(values, type=target)
    except (TypeError, ValueError, OverflowError, pa.ArrowException) as err:
        raise TransformError(f"{what} does not fit its declared type {dtype.name} ({err})") from None


@dataclass(frozen=True)
class InputLayout:
    """The input columns of a view in `build_inputs`' order: (name, source key or None, declared type).

    A source column's key is (source view as referenced, feature); a request field's is None.
    `python` is False when some input type only converts through Arrow.
    """

    columns: tuple[tuple[str, tuple[str, str] | None, PotluckType, Check | None], ...]
    python: bool


def input_layout(view: OnDemandFeatureView) -> InputLayout:
    types = {(p.name_to_use, f.name): f.dtype for p in view.source_projections for f in p.features}
    columns: dict[str, tuple[str, tuple[str, str] | None, PotluckType, Check | None]] = {}
    for source, feature, name in input_names(view):
        dtype = types[(source, feature)]
        columns.setdefault(name, (name, (source, feature), dtype, py_check(dtype)))
    for f in view.request_fields:
        columns[f.name] = (f.name, None, f.dtype, py_check(f.dtype))
    return InputLayout(tuple(columns.values()), all(c[3] is not None for c in columns.values()))


def build_inputs(
    view: OnDemandFeatureView,
    sources: Mapping[tuple[str, str], Any],
    request: Mapping[str, Any],
    num_rows: int,
    layout: InputLayout | None = None,
) -> pa.Table:
    """The input table: `sources` maps (source view, feature) to its column, `request` field names to theirs.

    A source feature under both its names is one array; a bare name shared by two sources holds
    the first source's value.
    """
    import pyarrow as pa

    converted: dict[tuple[str, str], pa.Array] = {}
    names, arrays = [], []
    for name, key, dtype, _ in (layout or input_layout(view)).columns:
        if key is None:
            array = typed_array(dtype, request[name], f"request field '{name}' of view '{view.name}'")
        else:
            array = converted.get(key)
            if array is None:
                array = converted[key] = typed_array(dtype, sources[key], f"feature '{key[0]}:{key[1]}'")
        names.append(name)
        arrays.append(array)
    if not arrays:
        return pa.table({"__row": pa.nulls(num_rows)}).drop_columns(["__row"])
    return pa.Table.from_arrays(arrays, names=names)


def _call(view: OnDemandFeatureView, udf: Udf, inputs: pa.Table) -> Any:
    if view.mode == "arrow":
        return _invoke(view, udf, inputs)
    if view.mode == "pandas":
        return _invoke(view, udf, inputs.to_pandas())
    return _call_python(view, udf, inputs.to_pydict(), inputs.num_rows)


def _call_python(view: OnDemandFeatureView, udf: Udf, columns: dict[str, list[Any]], num_rows: int) -> Any:
    """A python-mode function on `columns` (name -> list): once, or once per row when singleton."""
    if not view.singleton:
        return _invoke(view, udf, columns)
    names = list(columns)
    if names:
        rows = [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]
    else:  # no input columns: one empty dict per row
        rows = [{} for _ in range(num_rows)]
    return _invoke(view, udf, rows)


def _invoke(view: OnDemandFeatureView, udf: Udf, arg: Any) -> Any:
    try:
        if view.singleton:
            return [udf(row) for row in arg]
        return udf(arg)
    except Exception as err:
        raise TransformError(
            f"on-demand feature view '{view.name}': its function raised {type(err).__name__}: {err}"
        ) from err


def _columns(view: OnDemandFeatureView, result: Any) -> dict[str, Any]:
    """The function's result as name -> column (an Arrow array, a pandas Series or a list)."""
    import pyarrow as pa

    label = f"on-demand feature view '{view.name}'"
    if view.mode == "arrow":
        if isinstance(result, pa.RecordBatch):
            result = pa.Table.from_batches([result])
        if not isinstance(result, pa.Table):
            raise TransformError(f"{label} (mode 'arrow') must return a pyarrow.Table, got {type(result).__name__}")
        return {name: result.column(name) for name in result.column_names}
    if view.mode == "pandas":
        import pandas as pd

        if not isinstance(result, pd.DataFrame):
            raise TransformError(f"{label} (mode 'pandas') must return a DataFrame, got {type(result).__name__}")
        return {str(name): result[name] for name in result.columns}
    if view.singleton:
        rows = list(result)
        for row in rows:
            if not isinstance(row, Mapping):
                raise TransformError(
                    f"{label} (singleton) must return a dict of values for each row, got {type(row).__name__}"
                )
        return {f.name: [row[f.name] for row in rows] for f in view.features if all(f.name in row for row in rows)}
    if not isinstance(result, Mapping):
        raise TransformError(f"{label} (mode 'python') must return a dict of lists, got {type(result).__name__}")
    return dict(result)


def _output_label(view: OnDemandFeatureView, field: Field) -> str:
    return f"on-demand feature view '{view.name}': output column '{field.name}'"


def _wrong_length(what: str, got: int, num_rows: int) -> TransformError:
    return TransformError(f"{what} has {got} values for {num_rows} input rows; return one value per row")


def _to_arrow(view: OnDemandFeatureView, field: Field, column: Any, num_rows: int) -> pa.Array:
    import pyarrow as pa

    what = _output_label(view, field)
    if not isinstance(column, (pa.Array, pa.ChunkedArray)):
        if view.mode == "pandas":
            try:
                column = pa.Array.from_pandas(column)
            except (TypeError, ValueError, pa.ArrowException) as err:
                raise TransformError(f"{what} does not fit its declared type {field.dtype.name} ({err})") from None
            if pa.types.is_floating(column.type) and pa.types.is_integer(field.dtype.to_arrow()):
                column = typed_array(field.dtype, column.to_pylist(), what)  # pandas holds nullable ints as floats
        elif isinstance(column, (str, bytes)) or not isinstance(column, Sequence):
            raise TransformError(f"{what} must be a list of values, got {type(column).__name__}")
    array = typed_array(field.dtype, column, what)
    if len(array) != num_rows:
        raise _wrong_length(what, len(array), num_rows)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array


def run_transform(view: OnDemandFeatureView, udf: Udf, inputs: pa.Table, features: Sequence[Field]) -> list[pa.Array]:
    """The columns of `features` (declared outputs of `view`) computed from `inputs`, one per feature.

    Every declared output is checked, asked for or not: the function's result must fit the schema.
    """
    num_rows = inputs.num_rows
    columns = _columns(view, _call(view, udf, inputs))
    checked = {f.name: _to_arrow(view, f, _output(view, f, columns), num_rows) for f in view.features}
    return [checked[f.name] for f in features]


def _output(view: OnDemandFeatureView, f: Field, columns: dict[str, Any]) -> Any:
    if f.name not in columns:
        shown = ", ".join(repr(c) for c in columns) or "no columns"
        raise TransformError(
            f"on-demand feature view '{view.name}': output column '{f.name}' ({f.dtype.name}) is missing "
            f"from what its function returned ({shown})"
        )
    return columns[f.name]


def run_transform_values(
    view: OnDemandFeatureView,
    udf: Udf,
    sources: Mapping[tuple[str, str], Any],
    request: Mapping[str, Any],
    num_rows: int,
    features: Sequence[Field],
    layout: InputLayout | None = None,
) -> list[list[Any]]:
    """As `run_transform` from `build_inputs`' arguments, each output a list of Python values.

    A python-mode view whose inputs are plain Python values of their declared types skips Arrow
    (`pyvalues`): the function sees, and its outputs are checked to, what the Arrow path gives.
    `layout` is `input_layout(view)`, for callers that keep it.
    """
    layout = layout or input_layout(view)
    if view.mode == "python" and layout.python:
        columns = _python_inputs(layout, sources, request)
        if columns is not None:
            result = _columns(view, _call_python(view, udf, columns, num_rows))
            checked = {f.name: _python_output(view, f, _output(view, f, result), num_rows) for f in view.features}
            return [checked[f.name] for f in features]
    table = build_inputs(view, sources, request, num_rows, layout)
    return [a.to_pylist() for a in run_transform(view, udf, table, features)]


def _python_inputs(
    layout: InputLayout, sources: Mapping[tuple[str, str], Any], request: Mapping[str, Any]
) -> dict[str, list[Any]] | None:
    """The input columns as `to_pydict()` of `build_inputs`' table would give them, or None."""
    columns: dict[str, list[Any]] = {}
    for name, key, dtype, check in layout.columns:
        column = py_column(dtype, request[name] if key is None else sources[key], check)
        if column is None:
            return None
        columns[name] = column
    return columns


def _python_output(view: OnDemandFeatureView, field: Field, column: Any, num_rows: int) -> list[Any]:
    values = py_column(field.dtype, column)
    if values is None:  # another type or class of value: the Arrow path converts or rejects it
        converted: list[Any] = _to_arrow(view, field, column, num_rows).to_pylist()
        return converted
    if len(values) != num_rows:
        raise _wrong_length(_output_label(view, field), len(values), num_rows)
    return values
