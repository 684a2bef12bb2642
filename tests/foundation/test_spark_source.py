"""`SparkSource` and `offline_store: type: spark`: definitions, registry round trip and config (no Spark needed)."""

from __future__ import annotations

import pytest

from potluck.definitions import DataSource
from potluck.definitions.errors import DefinitionError
from potluck.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource
from potluck.offline.spark_config import SparkOfflineStoreConfig
from potluck.repo.config import RepoConfig


@pytest.mark.parametrize(
    "kwargs",
    [
        {"table": "lake.users"},
        {"name": "q", "query": "SELECT * FROM t"},
        {"name": "p", "path": "/data/users", "file_format": "json", "date_partition_column": "day"},
    ],
)
def test_round_trip(kwargs: dict[str, str]) -> None:
    source = SparkSource(timestamp_field="ts", created_timestamp_column="created", field_mapping={"a": "b"}, **kwargs)
    again = DataSource.from_spec(source.to_spec())
    assert isinstance(again, SparkSource)
    assert again.to_spec() == source.to_spec()
    assert source.name == kwargs.get("name", "lake_users")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "x"}, "one of 'table', 'query' or 'path'"),
        ({"name": "x", "table": "t", "query": "SELECT 1"}, "cannot be combined"),
        ({"name": "x", "path": "/p"}, "needs 'file_format'"),
        ({"name": "x", "path": "/p", "file_format": "orc"}, "must be one of parquet, csv, json, avro"),
        ({"query": "SELECT 1"}, "give it a 'name'"),
    ],
)
def test_invalid_sources_name_the_problem(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        SparkSource(timestamp_field="ts", **kwargs)


def test_spark_config_keys() -> None:
    config = RepoConfig(
        project="p",
        offline_store={"type": "spark", "spark_conf": {"spark.master": "local[2]", "n": 4, "flag": True, "f": 0.5}},
    )
    store = config.offline_store
    assert isinstance(store, SparkOfflineStoreConfig)
    assert store.conf_strings() == {"spark.master": "local[2]", "n": "4", "flag": "true", "f": "0.5"}
    assert RepoConfig(project="p", offline_store={"memory_limit": "1GB"}).offline_store.type == "duckdb"
