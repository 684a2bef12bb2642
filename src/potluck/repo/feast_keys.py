"""Feast's `feature_store.yaml` keys, translated to Potluck's before validation.

Each Feast key is one of: honoured (kept, or mapped to Potluck's key), accepted with one
`ConfigKeyWarning` saying it has no effect here (silently when its value asks for what Potluck
does anyway), or refused because it selects a store or service Potluck does not have (the error
names it and what to use instead). Keys neither Potluck nor Feast knows are left for validation,
which refuses them. Values are never shown in messages: some of these keys hold secrets.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from potluck.definitions.errors import ConfigError, ConfigKeyWarning

ONLINE_ALTERNATIVE = "use online_store.type sqlite (embedded), redis or postgres"
OFFLINE_ALTERNATIVE = "export its tables to Parquet files (FileSource) and use offline_store.type: duckdb (the default)"
VECTOR = "Potluck has no vector or text search"


@dataclass(frozen=True)
class Ignored:
    """A key without effect here; values in `neutral` ask for what Potluck does anyway (no warning)."""

    why: str
    neutral: tuple[Any, ...] = (None,)


# Feast's store types Potluck lacks -> what they are. Class paths of Feast's stores are accepted
# for the ones Potluck has (FEAST_CLASS_PATHS).
LACKING_ONLINE: dict[str, str] = {
    "aerospike": "Aerospike",
    "datastore": "Google Cloud Datastore",
    "snowflake.online": "Snowflake",
    "bigtable": "Google Bigtable",
    "hbase": "HBase",
    "cassandra": "Cassandra",
    "scylladb": "ScyllaDB",
    "mysql": "MySQL",
    "hazelcast": "Hazelcast",
    "elasticsearch": f"Elasticsearch ({VECTOR})",
    "singlestore": "SingleStore",
    "qdrant": f"Qdrant ({VECTOR})",
    "couchbase.online": "Couchbase",
    "milvus": f"Milvus ({VECTOR})",
    "mongodb": "MongoDB",
    "hybrid": "Feast's hybrid store (several online stores behind one)",
    "chronon": "Chronon",
    "remote": "a remote feature server client",
}
LACKING_OFFLINE: dict[str, str] = {
    "bigquery": "BigQuery",
    "redshift": "Amazon Redshift",
    "snowflake.offline": "Snowflake",
    "trino": "Trino",
    "athena": "Amazon Athena",
    "mssql": "SQL Server",
    "remote": "a remote offline server",
    "couchbase.offline": "Couchbase Columnar",
    "clickhouse": "ClickHouse",
    "ray": "Ray",
    "oracle": "Oracle",
    "chronon": "Chronon",
    "hybrid": "Feast's hybrid store",
}
LACKING_ENGINES: dict[str, str] = {
    "snowflake.engine": "Snowflake",
    "lambda": "AWS Lambda",
    "k8s": "Kubernetes jobs",
    "ray.engine": "Ray",
    "flink.engine": "Flink",
    "spark_application": "Spark applications",
    "trino.engine": "Trino",
    "trino": "Trino",
}
FEAST_CLASS_PATHS: dict[str, str] = {
    "feast.infra.online_stores.sqlite.SqliteOnlineStore": "sqlite",
    "feast.infra.online_stores.redis.RedisOnlineStore": "redis",
    "feast.infra.online_stores.postgres_online_store.postgres.PostgreSQLOnlineStore": "postgres",
    "feast.infra.online_stores.contrib.postgres.PostgreSQLOnlineStore": "postgres",
    "feast.infra.online_stores.dynamodb.DynamoDBOnlineStore": "dynamodb",
    "feast.infra.offline_stores.dask.DaskOfflineStore": "dask",
    "feast.infra.offline_stores.duckdb.DuckDBOfflineStore": "duckdb",
    "feast.infra.offline_stores.contrib.spark_offline_store.spark.SparkOfflineStore": "spark",
    "feast.infra.compute_engines.spark.compute.SparkComputeEngine": "spark.engine",
    "feast.infra.offline_stores.contrib.postgres_offline_store.postgres.PostgreSQLOfflineStore": "postgres",
}
OFFLINE_TYPES = ("duckdb", "file", "dask", "postgres")

_SEARCH = "no effect: " + VECTOR
_VECTOR_KEYS = {
    "vector_enabled": Ignored(_SEARCH, (None, False)),
    "similarity": Ignored(_SEARCH, (None, "cosine")),
    "text_search_enabled": Ignored(_SEARCH, (None, False)),
    "enable_openai_compatible_store": Ignored(_SEARCH, (None, False)),
}
ONLINE_KEYS: dict[str, dict[str, Ignored]] = {
    "sqlite": dict(_VECTOR_KEYS),
    "redis": {
        "client": Ignored("no effect: Potluck reads with its own Redis client", (None, "redis")),
        "full_scan_for_deletion": Ignored(
            "no effect: a deleted or reshaped view's rows are dropped by its generation, without a scan",
            (None, True, False),
        ),
        "skip_dedup": Ignored(
            "no effect: every write keeps the newer row atomically (a server-side script), at no extra read",
            (None, False),
        ),
    },
    "postgres": {
        **_VECTOR_KEYS,
        "conn_type": Ignored("no effect: Potluck always uses a pool of min_conn..max_conn connections", (None, "pool")),
        "max_batched_result_rows": Ignored("no effect: every request is read in one query per view"),
    },
    "dynamodb": {
        "warmup_connections": Ignored("no effect: connections open at the first call", (None, False)),
        "session_based_auth": Ignored(
            "no effect: credentials come from boto3's default chain (environment, profile, instance role)",
            (None, False),
        ),
        "keepalive_timeout": Ignored("no effect: reads run on boto3's pooled connections, not aiobotocore's"),
    },
}
# Feast's keys of one offline store type that have no effect here.
OFFLINE_TYPE_KEYS: dict[str, dict[str, Ignored]] = {
    "postgres": {
        "conn_type": Ignored(
            "no effect: Potluck always uses a pool of min_conn..max_conn connections", (None, "pool", "singleton")
        ),
    },
}
OFFLINE_KEYS: dict[str, Ignored] = {
    "staging_location": Ignored("no effect: results are read straight from DuckDB, without staging"),
    "staging_location_endpoint_override": Ignored("no effect: results are read straight from DuckDB, without staging"),
}
REGISTRY_KEYS: dict[str, Ignored] = {
    "cache_mode": Ignored(
        "no effect: this process sees its own changes at once and others' within cache_ttl_seconds, "
        "refreshed in the background",
        (None, "sync", "thread"),
    ),
    "s3_additional_kwargs": Ignored("no effect: the registry is a SQL database, never a file on S3"),
    "purge_feast_metadata": Ignored("no effect: Potluck has no feast_metadata table", (None, False)),
    "enable_online_feature_view_versioning": Ignored(
        "no effect: online reads serve each view's current version", (None, False)
    ),
    "serve_features_while_materializing": Ignored("no effect: Potluck always serves while materializing", (None, True)),
    "mcp": Ignored("no effect: Potluck has no MCP server", (None, {}, {"enabled": False})),
    "read_path": Ignored("no effect: reads and writes both use registry.path"),
    "thread_pool_executor_worker_count": Ignored("no effect: one background thread refreshes the cache", (None, 0)),
    "schema_mode": Ignored(
        "no effect: the registry's tables are created when missing (as Feast's 'auto')", (None, "auto")
    ),
}
# sqlalchemy_config_kwargs: the registry does not run on SQLAlchemy; these ask for what it does anyway.
SQLALCHEMY_NEUTRAL: dict[str, tuple[Any, ...]] = {
    "echo": (False,),
    "pool_pre_ping": (True, False),  # a broken connection is always discarded and reopened
    "future": (True,),
}
TOP_KEYS: dict[str, Ignored] = {
    "flags": Ignored("no effect: Potluck has no feature flags", (None, {})),
    "coerce_tz_aware": Ignored(
        "no effect: naive timestamps are always read as UTC (as Feast's default, true)", (None, True)
    ),
    "openlineage": Ignored("no effect: Potluck emits no OpenLineage events", (None, {}, {"enabled": False})),
    "mlflow": Ignored("no effect: Potluck has no MLflow integration", (None, {}, {"enabled": False})),
    "data_quality_monitoring": Ignored("no effect: baselines are saved explicitly (potluck monitor)", (None, {})),
    "embedding_model": Ignored("no effect: " + VECTOR),
}
MATERIALIZATION_KEYS: dict[str, Ignored] = {
    "pull_latest_features": Ignored(
        "no effect: materialization always reads only the latest row per entity", (None, True)
    ),
}
_METRIC_CATEGORIES = ("resource", "request", "online_features", "push", "materialization", "freshness")
METRICS_KEYS: dict[str, Ignored] = {
    "enabled": Ignored("no effect: the server always serves /metrics on its own port", (None, True)),
    **{
        k: Ignored("no effect: /metrics always has every metric Potluck exports", (None, True))
        for k in _METRIC_CATEGORIES
    },
    "offline_features": Ignored("no effect: /metrics always has every metric Potluck exports", (None, True)),
    "audit_logging": Ignored("no effect: the server's audit log records admin actions", (None, False)),
    "feature_count_bins": Ignored(
        "no effect: request metrics are not bucketed by feature count", (None, [10, 50, 200])
    ),
}
# Feast's `feature_server.feature_logging` keys that mean nothing here; the others map to the server's
# feature_log_* settings (ServerSettings).
FEATURE_LOGGING_KEYS: dict[str, Ignored] = {
    "flush_interval_secs": Ignored("no effect: files are written straight to the destination"),
    "emit_timeout_micro_secs": Ignored("no effect: a request never waits for the log queue (a full queue drops)"),
}
FEATURE_SERVER_KEYS: dict[str, Ignored] = {
    "enabled": Ignored("no effect: `potluck serve` starts the server", (None, True)),
    "audit_logging": Ignored("no effect: the server's audit log records admin actions", (None, {}, {"enabled": False})),
    "offline_push_batching_enabled": Ignored("no effect: each push is written offline as it comes"),
    "offline_push_batching_batch_size": Ignored("no effect: each push is written offline as it comes"),
    "offline_push_batching_batch_interval_seconds": Ignored("no effect: each push is written offline as it comes"),
    "transformation_service_endpoint": Ignored(
        "no effect: on-demand transforms run inside the server", (None, "localhost:6569")
    ),
}
# Feast's OIDC server keys -> Potluck's feature_server.oidc keys.
OIDC_RENAMES: dict[str, str] = {
    "auth_discovery_url": "discovery_url",
    "audience": "audience",
    "issuer": "issuer",
    "jwks_cache_lifespan_seconds": "jwks_cache_seconds",
    "jwks_request_timeout_seconds": "jwks_timeout_seconds",
    "verify_ssl": "verify_tls",
    "ca_cert_path": "ca_cert_file",
}
SPARK_ENGINE_KEYS: dict[str, Ignored] = {
    "staging_location": Ignored("no effect: the Spark engine writes to the online store from the executors directly"),
    "region": Ignored("no effect: the Spark engine stages nothing"),
}
OIDC_CLIENT_KEYS = ("client_secret", "token", "token_env_var", "username", "password", "token_refresh_margin_seconds")
OIDC_IGNORED: dict[str, Ignored] = {
    "ui_client_id": Ignored("no effect: Potluck's server has no login page"),
    **{
        k: Ignored("no effect: OIDC client credentials are not used; a Potluck client sends an API key")
        for k in OIDC_CLIENT_KEYS
    },
}


def feast_keys_of(section: str) -> set[str]:
    """Every Feast key accepted in a section (for suggestions in unknown-key errors)."""
    tables: dict[str, Mapping[str, Any]] = {
        "": {**TOP_KEYS, "auth": None, "batch_engine": None, "project_description": None},
        "registry": {**REGISTRY_KEYS, "registry_store_type": None, "sqlalchemy_config_kwargs": None},
        "offline_store": OFFLINE_KEYS,
        "materialization": {**MATERIALIZATION_KEYS, "online_write_batch_size": None},
        "feature_server": {**FEATURE_SERVER_KEYS, "type": None, "metrics": None, "feature_logging": None},
    }
    if section.startswith("online_store"):
        return {k for keys in ONLINE_KEYS.values() for k in keys}
    return set(tables.get(section, {}))


class Translation:
    """One file's translation: where its errors and warnings point."""

    def __init__(self, source: str, online_types: tuple[str, ...]) -> None:
        self.source = source
        self.online_types = online_types

    def error(self, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {message}")

    def warn(self, key: str, why: str) -> None:
        warnings.warn(f"{self.source}: key '{key}' has {why}", ConfigKeyWarning, stacklevel=2)

    def drop(self, section: dict[str, Any], rules: Mapping[str, Ignored], where: str) -> None:
        for key, rule in rules.items():
            if key in section:
                value = section.pop(key)
                if not _is_neutral(value, rule.neutral):
                    self.warn(f"{where}{key}", rule.why)

    # -- sections
    def top(self, data: dict[str, Any]) -> dict[str, Any]:
        data = dict(data)
        if "batch_engine_config" in data and "batch_engine" not in data:
            data["batch_engine"] = data.pop("batch_engine_config")
        provider = data.get("provider", "local")
        if provider in ("gcp", "aws", "azure"):
            raise self.error(
                f"provider '{provider}' is not available: Potluck runs its stores itself; use provider: local "
                f"with online_store.type redis or postgres and offline_store.type duckdb"
            )
        version = data.get("entity_key_serialization_version")
        if isinstance(version, int) and not isinstance(version, bool) and version != 3:
            self.warn(
                "entity_key_serialization_version",
                "no effect: Potluck's online stores use its own entity key encoding (documented), whatever the version",
            )
            data.pop("entity_key_serialization_version")
        coerce = data.get("coerce_tz_aware")
        if coerce is not None and not isinstance(coerce, bool):
            raise self.error("key 'coerce_tz_aware': must be true or false")
        self.drop(data, TOP_KEYS, "")
        if "auth" in data:
            data["auth"] = self.auth(data)
        for key, fn in (
            ("registry", self.registry),
            ("online_store", self.online),
            ("offline_store", self.offline),
            ("batch_engine", self.batch_engine),
            ("feature_server", self.feature_server),
            ("materialization", self.materialization),
        ):
            if key in data:
                data[key] = fn(data[key])
        if data.get("feature_server") is None:
            data.pop("feature_server", None)
        return data

    def auth(self, data: dict[str, Any]) -> str:
        auth = data["auth"]
        if isinstance(auth, str):
            auth = {"type": auth}
        if not isinstance(auth, dict):
            raise self.error("key 'auth': must be a mapping with a 'type' (no_auth or oidc)")
        auth = dict(auth)
        kind = auth.pop("type", None)
        if kind == "no_auth":
            if auth:
                raise self.error(f"unknown key 'auth.{next(iter(auth))}'; auth.type no_auth takes no other key")
            return "no_auth"
        if kind == "kubernetes":
            raise self.error(
                "auth.type 'kubernetes' is not available: Potluck authenticates API keys "
                "(`potluck auth create-key`) and OIDC tokens (auth.type: oidc, with auth_discovery_url and audience)"
            )
        if kind != "oidc":
            raise self.error(f"key 'auth.type': must be no_auth or oidc (got {kind!r})")
        if "auth_discovery_url" not in auth:  # Feast reads this as a client's credentials only
            self.drop(auth, OIDC_IGNORED, "auth.")
            auth.pop("client_id", None)
            if auth:
                raise self.error(f"unknown key 'auth.{next(iter(auth))}'")
            return "oidc"
        self.drop(auth, OIDC_IGNORED, "auth.")
        oidc: dict[str, Any] = {}
        client_id = auth.pop("client_id", None)
        if client_id is not None:
            if not isinstance(client_id, str):
                raise self.error("key 'auth.client_id': must be a string")
            # Feast's roles: Keycloak's per-client roles, and the top-level `roles` claim (Entra ID)
            oidc["roles_claim"] = [f"resource_access.{client_id}.roles", "roles"]
        for key, target in OIDC_RENAMES.items():
            if key in auth:
                oidc[target] = auth.pop(key)
        for key in auth:  # not Feast's: unknown
            raise self.error(f"unknown key 'auth.{key}'; {_spelling(key, [*OIDC_RENAMES, *OIDC_IGNORED, 'client_id'])}")
        if oidc.get("audience") is None:
            raise self.error(
                "key 'auth.audience' is required: Potluck verifies the audience of every token (Feast does not "
                "unless it is set); set it to the 'aud' claim your provider puts in tokens, e.g. the client id"
            )
        server = data.get("feature_server")
        server = {} if server is None else server
        if not isinstance(server, dict):
            raise self.error("key 'feature_server': must be a mapping")
        if "oidc" in server:
            raise self.error("OIDC is set twice, in auth and in feature_server.oidc; keep one")
        data["feature_server"] = {**server, "oidc": oidc, "auth": server.get("auth", "on")}
        return "oidc"

    def registry(self, value: Any) -> Any:
        if isinstance(value, str):
            value = {"path": value}
        if not isinstance(value, dict):
            return value
        reg = dict(value)
        kind = reg.get("registry_type", "file")
        if kind == "snowflake.registry":
            raise self.error(
                "registry.registry_type 'snowflake.registry' is not available: use registry_type: sql with a "
                "PostgreSQL URL (postgresql+psycopg://...) or a SQLite file"
            )
        if kind == "remote":
            raise self.error(
                "registry.registry_type 'remote' is not available: Potluck has no registry server; point "
                "registry.path at the shared PostgreSQL database (postgresql+psycopg://...)"
            )
        store = reg.pop("registry_store_type", None)
        if store not in (None, "local", "LocalRegistryStore", "feast.infra.registry.file.FileRegistryStore"):
            raise self.error(
                f"registry.registry_store_type '{store}' is not available: the registry is a SQL database; "
                "use a PostgreSQL URL (postgresql+psycopg://...) or a local SQLite file"
            )
        self.drop(reg, REGISTRY_KEYS, "registry.")
        if "sqlalchemy_config_kwargs" in reg:
            reg.update(self.sqlalchemy(reg.pop("sqlalchemy_config_kwargs")))
        if isinstance(reg.get("path"), str):
            reg["path"] = self.registry_path(reg["path"])
        return reg

    def registry_path(self, path: str) -> str:
        scheme = path.split("://", 1)[0].lower() if "://" in path else ""
        if scheme in ("s3", "gs", "gcs", "az", "abfs", "abfss", "hdfs", "http", "https"):
            raise self.error(
                f"registry.path: a registry file in object storage ({scheme}://) is not available; the registry "
                "is a SQL database: use a PostgreSQL URL (postgresql+psycopg://...) shared by the team"
            )
        if scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+"):
            return "postgresql://" + path.split("://", 1)[1]  # any SQLAlchemy driver: Potluck uses psycopg 3
        if scheme == "sqlite" or scheme.startswith("sqlite+"):
            rest = path.split("://", 1)[1]
            if rest in ("", "/", "/:memory:") or not rest.startswith("/"):
                raise self.error(
                    "registry.path: an in-memory SQLite registry would forget every apply; "
                    "use sqlite:///relative/path.db or sqlite:////absolute/path.db"
                )
            return "sqlite://" + rest
        if scheme:
            raise self.error(
                f"registry.path: a {scheme} database is not available as the registry; "
                "use PostgreSQL (postgresql+psycopg://...) or SQLite (a file path or sqlite:///...)"
            )
        return path

    def sqlalchemy(self, kwargs: Any) -> dict[str, Any]:
        if not isinstance(kwargs, dict):
            raise self.error("key 'registry.sqlalchemy_config_kwargs': must be a mapping")
        mapped: dict[str, Any] = {}
        for key, value in kwargs.items():
            if key == "connect_args" and isinstance(value, dict):
                rest = dict(value)
                if "connect_timeout" in rest:
                    mapped["connect_timeout_seconds"] = rest.pop("connect_timeout")
                for arg in rest:
                    self.warn(
                        f"registry.sqlalchemy_config_kwargs.connect_args.{arg}",
                        "no effect: put connection options in the URL (?sslmode=...) instead",
                    )
            elif key not in SQLALCHEMY_NEUTRAL or not _is_neutral(value, SQLALCHEMY_NEUTRAL[key]):
                self.warn(
                    f"registry.sqlalchemy_config_kwargs.{key}",
                    "no effect: the registry does not run on SQLAlchemy (its pool and timeouts are Potluck's: "
                    "registry.lock_timeout_seconds, statement_timeout_seconds, connect_timeout_seconds)",
                )
        return mapped

    def online(self, value: Any) -> Any:
        if isinstance(value, str):
            if value.lower() in ("none", "null"):
                value = None
            else:
                value = {"type": value}
        if value is None:
            self.warn("online_store", "no effect when null: Potluck always has an online store (SQLite by default)")
            return {}
        if not isinstance(value, dict):
            return value
        section = dict(value)
        kind = FEAST_CLASS_PATHS.get(section.get("type", "sqlite"), section.get("type", "sqlite"))
        if isinstance(kind, str):
            if kind not in self.online_types:
                raise self.error(self.store_error("online_store", kind, LACKING_ONLINE, ONLINE_ALTERNATIVE))
            if "type" in section:
                section["type"] = kind
            self.drop(section, ONLINE_KEYS.get(kind, {}), "online_store.")
        return section

    def store_error(self, key: str, kind: str, lacking: Mapping[str, str], alternative: str) -> str:
        if kind in lacking:
            return f"{key}.type '{kind}' ({lacking[kind]}) is not available in Potluck; {alternative}"
        if kind.endswith(("OnlineStore", "OfflineStore", "Engine")):
            return f"{key}.type '{kind}': a Feast store class cannot run here; {alternative}"
        close = _close(kind, [*self.online_types, *lacking] if key == "online_store" else [*lacking])
        hint = f"did you mean {close}? Otherwise " if close else ""
        return f"{key}.type '{kind}' is unknown; {hint}{alternative}"

    def offline(self, value: Any) -> Any:
        if isinstance(value, str):
            value = {"type": value}
        if not isinstance(value, dict):
            return value
        section = dict(value)
        kind = FEAST_CLASS_PATHS.get(section.get("type", "duckdb"), section.get("type", "duckdb"))
        if kind == "spark":  # Feast's keys are Potluck's (spark_conf, staging_location, region)
            section["type"] = kind
            return section
        if kind not in OFFLINE_TYPES:
            raise self.error(self.store_error("offline_store", str(kind), LACKING_OFFLINE, OFFLINE_ALTERNATIVE))
        if "type" in section:
            section["type"] = kind
        self.drop(section, {**OFFLINE_KEYS, **OFFLINE_TYPE_KEYS.get(str(kind), {})}, "offline_store.")
        return section

    def batch_engine(self, value: Any) -> Any:
        if isinstance(value, str):
            value = {"type": value}
        if not isinstance(value, dict):
            return value
        section = dict(value)
        kind = FEAST_CLASS_PATHS.get(section.get("type", "local"), section.get("type", "local"))
        if kind == "spark.engine":
            section["type"] = kind
            self.drop(section, SPARK_ENGINE_KEYS, "batch_engine.")
            return section
        if kind != "local":
            alternative = (
                "use batch_engine: local (materialization runs inside the offline engine, DuckDB) or spark.engine"
            )
            raise self.error(self.store_error("batch_engine", str(kind), LACKING_ENGINES, alternative))
        self.drop(
            section, {"backend": Ignored("no effect: rows are selected inside DuckDB, then streamed")}, "batch_engine."
        )
        return section

    def feature_server(self, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        section = dict(value)
        kind = section.pop("type", "local")
        if kind == "mcp":
            for key in ("mcp_enabled", "mcp_server_name", "mcp_server_version", "mcp_transport"):
                section.pop(key, None)
            raise self.error(
                "feature_server.type 'mcp' is not available: Potluck has no MCP server; use type: local "
                "(the HTTP feature server, `potluck serve`)"
            )
        if kind != "local":
            raise self.error(f"key 'feature_server.type': must be local (got {kind!r})")
        metrics = section.pop("metrics", None)
        if metrics is not None:
            if not isinstance(metrics, dict):
                raise self.error("key 'feature_server.metrics': must be a mapping")
            metrics = dict(metrics)
            self.drop(metrics, METRICS_KEYS, "feature_server.metrics.")
            for key in metrics:
                raise self.error(f"unknown key 'feature_server.metrics.{key}'; {_spelling(key, list(METRICS_KEYS))}")
        self.drop(section, FEATURE_SERVER_KEYS, "feature_server.")
        logging = section.get("feature_logging")
        if isinstance(logging, dict):
            logging = dict(logging)
            self.drop(logging, FEATURE_LOGGING_KEYS, "feature_server.feature_logging.")
            section["feature_logging"] = logging
        return section

    def materialization(self, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        section = dict(value)
        self.drop(section, MATERIALIZATION_KEYS, "materialization.")
        return section


def _is_neutral(value: Any, neutral: tuple[Any, ...]) -> bool:
    return any(type(value) is type(n) and value == n for n in neutral) or (value is None and None in neutral)


def _close(name: str, candidates: list[str]) -> str:
    from potluck.definitions.errors import nearest_names

    return " or ".join(f"'{c}'" for c in nearest_names(name, candidates))


def _spelling(name: str, candidates: list[str]) -> str:
    close = _close(name, candidates)
    return f"did you mean {close}?" if close else "remove it or check its spelling"


def translate(data: dict[str, Any], source: str, online_types: tuple[str, ...]) -> dict[str, Any]:
    """`data` with Feast's keys mapped to Potluck's (warning for those without effect)."""
    return Translation(source, online_types).top(data)
