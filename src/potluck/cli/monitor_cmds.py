"""`potluck monitor`: baselines, drift checks for cron, and the last results.

Exit codes of `monitor run`: 0 when nothing drifted and no view is stale, 1 on drift or staleness,
2 on an error (an alert that could not be delivered included).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click

from potluck.cli.data_cmds import parse_time
from potluck.cli.main import Context, cli, output_option, pass_ctx
from potluck.cli.output import console_print, print_json, print_table

EXIT_DRIFT = 1
EXIT_ERROR = 2
_BARS = " ▁▂▃▄▅▆▇█"


@cli.group()
def monitor() -> None:
    """Feature statistics, baselines and drift (docs/monitoring.md)."""


@contextmanager
def _errors_exit_2(ctx: Context) -> Iterator[None]:
    """Any error is one line on stderr and exit code 2 (1 means drift)."""
    from potluck.cli.main import _report

    try:
        yield
    except (click.exceptions.Exit, SystemExit):
        raise
    except click.ClickException as err:
        err.show()
        sys.exit(EXIT_ERROR)
    except Exception as err:
        _report(err, ctx.verbose)
        sys.exit(EXIT_ERROR)


def _time(text: str | None) -> Any:
    return parse_time(text) if text else None


@monitor.command("baseline")
@click.option("--name", "-n", required=True, help="The baseline's name (saving it again adds a version).")
@click.option("--view", "views", multiple=True, help="A feature view to profile; repeatable.")
@click.option("--feature-service", help="Profile the features of this feature service.")
@click.option("--dataset", type=click.Path(), help="Profile a Parquet file or folder (training data, logged rows).")
@click.option("--logs", is_flag=True, help="Profile what --feature-service served: its feature log, by log time.")
@click.option("--start", help="Rows from this event time (ISO 8601).")
@click.option("--end", help="Rows up to this event time (ISO 8601 or now).")
@output_option
@pass_ctx
def baseline(
    ctx: Context,
    name: str,
    views: tuple[str, ...],
    feature_service: str | None,
    dataset: str | None,
    logs: bool,
    start: str | None,
    end: str | None,
    output: str,
) -> None:
    """Save the statistics of views, a feature service, its served values or a dataset as a baseline."""
    with _errors_exit_2(ctx):
        if bool(views) + bool(feature_service) + bool(dataset) != 1:
            raise click.UsageError("pass one of --view (repeatable), --feature-service or --dataset")
        if dataset and (start or end):
            raise click.UsageError("--start/--end select rows of views; a --dataset is profiled whole")
        if logs and not feature_service:
            raise click.UsageError("--logs profiles the log of a feature service: pass --feature-service")
        store = ctx.store
        window = (_time(start), _time(end))
        if logs and feature_service:
            profile = store.compute_log_statistics(feature_service, *window)
        elif dataset:
            profile = store.compute_statistics(dataset)
        elif feature_service:
            profile = store.compute_statistics(feature_service, *window)
        else:
            profile = store.compute_statistics(views[0], *window)
            for other in views[1:]:
                profile.features += store.compute_statistics(other, *window).features
            if len(views) > 1:
                profile.source = "views:" + ",".join(views)
        version = store.set_baseline(name, profile)
        if output == "json":
            print_json({"name": name, "version": version, "profile": profile.to_dict()})
            return
        console_print(
            f"Saved baseline [bold]{name}[/bold] version {version}: {len(profile.features)} features "
            f"of {profile.source}, {profile.row_count:,} rows"
        )
        _print_profile(profile)


@monitor.command("run")
@click.option("--baseline", "-b", "baselines", multiple=True, help="A baseline to check (default: all); repeatable.")
@click.option("--view", "views", multiple=True, help="Only these views; repeatable.")
@click.option("--start", help="Current rows from this event time (default: end minus the baseline's window).")
@click.option("--end", help="Current rows up to this event time (default: now).")
@click.option("--max-staleness", help="Views without a limit of their own are stale past this (e.g. 24h).")
@click.option("--textfile", type=click.Path(dir_okay=False), help="Also write the results for node-exporter (.prom).")
@click.option("--no-alerts", is_flag=True, help="Do not send alerts to the monitoring.alerts channels.")
@click.option(
    "--logs", is_flag=True, help="Compare what --feature-service served (its feature log) with the baselines."
)
@click.option("--feature-service", help="With --logs: the feature service whose log holds the current rows.")
@output_option
@pass_ctx
def run(
    ctx: Context,
    baselines: tuple[str, ...],
    views: tuple[str, ...],
    start: str | None,
    end: str | None,
    max_staleness: str | None,
    textfile: str | None,
    no_alerts: bool,
    logs: bool,
    feature_service: str | None,
    output: str,
) -> None:
    """Check drift against baselines and each view's staleness; exit 1 on drift or staleness, 2 on errors."""
    from potluck.cli.data_cmds import parse_duration
    from potluck.monitoring.ops import monitor_run

    with _errors_exit_2(ctx):
        limit = parse_duration(max_staleness) if max_staleness else None
        if logs != bool(feature_service):
            raise click.UsageError("--logs and --feature-service go together: the service whose log to check")
        result = monitor_run(
            ctx.store,
            baselines=baselines,
            views=views,
            start=_time(start),
            end=_time(end),
            max_staleness=limit,
            textfile=textfile,
            send_alerts=not no_alerts,
            logs=feature_service,
        )
        if not result.baselines_checked:
            click.echo("No baseline saved: drift not checked (save one with potluck monitor baseline).", err=True)
    report, parts, ops = result.report, result.parts, result.ops
    extended: dict[str, Any] = result.to_json()
    if output == "json":
        print_json(extended)
    else:
        for part in parts:
            _print_drift(f"Drift of {part.current.source} against baseline {part.baseline} v{part.version}", part)
        _print_staleness(ops.staleness)
        for channel in ops.delivery.channels:
            console_print(("[green]" if channel.ok else "[red]") + escape_markup(channel.describe()) + "[/]")
        console_print("[red]drift detected[/red]" if report["drift"] else "[green]no drift[/green]")
    code = ops.exit_code(bool(report["drift"]))
    if code:
        sys.exit(code)


def escape_markup(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _print_staleness(staleness: Sequence[Any]) -> None:
    from potluck.cli.data_cmds import format_age

    rows = [
        (
            s.view,
            s.status.upper(),
            s.materialized_until or "",
            format_age(s.age),
            format_age(s.max_staleness) if s.max_staleness is not None else "",
            s.limit_from or "",
        )
        for s in staleness
    ]
    print_table("Freshness", ["view", "status", "materialized until", "staleness", "limit", "limit from"], rows)


@monitor.command("show")
@output_option
@pass_ctx
def show(ctx: Context, output: str) -> None:
    """The baselines and the last run of each (with inline histograms on a terminal)."""
    with _errors_exit_2(ctx):
        store = ctx.store
        baselines = store.list_baselines()
        runs = store.last_monitoring_runs()
    if output == "json":
        print_json(
            {
                "baselines": baselines,
                "last_runs": [
                    {
                        "baseline": r.baseline,
                        "baseline_version": r.version,
                        "ran_at": r.ran_at,
                        "report": r.report.to_report(),
                    }
                    for r in runs
                ],
            }
        )
        return
    print_table(
        "Baselines",
        ["name", "version", "source", "start", "end", "features", "created"],
        [
            (b["name"], b["version"], b["source"], b["start"], b["end"], b["features"], b["created_at"])
            for b in baselines
        ],
    )
    for r in runs:
        when = f" at {r.ran_at:%Y-%m-%d %H:%M:%S}" if r.ran_at else ""
        _print_drift(f"Last run of baseline {r.baseline} v{r.version}{when}", r)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def sparkline(counts: Sequence[int] | None) -> str:
    """Bin shares as block characters, scaled to the largest bin."""
    if not counts:
        return ""
    top = max(counts) or 1
    return "".join(_BARS[round(c / top * (len(_BARS) - 1))] for c in counts)


def _print_drift(title: str, part: Any) -> None:
    from rich.console import Console
    from rich.markup import escape

    inline = Console().is_terminal
    columns = [
        "view",
        "feature",
        "kind",
        "drift",
        "psi",
        "ks",
        "ks p",
        "js",
        "chi2 p",
        "mean Δ",
        "null Δ",
        "max ratio",
        "rules",
    ]
    if inline:
        columns += ["baseline", "current"]
    rows = []
    for f in part.report.features:
        flag = "[red]yes[/red]" if f.drift else "[green]no[/green]"
        row = [escape(f.view), escape(f.feature), f.kind, flag]
        row += [_fmt(v) for v in (f.psi, f.ks_statistic, f.ks_p_value, f.js_distance, f.chi2_p_value)]
        row += [_fmt(f.mean_change), _fmt(f.null_rate_change), _fmt(f.max_ratio), ", ".join(f.rules_fired)]
        if inline:
            row += [sparkline(f.baseline_histogram), sparkline(f.current_histogram)]
        rows.append(row)
    print_table(title, columns, rows, markup=True)


def _print_profile(profile: Any) -> None:
    rows = []
    for f in profile.features:
        rows.append(
            (
                f.view or "",
                f.name,
                f.kind,
                f.count,
                _fmt(f.null_rate),
                _fmt(f.mean),
                _fmt(f.stddev),
                _fmt(f.min),
                _fmt(f.quantiles.get("p50")),
                _fmt(f.max),
                f.approx_distinct if f.approx_distinct is not None else "",
                ", ".join(f"{v}: {n}" for v, n in (f.top or [])[:3]),
            )
        )
    print_table(
        "Statistics",
        ["view", "feature", "kind", "rows", "null rate", "mean", "stddev", "min", "p50", "max", "distinct", "top"],
        rows,
    )
