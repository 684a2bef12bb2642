"""Commands that move data: training data, materialization, online reads, freshness."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from potluck.cli.main import Context, cli, output_option, pass_ctx
from potluck.cli.output import console_print, print_json, print_table


def parse_duration(text: str) -> timedelta:
    from potluck.definitions.durations import parse_duration as parse

    try:
        return parse(text)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


def parse_time(text: str) -> datetime:
    """An ISO-8601 time (naive means UTC) or `now`."""
    if text.lower() == "now":
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"'{text}' is not an ISO-8601 time such as 2024-01-31T00:00:00") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str], Callable[[int], None]] | None]:
    if not enabled:
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed:,} rows"), TimeElapsedColumn()
    ) as progress:

        def factory(view: str) -> Callable[[int], None]:
            task = progress.add_task(view, total=None)
            return lambda rows: progress.advance(task, rows)

        yield factory


def features_option(func: Any) -> Any:
    return click.option(
        "--features", "-F", "-f", "features", multiple=True, help="A feature reference view:feature; repeatable."
    )(func)


def _entity_rows_from_json(text: str) -> Any:
    """`--dataframe`: a JSON list of rows (objects); `event_timestamp` strings become UTC times."""
    import pyarrow as pa

    try:
        rows = json.loads(text)
    except json.JSONDecodeError as err:
        raise click.BadParameter(f"not valid JSON: {err}", param_hint="--dataframe") from None
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise click.BadParameter("give a JSON list of objects, one per entity row", param_hint="--dataframe")
    table = pa.Table.from_pylist(rows)
    if "event_timestamp" not in table.column_names:
        raise click.BadParameter("every row needs an 'event_timestamp'", param_hint="--dataframe")
    try:
        stamps = [parse_time(str(r["event_timestamp"])) for r in rows]
    except click.BadParameter as err:
        raise click.BadParameter(f"event_timestamp: {err.message}", param_hint="--dataframe") from None
    index = table.column_names.index("event_timestamp")
    return table.set_column(index, "event_timestamp", pa.array(stamps, pa.timestamp("us", tz="UTC")))


@cli.command("get-historical-features")
@click.option("--entity-df", help="Parquet or CSV file of entity rows, or a SQL query.")
@click.option("--dataframe", "-d", help='Entity rows as JSON: \'[{"event_timestamp": "...", "driver_id": 1001}]\'.')
@click.option("--start-date", "-s", help="Without entity rows: entities with rows from this time (ISO 8601).")
@click.option("--end-date", "-e", help="Without entity rows: their values as of this time (default now).")
@features_option
@click.option("--feature-service", help="Use this feature service's features.")
@click.option("--output", "-o", "output_path", help="Write the result to this Parquet file (default: JSON rows).")
@click.option("--full-feature-names", is_flag=True, help="Name columns view__feature.")
@click.option("--availability-time", is_flag=True, help="Also require created time <= entity time.")
@pass_ctx
def get_historical_features(
    ctx: Context,
    entity_df: str | None,
    dataframe: str | None,
    start_date: str | None,
    end_date: str | None,
    features: tuple[str, ...],
    feature_service: str | None,
    output_path: str | None,
    full_feature_names: bool,
    availability_time: bool,
) -> None:
    """Build point-in-time correct training data: a Parquet file (--output) or JSON rows on stdout."""
    import time

    if bool(features) == bool(feature_service):
        raise click.UsageError("pass either --features (repeatable) or --feature-service")
    if (entity_df is not None) + (dataframe is not None) + (start_date is not None or end_date is not None) != 1:
        raise click.UsageError("pass one of --entity-df, --dataframe, or --start-date/--end-date")
    source: Any = entity_df
    if dataframe is not None:
        source = _entity_rows_from_json(dataframe)
    elif entity_df is not None and entity_df.lower().endswith((".csv", ".csv.gz")):
        import pyarrow.csv as pcsv

        source = pcsv.read_csv(entity_df)
    window = {
        "start_date": parse_time(start_date) if start_date else None,
        "end_date": parse_time(end_date) if end_date else None,
    }
    began = time.perf_counter()
    from rich.console import Console

    with Console(stderr=True).status("Joining features point in time..."):
        job = ctx.store.get_historical_features(
            source,
            feature_service or list(features),
            full_feature_names=full_feature_names,
            availability_time=availability_time,
            **window,
        )
        if output_path is None:
            table = job.to_arrow()
        else:
            job.to_parquet(output_path)
    if output_path is None:
        print_json(table.to_pylist())
        return
    import pyarrow.parquet as pq

    rows = pq.ParquetFile(output_path).metadata.num_rows
    console_print(f"Wrote {rows:,} rows to {output_path} in {time.perf_counter() - began:.2f} s.")


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def views_option(func: Any) -> Any:
    return click.option(
        "--views", "-v", "--feature-views", "views", multiple=True, help="Only this feature view; repeatable."
    )(func)


def version_option(func: Any) -> Any:
    return click.option(
        "--version", "feature_view_version", default=None, help="Version of the one view given with --views."
    )(func)


def verbose_option(func: Any) -> Any:
    return click.option(
        "--verbose", is_flag=True, help="Per view: interval, rows read offline and rows written online."
    )(func)


def _check_version(ctx: Context, views: tuple[str, ...], version: str | None) -> None:
    """Only the current definition of a view is materialized (the one served): `latest`, or `vN` naming it."""
    from potluck.definitions.errors import DefinitionError
    from potluck.definitions.versions import parse_version, version_tag

    if version is None:
        return
    if len(views) != 1:
        raise click.UsageError("--version needs exactly one feature view given with --views")
    try:
        wanted = parse_version(version, "--version")
    except DefinitionError as err:
        raise click.BadParameter(str(err), param_hint="--version") from None
    current = ctx.store.get_feature_view(views[0]).current_version_number or 0
    if wanted is not None and wanted != current:
        raise click.BadParameter(
            f"feature view '{views[0]}' serves its current version {version_tag(current)}, and only that one is "
            f"materialized (online serving has one version per view); pass --version {version_tag(current)} or "
            f"latest, or make {version_tag(wanted)} current with version='{version_tag(wanted)}' and apply",
            param_hint="--version",
        )


@cli.command()
@click.argument("start", required=False)
@click.argument("end", required=False)
@views_option
@click.option(
    "--disable-event-timestamp", is_flag=True, help="Without START and END: everything from 1970-01-01 to now."
)
@version_option
@click.option("--no-progress", is_flag=True, help="Do not show progress bars.")
@verbose_option
@pass_ctx
def materialize(
    ctx: Context,
    start: str | None,
    end: str | None,
    views: tuple[str, ...],
    disable_event_timestamp: bool,
    feature_view_version: str | None,
    no_progress: bool,
    verbose: bool,
) -> None:
    """Copy the latest rows with START <= event time <= END to the online store."""
    if disable_event_timestamp:
        if start or end:
            raise click.UsageError("pass either START and END or --disable-event-timestamp, not both")
        start_time, end_time = EPOCH, datetime.now(UTC)
    elif start is None or end is None:
        raise click.UsageError("START and END are required unless --disable-event-timestamp is given")
    else:
        start_time, end_time = parse_time(start), parse_time(end)
    _check_version(ctx, views, feature_view_version)
    with _progress(not no_progress) as progress:
        results = ctx.store.materialize(start_time, end_time, list(views) or None, progress=progress)
    _report(results, verbose)


@cli.command("materialize-incremental")
@click.argument("end")
@views_option
@version_option
@click.option("--lookback", default="0s", help="Re-read this much before the last end (late data), e.g. 1h.")
@click.option("--no-progress", is_flag=True, help="Do not show progress bars.")
@verbose_option
@pass_ctx
def materialize_incremental(
    ctx: Context,
    end: str,
    views: tuple[str, ...],
    feature_view_version: str | None,
    lookback: str,
    no_progress: bool,
    verbose: bool,
) -> None:
    """Materialize from where each view left off up to END."""
    _check_version(ctx, views, feature_view_version)
    with _progress(not no_progress) as progress:
        results = ctx.store.materialize_incremental(
            parse_time(end), list(views) or None, lookback=parse_duration(lookback), progress=progress
        )
    _report(results, verbose)


def _report(results: list[Any], verbose: bool = False) -> None:
    if verbose:
        for r in results:
            read = "?" if r.rows_read is None else f"{r.rows_read:,}"
            click.echo(
                f"{r.feature_view}: interval {r.start.isoformat() if r.start else '(beginning)'} .. "
                f"{r.end.isoformat()}; read {read} rows from the offline store (latest per entity), "
                f"wrote {r.rows:,} rows to the online store in {r.seconds:.2f} s"
            )
    rows = [
        (
            r.feature_view,
            r.start.isoformat() if r.start else "(beginning)",
            r.end.isoformat(),
            *(["?" if r.rows_read is None else f"{r.rows_read:,}"] if verbose else []),
            f"{r.rows:,}",
            f"{r.seconds:.2f}",
            f"{r.rows / r.seconds:,.0f}" if r.seconds > 0 else "",
        )
        for r in results
    ]
    columns = ["view", "start", "end", *(["rows read"] if verbose else []), "rows", "seconds", "rows/s"]
    print_table("Materialized", columns, rows)


def _parse_entity(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise click.BadParameter(f"'{text}' is not KEY=VALUE", param_hint="--entity")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key, value


@cli.command("get-online-features")
@features_option
@click.option("--feature-service", help="Use this feature service's features.")
@click.option(
    "--entities",
    "--entity",
    "-e",
    "entities",
    multiple=True,
    required=True,
    help="KEY=VALUE; repeat a key for more rows.",
)
@click.option("--full-feature-names", is_flag=True)
@output_option
@pass_ctx
def get_online_features(
    ctx: Context,
    features: tuple[str, ...],
    feature_service: str | None,
    entities: tuple[str, ...],
    full_feature_names: bool,
    output: str,
) -> None:
    """Read the latest feature values of entities from the online store."""
    if bool(features) == bool(feature_service):
        raise click.UsageError("pass either --features (repeatable) or --feature-service")
    columns: dict[str, list[Any]] = {}
    for text in entities:
        key, value = _parse_entity(text)
        columns.setdefault(key, []).append(value)
    if len({len(v) for v in columns.values()}) > 1:
        raise click.UsageError("give every entity key the same number of values")
    response = ctx.store.get_online_features(
        feature_service or list(features), columns, full_feature_names=full_feature_names
    )
    data = response.to_dict()
    statuses = response.statuses
    if output == "json":
        print_json({"values": data, "statuses": {k: [str(s.value) for s in v] for k, v in statuses.items()}})
        return
    names = list(data)
    rows = []
    for i in range(len(next(iter(data.values()))) if data else 0):
        row = []
        for name in names:
            value = data[name][i]
            status = statuses.get(name)
            mark = "" if status is None or status[i].value == "PRESENT" else f" ({status[i].value})"
            row.append(f"{value}{mark}")
        rows.append(row)
    print_table("Online features", names, rows)


def format_age(age: timedelta | None) -> str:
    if age is None:
        return "never"
    seconds = int(age.total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    return f"{days}d {hours}h" if days else f"{hours}h {minutes}m" if hours else f"{minutes}m {rest % 60}s"


@cli.command()
@click.option("--max-staleness", default="24h", show_default=True, help="Older than this is STALE (e.g. 30m, 7d).")
@output_option
@pass_ctx
def freshness(ctx: Context, max_staleness: str, output: str) -> None:
    """OK / STALE / NEVER per online view; exits 1 when any view is stale or never materialized."""
    limit = parse_duration(max_staleness)
    rows = []
    failing = False
    for f in ctx.store.freshness():
        status = "NEVER" if f.age is None else "STALE" if f.age > limit else "OK"
        failing = failing or status != "OK"
        rows.append((f.feature_view, status, f.materialized_until, f.age))
    if output == "json":
        print_json(
            [
                {
                    "view": view,
                    "status": status,
                    "materialized_until": until.isoformat() if until else None,
                    "staleness_seconds": age.total_seconds() if age is not None else None,
                }
                for view, status, until, age in rows
            ]
        )
    else:
        styled = [
            (view, status, until.isoformat() if until else "", format_age(age)) for view, status, until, age in rows
        ]
        print_table(
            f"Freshness (max staleness {max_staleness})", ["view", "status", "materialized until", "staleness"], styled
        )
    if failing:
        sys.exit(1)


@cli.group()
def materialization() -> None:
    """Inspect and reset what each view has recorded as materialized (its watermark)."""


@materialization.command("show")
@click.argument("view", required=False)
@output_option
@pass_ctx
def materialization_show(ctx: Context, view: str | None, output: str) -> None:
    """List the recorded materialization intervals (of VIEW, or of every view)."""
    from potluck.materialize.watermark import reached

    if view is not None:
        ctx.store.get_feature_view(view)
    intervals = ctx.store.materialization_intervals(view)
    records = [
        {
            "view": i.feature_view,
            "start": i.start.isoformat() if i.start else None,
            "end": i.end.isoformat(),
            "recorded_at": i.recorded_at.isoformat(),
            "counts_until": reached(i).isoformat(),
        }
        for i in intervals
    ]
    if output == "json":
        print_json(records)
        return
    rows = [(r["view"], r["start"] or "(beginning)", r["end"], r["recorded_at"], r["counts_until"]) for r in records]
    print_table("Materialization intervals", ["view", "start", "end", "recorded at", "counts until"], rows)


@materialization.command("reset")
@click.argument("view")
@click.option("--to", "to", default=None, help="Forget only intervals that end after this time (ISO 8601).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@pass_ctx
def materialization_reset(ctx: Context, view: str, to: str | None, yes: bool) -> None:
    """Forget VIEW's recorded intervals (after --to, or all): the next incremental run starts earlier."""
    until = parse_time(to) if to is not None else None
    ctx.store.get_feature_view(view)
    if not yes and sys.stdin.isatty():
        what = f"after {until.isoformat()}" if until else "all of them"
        click.confirm(f"Forget the materialization intervals of view '{view}' ({what})?", abort=True)
    forgotten = ctx.store.reset_materialization(view, until)
    console_print(f"Forgot {forgotten} interval(s) of view '{view}'. Online rows are kept.")
