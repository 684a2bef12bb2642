"""`potluck ui`: the web UI over the repository's registry and monitoring data."""

from __future__ import annotations

import click

from potluck.cli.main import Context, cli, pass_ctx
from potluck.cli.server_cmds import _server_settings


@cli.command(help="Run the web UI (read-only: definitions, lineage, freshness, statistics, drift, skew).")
@click.option("--host", "-h", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", "-p", type=int, default=8888, show_default=True, help="Port.")
@click.option("--root-path", default="", help="Path prefix when served behind a proxy, e.g. /potluck.")
@click.option("--auth", type=click.Choice(["auto", "on", "off"]), default=None, help="auto: on unless loopback.")
@pass_ctx
def ui(ctx: Context, host: str, port: int, root_path: str, auth: str | None) -> None:
    import uvicorn

    from potluck.ui.serve import build_ui

    if root_path and (not root_path.startswith("/") or root_path.endswith("/")):
        raise click.BadParameter(
            "start it with '/' and do not end it with '/', e.g. /potluck", param_hint="--root-path"
        )
    settings = _server_settings(ctx, {"host": host, "port": port, "auth": auth})
    app = build_ui(ctx.store, settings)
    click.echo(
        f"Web UI of project '{ctx.store.project}' on http://{settings.host}:{settings.port}{root_path}/ "
        f"(authentication {'on' if settings.auth_enabled else 'off'})",
        err=True,
    )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        root_path=root_path,
        ssl_keyfile=settings.tls_key_file,
        ssl_certfile=settings.tls_cert_file,
        access_log=settings.access_log,
        server_header=False,
        log_level="info",
    )
