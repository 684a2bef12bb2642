"""Times inside `Array(UnixTimestamp)` features obey the same years 1-9999 rule as other times."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from potluck import FeatureStore
from potluck.definitions.errors import RetrievalError
from potluck.server import ServerSettings, create_app
from potluck.server.store_backend import StoreBackend
from tests_support import serve

FEATURES = """\
from datetime import timedelta

from potluck import Entity, FeatureView, Field, FileSource, PushSource, ValueType
from potluck.types import Array, UnixTimestamp

thing = Entity(name="thing", join_keys=["k"], value_type=ValueType.INT64)
batch = FileSource(name="things", path="data/things.parquet", timestamp_field="ts")
seen = FeatureView(name="seen", entities=[thing], ttl=timedelta(0), schema=[Field(name="whens", dtype=Array(UnixTimestamp))],
                   source=batch)
live = PushSource(name="seen_live", batch_source=FileSource(name="seen_live_batch", path="data/live", timestamp_field="ts"))
seen_live = FeatureView(name="seen_live", entities=[thing], ttl=timedelta(0),
                        schema=[Field(name="whens", dtype=Array(UnixTimestamp))], source=live)
"""  # fmt: skip

US = pa.timestamp("us", tz="UTC")
OK = 1_700_000_000_000_000
FAR = 300 * 10**15  # about year 11476: it fits int64 microseconds, not a datetime


def _times(rows: list[list[int]]) -> pa.Array:
    return pa.array(rows, pa.list_(pa.int64())).cast(pa.list_(US))


def test_a_time_past_year_9999_inside_an_array_is_refused_on_every_write_path(tmp_path: Path) -> None:
    (tmp_path / "data" / "live").mkdir(parents=True)
    (tmp_path / "feature_store.yaml").write_text("project: arrays\nregistry: data/registry.db\n")
    (tmp_path / "features.py").write_text(FEATURES)
    stamps = pa.array([OK] * 3, pa.int64()).cast(US)
    pq.write_table(
        pa.table({"k": pa.array([1, 2, 3], pa.int64()), "ts": stamps, "whens": _times([[OK], [OK], [OK, FAR]])}),
        tmp_path / "data" / "things.parquet",
    )
    store = FeatureStore(repo_path=tmp_path)
    store.apply()
    with pytest.raises(RetrievalError, match=r"whens of row 2 .*years 1 and 9999"):
        store.materialize(datetime(2020, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC))
    pushed = pa.table({"k": pa.array([5], pa.int64()), "ts": stamps[:1], "whens": _times([[FAR]])})
    for to in ("online", "offline", "online_and_offline"):
        with pytest.raises(RetrievalError, match=r"row 0 .*years 1 and 9999"):
            store.push("seen_live", pushed, to=to)
    assert not list((tmp_path / "data" / "live").iterdir())
    store.push("seen_live", {"k": [6], "ts": ["2026-11-01"], "whens": [["2026-11-01T00:00:00Z"]]})

    app = create_app(StoreBackend(store), ServerSettings(auth="off"))
    with serve(app) as url:
        for view in ("seen", "seen_live"):
            body = {"features": [f"{view}:whens"], "entities": {"k": [1, 2, 3, 5, 6]}}
            reply = httpx.post(f"{url}/get-online-features", json=body, timeout=30)
            assert reply.status_code == 200, reply.text
    assert reply.json()["results"][1]["values"][-1] == ["2026-11-01T00:00:00Z"]
    store.close()
