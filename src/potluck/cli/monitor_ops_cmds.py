"""`potluck monitor prometheus-rules` and `potluck monitor grafana-dashboard`: files for the ops stack."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path

import click

from potluck.cli.data_cmds import parse_duration


def _write(text: str, output: str | None) -> None:
    if output is None or output == "-":
        sys.stdout.write(text)
        return
    target = Path(output)
    if not target.parent.is_dir():
        raise click.BadParameter(f"the folder {target.parent} does not exist", param_hint="--output")
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(text)
    tmp.replace(target)
    click.echo(f"wrote {target}", err=True)


@click.command("prometheus-rules")
@click.option("--output", "-o", default=None, help="Write to this file (default: standard output).")
@click.option("--for", "pending", default="10m", show_default=True, help="How long a condition holds before it fires.")
@click.option("--rate-window", default="5m", show_default=True, help="Window of the server's rates (e.g. 5m).")
@click.option("--error-ratio", type=click.FloatRange(0, 1), default=0.01, show_default=True, help="Share of 5xx.")
@click.option("--latency-p99", default="50ms", show_default=True, help="p99 of /get-online-features (e.g. 50ms, 0.2s).")
@click.option("--max-staleness", default=None, help="Also alert on views without a limit of their own older than this.")
@click.option("--monitor-every", default="1h", show_default=True, help="How often monitor run is scheduled.")
def prometheus_rules(
    output: str | None,
    pending: str,
    rate_window: str,
    error_ratio: float,
    latency_p99: str,
    max_staleness: str | None,
    monitor_every: str,
) -> None:
    """Prometheus alert rules: staleness, drift, materialization failures, server errors and latency."""
    from potluck.monitoring.prometheus import RuleOptions, prom_duration, rules_yaml

    options = RuleOptions(
        pending=_pending(pending),
        rate_window=prom_duration(parse_duration(rate_window)),
        error_ratio=error_ratio,
        latency_p99_seconds=_seconds(latency_p99),
        max_staleness=parse_duration(max_staleness) if max_staleness else None,
        monitor_run_every=parse_duration(monitor_every),
    )
    _write(rules_yaml(options), output)


@click.command("grafana-dashboard")
@click.option("--output", "-o", default=None, help="Write to this file (default: standard output).")
def grafana_dashboard(output: str | None) -> None:
    """A Grafana dashboard: serving latency, throughput and errors, freshness per view, drift per feature."""
    from potluck.monitoring.grafana import dashboard

    _write(json.dumps(dashboard(), indent=2) + "\n", output)


def _pending(text: str) -> timedelta:
    return timedelta(0) if text.strip() in ("0", "0s") else parse_duration(text)


def _seconds(text: str) -> float:
    value = text.strip()
    if value.endswith("ms"):
        try:
            return float(value[:-2]) / 1000
        except ValueError:
            pass
    elif value:
        return parse_duration(value if value[-1].isalpha() else value + "s").total_seconds()
    raise click.BadParameter(f"'{text}' is not a duration such as 50ms or 0.2s", param_hint="--latency-p99")


def register(group: click.Group) -> None:
    group.add_command(prometheus_rules)
    group.add_command(grafana_dashboard)
