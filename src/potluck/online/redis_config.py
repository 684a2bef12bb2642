"""`online_store: type: redis`: the typed config section of the Redis online store.

`redis_type` picks the deployment: one server (`redis`), Redis Cluster (`redis_cluster`), or a
primary with replicas watched by Redis Sentinel (`redis_sentinel`). With Sentinel, the sentinels
are `sentinel_hosts` (else the nodes of `connection_string`, Feast's form) and `sentinel_master`
names the monitored primary; `password` / `username` are the data nodes' credentials and
`sentinel_password` / `sentinel_username` the sentinels' own.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from potluck.online.redis_connection import DEFAULT_SENTINEL_PORT, parse_connection_string


class RedisOnlineStoreConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    type: Literal["redis"]
    connection_string: str = "localhost:6379"
    redis_type: Literal["redis", "redis_cluster", "redis_sentinel"] = "redis"
    password: str | None = None
    username: str | None = None
    ssl: bool = False
    ssl_ca_certs: str | None = None
    key_ttl_seconds: int | None = Field(default=None, ge=1)
    key_prefix: str = ""
    db: int = Field(default=0, ge=0)
    # Sentinel (redis_type: redis_sentinel)
    sentinel_master: str = "mymaster"  # Feast's name and default
    sentinel_hosts: list[str] | None = None  # "host:port" of each sentinel; unset: connection_string's nodes
    sentinel_password: str | None = None
    sentinel_username: str | None = None
    # How long a write keeps retrying while no primary answers (a failover): it then fails (503).
    # Reads never wait: they fail at once and follow the new primary as soon as it is elected.
    failover_wait_seconds: float = Field(default=5.0, ge=0, le=600)
    # Acknowledge a write only once this many replicas have it too (Redis WAIT), within wait_timeout_ms.
    wait_for_replicas: int = Field(default=0, ge=0)
    wait_timeout_ms: int = Field(default=1000, ge=1)

    @model_validator(mode="after")
    def _check(self) -> RedisOnlineStoreConfig:
        if self.redis_type != "redis_sentinel":
            for name in ("sentinel_hosts", "sentinel_password", "sentinel_username"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} is only used with redis_type: redis_sentinel")
        elif self.sentinel_hosts is not None:
            if not self.sentinel_hosts:
                raise ValueError("sentinel_hosts is empty: list the sentinels as 'host:port'")
            parse_connection_string(",".join(self.sentinel_hosts), "online_store.sentinel_hosts")
        if self.wait_for_replicas and self.redis_type == "redis_cluster":
            raise ValueError("wait_for_replicas is not supported with redis_type: redis_cluster")
        return self

    def sentinel_nodes(self) -> list[tuple[str, int]]:
        """The sentinels' (host, port) pairs (port 26379 when a host gives none)."""
        if self.sentinel_hosts is not None:
            text, where = ",".join(self.sentinel_hosts), "online_store.sentinel_hosts"
        else:
            text, where = self.connection_string, "online_store.connection_string"
        nodes, _ = parse_connection_string(text, where, DEFAULT_SENTINEL_PORT)
        return nodes
