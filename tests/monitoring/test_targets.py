"""What statistics run over: a feature service, a retrieval job, an Arrow table, time ranges."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import pyarrow as pa
import pytest
from monitoring_support import START, WEEK, write_repo

from potluck import FeatureStore
from potluck.definitions.errors import NotFoundError, RetrievalError


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeatureStore]:
    fs = FeatureStore(repo_path=write_repo(tmp_path_factory.mktemp("targets")))
    fs.apply()
    yield fs
    fs.close()


def test_feature_service_profiles_its_selection(store: FeatureStore) -> None:
    profile = store.compute_statistics("txn_service", START, START + 2 * WEEK)
    assert profile.source == "feature_service:txn_service"
    assert [(f.view, f.name) for f in profile.features] == [("txn", "stable"), ("txn", "mean_shift"), ("txn", "city")]
    assert profile.row_count == 40_000


def test_time_range_bounds_are_inclusive(store: FeatureStore) -> None:
    import pyarrow.parquet as pq

    table = pq.read_table(store.repo_path / "data" / "txn.parquet")
    stamps = table["event_timestamp"].to_pylist()
    low, high = sorted(stamps)[100], sorted(stamps)[5000]
    profile = store.compute_statistics("txn", low, high, features=["stable"])
    expected = sum(1 for s in stamps if low <= s <= high)
    assert profile.feature("stable").count == expected
    assert profile.start == low
    assert profile.end == high


def test_retrieval_job_equals_its_arrow_table(store: FeatureStore) -> None:
    rng = np.random.default_rng(9)
    entities = pa.table(
        {
            "user_id": pa.array(rng.integers(1, 5000, 3000), pa.int64()),
            "event_timestamp": pa.array([START + WEEK] * 3000, pa.timestamp("us", tz="UTC")),
        }
    )
    job = store.get_historical_features(entities, ["txn:stable", "txn:city", "txn:nulls"])
    from_job = store.compute_statistics(job)
    from_table = store.compute_statistics(job.to_arrow())
    assert {f.name for f in from_job.features} == {"user_id", "stable", "city", "nulls"}
    assert from_job.to_dict()["features"] == from_table.to_dict()["features"]
    stable = job.to_arrow()["stable"].to_numpy(zero_copy_only=False)
    kept = stable[~np.isnan(stable.astype(float))]
    assert from_job.feature("stable").mean == pytest.approx(kept.mean())


def test_bad_targets_are_clear(store: FeatureStore) -> None:
    with pytest.raises(NotFoundError, match="txn"):
        store.compute_statistics("txm")
    with pytest.raises(RetrievalError, match="no feature 'nope'"):
        store.compute_statistics("txn", features=["nope"])
    with pytest.raises(RetrievalError, match="start and end apply to a feature view"):
        store.compute_statistics(pa.table({"x": [1.0]}), START, START + timedelta(days=1))
    with pytest.raises(RetrievalError, match="got int"):
        store.compute_statistics(42)
