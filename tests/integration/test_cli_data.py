"""The data commands of the CLI on the demo repository: training data, materialization, reads, freshness."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests_support import run_cli as run


def test_data_commands_on_the_demo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "demo"
    assert run(capsys, "init", str(repo))[0] == 0
    c = ["-c", str(repo)]
    assert run(capsys, *c, "apply")[0] == 0
    code, _, err = run(capsys, *c, "freshness", "-o", "json")
    assert code == 1  # never materialized: an orchestrator check fails
    out_file = tmp_path / "training.parquet"
    code, out, err = run(
        capsys,
        *c,
        "get-historical-features",
        "--entity-df",
        str(repo / "data/labels.parquet"),
        "--feature-service",
        "fraud_model_v1",
        "--output",
        str(out_file),
    )
    assert code == 0, err
    table = pq.read_table(out_file)
    assert table.num_rows == pq.ParquetFile(repo / "data/labels.parquet").metadata.num_rows
    assert {"is_fraud", "txn_count_7d", "risk_score"} <= set(table.column_names)
    code, _, err = run(
        capsys,
        *c,
        "get-historical-features",
        "--entity-df",
        "x.parquet",
        "-F",
        "user_stats:nope",
        "--output",
        "o.parquet",
    )
    assert code == 1
    assert "has no feature 'nope'" in err
    code, out, err = run(capsys, *c, "materialize-incremental", "now", "--no-progress", "-v", "user_stats")
    assert code == 0, err
    assert "user_stats" in out
    assert "merchant_stats" not in out
    code, out, err = run(capsys, *c, "materialize-incremental", "now", "--no-progress")
    assert code == 0, err
    code, out, _ = run(
        capsys,
        *c,
        "get-online-features",
        "-F",
        "user_stats:txn_count_7d",
        "-e",
        "user_id=1",
        "-e",
        "user_id=999999",
        "-o",
        "json",
    )
    data = json.loads(out)
    assert data["statuses"]["txn_count_7d"][1] == "NOT_FOUND"
    assert data["values"]["user_id"] == [1, 999999]
    code, out, _ = run(capsys, *c, "freshness", "--max-staleness", "1h", "-o", "json")
    assert code == 0
    assert {row["status"] for row in json.loads(out)} == {"OK"}
    code, out, _ = run(capsys, *c, "feature-views", "list", "-o", "json")
    assert all(v["materialized_until"] for v in json.loads(out))
    code, _, err = run(capsys, *c, "materialize", "2024-01-02", "2024-01-01")
    assert code == 1
    assert "after end" in err
