"""`potluck stream`: the stream worker (docs/streaming.md).

Exit codes of `stream run`: 0 when it stopped as asked (idle, SIGTERM, SIGINT), 1 on a configuration or
definition error (found before consuming), 2 on an unexpected failure, 3 when, with --exit-when-idle, a
source stayed unreachable (`stopped_by: unavailable`).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from potluck.cli.main import Context, cli, output_option, pass_ctx
from potluck.cli.output import print_json

EXIT_CONFIG = 1
EXIT_FAILURE = 2
EXIT_UNAVAILABLE = 3


@cli.group()
def stream() -> None:
    """Consume stream sources into the online and offline stores."""


@stream.command("run")
@click.option(
    "--views", "-v", "views", multiple=True, help="A feature view to run; repeatable (default: all on streams)."
)
@click.option("--exit-when-idle", type=click.FloatRange(min=0), help="Stop after this many seconds without a message.")
@click.option("--no-offline", is_flag=True, help="Do not append consumed events to the views' batch sources.")
@click.option("--metrics-port", type=click.IntRange(1, 65535), help="Serve Prometheus metrics on this port.")
@click.option("--metrics-host", default="127.0.0.1", show_default=True, help="The address the metrics bind to.")
@output_option
@pass_ctx
def run(
    ctx: Context,
    views: tuple[str, ...],
    exit_when_idle: float | None,
    no_offline: bool,
    metrics_port: int | None,
    metrics_host: str,
    output: str,
) -> None:
    """Consume the views' stream sources until SIGTERM/SIGINT (or --exit-when-idle), exactly once."""
    from potluck.cli.main import _report
    from potluck.definitions.errors import (
        ConfigError,
        DefinitionError,
        MissingExtraError,
        NotFoundError,
        RepositoryError,
    )

    try:
        summary = ctx.store.run_stream(
            list(views) or None,
            exit_when_idle=exit_when_idle,
            offline=False if no_offline else None,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
            progress=True,
        )
    except (ConfigError, DefinitionError, MissingExtraError, NotFoundError, RepositoryError) as err:
        _report(err, ctx.verbose)
        sys.exit(EXIT_CONFIG)
    except click.ClickException:
        raise
    except Exception as err:
        _report(err, ctx.verbose)
        sys.exit(EXIT_FAILURE)
    if output == "json":
        print_json(summary)
    else:
        _print_summary(summary)
    if summary["stopped_by"] == "unavailable":
        sys.exit(EXIT_UNAVAILABLE)


def _print_summary(summary: dict[str, Any]) -> None:
    written = ", ".join(f"{v}: {n:,}" for v, n in summary["written"].items()) or "nothing"
    click.echo(
        f"{summary['messages']:,} messages in {summary['batches']:,} batches; written {written}; "
        f"{summary['dead_letters']:,} dead letters, {summary['late']:,} late, {summary['replayed']:,} replayed; "
        f"stopped ({summary['stopped_by']})"
    )
