"""The demo repository (`potluck init`) on the PostgreSQL offline store gives DuckDB's answers.

Its Parquet data is loaded into PostgreSQL tables and its views read them through PostgreSQLSource;
training data, materialized online values and apply-time schema checks are compared with the same
repository on DuckDB.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from potluck import FeatureStore
from potluck.definitions.errors import PotluckError
from potluck.repo.template import scaffold

pytestmark = pytest.mark.postgres


def _load(url: str, name: str, path: Path) -> None:
    import psycopg

    from potluck.offline import postgres_arrow
    from potluck.offline.sql import POSTGRES

    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cursor:
        postgres_arrow.create_table(cursor, POSTGRES.table_name(name), pq.read_table(path), temporary=False)


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FeatureStore, FeatureStore]]:
    """The demo on DuckDB, and the same demo with its data in PostgreSQL tables."""
    import uuid

    import psycopg

    from tests_support import POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, require_server

    require_server("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    database = f"potluck_demo_{uuid.uuid4().hex[:10]}"
    admin = f"host={POSTGRES_HOST} port={POSTGRES_PORT} user={POSTGRES_USER} dbname=test"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    url = f"postgresql://{POSTGRES_USER}@{POSTGRES_HOST}:{POSTGRES_PORT}/{database}"
    root = tmp_path_factory.mktemp("demo")
    duck = scaffold(root / "duck", project="demo")
    pg = root / "pg"
    shutil.copytree(duck, pg)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute('CREATE SCHEMA "features"')
    _load(url, "features.user_stats", pg / "data" / "user_stats.parquet")
    _load(url, "merchant stats", pg / "data" / "merchant_stats.parquet")  # a name that needs quoting
    features = (pg / "features.py").read_text()
    features = features.replace("FileSource,", "FileSource, PostgreSQLSource,")
    features = features.replace(
        'user_source = FileSource(\n    name="user_stats_source",\n    path="data/user_stats.parquet",',
        'user_source = PostgreSQLSource(\n    name="user_stats_source",\n    table="features.user_stats",',
    )
    features = features.replace(
        'merchant_source = FileSource(\n    name="merchant_stats_source",\n    path="data/merchant_stats.parquet",',
        'merchant_source = PostgreSQLSource(\n    name="merchant_stats_source",\n'
        "    query='SELECT * FROM \"merchant stats\"',",
    )
    assert features.count("PostgreSQLSource(") == 2
    (pg / "features.py").write_text(features)
    config = (pg / "feature_store.yaml").read_text()
    config = config.replace(
        "offline_store:\n  type: duckdb\n",
        f"offline_store:\n  type: postgres\n  host: {POSTGRES_HOST}\n  port: {POSTGRES_PORT}\n"
        f"  database: {database}\n  user: {POSTGRES_USER}\n  db_schema: public\n",
    )
    (pg / "feature_store.yaml").write_text(config)
    stores = (FeatureStore(repo_path=duck), FeatureStore(repo_path=pg))
    try:
        for store in stores:
            store.apply(store.load_repository().objects)
        yield stores
    finally:
        for store in stores:
            store.close()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def test_training_data_is_the_same(repos: tuple[FeatureStore, FeatureStore]) -> None:
    duck, pg = repos
    labels = pd.read_parquet(duck.repo_path / "data" / "labels.parquet")
    frames = [
        s.get_historical_features(entity_df=labels, features=s.get_feature_service("fraud_model_v1")).to_df()
        for s in (duck, pg)
    ]
    assert len(frames[0]) == len(labels)
    assert frames[0].notna().sum().min() > 0  # some values found
    pd.testing.assert_frame_equal(frames[0], frames[1], check_dtype=False)


def test_materialized_online_values_are_the_same(repos: tuple[FeatureStore, FeatureStore]) -> None:
    duck, pg = repos
    end = datetime.now(UTC)
    for store in repos:
        store.materialize(end - timedelta(days=30), end)
    rows = [{"user_id": u, "merchant_id": m} for u, m in [(1, 1), (2, 5), (999, 50), (123456, 7)]]
    features = ["user_stats:txn_count_7d", "user_stats:country", "merchant_stats:risk_score"]
    online = [s.get_online_features(features=features, entity_rows=rows).to_dict() for s in (duck, pg)]
    assert online[0] == online[1]
    assert any(v is not None for v in online[0]["txn_count_7d"])


def test_a_missing_table_is_refused_at_apply_naming_it(repos: tuple[FeatureStore, FeatureStore]) -> None:
    from potluck import Entity, FeatureView, Field, PostgreSQLSource
    from potluck.types import Int64

    _, pg = repos
    source = PostgreSQLSource(name="nowhere", table="no_such_table", timestamp_field="event_timestamp")
    view = FeatureView(
        name="nowhere_view",
        entities=[Entity(name="user", join_keys=["user_id"])],
        schema=[Field(name="x", dtype=Int64)],
        source=source,
    )
    with pytest.raises(PotluckError, match="no_such_table does not exist"):
        pg.plan([view])
