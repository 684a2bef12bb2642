"""`feature_store.yaml`: reading, `${ENV}` interpolation and validation with pydantic.

The file is parsed first (duplicate keys refused), then `${NAME}` and `${NAME:-default}` are
replaced inside string values only, each result a string as it is (never parsed as YAML). A key
whose type is not a string (`port: ${PORT}`) is validated from that string. Errors never show a
substituted value.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from potluck.definitions.errors import ConfigError
from potluck.online.remote import RemoteOnlineStoreConfig
from potluck.server.settings import ServerSettings

if TYPE_CHECKING:
    from potluck.registry.dbapi import Timeouts

FEATURE_STORE_YAML = "feature_store.yaml"
MAX_PROJECT_LENGTH = 64  # it prefixes every online table and key of the project
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class RegistryConfig(_Strict):
    path: str = "data/registry.db"
    registry_type: Literal["sql", "file"] = "sql"
    cache_ttl_seconds: float = Field(default=5.0, ge=0)
    identity: str | None = None  # recorded as the author of applies; default: the OS user
    # Bounds on waits of registry sessions: another session's lock (SQLite: busy timeout), one statement.
    lock_timeout_seconds: float = Field(default=5.0, gt=0, le=3600, allow_inf_nan=False)
    statement_timeout_seconds: float = Field(default=30.0, gt=0, le=86400, allow_inf_nan=False)

    def timeouts(self) -> Timeouts:
        from potluck.registry.dbapi import Timeouts

        return Timeouts(lock=self.lock_timeout_seconds, statement=self.statement_timeout_seconds)


class DuckDBOfflineStoreConfig(_Strict):
    type: Literal["duckdb", "file"] = "duckdb"
    memory_limit: str | None = None  # e.g. "4GB"; unset: 40% of memory, at least 1GB (beyond it DuckDB spills)
    temp_directory: str | None = None  # where DuckDB spills over the memory limit; unset: under the system temp dir
    threads: int | None = Field(default=None, ge=1)


class SqliteOnlineStoreConfig(_Strict):
    type: Literal["sqlite"] = "sqlite"
    path: str = "data/online_store.db"
    busy_timeout_ms: int = Field(default=5000, ge=0)


class RedisOnlineStoreConfig(_Strict):
    type: Literal["redis"]
    connection_string: str = "localhost:6379"
    redis_type: Literal["redis", "redis_cluster"] = "redis"
    password: str | None = None
    username: str | None = None
    ssl: bool = False
    ssl_ca_certs: str | None = None
    key_ttl_seconds: int | None = Field(default=None, ge=1)
    key_prefix: str = ""
    db: int = Field(default=0, ge=0)


class PostgresOnlineStoreConfig(_Strict):
    type: Literal["postgres"]
    dsn: str | None = None
    host: str = "localhost"
    port: int = 5432
    database: str = "postgres"
    db_schema: str = "public"
    user: str | None = None
    password: str | None = None
    sslmode: str | None = None
    min_conn: int = Field(default=1, ge=0)
    max_conn: int = Field(default=10, ge=1)
    connect_timeout_seconds: int = Field(default=3, ge=1)
    statement_timeout_seconds: float = Field(default=2.0, gt=0)  # reads
    write_timeout_seconds: float = Field(default=300.0, gt=0)  # each write or DDL statement
    pool_timeout_seconds: float = Field(default=3.0, gt=0)  # waiting for a free connection


OnlineStoreConfig = Annotated[
    SqliteOnlineStoreConfig | RedisOnlineStoreConfig | PostgresOnlineStoreConfig | RemoteOnlineStoreConfig,
    Field(discriminator="type"),
]


class MaterializationConfig(_Strict):
    # how far past this machine's clock a materialization end may be (ends beyond are refused)
    max_clock_skew_seconds: float = Field(default=300.0, ge=0, allow_inf_nan=False)


class RepoConfig(_Strict):
    project: str
    registry: RegistryConfig = RegistryConfig()
    provider: Literal["local"] = "local"
    offline_store: DuckDBOfflineStoreConfig = DuckDBOfflineStoreConfig()
    online_store: OnlineStoreConfig = SqliteOnlineStoreConfig()
    materialization: MaterializationConfig = MaterializationConfig()
    entity_key_serialization_version: int = Field(default=3, ge=1)
    feature_server: ServerSettings | None = None
    repo_path: Path = Path(".")

    @field_validator("project")
    @classmethod
    def _project_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", value):
            raise ValueError("must start with a letter and hold only letters, digits and '_'")
        if len(value) > MAX_PROJECT_LENGTH:
            raise ValueError(f"is {len(value)} characters long; use at most {MAX_PROJECT_LENGTH}")
        return value

    @field_validator("registry", mode="before")
    @classmethod
    def _registry_from_string(cls, value: Any) -> Any:
        return {"path": value} if isinstance(value, str) else value

    @field_validator("offline_store", "online_store", mode="before")
    @classmethod
    def _store_from_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"type": value}
        if isinstance(value, dict) and "type" not in value:
            return {**value, "type": "sqlite"} if "path" in value or not value else value
        return value

    @model_validator(mode="before")
    @classmethod
    def _ignore_feast_only_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for key in ("flags", "coerce_tz_aware"):
                data.pop(key, None)
        return data

    def resolve(self, path: str) -> str:
        """A path from the config, resolved against the repository folder unless absolute or a URL."""
        if "://" in path or os.path.isabs(path):
            return path
        return str((self.repo_path / path).resolve())

    @property
    def registry_url(self) -> str:
        path = self.registry.path
        if path.startswith(("sqlite:", "postgresql:", "postgres:", "postgresql+psycopg:")):
            if path.startswith("sqlite:///") and not path.startswith("sqlite:////"):
                return "sqlite:///" + self.resolve(path[len("sqlite:///") :])
            return path
        return "sqlite:///" + self.resolve(path)


def interpolate_env(text: str, source: str, where: str = "") -> str:
    """`text` with `${NAME}` and `${NAME:-default}` replaced by environment variables."""

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        at = f" in key '{where}'" if where else ""
        raise ConfigError(f"{source}: environment variable '{name}' is not set (used as ${{{name}}}{at})")

    return _ENV.sub(replace, text)


def interpolate_values(
    data: Any, source: str, substituted: dict[tuple[str, ...], str], path: tuple[str, ...] = ()
) -> Any:
    """`data` with the environment substituted in every string value; `substituted` collects what changed."""
    if isinstance(data, dict):
        return {k: interpolate_values(v, source, substituted, (*path, str(k))) for k, v in data.items()}
    if isinstance(data, list):
        return [interpolate_values(v, source, substituted, (*path, str(i))) for i, v in enumerate(data)]
    if isinstance(data, str) and "${" in data:
        value = interpolate_env(data, source, ".".join(path))
        if value != data:
            substituted[path] = value
        return value
    return data


def _unique_key_loader() -> type[Any]:
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        """A SafeLoader that refuses a key given twice in one mapping (YAML would keep the last)."""

        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if isinstance(key, str) and key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key '{key}' is given twice in one mapping; keep one", key_node.start_mark
                    )
                seen.add(key if isinstance(key, str) else id(key_node))
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def _location(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if not (isinstance(p, str) and p in {"sqlite", "redis", "postgres"})]
    return ".".join(parts) or "(top level)"


def format_validation_error(
    err: ValidationError, source: str, substituted: dict[tuple[str, ...], str] | None = None
) -> ConfigError:
    """One message naming every bad key; values from the environment are never shown."""
    secrets = sorted({v for v in (substituted or {}).values() if v}, key=len, reverse=True)
    lines = []
    for e in err.errors(include_url=False, include_input=False):
        key = _location(tuple(e["loc"]))
        if e["type"] == "extra_forbidden":
            lines.append(f"unknown key '{key}'; remove it or check its spelling")
        elif e["type"] == "missing":
            lines.append(f"missing required key '{key}'")
        else:
            message = str(e["msg"])
            for secret in secrets:
                message = message.replace(secret, "<from the environment>")
            lines.append(f"key '{key}': {message}")
    unique = list(dict.fromkeys(lines))
    return ConfigError(f"{source}: " + "; ".join(unique))


def load_config(repo_path: str | Path, fs_yaml_file: str | Path | None = None) -> RepoConfig:
    """Read and validate `feature_store.yaml` of a repository."""
    import yaml

    repo = Path(repo_path).resolve()
    yaml_path = Path(fs_yaml_file) if fs_yaml_file else repo / FEATURE_STORE_YAML
    if not yaml_path.is_absolute():
        yaml_path = (Path.cwd() / yaml_path).resolve()
    if not yaml_path.is_file():
        raise ConfigError(
            f"{yaml_path}: not found. A feature repository needs a {FEATURE_STORE_YAML}; "
            "create one with `potluck init` or pass --feature-store-yaml"
        )
    try:
        data = yaml.load(yaml_path.read_text(encoding="utf-8"), Loader=_unique_key_loader())
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise ConfigError(f"{yaml_path}: not valid YAML{at}: {err.problem or err.context}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{yaml_path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{yaml_path}: must be a mapping of keys such as 'project' and 'registry'")
    substituted: dict[tuple[str, ...], str] = {}
    data = interpolate_values(data, str(yaml_path), substituted)
    return config_from_dict(data, repo, str(yaml_path), substituted)


def config_from_dict(
    data: dict[str, Any],
    repo_path: Path,
    source: str = FEATURE_STORE_YAML,
    substituted: dict[tuple[str, ...], str] | None = None,
) -> RepoConfig:
    if "repo_path" in data:
        raise ConfigError(f"{source}: unknown key 'repo_path'")
    try:
        return RepoConfig.model_validate({**data, "repo_path": repo_path})
    except ValidationError as err:
        raise format_validation_error(err, source, substituted) from None
