"""A metric over time (drift per monitoring run, freshness): a line, its points and a threshold."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from markupsafe import Markup

from potluck.ui.charts.svg import element, finite, nice_ceiling, no_data, num, root, short_number, spread, text, title

WIDTH = 480.0
HEIGHT = 200.0
LEFT, RIGHT, TOP, BOTTOM = 48.0, 16.0, 16.0, 36.0
LINE = "#d9822b"
THRESHOLD = "#c0392b"
GRID = "#e3e6ea"
AXIS = "#5f6b7a"


def _utc(moment: datetime) -> datetime:
    """Naive times are UTC (as the registry stores them)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _time_label(moment: datetime, span: timedelta) -> str:
    if span >= timedelta(days=2):
        return moment.strftime("%Y-%m-%d")
    if span >= timedelta(hours=2):
        return moment.strftime("%m-%d %H:%M")
    return moment.strftime("%H:%M:%S")


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
        ((_utc(moment), number) for moment, value in points or () if (number := finite(value)) is not None),
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

    label = f"{metric} of {feature} over time"
    over = [] if threshold is None else [p for p in drawn if p[1] > threshold]
    summary = f"{len(drawn)} values from {_time_label(start, span)} to {_time_label(end, span)}, latest {short_number(drawn[-1][1])}"
    if threshold is not None:
        summary += f"; {len(over)} above the threshold {short_number(threshold)}"
    body = [title(label), element("desc", None, text(summary + "."))]

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
    ticks = [drawn[0][0]] if span.total_seconds() == 0 else [start + span * (i / 3) for i in range(4)]
    for i in spread(len(ticks), 4):
        moment = ticks[i]
        anchor = "middle" if len(ticks) == 1 else ("start" if i == 0 else "end" if i == len(ticks) - 1 else "middle")
        body.append(
            element(
                "text",
                {"class": "tick", "x": x_of(moment), "y": base + 16, "text-anchor": anchor, "fill": AXIS},
                text(_time_label(moment, span)),
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
                    f"{moment.strftime('%Y-%m-%d %H:%M:%S')} UTC: {metric} {short_number(value)}"
                    + (" (above the threshold)" if above else "")
                ),
            )
        )
    body.append(element("g", {"class": "points"}, *dots))
    return root("chart timeline", WIDTH, HEIGHT, {**head, "role": "img", "aria-label": label}, body)
