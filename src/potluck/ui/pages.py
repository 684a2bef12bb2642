"""The HTML pages: the data of `views` rendered by the templates, with the charts as inline SVG."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from potluck.ui import views
from potluck.ui.auth import UiAuth
from potluck.ui.data import SECTION_OF_KIND, SECTION_TITLES, SECTIONS, FeatureStatistics, UiData
from potluck.ui.format import KIND_LABELS
from potluck.ui.lineage import LineageNode

# Page handlers block (registry and monitoring reads): the app runs them off the event loop.
Handler = Callable[[Request], Response]
TIMELINE_METRICS = ("psi", "js_distance", "ks_statistic")


def _histogram(stat: FeatureStatistics) -> Markup:
    from potluck.ui import charts

    base, cur = stat.baseline, stat.current
    if base.top is not None:
        categories = [value for value, _ in base.top]
        baseline_counts = [float(count) for _, count in base.top]
        current_counts = None
        if cur is not None and cur.top is not None:
            found = dict(cur.top)
            current_counts = [float(found.get(value, 0)) for value in categories]
        return charts.category_bars_svg(categories, baseline_counts, current_counts, feature=stat.feature)
    edges = base.bin_edges or []
    baseline_hist = [float(c) for c in base.histogram or []]
    current_hist = None
    if cur is not None and cur.histogram is not None and cur.bin_edges == base.bin_edges:
        current_hist = [float(c) for c in cur.histogram]
    return charts.histogram_svg(edges, baseline_hist, current_hist, feature=stat.feature)


class Pages:
    def __init__(self, data: UiData, env: Any, auth: UiAuth) -> None:
        self.data = data
        self.env = env
        self.auth = auth
        # (registry version, section, root path) -> the list page: the same catalog renders the same
        self._lists: dict[tuple[int, str, str], str] = {}
        self._lists_lock = threading.Lock()

    def render(self, request: Request, template: str, code: int = 200, **context: Any) -> Response:
        return self._answer(self.html(request, template, **context), code)

    @staticmethod
    def _answer(html: str, code: int = 200) -> Response:
        return HTMLResponse(html, status_code=code, headers={"cache-control": "no-store"})

    def html(self, request: Request, template: str, **context: Any) -> str:
        root = request.scope.get("root_path", "")
        text: str = self.env.get_template(template).render(
            root=root,
            sections=SECTION_TITLES,
            section_of_kind=SECTION_OF_KIND,
            kind_labels=KIND_LABELS,
            auth_enabled=self.auth.enabled,
            query=context.pop("query", ""),
            **context,
        )
        return text

    def error(self, request: Request, status: int, message: str) -> Response:
        return self.render(request, "error.html", status, status=status, message=message, title=f"{status}")

    def login(self, request: Request, next_url: str, message: str | None, status: int = 200) -> Response:
        return self.render(request, "login.html", status, next_url=next_url, message=message, title="Log in")

    def href_of(self, root: str) -> Callable[[LineageNode], str | None]:
        catalog = self.data.catalog()

        def href(node: LineageNode) -> str | None:
            section = SECTION_OF_KIND.get(node.kind)
            if section is None or catalog.get(section, node.name) is None:
                return None
            return f"{root}/{section}/{node.name}"

        return href

    def overview(self, request: Request) -> Response:
        return self.render(request, "overview.html", overview=views.overview(self.data), title="Overview")

    def lineage(self, request: Request) -> Response:
        from potluck.ui import charts

        graph = self.data.catalog().lineage
        svg = charts.lineage_svg(graph, focus=None, href=self.href_of(request.scope.get("root_path", "")))
        return self.render(request, "lineage.html", svg=svg, graph=views.lineage_json(graph), title="Lineage")

    def search(self, request: Request) -> Response:
        query = request.query_params.get("q", "")
        results = views.search_json(self.data.catalog(), query)
        return self.render(request, "search.html", query=query, results=results, title=f"Search: {query}")

    def listing(self, section: str) -> Handler:
        def endpoint(request: Request) -> Response:
            catalog = self.data.catalog()
            key = (catalog.version, section, request.scope.get("root_path", ""))
            with self._lists_lock:
                html = self._lists.get(key)
            if html is None:
                rows = views.listing(catalog, section)
                html = self.html(request, "list.html", section=section, rows=rows, title=SECTION_TITLES[section])
                with self._lists_lock:
                    if any(version != catalog.version for version, _, _ in self._lists):
                        self._lists.clear()  # pages of an older registry version
                    self._lists[key] = html
            return self._answer(html)

        return endpoint

    def object_page(self, section: str) -> Handler:
        def endpoint(request: Request) -> Response:
            from potluck.ui import charts

            name = request.path_params["name"]
            found = views.object_json(self.data, section, name)
            if found is None:
                label = SECTION_TITLES[section].lower().rstrip("s")
                return self.error(request, 404, f"There is no {label} called '{name}'.")
            catalog = self.data.catalog()
            obj = catalog.get(section, name)
            assert obj is not None
            root = request.scope.get("root_path", "")
            lineage_svg = charts.lineage_svg(
                catalog.lineage.neighbourhood(obj.id), focus=obj.id, href=self.href_of(root)
            )
            histograms: list[tuple[FeatureStatistics, Markup]] = []
            timelines: list[tuple[str, list[Markup]]] = []
            if section == "feature-views":
                monitoring = self.data.monitoring()
                histograms = [(s, _histogram(s)) for s in views.statistics(monitoring, name)]
                thresholds = self.data.store.config.monitoring
                for feature, points in found["drift"].items():
                    charts_of_feature = []
                    limits = thresholds.thresholds_for(name, feature, obj.tags)
                    for metric in TIMELINE_METRICS:
                        series = [
                            (datetime.fromisoformat(p["checked_at"]), float(p[metric]))
                            for p in points
                            if p.get(metric) is not None
                        ]
                        if series:
                            charts_of_feature.append(
                                charts.timeline_svg(
                                    series, metric=metric, feature=feature, threshold=getattr(limits, metric, None)
                                )
                            )
                    timelines.append((feature, charts_of_feature))
            return self.render(
                request,
                "object.html",
                section=section,
                obj=found,
                lineage_svg=lineage_svg,
                histograms=histograms,
                timelines=timelines,
                title=f"{obj.label} {name}",
                kind_label=obj.label,
            )

        return endpoint


__all__ = ["SECTIONS", "Pages"]
