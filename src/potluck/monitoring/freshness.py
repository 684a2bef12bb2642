"""Staleness per feature view: how long since its online rows were last known to be current.

A view's age is now minus its materialization watermark (the end of its newest recorded run,
capped at when that run was recorded; see `materialize/watermark.py`). Rows pushed straight to the
online store do not move it: a view fed only by push shows as never materialized.

The limit of a view, most specific first: its `potluck.max_staleness` tag, then
`monitoring.freshness.views.<name>`, then the run's `--max-staleness`, then
`monitoring.freshness.max_staleness`. A tag or setting of `none` leaves the view unchecked; no limit
anywhere leaves it unchecked too. A checked view that was never materialized is stale.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from potluck.definitions.durations import parse_duration
from potluck.definitions.errors import DefinitionError
from potluck.materialize.watermark import ViewFreshness
from potluck.monitoring.alerts.model import Alert

if TYPE_CHECKING:
    from potluck.store import FeatureStore

MAX_STALENESS_TAG = "potluck.max_staleness"
Status = Literal["ok", "stale", "never", "unchecked"]


def _limit(text: str) -> timedelta | None:
    """A limit as written: a duration, or `none` (not checked)."""
    if text.strip().lower() == "none":
        return None
    value = parse_duration(text)
    if value <= timedelta(0):
        raise ValueError(f"'{text}' is not above zero; use a positive duration or `none`")
    return value


class FreshnessConfig(BaseModel):
    """`monitoring.freshness`: the default limit and per-view limits (durations such as 24h, or `none`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_staleness: str | None = None
    views: dict[str, str] = Field(default_factory=dict)

    @field_validator("max_staleness")
    @classmethod
    def _check_default(cls, value: str | None) -> str | None:
        if value is not None:
            _limit(value)
        return value

    @field_validator("views")
    @classmethod
    def _check_views(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            try:
                _limit(text)
            except ValueError as err:
                raise ValueError(f"view '{name}': {err}") from None
        return value


@dataclass(frozen=True)
class Staleness:
    view: str
    status: Status
    age: timedelta | None  # None: never materialized
    max_staleness: timedelta | None  # None: not checked
    materialized_until: str | None  # ISO time of the watermark
    limit_from: str | None  # where the limit came from: tag, config view, --max-staleness, config

    @property
    def stale(self) -> bool:
        return self.status in ("stale", "never")

    def to_json(self) -> dict[str, object]:
        return {
            "view": self.view,
            "status": self.status,
            "staleness_seconds": None if self.age is None else self.age.total_seconds(),
            "max_staleness_seconds": None if self.max_staleness is None else self.max_staleness.total_seconds(),
            "materialized_until": self.materialized_until,
            "limit_from": self.limit_from,
        }


def limit_of(
    view: str, tags: Mapping[str, str], run_limit: timedelta | None, config: FreshnessConfig
) -> tuple[timedelta | None, str | None]:
    """The view's limit and where it came from; a bad tag is an error naming the view and the tag."""
    if MAX_STALENESS_TAG in tags:
        try:
            return _limit(tags[MAX_STALENESS_TAG]), f"tag {MAX_STALENESS_TAG}"
        except ValueError as err:
            raise DefinitionError(
                f"feature view '{view}': tag '{MAX_STALENESS_TAG}': {err}; use a duration such as 6h, or none"
            ) from None
    if view in config.views:
        return _limit(config.views[view]), f"monitoring.freshness.views.{view}"
    if run_limit is not None:
        return run_limit, "--max-staleness"
    if config.max_staleness is not None:
        return _limit(config.max_staleness), "monitoring.freshness.max_staleness"
    return None, None


def check(
    freshness: Iterable[ViewFreshness],
    tags: Mapping[str, Mapping[str, str]],
    run_limit: timedelta | None,
    config: FreshnessConfig,
) -> list[Staleness]:
    """Each view's status against its limit."""
    out = []
    for f in freshness:
        limit, source = limit_of(f.feature_view, tags.get(f.feature_view, {}), run_limit, config)
        status: Status
        if limit is None:
            status = "unchecked"
        elif f.age is None:
            status = "never"
        else:
            status = "stale" if f.age > limit else "ok"
        until = f.materialized_until.isoformat() if f.materialized_until else None
        out.append(Staleness(f.feature_view, status, f.age, limit, until, source))
    return out


def check_views(
    store: FeatureStore, views: Iterable[str] | None, run_limit: timedelta | None, config: FreshnessConfig
) -> list[Staleness]:
    """`check` over the store's online views (or those named), with each view's tags."""
    wanted = None if views is None else set(views)
    fresh = [f for f in store.freshness() if wanted is None or f.feature_view in wanted]
    views = store.registry_snapshot().feature_views()  # every kind: stream and label views have limits too
    tags = {f.feature_view: views[f.feature_view].tags for f in fresh if f.feature_view in views}
    return check(fresh, tags, run_limit, config)


def stale_alerts(project: str, results: Iterable[Staleness]) -> list[Alert]:
    """One alert per stale (or never materialized) view, under one rule so the key stays the same."""
    out = []
    for r in results:
        if not r.stale:
            continue
        age = "never materialized" if r.age is None else f"last materialized {_human(r.age)} ago"
        limit = _human(r.max_staleness) if r.max_staleness is not None else "?"
        out.append(
            Alert(
                project,
                "stale",
                r.view,
                None,
                "max_staleness",
                f"{r.view} is stale: {age} (limit {limit})",
                r.to_json(),
            )
        )
    return out


def _human(age: timedelta) -> str:
    seconds = int(age.total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {seconds}s" if minutes else f"{seconds}s"
