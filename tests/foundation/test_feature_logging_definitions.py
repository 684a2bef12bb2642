"""`LoggingConfig`, `FileLoggingDestination` and `FeatureService(logging_config=)`: checks, registry, plan."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from repo_helpers import make_repo

from potluck import FeatureStore
from potluck.definitions.errors import DefinitionError, PotluckError
from potluck.feature_logging import LoggingConfig
from potluck.infra.offline_stores.file_source import FileLoggingDestination, FileSource


def test_feast_import_lines_resolve() -> None:
    from potluck.definitions import sources

    assert FileSource is sources.FileSource
    for module, name in [
        ("potluck.feature_logging", "LoggingConfig"),
        ("potluck.feature_logging", "LoggingDestination"),
        ("potluck.infra.offline_stores.file_source", "FileLoggingDestination"),
    ]:
        assert getattr(importlib.import_module(module), name).__module__ == "potluck.definitions.feature_logging"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: FileLoggingDestination(path=""), "'path' is required"),
        (lambda: FileLoggingDestination(path="s3://bucket/logs"), "remote"),
        (lambda: FileLoggingDestination(path="logs", s3_endpoint_override="http://minio"), "s3_endpoint_override"),
        (lambda: FileLoggingDestination(path="logs", partition_by="driver_id"), "list of column names"),
        (lambda: FileLoggingDestination(path="logs", partition_by=["a", "a"]), "twice"),
        (lambda: FileLoggingDestination(path="logs", partition_by=["bad name"]), "identifier"),
        (lambda: LoggingConfig(FileLoggingDestination(path="logs"), sample_rate=0), r"\(0, 1\]"),
        (lambda: LoggingConfig(FileLoggingDestination(path="logs"), sample_rate=1.5), r"\(0, 1\]"),
        (lambda: LoggingConfig(FileLoggingDestination(path="logs"), sample_rate="all"), "number"),
        (lambda: LoggingConfig("logs"), "FileLoggingDestination"),  # type: ignore[arg-type]
    ],
)
def test_bad_logging_config_is_a_clear_error(build: object, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        build()  # type: ignore[operator]


@pytest.mark.parametrize(
    ("module", "name", "store"),
    [
        ("bigquery_source", "BigQueryLoggingDestination", "BigQuery"),
        ("redshift_source", "RedshiftLoggingDestination", "Redshift"),
        ("snowflake_source", "SnowflakeLoggingDestination", "Snowflake"),
    ],
)
def test_other_stores_destinations_name_what_to_use(module: str, name: str, store: str) -> None:
    cls = getattr(importlib.import_module(f"potluck.infra.offline_stores.{module}"), name)
    with pytest.raises(DefinitionError, match=rf"{store}.*FileLoggingDestination\(path=\.\.\.\)"):
        cls(table_ref="project.dataset.logs")


LOGGED = """
from potluck.feature_logging import LoggingConfig
from potluck.infra.offline_stores.file_source import FileLoggingDestination

logged = FeatureService(
    name="logged",
    features=[driver_stats[["conv_rate"]]],
    logging_config=LoggingConfig(
        destination=FileLoggingDestination(path="logs", partition_by={partition_by!r}), sample_rate={rate}
    ),
)
"""


def logged_repo(tmp_path: Path, *, rate: float = 0.5, partition_by: list[str] | None = None) -> Path:
    root = make_repo(tmp_path)
    with (root / "features.py").open("a") as out:
        out.write(LOGGED.format(rate=rate, partition_by=partition_by))
    return root


def test_logging_config_is_stored_and_changes_show_in_the_plan(tmp_path: Path) -> None:
    store = FeatureStore(repo_path=logged_repo(tmp_path, partition_by=["driver_id"]))
    store.apply()
    config = FeatureStore(repo_path=tmp_path).get_feature_service("logged").logging_config
    assert config is not None
    assert config.sample_rate == 0.5
    assert config.destination.path == "logs"
    assert config.destination.partition_by == ["driver_id"]
    assert FeatureStore(repo_path=tmp_path).get_feature_service("driver_service").logging_config is None
    assert not store.plan().has_changes

    logged_repo(tmp_path, rate=1.0)
    [diff] = [d for d in store.plan().diffs if d.action == "updated"]
    assert diff.name == "logged"
    changes = {c.path: (c.old, c.new) for c in diff.changes}
    assert changes == {
        "logging_config.sample_rate": (0.5, 1.0),
        "logging_config.destination.partition_by": (["driver_id"], []),
    }


def test_partition_by_must_name_a_join_key(tmp_path: Path) -> None:
    store = FeatureStore(repo_path=logged_repo(tmp_path, partition_by=["conv_rate"]))
    with pytest.raises(PotluckError, match=r"partition_by column 'conv_rate' .*\['__log_date', 'driver_id'\]"):
        store.apply()


def test_feasts_feature_logging_section_maps_to_the_server_settings() -> None:
    from potluck.server.settings import ServerSettings

    settings = ServerSettings.model_validate(
        {
            "feature_logging": {
                "enabled": False,
                "queue_capacity": 1234,
                "write_to_disk_interval_secs": 7,
                "flush_interval_secs": 600,
                "emit_timeout_micro_secs": 10000,
            }
        }
    )
    assert settings.feature_log_enabled is False
    assert settings.feature_log_queue_rows == 1234
    assert settings.feature_log_flush_interval_seconds == 7
    assert ServerSettings().feature_log_enabled is True
    with pytest.raises(ValueError, match=r"unknown keys \['queue_size'\]"):
        ServerSettings.model_validate({"feature_logging": {"queue_size": 5}})
