"""Partial aggregates: any split of the events into tiles, merged in any order, finalizes to the reference."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregation_reference import aggregate, close
from potluck.aggregation.partials import EMPTY, LastKey, Partial, PartialDecodeError, decode, encode, merge, merge_all
from potluck.aggregation.rule import FUNCTIONS

_FLOATS = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
_INTS = st.integers(min_value=-(2**40), max_value=2**40)


def _events(values: st.SearchStrategy[Any]) -> st.SearchStrategy[list[dict[str, Any]]]:
    event = st.fixed_dictionaries(
        {
            "ts": st.integers(min_value=0, max_value=20),  # few distinct times: many ties
            "created": st.none() | st.integers(min_value=0, max_value=5),
            "value": st.none() | values,
        }
    )
    return st.lists(event, max_size=30).map(lambda es: [{**e, "key": 1, "arrival": i} for i, e in enumerate(es)])


def _partial(events: list[dict[str, Any]]) -> Partial:
    p = EMPTY
    for e in events:
        p = p.add(e["value"], LastKey(e["ts"], e["created"], e["arrival"]))
    return p


@given(events=_events(_FLOATS | _INTS), cuts=st.lists(st.integers(0, 30)), data=st.data())
def test_any_split_and_order_gives_the_reference(events: list[dict[str, Any]], cuts: list[int], data: Any) -> None:
    bounds = sorted({0, len(events), *(c for c in cuts if c <= len(events))})
    pieces = [_partial(events[a:b]) for a, b in itertools.pairwise(bounds)]
    order = data.draw(st.permutations(pieces))
    merged = merge_all(list(order))
    for function in FUNCTIONS:
        want = aggregate(function, events)
        got = merged.finalize(function)
        if function in ("variance", "stddev") and want is not None:
            assert close(got, want, rel=1e-9, abs_tol=1e-6), (function, got, want)
        else:
            assert close(got, want), (function, got, want)


def test_variance_is_stable_far_from_zero() -> None:
    values = [1e9 + d for d in (1.0, 2.0, 3.0, 4.0)]
    p = merge(
        _partial([{"ts": 0, "created": None, "value": v, "arrival": i} for i, v in enumerate(values[:2])]),
        _partial([{"ts": 0, "created": None, "value": v, "arrival": i} for i, v in enumerate(values[2:])]),
    )
    assert p.finalize("variance") == pytest.approx(5 / 3, rel=1e-12)


_VALUE_TYPES = [
    _FLOATS,
    _INTS,
    st.text(max_size=5),
    st.booleans(),
    st.binary(max_size=5),
    st.datetimes(timezones=st.just(UTC), min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1)),
]


@pytest.mark.parametrize("values", _VALUE_TYPES)
def test_encoding_round_trips(values: st.SearchStrategy[Any]) -> None:
    @given(events=_events(values))
    def check(events: list[dict[str, Any]]) -> None:
        p = _partial(events)
        assert decode(encode(p)) == p

    check()


def test_big_integer_sums_stay_exact() -> None:
    p = Partial(count=3, total=3 * 2**62, mean=0.0, m2=0.0)
    assert decode(encode(p)).total == 3 * 2**62


@pytest.mark.parametrize("data", [b"", b"\x02" + bytes(24), encode(EMPTY) + b"x", encode(EMPTY)[:-1]])
def test_bad_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(PartialDecodeError):
        decode(data)
