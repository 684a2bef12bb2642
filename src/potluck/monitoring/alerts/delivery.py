"""Posting one message to one channel: a bounded timeout per attempt, retries with backoff.

A timeout, a connection error, a 5xx or a 429 is retried (exponential backoff with jitter, capped);
any other status below 200 or from 300 up fails at once (the request itself is wrong: a retry would
not help). The outcome lists every attempt's error, so a report can say what happened.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from potluck.definitions.errors import MissingExtraError

if TYPE_CHECKING:
    import httpx

    from potluck.monitoring.alerts.config import PagerDutyChannel, SlackChannel, WebhookChannel

_BODY_SNIPPET = 200
_MAX_READ = 4096  # of an answer's body: only its start is ever shown


class _Retryable(Exception):
    pass


class _Refused(Exception):
    pass


@dataclass
class PostOutcome:
    ok: bool
    attempts: int
    errors: list[str] = field(default_factory=list)  # one per failed attempt, oldest first


def safe_target(url: str) -> str:
    """scheme://host[:port] of a URL: its path and query often hold the secret (Slack, tokens)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"


def _snippet(raw: bytes) -> str:
    text = " ".join(raw.decode("utf-8", errors="replace").split())
    return text if len(text) <= _BODY_SNIPPET else text[:_BODY_SNIPPET] + "..."


def _head(response: httpx.Response, deadline: float) -> bytes:
    """At most the first few KB of the answer, and no longer than the attempt's deadline."""
    raw = b""
    for chunk in response.iter_bytes():
        raw += chunk
        if len(raw) >= _MAX_READ or time.monotonic() > deadline:
            break
    return raw[:_MAX_READ]


def post(
    client: httpx.Client,
    channel: WebhookChannel | SlackChannel | PagerDutyChannel,
    body: dict[str, Any],
) -> PostOutcome:
    """POST `body` as JSON to the channel's URL, retrying as the channel allows."""
    try:
        import httpx
        import tenacity
    except ImportError as err:  # pragma: no cover - both come with the extra
        raise MissingExtraError(err.name or "httpx", "monitoring") from err

    outcome = PostOutcome(ok=False, attempts=0)
    headers = {"Content-Type": "application/json", "User-Agent": "potluck-monitor"}
    headers.update(getattr(channel, "headers", {}))
    url = str(channel.url)

    payload = json.dumps(body, ensure_ascii=False).encode()

    def attempt() -> None:
        outcome.attempts += 1
        deadline = time.monotonic() + channel.timeout_seconds
        try:
            with client.stream("POST", url, content=payload, headers=headers, timeout=channel.timeout_seconds) as r:
                status = r.status_code
                raw = b"" if 200 <= status < 300 else _head(r, deadline)
        except httpx.TimeoutException:
            outcome.errors.append(f"timed out after {channel.timeout_seconds:g}s")
            raise _Retryable
        except httpx.TransportError as err:
            outcome.errors.append(f"{type(err).__name__}: cannot reach {safe_target(url)}")
            raise _Retryable
        if 200 <= status < 300:
            return
        shown = _snippet(raw)
        outcome.errors.append(f"HTTP {status}" + (f" ({shown})" if shown else ""))
        if status >= 500 or status == 429:
            raise _Retryable
        raise _Refused

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(channel.retries + 1),
        wait=tenacity.wait_exponential(multiplier=channel.backoff_seconds, max=channel.max_backoff_seconds)
        + tenacity.wait_random(0, channel.backoff_seconds),
        retry=tenacity.retry_if_exception_type(_Retryable),
        reraise=True,
    )
    try:
        retrying(attempt)
    except (_Retryable, _Refused):
        return outcome
    outcome.ok = True
    return outcome
