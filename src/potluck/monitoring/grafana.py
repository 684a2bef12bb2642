"""A Grafana dashboard over the series Potluck exports: serving, freshness per view, drift per feature.

Queries use Grafana's `$__rate_interval`; the data source is the dashboard variable `datasource`.
"""

from __future__ import annotations

from typing import Any

from potluck.monitoring import gauges as g
from potluck.monitoring.prometheus import ONLINE_ENDPOINT

DASHBOARD_UID = "potluck-monitoring"
_DS = {"type": "prometheus", "uid": "${datasource}"}
_RATE = "$__rate_interval"


def _panel(title: str, exprs: list[tuple[str, str]], unit: str, kind: str = "timeseries") -> dict[str, Any]:
    return {
        "type": kind,
        "title": title,
        "datasource": _DS,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": _DS, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(exprs)
        ],
    }


def _row(title: str) -> dict[str, Any]:
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


def panels() -> list[dict[str, Any]]:
    req = g.HTTP_REQUESTS
    online = f'endpoint="{ONLINE_ENDPOINT}"'
    quantile = "histogram_quantile({q}, sum by (le) (rate({m}_bucket{{{sel}}}[{r}])))"
    return [
        _row("Serving"),
        _panel("Requests per second", [(f"sum by (endpoint) (rate({req}[{_RATE}]))", "{{endpoint}}")], "reqps"),
        _panel(
            "Error ratio (5xx)",
            [(f'(sum(rate({req}{{status=~"5.."}}[{_RATE}])) or vector(0)) / sum(rate({req}[{_RATE}]))', "5xx")],
            "percentunit",
        ),
        _panel(
            "Answers by status",
            [(f"sum by (status) (rate({req}[{_RATE}]))", "{{status}}")],
            "reqps",
        ),
        _panel(
            "Online read latency (HTTP)",
            [
                (quantile.format(q="0.5", m=g.HTTP_DURATION, sel=online, r=_RATE), "p50"),
                (quantile.format(q="0.99", m=g.HTTP_DURATION, sel=online, r=_RATE), "p99"),
            ],
            "s",
        ),
        _panel(
            "Online store read latency",
            [
                (quantile.format(q="0.5", m=g.ONLINE_READ, sel="", r=_RATE), "p50"),
                (quantile.format(q="0.99", m=g.ONLINE_READ, sel="", r=_RATE), "p99"),
            ],
            "s",
        ),
        _row("Freshness"),
        _panel(
            "Seconds since last materialization",
            [
                (f"max by (view) ({g.FRESHNESS})", "{{view}}"),
                (f"max by (view) ({g.MAX_STALENESS})", "{{view}} limit"),
            ],
            "s",
        ),
        _panel("Failed materializations", [(f"max by (view) ({g.MATERIALIZATION_FAILED})", "{{view}}")], "short"),
        _row("Drift"),
        _panel("Drifting features", [(f"sum(max by (view, feature) ({g.DRIFT}))", "drifting")], "short", kind="stat"),
        _panel("PSI per feature", [(f"max by (view, feature) ({g.DRIFT_PSI})", "{{view}}:{{feature}}")], "short"),
        _panel(
            "KS statistic per feature",
            [(f"max by (view, feature) ({g.DRIFT_KS_STATISTIC})", "{{view}}:{{feature}}")],
            "short",
        ),
        _panel(
            "JS distance per feature",
            [(f"max by (view, feature) ({g.DRIFT_JS_DISTANCE})", "{{view}}:{{feature}}")],
            "short",
        ),
    ]


def dashboard() -> dict[str, Any]:
    laid_out = []
    y = 0
    x = 0
    for i, spec in enumerate(panels()):
        panel = {**spec, "id": i + 1}
        if panel["type"] == "row":
            y += 8 if x else 0
            x = 0
            panel["gridPos"] = {"h": 1, "w": 24, "x": 0, "y": y}
            y += 1
        else:
            panel["gridPos"] = {"h": 8, "w": 12, "x": x, "y": y}
            x = 12 - x
            y += 8 if x == 0 else 0
        laid_out.append(panel)
    return {
        "uid": DASHBOARD_UID,
        "title": "Potluck feature store",
        "tags": ["potluck"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [{"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"}]
        },
        "panels": laid_out,
    }


def queries(board: dict[str, Any]) -> list[str]:
    """Every query of a dashboard, in panel order."""
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
