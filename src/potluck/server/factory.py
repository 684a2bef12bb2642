"""The app factory `potluck serve` hands to uvicorn (each worker process calls it once).

It reads its inputs from the environment so that `--workers N` works:
POTLUCK_REPO_PATH (default: the working directory), POTLUCK_FS_YAML (optional) and
POTLUCK_SERVER_SETTINGS (a JSON `ServerSettings`; default: the defaults) and
POTLUCK_REGISTRY_TTL_SECONDS (optional: overrides `registry.cache_ttl_seconds`).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from potluck.definitions.errors import ConfigKeyWarning
from potluck.server.settings import ServerSettings

ENV_REPO = "POTLUCK_REPO_PATH"
ENV_YAML = "POTLUCK_FS_YAML"
ENV_SETTINGS = "POTLUCK_SERVER_SETTINGS"
ENV_REGISTRY_TTL = "POTLUCK_REGISTRY_TTL_SECONDS"


def settings_from_env() -> ServerSettings:
    raw = os.environ.get(ENV_SETTINGS)
    return ServerSettings.model_validate_json(raw) if raw else ServerSettings()


def build_app() -> Any:
    from potluck.repo.config import load_config
    from potluck.server.app import create_app
    from potluck.server.auth import ApiKeyStore, AuditLog, ServerTables
    from potluck.server.offload import Offload
    from potluck.server.store_backend import StoreBackend  # type: ignore[import-not-found,unused-ignore]
    from potluck.store import FeatureStore

    settings = settings_from_env()
    with warnings.catch_warnings():
        if os.environ.get(ENV_SETTINGS):  # started by `potluck serve`, which showed them once
            warnings.simplefilter("ignore", ConfigKeyWarning)
        config = load_config(Path(os.environ.get(ENV_REPO) or Path.cwd()), os.environ.get(ENV_YAML))
    ttl = os.environ.get(ENV_REGISTRY_TTL)
    if ttl is not None:
        registry = config.registry.model_copy(update={"cache_ttl_seconds": float(ttl)})
        config = config.model_copy(update={"registry": registry})
    store = FeatureStore(config=config)
    tables = ServerTables(store.config.registry_url, store.project, store.config.registry.timeouts())
    audit = AuditLog(tables)
    keys = ApiKeyStore(tables, audit, cache_seconds=settings.key_cache_seconds) if settings.auth_enabled else None
    offload = Offload(settings.backend_threads, settings.backend_timeout_seconds)
    app = create_app(StoreBackend(store, offload), settings, keys=keys, audit=audit, offload=offload)
    if settings.ui:
        from potluck.ui.serve import mount_ui

        mount_ui(app.app, store, settings, offload)
    return app
