"""The Spark materialization engine backfills aggregation views' tiles exactly as the local engine does.

The same events give the same tile records (byte for byte) on both engines, and reads at times
across window and hop edges equal the brute-force reference. A task that fails after writing
some keys and is retried by Spark leaves the same records; a job that fails for good records no
interval.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aggregation_reference import close, expected
from potluck import FeatureStore
from potluck.aggregation.online_tiles import read_values
from potluck.aggregation.rule import micros
from potluck.definitions.errors import RetrievalError
from potluck.online.protocol import ReadRequest
from potluck.retrieval.plans import online_view

pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'potluck[spark]')")
pytestmark = pytest.mark.spark

FEATURES_PY = """\
from datetime import timedelta

from potluck import Aggregation, BatchFeatureView, Entity, Field, FileSource, PushSource, StreamFeatureView
from potluck.types import Float64, Int64, String

user = Entity(name="user", join_keys=["user_id"])
tx = FileSource(name="tx", path="data/tx", timestamp_field="ts", created_timestamp_column="created")
tx_push = PushSource(name="tx_push", batch_source=tx)
INPUTS = [Field(name="amount", dtype=Float64), Field(name="items", dtype=Int64), Field(name="city", dtype=String)]
AGGS = [
    Aggregation(column="amount", function="sum", time_window=timedelta(minutes=10)),
    Aggregation(column="amount", function="mean", time_window=timedelta(hours=1)),
    Aggregation(column="amount", function="stddev", time_window=timedelta(hours=1)),
    Aggregation(column="amount", function="min", time_window=timedelta(days=1)),
    Aggregation(column="amount", function="max"),
    Aggregation(column="items", function="count", time_window=timedelta(minutes=10)),
    Aggregation(column="items", function="sum", time_window=timedelta(days=1)),
    Aggregation(column="items", function="last", time_window=timedelta(hours=1)),
    Aggregation(column="city", function="last", time_window=timedelta(days=1)),
    Aggregation(column="city", function="max", time_window=timedelta(hours=1)),
    Aggregation(column="city", function="count"),
]
tx_stream = StreamFeatureView(name="tx_stream", entities=[user], source=tx_push, schema=INPUTS, timestamp_field="ts",
                              aggregations=AGGS)
tx_batch = BatchFeatureView(name="tx_batch", entities=[user], source=tx, schema=INPUTS, aggregations=AGGS, online=True)
"""
ENGINE_YAML = "batch_engine:\n  type: spark.engine\n  partitions: 3\n"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# On an hour boundary, so the stream view's hop-aligned watermark is END itself.
END = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
USERS = 40
VIEWS = ("tx_batch", "tx_stream")
BATCH_ROWS = 37  # several written groups per task


def _us(value: datetime) -> int:
    return micros(value - EPOCH)


# Reads at the end and across the windows' and hops' edges after it.
READ_TIMES = [_us(END + d) for d in (timedelta(0), timedelta(minutes=4, seconds=59), timedelta(minutes=5),
                                     timedelta(minutes=10, microseconds=1), timedelta(minutes=59), timedelta(hours=1),
                                     timedelta(hours=23, minutes=30))]  # fmt: skip


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiles are written at END (the driver's clock of the tile feed, which both engines read)."""
    from potluck.streaming import tile_feed

    monkeypatch.setattr(tile_feed, "now_micros", lambda: _us(END))


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    rng = random.Random(5)
    out = []
    for i in range(1200):
        ts = END - timedelta(seconds=rng.randrange(0, 2 * 86_400))
        if rng.random() < 0.15:
            ts = END - timedelta(seconds=rng.randrange(0, 900))  # crowd the short windows and their edges
        if rng.random() < 0.05 and out:
            ts = out[-1]["ts"]  # ties on the event time: `last` takes the later-stored event
        out.append(
            {
                "key": rng.randrange(USERS),
                "ts": ts,
                "created": ts,
                "amount": None if rng.random() < 0.1 else round(rng.uniform(-50, 500), 2),
                "items": None if rng.random() < 0.1 else rng.randrange(10),
                "city": None if rng.random() < 0.1 else rng.choice(["lyon", "oslo", "riga", "kyiv"]),
                "arrival": i,
            }
        )
    return out


def _write_events(root: Path, events: list[dict[str, Any]]) -> None:
    ts_type = pa.timestamp("us", tz="UTC")
    (root / "data" / "tx").mkdir(parents=True)
    for part, chunk in enumerate((events[:500], events[500:])):
        pq.write_table(
            pa.table(
                {
                    "user_id": pa.array([e["key"] for e in chunk], pa.int64()),
                    "ts": pa.array([e["ts"] for e in chunk], ts_type),
                    "created": pa.array([e["created"] for e in chunk], ts_type),
                    "amount": pa.array([e["amount"] for e in chunk], pa.float64()),
                    "items": pa.array([e["items"] for e in chunk], pa.int64()),
                    "city": pa.array([e["city"] for e in chunk], pa.string()),
                }
            ),
            root / "data" / "tx" / f"part-{part}.parquet",
        )


@pytest.fixture
def pair(
    repo_factory: Callable[[str], Path], spark_session: Any, events: list[dict[str, Any]]
) -> Iterator[tuple[FeatureStore, FeatureStore]]:
    """The same repository twice: on the local engine, and on the Spark engine."""
    roots = repo_factory("local"), repo_factory("spark")
    for root in roots:
        (root / "features.py").write_text(FEATURES_PY)
        _write_events(root, events)
    with (roots[1] / "feature_store.yaml").open("a") as f:
        f.write(ENGINE_YAML)
    local, spark = FeatureStore(repo_path=roots[0]), FeatureStore(repo_path=roots[1])
    local.apply()
    spark.apply()
    yield local, spark
    local.close()
    spark.close()


def _records(store: FeatureStore, view_name: str) -> tuple[Any, list[Any]]:
    kind = "stream_feature_view" if view_name == "tx_stream" else "feature_view"
    view = store.registry_snapshot().get(kind, view_name)
    target = online_view(view, store.project)  # type: ignore[arg-type]
    keys = [target.key_encoder.encode([u]) for u in range(USERS + 2)]  # two keys never seen
    return target, store._online.read_tiles([ReadRequest(target, keys)])[0]  # type: ignore[attr-defined]


def _blobs(store: FeatureStore, view_name: str) -> list[bytes | None]:
    return [None if r is None else r.blob for r in _records(store, view_name)[1]]


def _check_reference(store: FeatureStore, events: list[dict[str, Any]], view_name: str) -> None:
    target, found = _records(store, view_name)
    spec = target.tiles
    for user, record in enumerate(found):
        mine = [e for e in events if e["key"] == user]
        assert (record is not None) == bool(mine), (view_name, user)
        if record is None:
            continue
        raw = {
            c: [{**e, "ts": _us(e["ts"]), "created": _us(e["created"]), "value": e[c]} for e in mine]
            for c in spec.columns
        }
        for t in READ_TIMES:
            for agg, value in zip(spec.aggregations, read_values(spec, record.blob, t), strict=True):
                want = expected(raw[agg.column], user, t, agg.function, agg.window, agg.hop)
                assert close(value, want), (view_name, user, t, agg.output, value, want)


@pytest.mark.parametrize("online_kind", ["sqlite"], indirect=True)
def test_spark_engine_tiles_equal_local_engine_and_reference(
    pair: tuple[FeatureStore, FeatureStore], events: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    local, spark = pair
    want = {r.feature_view: r.rows for r in local.materialize(None, END, batch_rows=BATCH_ROWS)}  # type: ignore[arg-type]
    seen: list[int] = []
    with caplog.at_level("WARNING", logger="potluck.materialize"):
        got = spark.materialize(None, END, batch_rows=BATCH_ROWS, progress=lambda view: seen.append)  # type: ignore[arg-type]
    assert not [r for r in caplog.records if "local engine" in r.getMessage()]  # no fallback
    assert {r.feature_view: r.rows for r in got} == want == {"tx_batch": 1200, "tx_stream": 1200}
    assert sum(seen) == 2400
    for view_name in VIEWS:
        assert _blobs(spark, view_name) == _blobs(local, view_name)
        _check_reference(spark, events, view_name)
        assert len(spark.materialization_intervals(view_name)) == 1
    features = [
        "tx_batch:max_amount",
        "tx_batch:count_city",
        "tx_stream:sum_items_86400s",
        "tx_stream:last_city_86400s",
    ]
    rows = {"user_id": list(range(USERS + 2))}
    assert spark.get_online_features(features, rows).to_dict() == local.get_online_features(features, rows).to_dict()


class FailOnce:
    """A task hook: the first attempt of partition 0 fails after writing its first group of keys."""

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


@pytest.mark.parametrize("online_kind", [pytest.param("redis", marks=pytest.mark.redis)], indirect=True)
def test_retried_task_leaves_the_local_engines_tiles(pair: tuple[FeatureStore, FeatureStore], tmp_path: Path) -> None:
    local, spark = pair
    _with_pickled_hooks()
    marker = tmp_path / "failed"
    spark._batch_engine.task_hook = FailOnce(marker)  # type: ignore[union-attr]
    local.materialize(None, END, ["tx_batch"], batch_rows=BATCH_ROWS)  # type: ignore[arg-type]
    spark.materialize(None, END, ["tx_batch"], batch_rows=BATCH_ROWS)  # type: ignore[arg-type]
    assert marker.read_text().split() == ["0"]  # the first attempt failed, the retry did not
    assert _blobs(spark, "tx_batch") == _blobs(local, "tx_batch")
    assert len(spark.materialization_intervals("tx_batch")) == 1


@pytest.mark.parametrize("online_kind", ["sqlite"], indirect=True)
def test_failed_tile_job_records_no_interval(pair: tuple[FeatureStore, FeatureStore], tmp_path: Path) -> None:
    local, spark = pair
    _with_pickled_hooks()
    marker = tmp_path / "failed"
    spark._batch_engine.task_hook = FailOnce(marker, always=True)  # type: ignore[union-attr]
    with pytest.raises(RetrievalError, match=r"materialize 'tx_batch': the Spark job failed.*injected failure"):
        spark.materialize(None, END, ["tx_batch"], batch_rows=BATCH_ROWS)  # type: ignore[arg-type]
    assert marker.read_text().split() == ["0", "1"]  # both attempts failed
    assert spark.materialization_intervals() == []
    spark._batch_engine.task_hook = None  # type: ignore[union-attr]
    spark.materialize(None, END, ["tx_batch"], batch_rows=BATCH_ROWS)  # type: ignore[arg-type]
    local.materialize(None, END, ["tx_batch"], batch_rows=BATCH_ROWS)  # type: ignore[arg-type]
    assert _blobs(spark, "tx_batch") == _blobs(local, "tx_batch")
