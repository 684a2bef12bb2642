"""Label views end to end: apply and plan, training data under each policy, push and online reads, CLI, server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from potluck import FeatureStore
from potluck.definitions.errors import PotluckError
from potluck.server import ServerSettings, create_app
from potluck.server.store_backend import StoreBackend
from tests_support import run_cli, serve

T0 = datetime(2024, 1, 1, tzinfo=UTC)

REPO = """
from datetime import timedelta

from potluck import ConflictPolicy, Entity, FeatureService, FeatureView, Field, FileSource, LabelView, PushSource
from potluck.types import Float64, Int64, String

driver = Entity(name="driver", join_keys=["driver_id"])
stats = FeatureView(
    name="driver_stats",
    entities=[driver],
    schema=[Field(name="rating", dtype=Float64)],
    source=FileSource(name="stats_source", path="data/stats.parquet", timestamp_field="event_timestamp"),
)


def labels(name, policy, **extra):
    push = PushSource(
        name=f"{name}_push",
        batch_source=FileSource(name=f"{name}_batch", path=f"data/{name}.parquet", timestamp_field="event_timestamp"),
    )
    return LabelView(
        name=name,
        entities=[driver],
        schema=[Field(name="is_fraud", dtype=Int64), Field(name="note", dtype=String), Field(name="labeler", dtype=String)],
        source=push,
        conflict_policy=policy,
        tags={"team": "risk"},
        **extra,
    )


lww = labels("lww_labels", ConflictPolicy.LAST_WRITE_WINS)
ranked = labels("ranked_labels", ConflictPolicy.LABELER_PRIORITY, labeler_priorities=["expert", "crowd"])
voted = labels("voted_labels", ConflictPolicy.MAJORITY_VOTE, reference_feature_view="driver_stats")
model = FeatureService(name="model", features=[stats, ranked[["is_fraud"]], voted[["note"]]])
"""

LABELS = [  # driver, hour, labeler, is_fraud, note
    (1, 0, "expert", 1, "checked"),
    (1, 1, "crowd", 0, "looks fine"),
    (1, 2, "crowd", 0, None),
    (1, 3, "bot", 1, "flagged"),
    (2, 0, "bot", 0, "auto"),
]


def _write(root: Path) -> None:
    (root / "data").mkdir(parents=True)
    (root / "feature_store.yaml").write_text("project: labels\nregistry: data/registry.db\n")
    (root / "features.py").write_text(REPO)
    pq.write_table(
        pa.table(
            {
                "driver_id": pa.array([1, 2], pa.int64()),
                "event_timestamp": pa.array([T0, T0], pa.timestamp("us", tz="UTC")),
                "rating": pa.array([4.5, 3.0]),
            }
        ),
        root / "data" / "stats.parquet",
    )
    table = pa.table(
        {
            "driver_id": pa.array([r[0] for r in LABELS], pa.int64()),
            "event_timestamp": pa.array([T0 + timedelta(hours=r[1]) for r in LABELS], pa.timestamp("us", tz="UTC")),
            "labeler": [r[2] for r in LABELS],
            "is_fraud": pa.array([r[3] for r in LABELS], pa.int64()),
            "note": [r[4] for r in LABELS],
        }
    )
    for name in ("lww_labels", "ranked_labels", "voted_labels"):
        pq.write_table(table, root / "data" / f"{name}.parquet")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeatureStore]:
    root = tmp_path_factory.mktemp("label_views")
    _write(root)
    store = FeatureStore(repo_path=root)
    store.apply()
    yield store
    try:
        store.teardown()
    finally:
        store.close()


def _entity(hours: list[float]) -> pa.Table:
    return pa.table(
        {
            "driver_id": pa.array([1] * len(hours) + [2], pa.int64()),
            "event_timestamp": pa.array(
                [T0 + timedelta(hours=h) for h in hours] + [T0 + timedelta(hours=5)], pa.timestamp("us", tz="UTC")
            ),
        }
    )


def test_training_data_resolves_each_policy_point_in_time(store: FeatureStore) -> None:
    refs = [f"{v}:{f}" for v in ("lww_labels", "ranked_labels", "voted_labels") for f in ("is_fraud", "labeler")]
    got = store.get_historical_features(_entity([0.5, 1.5, 3.5]), refs, full_feature_names=True).to_arrow()
    rows = got.to_pylist()
    assert [r["lww_labels__labeler"] for r in rows] == ["expert", "crowd", "bot", "bot"]
    assert [r["lww_labels__is_fraud"] for r in rows] == [1, 0, 1, 0]
    # The expert outranks everyone as soon as it has labelled; bot is unlisted.
    assert [r["ranked_labels__labeler"] for r in rows] == ["expert", "expert", "expert", "bot"]
    # Votes at 1.5h: expert 1, crowd 0 (a tie, crowd's is newer); at 3.5h: expert 1, crowd 0, bot 1.
    assert [r["voted_labels__is_fraud"] for r in rows] == [1, 0, 1, 0]
    assert [r["voted_labels__labeler"] for r in rows] == [None, None, None, None]


def test_feature_service_with_label_views(store: FeatureStore) -> None:
    got = store.get_historical_features(_entity([1.5, 3.5]), store.get_feature_service("model")).to_arrow()
    assert got.column_names == ["driver_id", "event_timestamp", "rating", "is_fraud", "note"]
    assert got["is_fraud"].to_pylist() == [1, 1, 0]  # the expert's label
    # Notes by vote: at 1.5h "checked" (expert) ties "looks fine" (crowd, newer); at 3.5h crowd's newest
    # note is null (no vote), so "checked" and "flagged" tie and bot's is newer.
    assert got["note"].to_pylist() == ["looks fine", "flagged", "auto"]


def test_listing_and_lookups(store: FeatureStore) -> None:
    assert [v.name for v in store.list_label_views()] == ["lww_labels", "ranked_labels", "voted_labels"]
    assert [v.name for v in store.list_feature_views()] == ["driver_stats"]
    ranked = store.get_label_view("ranked_labels")
    assert ranked.labeler_priorities == ("expert", "crowd")
    assert store.get_label_view("voted_labels").reference_feature_view == "driver_stats"
    with pytest.raises(PotluckError, match="ranked_labels"):
        store.get_label_view("ranked_label")
    assert [v.name for v in store.list_label_views(tags={"team": "risk"})] == [
        "lww_labels",
        "ranked_labels",
        "voted_labels",
    ]
    assert "label_view" in store.registry_dump()["objects"]


def test_push_and_online_reads_are_last_write_wins(store: FeatureStore) -> None:
    rows = {
        "driver_id": [7, 7],
        "event_timestamp": [T0 + timedelta(hours=2), T0 + timedelta(hours=1)],
        "labeler": ["expert", "crowd"],
        "is_fraud": [1, 0],
        "note": ["late", "early"],
    }
    store.push("ranked_labels_push", rows, to="online_and_offline")
    online = store.get_online_features(["ranked_labels:is_fraud", "ranked_labels:labeler"], [{"driver_id": 7}])
    assert online.to_dict() == {"driver_id": [7], "is_fraud": [1], "labeler": ["expert"]}
    # Training data sees the pushed rows too (appended to the batch source).
    at = pa.table(
        {"driver_id": [7], "event_timestamp": pa.array([T0 + timedelta(hours=3)], pa.timestamp("us", tz="UTC"))}
    )
    assert store.get_historical_features(at, ["ranked_labels:note"]).to_arrow()["note"].to_pylist() == ["late"]


def test_materialize_and_online_equal_offline_last_write_wins(store: FeatureStore) -> None:
    store.materialize(T0 - timedelta(days=1), T0 + timedelta(days=1), ["lww_labels"])
    online = store.get_online_features(
        ["lww_labels:is_fraud", "lww_labels:labeler"], [{"driver_id": 1}, {"driver_id": 2}]
    )
    late = _entity([])
    late = pa.table(
        {"driver_id": [1, 2], "event_timestamp": pa.array([T0 + timedelta(days=1)] * 2, pa.timestamp("us", tz="UTC"))}
    )
    offline = store.get_historical_features(late, ["lww_labels:is_fraud", "lww_labels:labeler"]).to_arrow()
    assert online.to_dict()["is_fraud"] == offline["is_fraud"].to_pylist()
    assert online.to_dict()["labeler"] == offline["labeler"].to_pylist() == ["bot", "bot"]


def test_cli_lists_and_describes(store: FeatureStore, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(store.repo_path)
    code, out, _ = run_cli(capsys, "-c", root, "label-views", "list")
    assert code == 0
    assert "ranked_labels" in out
    assert "labeler_priority" in out
    code, out, _ = run_cli(capsys, "-c", root, "label-views", "describe", "voted_labels", "-o", "json")
    assert code == 0
    assert json.loads(out)["conflict_policy"] == "majority_vote"
    code, out, err = run_cli(capsys, "-c", root, "label-views", "describe", "nope")
    assert code != 0
    assert "nope" in (out + err)
    code, out, _ = run_cli(capsys, "-c", root, "registry-dump")
    assert code == 0
    assert json.loads(out)["objects"]["label_view"][0]["name"] == "lww_labels"


def test_server_serves_label_views(store: FeatureStore) -> None:
    store.materialize(T0 - timedelta(days=1), T0 + timedelta(days=1), ["lww_labels"])
    app = create_app(StoreBackend(store), ServerSettings())
    with serve(app) as url, httpx.Client(base_url=url) as http:
        body: dict[str, Any] = {"features": ["lww_labels:is_fraud"], "entities": {"driver_id": [1]}}
        answer = http.post("/get-online-features", json=body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["results"][1]["values"] == [1]
        answer = http.post("/get-online-features", json={"feature_service": "model", "entities": {"driver_id": [1]}})
        assert answer.status_code == 200, answer.text
        assert "is_fraud" in answer.json()["metadata"]["feature_names"]
        assert "label views" in http.get("/openapi.json").text
        # An SDK whose online store is this server reads and writes label views through it.
        remote_root = store.repo_path.parent / "label_views_remote"
        remote_root.mkdir()
        (remote_root / "feature_store.yaml").write_text(
            f"project: labels\nregistry: {store.repo_path / 'data' / 'registry.db'}\n"
            f"online_store:\n  type: remote\n  path: {url}\n"
        )
        remote = FeatureStore(repo_path=remote_root)
        try:
            written = {
                "driver_id": [9],
                "event_timestamp": [T0 + timedelta(days=2)],
                "labeler": ["crowd"],
                "is_fraud": [0],
                "note": ["remote"],
            }
            remote.write_to_online_store("voted_labels", written)
            got = remote.get_online_features(
                ["voted_labels:note", "lww_labels:is_fraud"], [{"driver_id": 9}, {"driver_id": 1}]
            )
            assert got.to_dict()["note"] == ["remote", None]
            assert got.to_dict()["is_fraud"] == [None, 1]
        finally:
            remote.close()


def test_scopes_cover_label_views(store: FeatureStore) -> None:
    backend = StoreBackend(store)
    resources = backend.read_resources(["ranked_labels:is_fraud"], None)
    assert [(r.kind, r.name, r.tags) for r in resources] == [("feature_view", "ranked_labels", {"team": "risk"})]
    assert "voted_labels" in [r.name for r in backend.view_resources(None)]
