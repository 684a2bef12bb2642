"""Airflow 3.x in its own virtual environment, for tests that run DAGs with the `airflow` command.

The environment is made by `scripts/setup-airflow.sh` (idempotent; about two minutes with a warm pip
cache, longer on a cold one): Airflow's pins stay out of the test environment, and the tests run
the `airflow` command as a subprocess against a SQLite metadata database in a temporary folder.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

from venv_prefetch import Install

ROOT = Path(__file__).resolve().parents[1]
SETUP = ROOT / "scripts" / "setup-airflow.sh"
# POTLUCK_TEST_AIRFLOW_VENV: use (or make) the environment in another folder
AIRFLOW_VENV = Path(os.environ.get("POTLUCK_TEST_AIRFLOW_VENV", ROOT / ".venv-airflow"))
INSTALL = Install(
    SETUP, AIRFLOW_VENV.parent / ".venv-airflow.lock", {"AIRFLOW_VENV": str(AIRFLOW_VENV), "PYTHON": sys.executable}
)


def ensure_airflow() -> Path:
    """The `airflow` command, installing it first when needed; fails in CI, skips elsewhere, if it cannot."""
    with INSTALL.lock.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time across test processes
        result = subprocess.run(
            ["bash", str(INSTALL.script)],
            check=False,
            capture_output=True,
            text=True,
            env={**os.environ, **INSTALL.env},
            timeout=1200,
        )
    if result.returncode != 0:
        message = f"could not install Airflow with {SETUP}: {result.stderr.strip()[-2000:]}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return AIRFLOW_VENV / "bin" / "airflow"


def airflow_env(home: Path, dags: Path, **extra: str) -> dict[str, str]:
    """The environment of an `airflow` command: its own home and SQLite database, no examples, `dags` as
    the DAG folder; nothing of the caller's Airflow or Potluck settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "POTLUCK_REPO"))}
    return {
        **base,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        **extra,
    }
