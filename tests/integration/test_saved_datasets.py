"""Saved datasets: a training job's result written to a Parquet file and recorded in the registry."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from integration_support import END, build_repo

from potluck import FeatureStore
from potluck.definitions.errors import DatasetExistsError, NotFoundError, RetrievalError
from potluck.saved_dataset import SavedDataset, SavedDatasetFileStorage
from tests_support import run_cli

FEATURES = ["driver_stats:conv_rate", "driver_stats:trips", "driver_live:lat"]


def _entity_df(rows: int = 40) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "driver_id": [i % 30 + 1 for i in range(rows)],
            "event_timestamp": [END - timedelta(hours=7 * i) for i in range(rows)],
        }
    )


def _sorted(table: pa.Table) -> pa.Table:
    return table.sort_by([("driver_id", "ascending"), ("event_timestamp", "ascending")])


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    root = build_repo(tmp_path / "repo", "sqlite")
    store = FeatureStore(repo_path=root)
    store.apply()
    return store


def test_create_records_metadata_and_writes_the_jobs_result(store: FeatureStore) -> None:
    entity_df = _entity_df()
    version = store.registry_snapshot().version
    service = store.get_feature_service("driver_service")
    job = store.get_historical_features(entity_df, FEATURES)
    saved = store.create_saved_dataset(
        from_=job,
        name="training_v1",
        storage=SavedDatasetFileStorage(path="data/training_v1.parquet"),
        tags={"team": "risk"},
        feature_service=service,
    )
    path = store.repo_path / "data" / "training_v1.parquet"
    expected = _sorted(job.to_arrow())
    assert _sorted(pq.read_table(path)).equals(expected)
    assert _sorted(saved.to_arrow()).equals(expected)
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]

    again = FeatureStore(repo_path=store.repo_path).get_saved_dataset("training_v1")  # a fresh registry load
    assert isinstance(again, SavedDataset)
    assert again == saved
    assert again.features == FEATURES
    assert again.join_keys == ["driver_id"]
    assert again.feature_service_name == "driver_service"
    assert again.full_feature_names is False
    assert again.tags == {"team": "risk"}
    assert again.entity_rows == len(entity_df) == again.row_count
    low, high = entity_df["event_timestamp"].min(), entity_df["event_timestamp"].max()
    assert (again.min_event_timestamp, again.max_event_timestamp) == (low.to_pydatetime(), high.to_pydatetime())
    assert again.registry_version == version
    assert again.created_timestamp is not None
    assert isinstance(again.storage, SavedDatasetFileStorage)
    assert again.storage.path == "data/training_v1.parquet"
    pd.testing.assert_frame_equal(
        again.to_df().sort_values(["driver_id", "event_timestamp"]).reset_index(drop=True),
        expected.to_pandas(),
    )
    # recorded like other objects: a registry version with a history entry; apply leaves it alone
    history = store.registry_history(limit=1)[0]
    assert history.changes == [{"kind": "saved_dataset", "name": "training_v1", "action": "created"}]
    store.apply()
    assert [d.name for d in store.list_saved_datasets()] == ["training_v1"]
    assert store.list_saved_datasets(tags={"team": "other"}) == []


def test_existing_name_or_file_is_refused_unless_overwrite_allowed(store: FeatureStore) -> None:
    storage = SavedDatasetFileStorage(path="data/ds.parquet")
    first = store.create_saved_dataset(store.get_historical_features(_entity_df(10), FEATURES), "ds", storage)
    before = (store.repo_path / "data" / "ds.parquet").read_bytes()
    bigger = store.get_historical_features(_entity_df(25), FEATURES)
    with pytest.raises(DatasetExistsError, match=r"saved dataset 'ds' already exists.*allow_overwrite=True"):
        store.create_saved_dataset(bigger, "ds", storage)
    with pytest.raises(DatasetExistsError, match=r"ds\.parquet' already exists"):
        store.create_saved_dataset(bigger, "other_name", storage)  # a new name over an existing file
    assert (store.repo_path / "data" / "ds.parquet").read_bytes() == before
    assert [d.name for d in store.list_saved_datasets()] == ["ds"]

    replaced = store.create_saved_dataset(bigger, "ds", storage, allow_overwrite=True)
    assert replaced.row_count == 25
    assert replaced.created_timestamp == first.created_timestamp
    assert store.get_saved_dataset("ds").row_count == 25
    assert store.registry_history(limit=1)[0].changes[0]["action"] == "updated"
    with pytest.raises(NotFoundError, match=r"Saved dataset 'dss' does not exist\. Did you mean 'ds'"):
        store.get_saved_dataset("dss")
    with pytest.raises(RetrievalError, match="'from_' must be a retrieval job"):
        store.create_saved_dataset(_entity_df(), "bad", storage)


def test_persist_writes_whole_files(store: FeatureStore, tmp_path: Path) -> None:
    service = store.get_feature_service("driver_service")
    job = store.get_historical_features(_entity_df(), service, full_feature_names=True)
    target = tmp_path / "out" / "persisted.parquet"
    job.persist(SavedDatasetFileStorage(path=str(target)))  # type: ignore[attr-defined]
    written = pq.read_table(target)
    assert "driver_stats__conv_rate" in written.column_names
    assert _sorted(written).equals(_sorted(job.to_arrow()))
    with pytest.raises(DatasetExistsError, match="allow_overwrite"):
        job.persist(SavedDatasetFileStorage(path=str(target)))  # type: ignore[attr-defined]
    job.persist(SavedDatasetFileStorage(path=str(target)), allow_overwrite=True)  # type: ignore[attr-defined]
    assert sorted(p.name for p in target.parent.iterdir()) == ["persisted.parquet"]
    saved = store.create_saved_dataset(job, "by_service", SavedDatasetFileStorage(path="data/svc.parquet"))
    assert saved.feature_service_name == "driver_service"
    assert saved.full_feature_names is True
    assert saved.features == [f"driver_stats:{f}" for f in ("conv_rate", "trips", "city", "scores")] + [
        "driver_live:lat"
    ]


def test_cli_lists_and_describes(store: FeatureStore, capsys: pytest.CaptureFixture[str]) -> None:
    job = store.get_historical_features(_entity_df(12), FEATURES)
    store.create_saved_dataset(job, "cli_ds", SavedDatasetFileStorage(path="data/cli.parquet"), tags={"k": "v"})
    repo = str(store.repo_path)
    code, out, _ = run_cli(capsys, "-c", repo, "saved-datasets", "list", "-o", "json")
    assert code == 0
    listed = json.loads(out)
    assert [(d["name"], d["row_count"], d["features"]) for d in listed] == [("cli_ds", 12, FEATURES)]
    code, out, _ = run_cli(capsys, "-c", repo, "saved-datasets", "list")
    assert code == 0
    assert "cli_ds" in out
    assert "data/cli.parquet" in out
    code, out, _ = run_cli(capsys, "-c", repo, "saved-datasets", "describe", "cli_ds", "-o", "json")
    assert (code, json.loads(out)["entity_rows"], json.loads(out)["tags"]) == (0, 12, {"k": "v"})
    code, out, _ = run_cli(capsys, "-c", repo, "saved-datasets", "describe", "cli_ds")
    assert code == 0
    assert "registry_version" in out
    code, _, err = run_cli(capsys, "-c", repo, "saved-datasets", "describe", "nope")
    assert code == 1
    assert "Saved dataset 'nope' does not exist" in err
