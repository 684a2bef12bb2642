"""`potluck monitor`: exit codes, the JSON shape of `run`, baselines kept with their history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from monitoring_support import SHIFTED, write_repo

from potluck import FeatureStore
from potluck.monitoring.report import FEATURE_KEYS, REPORT_KEYS
from tests_support import run_cli


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_repo(tmp_path_factory.mktemp("cli"))
    fs = FeatureStore(repo_path=root)
    fs.apply()
    fs.close()
    return root


def test_baseline_run_show(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = str(repo)
    code, out, err = run_cli(
        capsys,
        "-c",
        c,
        "monitor",
        "baseline",
        "--view",
        "txn",
        "--start",
        "2026-01-01",
        "--end",
        "2026-01-07T23:59:59",
        "--name",
        "weekly",
        "-o",
        "json",
    )
    assert code == 0, err
    assert json.loads(out)["version"] == 1

    code, out, err = run_cli(
        capsys, "-c", c, "monitor", "run", "--start", "2026-01-08", "--end", "2026-01-15", "-o", "json"
    )
    assert code == 1, err  # drift
    report = json.loads(out)
    assert tuple(report) == (*REPORT_KEYS, "freshness", "alerts")  # the stable keys, then what operations add
    assert report["drift"] is True
    assert report["stale"] == []
    assert all(tuple(f) == FEATURE_KEYS for f in report["features"])
    drifted = {f["feature"] for f in report["features"] if f["drift"]}
    assert drifted == set(SHIFTED)
    city = next(f for f in report["features"] if f["feature"] == "city")
    assert city["kind"] == "categorical"
    assert city["ks_statistic"] is None
    assert city["mean_change"] is None
    assert city["chi2_p_value"] is not None

    code, out, err = run_cli(
        capsys, "-c", c, "monitor", "run", "--start", "2026-01-01", "--end", "2026-01-07T23:59:59", "-o", "json"
    )
    assert code == 0, err
    assert json.loads(out)["drift"] is False

    code, out, _ = run_cli(capsys, "-c", c, "monitor", "show", "-o", "json")
    assert code == 0
    shown = json.loads(out)
    assert [b["name"] for b in shown["baselines"]] == ["weekly"]
    assert shown["last_runs"][0]["report"]["drift"] is False

    code, out, _ = run_cli(capsys, "-c", c, "monitor", "show")
    assert code == 0
    assert "weekly" in out

    # a second save keeps the first version
    code, out, _ = run_cli(capsys, "-c", c, "monitor", "baseline", "--view", "txn", "--name", "weekly", "-o", "json")
    assert code == 0
    assert json.loads(out)["version"] == 2
    fs = FeatureStore(repo_path=repo)
    try:
        assert fs.get_baseline("weekly", 1).row_count == 20_000
        assert fs.get_baseline("weekly").row_count == 40_000
    finally:
        fs.close()


def test_dataset_baseline(repo: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(repo / "data" / "txn.parquet")
    first = table.filter(pc.less(table["event_timestamp"], pc.min(table["event_timestamp"]).as_py().replace(day=8)))
    pq.write_table(first.drop(["user_id"]), tmp_path / "training.parquet")
    code, _, err = run_cli(
        capsys,
        "-c",
        str(repo),
        "monitor",
        "baseline",
        "--dataset",
        str(tmp_path / "training.parquet"),
        "--name",
        "training",
    )
    assert code == 0, err
    code, out, err = run_cli(
        capsys,
        "-c",
        str(repo),
        "monitor",
        "run",
        "-b",
        "training",
        "--view",
        "txn",
        "--start",
        "2026-01-08",
        "--end",
        "2026-01-15",
        "-o",
        "json",
    )
    assert code == 1, err
    assert {f["feature"] for f in json.loads(out)["features"] if f["drift"]} == set(SHIFTED)
    # without --view, a dataset's features have no view: an error, exit 2
    code, _, err = run_cli(capsys, "-c", str(repo), "monitor", "run", "-b", "training")
    assert code == 2
    assert "--view" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["monitor", "run", "-b", "nope"], "baseline 'nope' does not exist"),
        (["monitor", "baseline", "--name", "x"], "pass one of --view"),
        (["monitor", "baseline", "--name", "x", "--view", "txm"], "txn"),
        (["monitor", "baseline", "--name", "x", "--dataset", "/nonexistent.parquet"], "does not exist"),
        (["monitor", "run", "--start", "yesterday"], "ISO-8601"),
    ],
)
def test_errors_exit_2(repo: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    code, _, err = run_cli(capsys, "-c", str(repo), *args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_bad_monitoring_config_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_repo(tmp_path / "bad", extra_yaml="monitoring:\n  thresholds:\n    psii: 0.3\n")
    code, _, err = run_cli(capsys, "-c", str(root), "monitor", "show")
    assert code == 2
    assert "monitoring.thresholds.psii" in err
    assert "psi" in err
