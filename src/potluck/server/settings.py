"""Feature server settings (also accepted under `feature_server:` in feature_store.yaml)."""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MIB = 1024 * 1024
_ORIGIN = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s]+")


class OidcSettings(BaseModel):
    """Bearer tokens from an OpenID Connect provider, verified against its JWKS."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issuer: str | None = None  # required unless discovery_url is set (then: the discovery document's)
    audience: str
    # Where the keys are: one of a JWKS URL, a JWKS file, or the provider's discovery document
    # (`.../.well-known/openid-configuration`, fetched when first needed, for its jwks_uri and issuer).
    jwks_url: str | None = None
    jwks_file: str | None = None
    discovery_url: str | None = None
    # dotted paths, e.g. "realm_access.roles"; with several, a token's roles are those of all of them
    roles_claim: str | tuple[str, ...] = "roles"
    scopes_claim: str | None = "potluck_scopes"  # absent claim: unrestricted within the role
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"])
    leeway_seconds: float = Field(default=30.0, ge=0)
    jwks_cache_seconds: int = Field(default=300, ge=1)
    # A token naming a key the cached JWKS lacks refetches it, at most this often.
    jwks_refetch_seconds: float = Field(default=10.0, ge=0)
    jwks_timeout_seconds: float = Field(default=5.0, gt=0)
    verify_tls: bool = True  # of the provider's certificate when fetching keys (false: not verified)
    ca_cert_file: str | None = None  # CA bundle for the provider's certificate (default: the system's)

    @model_validator(mode="after")
    def _one_key_source(self) -> OidcSettings:
        if sum(x is not None for x in (self.jwks_url, self.jwks_file, self.discovery_url)) != 1:
            raise ValueError("set exactly one of jwks_url, jwks_file and discovery_url")
        if self.issuer is None and self.discovery_url is None:
            raise ValueError("set issuer (or discovery_url, whose document names it)")
        return self

    @property
    def roles_claims(self) -> tuple[str, ...]:
        return (self.roles_claim,) if isinstance(self.roles_claim, str) else self.roles_claim


# Feast's `feature_server.feature_logging` keys -> these settings (None: accepted, no effect here:
# files are written straight to the destination, and a request never waits for the queue).
_FEAST_LOGGING_KEYS: dict[str, str | None] = {
    "enabled": "feature_log_enabled",
    "queue_capacity": "feature_log_queue_rows",
    "write_to_disk_interval_secs": "feature_log_flush_interval_seconds",
    "flush_interval_secs": None,
    "emit_timeout_micro_secs": None,
}


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=6566, ge=0, le=65535)
    workers: int = Field(default=1, ge=1)
    auth: Literal["auto", "on", "off"] = "auto"  # auto: on unless bound to a loopback address
    max_body_bytes: int = Field(default=MIB, ge=1)
    max_entity_rows: int = Field(default=1000, ge=1)
    max_push_rows: int = Field(default=10_000, ge=1)
    tls_key_file: str | None = None
    tls_cert_file: str | None = None
    access_log: bool = True
    oidc: OidcSettings | None = None
    public_metrics: bool = False  # serve /metrics without credentials even when auth is on
    key_cache_seconds: float = Field(default=5.0, ge=0)  # how long a revoked key may still work
    retry_after_seconds: int = Field(default=1, ge=0)
    # Every backend call a request waits on (online read, readiness check, key lookup, registry
    # read) answers 503 after this long; the call itself is bounded by the backend's own timeouts.
    backend_timeout_seconds: float = Field(default=5.0, gt=0)
    backend_threads: int = Field(default=16, ge=1)  # worker threads per kind of backend call
    # Browser origins allowed to call the server; a request with any other Origin header gets 403.
    allowed_origins: tuple[str, ...] = ()
    max_header_bytes: int = Field(default=16 * 1024, ge=1024)  # request line and headers together
    max_headers: int = Field(default=100, ge=1)
    header_timeout_seconds: float = Field(default=10.0, gt=0)  # from connect (or request start) to headers read
    body_timeout_seconds: float = Field(default=30.0, gt=0)  # to read the whole request body
    # Feature logging (feature services with a logging_config): rows waiting to be written at most
    # (more are dropped and counted), and when the writer thread writes them out.
    feature_log_enabled: bool = True  # False: no service is logged, whatever its logging_config
    feature_log_queue_rows: int = Field(default=50_000, ge=1)
    feature_log_flush_rows: int = Field(default=10_000, ge=1)
    feature_log_flush_interval_seconds: float = Field(default=5.0, gt=0)
    feature_log_shutdown_timeout_seconds: float = Field(default=30.0, ge=0)  # to write what is queued at exit
    ui: bool = False  # also serve the web UI (read-only) under /ui, with the same authentication

    @model_validator(mode="before")
    @classmethod
    def _feast_feature_logging(cls, data: Any) -> Any:
        """Feast's `feature_logging:` section, spelled as its feature server reads it."""
        if not isinstance(data, dict) or "feature_logging" not in data:
            return data
        data = dict(data)
        section = data.pop("feature_logging")
        if section is None:
            return data
        if not isinstance(section, dict):
            raise ValueError("'feature_logging' must be a mapping")
        unknown = set(section) - set(_FEAST_LOGGING_KEYS)
        if unknown:
            raise ValueError(
                f"'feature_logging' has unknown keys {sorted(unknown)}; it takes {sorted(_FEAST_LOGGING_KEYS)}"
            )
        for feast_key, ours in _FEAST_LOGGING_KEYS.items():
            if feast_key in section and ours is not None:
                data.setdefault(ours, section[feast_key])
        return data

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        for origin in origins:
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(f"'{origin}' is not an origin: use scheme://host[:port], without a path")
        return tuple(o.lower() for o in origins)

    @model_validator(mode="after")
    def _tls_pair(self) -> ServerSettings:
        if (self.tls_key_file is None) != (self.tls_cert_file is None):
            raise ValueError("set both tls_key_file and tls_cert_file, or neither")
        return self

    @property
    def auth_enabled(self) -> bool:
        if self.auth == "auto":
            return not is_loopback(self.host)
        return self.auth == "on"


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
