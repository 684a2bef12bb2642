"""Backups: `registry export/import`, `online snapshot/restore/rebuild` (docs/operations.md)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click

from potluck.cli.main import Context, cli, pass_ctx
from potluck.cli.output import console_print, print_table
from potluck.cli.repo_cmds import registry


@registry.command("export")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--include-api-keys", is_flag=True, help="Also the feature server's API keys (their hashes).")
@pass_ctx
def registry_export(ctx: Context, file: str, include_api_keys: bool) -> None:
    """Write the project's registry (definitions, versions, history, audit log, monitoring state) to FILE."""
    from potluck.backup.registry_file import export_registry

    config = ctx.store.config
    summary = export_registry(
        config.registry_url,
        ctx.store.project,
        file,
        timeouts=config.registry.timeouts(),
        include_api_keys=include_api_keys,
    )
    console_print(
        f"Exported project '{summary.project}' at registry version {summary.registry_version} to {file}: "
        + _counts(summary.counts)
    )


@registry.command("import")
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@click.option("--allow-other-project", is_flag=True, help="Import an export of another project as this project.")
@click.option("--force", is_flag=True, help="Replace what the registry holds for this project.")
@pass_ctx
def registry_import(ctx: Context, file: str, allow_other_project: bool, force: bool) -> None:
    """Load a registry export into this project's registry, in one transaction."""
    from potluck.backup.registry_file import import_registry

    config = ctx.store.config
    summary = import_registry(
        config.registry_url,
        ctx.store.project,
        file,
        timeouts=config.registry.timeouts(),
        allow_other_project=allow_other_project,
        force=force,
    )
    if summary.replaced:
        console_print(f"Replaced what project '{summary.project}' held: {_counts(summary.replaced)}")
    source = f" (exported from project '{summary.source_project}')" if summary.source_project != summary.project else ""
    console_print(
        f"Imported {file}{source} into project '{summary.project}', now at registry version "
        f"{summary.registry_version}: {_counts(summary.counts)}"
    )


def _counts(counts: dict[str, int]) -> str:
    shown = [f"{n:,} {name.replace('_', ' ')}" for name, n in counts.items() if n]
    return ", ".join(shown) or "nothing"


@cli.group()
def online() -> None:
    """Online store backups and recovery: snapshot, restore, rebuild."""


@contextmanager
def _chunk_progress(enabled: bool) -> Iterator[Callable[[str, str, int], None] | None]:
    if not enabled:
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed:,} records"), TimeElapsedColumn()
    ) as progress:
        tasks: dict[tuple[str, str], Any] = {}

        def advance(view: str, part: str, rows: int) -> None:
            key = (view, part)
            if key not in tasks:
                tasks[key] = progress.add_task(f"{view} ({part})", total=None)
            progress.advance(tasks[key], rows)

        yield advance


@online.command("snapshot")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--view", "views", multiple=True, help="Only this online view; repeatable.")
@click.option("--chunk-rows", default=100_000, show_default=True, help="Rows per Parquet file.")
@click.option("--no-progress", is_flag=True, help="Do not show progress.")
@pass_ctx
def snapshot(ctx: Context, folder: str, views: tuple[str, ...], chunk_rows: int, no_progress: bool) -> None:
    """Copy every stored row of the online views into FOLDER (continues an unfinished snapshot there)."""
    from potluck.backup.online_snapshot import take

    if chunk_rows < 1:
        raise click.BadParameter("must be at least 1", param_hint="--chunk-rows")
    with _chunk_progress(not no_progress) as progress:
        manifest = take(ctx.store, folder, list(views) or None, chunk_rows=chunk_rows, on_chunk=progress)
    rows = [
        (
            e.name,
            f"{e.parts['rows'].rows:,}",
            f"{e.parts['tiles'].rows:,}" if "tiles" in e.parts else "",
            sum(len(p.chunks) for p in e.parts.values()),
        )
        for e in manifest.views
    ]
    print_table(
        f"Snapshot of project '{manifest.project}' (registry version {manifest.registry_version}) in {folder}",
        ["view", "rows", "tile records", "files"],
        rows,
    )


@online.command("restore")
@click.argument("folder", type=click.Path(file_okay=False, exists=True))
@click.option("--view", "views", multiple=True, help="Only this view of the snapshot; repeatable.")
@click.option("--overwrite", is_flag=True, help="Empty each view first: the result is exactly the snapshot.")
@click.option("--allow-other-project", is_flag=True, help="Restore a snapshot of another project into this one.")
@click.option("--no-progress", is_flag=True, help="Do not show progress.")
@pass_ctx
def restore(
    ctx: Context, folder: str, views: tuple[str, ...], overwrite: bool, allow_other_project: bool, no_progress: bool
) -> None:
    """Write a snapshot back into the online store (newest wins, unless --overwrite); resumable."""
    from potluck.backup.online_snapshot import restore as run

    with _chunk_progress(not no_progress) as progress:
        result = run(
            ctx.store,
            folder,
            list(views) or None,
            overwrite=overwrite,
            allow_other_project=allow_other_project,
            on_chunk=progress,
        )
    title = "Restored" + (" (continued)" if result.resumed else "") + (" with --overwrite" if overwrite else "")
    print_table(
        f"{title} from {folder}",
        ["view", "rows", "tile records stored"],
        [(v.view, f"{v.rows:,}", f"{v.tiles:,}") for v in result.views],
    )


@online.command("rebuild")
@click.option("--view", "views", multiple=True, help="Only this view; repeatable.")
@click.option("--start", help="Materialize from this event time (default: now minus each view's ttl).")
@click.option("--max-staleness", help="Views without a freshness limit of their own are stale past this (e.g. 1h).")
@click.option("--no-progress", is_flag=True, help="Do not show progress bars.")
@pass_ctx
def rebuild(
    ctx: Context, views: tuple[str, ...], start: str | None, max_staleness: str | None, no_progress: bool
) -> None:
    """Re-materialize every online view over its ttl window, then check freshness (exit 1 if stale)."""
    from potluck.backup.rebuild import rebuild as run
    from potluck.cli.data_cmds import parse_duration, parse_time
    from potluck.cli.monitor_cmds import _print_staleness

    limit = parse_duration(max_staleness) if max_staleness else None
    begin = parse_time(start) if start else None
    with _rebuild_progress(ctx, list(views) or None, not no_progress) as (factory, on_view):
        result = run(
            ctx.store, list(views) or None, start=begin, max_staleness=limit, progress=factory, on_view=on_view
        )
    print_table(
        "Rebuilt",
        ["view", "start", "end", "rows", "seconds"],
        [
            (
                r.feature_view,
                r.start.isoformat() if r.start else "",
                r.end.isoformat(),
                f"{r.rows:,}",
                f"{r.seconds:.2f}",
            )
            for r in result.results
        ],
    )
    _print_staleness(result.freshness)
    if result.stale:
        console_print("[red]still stale: " + ", ".join(s.view for s in result.stale) + "[/red]")
        sys.exit(1)


@contextmanager
def _rebuild_progress(ctx: Context, views: list[str] | None, enabled: bool) -> Iterator[tuple[Any, Any]]:
    """A bar over the views, and a row counter per view."""
    if not enabled:
        yield None, None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from potluck.backup.rebuild import plan

    total = len(plan(ctx.store, views, None, datetime.now(UTC)))
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rows]}"),
        TimeElapsedColumn(),
    ) as progress:
        overall = progress.add_task("views rebuilt", total=total, rows="")

        def factory(view: str) -> Callable[[int], None]:
            task = progress.add_task(f"  {view}", total=None, rows="0 rows")
            count = [0]

            def advance(rows: int) -> None:
                count[0] += rows
                progress.update(task, advance=rows, rows=f"{count[0]:,} rows")

            return advance

        yield factory, lambda _step: progress.advance(overall)
