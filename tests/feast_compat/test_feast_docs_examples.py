"""The request bodies of Feast's feature-server docs (docs/reference/feature-servers/python-feature-server.md),
sent as written to a Potluck server over a copy of Feast's template views, with exact answers.

Feast's docs print an older, row-major answer for /get-online-features; Feast 0.67 (and Potluck) answer
column by column, which is what is checked here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from potluck import FeatureStore
from remote_support import serve_repo

FEATURES = """\
from datetime import timedelta

from potluck import Entity, FeatureService, FeatureView, Field, FileSource, PushSource
from potluck.types import Float32, Int64

driver = Entity(name="driver", join_keys=["driver_id"])
driver_stats_source = FileSource(
    name="driver_hourly_stats_source", path="data/driver_stats.parquet",
    timestamp_field="event_timestamp", created_timestamp_column="created",
)
schema = [Field(name="conv_rate", dtype=Float32), Field(name="acc_rate", dtype=Float32),
          Field(name="avg_daily_trips", dtype=Int64)]
driver_hourly_stats = FeatureView(
    name="driver_hourly_stats", entities=[driver], ttl=timedelta(days=36500), schema=schema,
    source=driver_stats_source,
)
driver_stats_push_source = PushSource(name="driver_stats_push_source", batch_source=driver_stats_source)
driver_hourly_stats_fresh = FeatureView(
    name="driver_hourly_stats_fresh", entities=[driver], ttl=timedelta(days=36500), schema=schema,
    source=driver_stats_push_source,
)
driver_activity = FeatureService(name="driver_activity", features=[driver_hourly_stats])
"""

ROWS = [  # driver, event time, conv_rate, acc_rate, trips
    (1001, datetime(2021, 1, 1, 12, tzinfo=UTC), 0.5, 0.25, 308),
    (1002, datetime(2021, 1, 1, 13, tzinfo=UTC), 0.125, 0.375, 332),
    (1001, datetime(2021, 6, 1, tzinfo=UTC), 0.75, 0.5, 400),  # after the docs' window
    (1003, datetime(2021, 3, 1, tzinfo=UTC), 0.875, 0.625, 779),
]
EPOCH = "1970-01-01T00:00:00Z"
ENTITIES = {"driver_id": [1001, 1002, 1003]}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("docs-repo")
    (root / "data").mkdir()
    (root / "features.py").write_text(FEATURES)
    (root / "feature_store.yaml").write_text("project: feature_repo\nregistry: data/registry.db\n")
    ts = pa.timestamp("us", tz="UTC")
    pq.write_table(
        pa.table(
            {
                "driver_id": pa.array([r[0] for r in ROWS], pa.int64()),
                "event_timestamp": pa.array([r[1] for r in ROWS], ts),
                "created": pa.array([r[1] for r in ROWS], ts),
                "conv_rate": pa.array([r[2] for r in ROWS], pa.float32()),
                "acc_rate": pa.array([r[3] for r in ROWS], pa.float32()),
                "avg_daily_trips": pa.array([r[4] for r in ROWS], pa.int64()),
            }
        ),
        root / "data" / "driver_stats.parquet",
    )
    store = FeatureStore(repo_path=root)
    store.apply()
    store.close()
    with serve_repo(root) as url:
        yield url, root


def curl(url: str, path: str, body: str) -> httpx.Response:
    """As `curl -X POST URL -d BODY` with the JSON content type the server asks for."""
    return httpx.post(url + path, content=body, headers={"Content-Type": "application/json"}, timeout=30)


def column(values: list[Any], statuses: list[str], stamps: list[str]) -> dict[str, list[Any]]:
    return {"values": values, "statuses": statuses, "event_timestamps": stamps}


def read(url: str, view: str = "driver_hourly_stats") -> dict[str, Any]:
    body = {"features": [f"{view}:conv_rate", f"{view}:acc_rate", f"{view}:avg_daily_trips"], "entities": ENTITIES}
    answer = curl(url, "/get-online-features", json.dumps(body))
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_the_docs_requests_in_order(server: tuple[str, Path]) -> None:
    url, root = server
    # Standard materialization with timestamps: only the rows of 2021-01-01
    r = curl(
        url,
        "/materialize",
        """{
    "start_ts": "2021-01-01T00:00:00",
    "end_ts": "2021-01-02T00:00:00",
    "feature_views": ["driver_hourly_stats"]
}""",
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ok", "feature_views": ["driver_hourly_stats"]}
    jan = ["2021-01-01T12:00:00Z", "2021-01-01T13:00:00Z", EPOCH]
    found = ["PRESENT", "PRESENT", "NOT_FOUND"]
    assert read(url)["results"][1:] == [
        column([0.5, 0.125, None], found, jan),
        column([0.25, 0.375, None], found, jan),
        column([308, 332, None], found, jan),
    ]

    # Materialize all data without event timestamps
    r = curl(
        url,
        "/materialize",
        """{
    "feature_views": ["driver_hourly_stats"],
    "disable_event_timestamp": true
}""",
    )
    assert r.status_code == 200, r.text

    # Retrieving features: the docs' request, answered column by column
    r = curl(
        url,
        "/get-online-features",
        """{
    "features": [
      "driver_hourly_stats:conv_rate",
      "driver_hourly_stats:acc_rate",
      "driver_hourly_stats:avg_daily_trips"
    ],
    "entities": {
      "driver_id": [1001, 1002, 1003]
    }
  }""",
    )
    assert r.status_code == 200, r.text
    latest = ["2021-06-01T00:00:00Z", "2021-01-01T13:00:00Z", "2021-03-01T00:00:00Z"]
    present = ["PRESENT"] * 3
    expected = {
        "metadata": {"feature_names": ["driver_id", "conv_rate", "acc_rate", "avg_daily_trips"]},
        "results": [
            column([1001, 1002, 1003], present, [EPOCH] * 3),
            column([0.75, 0.125, 0.875], present, latest),
            column([0.5, 0.375, 0.625], present, latest),
            column([400, 332, 779], present, latest),
        ],
    }
    assert r.json() == expected

    # ... or a feature service name instead of the list of features
    r = curl(
        url,
        "/get-online-features",
        """{
    "feature_service": "driver_activity",
    "entities": {
      "driver_id": [1001, 1002, 1003]
    }
  }""",
    )
    assert r.status_code == 200, r.text
    assert r.json() == expected

    # Pushing features to the online and offline stores
    r = curl(
        url,
        "/push",
        """{
    "push_source_name": "driver_stats_push_source",
    "df": {
            "driver_id": [1001],
            "event_timestamp": ["2022-05-13 10:59:42+00:00"],
            "created": ["2022-05-13 10:59:42"],
            "conv_rate": [1.0],
            "acc_rate": [1.0],
            "avg_daily_trips": [1000]
    },
    "to": "online_and_offline"
  }""",
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ok", "rows": 1}
    pushed = ["2022-05-13T10:59:42Z", EPOCH, EPOCH]
    once = ["PRESENT", "NOT_FOUND", "NOT_FOUND"]
    assert read(url, "driver_hourly_stats_fresh")["results"][1:] == [
        column([1.0, None, None], once, pushed),
        column([1.0, None, None], once, pushed),
        column([1000, None, None], once, pushed),
    ]
    offline = pq.read_table(root / "data" / "driver_stats.parquet").to_pylist()
    assert len(offline) == len(ROWS) + 1
    assert offline[-1]["avg_daily_trips"] == 1000
    assert offline[-1]["event_timestamp"] == datetime(2022, 5, 13, 10, 59, 42, tzinfo=UTC)
    appended = FeatureStore(repo_path=root)
    try:
        history = appended.get_historical_features(
            entity_df=pa.table({"driver_id": [1001], "event_timestamp": [datetime(2022, 5, 14, tzinfo=UTC)]}),
            features=["driver_hourly_stats:avg_daily_trips"],
        ).to_arrow()
    finally:
        appended.close()
    assert history.column("avg_daily_trips").to_pylist() == [1000]

    # The incremental route takes Feast's body too (from the watermark the run above left: now)
    now = datetime.now(UTC).replace(tzinfo=None).isoformat()
    r = curl(url, "/materialize-incremental", f'{{"end_ts": "{now}", "feature_views": ["driver_hourly_stats"]}}')
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ok", "feature_views": ["driver_hourly_stats"]}
