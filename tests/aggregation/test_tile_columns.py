"""The vectorised window merge over tile records equals merging the same tiles one by one with
`partials.merge` and finalizing with `Partial.finalize` (the definition), for many keys at once."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregation_reference import close
from potluck.aggregation.partials import EMPTY, FIELDS_READ, LastKey, Partial, finalize_columns, merge
from potluck.aggregation.rule import FUNCTIONS
from potluck.aggregation.tile_columns import KeyTiles
from potluck.aggregation.tile_record import (
    FLOAT,
    GENERIC,
    INT,
    Block,
    TileRecord,
    TileRecordError,
    decode,
    encode,
    view,
)

HOP = 10
_FLOATS = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False)
_INTS = st.integers(min_value=-(2**40), max_value=2**40)
_HUGE = st.integers(min_value=2**61, max_value=2**62)  # sums of a few overflow int64
_TEXT = st.text(max_size=3)


def _event(values: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[int, int | None, Any]]:
    return st.tuples(st.integers(1, HOP), st.none() | st.integers(0, 3), st.none() | values)


def _key_tiles(values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[int, list[tuple[int, int | None, Any]]]]:
    """Tile index -> events (offset in the tile, created, value) of one key."""
    return st.dictionaries(st.integers(-5, 40), st.lists(_event(values), min_size=1, max_size=4), max_size=12)


_KEY = st.one_of(
    _key_tiles(_FLOATS), _key_tiles(_INTS), _key_tiles(_HUGE), _key_tiles(_FLOATS | _INTS), _key_tiles(_TEXT)
)


def _partials(tiles: dict[int, list[tuple[int, int | None, Any]]]) -> dict[int, Partial]:
    out: dict[int, Partial] = {}
    arrival = 0
    for k, events in tiles.items():
        p = EMPTY
        for offset, created, value in events:
            arrival += 1
            p = p.add(value, LastKey(k * HOP + offset, created, arrival))
        if p.count:
            out[k] = p
    return out


def _stored(partials: dict[int, Partial]) -> bytes:
    return encode(TileRecord(tiles={HOP: {"x": Block.of(partials)}}))


@settings(max_examples=150, deadline=None)
@given(
    keys=st.one_of(
        st.lists(st.none() | _KEY, min_size=1, max_size=6), st.tuples(_KEY).map(list)
    ),  # one key: Python sums
    first=st.integers(-8, 45),
    width=st.integers(0, 50),
)
def test_vectorised_merge_equals_partials(keys: list[Any], first: int, width: int) -> None:
    last = first + width
    partials = [None if k is None else _partials(k) for k in keys]
    parts = [None if p is None else view(_stored(p)) for p in partials]
    merged = KeyTiles([None if v is None else v.tiles.get(HOP, {}).get("x") for v in parts]).merge(first, last)
    for i, tiles in enumerate(partials):
        want = EMPTY
        for k in sorted(tiles or {}):
            if first <= k <= last:
                want = merge(want, (tiles or {})[k])
        got = merged.partial(i)
        assert got.count == want.count
        if want.count:
            assert got.last_key == want.last_key
        for function in FUNCTIONS:
            expected = want.finalize(function)
            actual = merged.finalize(function)[i]
            assert actual == got.finalize(function)
            if isinstance(expected, float) and function not in ("min", "max", "last"):
                assert close(actual, expected, rel=1e-9, abs_tol=1e-6), (function, actual, expected)
            else:
                assert actual == expected, (function, actual, expected)
                assert type(actual) is type(expected), (function, actual, expected)


@given(tiles=_KEY)
def test_records_round_trip(tiles: dict[int, list[tuple[int, int | None, Any]]]) -> None:
    partials = _partials(tiles)
    record = decode(_stored(partials))
    assert record.expanded() == ({HOP: {k: {"x": p} for k, p in sorted(partials.items())}} if partials else {})
    assert decode(encode(record)).expanded() == record.expanded()


def test_blocks_pick_the_numeric_layout_their_partials_allow() -> None:
    def kind(*values: Any) -> int:
        block = Block.of({i: Partial.of(v, LastKey(i, None, i)) for i, v in enumerate(values)})
        return decode(encode(TileRecord(tiles={HOP: {"x": block}}))).tiles[HOP]["x"].kind

    assert kind(1.5, 2.0) == FLOAT
    assert kind(1, 2) == INT
    assert kind(1, 2.5) == GENERIC  # mixed types keep each partial's own types
    assert kind("a") == GENERIC
    assert kind(True) == GENERIC
    assert kind(2**63) == GENERIC


_STEP = st.one_of(
    st.tuples(st.just("put"), st.integers(-5, 25), _FLOATS | _INTS),
    st.tuples(st.just("drop"), st.integers(-5, 25), st.none()),
    st.tuples(st.just("store"), st.none(), st.none()),
)


@given(steps=st.lists(_STEP, max_size=25), start=st.sampled_from(["float", "int", "none"]))
def test_block_writes_equal_a_dict_of_tiles(steps: list[Any], start: str) -> None:
    """Puts, expiries and re-encodings of a block (in place, inserted, appended, changing layout)
    keep exactly the tiles a plain dict would."""
    seeds: dict[str, dict[int, Any]] = {"float": {0: 1.5, 7: 2.5}, "int": {0: 3, 7: 4}, "none": {}}
    seed = seeds[start]
    want = {k: Partial.of(v, LastKey(k * HOP + 1, None, k)) for k, v in seed.items()}
    block = Block.of(dict(want))
    for i, (op, k, value) in enumerate(steps):
        if op == "put":
            p = Partial.of(value, LastKey(k * HOP + 1, None, 100 + i))
            old = want.get(k)
            want[k] = p if old is None else merge(p, old)
            assert block.get(k) == old
            block.put(k, want[k])
        elif op == "drop":
            dropped = [p for j, p in sorted(want.items()) if j < k]
            want = {j: p for j, p in want.items() if j >= k}
            assert sorted(block.drop_before(k), key=repr) == sorted(dropped, key=repr)
        else:
            block = decode(encode(TileRecord(tiles={HOP: {"x": block}}))).tiles.get(HOP, {}).get("x", Block())
        assert block.partials() == dict(sorted(want.items()))


@given(tiles=_KEY, cut=st.integers(0, 10_000), junk=st.binary(max_size=40))
def test_damaged_records_are_refused(
    tiles: dict[int, list[tuple[int, int | None, Any]]], cut: int, junk: bytes
) -> None:
    blob = _stored(_partials(tiles))
    for damaged in (blob[: cut % len(blob)], blob + (junk[:1] or b"\x00")):
        with pytest.raises(TileRecordError):
            decode(damaged)
    with contextlib.suppress(TileRecordError):  # random bytes: refused (or a record), never another error
        decode(b"\x03" + junk)


def test_older_records_say_how_to_rebuild() -> None:
    with pytest.raises(TileRecordError, match="potluck materialize"):
        view(b"\x02" + bytes(20))


@settings(max_examples=150, deadline=None)
@given(
    keys=st.lists(st.none() | _KEY, min_size=1, max_size=4),
    first=st.integers(-8, 45),
    width=st.integers(0, 50),
    functions=st.sets(st.sampled_from(FUNCTIONS), min_size=1),
)
def test_merging_only_the_fields_read_gives_the_same_values(
    keys: list[Any], first: int, width: int, functions: set[str]
) -> None:
    """A window merged only in the fields its functions read (one key: the Python path; more: numpy)
    finalizes to the values of the whole merge, which equals `partials.merge` (test above)."""
    parts = [None if k is None else view(_stored(_partials(k))) for k in keys]
    tiles = KeyTiles([None if v is None else v.tiles.get(HOP, {}).get("x") for v in parts])
    fields = frozenset().union(*(FIELDS_READ[f] for f in functions))
    whole, some = tiles.merge(first, first + width), tiles.merge(first, first + width, fields)
    for function in functions:
        assert some.finalize(function) == whole.finalize(function), function


def test_each_function_reads_only_its_fields() -> None:
    """`FIELDS_READ` is what `finalize_columns` reads: other fields can hold anything."""
    p = Partial(3, 6, 2.0, 2.0, 1, 3, 3, LastKey(1, None, 1))
    for function in FUNCTIONS:
        kept = FIELDS_READ[function] | {"count"}
        junk = {f: object() for f in ("total", "m2", "min", "max", "last") if f not in kept}
        values = {"count": 3, "total": 6, "m2": 2.0, "min": 1, "max": 3, "last": 3} | junk
        got = finalize_columns(function, *([values[f]] for f in ("count", "total", "m2", "min", "max", "last")))
        assert got == [p.finalize(function)], function
