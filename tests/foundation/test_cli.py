"""The `potluck` command line, run as a user would run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from repo_helpers import make_repo

from tests_support import run_cli as run


def test_init_apply_list_describe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "demo_repo"
    code, out, _ = run(capsys, "init", str(repo))
    assert code == 0
    assert (repo / "data" / "user_stats.parquet").exists()
    code, out, _ = run(capsys, "-c", str(repo), "plan")
    assert code == 0
    assert "7 to create" in out
    code, out, _ = run(capsys, "-c", str(repo), "apply")
    assert (code, "Applied" in out) == (0, True)
    code, out, _ = run(capsys, "-c", str(repo), "apply")
    assert "No changes" in out
    code, out, _ = run(capsys, "-c", str(repo), "feature-views", "list", "--output", "json")
    assert sorted(v["name"] for v in json.loads(out)) == ["merchant_stats", "user_stats"]
    for group, name in [
        ("entities", "user"),
        ("feature-views", "user_stats"),
        ("feature-services", "fraud_model_v1"),
        ("data-sources", "user_stats_source"),
    ]:
        code, out, _ = run(capsys, "-c", str(repo), group, "describe", name, "-o", "json")
        assert (code, json.loads(out)["name"]) == (0, name)
        code, out, _ = run(capsys, "-c", str(repo), group, "list")
        assert code == 0
        assert name in out
    code, out, _ = run(capsys, "-c", str(repo), "registry", "dump")
    assert json.loads(out)["version"] == 1
    code, out, _ = run(capsys, "-c", str(repo), "registry", "history", "-o", "json")
    assert json.loads(out)[0]["version"] == 1
    code, out, _ = run(capsys, "-c", str(repo), "feature-views", "list", "--tags", "team=nobody", "-o", "json")
    assert json.loads(out) == []


def test_errors_are_one_line_with_nonzero_exit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_repo(tmp_path)
    code, _, err = run(capsys, "-c", str(tmp_path), "apply")
    assert code == 0
    code, _out, err = run(capsys, "-c", str(tmp_path), "feature-views", "describe", "driver_stat")
    assert code == 1
    assert err.strip() == ("Error: Feature view 'driver_stat' does not exist. Did you mean 'driver_stats'?")
    assert "Traceback" not in err
    code, _, err = run(capsys, "-c", str(tmp_path / "nowhere"), "plan")
    assert code == 1
    assert "feature_store.yaml: not found" in err


def test_breaking_apply_needs_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_repo(tmp_path)
    run(capsys, "-c", str(tmp_path), "apply")
    make_repo(tmp_path, ttl_hours=1)
    code, out, err = run(capsys, "-c", str(tmp_path), "apply")
    assert code == 1
    assert "--allow-breaking" in err
    code, out, _ = run(capsys, "-c", str(tmp_path), "apply", "--allow-breaking")
    assert code == 0
    code, out, _ = run(capsys, "-c", str(tmp_path), "plan", "-o", "json")
    assert json.loads(out)["counts"]["updated"] == 0


def test_verbose_shows_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "-v", "-c", str(tmp_path), "plan")
    assert code == 1
    assert "Traceback" in err


def test_console_script_and_fast_help() -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "potluck.cli", "--help"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0
    assert "feature-views" in proc.stdout
    heavy = {"pyarrow", "duckdb", "sqlalchemy", "pandas"}
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line}
    assert not heavy & imported, f"--help imported {heavy & imported}"
    version = subprocess.run(
        [sys.executable, "-m", "potluck.cli", "version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.startswith("potluck ")
