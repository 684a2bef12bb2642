"""A metric over time (drift per monitoring run, freshness): a line, its points and a threshold."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from markupsafe import Markup

from potluck.ui.charts.svg import element, finite, nice_ceiling, no_data, num, root, short_number, text, title, truncate
from potluck.ui.charts.time_axis import time_ticks
from potluck.ui.format import as_utc, metric_label, utc_text

WIDTH = 480.0
HEIGHT = 220.0
LEFT, RIGHT, TOP, BOTTOM = 48.0, 16.0, 36.0, 36.0
CHARACTER_WIDTH = 6.5  # of a tick label's character, about, at font size 11
HEADING_CHARACTERS = 70  # of the visible title, at its font size, in the chart's width
LINE = "#d9822b"
THRESHOLD = "#c0392b"
GRID = "#e3e6ea"
AXIS = "#5f6b7a"


def _y_range(values: Sequence[float], threshold: float | None) -> tuple[float, float]:
    marks = [*values, *([] if threshold is None else [threshold])]
    low = min(0.0, *marks)
    high = max(marks)
    if high <= 0:
        high = 0.0
    top = nice_ceiling(high) if high > 0 else 1.0
    bottom = -nice_ceiling(-low) if low < 0 else 0.0
    return bottom, top


def timeline_svg(
    points: Sequence[tuple[datetime, float]], *, metric: str, feature: str, threshold: float | None = None
) -> Markup:
    """`metric` of `feature` at each point in time, oldest first; points above `threshold` stand out.

    Points whose value is not a finite number are left out; with none left, a "no data" picture.
    """
    head = {"data-feature": feature, "data-metric": metric}
    drawn = sorted(
        ((as_utc(moment), number) for moment, value in points or () if (number := finite(value)) is not None),
        key=lambda point: point[0],
    )
    threshold = finite(threshold)
    if not drawn:
        return no_data("chart timeline", f"no {metric} values for {feature} yet", head)

    start, end = drawn[0][0], drawn[-1][0]
    span = end - start
    low, high = _y_range([value for _, value in drawn], threshold)
    inset = 8.0  # keeps the first and last points off the axis and the edge
    plot_width = WIDTH - LEFT - RIGHT - 2 * inset
    plot_height = HEIGHT - TOP - BOTTOM

    def x_of(moment: datetime) -> float:
        if span.total_seconds() == 0:
            return LEFT + inset + plot_width / 2
        return LEFT + inset + (moment - start).total_seconds() / span.total_seconds() * plot_width

    def y_of(value: float) -> float:
        return TOP + (high - value) / (high - low) * plot_height

    name = metric_label(metric)
    label = f"{name} of {feature} over time"
    heading = f"{name} \u2014 {feature}"
    if threshold is not None:
        heading += f" (threshold {short_number(threshold)})"
    over = [] if threshold is None else [p for p in drawn if p[1] > threshold]
    summary = f"{len(drawn)} values from {utc_text(start)} to {utc_text(end)}, latest {short_number(drawn[-1][1])}"
    if threshold is not None:
        summary += f"; {len(over)} above the threshold {short_number(threshold)}"
    body = [
        title(label),
        element("desc", None, text(summary + ".")),
        element(
            "text",
            {"class": "chart-title", "x": LEFT, "y": 16, "font-size": 13, "font-weight": 600, "fill": "#1b1f24"},
            text(truncate(heading, HEADING_CHARACTERS)),
        ),
    ]

    for fraction in (0.0, 0.5, 1.0):
        value = low + (high - low) * fraction
        y = y_of(value)
        body.append(
            element("line", {"class": "grid", "x1": LEFT, "x2": WIDTH - RIGHT, "y1": y, "y2": y, "stroke": GRID})
        )
        body.append(
            element(
                "text",
                {"class": "tick", "x": LEFT - 6, "y": y + 4, "text-anchor": "end", "fill": AXIS},
                text(short_number(value)),
            )
        )
    base = TOP + plot_height
    body.append(
        element("line", {"class": "axis", "x1": LEFT, "x2": WIDTH - RIGHT, "y1": base, "y2": base, "stroke": AXIS})
    )
    for moment, tick in time_ticks(start, end):
        x, half = x_of(moment), len(tick) * CHARACTER_WIDTH / 2
        anchor = "end" if x + half > WIDTH else "start" if x - half < 0 else "middle"
        body.append(
            element(
                "text",
                {"class": "tick time", "x": x, "y": base + 16, "text-anchor": anchor, "fill": AXIS},
                text(tick),
            )
        )

    if threshold is not None:
        y = y_of(threshold)
        body.append(
            element(
                "line",
                {
                    "class": "threshold",
                    "x1": LEFT,
                    "x2": WIDTH - RIGHT,
                    "y1": y,
                    "y2": y,
                    "stroke": THRESHOLD,
                    "stroke-dasharray": "5 3",
                },
                title(f"threshold {short_number(threshold)}"),
            )
        )
        body.append(
            element(
                "text",
                {"class": "threshold-label", "x": LEFT + 4, "y": y - 4, "fill": THRESHOLD},
                text(f"threshold {short_number(threshold)}"),
            )
        )

    coordinates = " ".join(f"{num(x_of(m))},{num(y_of(v))}" for m, v in drawn)
    body.append(
        element(
            "polyline",
            {
                "class": "series-current",
                "data-series": metric,
                "points": coordinates,
                "fill": "none",
                "stroke": LINE,
                "stroke-width": 2,
            },
        )
    )
    dots = []
    for moment, value in drawn:
        above = threshold is not None and value > threshold
        dots.append(
            element(
                "circle",
                {
                    "class": "point above-threshold" if above else "point",
                    "cx": x_of(moment),
                    "cy": y_of(value),
                    "r": 3.5,
                    "fill": THRESHOLD if above else LINE,
                    "data-value": f"{value:.6g}",
                    "data-time": moment.isoformat(),
                },
                title(
                    f"{utc_text(moment)}: {name} {short_number(value)}" + (" (above the threshold)" if above else "")
                ),
            )
        )
    body.append(element("g", {"class": "points"}, *dots))
    return root("chart timeline", WIDTH, HEIGHT, {**head, "role": "img", "aria-label": label}, body)
