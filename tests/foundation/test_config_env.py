"""`${ENV}` in feature_store.yaml: substituted in string values after parsing, never echoed."""

from __future__ import annotations

from pathlib import Path

import pytest

from potluck.definitions.errors import ConfigError
from potluck.repo.config import PostgresOnlineStoreConfig, RedisOnlineStoreConfig, load_config

POSTGRES = "project: p\nonline_store:\n  type: postgres\n  password: ${PG_SECRET}\n"


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "feature_store.yaml").write_text(text)
    return tmp_path


def _password(tmp_path: Path, text: str = POSTGRES) -> str | None:
    store = load_config(write(tmp_path, text)).online_store
    assert isinstance(store, PostgresOnlineStoreConfig)
    return store.password


@pytest.mark.parametrize(
    "secret",
    ["abc #def", "12345", "0x1F", "true", "null", '{"a": 1}', "[1, 2]", "a: b", "- x", 'it\'s "quoted"', "*alias"],
)
def test_a_secret_is_taken_as_the_string_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    monkeypatch.setenv("PG_SECRET", secret)
    assert _password(tmp_path) == secret


def test_a_newline_in_a_value_cannot_rewrite_other_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PG_SECRET", 'x\nfeature_server:\n  auth: "off"')
    text = POSTGRES + 'feature_server:\n  auth: "on"\n'
    config = load_config(write(tmp_path, text))
    assert config.feature_server is not None
    assert config.feature_server.auth == "on"
    assert isinstance(config.online_store, PostgresOnlineStoreConfig)
    assert config.online_store.password == 'x\nfeature_server:\n  auth: "off"'


def test_substitution_inside_a_string_and_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_HOST", "cache.internal")
    monkeypatch.delenv("REDIS_PORT", raising=False)
    text = "project: p\nonline_store:\n  type: redis\n  connection_string: ${REDIS_HOST}:${REDIS_PORT:-6380}\n"
    store = load_config(write(tmp_path, text)).online_store
    assert isinstance(store, RedisOnlineStoreConfig)
    assert store.connection_string == "cache.internal:6380"


def test_a_non_string_key_is_validated_from_the_string(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PG_PORT", "6543")
    text = "project: p\nonline_store:\n  type: postgres\n  port: ${PG_PORT}\n"
    store = load_config(write(tmp_path, text)).online_store
    assert isinstance(store, PostgresOnlineStoreConfig)
    assert store.port == 6543


def test_an_unset_variable_in_a_comment_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    config = load_config(write(tmp_path, "# password: ${NOT_SET_ANYWHERE}\nproject: p  # ${NOT_SET_ANYWHERE}\n"))
    assert config.project == "p"


def test_an_unset_variable_in_a_value_names_it_and_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(ConfigError, match=r"'NOT_SET_ANYWHERE' is not set .*online_store.password"):
        load_config(write(tmp_path, POSTGRES.replace("PG_SECRET", "NOT_SET_ANYWHERE")))


def test_errors_never_show_a_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "hunter2-XYZ"
    monkeypatch.setenv("PG_SECRET", secret)
    monkeypatch.setenv("PG_PORT", secret)
    # a YAML error: the file is parsed before substitution, so the message holds no secret
    with pytest.raises(ConfigError, match="not valid YAML") as yaml_err:
        load_config(write(tmp_path, POSTGRES + "registry: [\n"))
    # a validation error of a substituted value
    text = "project: p\nonline_store:\n  type: postgres\n  port: ${PG_PORT}\n  sslmode: ['${PG_SECRET}']\n"
    with pytest.raises(ConfigError, match=r"online_store.port") as invalid:
        load_config(write(tmp_path, text))
    for err in (yaml_err, invalid):
        assert secret not in str(err.value)


def test_non_finite_numbers_are_refused(tmp_path: Path) -> None:
    for value in (".inf", ".nan", "-.inf"):
        with pytest.raises(ConfigError, match=r"registry.cache_ttl_seconds"):
            load_config(write(tmp_path, f"project: p\nregistry:\n  cache_ttl_seconds: {value}\n"))


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("project: p\nproject: q\n", "project", 2),
        ("project: p\nonline_store:\n  type: redis\n  key_prefix: a\n  key_prefix: b\n", "key_prefix", 5),
    ],
)
def test_duplicate_keys_are_refused_naming_key_and_line(tmp_path: Path, text: str, key: str, line: int) -> None:
    with pytest.raises(ConfigError, match=rf"line {line}, column \d+\): key '{key}' is given twice"):
        load_config(write(tmp_path, text))
