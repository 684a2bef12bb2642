"""Materialization and online serving end to end through FeatureStore, on every online store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from integration_support import DRIVERS, END

from potluck import FeatureStore
from potluck.definitions.errors import RetrievalError

FEATURES = ["driver_stats:conv_rate", "driver_stats:trips", "driver_stats:city", "driver_stats:scores"]
ALL_IDS = list(range(1, DRIVERS + 3))  # two ids that have no rows


def dump(store: FeatureStore) -> dict[str, list[Any]]:
    """Every online value, status and event time of every driver (a full dump through the API)."""
    response = store.get_online_features(FEATURES, {"driver_id": ALL_IDS})
    out = dict(response.to_dict())
    out.update({f"{k}__status": [s.value for s in v] for k, v in response.statuses.items()})
    out.update({f"{k}__ts": v for k, v in response.event_timestamps.items()})
    return out


def test_online_equals_point_in_time_now(repo_factory: Callable[[], Path]) -> None:
    store = FeatureStore(repo_path=repo_factory())
    store.apply()
    [result] = store.materialize(END - timedelta(days=60), END, ["driver_stats"])
    assert result.rows == len({*pd.read_parquet(store.repo_path / "data/driver_stats.parquet")["driver_id"]})
    now = pd.Timestamp.now(tz="UTC")
    entity_df = pd.DataFrame({"driver_id": ALL_IDS, "event_timestamp": [now] * len(ALL_IDS)})
    expected = store.get_historical_features(entity_df, FEATURES).to_df()
    online = store.get_online_features(FEATURES, [{"driver_id": i} for i in ALL_IDS]).to_dict()
    assert expected["trips"].notna().sum() > DRIVERS * 0.9
    for name in ["conv_rate", "trips", "city"]:
        want = [None if pd.isna(v) else v for v in expected[name]]
        assert online[name] == want, name
    assert [None if s is None else [round(x, 5) for x in s] for s in online["scores"]] == [
        None if s is None else [round(float(x), 5) for x in s] for s in expected["scores"]
    ]
    statuses = store.get_online_features(FEATURES, {"driver_id": [DRIVERS + 1]}).statuses
    assert statuses["trips"][0].value == "NOT_FOUND"
    store.close()


def test_ttl_expiry_is_outside_max_age(repo_factory: Callable[[], Path]) -> None:
    root = repo_factory()
    text = (
        (root / "features.py")
        .read_text()
        .replace(
            'ttl=timedelta(days=30),\n    schema=[\n        Field(name="conv_rate"',
            'ttl=timedelta(days=1),\n    schema=[\n        Field(name="conv_rate"',
        )
    )
    (root / "features.py").write_text(text)
    store = FeatureStore(repo_path=root)
    store.apply()
    store.materialize(END - timedelta(days=60), END, ["driver_stats"])
    ids = list(range(1, DRIVERS + 1))
    response = store.get_online_features(["driver_stats:trips"], {"driver_id": ids})
    source = pd.read_parquet(root / "data/driver_stats.parquet")
    latest = source.groupby("driver_id")["event_timestamp"].max()
    cutoff = pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=1)
    statuses = [s.value for s in response.statuses["trips"]]
    values = response.to_dict()["trips"]
    for i, driver in enumerate(ids):
        if driver not in latest.index:
            assert statuses[i] == "NOT_FOUND"
        elif latest[driver] < cutoff - pd.Timedelta(minutes=5):
            assert (statuses[i], values[i]) == ("OUTSIDE_MAX_AGE", None)  # stale values are never served
        elif latest[driver] > cutoff + pd.Timedelta(minutes=5):
            assert statuses[i] == "PRESENT"
    assert {"OUTSIDE_MAX_AGE", "PRESENT"} <= set(statuses)
    store.close()


KILL_SCRIPT = """
import sys, time
from datetime import datetime, timedelta, timezone
from potluck import FeatureStore
store = FeatureStore(repo_path=sys.argv[1])
end = datetime.fromisoformat(sys.argv[2])
seen = []

def progress(view):
    def on_rows(n):
        seen.append(n)
        if len(seen) == 2:
            print("half-way", flush=True)
            time.sleep(120)
    return on_rows

store.materialize(end - timedelta(days=60), end, ["driver_stats"], progress=progress, batch_rows=20)
"""


def test_killed_materialization_rerun_equals_clean_run(repo_factory: Callable[[str], Path], tmp_path: Path) -> None:
    killed_root, clean_root = repo_factory("killed"), repo_factory("clean")
    killed, clean = FeatureStore(repo_path=killed_root), FeatureStore(repo_path=clean_root)
    killed.apply()
    clean.apply()
    script = tmp_path / "kill_me.py"
    script.write_text(KILL_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(killed_root), END.isoformat()], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "half-way"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert killed.materialization_intervals() == []  # nothing recorded for a run that did not finish
    partial = dump(killed)
    assert 0 < sum(s == "PRESENT" for s in partial["trips__status"]) < DRIVERS
    window = (END - timedelta(days=60), END)
    killed.materialize(*window, ["driver_stats"])
    clean.materialize(*window, ["driver_stats"])
    assert dump(killed) == dump(clean)
    assert len(killed.materialization_intervals("driver_stats")) == 1
    killed.close()
    clean.close()


def test_incremental_continues_from_watermark(repo_factory: Callable[[], Path]) -> None:
    store = FeatureStore(repo_path=repo_factory())
    store.apply()
    first = store.materialize_incremental(END - timedelta(days=5), ["driver_stats"])
    assert first[0].start == END - timedelta(days=5) - timedelta(days=30)  # first run: end - ttl
    second = store.materialize_incremental(END, ["driver_stats"], lookback=timedelta(hours=1))
    assert second[0].start == END - timedelta(days=5) - timedelta(hours=1)
    full = FeatureStore(repo_path=store.repo_path)
    assert dump(store)["trips"] == full.get_online_features(FEATURES, {"driver_id": ALL_IDS}).to_dict()["trips"]
    with pytest.raises(RetrievalError, match="after end"):
        store.materialize(END, END - timedelta(days=1), ["driver_stats"])
    store.close()
    full.close()


def test_push_online_offline_and_newest_wins(repo_factory: Callable[[], Path]) -> None:
    store = FeatureStore(repo_path=repo_factory())
    store.apply()
    t1 = pd.Timestamp(END) - pd.Timedelta(hours=5)
    rows = pd.DataFrame({"driver_id": [1, 2], "event_timestamp": [t1, t1], "lat": [1.5, 2.5], "status": ["on", "off"]})
    assert store.push("driver_live", rows, to="online_and_offline") == 2
    read = store.get_online_features(["driver_live:lat", "driver_live:status"], {"driver_id": [1, 2, 3]})
    assert read.to_dict()["lat"] == [1.5, 2.5, None]
    older = rows.assign(event_timestamp=t1 - pd.Timedelta(hours=1), lat=[9.0, 9.0])
    store.push("driver_live", older, to="online")  # older rows never overwrite newer ones
    assert store.get_online_features(["driver_live:lat"], {"driver_id": [1, 2]}).to_dict()["lat"] == [1.5, 2.5]
    newer = rows.assign(event_timestamp=t1 + pd.Timedelta(hours=1), lat=[3.0, 4.0])
    store.push("driver_live", newer, to="online")
    assert store.get_online_features(["driver_live:lat"], {"driver_id": [1, 2]}).to_dict()["lat"] == [3.0, 4.0]
    entity_df = pd.DataFrame({"driver_id": [1, 2], "event_timestamp": [t1 + pd.Timedelta(minutes=5)] * 2})
    training = store.get_historical_features(entity_df, ["driver_live:lat"]).to_df()
    assert list(training["lat"]) == [1.5, 2.5]  # the offline push is visible to training data
    store.close()


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ({"driver_id": [1], "event_timestamp": ["2024-02-28T10:00:00+00:00"], "lat": [1.0]}, "missing column"),
        (
            {"driver_id": [1], "event_timestamp": ["2024-02-28T10:00:00+00:00"], "lat": ["north"], "status": ["x"]},
            "column 'lat'",
        ),
        (
            {"driver_id": ["1.5"], "event_timestamp": ["2024-02-28T10:00:00+00:00"], "lat": [1.0], "status": ["x"]},
            r"column 'driver_id' row 0: '1.5' cannot be stored as Int64",
        ),
    ],
)
def test_bad_push_is_rejected_without_writing(
    repo_factory: Callable[[], Path], rows: dict[str, list[Any]], message: str
) -> None:
    store = FeatureStore(repo_path=repo_factory())
    store.apply()
    with pytest.raises(RetrievalError, match=message):
        store.push("driver_live", rows, to="online_and_offline")
    assert store.get_online_features(["driver_live:lat"], {"driver_id": [1]}).to_dict()["lat"] == [None]
    assert not list((store.repo_path / "data" / "live").iterdir())
    with pytest.raises(RetrievalError, match="push source 'driver_liv' does not exist"):
        store.push("driver_liv", rows)
    store.close()


def test_teardown_removes_online_rows(repo_factory: Callable[[], Path]) -> None:
    root = repo_factory()
    store = FeatureStore(repo_path=root)
    store.apply()
    store.materialize(END - timedelta(days=60), END, ["driver_stats"])
    assert "PRESENT" in dump(store)["trips__status"]
    store.teardown()
    again = FeatureStore(repo_path=root)
    again.apply()
    assert set(dump(again)["trips__status"]) == {"NOT_FOUND"}
    store.close()
    again.close()


def test_arrow_and_frame_outputs(repo_factory: Callable[[], Path]) -> None:
    store = FeatureStore(repo_path=repo_factory())
    store.apply()
    store.materialize(END - timedelta(days=60), END)
    response = store.get_online_features(
        store.get_feature_service("driver_service"), [{"driver_id": 1}, {"driver_id": 1}]
    )
    table = response.to_arrow()
    assert isinstance(table, pa.Table)
    assert table.num_rows == 2
    frame = response.to_df()
    assert list(frame.columns)[:1] == ["driver_id"]
    assert "lat" in frame.columns
    store.close()
