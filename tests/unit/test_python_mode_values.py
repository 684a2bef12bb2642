"""Python-mode on-demand views served without Arrow give exactly what the Arrow path gives."""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from potluck import FeatureView, Field, FileSource, RequestSource
from potluck.definitions.errors import TransformError
from potluck.definitions.on_demand import OnDemandFeatureView
from potluck.transforms.pyvalues import py_column
from potluck.transforms.runner import build_inputs, run_transform, run_transform_values
from potluck.types import Bool, Bytes, Float32, Float64, Int32, Int64, String

TYPES = [Int64, Int32, Float64, Float32, String, Bool, Bytes]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.sampled_from([2**53, 2**53 + 1, -(2**53), 2**31, -(2**31) - 1, 2**63 - 1, -(2**63)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.binary(max_size=4),
)


def _arrow(dtype: Any, values: list[Any]) -> list[Any] | None:
    try:
        return list(pa.array(values, type=dtype.to_arrow()).to_pylist())
    except (TypeError, ValueError, OverflowError, pa.ArrowException):
        return None


def _same(a: list[Any] | None, b: list[Any] | None) -> bool:
    if a is None or b is None:
        return a is b
    return len(a) == len(b) and all(
        type(x) is type(y) and (x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y)))
        for x, y in zip(a, b, strict=True)
    )


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(TYPES), st.lists(scalars, max_size=5))
@example(Float64, [2**53 + 1])
@example(Float64, [-(2**53), 2**53])
@example(Float64, [True])
@example(Int64, [True, 1])
@example(Int64, [2**63])
@example(Int32, [2**31])
@example(String, ["a", b"a"])
def test_py_column_is_the_arrow_round_trip_or_declines(dtype: Any, values: list[Any]) -> None:
    fast = py_column(dtype, values)
    if fast is not None:  # when it answers, it answers what Arrow gives
        assert _same(fast, _arrow(dtype, values)), (dtype, values, fast)
        assert fast is not values  # a copy: the function may change its inputs


def _view(mode_fn: Any, out_type: Any, singleton: bool = False) -> OnDemandFeatureView:
    src = FeatureView(
        name="src",
        entities=[],
        schema=[Field(name="x", dtype=Int64), Field(name="y", dtype=Float64)],
        source=FileSource(name="s", path="unused.parquet", timestamp_field="ts"),
    )
    req = RequestSource(name="req", schema=[Field(name="z", dtype=String)])
    return OnDemandFeatureView(
        name="v",
        sources=[src, req],
        schema=[Field(name="out", dtype=out_type)],
        udf=mode_fn,
        mode="python",
        singleton=singleton,
    )


def echo_rows(inputs: dict[str, list[Any]]) -> dict[str, list[Any]]:
    return {"out": inputs["__out__"]}


def _both(view: OnDemandFeatureView, udf: Any, sources: dict[Any, Any], request: dict[str, Any], n: int) -> Any:
    outcomes = []
    for path in ("fast", "arrow"):
        try:
            if path == "fast":
                outcomes.append(run_transform_values(view, udf, sources, request, n, view.features))
            else:
                table = build_inputs(view, sources, request, n)
                outcomes.append([a.to_pylist() for a in run_transform(view, udf, table, view.features)])
        except TransformError as err:
            outcomes.append(type(err))
    return outcomes


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(TYPES),
    st.integers(min_value=0, max_value=3).flatmap(
        lambda n: st.tuples(
            st.lists(scalars, min_size=n, max_size=n),
            st.lists(scalars, min_size=n, max_size=n),
            st.lists(scalars, min_size=n, max_size=n),
            st.lists(scalars, min_size=n, max_size=n),
        )
    ),
    st.booleans(),
)
def test_served_python_mode_equals_the_arrow_path(out_type: Any, columns: Any, singleton: bool) -> None:
    """Inputs of any Python class, outputs of any class: same values, or the same kind of error."""
    xs, ys, zs, outs = columns
    seen: list[Any] = []

    def fn(inputs: Any) -> Any:
        seen.append(inputs)
        if singleton:
            return {"out": outs[(len(seen) - 1) % len(outs)]}  # each path calls once per row
        return {"out": list(outs)}

    view = _view(echo_rows, out_type, singleton)
    sources = {("src", "x"): xs, ("src", "y"): ys}
    fast, slow = _both(view, fn, sources, {"z": zs}, len(xs))
    if isinstance(fast, list) and isinstance(slow, list):
        assert all(_same(a, b) for a, b in zip(fast, slow, strict=True)), (fast, slow)
        half = len(seen) // 2
        assert [_norm(s) for s in seen[:half]] == [_norm(s) for s in seen[half:]]  # same inputs
    else:
        assert fast == slow, (fast, slow)


def _norm(value: Any) -> Any:
    """Inputs compared with NaN equal to itself."""
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_norm(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return value


def test_a_wrongly_typed_request_field_still_fails_clearly() -> None:
    view = _view(echo_rows, Float64)
    with pytest.raises(TransformError, match=r"request field 'z'.*String"):
        run_transform_values(view, echo_rows, {("src", "x"): [1], ("src", "y"): [1.0]}, {"z": [3]}, 1, view.features)


def test_a_wrong_output_length_fails_clearly() -> None:
    view = _view(echo_rows, Float64)

    def short(inputs: dict[str, list[Any]]) -> dict[str, list[Any]]:
        return {"out": []}

    with pytest.raises(TransformError, match="output column 'out' has 0 values for 1 input rows"):
        run_transform_values(view, short, {("src", "x"): [1], ("src", "y"): [1.0]}, {"z": ["a"]}, 1, view.features)
