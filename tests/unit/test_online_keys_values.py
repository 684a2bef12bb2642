"""Entity-key encoding and the row codec, independent of any store."""

from __future__ import annotations

import math
import struct
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from potluck.definitions.errors import RetrievalError
from potluck.definitions.field import Field
from potluck.online.keys import KeyEncoder, decode_key
from potluck.online.values import RowCodec
from potluck.types import Array, Bool, Bytes, Float32, Float64, Int32, Int64, String, UnixTimestamp


def test_documented_example_bytes() -> None:
    enc = KeyEncoder(("user_id", "country"), (Field(name="user_id", dtype=Int64), Field(name="country", dtype=String)))
    expected = (
        b"\x01\x02"
        + b"\x07\x00country"
        + b"\x02"
        + struct.pack("<I", 2)
        + b"DE"
        + b"\x07\x00user_id"
        + b"\x01"
        + struct.pack("<q", 42)
    )
    assert enc.encode((42, "DE")) == expected
    assert decode_key(expected) == {"country": "DE", "user_id": 42}


def test_int32_and_int64_keys_encode_alike() -> None:
    a = KeyEncoder(("id",), (Field(name="id", dtype=Int32),))
    b = KeyEncoder(("id",), (Field(name="id", dtype=Int64),))
    assert a.encode((7,)) == b.encode((7,))
    col32, col64 = pa.array([7, -1], pa.int32()), pa.array([7, -1], pa.int64())
    assert (
        a.encode_arrow([col32]).to_pylist() == b.encode_arrow([col64]).to_pylist() == [a.encode((7,)), a.encode((-1,))]
    )


def test_arrow_and_python_encodings_agree_for_every_key_type() -> None:
    fields = (
        Field(name="s", dtype=String),
        Field(name="b", dtype=Bytes),
        Field(name="f", dtype=Bool),
        Field(name="t", dtype=UnixTimestamp),
        Field(name="i", dtype=Int64),
    )
    enc = KeyEncoder(tuple(f.name for f in fields), fields)
    t = datetime(2024, 1, 1, 12, tzinfo=UTC)
    rows = [("x", b"\x00", True, t, 1), ("", b"", False, t, -(2**63))]
    cols = [pa.array([r[i] for r in rows], f.dtype.to_arrow()) for i, f in enumerate(fields)]
    assert enc.encode_arrow(cols).to_pylist() == [enc.encode(r) for r in rows]


@pytest.mark.parametrize("value", ["1", 1.0, None, True, 2**63])
def test_wrong_key_types_are_retrieval_errors(value: object) -> None:
    enc = KeyEncoder(("id",), (Field(name="id", dtype=Int64),))
    with pytest.raises(RetrievalError, match="join key 'id' is declared Int64"):
        enc.encode((value,))


@pytest.mark.parametrize("value", ["1", 1.0, None, True, 2**63])
def test_wrong_key_types_in_a_column_are_retrieval_errors(value: object) -> None:
    enc = KeyEncoder(("id",), (Field(name="id", dtype=Int64),))
    with pytest.raises(RetrievalError, match="join key 'id' is declared Int64"):
        enc.encode_column([1, value, 3])


def test_column_encoding_equals_row_encoding() -> None:
    ints = KeyEncoder(("id",), (Field(name="id", dtype=Int64),))
    assert ints.encode_column([1, -(2**63), 2**63 - 1]) == [ints.encode((v,)) for v in (1, -(2**63), 2**63 - 1)]
    texts = KeyEncoder(("s",), (Field(name="s", dtype=String),))
    assert texts.encode_column(["a", ""]) == [texts.encode(("a",)), texts.encode(("",))]


def test_float_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot be an entity key"):
        KeyEncoder(("x",), (Field(name="x", dtype=Float64),))


TYPES = {
    "i32": (Int32, st.integers(-(2**31), 2**31 - 1)),
    "i64": (Int64, st.integers(-(2**63), 2**63 - 1)),
    "f32": (Float32, st.floats(width=32, allow_nan=False)),
    "f64": (Float64, st.floats(allow_nan=False)),
    "s": (String, st.text()),
    "b": (Bytes, st.binary()),
    "flag": (Bool, st.booleans()),
    "ts": (
        UnixTimestamp,
        st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)),
    ),
}
FIELDS = [Field(name=n, dtype=t) for n, (t, _) in TYPES.items()] + [
    Field(name="a_" + n, dtype=Array(t)) for n, (t, _) in TYPES.items()
]
ROW = st.fixed_dictionaries(
    {
        **{n: st.none() | s for n, (_, s) in TYPES.items()},
        **{"a_" + n: st.none() | st.lists(st.none() | s, max_size=4) for n, (_, s) in TYPES.items()},
    }
)


@settings(max_examples=60, deadline=None)
@given(st.lists(ROW, min_size=1, max_size=5))
def test_every_type_round_trips_through_the_row_codec(rows: list[dict[str, object]]) -> None:
    codec = RowCodec(FIELDS)
    cols = {f.name: pa.array([r[f.name] for r in rows], f.dtype.to_arrow()) for f in FIELDS}
    blobs = codec.encode_arrow(cols, len(rows)).to_pylist()
    for row, blob in zip(rows, blobs, strict=True):
        assert codec.decode(blob) == [row[f.name] for f in FIELDS]
        assert codec.decode_generic(blob) == codec.decode(blob)


def test_compiled_decoder_handles_reordered_and_wide_schemas() -> None:
    # Variable-width fields before fixed ones, and more than 8 fields (a two-byte null bitmap).
    fields = [Field(name=f"s{i}", dtype=String) for i in range(5)] + [
        Field(name=f"i{i}", dtype=Int64) for i in range(6)
    ]
    codec = RowCodec(fields)
    row = {f.name: (None if i % 3 == 0 else (f"v{i}" if f.dtype is String else i)) for i, f in enumerate(fields)}
    cols = {f.name: pa.array([row[f.name]], f.dtype.to_arrow()) for f in fields}
    blob = codec.encode_arrow(cols, 1).to_pylist()[0]
    assert codec.decode(blob) == codec.decode_generic(blob) == [row[f.name] for f in fields]


def test_nan_survives_and_differs_from_null() -> None:
    codec = RowCodec([Field(name="x", dtype=Float64)])
    blobs = codec.encode_arrow({"x": pa.array([float("nan"), None])}, 2).to_pylist()
    first = codec.decode(blobs[0])
    assert first is not None
    assert math.isnan(first[0])
    assert codec.decode(blobs[1]) == [None]


def test_a_row_of_another_schema_decodes_as_missing() -> None:
    old = RowCodec([Field(name="x", dtype=Int64)])
    new = RowCodec([Field(name="x", dtype=Int64), Field(name="y", dtype=String)])
    blob = old.encode_arrow({"x": pa.array([1])}, 1).to_pylist()[0]
    assert new.decode(blob) is None
