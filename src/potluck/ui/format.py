"""How the UI writes values for people: times (UTC), durations, rates, errors, kinds and metrics.

One function per kind of value, used by the templates (as filters) and the charts alike; the JSON
API keeps the raw values.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from markupsafe import Markup, escape

MISSING = "\u2014"  # an em dash: no value
TIME_FORMAT = "%Y-%m-%d %H:%M:%S UTC"

KIND_LABELS = {
    "entity": "Entity",
    "data_source": "Data source",
    "feature_view": "Batch view",
    "stream_feature_view": "Stream view",
    "on_demand_feature_view": "On-demand view",
    "label_view": "Label view",
    "feature_service": "Feature service",
    "saved_dataset": "Saved dataset",
}
METRIC_LABELS = {
    "psi": "PSI",
    "js_distance": "JS distance",
    "ks_statistic": "KS statistic",
    "ks_p_value": "KS p-value",
    "chi2_p_value": "\u03c7\u00b2 p-value",
    "mean_change": "mean change",
}
STATUS_CLASSES = {"ok": "good", "stale": "bad", "never": "bad"}  # anything else: neutral
# Units of a duration, largest first: (seconds, singular, plural).
_UNITS = ((86400, "day", "days"), (3600, "h", "h"), (60, "min", "min"), (1, "s", "s"))


def kind_label(kind: str) -> str:
    """`on_demand_feature_view` -> "On-demand view"; an unknown kind as itself."""
    return KIND_LABELS.get(kind, kind)


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def status_class(status: str) -> str:
    """The CSS class of a freshness status: good, bad, or neutral (unchecked, unknown)."""
    return STATUS_CLASSES.get(status, "neutral")


def as_utc(moment: datetime | str) -> datetime:
    """A datetime, or its ISO text, in UTC; naive times are UTC (as the registry stores them)."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def utc_text(moment: datetime | str) -> str:
    """`2026-12-01 21:44:52 UTC` (to the second)."""
    return as_utc(moment).strftime(TIME_FORMAT)


def time_html(moment: datetime | str | None) -> Markup:
    """A `<time>` element showing `utc_text`, with the full ISO time as its datetime and title."""
    if moment is None or moment == "":
        return Markup(MISSING)
    try:
        shown = utc_text(moment)
    except ValueError:  # not a time after all: shown as it is
        return escape(str(moment))
    iso = as_utc(moment).isoformat()
    return Markup('<time datetime="{0}" title="{0}">{1}</time>').format(iso, shown)


def duration_text(seconds: float | None) -> str:
    """172800 -> "2 days", 5400 -> "1 h 30 min", 0 -> "no ttl (unbounded)", None -> the dash.

    Whole seconds; every non-zero unit from days down to seconds.
    """
    if seconds is None or not math.isfinite(seconds):
        return MISSING
    left = round(abs(seconds))
    if left == 0:
        return "no ttl (unbounded)"
    parts = []
    for size, one, many in _UNITS:
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count} {one if count == 1 else many}")
    return ("\u2212" if seconds < 0 else "") + " ".join(parts)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def percent_text(rate: object, decimals: int = 2) -> str:
    """A share in [0, 1] as a percent: 0.0123 -> "1.23%", 0.5 -> "50.0%"; a tiny share is "<0.01%"."""
    number = _number(rate)
    if number is None:
        return MISSING
    shown = f"{number * 100:.{decimals}f}"
    if float(shown) == 0 and number != 0:
        return f"<{10**-decimals:.{decimals}f}%"
    while decimals > 1 and shown.endswith("0"):  # at least one decimal: 50.0%, 1.25%
        shown, decimals = shown[:-1], decimals - 1
    return shown + "%"


def significant_text(value: object, digits: int = 4) -> str:
    """A measure with `digits` significant digits: 0.05019116785 -> "0.05019"; missing -> the dash."""
    number = _number(value)
    if number is None:
        return MISSING
    if number == 0:
        return "0"
    return f"{number:.{digits}g}".replace("-", "\u2212")


FILTERS = {
    "kind_label": kind_label,
    "metric_label": metric_label,
    "status_class": status_class,
    "when": time_html,
    "duration": duration_text,
    "percent": percent_text,
    "significant": significant_text,
}
