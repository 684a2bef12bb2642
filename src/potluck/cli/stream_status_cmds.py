"""`potluck stream status`: the consumer lag of stream views, per source and partition."""

from __future__ import annotations

import sys

import click

from potluck.cli.main import Context, output_option, pass_ctx
from potluck.cli.output import print_json, print_table

EXIT_UNAVAILABLE = 1  # a source's lag could not be read


@click.command("status")
@click.option("--view", "-v", "views", multiple=True, help="A stream feature view; repeatable (default: all).")
@click.option("--group", default=None, help="The consumer group (default: feature_store.yaml's, potluck-<project>).")
@output_option
@pass_ctx
def status_cmd(ctx: Context, views: tuple[str, ...], group: str | None, output: str) -> None:
    """Consumer lag of the stream views' sources, per partition (read without joining the group)."""
    from potluck.streaming.status import stream_status

    store = ctx.store
    group = group or store.config.stream.group(store.project)
    rows = stream_status(store, list(views) or None, group=group)
    if output == "json":
        print_json({"consumer_group": group, "lag": [r.to_dict() for r in rows]})
    elif not rows:
        click.echo(
            "no feature view reads a stream source: nothing to report (define a StreamFeatureView on a "
            "KafkaSource or RedisStreamSource)"
        )
    else:
        table = [
            (r.view, r.source, r.partition or "", r.lag if r.error is None else f"unavailable: {r.error}") for r in rows
        ]
        total = sum({(r.source, r.partition): r.lag or 0 for r in rows}.values())  # a shared source once
        print_table(
            f"Stream lag of consumer group {group} (total {total:,})", ["view", "source", "partition", "lag"], table
        )
    if any(r.error is not None for r in rows):
        sys.exit(EXIT_UNAVAILABLE)
