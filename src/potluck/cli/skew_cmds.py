"""`potluck skew`: training-serving skew of a feature service (docs/skew.md).

Exit codes: 0 when no feature is skewed, 1 when one is, 2 on an error (an alert that could not be
delivered included; 2 wins over 1, and the JSON still holds every result).
"""

from __future__ import annotations

import sys

import click

from potluck.cli.main import Context, cli, output_option, pass_ctx
from potluck.cli.monitor_cmds import EXIT_ERROR, _errors_exit_2, _fmt, _time, escape_markup
from potluck.cli.output import console_print, print_json, print_table
from potluck.monitoring.skew import SkewReportJson

EXIT_SKEW = 1


@cli.command("skew")
@click.option("--feature-service", "-s", required=True, help="The feature service whose logged values to check.")
@click.option(
    "--training", "-t", required=True, help="Training data: a saved dataset's name, or a Parquet file or folder."
)
@click.option("--start", help="Logged rows from this log time (ISO 8601).")
@click.option("--end", help="Logged rows up to this log time (ISO 8601 or now).")
@click.option(
    "--sample", default=10_000, show_default=True, type=click.IntRange(min=0), help="Rows recomputed offline."
)
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Seed of the sample.")
@click.option("--textfile", type=click.Path(dir_okay=False), help="Also write the results for node-exporter (.prom).")
@click.option("--no-alerts", is_flag=True, help="Do not send alerts to the monitoring.alerts channels.")
@output_option
@pass_ctx
def skew(
    ctx: Context,
    feature_service: str,
    training: str,
    start: str | None,
    end: str | None,
    sample: int,
    seed: int,
    textfile: str | None,
    no_alerts: bool,
    output: str,
) -> None:
    """Compare a feature service's served values with its training data and the offline store."""
    from potluck.monitoring.skew_ops import after_skew

    with _errors_exit_2(ctx):
        store = ctx.store
        report = store.skew_report(feature_service, training, _time(start), _time(end), sample=sample, seed=seed)
        delivery = after_skew(store, report, textfile=textfile, send_alerts=not no_alerts)
    data = report.to_dict()
    if output == "json":
        print_json(data)
    else:
        _print(data)
        for channel in delivery.channels:
            console_print(("[green]" if channel.ok else "[red]") + escape_markup(channel.describe()) + "[/]")
    if not delivery.ok:
        sys.exit(EXIT_ERROR)
    if data["skew"]:
        sys.exit(EXIT_SKEW)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.2%}"


def _print(data: SkewReportJson) -> None:
    from rich.markup import escape

    features = data["features"]
    rows = []
    for f in features:
        flag = "[red]yes[/red]" if f["skew"] else "[green]no[/green]"
        rows.append(
            [
                escape(f["view"]),
                escape(f["feature"]),
                flag,
                _fmt(f["psi"]),
                _fmt(f["ks_statistic"]),
                _fmt(f["ks_p_value"]),
                f"{_pct(f['null_rate_training'])} / {_pct(f['null_rate_serving'])}",
                _pct(f["match_rate"]),
                _pct(f["mismatch_rate"]),
                _pct(f["missing_online_rate"]),
                _pct(f["missing_offline_rate"]),
                _fmt(f["mean_abs_error"]),
                escape(", ".join(f["rules_fired"])),
                escape("; ".join(f["causes"])),
            ]
        )
    title = (
        f"Skew of {data['feature_service']} against {data['training']}: "
        f"{data['rows_logged']:,} rows logged, {data['rows_compared']:,} compared"
    )
    columns = ["view", "feature", "skew", "psi", "ks", "ks p", "nulls train / served", "match"]
    columns += ["mismatch", "missing online", "missing offline", "mean abs err", "rules", "causes"]
    print_table(title, columns, rows, markup=True)
    for f in features:
        for e in f["examples"][:3]:
            console_print(
                f"  {escape(f['view'])}:{escape(f['feature'])} {e['kind']}: keys {escape(str(e['keys']))} "
                f"at {e['log_timestamp']}: served {escape(repr(e['served']))} ({e['served_status']}, "
                f"event {e['served_event_timestamp']}), offline {escape(repr(e['offline']))} "
                f"(event {e['offline_event_timestamp']})"
            )
    console_print("[red]skew detected[/red]" if data["skew"] else "[green]no skew[/green]")
