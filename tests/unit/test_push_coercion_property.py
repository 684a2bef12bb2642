"""The push coercion rule, property-tested against a brute-force statement of it.

The expectation below is written from the rule in the docs (not from the implementation): a value
is accepted when the stored value says the same thing, and refused otherwise, naming the row.
"""

from __future__ import annotations

import math
import re
import struct
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from potluck.definitions.errors import RetrievalError
from potluck.streaming.push_values import to_column

TARGETS = {
    "Int32": pa.int32(),
    "Int64": pa.int64(),
    "Float32": pa.float32(),
    "Float64": pa.float64(),
    "Bool": pa.bool_(),
}
REFUSED = object()


def expected(value: Any, type_name: str) -> Any:
    """What the rule stores for `value` in a column of `type_name`, or REFUSED."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value if type_name == "Bool" else REFUSED
    if type_name == "Bool":
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        return REFUSED
    if type_name.startswith("Int"):
        bits = int(type_name[3:])
        if isinstance(value, str):
            if not re.fullmatch(r"[+-]?[0-9]{1,30}", value):
                return REFUSED
            value = int(value)
        if isinstance(value, float):
            if not math.isfinite(value) or value != int(value):
                return REFUSED
            value = int(value)
        return value if -(2 ** (bits - 1)) <= value < 2 ** (bits - 1) else REFUSED
    exact = 2**24 if type_name == "Float32" else 2**53
    if isinstance(value, str):
        specials = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
        if value in specials:
            return specials[value]
        if not re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", value):
            return REFUSED
        value = float(value)
        if math.isinf(value):  # text beyond the range of a double
            return REFUSED
    if isinstance(value, int):
        return float(value) if abs(value) <= exact else REFUSED
    if type_name == "Float32":
        try:
            return struct.unpack("<f", struct.pack("<f", value))[0]
        except OverflowError:  # a finite double beyond the float range
            return REFUSED
    return value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


def _number_text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers(min_value=-(2**70), max_value=2**70).map(str),
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
        st.sampled_from(["NaN", "Infinity", "-Infinity", "nan", "inf", "1_000", " 1", "1.", ".5", "+3", "1e5", "0x10"]),
        st.sampled_from(["true", "False", "TRUE", "yes", "1", "0", ""]),
    )


# every edge of the rule: the ends of each integer type, and the exact-integer ends of each float type
EDGES = [e + d for e in (2**24, 2**31, 2**53, 2**63) for d in (-1, 0, 1)]
EDGES += [-e for e in EDGES]
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(EDGES),
    st.sampled_from(EDGES).map(str),
    st.sampled_from(EDGES).map(float),
    st.floats(),
    st.sampled_from([3.4028234663852886e38, 3.4028235e38, 3.5e38, 1e39, 1.5, -0.5, 2.0**40]),
    _number_text(),
    st.text(max_size=5),
)


def _run(values: list[Any], type_name: str, as_arrow: bool) -> Any:
    column: Any = values
    if as_arrow:
        column = pa.array(values)
    return to_column(column, TARGETS[type_name], "c", "push", type_name)


def _check(values: list[Any], type_name: str, as_arrow: bool) -> None:
    wanted = [expected(v, type_name) for v in values]
    bad = next((i for i, w in enumerate(wanted) if w is REFUSED), None)
    if bad is not None:
        with pytest.raises(RetrievalError, match=rf"column 'c' row {bad}: .* cannot be stored as {type_name}"):
            _run(values, type_name, as_arrow)
        return
    got = _run(values, type_name, as_arrow).to_pylist()
    assert len(got) == len(wanted)
    for g, w in zip(got, wanted, strict=True):
        assert _same(g, w) or (g is None and w is None), (values, type_name, got, wanted)


@settings(max_examples=600, deadline=None)
@given(values=st.lists(VALUES, min_size=1, max_size=4), type_name=st.sampled_from(sorted(TARGETS)))
def test_python_values_follow_the_rule(values: list[Any], type_name: str) -> None:
    _check(values, type_name, as_arrow=False)


ARROW_COLUMNS = st.one_of(
    st.lists(
        st.one_of(
            st.none(),
            st.integers(min_value=-(2**63), max_value=2**63 - 1),
            st.sampled_from([e for e in EDGES if -(2**63) <= e < 2**63]),
        ),
        min_size=1,
        max_size=4,
    ),
    st.lists(st.one_of(st.none(), st.floats()), min_size=1, max_size=4),
    st.lists(st.one_of(st.none(), _number_text()), min_size=1, max_size=4),
    st.lists(st.one_of(st.none(), st.booleans()), min_size=1, max_size=4),
)


@settings(max_examples=300, deadline=None)
@given(values=ARROW_COLUMNS, type_name=st.sampled_from(sorted(TARGETS)))
def test_arrow_columns_follow_the_same_rule(values: list[Any], type_name: str) -> None:
    _check(values, type_name, as_arrow=True)


@pytest.mark.parametrize(
    ("value", "type_name", "stored"),
    [
        ("1001", "Int64", 1001),
        (3.0, "Int32", 3),
        (2, "Float64", 2.0),
        ("1.5", "Float64", 1.5),
        ("-2e3", "Float32", -2000.0),
        ("TRUE", "Bool", True),
    ],
)
def test_lossless_examples_are_accepted(value: Any, type_name: str, stored: Any) -> None:
    assert _run([value], type_name, as_arrow=False).to_pylist() == [stored]


@pytest.mark.parametrize(
    ("value", "type_name"),
    [(1.5, "Int64"), (2**40, "Int32"), ("1.0", "Int64"), (2**53 + 1, "Float64"), (1e39, "Float32"), (1, "Bool")],
)
def test_lossy_examples_name_column_row_and_type(value: Any, type_name: str) -> None:
    with pytest.raises(
        RetrievalError, match=rf"column 'c' row 1: {re.escape(repr(value))} cannot be stored as {type_name}"
    ):
        _run([None, value], type_name, as_arrow=False)
