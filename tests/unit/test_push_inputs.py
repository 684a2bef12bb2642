"""What `store.push` accepts: timestamp forms, epoch seconds, value kinds, ranges, null keys."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from potluck import FeatureStore
from potluck.definitions.errors import RetrievalError
from potluck.retrieval.plans import online_view
from push_support import build_push_repo, row

FEATURES = ["rider_live:speed", "rider_live:trips", "rider_live:active"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FeatureStore]:
    fs = FeatureStore(repo_path=build_push_repo(tmp_path))
    fs.apply()
    yield fs
    fs.close()


def _event_time(store: FeatureStore, rider: int = 7) -> datetime:
    stamps = store.get_online_features(FEATURES, {"rider_id": [rider]}).event_timestamps
    return next(iter(stamps.values()))[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-01T00:00:00.5Z", datetime(2026, 11, 1, 0, 0, 0, 500000, tzinfo=UTC)),
        ("2022-05-13 10:59:42+00:00", datetime(2022, 5, 13, 10, 59, 42, tzinfo=UTC)),
        ("2026-11-01T00:00:00Z", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01t00:00:00.123456z", datetime(2026, 11, 1, 0, 0, 0, 123456, tzinfo=UTC)),
        ("2026-11-01T02:30:00+02:30", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T00:00:00.123456789Z", datetime(2026, 11, 1, 0, 0, 0, 123456, tzinfo=UTC)),
        ("2026-11-01T00:00:00", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        (1793491200, datetime(2026, 11, 1, tzinfo=UTC)),  # epoch seconds, not microseconds
        (1793491200.25, datetime(2026, 11, 1, 0, 0, 0, 250000, tzinfo=UTC)),
    ],
)
def test_timestamp_forms_are_read_as_documented(store: FeatureStore, text: Any, expected: datetime) -> None:
    assert store.push("rider_live", row(event_timestamp=text)) == 1
    assert _event_time(store) == expected


def test_integer_epoch_columns_of_a_table_are_seconds(store: FeatureStore) -> None:
    table = pa.table({**{k: v for k, v in row().items() if k != "event_timestamp"}, "event_timestamp": [1793491200]})
    store.push("rider_live", table)
    assert _event_time(store) == datetime(2026, 11, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "bad",
    ["yesterday", "20000-01-01T00:00:00Z", "2026-11-01T24:00:00Z", 10**15, -(10**15), True, float("inf"), "1793491200"],
)
def test_bad_timestamps_name_the_column_and_row(store: FeatureStore, bad: Any) -> None:
    rows = row(event_timestamp=["2026-11-01T00:00:00Z", bad], rider_id=[1, 2], speed=[1.0, 2.0], trips=[1, 2],
               active=[True, False], zone=["a", "b"])  # fmt: skip
    with pytest.raises(RetrievalError, match=r"column 'event_timestamp' row 1: .*RFC 3339") as err:
        store.push("rider_live", rows)
    assert repr(bad)[:20] in str(err.value)
    assert store.get_online_features(FEATURES, {"rider_id": [1]}).statuses["speed"] == ["NOT_FOUND"]


def test_times_past_year_9999_are_refused_on_every_write_path(store: FeatureStore) -> None:
    far = pa.array([253402300800], pa.timestamp("s", tz="UTC"))  # 10000-01-01
    table = pa.table({**{k: v for k, v in row().items() if k != "event_timestamp"}, "event_timestamp": far})
    with pytest.raises(RetrievalError, match=r"column 'event_timestamp' row 0.*years 1 and 9999"):
        store.push("rider_live", table, to="online_and_offline")
    assert not list((store.repo_path / "data" / "live").iterdir())
    # below push: what materialization writes goes through the same online row encoding
    view = online_view(store.get_feature_view("rider_live"), store.project)
    online_rows = pa.table(
        {"rider_id": [7], "speed": [1.0], "trips": [1], "active": [True], "zone": ["a"], "event_timestamp": far}
    )
    with pytest.raises(RetrievalError, match=r"online view 'rider_live': event_timestamp of row 0.*years 1 and 9999"):
        store._online.write(view, online_rows)
    # and the offline append
    from potluck.retrieval.plans import source_table

    offline = store._offline
    with pytest.raises(RetrievalError, match=r"column 'event_timestamp' row 0.*years 1 and 9999"):
        offline.append(source_table(store.get_feature_view("rider_live"), str(store.repo_path)), online_rows)  # type: ignore[attr-defined]


def test_a_key_out_of_its_range_names_the_column(store: FeatureStore) -> None:
    with pytest.raises(RetrievalError, match=r"column 'rider_id' row 0: 1180591620717411303424 .*Int64"):
        store.push("rider_live", row(rider_id=2**70))


def test_a_null_key_is_refused_not_counted(store: FeatureStore) -> None:
    with pytest.raises(RetrievalError, match=r"join key 'rider_id' is null in row 1"):
        store.push("rider_live", row(rider_id=[1, None], event_timestamp=["2026-11-01"] * 2, speed=[1.0, 2.0],
                                     trips=[1, 2], active=[True, False], zone=["a", "b"]))  # fmt: skip


@pytest.mark.parametrize(
    ("column", "bad"),
    [("speed", True), ("trips", True), ("trips", 1.5), ("active", 1), ("active", "yes"), ("speed", "fast")],
)
def test_values_of_another_kind_are_refused(store: FeatureStore, column: str, bad: Any) -> None:
    with pytest.raises(RetrievalError, match=rf"column '{column}' row 0: {bad!r}"):
        store.push("rider_live", row(**{column: bad}))
    table = pa.table({**row(), column: [bad]})  # the same rule for Arrow columns
    with pytest.raises(RetrievalError, match=rf"column '{column}' row 0"):
        store.push("rider_live", table)


def test_non_finite_floats_are_pushed_as_strings_or_numbers(store: FeatureStore) -> None:
    riders = [1, 2, 3, 4]
    rows = row(rider_id=riders, event_timestamp=["2026-11-01"] * 4, speed=["NaN", "Infinity", "-Infinity", math.nan],
               trips=[1] * 4, active=[True] * 4, zone=["a"] * 4)  # fmt: skip
    assert store.push("rider_live", rows) == 4
    speeds = store.get_online_features(["rider_live:speed"], {"rider_id": riders}).to_dict()["speed"]
    assert math.isnan(speeds[0])
    assert math.isnan(speeds[3])
    assert speeds[1:3] == [math.inf, -math.inf]


def test_pandas_datetimes_still_work(store: FeatureStore) -> None:
    import pandas as pd

    when = datetime(2026, 11, 1, tzinfo=UTC) - timedelta(hours=1)
    df = pd.DataFrame({**row(), "event_timestamp": [pd.Timestamp(when)]})
    store.push("rider_live", df)
    assert _event_time(store) == when


def test_polars_text_columns_and_dates_follow_the_same_rules(store: FeatureStore) -> None:
    import datetime as dt

    import polars as pl

    store.push("rider_live", pl.DataFrame(row(event_timestamp="2026-11-01T00:00:00.5Z", speed="Infinity")))
    assert _event_time(store) == datetime(2026, 11, 1, 0, 0, 0, 500000, tzinfo=UTC)
    assert store.get_online_features(["rider_live:speed"], {"rider_id": [7]}).to_dict()["speed"] == [math.inf]
    store.push("rider_live", row(event_timestamp=dt.date(2026, 11, 2)))
    assert _event_time(store) == datetime(2026, 11, 2, tzinfo=UTC)
