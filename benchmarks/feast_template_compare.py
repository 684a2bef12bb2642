"""Feast's `feast init` template on Feast 0.67 and on Potluck: every comparison, as a table.

Runs what tests/feast_compat/test_feast_init_repository.py runs (the same code, from
tests/feast_compat/template_compare.py): workflow.py on both, the template's own test_workflow.py on
both, and `feast serve` / `potluck serve` answering the same requests. Prints one line per check:
object, check, `equal`, or `different, rule checked` with the reason (Feast is known to be wrong, or a documented difference, and Potluck was checked against its rule), or `FAILED`. Exit code 1 when a
check failed.

    .venv/bin/python benchmarks/feast_template_compare.py [--feast-venv benchmarks/.venv-feast] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "feast_compat")]

import template_compare as tc  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_venv = os.environ.get("POTLUCK_TEST_FEAST_VENV", str(ROOT / "benchmarks" / ".venv-feast"))
    parser.add_argument("--feast-venv", type=Path, default=Path(default_venv), help="Feast 0.67's virtual environment")
    parser.add_argument("--keep", type=Path, help="work in this (new) folder and keep it")
    args = parser.parse_args()
    if not (args.feast_venv / "bin" / "feast").exists():
        subprocess.run(
            ["bash", str(ROOT / "benchmarks" / "setup_feast.sh")],
            check=True,
            env={**os.environ, "FEAST_VENV": str(args.feast_venv)},
        )
    base = args.keep or Path(tempfile.mkdtemp(prefix="feast_template_"))
    base.mkdir(parents=True, exist_ok=True)
    try:
        layout = tc.build(base, args.feast_venv)
        feast, potluck = tc.run_workflows(layout, args.feast_venv)
        checks = tc.compare_workflow(feast, potluck, layout.template)
        checks += tc.compare_servers(layout, args.feast_venv)
        checks += tc.compare_stdout(*tc.run_template_scripts(layout, args.feast_venv))
    except tc.StepFailed as err:
        print(err, file=sys.stderr)
        return 2
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    print(tc.table(checks))
    failed = [c for c in checks if not c.ok]
    kept = "kept" if "LabelView" not in tc.missing_kinds() else "stripped (potluck does not export LabelView)"
    print(f"\n{len(checks)} checks, {len(failed)} failed; label view {kept}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
