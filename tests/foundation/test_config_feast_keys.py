"""Every key of Feast 0.67's feature_store.yaml: honoured, accepted with one warning, or refused clearly."""

from __future__ import annotations

import json
import re
import subprocess
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError
from repo_helpers import make_repo

from potluck import FeatureStore
from potluck.definitions.errors import ConfigError, ConfigKeyWarning
from potluck.online.postgres import conninfo
from potluck.repo.config import PostgresOnlineStoreConfig, RedisOnlineStoreConfig, RepoConfig, load_config
from tests_support import run_cli


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "feature_store.yaml").write_text("project: p\n" + text)
    return tmp_path


def load_quietly(tmp_path: Path, text: str) -> RepoConfig:
    """The config, failing on any warning (the test run turns warnings into errors)."""
    return load_config(write(tmp_path, text))


# (feature_store.yaml after `project: p`, what it must give) -- accepted without a warning
HONOURED: list[tuple[str, Callable[[RepoConfig], bool]]] = [
    ("project_description: Fraud features\n", lambda c: c.project_description == "Fraud features"),
    ("provider: local\n", lambda c: c.provider == "local"),
    ("entity_key_serialization_version: 3\n", lambda c: c.entity_key_serialization_version == 3),
    ("coerce_tz_aware: true\n", lambda c: True),
    ("flags: {}\n", lambda c: True),
    ("auth:\n  type: no_auth\n", lambda c: c.auth == "no_auth" and c.feature_server is None),
    ("auth: no_auth\n", lambda c: c.auth == "no_auth"),
    ("batch_engine: local\n", lambda c: c.batch_engine.type == "local"),
    ("batch_engine:\n  type: local\n", lambda c: c.batch_engine.type == "local"),
    ("batch_engine_config: local\n", lambda c: c.batch_engine.type == "local"),
    ("batch_engine: spark.engine\n", lambda c: c.batch_engine.type == "spark.engine"),
    (
        "batch_engine:\n  type: spark.engine\n  partitions: 4\n  spark_conf:\n    spark.sql.shuffle.partitions: 8\n",
        lambda c: c.batch_engine.partitions == 4 and c.batch_engine.spark_conf == {"spark.sql.shuffle.partitions": 8},
    ),
    (
        "batch_engine:\n  type: feast.infra.compute_engines.spark.compute.SparkComputeEngine\n",
        lambda c: c.batch_engine.type == "spark.engine",
    ),
    ("offline_store:\n  type: dask\n", lambda c: c.offline_store.type == "dask"),
    ("offline_store: file\n", lambda c: c.offline_store.type == "file"),
    (
        "offline_store:\n  type: feast.infra.offline_stores.duckdb.DuckDBOfflineStore\n",
        lambda c: c.offline_store.type == "duckdb",
    ),
    ("online_store:\n  path: data/online.db\n", lambda c: c.online_store.path == "data/online.db"),  # type: ignore[union-attr]
    (
        "online_store:\n  type: feast.infra.online_stores.sqlite.SqliteOnlineStore\n  vector_enabled: false\n",
        lambda c: c.online_store.type == "sqlite",
    ),
    (
        "online_store:\n  type: redis\n  redis_type: redis_cluster\n  client: redis\n  skip_dedup: false\n"
        "  full_scan_for_deletion: true\n  key_ttl_seconds: 60\n",
        lambda c: (
            isinstance(c.online_store, RedisOnlineStoreConfig)
            and (c.online_store.redis_type, c.online_store.key_ttl_seconds) == ("redis_cluster", 60)
        ),
    ),
    (
        "online_store:\n  type: postgres\n  host: db\n  user: u\n  password: pw\n  database: d\n  conn_type: pool\n"
        "  sslmode: verify-full\n  sslrootcert_path: /ca.pem\n  sslcert_path: /c.pem\n  sslkey_path: /k.pem\n"
        "  keepalives_idle: 30\n",
        lambda c: (
            isinstance(c.online_store, PostgresOnlineStoreConfig)
            and all(
                part in conninfo(c.online_store)
                for part in (
                    "sslrootcert=/ca.pem",
                    "sslcert=/c.pem",
                    "sslkey=/k.pem",
                    "keepalives_idle=30",
                    "sslmode=verify-full",
                )
            )
        ),
    ),
    (
        "registry:\n  registry_type: sql\n  path: postgresql+psycopg://u:pw@db:5432/reg\n  cache_ttl_seconds: 60\n"
        "  sqlalchemy_config_kwargs:\n    echo: false\n    pool_pre_ping: true\n    connect_args:\n"
        "      connect_timeout: 3\n  cache_mode: thread\n  schema_mode: auto\n",
        lambda c: (
            c.registry_url == "postgresql://u:pw@db:5432/reg"
            and c.registry.cache_ttl_seconds == 60
            and c.registry.timeouts().connect == 3
        ),
    ),
    ("registry: postgresql+psycopg2://u@db/reg\n", lambda c: c.registry_url == "postgresql://u@db/reg"),
    ("registry:\n  registry_type: file\n  path: data/reg.db\n", lambda c: c.registry_url.endswith("/data/reg.db")),
    (
        "registry:\n  registry_type: sql\n  path: sqlite:///data/registry.db\n  registry_store_type: LocalRegistryStore\n",
        lambda c: c.registry_url.endswith("/data/registry.db"),
    ),
    (
        "materialization:\n  pull_latest_features: true\n  online_write_batch_size: 500\n",
        lambda c: c.materialization.online_write_batch_size == 500,
    ),
    (
        "feature_server:\n  type: local\n  enabled: true\n  metrics:\n    enabled: true\n    request: true\n"
        "  feature_logging:\n    enabled: true\n  port: 7000\n",
        lambda c: c.feature_server is not None and c.feature_server.port == 7000,
    ),
]


@pytest.mark.parametrize(
    ("text", "check"), HONOURED, ids=[t.split(":")[0] + str(i) for i, (t, _) in enumerate(HONOURED)]
)
def test_honoured_keys(tmp_path: Path, text: str, check: Callable[[RepoConfig], bool]) -> None:
    assert check(load_quietly(tmp_path, text))


# (feature_store.yaml after `project: p`, the key the one warning names)
WARNED: list[tuple[str, str]] = [
    ("flags:\n  alpha_features: true\n", "flags"),
    ("repo_path: /elsewhere\n", "repo_path"),
    ("coerce_tz_aware: false\n", "coerce_tz_aware"),
    ("entity_key_serialization_version: 2\n", "entity_key_serialization_version"),
    ("openlineage:\n  enabled: true\n  transport_type: console\n", "openlineage"),
    ("mlflow:\n  enabled: true\n", "mlflow"),
    ("data_quality_monitoring:\n  auto_baseline: true\n", "data_quality_monitoring"),
    ("embedding_model:\n  model: all-MiniLM-L6-v2\n", "embedding_model"),
    ("online_store: null\n", "online_store"),
    ("online_store:\n  type: sqlite\n  vector_enabled: true\n", "online_store.vector_enabled"),
    ("online_store:\n  type: sqlite\n  text_search_enabled: true\n", "online_store.text_search_enabled"),
    ("online_store:\n  type: redis\n  client: glide\n", "online_store.client"),
    ("online_store:\n  type: redis\n  skip_dedup: true\n", "online_store.skip_dedup"),
    ("online_store:\n  type: postgres\n  conn_type: singleton\n", "online_store.conn_type"),
    ("online_store:\n  type: postgres\n  max_batched_result_rows: 10\n", "online_store.max_batched_result_rows"),
    ("offline_store:\n  type: duckdb\n  staging_location: s3://b/x\n", "offline_store.staging_location"),
    ("batch_engine:\n  type: local\n  backend: polars\n", "batch_engine.backend"),
    ("batch_engine:\n  type: spark.engine\n  staging_location: s3://b/x\n", "batch_engine.staging_location"),
    ("registry:\n  path: data/r.db\n  purge_feast_metadata: true\n", "registry.purge_feast_metadata"),
    ("registry:\n  path: data/r.db\n  read_path: postgresql://replica/r\n", "registry.read_path"),
    (
        "registry:\n  path: data/r.db\n  thread_pool_executor_worker_count: 4\n",
        "registry.thread_pool_executor_worker_count",
    ),
    ("registry:\n  path: data/r.db\n  schema_mode: verify\n", "registry.schema_mode"),
    ("registry:\n  path: data/r.db\n  enable_online_feature_view_versioning: true\n", "registry.enable_online"),
    ("registry:\n  path: data/r.db\n  serve_features_while_materializing: false\n", "registry.serve_features"),
    ("registry:\n  path: data/r.db\n  s3_additional_kwargs: {a: b}\n", "registry.s3_additional_kwargs"),
    ("registry:\n  path: data/r.db\n  mcp:\n    enabled: true\n", "registry.mcp"),
    (
        "registry:\n  path: data/r.db\n  sqlalchemy_config_kwargs:\n    pool_size: 20\n",
        "sqlalchemy_config_kwargs.pool_size",
    ),
    ("registry:\n  path: data/r.db\n  sqlalchemy_config_kwargs:\n    echo: true\n", "sqlalchemy_config_kwargs.echo"),
    ("materialization:\n  pull_latest_features: false\n", "materialization.pull_latest_features"),
    ("feature_server:\n  enabled: false\n", "feature_server.enabled"),
    ("feature_server:\n  metrics:\n    enabled: false\n", "feature_server.metrics.enabled"),
    ("feature_server:\n  metrics:\n    enabled: true\n    resource: false\n", "feature_server.metrics.resource"),
    ("feature_server:\n  metrics:\n    feature_count_bins: [5, 10]\n", "feature_server.metrics.feature_count_bins"),
    (
        "feature_server:\n  feature_logging:\n    enabled: true\n    flush_interval_secs: 1\n",
        "feature_server.feature_logging.flush_interval_secs",
    ),
    ("feature_server:\n  audit_logging:\n    enabled: true\n", "feature_server.audit_logging"),
    ("feature_server:\n  offline_push_batching_enabled: true\n", "feature_server.offline_push_batching_enabled"),
    ("feature_server:\n  transformation_service_endpoint: ts:1\n", "feature_server.transformation_service_endpoint"),
    (
        "auth:\n  type: oidc\n  auth_discovery_url: http://idp/.well-known/openid-configuration\n  audience: a\n"
        "  ui_client_id: ui\n",
        "auth.ui_client_id",
    ),
    ("auth:\n  type: oidc\n  client_id: c\n  client_secret: s3cret\n", "auth.client_secret"),
]


@pytest.mark.parametrize(("text", "key"), WARNED, ids=[k for _, k in WARNED])
def test_keys_without_effect_warn_once(tmp_path: Path, text: str, key: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_config(write(tmp_path, text))
    messages = [str(w.message) for w in caught if issubclass(w.category, ConfigKeyWarning)]
    assert len(messages) == 1, messages
    assert f"key '{key}" in messages[0] or f".{key}" in messages[0], messages
    assert "feature_store.yaml" in messages[0]
    assert "no effect" in messages[0]
    assert "s3cret" not in messages[0]
    assert [w for w in caught if not issubclass(w.category, ConfigKeyWarning)] == []


# (feature_store.yaml after `project: p`, words the error must hold)
REFUSED: list[tuple[str, tuple[str, ...]]] = [
    ("provider: gcp\n", ("provider 'gcp'", "provider: local")),
    ("provider: aws\n", ("provider 'aws'", "redis or postgres")),
    ("online_store:\n  type: hbase\n  region: us-east-1\n", ("'hbase'", "HBase", "redis or postgres")),
    ("online_store:\n  type: bigtable\n", ("'bigtable'", "Bigtable", "sqlite")),
    ("online_store:\n  type: cassandra\n", ("'cassandra'", "Cassandra", "redis or postgres")),
    ("online_store:\n  type: milvus\n  vector_enabled: true\n", ("'milvus'", "vector", "redis")),
    ("online_store:\n  type: redsi\n", ("'redsi' is unknown", "did you mean 'redis'")),
    ("online_store:\n  type: my.plugin.CustomOnlineStore\n", ("CustomOnlineStore", "Feast store class")),
    ("offline_store:\n  type: bigquery\n", ("'bigquery'", "BigQuery", "Parquet", "duckdb")),
    ("offline_store:\n  type: snowflake.offline\n", ("'snowflake.offline'", "Snowflake", "duckdb")),
    ("offline_store:\n  type: trino\n", ("'trino'", "duckdb")),
    ("batch_engine:\n  type: ray.engine\n  max_workers: 2\n", ("'ray.engine'", "batch_engine: local")),
    ("auth:\n  type: kubernetes\n", ("'kubernetes'", "API keys", "oidc")),
    ("auth:\n  type: ldap\n", ("auth.type", "no_auth or oidc")),
    ("auth:\n  type: no_auth\n  user_token: x\n", ("auth.user_token",)),
    (
        "auth:\n  type: oidc\n  auth_discovery_url: http://idp/.well-known/openid-configuration\n  client_id: c\n",
        ("auth.audience", "required", "aud"),
    ),
    ("feature_server:\n  type: mcp\n  mcp_enabled: true\n", ("'mcp'", "MCP", "type: local")),
    ("registry:\n  registry_type: remote\n  path: grpc://reg:6570\n", ("'remote'", "PostgreSQL")),
    ("registry:\n  registry_type: snowflake.registry\n", ("snowflake.registry", "registry_type: sql")),
    ("registry: s3://bucket/registry.pb\n", ("s3://", "PostgreSQL")),
    ("registry: gs://bucket/registry.pb\n", ("gs://", "PostgreSQL")),
    ("registry:\n  path: data/r.db\n  registry_store_type: S3RegistryStore\n", ("S3RegistryStore", "PostgreSQL")),
    ("registry:\n  registry_type: sql\n  path: mysql+pymysql://u@h/reg\n", ("mysql", "PostgreSQL", "SQLite")),
    ("registry:\n  registry_type: sql\n  path: 'sqlite://'\n", ("in-memory", "sqlite:///")),
    ("feature_server:\n  metrics:\n    enabeld: true\n", ("feature_server.metrics.enabeld", "did you mean 'enabled'")),
]


@pytest.mark.parametrize(
    ("text", "words"), REFUSED, ids=[t.split("\n")[0] + str(i) for i, (t, _) in enumerate(REFUSED)]
)
def test_stores_and_services_potluck_lacks_are_errors(tmp_path: Path, text: str, words: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    message = str(info.value)
    assert message.startswith(str(tmp_path / "feature_store.yaml")), message
    for word in words:
        assert word in message, (word, message)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("projetc_description: x\n", "unknown key 'projetc_description'; Did you mean 'project_description'"),
        (
            "registry:\n  cache_ttl_second: 5\n",
            "unknown key 'registry.cache_ttl_second'; Did you mean 'cache_ttl_seconds'",
        ),
        ("online_store:\n  type: redis\n  conection_string: x\n", "Did you mean 'connection_string'"),
        ("feature_server:\n  prot: 1\n", "unknown key 'feature_server.prot'; Did you mean 'port'"),
        ("zzz_unrelated: 1\n", "unknown key 'zzz_unrelated'; remove it or check its spelling"),
    ],
)
def test_unknown_keys_name_key_file_and_nearest_name(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape("feature_store.yaml")) as info:
        load_config(write(tmp_path, text))
    assert message in str(info.value)


def test_oidc_maps_to_the_servers_oidc_settings(tmp_path: Path) -> None:
    text = (
        "auth:\n  type: oidc\n  client_id: feast-client\n"
        "  auth_discovery_url: https://idp.test/realms/ml/.well-known/openid-configuration\n"
        "  audience: account\n  verify_ssl: false\n  ca_cert_path: /ca.pem\n"
        "  jwks_cache_lifespan_seconds: 60\n  jwks_request_timeout_seconds: 2\n"
    )
    config = load_quietly(tmp_path, text)
    assert config.auth == "oidc"
    assert config.feature_server is not None
    assert config.feature_server.auth == "on"
    oidc = config.feature_server.oidc
    assert oidc is not None
    assert (oidc.discovery_url, oidc.issuer, oidc.jwks_url) == (
        "https://idp.test/realms/ml/.well-known/openid-configuration",
        None,
        None,
    )
    assert oidc.audience == "account"
    assert oidc.roles_claims == ("resource_access.feast-client.roles", "roles")
    assert (oidc.verify_tls, oidc.ca_cert_file, oidc.jwks_cache_seconds, oidc.jwks_timeout_seconds) == (
        False,
        "/ca.pem",
        60,
        2,
    )
    both = text + "feature_server:\n  oidc:\n    issuer: i\n    audience: a\n    jwks_url: http://x\n"
    with pytest.raises(ConfigError, match="OIDC is set twice"):
        load_config(write(tmp_path, both))
    own = "feature_server:\n  auth: 'off'\n" + text
    server = load_quietly(tmp_path, own).feature_server
    assert server is not None
    assert server.auth == "off"  # the server's own setting wins over the implied `on`


def test_config_built_in_python_takes_feast_keys_too(tmp_path: Path) -> None:
    config = RepoConfig(
        project="p", registry="data/r.db", offline_store="dask", auth={"type": "no_auth"}, repo_path=tmp_path
    )
    assert (config.offline_store.type, config.auth) == ("dask", "no_auth")
    with pytest.warns(ConfigKeyWarning, match="'flags'"):
        RepoConfig.model_validate({"project": "p", "flags": {"on_demand_transforms": True}, "repo_path": tmp_path})
    with pytest.raises(ValidationError, match="Bigtable"):
        RepoConfig(project="p", online_store={"type": "bigtable"}, repo_path=tmp_path)


def test_registry_folder_outside_the_repository_must_exist(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    missing = tmp_path / "nowhere" / "deeper"
    with pytest.raises(ConfigError) as info:
        load_config(write(repo, f"registry: {missing}/registry.db\n"))
    message = str(info.value)
    assert f"registry.path: the folder {missing} does not exist" in message
    assert "create it, or use a path inside the repository" in message
    assert not missing.exists()
    with pytest.raises(ConfigError, match=re.escape("registry.path: the folder /path/to does not exist")):
        load_config(write(repo, "registry: /path/to/registry.db\n"))  # Feast's minimal template
    with pytest.raises(ConfigError, match=re.escape("online_store.path: the folder")):
        load_config(write(repo, f"online_store:\n  path: {missing}/online.db\n"))
    with pytest.raises(ConfigError, match=re.escape("registry.path: the folder")):
        load_config(write(repo, f"registry: sqlite:///{missing}/registry.db\n"))
    # inside the repository a folder is created when needed; an existing folder outside is fine
    store = FeatureStore(repo_path=write(repo, "registry: state/sub/registry.db\n"))
    assert store.list_entities() == []
    assert (repo / "state" / "sub" / "registry.db").exists()
    outside = tmp_path / "shared"
    outside.mkdir()
    assert load_quietly(repo, f"registry: {outside}/registry.db\n").registry_url == f"sqlite:///{outside}/registry.db"


def _apply_and_read_back(repo: Path, registry: str) -> None:
    make_repo(repo)
    (repo / "feature_store.yaml").write_text(
        f"project: p\nregistry:\n  registry_type: sql\n  path: {registry}\n  cache_ttl_seconds: 60\n"
        "  sqlalchemy_config_kwargs:\n    echo: false\n    pool_pre_ping: true\n"
        "online_store:\n  path: data/online.db\n"
    )
    FeatureStore(repo_path=repo).apply()
    again = FeatureStore(repo_path=repo)
    assert [v.name for v in again.list_feature_views()] == ["driver_stats"]
    assert [e.name for e in again.list_entities()] == ["driver"]


@pytest.mark.parametrize("scheme", ["postgresql+psycopg", "postgresql", "postgresql+psycopg2"])
def test_sql_registry_in_feasts_spelling_on_postgres(tmp_path: Path, postgres_database: str, scheme: str) -> None:
    url = scheme + "://" + postgres_database.split("://", 1)[1]
    _apply_and_read_back(tmp_path, url)
    import psycopg

    with psycopg.connect(postgres_database) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert any("registry" in t or "object" in t for t in tables), tables


def test_sql_registry_in_feasts_spelling_on_sqlite(tmp_path: Path) -> None:
    _apply_and_read_back(tmp_path, "sqlite:///data/feast_registry.db")
    assert (tmp_path / "data" / "feast_registry.db").exists()
    absolute = tmp_path / "abs"
    absolute.mkdir()
    _apply_and_read_back(tmp_path / "other", f"sqlite:///{absolute}/registry.db")  # sqlite:////abs/...
    assert (absolute / "registry.db").exists()


def test_feast_init_repository_config_loads(tmp_path: Path, feast_python: Path) -> None:
    feast = feast_python.parent / "feast"
    subprocess.run(
        [str(feast), "init", "demo"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        env={"PATH": str(feast_python.parent), "FEAST_USAGE": "False", "HOME": str(tmp_path)},
        timeout=300,
    )
    repo = tmp_path / "demo" / "feature_repo"
    text = (repo / "feature_store.yaml").read_text()
    assert "auth:" in text  # the file Feast writes today
    config = load_config(repo)  # no warning: every key it sets is honoured
    assert (config.project, config.auth, config.provider) == ("demo", "no_auth", "local")
    assert config.registry_url == f"sqlite:///{repo.resolve()}/data/registry.db"
    assert config.online_store.path == "data/online_store.db"  # type: ignore[union-attr]
    minimal = tmp_path / "minimal"
    subprocess.run(
        [str(feast), "init", "-m", "mini", "--repo-path", str(minimal)],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        env={"PATH": str(feast_python.parent), "FEAST_USAGE": "False", "HOME": str(tmp_path)},
        timeout=300,
    )
    written = next(minimal.rglob("feature_store.yaml"))
    with pytest.raises(ConfigError, match=re.escape("registry.path: the folder /path/to does not exist")):
        load_config(written.parent)


def test_cli_shows_each_warning_once_as_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_repo(tmp_path)
    with (tmp_path / "feature_store.yaml").open("a") as f:
        f.write("flags:\n  alpha_features: true\ncoerce_tz_aware: false\n")
    code, out, err = run_cli(capsys, "-c", str(tmp_path), "feature-views", "list", "-o", "json")
    assert code == 0, err
    assert json.loads(out) == []
    lines = [line for line in err.splitlines() if line.strip()]
    assert sorted(line.split("'")[1] for line in lines) == ["coerce_tz_aware", "flags"], lines
    assert all(line.startswith("Warning: ") and "no effect" in line for line in lines), lines


def test_feasts_feature_logging_section_sets_the_log_queue(tmp_path: Path) -> None:
    (tmp_path / "feature_store.yaml").write_text(
        "project: p\nfeature_server:\n  feature_logging:\n    enabled: true\n    queue_capacity: 10\n"
        "    write_to_disk_interval_secs: 2\n"
    )
    settings = load_config(tmp_path).feature_server
    assert settings is not None
    assert (settings.feature_log_enabled, settings.feature_log_queue_rows) == (True, 10)
    assert settings.feature_log_flush_interval_seconds == 2.0
