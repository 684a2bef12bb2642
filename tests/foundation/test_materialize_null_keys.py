"""Rows with a null join key are never written by materialization, nor counted as written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from repo_helpers import make_repo

from potluck import FeatureStore
from potluck.retrieval.plans import online_view

BASE = datetime(2024, 1, 1, tzinfo=UTC)


def test_null_keys_are_not_written_nor_counted(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    times = pa.array([BASE, BASE, BASE + timedelta(hours=1), BASE], pa.timestamp("us", tz="UTC"))
    pq.write_table(
        pa.table(
            {
                "driver_id": pa.array([1, 2, None, None], pa.int64()),
                "ts": times,
                "created": times,
                "conv_rate": [0.1, 0.2, 0.3, 0.4],
                "trips": pa.array([1, 2, 3, 4], pa.int64()),
                "city": ["a", "b", "c", "d"],
            }
        ),
        tmp_path / "data" / "driver.parquet",
    )
    store = FeatureStore(repo_path=make_repo(tmp_path))
    try:
        store.apply()
        (result,) = store.materialize(BASE - timedelta(days=1), BASE + timedelta(days=1))
        assert result.rows == 2
        view = store.get_feature_view("driver_stats")
        table = pa.table(
            {"driver_id": pa.array([None, 3], pa.int64()), "event_timestamp": times[:2], "conv_rate": [0.5, 0.6],
             "trips": pa.array([5, 6], pa.int64()), "city": ["e", "f"]}
        )  # fmt: skip
        assert store._online.write(online_view(view, store.project), table) == 1  # the keyed row only
    finally:
        store.close()
