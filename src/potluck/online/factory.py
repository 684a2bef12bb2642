"""Building the configured online store by name; built-in and plugin stores are found the same way."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, cast

from potluck.definitions.errors import ConfigError

if TYPE_CHECKING:
    from potluck.online.protocol import OnlineStore
    from potluck.repo.config import RepoConfig

ENTRY_POINT_GROUP = "potluck.online_stores"

# `type` in feature_store.yaml -> "module:Class". A class is called as Class(section, repo_config).
ONLINE_STORES: dict[str, str] = {
    "sqlite": "potluck.online.sqlite:SqliteOnlineStore",
    "redis": "potluck.online.redis:RedisOnlineStore",
    "postgres": "potluck.online.postgres:PostgresOnlineStore",
    "remote": "potluck.online.remote:RemoteOnlineStore",
    "dynamodb": "potluck.online.dynamodb:DynamoDBOnlineStore",
}


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def online_store_class(name: str) -> Any:
    """The class registered for an online store type, built-in first, then entry points."""
    if name in ONLINE_STORES:
        return _load(ONLINE_STORES[name])
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return ep.load()
    known = sorted({*ONLINE_STORES, *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))})
    raise ConfigError(f"online_store.type '{name}' is unknown; known types: {', '.join(known)}")


def create_online_store(config: RepoConfig) -> OnlineStore:
    """The online store described by `config.online_store`."""
    section = config.online_store
    cls = online_store_class(section.type)
    return cast("OnlineStore", cls(section, config))
