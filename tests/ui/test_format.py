"""How the UI writes values: time axis ticks, durations, rates, measures, times and kinds."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from charts_support import SVG, parse

from potluck.ui.charts import timeline_svg
from potluck.ui.charts.time_axis import time_ticks
from potluck.ui.format import (
    duration_text,
    kind_label,
    percent_text,
    significant_text,
    status_class,
    time_html,
    utc_text,
)

START = datetime(2026, 12, 1, 21, 44, 52, 250000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("span", "expected"),
    [
        (timedelta(seconds=2), ["21:44:53", "21:44:54"]),  # seconds apart: whole seconds, to the second
        (timedelta(minutes=50), ["21:45", "22:00", "22:15", "22:30"]),
        (timedelta(hours=5), ["12-01 22:00", "12-02 00:00", "12-02 02:00"]),  # crosses midnight: the date too
        (timedelta(days=20), ["2026-12-03", "2026-12-10", "2026-12-17"]),
    ],
)
def test_time_ticks_are_round_moments_labelled_for_the_span(span: timedelta, expected: list[str]) -> None:
    ticks = time_ticks(START, START + span)
    assert [label for _, label in ticks] == expected
    moments = [moment for moment, _ in ticks]
    assert all(START <= m <= START + span for m in moments)
    steps = {b - a for a, b in itertools.pairwise(moments)}
    assert len(steps) == 1  # evenly spaced


@pytest.mark.parametrize(
    "span",
    [timedelta(0), timedelta(milliseconds=300), timedelta(seconds=1), timedelta(seconds=3), timedelta(seconds=59),
     timedelta(minutes=7), timedelta(hours=23), timedelta(days=1, seconds=1), timedelta(days=400),
     timedelta(days=4000)],
)  # fmt: skip
def test_time_ticks_never_repeat_a_label(span: timedelta) -> None:
    ticks = time_ticks(START, START + span)
    labels = [label for _, label in ticks]
    assert 1 <= len(labels) <= 4
    assert len(set(labels)) == len(labels), labels
    assert [m for m, _ in ticks] == sorted(m for m, _ in ticks)


def test_timeline_of_runs_seconds_apart_has_distinct_ticks_and_a_visible_title() -> None:
    points = [(START + timedelta(seconds=s), v) for s, v in ((0, 0.01), (0.8, 0.2), (1.9, 0.56))]
    svg = parse(timeline_svg(points, metric="psi", feature="amount", threshold=0.2))
    ticks = [t.text for t in svg.findall(f"{SVG}text") if "time" in (t.get("class") or "").split()]
    assert ticks == ["21:44:53", "21:44:54"]
    [heading] = [t.text for t in svg.findall(f"{SVG}text[@class='chart-title']")]
    assert heading == "PSI \u2014 amount (threshold 0.2)"
    points_text = [c.find(f"{SVG}title").text for c in svg.iter(f"{SVG}circle")]
    assert points_text[0] == "2026-12-01 21:44:52 UTC: PSI 0.01"


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (172800, "2 days"),
        (86400, "1 day"),
        (5400, "1 h 30 min"),
        (90061, "1 day 1 h 1 min 1 s"),
        (45, "45 s"),
        (59.6, "1 min"),
        (0, "no ttl (unbounded)"),
        (None, "\u2014"),
        (math.inf, "\u2014"),
    ],
)
def test_durations_in_days_hours_minutes_seconds(seconds: float | None, expected: str) -> None:
    assert duration_text(seconds) == expected


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        (0.0123, "1.23%"),
        (0.5, "50.0%"),
        (0.125, "12.5%"),
        (1.0, "100.0%"),
        (0.0, "0.0%"),
        (0.00001, "<0.01%"),
        (None, "\u2014"),
        (float("nan"), "\u2014"),
        ("0.5", "\u2014"),
        (True, "\u2014"),
    ],
)
def test_rates_as_percents(rate: object, expected: str) -> None:
    assert percent_text(rate) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.05019116785687218, "0.05019"),
        (0.2127365141224693, "0.2127"),
        (1234567.0, "1.235e+06"),
        (12.0, "12"),
        (-0.5, "\u22120.5"),
        (0, "0"),
        (None, "\u2014"),
        (math.inf, "\u2014"),
    ],
)
def test_measures_with_four_significant_digits(value: object, expected: str) -> None:
    assert significant_text(value) == expected


def test_times_shown_in_utc_to_the_second_with_the_full_iso_kept() -> None:
    local = START.astimezone(timezone(timedelta(hours=2)))
    assert utc_text(local) == "2026-12-01 21:44:52 UTC"
    assert utc_text("2026-12-01T21:44:52.250000") == "2026-12-01 21:44:52 UTC"  # naive text: UTC
    html = str(time_html(local.isoformat()))
    assert html == (
        '<time datetime="2026-12-01T21:44:52.250000+00:00" title="2026-12-01T21:44:52.250000+00:00">'
        "2026-12-01 21:44:52 UTC</time>"
    )
    assert str(time_html(None)) == "\u2014"
    assert str(time_html("<b>not a time</b>")) == "&lt;b&gt;not a time&lt;/b&gt;"


def test_kind_labels_and_status_classes() -> None:
    assert kind_label("on_demand_feature_view") == "On-demand view"
    assert kind_label("feature_view") == "Batch view"
    assert kind_label("stream_feature_view") == "Stream view"
    assert kind_label("label_view") == "Label view"
    assert kind_label("something_new") == "something_new"
    assert [status_class(s) for s in ("ok", "stale", "never", "unchecked", "")] == [
        "good",
        "bad",
        "bad",
        "neutral",
        "neutral",
    ]
