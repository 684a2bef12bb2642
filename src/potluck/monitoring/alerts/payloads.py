"""The bodies each channel type is sent: a JSON webhook, a Slack message, PagerDuty v2 events.

A channel's changes of one run become one or more `Message`s; each carries the alert keys it
starts and resolves, so the state records exactly what reached the channel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from potluck.monitoring.alerts.config import PagerDutyChannel, SlackChannel, WebhookChannel
from potluck.monitoring.alerts.model import Alert

WEBHOOK_PAYLOAD_VERSION = 1
_SLACK_SECTION_CHARS = 2900  # Slack refuses a section text over 3000 characters
_SLACK_LINES = 20  # alerts listed per section; the rest are counted
_PAGERDUTY_SUMMARY_CHARS = 1024


@dataclass(frozen=True)
class Message:
    body: dict[str, Any]
    fired: tuple[Alert, ...]
    resolved: tuple[Alert, ...]


def _alert_json(alert: Alert, *, with_details: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": alert.key,
        "kind": alert.kind,
        "view": alert.view,
        "feature": alert.feature,
        "rule": alert.rule,
    }
    if with_details:
        out["summary"] = alert.summary
        out["details"] = dict(alert.details)
    return out


def webhook_messages(
    _channel: WebhookChannel,
    project: str,
    fired: Sequence[Alert],
    resolved: Sequence[Alert],
    now: datetime,
    dashboard_url: str | None,
) -> list[Message]:
    body = {
        "source": "potluck",
        "version": WEBHOOK_PAYLOAD_VERSION,
        "project": project,
        "sent_at": now.isoformat(),
        "dashboard_url": dashboard_url,
        "firing": [_alert_json(a) for a in fired],
        "resolved": [_alert_json(a, with_details=False) for a in resolved],
    }
    return [Message(body, tuple(fired), tuple(resolved))]


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_lines(alerts: Sequence[Alert], resolved: bool) -> str:
    lines = []
    for alert in alerts[:_SLACK_LINES]:
        what = f"`{_slack_escape(alert.subject())}` {alert.kind}/{_slack_escape(alert.rule)}"
        lines.append(f"• {what}" if resolved or not alert.summary else f"• {what}: {_slack_escape(alert.summary)}")
    if len(alerts) > _SLACK_LINES:
        lines.append(f"… and {len(alerts) - _SLACK_LINES} more")
    text = "\n".join(lines)
    return text if len(text) <= _SLACK_SECTION_CHARS else text[: _SLACK_SECTION_CHARS - 1] + "…"


def slack_text(project: str, fired: Sequence[Alert], resolved: Sequence[Alert]) -> str:
    parts = []
    if fired:
        parts.append(f"{len(fired)} alert{'s' * (len(fired) != 1)} firing")
    if resolved:
        parts.append(f"{len(resolved)} resolved")
    return f"Potluck {project}: {', '.join(parts)}"


def slack_messages(
    _channel: SlackChannel,
    project: str,
    fired: Sequence[Alert],
    resolved: Sequence[Alert],
    _now: datetime,
    dashboard_url: str | None,
) -> list[Message]:
    text = slack_text(project, fired, resolved)
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": text[:150]}}]
    if fired:
        body = f"*Firing*\n{_slack_lines(fired, resolved=False)}"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": body}})
    if resolved:
        body = f"*Resolved*\n{_slack_lines(resolved, resolved=True)}"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": body}})
    if dashboard_url:
        link = f"<{dashboard_url}|Dashboard>"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": link}]})
    return [Message({"text": text, "blocks": blocks}, tuple(fired), tuple(resolved))]


def pagerduty_messages(
    channel: PagerDutyChannel,
    project: str,
    fired: Sequence[Alert],
    resolved: Sequence[Alert],
    _now: datetime,
    dashboard_url: str | None,
) -> list[Message]:
    out = []
    for alert in fired:
        summary = alert.summary or f"{alert.kind} {alert.rule} on {alert.subject()}"
        summary = f"[potluck {project}] {summary}"
        event: dict[str, Any] = {
            "routing_key": channel.routing_key,
            "event_action": "trigger",
            "dedup_key": alert.key,
            "payload": {
                "summary": summary[:_PAGERDUTY_SUMMARY_CHARS],
                "source": f"potluck/{project}",
                "severity": channel.severity,
                "component": alert.view,
                "group": project,
                "class": f"{alert.kind}/{alert.rule}",
                "custom_details": {"feature": alert.feature, **dict(alert.details)},
            },
            "client": "Potluck",
        }
        if dashboard_url:
            event["client_url"] = dashboard_url
        out.append(Message(event, (alert,), ()))
    for alert in resolved:
        event = {"routing_key": channel.routing_key, "event_action": "resolve", "dedup_key": alert.key}
        out.append(Message(event, (), (alert,)))
    return out


def messages_for(
    channel: WebhookChannel | SlackChannel | PagerDutyChannel,
    project: str,
    fired: Sequence[Alert],
    resolved: Sequence[Alert],
    now: datetime,
    dashboard_url: str | None,
) -> list[Message]:
    if isinstance(channel, SlackChannel):
        return slack_messages(channel, project, fired, resolved, now, dashboard_url)
    if isinstance(channel, PagerDutyChannel):
        return pagerduty_messages(channel, project, fired, resolved, now, dashboard_url)
    return webhook_messages(channel, project, fired, resolved, now, dashboard_url)
