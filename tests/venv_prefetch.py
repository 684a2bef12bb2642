"""Installing the Feast and Airflow environments in the background while the first tests run.

Each environment takes minutes to install on a fresh checkout, so the run starts its setup script
as soon as collection shows a test that needs it (`prefetch`), under the same lock file as the
`ensure_*` functions: a test that needs the environment waits on the lock and then finds it ready
(the setup scripts are idempotent). What is still running when the run ends is stopped.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Install:
    """One environment's setup script, the lock its installers take, and the script's environment."""

    script: Path
    lock: Path
    env: dict[str, str]

    @property
    def log(self) -> Path:
        return self.lock.with_suffix(".log")


_running: list[subprocess.Popen[bytes]] = []


def prefetch(installs: Iterable[Install]) -> None:
    """Start each install in the background, holding its lock (nothing when `flock` is missing)."""
    flock = shutil.which("flock")
    if flock is None:
        return
    for install in installs:
        install.lock.parent.mkdir(parents=True, exist_ok=True)
        with install.log.open("wb") as log:
            _running.append(
                subprocess.Popen(
                    [flock, str(install.lock), "bash", str(install.script)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, **install.env},
                    start_new_session=True,  # its pip processes are stopped with it
                )
            )


def stop_all() -> None:
    """Stop the installs still running (their scripts finish the job on the next run)."""
    while _running:
        proc = _running.pop()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
