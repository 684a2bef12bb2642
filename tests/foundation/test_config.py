from pathlib import Path

import pytest

from potluck.definitions.errors import ConfigError
from potluck.repo.config import (
    PostgresOnlineStoreConfig,
    RedisOnlineStoreConfig,
    SqliteOnlineStoreConfig,
    load_config,
)


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "feature_store.yaml").write_text(text)
    return tmp_path


def test_minimal_config_has_embedded_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "project: demo\n"))
    assert config.offline_store.type == "duckdb"
    assert isinstance(config.online_store, SqliteOnlineStoreConfig)
    assert config.registry_url == f"sqlite:///{tmp_path.resolve()}/data/registry.db"
    assert config.registry.cache_ttl_seconds == 5


def test_feast_style_config_is_accepted(tmp_path: Path) -> None:
    text = """\
project: driver
registry:
  path: data/registry.db
  cache_ttl_seconds: 60
provider: local
offline_store:
  type: file
online_store:
  type: redis
  connection_string: localhost:6379
entity_key_serialization_version: 3
"""
    config = load_config(write(tmp_path, text))
    assert isinstance(config.online_store, RedisOnlineStoreConfig)
    assert config.offline_store.type == "file"
    assert config.registry.cache_ttl_seconds == 60


def test_env_interpolation_for_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PG_PASSWORD", "s3cret")
    text = "project: p\nonline_store:\n  type: postgres\n  password: ${PG_PASSWORD}\n  host: ${PG_HOST:-db}\n"
    store = load_config(write(tmp_path, text)).online_store
    assert isinstance(store, PostgresOnlineStoreConfig)
    assert (store.password, store.host) == ("s3cret", "db")


def test_registry_urls(tmp_path: Path) -> None:
    assert (
        load_config(write(tmp_path, "project: p\nregistry: postgresql://u@h/db\n")).registry_url
        == "postgresql://u@h/db"
    )
    cfg = load_config(write(tmp_path, "project: p\nregistry: sqlite:///reg.db\n"))
    assert cfg.registry_url == f"sqlite:///{tmp_path.resolve()}/reg.db"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("project: p\nonline_stor: {}\n", "unknown key 'online_stor'"),
        ("registry: x.db\n", "missing required key 'project'"),
        ("project: p\nonline_store:\n  type: sqlite\n  paht: x\n", "unknown key 'online_store.paht'"),
        ("project: p\nonline_store:\n  type: redis\n  key_ttl_seconds: soon\n", "online_store.key_ttl_seconds"),
        ("project: p\nonline_store:\n  type: cassandra\n", "online_store"),
        ("project: 'my project'\n", "key 'project'"),
        ("project: p\nregistry:\n  cache_ttl_seconds: -1\n", "registry.cache_ttl_seconds"),
        ("- a\n- b\n", "must be a mapping"),
        ("project: [\n", "not valid YAML"),
        ("project: ${NOPE_NOT_SET}\n", "environment variable 'NOPE_NOT_SET'"),
    ],
)
def test_invalid_config_names_key_and_file(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert "feature_store.yaml" in str(info.value)
    assert message in str(info.value)


def test_missing_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="potluck init"):
        load_config(tmp_path)
