"""The UI app over a FeatureStore with the server's key store: for `potluck ui` and `potluck serve --ui`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette

from potluck.server.settings import ServerSettings
from potluck.ui.app import create_ui_app

if TYPE_CHECKING:
    from potluck.server.offload import Offload
    from potluck.store import FeatureStore

UI_PATH = "/ui"


def build_ui(store: FeatureStore, settings: ServerSettings, offload: Offload | None = None) -> Starlette:
    keys = None
    if settings.auth_enabled:
        from potluck.server.auth import ApiKeyStore, AuditLog, ServerTables

        tables = ServerTables(store.config.registry_url, store.project, store.config.registry.timeouts())
        keys = ApiKeyStore(tables, AuditLog(tables), cache_seconds=settings.key_cache_seconds)
    return create_ui_app(store, settings, keys=keys, offload=offload)


def mount_ui(server_app: Starlette, store: FeatureStore, settings: ServerSettings, offload: Offload) -> None:
    """Serve the UI under /ui of the feature server's app, its blocking reads in the server's `offload`."""
    from starlette.routing import Mount

    server_app.router.routes.append(Mount(UI_PATH, app=build_ui(store, settings, offload)))
