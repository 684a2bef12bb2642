"""`entities`, `feature-views`, `stream-feature-views`, `label-views`, `on-demand-feature-views`,
`feature-services`, `data-sources`, `features` and `projects`: list and describe."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from potluck.cli.main import Context, cli, output_option, pass_ctx
from potluck.cli.output import print_json, print_kv, print_table
from potluck.definitions import (
    BatchFeatureView,
    DataSource,
    Definition,
    Entity,
    FeatureService,
    FeatureView,
    LabelView,
    OnDemandFeatureView,
    StreamFeatureView,
)


def _tags(obj: Definition) -> str:
    return ", ".join(f"{k}={v}" for k, v in obj.tags.items())


def _entity_row(e: Definition) -> list[Any]:
    assert isinstance(e, Entity)
    return [e.name, e.join_key, e.value_type.name, e.description, _tags(e)]


def _view_type(v: FeatureView) -> str:
    if isinstance(v, BatchFeatureView):
        return "batch"
    return "stream" if isinstance(v, StreamFeatureView) else "plain"


def _view_row(v: Definition) -> list[Any]:
    assert isinstance(v, FeatureView)
    return [
        v.name,
        _view_type(v),
        ", ".join(v.entity_names),
        len(v.features),
        str(v.ttl),
        v.source.name,
        v.online,
        _tags(v),
    ]


def _windows(v: FeatureView) -> str:
    """The view's aggregations, e.g. `sum(amount) 1:00:00/0:05:00`."""
    return "; ".join(
        f"{a.function}({a.column}) {a.time_window or 'lifetime'}{f'/{a.hop}' if a.hop else ''}" for a in v.aggregations
    )


def _stream_row(v: Definition) -> list[Any]:
    assert isinstance(v, StreamFeatureView)
    return [v.name, ", ".join(v.entity_names), v.source.name, v.source.source_type, _windows(v), v.online, _tags(v)]


def _label_view_row(v: Definition) -> list[Any]:
    assert isinstance(v, LabelView)
    labels = ", ".join(v.label_names)
    priorities = ", ".join(v.labeler_priorities)
    policy = v.conflict_policy.value + (f" ({priorities})" if priorities else "")
    return [v.name, ", ".join(v.entity_names), labels, v.labeler_field, policy, str(v.ttl), v.source.name, _tags(v)]


def _on_demand_row(v: Definition) -> list[Any]:
    assert isinstance(v, OnDemandFeatureView)
    sources = [p.name_to_use for p in v.source_projections] + [r.name for r in v.request_sources]
    where = f"{v.udf_location.file}:{v.udf_location.qualname}"
    return [v.name, v.mode, len(v.features), ", ".join(sources), where, v.write_to_online_store, _tags(v)]


def _service_row(s: Definition) -> list[Any]:
    assert isinstance(s, FeatureService)
    return [s.name, len(s.feature_references()), ", ".join(s.feature_view_names), s.description, _tags(s)]


def _source_row(s: Definition) -> list[Any]:
    assert isinstance(s, DataSource)
    return [s.name, s.source_type, getattr(s, "path", ""), s.timestamp_field, _tags(s)]


GROUPS: list[tuple[str, str, str, list[str], Callable[[Definition], list[Any]]]] = [
    ("entities", "Entities", Entity.kind, ["name", "join key", "type", "description", "tags"], _entity_row),
    (
        "feature-views",
        "Feature views",
        FeatureView.kind,
        ["name", "type", "entities", "features", "ttl", "source", "online", "tags"],
        _view_row,
    ),
    (
        "stream-feature-views",
        "Stream feature views",
        StreamFeatureView.kind,
        ["name", "entities", "source", "source type", "aggregations", "online", "tags"],
        _stream_row,
    ),
    (
        "label-views",
        "Label views",
        LabelView.kind,
        ["name", "entities", "labels", "labeler", "conflict policy", "ttl", "source", "tags"],
        _label_view_row,
    ),
    (
        "on-demand-feature-views",
        "On-demand feature views",
        OnDemandFeatureView.kind,
        ["name", "mode", "features", "sources", "function", "stored", "tags"],
        _on_demand_row,
    ),
    (
        "feature-services",
        "Feature services",
        FeatureService.kind,
        ["name", "features", "views", "description", "tags"],
        _service_row,
    ),
    ("data-sources", "Data sources", DataSource.kind, ["name", "type", "path", "timestamp", "tags"], _source_row),
]


def parse_tags(tags: tuple[str, ...]) -> dict[str, str]:
    """`--tags` values: `key:value` (comma-separated pairs allowed) or `KEY=VALUE`; all must match."""
    out = {}
    for text in tags:
        for raw in text.strip().strip("()").split(","):
            item = raw.strip().replace('"', "").replace("'", "")
            if not item:
                continue
            colon, equals = item.find(":"), item.find("=")
            at = equals if equals >= 0 and (colon < 0 or equals < colon) else colon
            if at <= 0:
                raise click.BadParameter(f"'{item}' is not key:value (or KEY=VALUE)", param_hint="--tags")
            out[item[:at].strip()] = item[at + 1 :].strip()
    return out


def tags_option(func: Any) -> Any:
    return click.option(
        "--tags", multiple=True, help="Only objects with this tag, key:value or KEY=VALUE; repeatable (all must match)."
    )(func)


def _make_group(
    command: str, title: str, kind: str, columns: list[str], row: Callable[[Definition], list[Any]]
) -> None:
    @cli.group(name=command, help=f"List and describe {title.lower()}.")
    def group() -> None:
        pass

    @group.command("list", help=f"List {title.lower()}.")
    @tags_option
    @output_option
    @pass_ctx
    def list_cmd(ctx: Context, tags: tuple[str, ...], output: str) -> None:
        wanted = parse_tags(tags)
        objs = [
            o
            for o in sorted(ctx.store.registry_snapshot().of_kind(kind).values(), key=lambda o: o.name)
            if all(o.tags.get(k) == v for k, v in wanted.items())
        ]
        if kind == FeatureView.kind:
            _list_views(ctx, objs, output)
        elif output == "json":
            print_json([o.to_spec() for o in objs])
        else:
            print_table(title, columns, [row(o) for o in objs])

    @group.command("describe", help=f"Show one of the {title.lower()} in full.")
    @click.argument("name")
    @output_option
    @pass_ctx
    def describe_cmd(ctx: Context, name: str, output: str) -> None:
        from potluck.registry.snapshot import registered_spec

        spec = registered_spec(ctx.store.registry_snapshot().get(kind, name))
        if output == "json":
            print_json(spec)
        else:
            print_kv(f"{title[:-1] if not title.endswith('ies') else title[:-3] + 'y'} '{name}'", _kv(spec))


def _list_views(ctx: Context, views: list[Definition], output: str) -> None:
    """Feature views with their last materialized interval and how stale it is."""
    from potluck.cli.data_cmds import format_age

    fresh = {f.feature_view: (f.start, f.materialized_until, f.age) for f in ctx.store.freshness()}
    if output == "json":
        out = []
        for v in views:
            _, end, age = fresh.get(v.name, (None, None, None))
            spec = v.to_spec()
            spec["materialized_until"] = end.isoformat() if end else None
            spec["staleness_seconds"] = age.total_seconds() if age is not None else None
            out.append(spec)
        print_json(out)
        return
    rows = []
    for v in views:
        start, end, age = fresh.get(v.name, (None, None, None))
        interval = f"{start.isoformat() if start else '(beginning)'} .. {end.isoformat()}" if end else ""
        rows.append([*_view_row(v), interval, format_age(age) if v.name in fresh else "offline only"])
    print_table("Feature views", [*GROUPS[1][3], "last materialized", "staleness"], rows)


def _kv(spec: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in spec.items():
        label = f"{prefix}{key}"
        if isinstance(value, dict) and value and key != "tags":
            out.extend(_kv(value, label + "."))
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for item in value:
                source = item.get("source")
                nested = source.get("name", "") if isinstance(source, dict) else ""
                name = item.get("name") or item.get("feature_view") or item.get("feature_view_name") or nested
                rest = {k: v for k, v in item.items() if k != "name" and v not in ("", {}, None)}
                out.append((f"{label}[{name}]", ", ".join(f"{k}={v}" for k, v in rest.items())))
        else:
            out.append((label, value))
    return out


for _args in GROUPS:
    _make_group(*_args)

_views_group = cli.commands["feature-views"]
assert isinstance(_views_group, click.Group)


@_views_group.command("list-versions")
@click.argument("name")
@output_option
@pass_ctx
def list_versions(ctx: Context, name: str, output: str) -> None:
    """List the applied definitions (versions) of a feature view; `current` marks the one served."""
    versions = ctx.store.list_feature_view_versions(name)
    if output == "json":
        print_json([{**v, "created_timestamp": v["created_timestamp"].isoformat()} for v in versions])
        return
    rows = [
        [v["version"], v["feature_view_type"], v["created_timestamp"].isoformat(), v["version_id"], v["current"]]
        for v in versions
    ]
    print_table(f"Versions of feature view '{name}'", ["version", "type", "created", "version id", "current"], rows)


@cli.group(help="List and describe features (of every feature view).")
def features() -> None:
    pass


def _feature_records(ctx: Context) -> list[dict[str, Any]]:
    views = sorted(ctx.store.registry_snapshot().feature_views().values(), key=lambda v: v.name)
    return [
        {
            "feature_name": f.name,
            "feature_view": v.name,
            "dtype": f.dtype.name,
            "description": f.description,
            "online": v.online,
            "source": v.source.name,
        }
        for v in views
        if isinstance(v, FeatureView)
        for f in v.features
    ]


@features.command("list", help="List every feature with its view and type.")
@output_option
@pass_ctx
def features_list(ctx: Context, output: str) -> None:
    records = _feature_records(ctx)
    if output == "json":
        print_json([{k: r[k] for k in ("feature_name", "feature_view", "dtype")} for r in records])
    else:
        print_table(
            "Features",
            ["feature", "feature view", "type"],
            [[r[k] for k in ("feature_name", "feature_view", "dtype")] for r in records],
        )


@features.command("describe", help="Show a feature (in every view that has one of that name).")
@click.argument("name")
@pass_ctx
def features_describe(ctx: Context, name: str) -> None:
    from potluck.definitions.errors import NotFoundError, suggestion

    records = _feature_records(ctx)
    found = [r for r in records if r["feature_name"] == name]
    if not found:
        raise NotFoundError(f"no feature named '{name}'. {suggestion(name, [r['feature_name'] for r in records])}")
    print_json(found)


@cli.group(help="List the project.")
def projects() -> None:
    pass


@projects.command("list", help="List the project of this feature_store.yaml (its applied Project, if any).")
@tags_option
@output_option
@pass_ctx
def projects_list(ctx: Context, tags: tuple[str, ...], output: str) -> None:
    found = ctx.store.list_projects(tags=parse_tags(tags) or None)
    if output == "json":
        print_json(
            [{"name": p.name, "description": p.description, "tags": dict(p.tags), "owner": p.owner} for p in found]
        )
    else:
        rows = [[p.name, p.description, ", ".join(f"{k}={v}" for k, v in p.tags.items()), p.owner] for p in found]
        print_table("Projects", ["name", "description", "tags", "owner"], rows)


@cli.group(name="saved-datasets", help="List and describe saved datasets.")
def saved_datasets() -> None:
    pass


def _dataset_row(spec: dict[str, Any]) -> list[Any]:
    return [
        spec["name"],
        len(spec["features"]),
        spec.get("feature_service_name") or "",
        spec.get("row_count"),
        f"{spec.get('min_event_timestamp') or ''} .. {spec.get('max_event_timestamp') or ''}",
        spec["storage"].get("path", ""),
        spec.get("created_timestamp") or "",
        ", ".join(f"{k}={v}" for k, v in (spec.get("tags") or {}).items()),
    ]


@saved_datasets.command("list", help="List saved datasets.")
@tags_option
@output_option
@pass_ctx
def saved_datasets_list(ctx: Context, tags: tuple[str, ...], output: str) -> None:
    specs = [d.to_spec() for d in ctx.store.list_saved_datasets(tags=parse_tags(tags) or None)]
    if output == "json":
        print_json(specs)
    else:
        columns = ["name", "features", "feature service", "rows", "event times", "path", "created", "tags"]
        print_table("Saved datasets", columns, [_dataset_row(s) for s in specs])


@saved_datasets.command("describe", help="Show one saved dataset in full.")
@click.argument("name")
@output_option
@pass_ctx
def saved_datasets_describe(ctx: Context, name: str, output: str) -> None:
    spec = ctx.store.get_saved_dataset(name).to_spec()
    if output == "json":
        print_json(spec)
    else:
        print_kv(f"Saved dataset '{name}'", _kv(spec))
