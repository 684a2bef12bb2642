"""`OnlineResponse.to_dict` / `to_df` against Feast 0.67's on the same rows (run in Feast's own environment)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from feast_support import run_feast
from potluck import FeatureStore

DEFINITIONS = """\
from datetime import timedelta

from {pkg} import Entity, FeatureView, Field, FileSource, PushSource
from {pkg}.types import Float32, Float64, Int32, Int64, String, UnixTimestamp

driver = Entity(name="driver", join_keys=["driver_id"])
batch = FileSource(name="batch", path="data/batch.parquet", timestamp_field="event_timestamp")
live = PushSource(name="live", batch_source=batch)
stats = FeatureView(
    name="stats",
    entities=[driver],
    ttl=timedelta(days=36500),
    schema=[
        Field(name="driver_id", dtype=Int64),
        Field(name="i64", dtype=Int64),
        Field(name="i32", dtype=Int32),
        Field(name="f32", dtype=Float32),
        Field(name="f64", dtype=Float64),
        Field(name="s", dtype=String),
        Field(name="ts", dtype=UnixTimestamp),
    ],
    source=live,
)
"""

FEAST_SCRIPT = """
import json
import pandas as pd
from feast import FeatureStore

store = FeatureStore(".")
store.push("live", pd.read_parquet("data/rows.parquet"))
response = store.get_online_features(FEATURES, [{"driver_id": 1, "request_field": 5}, {"driver_id": 2, "request_field": 6},
                                                {"driver_id": 3, "request_field": 7}])
as_dict = response.to_dict(include_event_timestamps=True)
frame = response.to_df(include_event_timestamps=True)
print(json.dumps({"dict": as_dict, "dtypes": {c: str(t) for c, t in frame.dtypes.items()}}, default=str))
"""

FEATURES = ["stats:i64", "stats:i32", "stats:f32", "stats:f64", "stats:s", "stats:ts"]


def _repo(root: Path, pkg: str, yaml: str) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "feature_store.yaml").write_text(yaml)
    (root / "features.py").write_text(DEFINITIONS.format(pkg=pkg))
    when = pd.Timestamp("2024-01-01T00:00:00Z")
    rows = pd.DataFrame(
        {
            "driver_id": pd.Series([1, 2], dtype="int64"),
            "i64": pd.Series([10, None], dtype="Int64"),
            "i32": pd.Series([3, 4], dtype="int32"),
            "f32": pd.Series([1.5, 2.25], dtype="float32"),
            "f64": [0.5, None],
            "s": ["a", None],
            "ts": [when, pd.NaT],
            "event_timestamp": [when, when + pd.Timedelta(seconds=1)],
        }
    )
    rows.to_parquet(root / "data" / "batch.parquet", index=False)
    rows.to_parquet(root / "data" / "rows.parquet", index=False)
    return root


def _kind(dtype: str) -> str:
    """A dtype name with what pandas 3 changed from pandas 2 folded in (text and datetime units)."""
    if dtype in ("object", "str", "string"):
        return "text-or-object"
    if dtype.startswith("datetime64["):
        return "datetime64[UTC]"
    return dtype


def _plain(value: Any) -> Any:
    if isinstance(value, pd.Timestamp) or hasattr(value, "isoformat"):
        return str(pd.Timestamp(value))
    return value


def test_to_dict_and_to_df_match_feast(tmp_path: Path, feast_python: Path) -> None:
    feast_repo = _repo(
        tmp_path / "feast",
        "feast",
        "project: shapes\nregistry: data/registry.db\nprovider: local\n"
        "online_store:\n  type: sqlite\n  path: data/online.db\nentity_key_serialization_version: 3\n",
    )
    apply = "import subprocess, sys\nsubprocess.run([sys.executable, '-m', 'feast.cli.cli', 'apply'], check=True)\n"
    run_feast(feast_python, apply, cwd=feast_repo)
    feast_out = run_feast(feast_python, f"FEATURES = {FEATURES!r}\n" + FEAST_SCRIPT, cwd=feast_repo)
    feast = json.loads(feast_out.stdout.strip().splitlines()[-1])

    ours_repo = _repo(
        tmp_path / "potluck",
        "potluck",
        "project: shapes\nregistry: data/registry.db\nonline_store:\n  type: sqlite\n  path: data/online.db\n",
    )
    store = FeatureStore(repo_path=ours_repo)
    store.apply()
    store.push("live", pd.read_parquet(ours_repo / "data" / "rows.parquet"))
    rows = [{"driver_id": i, "request_field": i + 4} for i in (1, 2, 3)]
    response = store.get_online_features(FEATURES, rows)
    ours = {k: [_plain(v) for v in column] for k, column in response.to_dict(include_event_timestamps=True).items()}
    theirs = {k: [None if v is None else _plain(pd.Timestamp(v)) if k == "ts" else v for v in column]
              for k, column in feast["dict"].items()}  # fmt: skip
    assert ours == theirs  # same keys (request fields left out, `__ts` for every column), same values
    frame = response.to_df(include_event_timestamps=True)
    assert {c: _kind(str(t)) for c, t in frame.dtypes.items()} == {c: _kind(t) for c, t in feast["dtypes"].items()}
    assert str(frame["i64"].dtype) == "float64"  # an Int64 feature with a null, as Feast gives it
    assert str(frame["f32"].dtype) == "float64"
    store.close()


@pytest.mark.parametrize("value", [1.5])
def test_feast_truncates_a_fraction_pushed_into_an_int64_and_potluck_refuses_it(
    tmp_path: Path, feast_python: Path, value: float
) -> None:
    """The difference the docs describe: Feast stores 1 for 1.5 in an Int64 feature, silently."""
    from potluck.definitions.errors import RetrievalError

    feast_repo = _repo(
        tmp_path / "feast",
        "feast",
        "project: lossy\nregistry: data/registry.db\nprovider: local\n"
        "online_store:\n  type: sqlite\n  path: data/online.db\nentity_key_serialization_version: 3\n",
    )
    script = f"""
import subprocess, sys
import pandas as pd
from feast import FeatureStore
subprocess.run([sys.executable, "-m", "feast.cli.cli", "apply"], check=True, capture_output=True)
store = FeatureStore(".")
rows = pd.read_parquet("data/rows.parquet").head(1).astype({{"i64": "float64"}})
rows["i64"] = [{value!r}]
store.push("live", rows)
print(store.get_online_features(["stats:i64"], [{{"driver_id": 1}}]).to_dict()["i64"][0])
"""
    out = run_feast(feast_python, script, cwd=feast_repo)
    assert out.stdout.strip().splitlines()[-1] == "1"
    ours_repo = _repo(
        tmp_path / "potluck",
        "potluck",
        "project: lossy\nregistry: data/registry.db\nonline_store:\n  type: sqlite\n  path: data/online.db\n",
    )
    store = FeatureStore(repo_path=ours_repo)
    store.apply()
    rows = pd.read_parquet(ours_repo / "data" / "rows.parquet").head(1).astype({"i64": "float64"})
    rows["i64"] = [value]
    with pytest.raises(RetrievalError, match=r"column 'i64' row 0: 1.5 cannot be stored as Int64"):
        store.push("live", rows)
    store.close()
