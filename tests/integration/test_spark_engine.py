"""The Spark materialization engine gives exactly the local engine's online state, on every online store.

A task that fails once and is retried by Spark rewrites rows, which newest-wins makes harmless; a
job that fails records no interval.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from integration_support import DRIVERS, END

from potluck import FeatureStore
from potluck.definitions.errors import RetrievalError

pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'potluck[spark]')")

FEATURES = ["driver_stats:conv_rate", "driver_stats:trips", "driver_stats:city", "driver_stats:scores"]
ALL_IDS = list(range(1, DRIVERS + 3))  # two ids that have no rows
WINDOW = (END - timedelta(days=60), END)
ENGINE_YAML = "batch_engine:\n  type: spark.engine\n  partitions: 3\nmaterialization:\n  online_write_batch_size: 40\n"


def add_ties(path: Path) -> None:
    """Rows that tie the latest row of some drivers on event and created time: the later-stored row wins."""
    table = pq.read_table(path)
    frame = table.to_pandas()
    latest = frame.sort_values(["event_timestamp", "created"]).groupby("driver_id").tail(1).head(40)
    ties = latest.assign(trips=latest["trips"] + 1000, city="tie")
    extra = pa.Table.from_pandas(ties, schema=table.schema, preserve_index=False)
    pq.write_table(pa.concat_tables([table, extra]), path)


def dump(store: FeatureStore) -> dict[str, list[Any]]:
    """Every online value, status and event time of every driver."""
    response = store.get_online_features(FEATURES, {"driver_id": ALL_IDS})
    out = dict(response.to_dict())
    out.update({f"{k}__status": [s.value for s in v] for k, v in response.statuses.items()})
    out.update({f"{k}__ts": v for k, v in response.event_timestamps.items()})
    return out


@pytest.fixture
def pair(repo_factory: Callable[[str], Path], spark_session: Any) -> Iterator[tuple[FeatureStore, FeatureStore]]:
    """The same repository twice: on the local engine, and on the Spark engine."""
    local_root, spark_root = repo_factory("local"), repo_factory("spark")
    for root in (local_root, spark_root):
        add_ties(root / "data" / "driver_stats.parquet")
    with (spark_root / "feature_store.yaml").open("a") as f:
        f.write(ENGINE_YAML)
    local, spark = FeatureStore(repo_path=local_root), FeatureStore(repo_path=spark_root)
    local.apply()
    spark.apply()
    yield local, spark
    local.close()
    spark.close()


def test_spark_engine_equals_local_engine(pair: tuple[FeatureStore, FeatureStore]) -> None:
    local, spark = pair
    seen: list[int] = []
    [want] = local.materialize(*WINDOW, ["driver_stats"])
    [got] = spark.materialize(*WINDOW, ["driver_stats"], progress=lambda view: seen.append)
    assert (got.rows, got.rows_read) == (want.rows, want.rows_read)
    assert sum(seen) == got.rows
    expected = dump(local)
    assert dump(spark) == expected
    assert "tie" in expected["city"]  # the tie rows won, on both engines
    assert len(spark.materialization_intervals("driver_stats")) == 1
    # incremental runs continue from the watermark on both engines
    later = END + timedelta(minutes=30)
    assert spark.materialize_incremental(later, ["driver_stats"])[0].start == END
    local.materialize_incremental(later, ["driver_stats"])
    assert dump(spark) == dump(local)


class FailOnce:
    """A task hook: the first attempt of partition 0 fails after writing its first slice."""

    def __init__(self, marker: Path, always: bool = False) -> None:
        self.marker = str(marker)
        self.always = always

    def __call__(self, partition: int, attempt: int, rows: int) -> None:
        if partition == 0 and (attempt == 0 or self.always):
            with open(self.marker, "a") as f:
                f.write(f"{attempt}\n")
            raise RuntimeError("injected failure of partition 0")


def _with_pickled_hooks() -> None:
    from pyspark import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the executors cannot import this module


@pytest.mark.parametrize("online_kind", ["sqlite"], indirect=True)
def test_retried_task_leaves_the_local_engines_state(pair: tuple[FeatureStore, FeatureStore], tmp_path: Path) -> None:
    local, spark = pair
    _with_pickled_hooks()
    marker = tmp_path / "failed"
    spark._batch_engine.task_hook = FailOnce(marker)  # type: ignore[union-attr]
    local.materialize(*WINDOW, ["driver_stats"])
    spark.materialize(*WINDOW, ["driver_stats"])
    assert marker.read_text().split() == ["0"]  # the first attempt failed, the retry did not
    assert dump(spark) == dump(local)
    assert len(spark.materialization_intervals("driver_stats")) == 1


@pytest.mark.parametrize("online_kind", ["sqlite"], indirect=True)
def test_failed_job_records_no_interval(pair: tuple[FeatureStore, FeatureStore], tmp_path: Path) -> None:
    local, spark = pair
    _with_pickled_hooks()
    marker = tmp_path / "failed"
    spark._batch_engine.task_hook = FailOnce(marker, always=True)  # type: ignore[union-attr]
    with pytest.raises(RetrievalError, match=r"materialize 'driver_stats': the Spark job failed.*injected failure"):
        spark.materialize(*WINDOW, ["driver_stats"])
    assert marker.read_text().split() == ["0", "1"]  # both attempts failed
    assert spark.materialization_intervals() == []
    spark._batch_engine.task_hook = None  # type: ignore[union-attr]
    spark.materialize(*WINDOW, ["driver_stats"])
    local.materialize(*WINDOW, ["driver_stats"])
    assert dump(spark) == dump(local)
