"""Feast 0.67's own SDK, with `online_store: {type: remote}`, as a client of a real `potluck serve` process.

The Feast repository declares the same views with Feast's imports and applies them into its own file
registry; the Potluck server has its own repository with the equivalent definitions and data.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from integration_support import END, FEATURES_PY, build_repo

from feast_support import run_feast
from potluck import FeatureStore
from tests_support import free_port, wait_healthy

FEAST_EXTRA = """
ghost = FeatureView(name="ghost", entities=[driver], ttl=timedelta(days=1),
                    schema=[Field(name="x", dtype=Int64)], source=stats_source)
"""
IDS = [1, 2, 99999]
STATS = ["driver_stats:conv_rate", "driver_stats:trips", "driver_stats:city", "driver_stats:scores"]

SCRIPT = """
import json
from datetime import datetime, timezone

import pandas as pd
from feast import FeatureStore
from feast.data_source import PushMode
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value

START, END = datetime.fromisoformat(%(start)r), datetime.fromisoformat(%(end)r)
IDS, STATS = %(ids)r, %(stats)r
fs = FeatureStore(".")
out = {}
rows = [{"driver_id": i} for i in IDS]
out["before"] = fs.get_online_features(features=STATS, entity_rows=rows).to_dict()
fs.materialize(START, END, ["driver_stats"])
out["by_features"] = fs.get_online_features(features=STATS, entity_rows=rows).to_dict()
out["full_names"] = fs.get_online_features(features=STATS, entity_rows=rows, full_feature_names=True).to_dict()
service = fs.get_feature_service("driver_service")
out["by_service"] = fs.get_online_features(features=service, entity_rows=rows, full_feature_names=True).to_dict()
at = datetime(2030, 1, 1, 12, tzinfo=timezone.utc)
fs.push("driver_live", pd.DataFrame({"driver_id": [7], "lat": [1.25], "status": ["pushed"], "event_timestamp": [at]}),
        to=PushMode.ONLINE)
fs.write_to_online_store("driver_live", pd.DataFrame(
    {"driver_id": [8, 7], "lat": [2.5, -1.0], "status": ["written", "older"], "event_timestamp": [at, datetime(2029, 1, 1, tzinfo=timezone.utc)]}))
out["live"] = fs.get_online_features(features=["driver_live:lat", "driver_live:status"],
                                     entity_rows=[{"driver_id": 7}, {"driver_id": 8}, {"driver_id": 9}]).to_dict()
provider = fs._get_provider()
keys = [EntityKey(join_keys=["driver_id"], entity_values=[Value(int64_val=i)]) for i in (7, 9)]
read = provider.online_read(fs.config, fs.get_feature_view("driver_live"), keys, ["lat", "status"])
out["online_read"] = [
    [ts.isoformat() if ts else None, {k: v.WhichOneof("val") and getattr(v, v.WhichOneof("val")) for k, v in (d or {}).items()}]
    for ts, d in read
]
fs.materialize_incremental(END, ["driver_stats"])
try:
    fs.get_online_features(features=["ghost:x"], entity_rows=rows)
    out["error"] = None
except Exception as err:
    out["error"] = [type(err).__name__, str(err)]
print("RESULT " + json.dumps(out))
"""


@pytest.fixture
def potluck_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = build_repo(tmp_path / "potluck", "sqlite")
    store = FeatureStore(repo_path=root)
    store.apply()
    store.close()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "potluck.cli", "-c", str(root), "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=2) as probe:
            wait_healthy(probe, proc, 60)
        yield url, root
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def feast_repo(root: Path, potluck_root: Path, url: str) -> Path:
    (root / "data" / "live").mkdir(parents=True)
    shutil.copy(potluck_root / "data" / "driver_stats.parquet", root / "data" / "driver_stats.parquet")
    (root / "features.py").write_text(FEATURES_PY.replace("from potluck", "from feast") + FEAST_EXTRA)
    (root / "feature_store.yaml").write_text(
        "project: remote_client\nregistry: data/registry.db\nprovider: local\n"
        f"online_store:\n  type: remote\n  path: {url}\nentity_key_serialization_version: 3\n"
    )
    return root


def expected(root: Path, features: list[str], ids: list[int], full: bool = False) -> dict[str, Any]:
    """What Potluck's own SDK answers on the server's repository."""
    store = FeatureStore(repo_path=root)
    try:
        request: Any = store.get_feature_service(features[0]) if features[0] == "driver_service" else features
        answer = store.get_online_features(request, [{"driver_id": i} for i in ids], full_feature_names=full)
        return dict(answer.to_dict())
    finally:
        store.close()


@pytest.mark.slow
def test_feast_sdk_against_potluck_serve(feast_python: Path, potluck_server: tuple[str, Path], tmp_path: Path) -> None:
    url, root = potluck_server
    repo = feast_repo(tmp_path / "feast", root, url)
    applied = subprocess.run(
        [str(feast_python.parent / "feast"), "apply"],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, "FEAST_USAGE": "False"},
        timeout=300,
        check=False,
    )
    assert applied.returncode == 0, applied.stdout + applied.stderr
    script = SCRIPT % {
        "start": (END - timedelta(days=60)).isoformat(),
        "end": END.isoformat(),
        "ids": IDS,
        "stats": STATS,
    }
    result = run_feast(feast_python, script, cwd=repo)
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    out = json.loads(line.removeprefix("RESULT "))

    # nothing materialized yet: every feature null
    assert out["before"]["driver_id"] == IDS
    assert out["before"]["conv_rate"] == [None, None, None]
    # materialize through the server, then reads by features, full names and a service
    by_features = expected(root, STATS, IDS)
    assert by_features["conv_rate"][0] is not None
    assert out["by_features"] == by_features
    assert out["full_names"] == expected(root, STATS, IDS, full=True)
    assert out["by_service"] == expected(root, ["driver_service"], IDS, full=True)
    # a push to ONLINE and write_to_online_store both go to /write-to-online-store; older writes lose
    assert out["live"] == {"driver_id": [7, 8, 9], "lat": [1.25, 2.5, None], "status": ["pushed", "written", None]}
    # Feast's per-view read gives every row the event time of the first row
    assert out["online_read"] == [
        ["2030-01-01T12:00:00+00:00", {"lat": 1.25, "status": "pushed"}],
        ["2030-01-01T12:00:00+00:00", {"lat": None, "status": None}],
    ]
    # an error of the server reaches Feast's caller with Potluck's message
    name, message = out["error"]
    assert name == "RuntimeError"
    assert "404" in message
    assert "feature view 'ghost' (in 'ghost:x') does not exist" in message
