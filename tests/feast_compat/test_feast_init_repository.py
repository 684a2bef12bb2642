"""Feast's own `feast init` repository on Potluck, compared with Feast on the same data.

Feast generates the repository and its data. The on-demand and label views (not built yet) are
removed from the definitions; then the same definitions and the same workflow script run twice:
on Feast 0.67 as they are, and on Potluck with only `feast` changed to `potluck` in their imports.
Values must agree wherever Feast is right; where Feast is wrong (it drops entity rows that have no
match in its file store), Potluck's answer is checked against the rule instead.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from template_strip import strip_file, to_potluck

from feast_support import FEAST_VENV

HERE = Path(__file__).parent
WORKFLOW = HERE / "workflow.py"
FEAST_ENV = {**os.environ, "FEAST_USAGE": "False", "PYTHONWARNINGS": "ignore"}


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, check=False, cwd=cwd, capture_output=True, text=True, env=FEAST_ENV, timeout=600)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


@pytest.fixture(scope="module")
def results(feast_python: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    base = tmp_path_factory.mktemp("feast_init")
    _run([str(FEAST_VENV / "bin" / "feast"), "init", "demo"], cwd=base)
    template = base / "demo" / "feature_repo"
    (template / "test_workflow.py").unlink()
    shutil.rmtree(template / "__pycache__", ignore_errors=True)
    strip_file(template / "feature_definitions.py")

    feast_repo, potluck_repo = base / "feast_repo", base / "potluck_repo"
    shutil.copytree(template, feast_repo)
    shutil.copytree(template, potluck_repo)
    definitions = potluck_repo / "feature_definitions.py"
    definitions.write_text(to_potluck(definitions.read_text()))
    (base / "potluck_workflow.py").write_text(to_potluck(WORKFLOW.read_text()))

    _run([str(FEAST_VENV / "bin" / "feast"), "apply"], cwd=feast_repo)
    _run([str(feast_python), str(WORKFLOW), ".", str(base / "feast.json")], cwd=feast_repo)
    _run([sys.executable, "-m", "potluck.cli", "apply"], cwd=potluck_repo)
    _run([sys.executable, str(base / "potluck_workflow.py"), ".", str(base / "potluck.json")], cwd=potluck_repo)
    return {
        "feast": json.loads((base / "feast.json").read_text()),
        "potluck": json.loads((base / "potluck.json").read_text()),
    }


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-6)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@pytest.mark.parametrize(
    "key",
    [
        "online_features",
        "online_full_names",
        "online_driver_activity_v1",
        "online_driver_activity_v2",
        "online_after_push",
        "historical_after_push",
    ],
)
def test_same_answers_as_feast(results: dict[str, dict[str, Any]], key: str) -> None:
    feast, potluck = results["feast"][key], results["potluck"][key]
    assert _close(potluck, feast), f"{key}:\n potluck {potluck}\n feast   {feast}"


def test_training_data_agrees_where_feast_keeps_the_row(results: dict[str, dict[str, Any]]) -> None:
    feast_rows = results["feast"]["historical"]
    potluck_rows = results["potluck"]["historical"]
    by_key = {(r["driver_id"], r["event_timestamp"]): r for r in potluck_rows}
    for row in feast_rows:
        assert _close(by_key[(row["driver_id"], row["event_timestamp"])], row)


def test_training_data_keeps_every_entity_row(results: dict[str, dict[str, Any]]) -> None:
    """Feast's file store drops entity rows without a match; Potluck returns one row per input row."""
    potluck_rows = results["potluck"]["historical"]
    labels = sorted(r["label"] for r in potluck_rows)
    assert labels == list(range(len(labels)))
    assert len(potluck_rows) > len(results["feast"]["historical"])
    unmatched = [r for r in potluck_rows if r["conv_rate"] is None]
    assert unmatched, "the entity rows before the data and beyond the ttl have no feature values"
    assert all(r["avg_daily_trips"] is None and r["driver_profile"] is None for r in unmatched)
