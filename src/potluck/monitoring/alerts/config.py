"""`monitoring.alerts` in feature_store.yaml: where alerts go, and how hard delivery tries.

Each channel is one entry of a list, chosen by its `type`. Secrets (webhook URLs, PagerDuty routing
keys) belong in `${ENV}` variables; they are never shown in a report or an error, which name a
channel by its `name` (default: its type and position, e.g. `slack#1`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class _Channel(_Strict):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    timeout_seconds: float = Field(default=5.0, gt=0, le=300)  # one attempt: connect, send and read
    retries: int = Field(default=3, ge=0, le=20)  # attempts after the first on a timeout, a 5xx or a 429
    backoff_seconds: float = Field(default=0.5, ge=0, le=300)  # first wait; doubled each retry
    max_backoff_seconds: float = Field(default=30.0, ge=0, le=3600)
    # which alerts this channel gets: drift, stale, materialization, skew (default all)
    kinds: tuple[Literal["drift", "stale", "materialization", "skew"], ...] = (
        "drift",
        "stale",
        "materialization",
        "skew",
    )


class WebhookChannel(_Channel):
    """Any HTTP endpoint: one JSON POST per run with what started firing and what resolved."""

    type: Literal["webhook"]
    url: HttpUrl
    headers: dict[str, str] = Field(default_factory=dict)  # e.g. Authorization: Bearer ${TOKEN}


class SlackChannel(_Channel):
    """A Slack incoming webhook: one message (text and blocks) per run with changes."""

    type: Literal["slack"]
    url: HttpUrl


class PagerDutyChannel(_Channel):
    """PagerDuty Events API v2: one trigger per alert that starts firing, one resolve when it clears."""

    type: Literal["pagerduty"]
    routing_key: str = Field(min_length=1)
    url: HttpUrl = HttpUrl(PAGERDUTY_EVENTS_URL)
    severity: Literal["critical", "error", "warning", "info"] = "error"

    @field_validator("routing_key")
    @classmethod
    def _no_blank_key(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is blank; set it to the integration key of a PagerDuty service (Events API v2)")
        return value


Channel = Annotated[WebhookChannel | SlackChannel | PagerDutyChannel, Field(discriminator="type")]


class AlertsConfig(_Strict):
    """`monitoring.alerts`: the channels (a list), and a link shown in every message."""

    channels: list[Channel] = Field(default_factory=list)
    # shown in messages as where to look (e.g. a Grafana dashboard)
    dashboard_url: HttpUrl | None = None

    @model_validator(mode="before")
    @classmethod
    def _list_is_channels(cls, data: Any) -> Any:
        """`alerts: [...]` is short for `alerts: {channels: [...]}`."""
        return {"channels": data} if isinstance(data, list) else data

    @field_validator("channels")
    @classmethod
    def _unique_names(cls, channels: list[Channel]) -> list[Channel]:
        names = [channel_name(c, i) for i, c in enumerate(channels)]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"two channels are named '{name}'; give each a distinct `name`")
        return channels

    def named(self) -> list[tuple[str, Channel]]:
        return [(channel_name(c, i), c) for i, c in enumerate(self.channels)]


def channel_name(channel: WebhookChannel | SlackChannel | PagerDutyChannel, index: int) -> str:
    return channel.name or f"{channel.type}#{index}"
