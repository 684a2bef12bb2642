"""`feature_store.yaml`: reading, `${ENV}` interpolation and validation with pydantic.

The file is parsed first (duplicate keys refused), then `${NAME}` and `${NAME:-default}` are
replaced inside string values only, each result a string as it is (never parsed as YAML). A key
whose type is not a string (`port: ${PORT}`) is validated from that string. Errors never show a
substituted value.
"""

from __future__ import annotations

import os
import re
import typing
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from potluck.definitions.errors import ConfigError, ConfigKeyWarning, suggestion
from potluck.monitoring.config import MonitoringConfig
from potluck.offline.postgres_config import PostgreSQLOfflineStoreConfig
from potluck.offline.spark_config import SparkOfflineStoreConfig
from potluck.online.dynamodb_config import DynamoDBOnlineStoreConfig
from potluck.online.redis_config import RedisOnlineStoreConfig
from potluck.online.remote import RemoteOnlineStoreConfig
from potluck.repo.feast_keys import feast_keys_of, translate
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
    connect_timeout_seconds: float = Field(default=10.0, gt=0, le=3600, allow_inf_nan=False)

    def timeouts(self) -> Timeouts:
        from potluck.registry.dbapi import Timeouts

        return Timeouts(
            lock=self.lock_timeout_seconds,
            statement=self.statement_timeout_seconds,
            connect=self.connect_timeout_seconds,
        )


class DuckDBOfflineStoreConfig(_Strict):
    type: Literal["duckdb", "file", "dask"] = "duckdb"  # Feast's names of its embedded store: the same here
    memory_limit: str | None = None  # e.g. "4GB"; unset: 40% of memory, at least 1GB (beyond it DuckDB spills)
    temp_directory: str | None = None  # where DuckDB spills over the memory limit; unset: under the system temp dir
    threads: int | None = Field(default=None, ge=1)


OfflineStoreConfig = Annotated[
    DuckDBOfflineStoreConfig | SparkOfflineStoreConfig | PostgreSQLOfflineStoreConfig,
    Field(discriminator="type"),
]


class SqliteOnlineStoreConfig(_Strict):
    type: Literal["sqlite"] = "sqlite"
    path: str = "data/online_store.db"
    busy_timeout_ms: int = Field(default=5000, ge=0)


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
    sslkey_path: str | None = None
    sslcert_path: str | None = None
    sslrootcert_path: str | None = None
    keepalives_idle: int | None = Field(default=None, ge=1)  # seconds before TCP keepalive probes (default 5)
    min_conn: int = Field(default=1, ge=0)
    max_conn: int = Field(default=10, ge=1)
    connect_timeout_seconds: int = Field(default=3, ge=1)
    statement_timeout_seconds: float = Field(default=2.0, gt=0)  # reads
    write_timeout_seconds: float = Field(default=300.0, gt=0)  # each write or DDL statement
    pool_timeout_seconds: float = Field(default=3.0, gt=0)  # waiting for a free connection


OnlineStoreConfig = Annotated[
    SqliteOnlineStoreConfig
    | RedisOnlineStoreConfig
    | PostgresOnlineStoreConfig
    | RemoteOnlineStoreConfig
    | DynamoDBOnlineStoreConfig,
    Field(discriminator="type"),
]


def online_store_models() -> dict[str, type[BaseModel]]:
    """Each online store type of `OnlineStoreConfig` -> its config model."""
    union = typing.get_args(OnlineStoreConfig)[0]
    return {typing.get_args(m.model_fields["type"].annotation)[0]: m for m in typing.get_args(union)}


def online_store_types() -> tuple[str, ...]:
    return tuple(online_store_models())


def offline_store_models() -> dict[str, type[BaseModel]]:
    """Each offline store type of `OfflineStoreConfig` -> its config model."""
    union = typing.get_args(OfflineStoreConfig)[0]
    return {kind: m for m in typing.get_args(union) for kind in typing.get_args(m.model_fields["type"].annotation)}


class MaterializationConfig(_Strict):
    # how far past this machine's clock a materialization end may be (ends beyond are refused)
    max_clock_skew_seconds: float = Field(default=300.0, ge=0, allow_inf_nan=False)
    # rows per write to the online store (unset: 50,000); Feast's name
    online_write_batch_size: int | None = Field(default=None, gt=0)


class StreamDeadLetterConfig(_Strict):
    path: str = "data/dead_letter"  # a folder, resolved against the repository
    topic: str | None = None  # a Kafka topic to send dead letters to instead of the folder


class StreamSourceConfig(_Strict):
    """Per stream source overrides (`stream.sources.<name>`)."""

    auto_offset_reset: Literal["earliest", "latest"] | None = None
    settings: dict[str, Any] = Field(default_factory=dict)


class StreamConfig(_Strict):
    """The stream worker (`potluck stream run`, docs/streaming.md)."""

    consumer_group: str | None = None  # default: potluck-<project>
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    batch_size: int = Field(default=5000, ge=1, le=1_000_000)  # messages per batch at most
    batch_interval_seconds: float = Field(default=0.5, gt=0, le=3600)  # a batch ends after this long
    offline: bool = True  # append consumed events to the views' batch sources
    dead_letter: StreamDeadLetterConfig = StreamDeadLetterConfig()
    settings: dict[str, Any] = Field(default_factory=dict)  # client settings merged over each source's own
    sources: dict[str, StreamSourceConfig] = Field(default_factory=dict)

    def group(self, project: str) -> str:
        return self.consumer_group or f"potluck-{project}"


class BatchEngineConfig(_Strict):
    type: Literal["local"] = "local"


class SparkEngineConfig(_Strict):
    """`batch_engine: {type: spark.engine}`: latest rows computed in Spark, written from its executors."""

    type: Literal["spark.engine"]
    # partitions the online writes are spread over (0: as Spark's plan leaves them); Feast's name
    partitions: int = Field(default=0, ge=0)
    # settings of the Spark session, over those of an already running one; Feast's name
    spark_conf: dict[str, str | int | float | bool] = Field(default_factory=dict)


EngineConfig = Annotated[BatchEngineConfig | SparkEngineConfig, Field(discriminator="type")]


class RepoConfig(_Strict):
    project: str
    project_description: str | None = None
    registry: RegistryConfig = RegistryConfig()
    provider: Literal["local"] = "local"
    offline_store: OfflineStoreConfig = DuckDBOfflineStoreConfig()
    online_store: OnlineStoreConfig = SqliteOnlineStoreConfig()
    batch_engine: EngineConfig = BatchEngineConfig()
    materialization: MaterializationConfig = MaterializationConfig()
    entity_key_serialization_version: Literal[3] = 3
    # Feast's `auth.type` as given (None: not given); `oidc` settings move to feature_server.oidc
    auth: Literal["no_auth", "oidc"] | None = None
    feature_server: ServerSettings | None = None
    monitoring: MonitoringConfig = MonitoringConfig()
    stream: StreamConfig = StreamConfig()
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

    @field_validator("offline_store", "online_store", "batch_engine", mode="before")
    @classmethod
    def _store_from_string(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            return {"type": value}
        if info.field_name == "online_store" and isinstance(value, dict) and "type" not in value:
            return {**value, "type": "sqlite"}
        if info.field_name == "offline_store" and isinstance(value, dict) and "type" not in value:
            return {**value, "type": "duckdb"}
        return value

    @model_validator(mode="before")
    @classmethod
    def _feast_keys(cls, data: Any, info: ValidationInfo) -> Any:
        """Feast's keys, when the config is built in Python (a file is translated before validation)."""
        if isinstance(data, dict) and not (info.context or {}).get("translated"):
            return translate(data, FEATURE_STORE_YAML, online_store_types())
        return data

    @model_validator(mode="after")
    def _folders_exist(self) -> RepoConfig:
        """A SQLite file's folder is created inside the repository only: elsewhere it must exist."""
        paths = [("registry.path", self.registry_url)]
        if isinstance(self.online_store, SqliteOnlineStoreConfig):
            paths.append(("online_store.path", "sqlite:///" + self.resolve(self.online_store.path)))
        repo = self.repo_path.resolve()
        for key, url in paths:
            if not url.startswith("sqlite:///"):
                continue
            folder = Path(url[len("sqlite:///") :]).parent
            if not folder.is_dir() and not folder.is_relative_to(repo):
                raise ValueError(
                    f"{key}: the folder {folder} does not exist and is outside the repository {repo}; "
                    "create it, or use a path inside the repository (e.g. data/registry.db)"
                )
        return self

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
    return ".".join(_parts(loc)) or "(top level)"


def _parts(loc: tuple[int | str, ...]) -> list[str]:
    """The key path of an error location, without the online store union's tag."""
    parts = [str(p) for p in loc]
    if (len(parts) > 1 and parts[0] == "online_store" and parts[1] in online_store_types()) or (
        len(parts) > 1 and parts[0] == "offline_store" and parts[1] in offline_store_models()
    ):
        del parts[1]
    return parts


def _known_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The keys Potluck and Feast accept in the mapping that holds the key at `loc`."""
    model: Any = RepoConfig
    parts = [str(p) for p in loc[:-1]]
    for i, part in enumerate(parts):
        if i == 1 and parts[0] == "online_store":
            model = online_store_models().get(part)
            continue
        if i == 1 and parts[0] == "offline_store":
            model = offline_store_models().get(part)
            continue
        field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return []
        model = next((a for a in (field.annotation, *typing.get_args(field.annotation)) if _is_model(a)), None)
        if model is None and part == "online_store":
            model = SqliteOnlineStoreConfig
        if model is None and part == "offline_store":
            model = DuckDBOfflineStoreConfig
    if not _is_model(model):
        return []
    return sorted({*model.model_fields, *feast_keys_of(".".join(_parts(loc[:-1])))} - {"repo_path"})


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def format_validation_error(
    err: ValidationError, source: str, substituted: dict[tuple[str, ...], str] | None = None
) -> ConfigError:
    """One message naming every bad key; values from the environment are never shown."""
    secrets = sorted({v for v in (substituted or {}).values() if v}, key=len, reverse=True)
    lines = []
    for e in err.errors(include_url=False, include_input=False):
        key = _location(tuple(e["loc"]))
        if e["type"] == "extra_forbidden":
            name = str(e["loc"][-1])
            close = suggestion(name, _known_keys(tuple(e["loc"])))
            hint = close if close.startswith("Did you mean") else "remove it or check its spelling"
            lines.append(f"unknown key '{key}'; {hint}")
        elif e["type"] == "missing":
            lines.append(f"missing required key '{key}'")
        else:
            message = str(e["msg"]).removeprefix("Value error, ")
            if e["type"] == "value_error" and not e["loc"]:
                lines.append(message)
                continue
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
    data = dict(data)
    if "repo_path" in data:
        data.pop("repo_path")
        warnings.warn(
            f"{source}: key 'repo_path' has no effect: the repository is the folder of feature_store.yaml",
            ConfigKeyWarning,
            stacklevel=2,
        )
    data = translate(data, source, online_store_types())
    try:
        return RepoConfig.model_validate({**data, "repo_path": repo_path}, context={"translated": True})
    except ValidationError as err:
        raise format_validation_error(err, source, substituted) from None
