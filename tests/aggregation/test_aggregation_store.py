"""Aggregation views end to end: apply, plan, CLI listings, registry dump, and training data mixed with
plain and on-demand views, against the brute-force reference."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aggregation_reference import close, expected
from potluck import BatchFeatureView, FeatureStore, StreamFeatureView
from potluck.aggregation.rule import micros
from potluck.definitions.errors import PotluckError
from tests_support import run_cli

FEATURES = """\
from datetime import timedelta

from potluck import (
    Aggregation, BatchFeatureView, Entity, FeatureService, FeatureView, Field, FileSource, PushSource,
    RequestSource, StreamFeatureView, on_demand_feature_view,
)
from potluck.types import Float64, Int64

user = Entity(name="user", join_keys=["user_id"])
tx = FileSource(name="tx", path="data/tx", timestamp_field="ts", created_timestamp_column="created")
tx_push = PushSource(name="tx_push", batch_source=tx)
INPUTS = [Field(name="amount", dtype=Float64), Field(name="items", dtype=Int64)]

tx_stream = StreamFeatureView(
    name="tx_stream", entities=[user], source=tx_push, schema=INPUTS, timestamp_field="ts",
    aggregations=[
        Aggregation(column="amount", function="sum", time_window=timedelta(hours=1)),
        Aggregation(column="amount", function="avg", time_window=timedelta(days=1)),
        Aggregation(column="items", function="count", time_window=timedelta(days=7)),
        Aggregation(column="amount", function="stddev", time_window=timedelta(days=7), slide_interval=timedelta(days=1)),
        Aggregation(column="items", function="last"),
    ],
)
tx_batch = BatchFeatureView(
    name="tx_batch", entities=[user], source=tx, schema=INPUTS,
    aggregations=[Aggregation(column="items", function="max", time_window=timedelta(hours=2), name="max_items_2h")],
)
profile = FeatureView(
    name="profile", entities=[user], ttl=timedelta(0), schema=[Field(name="age", dtype=Int64)],
    source=FileSource(name="profile_source", path="data/profile.parquet", timestamp_field="ts"),
)
req = RequestSource(name="req", schema=[Field(name="bonus", dtype=Float64)])


@on_demand_feature_view(sources=[tx_stream[["sum_amount_3600s"]], req], schema=[Field(name="boosted", dtype=Float64)],
                        mode="python")
def boosted(inputs: dict) -> dict:
    return {"boosted": [None if a is None else a + b for a, b in zip(inputs["sum_amount_3600s"], inputs["bonus"])]}


service = FeatureService(name="tx_service", features=[tx_stream[["count_items_604800s"]], profile])
"""

T0 = datetime(2024, 3, 1, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _events(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        ts = T0 + timedelta(minutes=rng.randrange(0, 10 * 24 * 60, 7))
        out.append(
            {
                "user_id": rng.randrange(4),
                "ts": ts,
                "created": ts + timedelta(minutes=rng.choice([0, 0, 3, 90])),
                "amount": None if rng.random() < 0.1 else round(rng.uniform(-50, 500), 2),
                "items": None if rng.random() < 0.1 else rng.randrange(10),
                "arrival": i,
            }
        )
    return out


def _us(value: datetime) -> int:
    return micros(value - EPOCH)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    root = tmp_path_factory.mktemp("agg_repo")
    (root / "data" / "tx").mkdir(parents=True)
    (root / "feature_store.yaml").write_text("project: agg\nregistry: data/registry.db\n")
    (root / "features.py").write_text(FEATURES)
    events = _events(400, seed=7)
    ts_type = pa.timestamp("us", tz="UTC")
    for part, chunk in enumerate((events[:150], events[150:])):
        pq.write_table(
            pa.table(
                {
                    "user_id": pa.array([e["user_id"] for e in chunk], pa.int64()),
                    "ts": pa.array([e["ts"] for e in chunk], ts_type),
                    "created": pa.array([e["created"] for e in chunk], ts_type),
                    "amount": pa.array([e["amount"] for e in chunk], pa.float64()),
                    "items": pa.array([e["items"] for e in chunk], pa.int64()),
                }
            ),
            root / "data" / "tx" / f"part-{part}.parquet",
        )
    pq.write_table(
        pa.table(
            {"user_id": pa.array([0, 1, 2, 3], pa.int64()), "ts": pa.array([T0] * 4, ts_type), "age": [30, 40, 50, 60]}
        ),
        root / "data" / "profile.parquet",
    )
    store = FeatureStore(repo_path=root)
    store.apply()
    store.close()
    return root, events


def test_registry_kinds_and_listings(
    repo: tuple[Path, list[dict[str, Any]]], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = repo
    store = FeatureStore(repo_path=root)
    snapshot = store.registry_snapshot()
    assert isinstance(snapshot.get("stream_feature_view", "tx_stream"), StreamFeatureView)
    assert isinstance(snapshot.get("feature_view", "tx_batch"), BatchFeatureView)
    assert [v.name for v in store.list_stream_feature_views()] == ["tx_stream"]
    assert [v.name for v in store.list_batch_feature_views()] == ["tx_batch"]
    assert [v.name for v in store.list_all_feature_views()] == ["profile", "tx_batch", "tx_stream", "boosted"]
    assert store.get_stream_feature_view("tx_stream").feature_names[0] == "sum_amount_3600s"
    assert not store.plan().has_changes  # applying again changes nothing
    store.close()
    monkeypatch.chdir(root)
    code, out, _ = run_cli(capsys, "stream-feature-views", "list")
    assert code == 0
    assert "tx_stream" in out
    assert "sum(amount) 1:00:00/0:05:00" in out
    code, out, _ = run_cli(capsys, "stream-feature-views", "describe", "tx_stream", "--output", "json")
    assert code == 0
    spec = json.loads(out)
    assert spec["aggregations"][3] == {
        "column": "amount",
        "function": "stddev",
        "name": "",
        "slide_interval_seconds": 86400.0,
        "time_window_seconds": 604800.0,
    }
    code, out, _ = run_cli(capsys, "feature-views", "list")
    assert code == 0
    assert "tx_batch" in out
    assert "batch" in out
    assert "tx_stream" not in out
    code, out, _ = run_cli(capsys, "registry", "dump")
    assert [o["name"] for o in json.loads(out)["objects"]["stream_feature_view"]] == ["tx_stream"]
    code, out, _ = run_cli(capsys, "features", "list")
    assert "max_items_2h" in out
    assert "stddev_amount_604800s" in out


def test_training_data_mixes_every_kind_of_view(repo: tuple[Path, list[dict[str, Any]]]) -> None:
    root, events = repo
    rng = random.Random(3)
    times = [T0 + timedelta(minutes=rng.randrange(-60, 12 * 24 * 60)) for _ in range(60)]
    times += [T0 + timedelta(hours=5), T0 + timedelta(hours=5)]  # duplicates, on a tile boundary
    entity = pa.table(
        {
            "user_id": pa.array([rng.randrange(5) for _ in times], pa.int64()),
            "event_timestamp": pa.array(times, pa.timestamp("us", tz="UTC")),
            "bonus": [float(i) for i in range(len(times))],
        }
    )
    store = FeatureStore(repo_path=root)
    features = [
        "tx_stream:sum_amount_3600s",
        "tx_stream:avg_amount_86400s",
        "tx_stream:count_items_604800s",
        "tx_stream:stddev_amount_604800s",
        "tx_stream:last_items",
        "tx_batch:max_items_2h",
        "profile:age",
        "boosted:boosted",
    ]
    for availability in (False, True):
        got = store.get_historical_features(entity, features, availability_time=availability).to_arrow()
        assert got.column("bonus").to_pylist() == entity.column("bonus").to_pylist()  # the input order
        specs = {
            "sum_amount_3600s": ("amount", "sum", 3600, 300),
            "avg_amount_86400s": ("amount", "mean", 86400, 3600),
            "count_items_604800s": ("items", "count", 604800, 3600),
            "stddev_amount_604800s": ("amount", "stddev", 604800, 86400),
            "last_items": ("items", "last", None, None),
            "max_items_2h": ("items", "max", 7200, 300),
        }
        rows = got.to_pylist()
        for row in rows:
            t = _us(row["event_timestamp"])
            mine = [
                e for e in events if e["user_id"] == row["user_id"] and (not availability or _us(e["created"]) <= t)
            ]
            seen = any(_us(e["ts"]) <= t for e in mine)
            for name, (column, fn, window, hop) in specs.items():
                evs = [
                    {
                        "key": 0,
                        "ts": _us(e["ts"]),
                        "created": _us(e["created"]),
                        "value": e[column],
                        "arrival": e["arrival"],
                    }
                    for e in mine
                ]
                w = None if window is None else window * 1_000_000
                h = None if hop is None else hop * 1_000_000
                want = expected(evs, 0, t, fn, w, h) if seen else None
                assert close(row[name], want, rel=1e-9, abs_tol=1e-6), (availability, name, row, want)
            if row["sum_amount_3600s"] is not None:
                assert row["boosted"] == pytest.approx(row["sum_amount_3600s"] + row["bonus"])
            assert row["age"] == (
                None if row["user_id"] == 4 or row["event_timestamp"] < T0 else 30 + 10 * row["user_id"]
            )
    service = store.get_historical_features(entity, store.get_feature_service("tx_service")).to_arrow()
    assert service.column_names == ["user_id", "event_timestamp", "bonus", "count_items_604800s", "age"]
    store.close()


def test_bad_definitions_fail_at_apply_naming_the_view(repo: tuple[Path, list[dict[str, Any]]], tmp_path: Path) -> None:
    root, _ = repo
    for old, new, message in [
        ('function="sum"', 'function="median"', r"StreamFeatureView 'tx_stream': aggregations\[0\].*'median'"),
        (
            'Field(name="amount", dtype=Float64), Field(name="items", dtype=Int64)]',
            'Field(name="amount", dtype=Float64), Field(name="items", dtype=Int64), Field(name="nope", dtype=Int64)]',
            r"'tx_stream': field 'nope' is not a column of source 'tx_push'",
        ),
        (
            'timestamp_field="ts",',
            'timestamp_field="when",',
            r"'tx_stream': column 'when' is missing from source 'tx_push'",
        ),
    ]:
        copy = tmp_path / old.replace('"', "").replace("=", "_")[:20]
        copy.mkdir()
        (copy / "data").symlink_to(root / "data")
        (copy / "feature_store.yaml").write_text("project: agg\nregistry: registry_copy.db\n")
        (copy / "features.py").write_text(FEATURES.replace(old, new, 1))
        store = FeatureStore(repo_path=copy)
        with pytest.raises(PotluckError, match=message):
            store.plan()
        store.close()


def test_plan_flags_a_removed_aggregation_as_breaking(repo: tuple[Path, list[dict[str, Any]]], tmp_path: Path) -> None:
    root, _ = repo
    copy = tmp_path / "changed"
    copy.mkdir()
    (copy / "data").symlink_to(root / "data")
    (copy / "feature_store.yaml").write_text("project: agg\nregistry: registry_copy.db\n")
    (copy / "features.py").write_text(FEATURES)
    store = FeatureStore(repo_path=copy)
    store.apply()
    (copy / "features.py").write_text(
        FEATURES.replace('Aggregation(column="items", function="last"),', "").replace(
            "hours=2), name=", "hours=4), name="
        )
    )
    plan = store.plan()
    diffs = {d.name: d for d in plan.diffs if d.action == "updated"}
    assert set(diffs) == {"tx_stream", "tx_batch"}
    assert diffs["tx_stream"].breaking == ("feature 'last_items' removed",)
    assert diffs["tx_stream"].kind == "stream_feature_view"
    assert any(c.path.startswith("aggregations") for c in diffs["tx_batch"].changes)
    store.close()


def test_a_push_source_without_rows_yet_gives_nulls(tmp_path: Path) -> None:
    (tmp_path / "data" / "tx").mkdir(parents=True)
    (tmp_path / "feature_store.yaml").write_text("project: agg\nregistry: data/registry.db\n")
    # No rows to read the key's type from: the schema declares it.
    features = FEATURES.split("tx_batch = ", maxsplit=1)[0].replace(
        "INPUTS = [", 'INPUTS = [Field(name="user_id", dtype=Int64), '
    )
    (tmp_path / "features.py").write_text(features)
    store = FeatureStore(repo_path=tmp_path)
    store.apply()
    entity = pa.table(
        {"user_id": pa.array([1, 2], pa.int64()), "event_timestamp": pa.array([T0, T0], pa.timestamp("us", tz="UTC"))}
    )
    got = store.get_historical_features(entity, ["tx_stream:count_items_604800s", "tx_stream:last_items"]).to_arrow().to_pydict()
    assert got["count_items_604800s"] == [None, None]
    assert got["last_items"] == [None, None]
    store.close()
