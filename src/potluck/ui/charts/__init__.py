"""Charts and the lineage graph as server-rendered SVG (`markupsafe.Markup`), no JavaScript needed.

Colours come from CSS classes (`.series-baseline`, `.series-current`, `.node-KIND`, `.threshold`)
with presentation attributes as defaults; every text is escaped; the same input gives the same SVG.
"""

from potluck.ui.charts.bars import category_bars_svg, histogram_svg
from potluck.ui.charts.lineage import lineage_svg
from potluck.ui.charts.timeline import timeline_svg

__all__ = ["category_bars_svg", "histogram_svg", "lineage_svg", "timeline_svg"]
