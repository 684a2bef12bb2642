"""Feast 0.67 in its own virtual environment, for tests that drive Feast's own code against Potluck.

The environment is made by `benchmarks/setup_feast.sh` (idempotent; about a minute the first time),
so the tests and the side-by-side benchmarks run the same pinned release. Feast is never imported
into the test process: scripts run in the Feast interpreter as subprocesses.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from venv_prefetch import Install

ROOT = Path(__file__).resolve().parents[1]
SETUP = ROOT / "benchmarks" / "setup_feast.sh"
# POTLUCK_TEST_FEAST_VENV: use (or make) the environment in another folder, e.g. one shared by several checkouts
FEAST_VENV = Path(os.environ.get("POTLUCK_TEST_FEAST_VENV", ROOT / "benchmarks" / ".venv-feast"))
FEAST_PYTHON = FEAST_VENV / "bin" / "python"
FEAST_VERSION = "0.67.0"
INSTALL = Install(
    SETUP,
    FEAST_VENV.parent / ".venv-feast.lock",
    {"FEAST_VERSION": FEAST_VERSION, "FEAST_VENV": str(FEAST_VENV), "PYTHON": sys.executable},
)


def ensure_feast() -> Path:
    """The Feast interpreter, installing Feast first when needed; fails in CI, skips elsewhere, if it cannot."""
    with INSTALL.lock.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time across test processes
        result = subprocess.run(
            ["bash", str(INSTALL.script)],
            check=False,
            capture_output=True,
            text=True,
            env={**os.environ, **INSTALL.env},
            timeout=900,
        )
    if result.returncode != 0:
        message = f"could not install feast=={FEAST_VERSION} with {SETUP}: {result.stderr.strip()[-2000:]}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return FEAST_PYTHON


def run_feast(
    python: Path, code: str, *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run `code` with Feast's interpreter in `cwd`; fails the test with both outputs when it exits non-zero."""
    result = subprocess.run(
        [str(python), "-c", textwrap.dedent(code)],
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {}), "FEAST_USAGE": "False", "PYTHONWARNINGS": "ignore"},
        timeout=timeout,
    )
    if result.returncode != 0:
        pytest.fail(
            f"feast script failed ({result.returncode}):\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result
