"""Alert delivery to real HTTP receivers on loopback: exact payloads, retries, failures, state."""

from __future__ import annotations

import socket
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alert_support import receiver
from potluck.monitoring.alerts.config import AlertsConfig
from potluck.monitoring.alerts.model import Alert, Scope, dedup_key
from potluck.monitoring.alerts.notify import deliver
from potluck.monitoring.state import MonitorState

PROJECT = "shop"
PSI = Alert(PROJECT, "drift", "users", "age", "psi", "users:age PSI 0.41 > 0.2", {"psi": 0.41, "threshold": 0.2})
MEAN = Alert(PROJECT, "drift", "users", "spend", "mean_change", "users:spend mean +45%", {"mean_change": 0.45})
STALE = Alert(PROJECT, "stale", "orders", None, "max_staleness", "orders is stale", {"staleness_seconds": 90000.0})
ALL_SCOPE = Scope(frozenset((k, v) for k in ("drift", "stale", "materialization") for v in ("users", "orders")))
FAST = {"timeout_seconds": 0.5, "retries": 2, "backoff_seconds": 0.01, "max_backoff_seconds": 0.05}


@pytest.fixture
def state(tmp_path: Path) -> MonitorState:
    s = MonitorState(f"sqlite:///{tmp_path / 'registry.db'}", PROJECT)
    yield s  # type: ignore[misc]
    s.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_state(request: pytest.FixtureRequest, tmp_path: Path) -> MonitorState:
    url = (
        f"sqlite:///{tmp_path / 'registry.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_database")
    )
    s = MonitorState(url, PROJECT)
    yield s  # type: ignore[misc]
    s.close()


def _config(*channels: dict[str, Any], **extra: Any) -> AlertsConfig:
    return AlertsConfig.model_validate({"channels": [{**FAST, **c} for c in channels], **extra})


def test_webhook_payload_exact_then_only_changes(state: MonitorState) -> None:
    with receiver() as rx:
        config = _config({"type": "webhook", "url": rx.url + "/hook", "headers": {"X-Token": "t0k"}})
        report = deliver(config, PROJECT, [PSI, STALE], ALL_SCOPE, state)
        assert report.ok
        assert [(c.channel, c.fired, c.resolved, c.attempts) for c in report.channels] == [("webhook#0", 2, 0, 1)]
        (first,) = rx.requests
        assert first.path == "/hook"
        assert first.headers["X-Token"] == "t0k"
        assert first.headers["Content-Type"] == "application/json"
        body = dict(first.body)
        datetime.fromisoformat(body.pop("sent_at"))
        assert body == {
            "source": "potluck",
            "version": 1,
            "project": PROJECT,
            "dashboard_url": None,
            "firing": [
                {
                    "key": "potluck/shop/drift/users/age/psi",
                    "kind": "drift",
                    "view": "users",
                    "feature": "age",
                    "rule": "psi",
                    "summary": "users:age PSI 0.41 > 0.2",
                    "details": {"psi": 0.41, "threshold": 0.2},
                },
                {
                    "key": "potluck/shop/stale/orders//max_staleness",
                    "kind": "stale",
                    "view": "orders",
                    "feature": None,
                    "rule": "max_staleness",
                    "summary": "orders is stale",
                    "details": {"staleness_seconds": 90000.0},
                },
            ],
            "resolved": [],
        }

        # the same alerts again: nothing new to say
        again = deliver(config, PROJECT, [PSI, STALE], ALL_SCOPE, state)
        assert again.ok
        assert again.channels[0].fired == 0
        assert len(rx.requests) == 1

        # staleness cleared, a new drift rule fires
        deliver(config, PROJECT, [PSI, MEAN], ALL_SCOPE, state)
        third = rx.requests[1].body
        assert [a["key"] for a in third["firing"]] == ["potluck/shop/drift/users/spend/mean_change"]
        assert third["resolved"] == [
            {
                "key": "potluck/shop/stale/orders//max_staleness",
                "kind": "stale",
                "view": "orders",
                "feature": None,
                "rule": "max_staleness",
            }
        ]
    assert sorted(a.key for a in state.firing("webhook#0")) == sorted([PSI.key, MEAN.key])


def test_slack_message_format(state: MonitorState) -> None:
    tricky = Alert(PROJECT, "drift", "users", "a<b>&c", "psi", "PSI <high> & rising", {})
    with receiver() as rx:
        config = _config(
            {"type": "slack", "url": rx.url + "/services/T0/B0/secret"}, dashboard_url="http://grafana.local/d/x"
        )
        assert deliver(config, PROJECT, [PSI, tricky], ALL_SCOPE, state).ok
        assert rx.requests[0].body == {
            "text": "Potluck shop: 2 alerts firing",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "Potluck shop: 2 alerts firing"}},
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": "*Firing*\n• `users:age` drift/psi: users:age PSI 0.41 &gt; 0.2\n"
                        "• `users:a&lt;b&gt;&amp;c` drift/psi: PSI &lt;high&gt; &amp; rising",
                    },
                },
                {"type": "context", "elements": [{"type": "mrkdwn", "text": "<http://grafana.local/d/x|Dashboard>"}]},
            ],
        }
        assert deliver(config, PROJECT, [], ALL_SCOPE, state).ok
        assert rx.requests[1].body == {
            "text": "Potluck shop: 2 resolved",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "Potluck shop: 2 resolved"}},
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": "*Resolved*\n• `users:a&lt;b&gt;&amp;c` drift/psi\n• `users:age` drift/psi",
                    },
                },
                {"type": "context", "elements": [{"type": "mrkdwn", "text": "<http://grafana.local/d/x|Dashboard>"}]},
            ],
        }


def test_slack_many_alerts_stay_within_limits(state: MonitorState) -> None:
    many = [Alert(PROJECT, "drift", "users", f"f{i}", "psi", "x" * 400, {}) for i in range(60)]
    with receiver() as rx:
        assert deliver(_config({"type": "slack", "url": rx.url}), PROJECT, many, ALL_SCOPE, state).ok
        body = rx.requests[0].body
        section = body["blocks"][1]["text"]["text"]
        assert len(section) <= 3000
        assert len(body["blocks"]) <= 50


def test_pagerduty_trigger_and_resolve_events(state: MonitorState) -> None:
    with receiver(202, 202) as rx:
        config = _config(
            {"type": "pagerduty", "routing_key": "R0UT1NG", "url": rx.url + "/v2/enqueue", "severity": "warning"}
        )
        assert deliver(config, PROJECT, [PSI, STALE], ALL_SCOPE, state).ok
        assert [r.body for r in rx.requests] == [
            {
                "routing_key": "R0UT1NG",
                "event_action": "trigger",
                "dedup_key": "potluck/shop/drift/users/age/psi",
                "payload": {
                    "summary": "[potluck shop] users:age PSI 0.41 > 0.2",
                    "source": "potluck/shop",
                    "severity": "warning",
                    "component": "users",
                    "group": "shop",
                    "class": "drift/psi",
                    "custom_details": {"feature": "age", "psi": 0.41, "threshold": 0.2},
                },
                "client": "Potluck",
            },
            {
                "routing_key": "R0UT1NG",
                "event_action": "trigger",
                "dedup_key": "potluck/shop/stale/orders//max_staleness",
                "payload": {
                    "summary": "[potluck shop] orders is stale",
                    "source": "potluck/shop",
                    "severity": "warning",
                    "component": "orders",
                    "group": "shop",
                    "class": "stale/max_staleness",
                    "custom_details": {"feature": None, "staleness_seconds": 90000.0},
                },
                "client": "Potluck",
            },
        ]
        # only the drift view was checked this time: the staleness alert stays open
        drift_only = Scope.of("drift", ["users"])
        report = deliver(config, PROJECT, [], drift_only, state)
        assert report.ok
        assert report.channels[0].resolved == 1
        assert rx.requests[2].body == {
            "routing_key": "R0UT1NG",
            "event_action": "resolve",
            "dedup_key": "potluck/shop/drift/users/age/psi",
        }
        assert len(rx.requests) == 3
    assert [a.key for a in state.firing("pagerduty#0")] == [STALE.key]


def test_retries_server_errors_then_succeeds(state: MonitorState) -> None:
    with receiver(500, 503) as rx:
        report = deliver(_config({"type": "webhook", "url": rx.url}), PROJECT, [PSI], ALL_SCOPE, state)
        (channel,) = report.channels
        assert channel.ok
        assert channel.attempts == 3
        assert channel.fired == 1
        assert len(rx.requests) == 3
        assert rx.requests[0].body == rx.requests[2].body


def test_failing_receiver_reported_and_retried_next_run(state: MonitorState) -> None:
    with receiver(500, 500, "hang", default=200, hang_seconds=2.0) as rx:
        config = _config({"type": "webhook", "url": rx.url + "/secret-path", "name": "ops-hook"})
        report = deliver(config, PROJECT, [PSI], ALL_SCOPE, state)
        assert not report.ok
        (channel,) = report.channels
        assert channel.to_json() == {
            "channel": "ops-hook",
            "type": "webhook",
            "ok": False,
            "fired": 0,
            "resolved": 0,
            "failed_messages": 1,
            "attempts": 3,
            "errors": [
                'HTTP 500 ({"status":"error","message":"scripted failure"})',
                'HTTP 500 ({"status":"error","message":"scripted failure"})',
                "timed out after 0.5s",
            ],
        }
        assert "secret-path" not in channel.describe()
        assert state.firing("ops-hook") == []
        # the next run sends it again, and this time it gets through
        rx.wait_for(3)
        retry = deliver(config, PROJECT, [PSI], ALL_SCOPE, state)
        assert retry.ok
        assert retry.channels[0].fired == 1
        assert [a.key for a in state.firing("ops-hook")] == [PSI.key]


def test_huge_error_answer_is_cut(state: MonitorState) -> None:
    with receiver("huge", "huge") as rx:
        config = _config({"type": "webhook", "url": rx.url, "retries": 1})
        (channel,) = deliver(config, PROJECT, [PSI], ALL_SCOPE, state).channels
        assert not channel.ok
        assert channel.errors == ["HTTP 500 (" + "x" * 200 + "...)"] * 2


def test_concurrent_runs_agree_on_the_state(any_state: MonitorState) -> None:
    state = any_state
    from concurrent.futures import ThreadPoolExecutor

    with receiver() as rx:
        config = _config({"type": "webhook", "url": rx.url})
        with ThreadPoolExecutor(4) as pool:
            reports = list(pool.map(lambda _: deliver(config, PROJECT, [PSI, STALE], ALL_SCOPE, state), range(8)))
        assert all(r.ok for r in reports)
        # runs that overlap may each send the same change (receivers dedup by key); none is lost
        assert 1 <= len(rx.requests) <= 8
        assert sorted(a.key for a in state.firing("webhook#0")) == sorted([PSI.key, STALE.key])
        deliver(config, PROJECT, [], ALL_SCOPE, state)
        assert rx.requests[-1].body["resolved"]
        assert state.firing("webhook#0") == []


def test_client_error_is_not_retried(state: MonitorState) -> None:
    with receiver(400) as rx:
        report = deliver(
            _config({"type": "pagerduty", "routing_key": "bad", "url": rx.url}), PROJECT, [PSI], ALL_SCOPE, state
        )
        assert not report.ok
        assert report.channels[0].attempts == 1
        assert report.channels[0].errors == ['HTTP 400 ({"status":"error","message":"scripted failure"})']
        assert len(rx.requests) == 1


def test_dead_channel_does_not_stop_the_others(state: MonitorState) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/hook"  # bound, not listening: refused
        with receiver() as rx:
            config = _config({"type": "webhook", "url": dead, "name": "dead"}, {"type": "slack", "url": rx.url})
            report = deliver(config, PROJECT, [PSI], ALL_SCOPE, state)
    by_name = {c.channel: c for c in report.channels}
    assert not by_name["dead"].ok
    assert by_name["dead"].attempts == 3
    assert all("cannot reach http://127.0.0.1:" in e for e in by_name["dead"].errors)
    assert by_name["slack#1"].ok
    assert by_name["slack#1"].fired == 1
    assert len(rx.requests) == 1


def test_channel_kinds_filter(state: MonitorState) -> None:
    with receiver() as rx:
        config = _config({"type": "webhook", "url": rx.url, "kinds": ["stale"]})
        deliver(config, PROJECT, [PSI, STALE], ALL_SCOPE, state)
        assert [a["key"] for a in rx.requests[0].body["firing"]] == [STALE.key]


def test_config_errors_name_the_field() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"channels\.0\.pagerduty\.routing_key"):
        AlertsConfig.model_validate([{"type": "pagerduty", "routing_key": "  "}])
    with pytest.raises(ValidationError, match="two channels are named 'x'"):
        AlertsConfig.model_validate(
            [{"type": "slack", "url": "http://a", "name": "x"}, {"type": "webhook", "url": "http://b", "name": "x"}]
        )
    with pytest.raises(ValidationError, match=r"channels\.0"):
        AlertsConfig.model_validate([{"type": "email", "url": "http://a"}])


names = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=300)


@given(
    st.tuples(names, names, st.one_of(st.none(), names), names),
    st.tuples(names, names, st.one_of(st.none(), names), names),
)
def test_dedup_keys_are_short_and_distinct(
    a: tuple[str, str, str | None, str], b: tuple[str, str, str | None, str]
) -> None:
    key_a = dedup_key("p", a[0], a[1], a[2], a[3])
    key_b = dedup_key("p", b[0], b[1], b[2], b[3])
    assert len(key_a) <= 255
    assert (key_a == key_b) == (
        a == b or (a[2] in (None, "") and b[2] in (None, "") and (a[0], a[1], a[3]) == (b[0], b[1], b[3]))
    )


def test_state_round_trip(any_state: MonitorState) -> None:
    from datetime import UTC

    from potluck.monitoring.gauges import DriftGauge

    at = datetime(2026, 3, 1, tzinfo=UTC)
    rows = [DriftGauge("users", "age", True, 0.5, 0.3, 1e-12, 0.2), DriftGauge("users", "city", False, 0.01)]
    any_state.record_drift(["users"], rows, at)
    any_state.record_drift(["users", "orders"], rows, at)  # replaces, never duplicates
    assert any_state.drift_results() == (rows, {"users": at})
    any_state.record_materialization(["orders"], "RetrievalError: boom")
    any_state.record_materialization(["orders"], "RetrievalError: boom again")
    (failure,) = any_state.materialization_failures()
    assert (failure.feature_view, failure.error) == ("orders", "RetrievalError: boom again")
    any_state.record(ALERT_CHANNEL, [PSI], [])
    any_state.teardown()
    assert any_state.drift_results() == ([], {})
    assert any_state.materialization_failures() == []
    assert any_state.firing(ALERT_CHANNEL) == []


ALERT_CHANNEL = "hook"
