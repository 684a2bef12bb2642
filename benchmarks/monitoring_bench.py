"""Statistics and drift for 10M rows x 20 features (14 numeric, 6 categorical) against a baseline.

    python benchmarks/monitoring_bench.py [--rows 10000000] [--data-dir DIR] [--out results/monitoring_10m.json]

Phases, each in its own process (peak RSS and CPU time are that process's own, see _measure.py):
- `potluck_baseline`: the baseline's profile (two scans: statistics, then its own decile bins) and saving it;
- `potluck_drift`: the current data's profile on the baseline's bins (one scan) and `check_drift`;
- `pandas_describe`: the same file read into pandas, `describe()` of every column plus a numpy histogram
  (10 bins) of each numeric column and `value_counts()` of each categorical one: fewer statistics, for scale.
The current data has 4 shifted numeric features and 1 categorical feature with a new category.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NUMERIC, CATEGORICAL = 14, 6


def generate(path: Path, rows: int, shifted: bool, seed: int) -> None:
    import duckdb

    if path.exists():
        return
    con = duckdb.connect()
    con.execute(f"SELECT setseed({seed / 1000})")
    shift = {0: " + 1.0", 1: " * 1.8", 2: "", 3: ""} if shifted else {}
    num = []
    for i in range(NUMERIC):
        null = 0.2 if shifted and i == 2 else 0.01
        value = f"(random() + random() + random()) * {i + 1}{shift.get(i, '')}"
        if shifted and i == 3:
            value = f"CASE WHEN random() < 0.003 THEN 1000.0 ELSE {value} END"
        num.append(f"CASE WHEN random() < {null} THEN NULL ELSE {value} END AS n{i}")
    cat = []
    for i in range(CATEGORICAL):
        value = f"'c' || CAST(floor(pow(random(), 2) * {10 ** (1 + i % 3)}) AS INT)"
        if shifted and i == 0:
            value = f"CASE WHEN random() < 0.1 THEN 'new' ELSE {value} END"
        cat.append(f"{value} AS s{i}")
    tmp = path.with_suffix(".tmp")
    con.execute(
        f"COPY (SELECT range AS id, {', '.join(num)}, {', '.join(cat)} FROM range({rows})) TO '{tmp}' (FORMAT parquet)"
    )
    tmp.rename(path)


def _store(workdir: Path) -> object:
    from potluck import FeatureStore

    (workdir / "feature_store.yaml").write_text("project: bench\nregistry: data/registry.db\n")
    return FeatureStore(repo_path=workdir)


FEATURES = [f"n{i}" for i in range(NUMERIC)] + [f"s{i}" for i in range(CATEGORICAL)]


def phase(name: str, data: Path, workdir: Path, out: Path) -> None:
    began = time.perf_counter()
    result: dict[str, object] = {}
    if name == "potluck_baseline":
        store = _store(workdir)
        profile = store.compute_statistics(str(data / "baseline.parquet"), features=FEATURES)  # type: ignore[attr-defined]
        store.set_baseline("bench", profile)  # type: ignore[attr-defined]
        result["features"] = len(profile.features)
    elif name == "potluck_drift":
        store = _store(workdir)
        current = store.compute_statistics(str(data / "current.parquet"), baseline="bench", features=FEATURES)  # type: ignore[attr-defined]
        stats = time.perf_counter() - began
        report = store.check_drift("bench", current)  # type: ignore[attr-defined]
        result.update(
            statistics_s=stats,
            drift_s=time.perf_counter() - began - stats,
            drifted=sorted(f.feature for f in report.drifted),
        )
    elif name == "pandas_describe":
        import numpy as np
        import pandas as pd

        frame = pd.read_parquet(data / "current.parquet")
        frame.describe(include="all")
        for i in range(NUMERIC):
            column = frame[f"n{i}"].dropna().to_numpy()
            np.histogram(column, bins=10)
        for i in range(CATEGORICAL):
            frame[f"s{i}"].value_counts()
    result["seconds"] = time.perf_counter() - began
    out.write_text(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "potluck-monitoring-bench")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "monitoring_10m.json")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--phase-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = args.data_dir / str(args.rows)
    if args.phase:
        phase(args.phase, data, args.workdir, args.phase_out)
        return
    data.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    generate(data / "baseline.parquet", args.rows, shifted=False, seed=1)
    generate(data / "current.parquet", args.rows, shifted=True, seed=2)
    print(f"data ready in {time.perf_counter() - began:.1f} s: {data}", flush=True)
    results: dict[str, object] = {
        "rows": args.rows,
        "features": {"numeric": NUMERIC, "categorical": CATEGORICAL},
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "phases": {},
    }
    with tempfile.TemporaryDirectory() as workdir:
        for name in ("potluck_baseline", "potluck_drift", "pandas_describe"):
            usage, phase_out = Path(workdir) / f"{name}.usage.json", Path(workdir) / f"{name}.json"
            command = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--rows",
                str(args.rows),
                "--data-dir",
                str(args.data_dir),
                "--phase",
                name,
                "--workdir",
                workdir,
                "--phase-out",
                str(phase_out),
            ]
            subprocess.run([sys.executable, str(HERE / "_measure.py"), str(usage), "--", *command], check=True)
            measured = {**json.loads(phase_out.read_text()), **json.loads(usage.read_text())}
            measured["peak_rss_mb"] = round(measured.pop("maxrss_kb") / 1024, 1)
            results["phases"][name] = measured  # type: ignore[index]
            print(name, measured, flush=True)
    results["load_average_at_end"] = os.getloadavg()
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
