"""Feast's Redis connection strings: "host:port[,host:port...][,key=value...]".

Shared by the Redis online store and Redis Streams sources, so both read the same options
(`password`, `username`, `ssl`, `db`, `socket_timeout`, ...). No client is imported here.
"""

from __future__ import annotations

from potluck.definitions.errors import ConfigError

DEFAULT_PORT = 6379
DEFAULT_CONNECT_TIMEOUT = 3.0
DEFAULT_RETRIES = 1
DEFAULT_SOCKET_TIMEOUT = 3.0


def parse_connection_string(
    text: str, where: str = "online_store.connection_string"
) -> tuple[list[tuple[str, int]], dict[str, str]]:
    """Split Feast's "host:port[,host:port...][,key=value...]" into nodes and options.

    `where` names the setting in errors.
    """
    nodes: list[tuple[str, int]] = []
    options: dict[str, str] = {}
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        if "=" in part:
            key, _, value = part.partition("=")
            options[key.strip().lower()] = value.strip()
            continue
        host, sep, port = part.rpartition(":")
        if not sep:
            host, port = part, str(DEFAULT_PORT)
        try:
            nodes.append((host.strip("[]") or "localhost", int(port)))
        except ValueError:
            raise ConfigError(f"{where}: bad port in '{part}'") from None
    if not nodes:
        raise ConfigError(f"{where}: no host:port given")
    return nodes, options


def seconds_option(
    options: dict[str, str], name: str, default: float, where: str = "online_store.connection_string"
) -> float:
    raw = options.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise ConfigError(f"{where}: {name}={raw!r} must be a positive number of seconds")
    return value


def count_option(
    options: dict[str, str], name: str, default: int, where: str = "online_store.connection_string"
) -> int:
    raw = options.get(name, str(default))
    if not raw.isdigit():
        raise ConfigError(f"{where}: {name}={raw!r} must be a whole number >= 0")
    return int(raw)


def truthy(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}
