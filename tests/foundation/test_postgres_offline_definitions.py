"""`PostgreSQLSource` and `offline_store: type: postgres`: validation, registry round trip, Feast's keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from potluck import PostgreSQLSource
from potluck.definitions.errors import ConfigError, DefinitionError
from potluck.definitions.sources import DataSource
from potluck.infra.offline_stores.contrib.postgres_offline_store import postgres_source
from potluck.offline.postgres_config import PostgreSQLOfflineStoreConfig
from potluck.offline.sql import DUCKDB, POSTGRES
from potluck.repo.config import config_from_dict


def test_a_table_or_a_query_round_trips_through_the_registry_spec() -> None:
    for source in (
        PostgreSQLSource(name="s", table="features.users", timestamp_field="ts", created_timestamp_column="c"),
        PostgreSQLSource(name="q", query="SELECT * FROM t", timestamp_field="ts", field_mapping={"a": "b"}),
        postgres_source.PostgreSQLSource(table="plain", timestamp_field="ts"),  # name defaults to the table
    ):
        again = DataSource.from_spec(source.to_spec())
        assert isinstance(again, PostgreSQLSource)
        assert again.to_spec() == source.to_spec()
    assert PostgreSQLSource(table="plain", timestamp_field="ts").name == "plain"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "s", "timestamp_field": "ts"}, "exactly one of 'table' and 'query'"),
        ({"name": "s", "table": "t", "query": "SELECT 1", "timestamp_field": "ts"}, "exactly one"),
        ({"name": "s", "table": "a..b", "timestamp_field": "ts"}, "'name' or 'schema.name'"),
        ({"name": "s", "table": "t"}, "'timestamp_field' is required"),
    ],
)
def test_bad_definitions_are_refused_naming_the_source(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        PostgreSQLSource(**kwargs)  # type: ignore[arg-type]


def test_the_config_takes_feasts_keys(tmp_path: Path) -> None:
    config = config_from_dict(
        {
            "project": "p",
            "offline_store": {
                "type": "feast.infra.offline_stores.contrib.postgres_offline_store.postgres.PostgreSQLOfflineStore",
                "host": "db",
                "port": 6543,
                "database": "features",
                "db_schema": "s",
                "user": "u",
                "password": "secret",
                "sslmode": "require",
                "min_conn": 1,
                "max_conn": 4,
                "keepalives_idle": 30,
                "conn_type": "pool",
            },
        },
        tmp_path,
    )
    offline = config.offline_store
    assert isinstance(offline, PostgreSQLOfflineStoreConfig)
    assert (offline.host, offline.port, offline.database, offline.max_conn) == ("db", 6543, "features", 4)
    info = offline.conninfo()
    assert "TimeZone=UTC" in info
    assert "sslmode=require" in info
    assert "keepalives_idle=30" in info


def test_an_unknown_key_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'offline_store.hots'.*Did you mean 'host'"):
        config_from_dict({"project": "p", "offline_store": {"type": "postgres", "hots": "db"}}, tmp_path)


def test_the_default_offline_store_is_still_duckdb(tmp_path: Path) -> None:
    assert config_from_dict({"project": "p"}, tmp_path).offline_store.type == "duckdb"
    assert (
        config_from_dict({"project": "p", "offline_store": {"memory_limit": "1GB"}}, tmp_path).offline_store.type
        == "duckdb"
    )


def test_dialect_differences_are_data() -> None:
    assert POSTGRES.composite(["a", "b"]) == "ROW(a, b)"
    assert DUCKDB.composite(["a", "b"]) == "{'k0': a, 'k1': b}"
    assert POSTGRES.composite_field("x", 0) == "(x).f1"
    assert POSTGRES.mod("t", 5) == "mod(t, 5)"
    assert "%" not in POSTGRES.mod("t", 5)
    assert POSTGRES.minus_micros("t", 7).params == (7,)
    assert "FILTER (WHERE v IS NOT NULL AND (c))" in POSTGRES.arg_max("v", "k", "c")
    assert DUCKDB.arg_max("v", "k", "c") == "arg_max(v, k) FILTER (WHERE c)"
    assert POSTGRES.table_name('s.we"ird') == '"s"."we""ird"'
