"""Distribution charts: a numeric histogram and category bars, baseline and current shares overlaid.

Counts become shares of their series. Bins are drawn equally wide whatever their value range
(quantile bins are uneven), so the height of a bar is its share; the baseline bar fills its slot and
the current bar, narrower, stands in front of it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

from potluck.ui.charts.svg import (
    AttrValue,
    element,
    finite,
    nice_ceiling,
    no_data,
    percent,
    root,
    short_number,
    spread,
    text,
    title,
    truncate,
)

WIDTH = 480.0
HEIGHT = 220.0
LEFT, RIGHT, TOP = 48.0, 12.0, 28.0
BOTTOM = 40.0
BOTTOM_ROTATED = 72.0  # room for slanted category labels
SERIES_FILL = {"baseline": "#9aabc0", "current": "#d9822b"}
GRID = "#e3e6ea"
AXIS = "#5f6b7a"


@dataclass(frozen=True)
class _Label:
    at: float  # in bin widths from the left of the plot
    text: str
    full: str


def _shares(counts: Sequence[float]) -> list[float] | None:
    """Each count's share of the total (negative counts and non-numbers as 0); None when the total is 0."""
    values = [max(finite(c) or 0.0, 0.0) for c in counts]
    total = sum(values)
    return [v / total for v in values] if total > 0 else None


def _edge_labels(edges: Sequence[float], bins: int) -> tuple[list[_Label], list[str]] | str:
    """Tick labels at bin boundaries and each bin's range, or why the edges do not fit the bins.

    `edges` are either every boundary (bins + 1 of them) or the interior ones (bins - 1, the outer
    bins open-ended, as the monitoring profiles store them).
    """
    values = [float(e) for e in edges]
    if len(values) == bins + 1:
        bounds = values
        first = 0
    elif len(values) == bins - 1:
        bounds = [-math.inf, *values, math.inf]
        first = 1
    else:
        return f"{len(values)} bin edges do not fit {bins} bins"
    ranges = [f"[{short_number(bounds[i])}, {short_number(bounds[i + 1])})" for i in range(bins)]
    interior = list(range(first, len(bounds) - first))
    labels = [
        _Label(float(i), short_number(bounds[i]), short_number(bounds[i]))
        for i in (interior[j] for j in spread(len(interior), 8))
    ]
    return labels, ranges


def _category_labels(categories: Sequence[str]) -> tuple[list[_Label], bool]:
    count = len(categories)
    slot = (WIDTH - LEFT - RIGHT) / count
    rotated = count > 6
    limit = 14 if rotated else max(int(slot / 6.5), 3)
    step = max(math.ceil(13 / slot), 1) if rotated else 1
    labels = [_Label(i + 0.5, truncate(str(categories[i]), limit), str(categories[i])) for i in range(0, count, step)]
    return labels, rotated


def _series_group(
    series: str, shares: Sequence[float], ranges: Sequence[str], *, ymax: float, bottom: float, narrow: bool
) -> str:
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - bottom
    slot = plot_width / len(shares)
    gap = min(1.0, slot * 0.1)
    full = slot - 2 * gap
    width = full * 0.5 if narrow else full
    rects = []
    for i, share in enumerate(shares):
        height = share / ymax * plot_height
        x = LEFT + i * slot + gap + (full - width) / 2
        rects.append(
            element(
                "rect",
                {
                    "x": x,
                    "y": TOP + plot_height - height,
                    "width": width,
                    "height": height,
                    "data-share": f"{share:.6g}",
                },
                title(f"{series}: {percent(share)} in {ranges[i]}"),
            )
        )
    return element("g", {"data-series": series, "class": f"series-{series}", "fill": SERIES_FILL[series]}, *rects)


def _axes(ymax: float, labels: Sequence[_Label], bins: int, *, bottom: float, rotated: bool) -> list[str]:
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - bottom
    base = TOP + plot_height
    parts = []
    for fraction in (0.0, 0.5, 1.0):
        y = base - fraction * plot_height
        parts.append(
            element("line", {"class": "grid", "x1": LEFT, "x2": WIDTH - RIGHT, "y1": y, "y2": y, "stroke": GRID})
        )
        parts.append(
            element(
                "text",
                {"class": "tick", "x": LEFT - 6, "y": y + 4, "text-anchor": "end", "fill": AXIS},
                text(percent(ymax * fraction).replace(".0%", "%")),
            )
        )
    parts.append(
        element("line", {"class": "axis", "x1": LEFT, "x2": WIDTH - RIGHT, "y1": base, "y2": base, "stroke": AXIS})
    )
    slot = plot_width / bins
    for label in labels:
        x = LEFT + label.at * slot
        y = base + 14
        values: dict[str, AttrValue] = {
            "class": "tick",
            "x": x,
            "y": y,
            "text-anchor": "end" if rotated else "middle",
            "fill": AXIS,
        }
        if rotated:
            values["transform"] = f"rotate(-40 {x:.2f} {y:.2f})"
        body = text(label.text) + (title(label.full) if label.full != label.text else "")
        parts.append(element("text", values, body))
    return parts


def _legend(series: Sequence[str]) -> str:
    items = []
    x = WIDTH - RIGHT - 78.0 * len(series)
    for name in series:
        items.append(
            element(
                "rect",
                {"class": f"series-{name}", "x": x, "y": 8, "width": 10, "height": 10, "fill": SERIES_FILL[name]},
            )
        )
        items.append(element("text", {"x": x + 14, "y": 17, "fill": AXIS}, text(name)))
        x += 78.0
    return element("g", {"class": "legend"}, *items)


def _description(kind: str, ranges: Sequence[str], baseline: Sequence[float], current: Sequence[float] | None) -> str:
    if current is None:
        top = max(range(len(baseline)), key=lambda i: baseline[i])
        return f"{len(baseline)} {kind}; the largest is {ranges[top]} with {percent(baseline[top])} of the baseline."
    moved = max(range(len(baseline)), key=lambda i: abs(current[i] - baseline[i]))
    return (
        f"{len(baseline)} {kind}; the largest change is in {ranges[moved]}: "
        f"{percent(baseline[moved])} of the baseline, {percent(current[moved])} now."
    )


def _chart(
    kind: str,
    feature: str,
    labels: Sequence[_Label],
    ranges: Sequence[str],
    baseline: Sequence[float],
    current: Sequence[float] | None,
    *,
    rotated: bool,
) -> Markup:
    noun = "histogram" if kind == "histogram" else "category bars"
    unit = "bins" if kind == "histogram" else "categories"
    bottom = BOTTOM_ROTATED if rotated else BOTTOM
    ymax = nice_ceiling(max([*baseline, *(current or [])]))
    series = ["baseline"] if current is None else ["baseline", "current"]
    label = f"{noun.capitalize()} of {feature}: {' and '.join(series)} shares"
    body = [
        title(label),
        element("desc", None, text(_description(unit, ranges, baseline, current))),
        *_axes(ymax, labels, len(baseline), bottom=bottom, rotated=rotated),
        _series_group("baseline", baseline, ranges, ymax=ymax, bottom=bottom, narrow=False),
    ]
    if current is not None:
        body.append(_series_group("current", current, ranges, ymax=ymax, bottom=bottom, narrow=True))
    body.append(_legend(series))
    head = {"data-feature": feature, "data-chart": kind, "role": "img", "aria-label": label}
    return root("chart histogram", WIDTH, HEIGHT, head, body)


def _series_shares(
    feature: str, bins: int, baseline: Sequence[float], current: Sequence[float] | None
) -> tuple[list[float], list[float] | None] | str:
    if bins == 0:
        return f"no data for {feature}"
    if len(baseline) != bins or (current is not None and len(current) != bins):
        given = f"{len(baseline)} baseline" + ("" if current is None else f" and {len(current)} current")
        return f"{feature}: {given} counts for {bins} bins"
    zeros = [0.0] * bins
    base = _shares(baseline)
    now = None if current is None else _shares(current)
    if base is None and now is None:
        return f"no values for {feature}"
    return base or zeros, None if current is None else now or zeros


def histogram_svg(
    edges: Sequence[float], baseline: Sequence[float], current: Sequence[float] | None, *, feature: str
) -> Markup:
    """Shares of a numeric feature per bin, baseline and (when given) current overlaid.

    `edges` are the bin boundaries: all of them (one more than the bins) or the interior ones (one
    fewer, the outer bins open-ended). Bad or empty input gives a "no data" picture saying why.
    """
    counts = _series_shares(feature, len(baseline or ()), baseline or (), current)
    if isinstance(counts, str):
        return no_data("chart histogram", counts, {"data-feature": feature})
    fitted = _edge_labels(edges or (), len(baseline))
    if isinstance(fitted, str):
        return no_data("chart histogram", f"{feature}: {fitted}", {"data-feature": feature})
    labels, ranges = fitted
    return _chart("histogram", feature, labels, ranges, counts[0], counts[1], rotated=False)


def category_bars_svg(
    categories: Sequence[str], baseline: Sequence[float], current: Sequence[float] | None, *, feature: str
) -> Markup:
    """Shares of a categorical feature per category, baseline and (when given) current overlaid."""
    head = {"data-feature": feature, "data-chart": "categories"}
    if not categories:
        return no_data("chart histogram", f"no data for {feature}", head)
    counts = _series_shares(feature, len(categories), baseline or (), current)
    if isinstance(counts, str):
        return no_data("chart histogram", counts, head)
    labels, rotated = _category_labels(categories)
    ranges = [f"\u201c{name}\u201d" for name in categories]
    return _chart("categories", feature, labels, ranges, counts[0], counts[1], rotated=rotated)
