"""`init`, `plan`, `apply`, `teardown`, `registry ...` and `version`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from potluck.cli.main import Context, cli, output_option, pass_ctx
from potluck.cli.output import console_print, print_json, print_table

if TYPE_CHECKING:
    from potluck.repo.plan import Plan

_KIND_LABEL = {
    "entity": "Entity",
    "data_source": "DataSource",
    "feature_view": "FeatureView",
    "stream_feature_view": "StreamFeatureView",
    "label_view": "LabelView",
    "on_demand_feature_view": "OnDemandFeatureView",
    "feature_service": "FeatureService",
}
_SILENT_RETRIES = 5  # re-commits of an unchanged plan after unrelated concurrent applies
_STYLE = {"created": "green", "updated": "yellow", "deleted": "red"}


def _short(value: Any) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def print_plan(plan: Plan) -> None:
    from rich.markup import escape

    rows = []
    for d in plan.diffs:
        if d.action == "unchanged":
            continue
        detail = escape("; ".join(f"{c.path}: {_short(c.old)} -> {_short(c.new)}" for c in d.changes))
        style = _STYLE.get(d.action, "")
        rows.append(
            (
                _KIND_LABEL.get(d.kind, d.kind),
                d.name,
                f"[{style}]{d.action}[/{style}]",
                detail,
                "[bold red]yes[/bold red]: " + escape("; ".join(d.breaking)) if d.breaking else "",
            )
        )
    counts = plan.counts()
    if rows:
        print_table("Plan", ["kind", "name", "change", "fields", "breaking"], rows, markup=True)
    console_print(
        f"{counts['created']} to create, {counts['updated']} to update, {counts['deleted']} to delete, "
        f"{counts['unchanged']} unchanged (registry version {plan.base_version})."
    )


@cli.command()
@click.argument("directory", required=False)
@click.option("--template", "-t", default="local", show_default=True, help="local (demo with data) or minimal.")
@click.option("--minimal", "-m", is_flag=True, help="An empty repository: the same as --template minimal.")
@click.option("--repo-path", help="Create the repository in this folder; DIRECTORY then names the project.")
@click.option("--force", is_flag=True, help="Write into a folder that is not empty.")
@click.option("--airflow", is_flag=True, help="Also write an Airflow DAG for it (airflow/potluck_feature_pipeline.py).")
def init(
    directory: str | None, template: str, minimal: bool, repo_path: str | None, force: bool, airflow: bool
) -> None:
    """Create a feature repository (by default a demo with generated sample data)."""
    from potluck.repo.template import AIRFLOW_DAG, scaffold

    folder = repo_path or directory or "potluck_repo"
    project = directory if repo_path and directory else None
    template = "minimal" if minimal else template.lower()
    path = scaffold(folder, force=force, template=template, project=project, airflow=airflow)
    console_print(f"Created a feature repository in [bold]{path}[/bold]. Next: cd {folder} && potluck apply")
    if airflow:
        console_print(
            f"The Airflow DAG is {path / AIRFLOW_DAG}: copy it into Airflow's dags folder "
            "(pip install 'potluck\\[airflow,monitoring]' where Airflow runs)."
        )


def _validation_notice(skip_source_validation: bool, skip_feature_view_validation: bool) -> None:
    for flag, given in (
        ("--skip-source-validation", skip_source_validation),
        ("--skip-feature-view-validation", skip_feature_view_validation),
    ):
        if given:
            click.echo(
                f"Notice: {flag} has no effect: every view is always checked against its source's columns", err=True
            )


def skip_validation_options(func: Any) -> Any:
    func = click.option(
        "--skip-feature-view-validation", is_flag=True, help="Accepted; views are always validated here."
    )(func)
    return click.option("--skip-source-validation", is_flag=True, help="Accepted; sources are always checked here.")(
        func
    )


@cli.command()
@skip_validation_options
@output_option
@pass_ctx
def plan(ctx: Context, skip_source_validation: bool, skip_feature_view_validation: bool, output: str) -> None:
    """Show what `apply` would change in the registry."""
    _validation_notice(skip_source_validation, skip_feature_view_validation)
    result = ctx.store.plan()
    if output == "json":
        print_json(result.to_json())
    else:
        print_plan(result)


@cli.command()
@click.option("--allow-breaking", is_flag=True, help="Apply even if the plan has breaking changes.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation of breaking changes.")
@skip_validation_options
@click.option("--no-progress", is_flag=True, help="Accepted; apply shows no progress bars.")
@click.option(
    "--no-promote",
    is_flag=True,
    help="Record changed feature views as new versions only (for training data as view@vN:feature); "
    "their current definitions stay served.",
)
@pass_ctx
def apply(
    ctx: Context,
    allow_breaking: bool,
    yes: bool,
    skip_source_validation: bool,
    skip_feature_view_validation: bool,
    no_progress: bool,
    no_promote: bool,
) -> None:
    """Register the repository's definitions (one transaction).

    What is committed is exactly the plan shown: if the registry changed in the meantime, the
    plan is computed again and, on a terminal, shown and confirmed again; otherwise the apply
    fails with the conflict.
    """
    from potluck.definitions.errors import RegistryConflictError

    _validation_notice(skip_source_validation, skip_feature_view_validation)
    store = ctx.store
    interactive = sys.stdin.isatty() and not yes
    shown = store.plan()
    if not shown.has_changes:
        _print_warnings(store.finish_pending_online())
        console_print(f"No changes: the registry already matches the repository (version {shown.base_version}).")
        return
    print_plan(shown)
    _confirm(shown, allow_breaking, yes=yes, again=False)
    silent_retries = 0
    while True:
        try:
            applied = store.apply_plan(shown, allow_breaking=True, no_promote=no_promote)
            break
        except RegistryConflictError as conflict:
            replanned = store.plan()
            if replanned.same_changes(shown) and silent_retries < _SILENT_RETRIES:
                silent_retries += 1
                shown = replanned  # the same changes from the same state: what was shown still holds
                continue
            if not interactive:
                raise conflict from None
            console_print(
                f"[yellow]The registry changed while this plan waited[/yellow] (now at version "
                f"{replanned.base_version}). The new plan:"
            )
            if not replanned.has_changes:
                _print_warnings(store.finish_pending_online())
                console_print("No changes: the registry already matches the repository.")
                return
            print_plan(replanned)
            _confirm(replanned, allow_breaking, yes=yes, again=True)
            shown = replanned
    _print_warnings(applied.warnings)
    console_print(
        f"[green]Applied[/green]: registry of project '{store.project}' is now at version {applied.base_version + 1}."
    )
    if no_promote:
        _print_unpromoted(store, applied)


def _print_unpromoted(store: Any, applied: Any) -> None:
    """After --no-promote: which new versions were recorded beside the current ones."""
    from potluck.definitions import FeatureView

    for d in applied.diffs:
        if d.kind != FeatureView.kind or d.action != "updated" or d.obj.pinned_version is not None:
            continue
        versions = store.list_feature_view_versions(d.name)
        current = next(v["version"] for v in versions if v["current"])
        console_print(
            f"Feature view '{d.name}': recorded {versions[-1]['version']} (not promoted; {current} stays current). "
            f"Promote it by applying again without --no-promote, or with version='{versions[-1]['version']}'."
        )


def _print_warnings(warnings: list[str]) -> None:
    from rich.markup import escape

    for warning in warnings:
        console_print(f"[yellow]Warning[/yellow]: {escape(warning)}")


def _confirm(plan: Plan, allow_breaking: bool, *, yes: bool, again: bool) -> None:
    """Refuse breaking changes unless allowed or confirmed; a re-plan is always confirmed on a terminal."""
    from potluck.definitions.errors import BreakingChangeError

    if plan.breaking and not allow_breaking:
        if yes or not sys.stdin.isatty():
            raise BreakingChangeError(
                "the plan has breaking changes (" + "; ".join(plan.breaking) + "); rerun with --allow-breaking"
            )
        click.confirm("The plan has breaking changes. Apply anyway?", abort=True)
    elif again:
        click.confirm("Apply this plan?", abort=True)


@cli.command()
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@pass_ctx
def teardown(ctx: Context, yes: bool) -> None:
    """Remove the project's definitions, history and online data."""
    if not yes and sys.stdin.isatty():
        click.confirm(f"Remove everything of project '{ctx.store.project}'?", abort=True)
    ctx.store.teardown()
    console_print(f"Project '{ctx.store.project}' torn down.")


@cli.group()
def registry() -> None:
    """Inspect the registry."""


@registry.command("dump")
@pass_ctx
def registry_dump(ctx: Context) -> None:
    """Print every registered object as JSON."""
    print_json(ctx.store.registry_dump())


cli.add_command(registry_dump, "registry-dump")


@registry.command("history")
@click.option("--limit", "-n", default=20, show_default=True, help="How many applies to show.")
@output_option
@pass_ctx
def registry_history(ctx: Context, limit: int, output: str) -> None:
    """Show who applied what, and when."""
    entries = ctx.store.registry_history(limit)
    if output == "json":
        print_json([e.__dict__ for e in entries])
        return
    rows = [
        (
            e.version,
            e.applied_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            e.author,
            ", ".join(f"{c['action']} {c['kind']} {c['name']}" for c in e.changes),
        )
        for e in entries
    ]
    print_table("Registry history", ["version", "applied at", "by", "changes"], rows)


_DELETABLE = (  # the order names are looked up in
    ("entity", "Entity"),
    ("feature_view", "FeatureView"),
    ("stream_feature_view", "StreamFeatureView"),
    ("label_view", "LabelView"),
    ("on_demand_feature_view", "OnDemandFeatureView"),
    ("feature_service", "FeatureService"),
    ("data_source", "DataSource"),
)


@cli.command()
@click.argument("object_name")
@click.option(
    "--kind",
    type=click.Choice([k for k, _ in _DELETABLE]),
    help="Which kind of object, when the name is used by several.",
)
@pass_ctx
def delete(ctx: Context, object_name: str, kind: str | None) -> None:
    """Delete one registered object by name (one registry transaction, like apply)."""
    from potluck.definitions.errors import DefinitionError, suggestion

    snapshot = ctx.store.registry_snapshot()
    kinds = [(k, label) for k, label in _DELETABLE if kind in (None, k) and object_name in snapshot.of_kind(k)]
    if not kinds:
        names = [n for k, _ in _DELETABLE if kind in (None, k) for n in snapshot.of_kind(k)]
        raise DefinitionError(
            f"no {kind or 'object'} named '{object_name}' in project '{ctx.store.project}'. {suggestion(object_name, names)}"
        )
    if len(kinds) > 1:
        raise click.UsageError(
            f"'{object_name}' names a {' and a '.join(label for _, label in kinds)}; choose one with --kind"
        )
    found, label = kinds[0]
    users = _users_of(snapshot, found, object_name)
    if users:
        raise DefinitionError(
            f"{label} '{object_name}' is still used by {', '.join(users)}; delete or change those first"
        )
    applied = ctx.store.apply([], objects_to_delete=[snapshot.get(found, object_name)])
    _print_warnings(applied.warnings)
    console_print(f"Deleted {label} '{object_name}' from project '{ctx.store.project}'.")


def _users_of(snapshot: Any, kind: str, name: str) -> list[str]:
    """The registered objects that refer to the object `kind`/`name`."""
    from potluck.definitions import FeatureService, OnDemandFeatureView

    views = list(snapshot.feature_views().values())
    services = [s for s in snapshot.of_kind(FeatureService.kind).values() if isinstance(s, FeatureService)]
    on_demand = [v for v in snapshot.of_kind(OnDemandFeatureView.kind).values() if isinstance(v, OnDemandFeatureView)]
    if kind == "entity":
        return [f"{_what(v)} '{v.name}'" for v in views if name in v.entity_names]
    if kind in ("feature_view", "stream_feature_view", "label_view", "on_demand_feature_view"):
        users = [f"feature service '{s.name}'" for s in services if name in s.feature_view_names]
        if kind != "on_demand_feature_view":
            users += [
                f"on-demand feature view '{v.name}'"
                for v in on_demand
                if name in [p.name for p in v.source_projections]
            ]
        return users
    if kind == "data_source":
        users = [f"{_what(v)} '{v.name}'" for v in views if v.source.name == name]
        return users + [
            f"on-demand feature view '{v.name}'" for v in on_demand if name in [r.name for r in v.request_sources]
        ]
    return []


def _what(view: Any) -> str:
    return "label view" if view.kind == "label_view" else "feature view"


@cli.command()
def version() -> None:
    """Print the Potluck version."""
    from potluck import __version__

    click.echo(f"potluck {__version__}")
