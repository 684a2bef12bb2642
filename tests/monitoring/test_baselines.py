"""Baselines in the registry database: versions under concurrent savers, history kept, hostile input."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from potluck import FeatureStore
from potluck.definitions.errors import DefinitionError, NotFoundError
from potluck.monitoring.profile import Profile, ProfileError
from potluck.repo.config import config_from_dict


def _store(root: Path, registry: str) -> FeatureStore:
    root.mkdir(parents=True, exist_ok=True)
    config = config_from_dict({"project": "baselines", "registry": registry}, root)
    return FeatureStore(config=config)


def _dataset(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    pq.write_table(pa.table({"x": rng.normal(seed, 1, 2000), 'we"ird name; DROP': rng.choice(["a", "b"], 2000)}), path)
    return path


def _saver(root: str, registry: str, data: str, saves: int) -> list[int]:
    store = _store(Path(root), registry)
    try:
        profile = store.compute_statistics(data)
        return [store.set_baseline("shared", profile) for _ in range(saves)]
    finally:
        store.close()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_concurrent_savers_get_distinct_versions(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    registry = str(tmp_path / "registry.db") if backend == "sqlite" else request.getfixturevalue("postgres_database")
    data = _dataset(tmp_path / "d.parquet", 1)
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.starmap(_saver, [(str(tmp_path / "repo"), registry, str(data), 5)] * 4)
    versions = sorted(v for r in results for v in r)
    assert versions == list(range(1, 21))
    store = _store(tmp_path / "repo", registry)
    try:
        newest, oldest = store.get_baseline("shared").to_dict(), store.get_baseline("shared", 1).to_dict()
        assert newest["features"] == oldest["features"]  # the same data profiled by every process
        assert [b["version"] for b in store.list_baselines()] == [20]
    finally:
        store.close()


def test_history_hostile_names_and_errors(tmp_path: Path) -> None:
    store = _store(tmp_path / "repo", str(tmp_path / "registry.db"))
    try:
        first = store.compute_statistics(str(_dataset(tmp_path / "a.parquet", 1)))
        second = store.compute_statistics(str(_dataset(tmp_path / "b.parquet", 5)))
        assert store.set_baseline("b1", first) == 1
        assert store.set_baseline("b1", second) == 2
        assert store.get_baseline("b1", 1).feature("x").mean == pytest.approx(1, abs=0.1)
        assert store.get_baseline("b1").feature("x").mean == pytest.approx(5, abs=0.1)
        # a column whose name holds quotes and SQL is profiled like any other
        odd = first.feature('we"ird name; DROP')
        assert odd.kind == "categorical"
        assert sum(n for _, n in odd.top or []) == 2000
        with pytest.raises(NotFoundError, match="'b1'"):
            store.get_baseline("b2")
        with pytest.raises(NotFoundError, match="no version 9"):
            store.get_baseline("b1", 9)
        with pytest.raises(DefinitionError):
            store.set_baseline("bad'; name", first)
    finally:
        store.close()


def test_profile_json_errors_are_clear() -> None:
    with pytest.raises(ProfileError, match="not valid JSON"):
        Profile.from_json("{")
    with pytest.raises(ProfileError, match="format version"):
        Profile.from_json('{"format_version": 99}')
    with pytest.raises(ProfileError, match="kind"):
        Profile.from_json('{"format_version": 1, "source": "s", "features": [{"name": "x", "kind": "weird"}]}')
