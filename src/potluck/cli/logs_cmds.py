"""`potluck logs`: the feature logs of feature services (retention)."""

from __future__ import annotations

import click

from potluck.cli.data_cmds import parse_duration
from potluck.cli.main import Context, cli, output_option, pass_ctx
from potluck.cli.output import print_json, print_table


@cli.group()
def logs() -> None:
    """Feature logs of feature services with a logging_config (docs/skew.md)."""


@logs.command("prune")
@click.option("--older-than", required=True, help="Remove log days that ended longer ago than this (e.g. 30d).")
@click.option("--feature-service", help="Only this service's log (default: every logged service).")
@click.option("--dry-run", is_flag=True, help="Only print what would be removed.")
@output_option
@pass_ctx
def prune(ctx: Context, older_than: str, feature_service: str | None, dry_run: bool, output: str) -> None:
    """Delete whole log-date folders older than the limit; prints each one removed."""
    limit = parse_duration(older_than)
    removed = ctx.store.prune_feature_logs(limit, feature_service, dry_run=dry_run)
    if output == "json":
        print_json(
            [
                {
                    "feature_service": r.service,
                    "log_date": r.log_date.isoformat(),
                    "folder": str(r.folder),
                    "files": r.files,
                    "bytes": r.bytes,
                    "removed": not dry_run,
                }
                for r in removed
            ]
        )
        return
    verb = "Would remove" if dry_run else "Removed"
    rows = [[r.service, r.log_date.isoformat(), r.files, r.bytes, str(r.folder)] for r in removed]
    print_table(f"{verb} {len(removed)} log day(s)", ["feature service", "log date", "files", "bytes", "folder"], rows)
