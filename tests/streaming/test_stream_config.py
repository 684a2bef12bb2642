"""The `stream:` section of feature_store.yaml: defaults, ${ENV} interpolation, strict keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from potluck.definitions.errors import ConfigError
from potluck.repo.config import RepoConfig, load_config


def load_config_with(tmp_path: Path, stream: str) -> RepoConfig:
    (tmp_path / "feature_store.yaml").write_text(f"project: shop\n{stream}")
    return load_config(tmp_path)


def test_defaults(tmp_path: Path) -> None:
    config = load_config_with(tmp_path, "")
    s = config.stream
    assert s.group("shop") == "potluck-shop"
    assert (s.auto_offset_reset, s.batch_size, s.batch_interval_seconds, s.offline) == ("earliest", 5000, 0.5, True)
    assert (s.dead_letter.path, s.dead_letter.topic, s.settings, s.sources) == ("data/dead_letter", None, {}, {})


def test_every_key_and_env_interpolation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_PASSWORD", "s3cret")
    config = load_config_with(
        tmp_path,
        "stream:\n"
        "  consumer_group: workers\n"
        "  auto_offset_reset: latest\n"
        "  batch_size: 50\n"
        "  batch_interval_seconds: 0.1\n"
        "  offline: false\n"
        "  dead_letter: {path: /tmp/dl, topic: bad-events}\n"
        "  settings: {sasl.password: '${KAFKA_PASSWORD}', security.protocol: SASL_SSL}\n"
        "  sources:\n"
        "    rides: {auto_offset_reset: earliest, settings: {fetch.min.bytes: 1}}\n",
    )
    s = config.stream
    assert s.group("shop") == "workers"
    assert (s.auto_offset_reset, s.batch_size, s.batch_interval_seconds, s.offline) == ("latest", 50, 0.1, False)
    assert (s.dead_letter.path, s.dead_letter.topic) == ("/tmp/dl", "bad-events")
    assert s.settings == {"sasl.password": "s3cret", "security.protocol": "SASL_SSL"}
    assert s.sources["rides"].auto_offset_reset == "earliest"
    assert s.sources["rides"].settings == {"fetch.min.bytes": 1}


@pytest.mark.parametrize(
    ("stream", "named"),
    [
        ("stream:\n  batch_sise: 10\n", "stream.batch_sise"),
        ("stream:\n  auto_offset_reset: middle\n", "stream.auto_offset_reset"),
        ("stream:\n  batch_size: 0\n", "stream.batch_size"),
        ("stream:\n  dead_letter: {folder: x}\n", "stream.dead_letter.folder"),
        ("stream:\n  sources: {rides: {group: x}}\n", "stream.sources.rides.group"),
    ],
)
def test_bad_keys_are_named(tmp_path: Path, stream: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_config_with(tmp_path, stream)
