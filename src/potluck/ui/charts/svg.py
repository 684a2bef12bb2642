"""Building SVG text: escaped elements, compact numbers, axis ticks and the "no data" picture.

Every string that reaches the output goes through `text` or `attr`; characters XML does not allow
(control characters) become U+FFFD, so hostile names still give a well-formed document.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping

from markupsafe import Markup

SVG_NS = "http://www.w3.org/2000/svg"
FONT = "system-ui, sans-serif"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

AttrValue = str | float | int | None


def text(value: str) -> str:
    """`value` escaped for element text and attribute values (html.escape's replacements, inline)."""
    if not value.isprintable():
        value = _NOT_XML.sub("\ufffd", value)
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#x27;")
    )


@functools.lru_cache(maxsize=8192)  # a graph's coordinates repeat (every edge ends at a node)
def num(value: float) -> str:
    """A coordinate: at most two decimals, no trailing zeros, never "-0"."""
    formatted = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if formatted == "-0" else formatted


def attr(value: AttrValue) -> str:
    if isinstance(value, bool):
        raise TypeError("SVG attribute values are strings or numbers")
    if isinstance(value, int | float):
        return num(float(value))
    return text(str(value))


def attrs(values: Mapping[str, AttrValue]) -> str:
    return "".join(f' {name}="{attr(value)}"' for name, value in values.items() if value is not None)


def element(tag: str, values: Mapping[str, AttrValue] | None = None, *children: str) -> str:
    """`<tag a="v">children</tag>`; children are already-built SVG text."""
    opening = f"<{tag}{attrs(values or {})}"
    if not children:
        return opening + "/>"
    return f"{opening}>{''.join(children)}</{tag}>"


def title(value: str) -> str:
    return element("title", None, text(value))


def root(classes: str, width: float, height: float, values: Mapping[str, AttrValue], body: Iterable[str]) -> Markup:
    head = {
        "xmlns": SVG_NS,
        "class": classes,
        "width": width,
        "height": height,
        "viewBox": f"0 0 {num(width)} {num(height)}",
        "font-family": FONT,
        "font-size": 11,
        **values,
    }
    return Markup(element("svg", head, *body))


def no_data(classes: str, message: str, values: Mapping[str, AttrValue] | None = None) -> Markup:
    """A small picture saying there is nothing to draw, and why."""
    width, height = 320.0, 48.0
    body = [
        title(message),
        element(
            "rect",
            {
                "class": "no-data-box",
                "x": 0.5,
                "y": 0.5,
                "width": width - 1,
                "height": height - 1,
                "rx": 4,
                "fill": "none",
                "stroke": "#c4c9d0",
                "stroke-dasharray": "4 3",
            },
        ),
        element(
            "text",
            {"class": "no-data", "x": width / 2, "y": height / 2 + 4, "text-anchor": "middle", "fill": "#5f6b7a"},
            text(message),
        ),
    ]
    head = {"role": "img", "aria-label": message, "data-empty": "true", **(values or {})}
    return root(f"{classes} no-data", width, height, head, body)


def finite(value: object) -> float | None:
    """A number as a float; None for NaN, infinities and anything not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 (times a power of ten) that is >= value; 1 for nothing positive."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * power * (1 + 1e-9):
            return step * power
    return 10.0 * power


def short_number(value: float) -> str:
    """A tick label: four significant digits, infinities as the sign."""
    if math.isinf(value):
        return "\u2212\u221e" if value < 0 else "\u221e"
    if math.isnan(value):
        return "NaN"
    if value == 0:
        return "0"
    formatted = f"{value:.4g}"
    return formatted.replace("-", "\u2212")


def percent(share: float) -> str:
    return f"{share * 100:.1f}%"


def truncate(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: max(limit - 1, 1)] + "\u2026"


def spread(count: int, most: int) -> list[int]:
    """At most `most` indices out of range(count), evenly spaced, first and last included."""
    if count <= most:
        return list(range(count))
    step = (count - 1) / (most - 1)
    return sorted({round(i * step) for i in range(most)})
