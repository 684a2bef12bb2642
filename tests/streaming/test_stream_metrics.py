"""The stream worker's metrics, scraped over HTTP from a real endpoint and parsed as Prometheus does."""

from __future__ import annotations

import io
import logging
import socket
import time

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from potluck.streaming.progress import ProgressLine, progress_text
from potluck.streaming.stream_metrics import LATENCY_BUCKETS, StreamMetrics, serve_metrics


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the endpoint: (sample name, sorted labels) -> value."""
    reply = httpx.get(url, timeout=5)
    assert reply.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_hooks_are_exported_with_exact_values() -> None:
    metrics = StreamMetrics()
    metrics.consumed("clicks", "clicks:0", 700)
    metrics.consumed("clicks", "clicks:1", 300)
    metrics.consumed("clicks", "clicks:0", 5)
    metrics.written("user_clicks", 990)
    metrics.written("user_clicks", 10)
    metrics.late("user_clicks", 3)
    metrics.dead_lettered("clicks", 2)
    metrics.batch("clicks", 1000, 0.04)
    metrics.batch("clicks", 5, 2.0)
    before = time.time()
    metrics.committed("clicks", {"clicks:0": 704, "clicks:1": 299}, {"clicks:0": 12, "clicks:1": 0})
    after = time.time()
    with serve_metrics(metrics, port=0) as server:
        got = scrape(server.url)
    assert got[("potluck_stream_events_consumed_total", (("partition", "clicks:0"), ("source", "clicks")))] == 705
    assert got[("potluck_stream_events_consumed_total", (("partition", "clicks:1"), ("source", "clicks")))] == 300
    assert got[("potluck_stream_rows_written_total", (("view", "user_clicks"),))] == 1000
    assert got[("potluck_stream_late_events_total", (("view", "user_clicks"),))] == 3
    assert got[("potluck_stream_dead_letters_total", (("source", "clicks"),))] == 2
    assert got[("potluck_stream_consumer_lag", (("partition", "clicks:0"), ("source", "clicks")))] == 12
    assert got[("potluck_stream_consumer_lag", (("partition", "clicks:1"), ("source", "clicks")))] == 0
    committed_at = got[("potluck_stream_last_commit_timestamp_seconds", (("source", "clicks"),))]
    assert before <= committed_at <= after
    assert got[("potluck_stream_batch_messages_count", (("source", "clicks"),))] == 2
    assert got[("potluck_stream_batch_messages_sum", (("source", "clicks"),))] == 1005
    assert got[("potluck_stream_batch_messages_bucket", (("le", "10.0"), ("source", "clicks")))] == 1
    assert got[("potluck_stream_batch_messages_bucket", (("le", "1000.0"), ("source", "clicks")))] == 2
    assert got[("potluck_stream_batch_seconds_bucket", (("le", "0.05"), ("source", "clicks")))] == 1
    assert got[("potluck_stream_batch_seconds_bucket", (("le", "2.5"), ("source", "clicks")))] == 2
    assert got[("potluck_stream_batch_seconds_sum", (("source", "clicks"),))] == pytest.approx(2.04)
    assert got[("potluck_stream_paused", (("source", "clicks"),))] == 0


@pytest.mark.parametrize("as_list", [False, True])
def test_latency_buckets_equal_a_brute_force_count(as_list: bool) -> None:
    rng = np.random.default_rng(7)
    first = rng.exponential(0.3, 5000)
    # Values exactly on bounds belong to that bucket (le); some beyond the last bound go to +Inf only.
    second = np.concatenate([np.asarray(LATENCY_BUCKETS), [0.0, 61.0, 500.0], rng.uniform(0, 70, 997)])
    metrics = StreamMetrics()
    for batch in (first, second):
        metrics.latency("user_clicks", batch.tolist() if as_list else batch)
    metrics.latency("other_view", [0.5])
    metrics.latency("user_clicks", [])
    with serve_metrics(metrics) as server:
        got = scrape(server.url)
    values = np.concatenate([first, second]).tolist()
    view = ("view", "user_clicks")
    for bound in LATENCY_BUCKETS:
        expected = sum(1 for v in values if v <= bound)
        assert got[("potluck_stream_event_to_online_seconds_bucket", (("le", repr(bound)), view))] == expected, bound
    assert got[("potluck_stream_event_to_online_seconds_bucket", (("le", "+Inf"), view))] == len(values)
    assert got[("potluck_stream_event_to_online_seconds_count", (view,))] == len(values)
    assert got[("potluck_stream_event_to_online_seconds_sum", (view,))] == pytest.approx(sum(values))
    assert got[("potluck_stream_event_to_online_seconds_count", (("view", "other_view"),))] == 1
    assert LATENCY_BUCKETS[0] == 0.001
    assert LATENCY_BUCKETS[-1] == 60.0


def test_lag_is_replaced_at_each_commit_and_a_commit_ends_a_pause(caplog: pytest.LogCaptureFixture) -> None:
    metrics = StreamMetrics()
    with caplog.at_level(logging.INFO, logger="potluck.streaming"):
        metrics.committed("orders", {"orders": 10}, {"orders": 90})
        metrics.paused("orders", "online store unavailable: connection refused")
        metrics.paused("orders", "online store unavailable: connection refused")  # a retry: no new line
        with serve_metrics(metrics) as server:
            paused = scrape(server.url)
            metrics.committed("orders", {"orders": 60}, {"orders": 40})
            resumed = scrape(server.url)
    assert paused[("potluck_stream_paused", (("source", "orders"),))] == 1
    assert paused[("potluck_stream_consumer_lag", (("partition", "orders"), ("source", "orders")))] == 90
    assert resumed[("potluck_stream_paused", (("source", "orders"),))] == 0
    assert resumed[("potluck_stream_consumer_lag", (("partition", "orders"), ("source", "orders")))] == 40
    pause_lines = [r.getMessage() for r in caplog.records if "paused" in r.getMessage()]
    assert pause_lines == ["stream source 'orders' paused: online store unavailable: connection refused (retrying)"]
    assert any("resumed" in r.getMessage() for r in caplog.records)


def test_two_stream_metrics_in_one_process_do_not_share_series() -> None:
    first, second = StreamMetrics(), StreamMetrics()
    first.consumed("a", "a:0", 5)
    second.consumed("b", "b:0", 7)
    with serve_metrics(first) as one, serve_metrics(second) as two:
        assert one.port != two.port
        got_one, got_two = scrape(one.url), scrape(two.url)
    consumed = "potluck_stream_events_consumed_total"
    assert {k for k in got_one if k[0] == consumed} == {(consumed, (("partition", "a:0"), ("source", "a")))}
    assert {k for k in got_two if k[0] == consumed} == {(consumed, (("partition", "b:0"), ("source", "b")))}
    assert first.registry is not second.registry


def _outside_address() -> str | None:
    """A non-loopback address of this machine, if it has one."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 1))  # no packet is sent: this only picks the outgoing interface
        address = str(probe.getsockname()[0])
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address


def test_endpoint_binds_to_loopback_and_stops() -> None:
    server = serve_metrics(StreamMetrics())
    try:
        assert server.host == "127.0.0.1"
        assert httpx.get(server.url, timeout=5).status_code == 200
        outside = _outside_address()
        if outside is not None:
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"http://{outside}:{server.port}/metrics", timeout=2)
    finally:
        server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url, timeout=2)


def test_a_busy_port_is_one_clear_error() -> None:
    from potluck.definitions.errors import PotluckError

    with serve_metrics(StreamMetrics()) as taken, pytest.raises(PotluckError, match="--metrics-port"):
        serve_metrics(StreamMetrics(), port=taken.port)


def test_summary_and_progress_figures() -> None:
    clock = [1000.0]
    metrics = StreamMetrics(clock=lambda: clock[0], monotonic=lambda: clock[0])
    metrics.consumed("clicks", "clicks:0", 400)
    clock[0] += 20  # out of the 10 s rate window
    metrics.consumed("clicks", "clicks:0", 300)
    metrics.consumed("clicks", "clicks:1", 200)
    metrics.written("a", 450)
    metrics.written("b", 50)
    metrics.dead_lettered("clicks", 4)
    metrics.late("a", 6)
    metrics.batch("clicks", 900, 0.1)
    metrics.committed("clicks", {"clicks:0": 699}, {"clicks:0": 30, "clicks:1": 12})
    metrics.committed("views", {"views": 1}, {"views": 8})
    clock[0] += 2.5
    metrics.committed("views", {"views": 2}, {"views": 5})
    metrics.paused("clicks", "broker unavailable")
    snapshot = metrics.snapshot()
    assert snapshot.events_per_second == 50  # 500 events in the last 10 s
    assert (snapshot.events_consumed, snapshot.rows_written, snapshot.lag) == (900, 500, 47)
    assert (snapshot.dead_letters, snapshot.late, snapshot.batches) == (4, 6, 1)
    assert snapshot.seconds_since_commit == 2.5  # the source committed longest ago
    assert snapshot.paused == {"clicks": "broker unavailable"}
    assert metrics.summary() == {
        "events_consumed": 900,
        "rows_written": {"a": 450, "b": 50},
        "dead_letters": 4,
        "late": 6,
        "batches": 1,
    }
    line = progress_text(snapshot)
    for part in ("50 events/s", "900 consumed", "500 rows written", "lag 47", "4 dead letters", "6 late",
                 "last commit 2.5s ago", "PAUSED clicks: broker unavailable"):  # fmt: skip
        assert part in line, (part, line)


def test_progress_line_prints_nothing_when_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    from rich.console import Console

    metrics = StreamMetrics()
    metrics.consumed("clicks", "clicks:0", 10)
    quiet = ProgressLine(metrics)  # stderr is captured: not a terminal
    assert not quiet.enabled
    with quiet:
        metrics.written("a", 10)
    assert capsys.readouterr() == ("", "")

    piped = io.StringIO()
    with ProgressLine(metrics, console=Console(file=piped)):
        metrics.written("a", 1)
    assert piped.getvalue() == ""

    terminal = io.StringIO()
    with ProgressLine(metrics, console=Console(file=terminal, force_terminal=True, width=300)) as line:
        assert line.enabled
    assert "11 rows written" in terminal.getvalue()
