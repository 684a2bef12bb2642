"""Reading the charts' SVG back: parsed elements, series rectangles, lineage boxes."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from markupsafe import Markup

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: Markup) -> ET.Element:
    assert isinstance(markup, Markup)
    return ET.fromstring(str(markup))


def series_rects(svg: ET.Element, series: str) -> list[ET.Element]:
    groups = svg.findall(f".//{SVG}g[@data-series='{series}']")
    assert len(groups) == 1, f"one group for {series}"
    return groups[0].findall(f"{SVG}rect")


def node_boxes(svg: ET.Element) -> dict[str, tuple[float, float, float, float]]:
    """node id -> (x, y, width, height) of its box."""
    boxes = {}
    for group in svg.iter(f"{SVG}g"):
        if group.get("class") == "node":
            rect = group.find(f"{SVG}rect")
            assert rect is not None
            x, y, width, height = (float(rect.get(k, "nan")) for k in ("x", "y", "width", "height"))
            boxes[group.get("data-id", "")] = (x, y, width, height)
    return boxes
