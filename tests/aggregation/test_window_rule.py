"""The window rule: bounds, tiles, hops and names, against the formula written out by hand."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from potluck.aggregation import rule

H = 3_600_000_000  # an hour in microseconds


def test_default_hops() -> None:
    assert rule.default_hop(timedelta(minutes=1)) == timedelta(minutes=1)  # never above the window
    assert rule.default_hop(timedelta(hours=1)) == timedelta(minutes=5)
    assert rule.default_hop(timedelta(hours=12)) == timedelta(minutes=5)
    assert rule.default_hop(timedelta(hours=13)) == timedelta(hours=1)
    assert rule.default_hop(timedelta(days=12)) == timedelta(hours=1)
    assert rule.default_hop(timedelta(days=30)) == timedelta(days=1)


def test_functions_and_aliases() -> None:
    assert rule.canonical_function("avg") == "mean"
    assert rule.canonical_function("MAX") == "max"
    with pytest.raises(ValueError, match="count, sum, mean, min, max, stddev, variance, last"):
        rule.canonical_function("median")


@pytest.mark.parametrize(
    ("window", "hop", "message"),
    [
        (timedelta(hours=1), timedelta(minutes=7), "not a multiple"),
        (timedelta(hours=1), timedelta(hours=2), "longer than"),
        (timedelta(seconds=1.5), None, "whole number of seconds"),
        (timedelta(0), None, "positive"),
        (None, timedelta(hours=1), "lifetime"),
    ],
)
def test_bad_windows(window: timedelta | None, hop: timedelta | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rule.check_window(window, hop)


def test_window_bounds_sawtooth() -> None:
    w, h = 2 * H, H
    assert rule.window_bounds(5 * H, w, h) == (3 * H, 5 * H)  # on a boundary: exactly W
    assert rule.window_bounds(5 * H + 1, w, h) == (3 * H, 5 * H + 1)  # just after: W plus a bit
    assert rule.window_bounds(6 * H - 1, w, h) == (3 * H, 6 * H - 1)  # almost W + h
    assert rule.window_bounds(7, None, None) == (None, 7)


def test_tiles_cover_half_open_intervals() -> None:
    assert rule.tile_index(H, H) == 0  # (0, h] is tile 0
    assert rule.tile_index(H + 1, H) == 1
    assert rule.tile_index(0, H) == -1
    assert rule.tile_end(0, H) == H


@given(
    t=st.integers(min_value=-(10**15), max_value=10**15),
    hop_s=st.sampled_from([1, 60, 300, 3600, 86400]),
    n=st.integers(min_value=1, max_value=40),
    event=st.integers(min_value=-(10**15), max_value=10**15),
)
def test_tiles_and_bounds_agree(t: int, hop_s: int, n: int, event: int) -> None:
    h = hop_s * 1_000_000
    w = n * h
    lower = (t // h) * h - w  # the rule, written out
    inside = lower < event <= t
    assert rule.in_window(event, t, w, h) == inside
    tiles = rule.window_tiles(t, w, h)
    # An event no later than t is in the window exactly when its tile is one of the window's tiles.
    if event <= t:
        assert (rule.tile_index(event, h) in tiles) == inside
    # The lower bound is a tile boundary: the first tile starts there.
    assert tiles.start * h == lower
    assert len(tiles) in (n, n + 1)


def test_output_names_and_types() -> None:
    class Agg:
        column = "amount"
        function = "sum"
        time_window: timedelta | None = timedelta(hours=1)
        slide_interval = None
        name = ""

    assert rule.output_name(Agg()) == "sum_amount_3600s"
    Agg.time_window = None
    assert rule.output_name(Agg()) == "sum_amount"
    assert rule.output_type("count", "String") == "Int64"
    assert rule.output_type("sum", "Int32") == "Int64"
    assert rule.output_type("sum", "Float32") == "Float64"
    assert rule.output_type("avg", "Int64") == "Float64"
    assert rule.output_type("max", "String") == "String"
    assert rule.output_type("last", "Bool") == "Bool"
    with pytest.raises(ValueError, match="cannot aggregate a String"):
        rule.output_type("sum", "String")


def test_longest_span() -> None:
    assert rule.longest_span([2 * H, H], [H, H // 2]) == 3 * H
    assert rule.longest_span([H, None], [H, None]) is None
