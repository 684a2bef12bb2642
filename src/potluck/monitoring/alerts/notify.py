"""One run's alerts to every channel: what changed since the channel last heard, sent in parallel.

Per channel: alerts firing now that it was not told about are sent as firing; alerts it was told
about, inside what this run checked (`Scope`), that no longer fire are sent as resolved. Alerts
that keep firing are not sent again. Channels are independent: a dead one is retried with backoff
and reported, and never delays or stops the others.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from potluck.monitoring.alerts.config import AlertsConfig, Channel
from potluck.monitoring.alerts.delivery import post
from potluck.monitoring.alerts.model import Alert, Scope
from potluck.monitoring.alerts.payloads import messages_for

if TYPE_CHECKING:
    from potluck.monitoring.state import MonitorState

log = logging.getLogger("potluck.monitoring")


@dataclass
class ChannelReport:
    channel: str
    type: str
    ok: bool = True
    fired: int = 0  # alerts this run delivered as firing
    resolved: int = 0  # alerts this run delivered as resolved
    failed: int = 0  # messages that did not get through
    attempts: int = 0
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "type": self.type,
            "ok": self.ok,
            "fired": self.fired,
            "resolved": self.resolved,
            "failed_messages": self.failed,
            "attempts": self.attempts,
            "errors": self.errors,
        }

    def describe(self) -> str:
        if self.ok:
            return f"{self.channel}: delivered {self.fired} firing, {self.resolved} resolved"
        return f"{self.channel}: {self.failed} message(s) not delivered after {self.attempts} attempt(s): " + "; ".join(
            self.errors[-4:]
        )


@dataclass
class DeliveryReport:
    channels: list[ChannelReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.channels)

    def to_json(self) -> list[dict[str, Any]]:
        return [c.to_json() for c in self.channels]


def changes(
    current: Sequence[Alert], told: Sequence[Alert], scope: Scope, kinds: Sequence[str]
) -> tuple[list[Alert], list[Alert]]:
    """(to send as firing, to send as resolved) for a channel that was told `told`."""
    now_keys = {a.key for a in current}
    told_keys = {a.key for a in told}
    fired = [a for a in current if a.kind in kinds and a.key not in told_keys]
    resolved = [a for a in told if a.key not in now_keys and scope.covers(a.kind, a.view, a.rule)]
    return fired, resolved


def _deliver_one(
    name: str,
    channel: Channel,
    project: str,
    current: Sequence[Alert],
    scope: Scope,
    state: MonitorState,
    dashboard_url: str | None,
) -> ChannelReport:
    import httpx

    report = ChannelReport(name, channel.type)
    try:
        fired, resolved = changes(current, state.firing(name), scope, channel.kinds)
    except Exception as err:  # the state is unreadable: say so, send nothing twice
        report.ok = False
        report.errors.append(f"alert state unavailable: {err}")
        return report
    if not fired and not resolved:
        return report
    messages = messages_for(channel, project, fired, resolved, datetime.now(UTC), dashboard_url)
    with httpx.Client(follow_redirects=False) as client:
        for message in messages:
            outcome = post(client, channel, message.body)
            report.attempts += outcome.attempts
            if not outcome.ok:
                report.ok = False
                report.failed += 1
                report.errors.extend(outcome.errors)
                continue
            try:
                state.record(name, list(message.fired), list(message.resolved))
            except Exception as err:  # delivered, but the next run will send it again
                report.ok = False
                report.errors.append(f"delivered, but the alert state was not saved: {err}")
            report.fired += len(message.fired)
            report.resolved += len(message.resolved)
    if not report.ok:
        log.warning("alert delivery failed: %s", report.describe())
    return report


def deliver(
    config: AlertsConfig, project: str, current: Sequence[Alert], scope: Scope, state: MonitorState
) -> DeliveryReport:
    """Send what changed to every configured channel; never raises for a channel's failure."""
    channels = config.named()
    if not channels:
        return DeliveryReport()
    dashboard = str(config.dashboard_url) if config.dashboard_url else None
    with ThreadPoolExecutor(max_workers=len(channels), thread_name_prefix="potluck-alerts") as pool:
        futures = [
            pool.submit(_deliver_one, name, channel, project, current, scope, state, dashboard)
            for name, channel in channels
        ]
        return DeliveryReport([f.result() for f in futures])
