"""`serve` (the HTTP feature server) and `auth` (API keys and the audit log)."""

from __future__ import annotations

import os
from typing import Any

import click

from potluck.cli.main import Context, cli, output_option, pass_ctx
from potluck.cli.output import console_print, print_json, print_table


def _server_settings(ctx: Context, overrides: dict[str, Any]) -> Any:
    """Settings from feature_store.yaml's `feature_server:` (when present), then the given flags."""
    from potluck.server.settings import ServerSettings

    base = getattr(ctx.store.config, "feature_server", None)
    if base is None:
        data: dict[str, Any] = {}
    elif isinstance(base, ServerSettings):
        data = base.model_dump()
    else:
        data = dict(base.model_dump() if hasattr(base, "model_dump") else base)
    data.update({k: v for k, v in overrides.items() if v is not None})
    return ServerSettings.model_validate(data)


def _notice(message: str) -> None:
    click.echo(f"Notice: {message}", err=True)


def _uvicorn_limits(
    workers: int,
    worker_connections: int | None,
    max_requests: int | None,
    max_requests_jitter: int | None,
    keep_alive_timeout: int | None,
) -> dict[str, Any]:
    """uvicorn settings for Feast's gunicorn-style options; only those given are set."""
    limits: dict[str, Any] = {}
    if worker_connections is not None:
        limits["limit_concurrency"] = worker_connections
    if keep_alive_timeout is not None:
        limits["timeout_keep_alive"] = keep_alive_timeout
    if max_requests is not None:
        if workers > 1:
            limits["limit_max_requests"] = max_requests
            if max_requests_jitter is not None:
                limits["limit_max_requests_jitter"] = max_requests_jitter
        else:
            _notice("--max-requests has no effect with one worker (nothing would restart it); use --workers 2 or more")
    elif max_requests_jitter is not None:
        _notice("--max-requests-jitter has no effect without --max-requests")
    return limits


@cli.command(help="Run the HTTP feature server.")
@click.option("--host", "-h", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("--port", "-p", type=int, default=None, help="Port (default 6566).")
@click.option("--type", "-t", "type_", default="http", show_default=True, help="Server type; only http is served.")
@click.option("--workers", "-w", type=int, default=None, help="Worker processes (default 1; -1: 2 x cores + 1).")
@click.option("--auth", type=click.Choice(["auto", "on", "off"]), default=None, help="auto: on unless loopback.")
@click.option(
    "--key",
    "-k",
    "--tls-key-file",
    "tls_key_file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="TLS private key (with --cert).",
)
@click.option(
    "--cert",
    "-c",
    "--tls-cert-file",
    "tls_cert_file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="TLS certificate (with --key).",
)
@click.option("--no-access-log", is_flag=True, help="Do not log every request.")
@click.option("--worker-connections", type=int, default=None, help="Most connections per worker; beyond: 503.")
@click.option("--max-requests", type=int, default=None, help="Restart a worker after this many requests.")
@click.option("--max-requests-jitter", type=int, default=None, help="Up to this many more before the restart.")
@click.option("--keep-alive-timeout", type=int, default=None, help="Close idle keep-alive connections after (s).")
@click.option(
    "--registry_ttl_sec",
    "--registry-ttl-sec",
    "-r",
    "registry_ttl_sec",
    type=float,
    default=None,
    help="Re-read the registry after this many seconds (default: registry.cache_ttl_seconds).",
)
@click.option("--metrics", "-m", is_flag=True, help="Accepted: /metrics is always served on the server's port.")
@click.option("--ui", "ui", is_flag=True, default=None, help="Also serve the web UI under /ui.")
@pass_ctx
def serve(
    ctx: Context,
    host: str | None,
    port: int | None,
    type_: str,
    workers: int | None,
    auth: str | None,
    tls_key_file: str | None,
    tls_cert_file: str | None,
    no_access_log: bool,
    worker_connections: int | None,
    max_requests: int | None,
    max_requests_jitter: int | None,
    keep_alive_timeout: int | None,
    registry_ttl_sec: float | None,
    metrics: bool,
    ui: bool | None,
) -> None:
    import uvicorn

    from potluck.server.factory import ENV_REGISTRY_TTL, ENV_REPO, ENV_SETTINGS, ENV_YAML

    if type_.lower() != "http":
        raise click.BadParameter(
            f"'{type_}' is not served here; the feature server speaks http only", param_hint="--type"
        )
    if workers == -1:
        workers = 2 * (os.cpu_count() or 1) + 1
    if registry_ttl_sec is not None and registry_ttl_sec < 0:
        raise click.BadParameter("must be 0 or more seconds", param_hint="--registry_ttl_sec")
    if metrics:
        _notice("--metrics: Prometheus metrics are always served at /metrics on the server's own port")
    settings = _server_settings(
        ctx,
        {
            "host": host,
            "port": port,
            "workers": workers,
            "auth": auth,
            "tls_key_file": tls_key_file,
            "tls_cert_file": tls_cert_file,
            "access_log": False if no_access_log else None,
            "ui": ui or None,
        },
    )
    limits = _uvicorn_limits(
        settings.workers, worker_connections, max_requests, max_requests_jitter, keep_alive_timeout
    )
    os.environ[ENV_REPO] = str(ctx.store.repo_path)
    if ctx.fs_yaml:
        os.environ[ENV_YAML] = os.path.abspath(ctx.fs_yaml)
    os.environ[ENV_SETTINGS] = settings.model_dump_json()
    if registry_ttl_sec is not None:
        os.environ[ENV_REGISTRY_TTL] = str(registry_ttl_sec)
    if ctx.store.config.auth == "no_auth" and settings.auth_enabled:
        why = f"{settings.host} is not a loopback address" if settings.auth == "auto" else "auth is set to on"
        click.echo(
            f"Note: auth.type no_auth in feature_store.yaml, but {why}, so requests need credentials; "
            'set feature_server.auth: "off" (or --auth off) to serve without',
            err=True,
        )
    scheme = "https" if settings.tls_cert_file else "http"
    click.echo(
        f"Serving project '{ctx.store.project}' on {scheme}://{settings.host}:{settings.port} "
        f"({settings.workers} worker(s), authentication {'on' if settings.auth_enabled else 'off'})",
        err=True,
    )
    uvicorn.run(
        "potluck.server.factory:build_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        ssl_keyfile=settings.tls_key_file,
        ssl_certfile=settings.tls_cert_file,
        access_log=settings.access_log,
        server_header=False,
        log_level="info",
        # httptools, with limits on request heads (size, count, time to send): see potluck.server.protocol
        http="potluck.server.protocol:HttpProtocol",
        **limits,
    )


@cli.group(help="API keys of the feature server and its audit log.")
def auth() -> None:
    pass


def _tables(ctx: Context) -> Any:
    from potluck.server.auth import ServerTables

    return ServerTables(ctx.store.config.registry_url, ctx.store.project, ctx.store.config.registry.timeouts())


def _actor() -> str:
    from potluck.registry.sql import default_identity

    return f"cli:{default_identity()}"


@auth.command("create-key", help="Create an API key; it is shown once and only its hash is stored.")
@click.option("--role", type=click.Choice(["reader", "writer", "admin", "metrics"]), required=True)
@click.option("--name", default="", help="A label for the key.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    help="Restrict to feature_service:NAME, feature_view:NAME or tag:KEY=VALUE; repeatable.",
)
@output_option
@pass_ctx
def create_key(ctx: Context, role: str, name: str, scopes: tuple[str, ...], output: str) -> None:
    from potluck.server.auth import ApiKeyStore, AuditLog

    tables = _tables(ctx)
    try:
        info, key = ApiKeyStore(tables, AuditLog(tables)).create(role, _actor(), name=name, scopes=list(scopes))
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--scope") from None
    finally:
        tables.close()
    if output == "json":
        print_json({"id": info.id, "key": key, "role": role, "name": name, "scopes": list(info.scopes)})
        return
    click.echo(key)
    click.echo(
        f"Created key {info.id} (role {role}, scopes {', '.join(info.scopes) or 'all'}). "
        "Store the key now: it is not shown again.",
        err=True,
    )


@auth.command("revoke-key", help="Revoke an API key by its id.")
@click.argument("key_id")
@pass_ctx
def revoke_key(ctx: Context, key_id: str) -> None:
    from potluck.server.auth import ApiKeyStore, AuditLog

    tables = _tables(ctx)
    try:
        ApiKeyStore(tables, AuditLog(tables)).revoke(key_id, _actor())
    finally:
        tables.close()
    console_print(f"Revoked key {key_id}. Running servers stop accepting it within their key cache time.")


@auth.command("list-keys", help="List API keys (never their secrets).")
@click.option("--all", "show_all", is_flag=True, help="Include revoked keys.")
@output_option
@pass_ctx
def list_keys(ctx: Context, show_all: bool, output: str) -> None:
    from potluck.server.auth import ApiKeyStore

    tables = _tables(ctx)
    try:
        keys = [k for k in ApiKeyStore(tables).list() if show_all or k.active]
    finally:
        tables.close()
    if output == "json":
        print_json(
            [
                {
                    "id": k.id,
                    "name": k.name,
                    "role": k.role,
                    "scopes": list(k.scopes),
                    "created_at": k.created_at,
                    "created_by": k.created_by,
                    "revoked_at": k.revoked_at,
                }
                for k in keys
            ]
        )
        return
    rows = [
        [
            k.id,
            k.name,
            k.role,
            ", ".join(k.scopes) or "all",
            k.created_at.isoformat(timespec="seconds"),
            k.created_by,
            k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else "",
        ]
        for k in keys
    ]
    print_table("API keys", ["id", "name", "role", "scopes", "created", "by", "revoked"], rows)


@auth.command("audit-log", help="Show admin actions: materializations and key changes, newest first.")
@click.option("--limit", "-n", type=int, default=50, show_default=True)
@output_option
@pass_ctx
def audit_log(ctx: Context, limit: int, output: str) -> None:
    from potluck.server.auth import AuditLog

    tables = _tables(ctx)
    try:
        records = AuditLog(tables).records(limit)
    finally:
        tables.close()
    if output == "json":
        print_json([{**r.__dict__} for r in records])
        return
    rows = [[r.at.isoformat(timespec="seconds"), r.actor, r.action, r.resource, r.outcome] for r in records]
    print_table("Audit log", ["time", "actor", "action", "resource", "outcome"], rows)
