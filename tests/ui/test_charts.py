"""Histogram, category bars and timeline SVG: the numbers drawn are the numbers given."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from charts_support import SVG, parse, series_rects

from potluck.ui.charts import category_bars_svg, histogram_svg, timeline_svg

HOSTILE = "<script>alert('x')</script>&\"\x00"


def _shares(counts: list[float]) -> list[float]:
    return [c / sum(counts) for c in counts]


def _heights(rects: list) -> list[float]:
    return [float(r.get("height")) for r in rects]


def _assert_proportional(heights: list[float], shares: list[float]) -> None:
    tallest = max(range(len(shares)), key=lambda i: shares[i])
    scale = heights[tallest] / shares[tallest]
    assert scale > 0
    for height, share in zip(heights, shares, strict=True):
        assert height == pytest.approx(share * scale, abs=0.02)


def test_histogram_bar_heights_are_the_shares_of_each_series() -> None:
    baseline, current = [10, 30, 60, 0], [20, 20, 20, 40]
    svg = parse(histogram_svg([0.0, 1.0, 2.0, 5.0, 10.0], baseline, current, feature="trips"))

    assert svg.get("class") == "chart histogram"
    assert svg.get("data-feature") == "trips"
    assert svg.get("role") == "img"
    assert "trips" in svg.get("aria-label", "")
    assert svg.find(f"{SVG}title") is not None
    assert svg.find(f"{SVG}desc") is not None
    base_rects, now_rects = series_rects(svg, "baseline"), series_rects(svg, "current")
    assert len(base_rects) == len(now_rects) == 4
    _assert_proportional(_heights(base_rects), _shares(baseline))
    _assert_proportional(_heights(now_rects), _shares(current))
    # one scale for both series, so bars compare across them: 40% current vs 60% baseline
    assert _heights(now_rects)[3] / _heights(base_rects)[2] == pytest.approx(40 / 60, abs=1e-3)
    bottoms = {round(float(r.get("y")) + float(r.get("height")), 2) for r in base_rects + now_rects}
    assert len(bottoms) == 1
    assert [float(r.get("data-share")) for r in base_rects] == pytest.approx([0.1, 0.3, 0.6, 0.0])
    legend = [t.text for t in svg.findall(f".//{SVG}g[@class='legend']/{SVG}text")]
    assert legend == ["baseline", "current"]
    ticks = [t.text for t in svg.findall(f"{SVG}text[@class='tick']")]
    assert {"0", "1", "10"} <= set(ticks)


def test_histogram_takes_interior_edges_with_open_outer_bins() -> None:
    svg = parse(histogram_svg([1.5, 3.0], [1, 1, 2], None, feature="f"))
    rects = series_rects(svg, "baseline")
    assert len(rects) == 3
    _assert_proportional(_heights(rects), [0.25, 0.25, 0.5])
    assert svg.find(f".//{SVG}g[@data-series='current']") is None
    assert [t.text for t in svg.findall(f".//{SVG}g[@class='legend']/{SVG}text")] == ["baseline"]
    assert rects[0].find(f"{SVG}title").text == "baseline: 25.0% in [\u2212\u221e, 1.5)"


@pytest.mark.parametrize(
    ("edges", "baseline", "current", "message"),
    [
        ([], [], None, "no data for f"),
        ([0.0, 1.0], [0, 0], [0, 0], "no values for f"),
        ([0.0, 1.0, 2.0, 3.0, 4.0], [1, 2], None, "5 bin edges do not fit 2 bins"),
        ([0.0, 1.0, 2.0], [1, 2], [1, 2, 3], "2 baseline and 3 current counts for 2 bins"),
    ],
)
def test_histogram_without_drawable_data_says_why(
    edges: list[float], baseline: list[float], current: list[float] | None, message: str
) -> None:
    svg = parse(histogram_svg(edges, baseline, current, feature="f"))
    assert svg.get("data-empty") == "true"
    assert svg.get("data-feature") == "f"
    assert message in svg.find(f"{SVG}text").text
    assert svg.find(f".//{SVG}g[@data-series='baseline']") is None


def test_category_bars_heights_labels_and_hostile_names() -> None:
    categories = ["red", "a-very-long-category-name-indeed", HOSTILE]
    markup = category_bars_svg(categories, [5, 3, 2], [1, 1, 8], feature=HOSTILE)
    assert "<script>" not in str(markup)
    svg = parse(markup)
    assert svg.get("class") == "chart histogram"
    assert svg.get("data-feature") == HOSTILE.replace("\x00", "\ufffd")
    _assert_proportional(_heights(series_rects(svg, "baseline")), [0.5, 0.3, 0.2])
    _assert_proportional(_heights(series_rects(svg, "current")), [0.1, 0.1, 0.8])
    labels = svg.findall(f"{SVG}text[@class='tick']")
    long_label = next(t for t in labels if (t.text or "").startswith("a-very"))
    assert long_label.text.endswith("\u2026")
    assert long_label.find(f"{SVG}title").text == "a-very-long-category-name-indeed"
    assert category_bars_svg([], [], None, feature="f") == category_bars_svg([], [], None, feature="f")
    assert parse(category_bars_svg([], [], None, feature="f")).get("data-empty") == "true"


def test_many_categories_slant_their_labels() -> None:
    categories = [f"c{i}" for i in range(30)]
    svg = parse(category_bars_svg(categories, list(range(1, 31)), None, feature="f"))
    assert len(series_rects(svg, "baseline")) == 30
    labels = svg.findall(f"{SVG}text[@class='tick']")
    assert any("rotate(" in (t.get("transform") or "") for t in labels)


def test_timeline_points_threshold_and_order() -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    values = [0.05, 0.3, float("nan"), 0.1, 0.4]
    points = [(start + timedelta(days=i), v) for i, v in enumerate(values)]
    points.reverse()  # given newest first; drawn oldest first
    points.append((datetime(2026, 3, 6), 0.2))  # naive: read as UTC
    markup = timeline_svg(points, metric="psi", feature="trips", threshold=0.25)
    svg = parse(markup)
    assert (svg.get("class"), svg.get("data-feature"), svg.get("data-metric")) == ("chart timeline", "trips", "psi")
    line = svg.find(f"{SVG}polyline[@data-series='psi']")
    coords = [tuple(map(float, pair.split(","))) for pair in line.get("points").split()]
    drawn = [0.05, 0.3, 0.1, 0.4, 0.2]  # NaN left out
    assert len(coords) == len(drawn)
    xs, ys = [c[0] for c in coords], [c[1] for c in coords]
    assert xs == sorted(xs)
    assert xs[2] - xs[1] == pytest.approx(2 * (xs[1] - xs[0]), abs=0.02)  # the NaN day is a gap in time
    slope = (ys[3] - ys[0]) / (drawn[3] - drawn[0])
    assert slope < 0  # larger values are higher up
    for y, v in zip(ys, drawn, strict=True):
        assert y - ys[0] == pytest.approx(slope * (v - drawn[0]), abs=0.03)
    threshold = svg.find(f"{SVG}line[@class='threshold']")
    assert float(threshold.get("y1")) == pytest.approx(ys[0] + slope * (0.25 - drawn[0]), abs=0.03)
    circles = svg.findall(f".//{SVG}circle")
    assert len(circles) == 5
    above = [c for c in circles if "above-threshold" in c.get("class", "")]
    assert [float(c.get("data-value")) for c in above] == [0.3, 0.4]
    assert circles[0].find(f"{SVG}title").text == "2026-03-01 00:00:00 UTC: PSI 0.05"
    assert markup == timeline_svg(points, metric="psi", feature="trips", threshold=0.25)


def test_timeline_without_threshold_single_point_and_empty() -> None:
    one = parse(timeline_svg([(datetime(2026, 1, 1, tzinfo=UTC), 2.0)], metric="m", feature="f"))
    assert one.find(f"{SVG}line[@class='threshold']") is None
    assert len(one.findall(f".//{SVG}circle")) == 1
    for points in ([], [(datetime(2026, 1, 1, tzinfo=UTC), math.inf)]):
        empty = parse(timeline_svg(points, metric="m", feature="f"))
        assert empty.get("data-empty") == "true"
        assert empty.get("data-metric") == "m"
        assert "no m values for f" in empty.find(f"{SVG}text").text


def test_hostile_metric_and_feature_are_escaped() -> None:
    markup = timeline_svg([(datetime(2026, 1, 1, tzinfo=UTC), 1.0)], metric=HOSTILE, feature=HOSTILE, threshold=0.5)
    assert "<script>" not in str(markup)
    svg = parse(markup)
    assert svg.get("data-metric") == HOSTILE.replace("\x00", "\ufffd")


def test_counts_and_values_that_are_not_numbers_count_as_nothing() -> None:
    counts = [None, 1, "x", -3, 3, float("nan")]
    svg = parse(histogram_svg([0, 1, 2, 3, 4, 5, 6], counts, None, feature="f"))  # type: ignore[arg-type]
    assert [float(r.get("data-share")) for r in series_rects(svg, "baseline")] == [0, 0.25, 0, 0, 0.75, 0]
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    points = [(moment, None), (moment + timedelta(hours=1), 2), (moment + timedelta(hours=2), True)]
    timeline = parse(timeline_svg(points, metric="m", feature="f", threshold=float("nan")))  # type: ignore[arg-type]
    assert [float(c.get("data-value")) for c in timeline.iter(f"{SVG}circle")] == [2.0]
    assert timeline.find(f"{SVG}line[@class='threshold']") is None
