"""The demo repository (`potluck init`) on the Spark offline store gives DuckDB's training data and
online values: only `feature_store.yaml` differs between the two repositories."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from potluck import FeatureStore
from potluck.repo.template import scaffold

pytestmark = pytest.mark.spark

# An on-demand view over the demo's views, applied after the join on both engines.
ODFV_PY = """
from potluck import Field, RequestSource, on_demand_feature_view
from potluck.types import Float64

from features import merchant_stats, user_stats

amount_request = RequestSource(name="amount_request", schema=[Field(name="amount", dtype=Float64)])


@on_demand_feature_view(
    sources=[user_stats, merchant_stats, amount_request],
    schema=[Field(name="amount_ratio", dtype=Float64), Field(name="risky_amount", dtype=Float64)],
    mode="pandas",
)
def amount_features(inputs):
    import pandas as pd

    out = pd.DataFrame()
    out["amount_ratio"] = inputs["amount"] / inputs["avg_amount_30d"]
    out["risky_amount"] = inputs["amount"] * inputs["risk_score"].astype("float64")
    return out
"""

SPARK_YAML_OFFLINE = """offline_store:
  type: spark
  spark_conf:
    spark.master: "local[2]"
    spark.sql.shuffle.partitions: 4
    spark.ui.enabled: false
"""
FEATURES = [
    "user_stats:txn_count_7d",
    "user_stats:avg_amount_30d",
    "user_stats:country",
    "user_stats:is_premium",
    "merchant_stats:risk_score",
    "merchant_stats:category",
    "amount_features:amount_ratio",
]


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory, spark_session: Any) -> tuple[Path, Path]:
    """The demo repository twice, with the same data: on DuckDB, and on Spark."""
    duck = scaffold(tmp_path_factory.mktemp("demo") / "duck", project="demo")
    (duck / "on_demand.py").write_text(ODFV_PY, encoding="utf-8")
    spark = tmp_path_factory.mktemp("demo") / "spark"
    shutil.copytree(duck, spark)
    yaml = (spark / "feature_store.yaml").read_text(encoding="utf-8")
    (spark / "feature_store.yaml").write_text(
        yaml.replace("offline_store:\n  type: duckdb\n", SPARK_YAML_OFFLINE), encoding="utf-8"
    )
    assert "type: spark" in (spark / "feature_store.yaml").read_text(encoding="utf-8")
    for path in (duck, spark):
        FeatureStore(repo_path=path).apply()
    return duck, spark


def _entity(repo: Path) -> pa.Table:
    labels = pq.read_table(repo / "data" / "labels.parquet")
    amount = pa.array([float(i % 97) + 0.5 for i in range(labels.num_rows)])
    return labels.append_column("amount", amount)


def test_training_data_equals_duckdb(repos: tuple[Path, Path]) -> None:
    duck, spark = repos
    expected = FeatureStore(repo_path=duck).get_historical_features(_entity(duck), FEATURES).to_arrow()
    job = FeatureStore(repo_path=spark).get_historical_features(_entity(spark), FEATURES)
    got = job.to_arrow()
    assert got.num_rows == expected.num_rows > 0
    assert got.equals(expected), (got.schema, expected.schema)


def test_availability_time_and_full_names_equal_duckdb(repos: tuple[Path, Path]) -> None:
    duck, spark = repos
    features = [f for f in FEATURES if not f.startswith("amount_features")]

    def run(repo: Path) -> pa.Table:
        store = FeatureStore(repo_path=repo)
        entity = _entity(repo).slice(0, 300)  # the LATERAL plan of this mode is Spark's slowest: few rows
        job = store.get_historical_features(entity, features, full_feature_names=True, availability_time=True)
        return job.to_arrow()

    assert run(spark).equals(run(duck))


def test_spark_dataframe_and_sql_entity_inputs(repos: tuple[Path, Path], spark_session: Any, tmp_path: Path) -> None:
    duck, spark = repos
    features = FEATURES[:6]
    entity = pq.read_table(duck / "data" / "labels.parquet")
    expected = FeatureStore(repo_path=duck).get_historical_features(entity, features).to_arrow()
    store = FeatureStore(repo_path=spark)
    path = tmp_path / "entity.parquet"
    pq.write_table(entity, path)
    from_path = store.get_historical_features(str(path), features)
    assert from_path.to_arrow().equals(expected)
    frame = from_path.to_spark_df()  # data stays in Spark until asked
    assert frame.count() == entity.num_rows
    view = f"entity_rows_{id(path)}"
    spark_session.read.parquet(str(path)).coalesce(1).createOrReplaceTempView(view)
    from_sql = store.get_historical_features(f"SELECT * FROM {view}", features).to_arrow()
    key = ["user_id", "merchant_id", "event_timestamp"]
    assert _sorted(from_sql, key).equals(_sorted(expected, key))
    out = tmp_path / "out.parquet"
    from_path.to_parquet(str(out))
    assert pq.read_table(out).equals(expected)


def _sorted(table: pa.Table, keys: list[str]) -> pa.Table:
    others = [c for c in table.column_names if c not in keys and not pa.types.is_list(table.schema.field(c).type)]
    return table.sort_by([(c, "ascending") for c in [*keys, *others]])


def test_materialize_and_online_values_equal_duckdb(repos: tuple[Path, Path]) -> None:
    duck, spark = repos
    end = datetime.now(UTC)
    start = end - timedelta(days=30)
    rows = {}
    for repo in (duck, spark):
        store = FeatureStore(repo_path=repo)
        results = store.materialize(start, end, ["user_stats", "merchant_stats"])
        rows[repo] = sorted((r.feature_view, r.rows) for r in results)
    assert rows[spark] == rows[duck]
    online = FEATURES[:6]
    entities = {"user_id": list(range(0, 1010, 7)), "merchant_id": [i % 103 for i in range(0, 1010, 7)]}

    def read(repo: Path) -> dict[str, Any]:
        response = FeatureStore(repo_path=repo).get_online_features(online, entities)
        out = dict(response.to_dict())
        out.update({f"{k}__status": [s.value for s in v] for k, v in response.statuses.items()})
        out.update({f"{k}__ts": v for k, v in response.event_timestamps.items()})
        return out

    assert read(spark) == read(duck)
