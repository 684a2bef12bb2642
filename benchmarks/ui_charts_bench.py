"""Time to draw the web UI's SVG: the lineage of a registry with 500 feature views, and the charts.

    python benchmarks/ui_charts_bench.py [--views 500] [--repeat 40] [--out results/ui_charts_render.json]

The registry-shaped graph: 20 entities and 100 data sources, `views` feature views (each with one
source and one entity), 20 on-demand views over two views each, 50 feature services over eight
views each (seeded). Timed in process, one call at a time: `lineage_svg` of the whole graph (its
layout computed afresh, as after a registry change, and kept from the call before), the layout alone, `lineage_svg` focused on one view (an object page), and a histogram and a timeline.
Wall and CPU times are reported (median, min), with the load average and the time of a fixed
plain-Python loop, since other work may share the machine's 2 cores. There is no Feast counterpart (Feast's UI draws in the browser).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from potluck.ui.charts import histogram_svg, lineage_svg, timeline_svg  # noqa: E402
from potluck.ui.charts.layout import _kept_layout, crossings, layout  # noqa: E402
from potluck.ui.lineage import LineageEdge, LineageGraph, LineageNode  # noqa: E402


def registry_graph(views: int, seed: int = 7) -> tuple[LineageGraph, list[list[str]]]:
    """The graph, and its nodes by column in the input order."""
    rng = random.Random(seed)

    def nodes(kind: str, prefix: str, count: int) -> list[LineageNode]:
        return [LineageNode(f"{kind}:{prefix}_{i}", kind, f"{prefix}_{i}") for i in range(count)]

    entities, sources = nodes("entity", "entity", 20), nodes("data_source", "source", 100)
    fvs, odfvs = nodes("feature_view", "view", views), nodes("on_demand_feature_view", "odfv", 20)
    services = nodes("feature_service", "service", 50)
    pairs: set[tuple[str, str]] = set()
    for view in fvs:
        pairs |= {(rng.choice(sources).id, view.id), (rng.choice(entities).id, view.id)}
    pairs |= {(rng.choice(fvs).id, odfv.id) for odfv in odfvs for _ in range(2)}
    pairs |= {(rng.choice(fvs + odfvs).id, service.id) for service in services for _ in range(8)}
    graph = LineageGraph(
        tuple(entities + sources + fvs + odfvs + services), tuple(LineageEdge(a, b) for a, b in sorted(pairs))
    )
    columns = [[n.id for n in entities + sources], [n.id for n in fvs], [n.id for n in odfvs], [n.id for n in services]]
    return graph, columns


def timed(call: Callable[[], object], repeat: int) -> dict[str, float]:
    wall, cpu = [], []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        call()
        wall.append((time.perf_counter() - w) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return {
        "wall_median_ms": round(statistics.median(wall), 2),
        "wall_min_ms": round(min(wall), 2),
        "cpu_median_ms": round(statistics.median(cpu), 2),
        "cpu_min_ms": round(min(cpu), 2),
    }


def reference_loop() -> None:
    """A fixed piece of plain Python, to compare this machine's speed at the time with another's."""
    total = 0
    for i in range(1_000_000):
        total += i


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--views", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--out", default=str(HERE / "results" / "ui_charts_render.json"))
    args = parser.parse_args()

    graph, given = registry_graph(args.views)
    focus = next(n.id for n in graph.nodes if n.kind == "feature_view")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    points = [(start + timedelta(days=i), 0.01 * (i % 30)) for i in range(90)]
    edges = [float(i) for i in range(1, 20)]
    counts = [float(i * (20 - i)) for i in range(20)]

    def href(node: LineageNode) -> str:
        return f"/feature-views/{node.name}"

    load_at_start = os.getloadavg()
    results: dict[str, Any] = {
        "graph": {"nodes": len(graph.nodes), "edges": len(graph.edges), "feature_views": args.views},
        "svg_bytes": len(lineage_svg(graph, href=href)),
        "crossings": {
            "input_order": crossings(given, graph.edges),
            "layout": crossings(layout(graph).columns, graph.edges),
        },
        "lineage_svg_whole_graph": timed(
            lambda: (_kept_layout.cache_clear(), lineage_svg(graph, href=href)), args.repeat
        ),
        "lineage_svg_whole_graph_layout_cached": timed(lambda: lineage_svg(graph, href=href), args.repeat),
        "layout_only": timed(lambda: (_kept_layout.cache_clear(), layout(graph)), args.repeat),
        "lineage_svg_focus_one_view": timed(lambda: lineage_svg(graph, focus=focus, href=href), args.repeat),
        "histogram_svg_20_bins": timed(lambda: histogram_svg(edges, counts, counts[::-1], feature="f"), args.repeat),
        "timeline_svg_90_points": timed(
            lambda: timeline_svg(points, metric="psi", feature="f", threshold=0.2), args.repeat
        ),
        "reference_loop_1m_additions": timed(reference_loop, 5),
        "load_average_at_start": load_at_start,
        "load_average_at_end": os.getloadavg(),
        "cpus": os.cpu_count(),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
