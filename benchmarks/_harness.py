"""Running one benchmark child process, a dedicated Redis server, and printing result tables."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RUNNERS = BENCH / "runners"
FEAST_PYTHON = BENCH / ".venv-feast" / "bin" / "python"


def run_child(
    argv: Sequence[str], *, env: dict[str, str], cwd: Path, log: Path, result: Path, timeout_s: float
) -> dict[str, Any]:
    """Run one runner in its own process; return its result JSON plus wall time and peak RSS.

    Peak RSS and CPU time are measured by `_measure.py`, which starts the runner from a fresh
    small process, so the figures are this run's alone (see that module for why).
    """
    cwd.mkdir(parents=True, exist_ok=True)
    result.unlink(missing_ok=True)
    measured = result.with_name(result.name + ".rusage.json")
    measured.unlink(missing_ok=True)
    wrapped = [sys.executable, str(BENCH / "_measure.py"), str(measured), "--", *argv]
    t0 = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(wrapped, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - t0 > timeout_s:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)  # the session this child leads, nothing else
                _, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    data: dict[str, Any] = {}
    if result.exists():
        data = json.loads(result.read_text())
    if timed_out:
        data = {"ok": False, "error": f"timed out after {timeout_s:.0f} s and was stopped"}
    elif not data:
        tail = log.read_text()[-800:] if log.exists() else ""
        data = {
            "ok": False,
            "error": f"exited with code {proc.returncode} without a result; log tail: {tail}",
        }
    data["wall_s"] = round(wall, 3)
    if measured.exists():
        own = json.loads(measured.read_text())
        data["peak_rss_mb"] = round(own["maxrss_kb"] / 1024, 1)
        data["cpu_s"] = round(own["cpu_s"], 3)
    else:  # stopped before it finished: the wrapper's view, an upper bound
        data["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
        data["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 3)
    data["returncode"] = proc.returncode
    data["log"] = str(log)
    return data


def potluck_env() -> dict[str, str]:
    env = dict(os.environ)
    src = os.environ.get("POTLUCK_SRC", str(ROOT / "src"))
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def feast_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["FEAST_USAGE"] = "False"
    env["PYTHONWARNINGS"] = "ignore"
    return env


def feast_missing() -> str | None:
    if FEAST_PYTHON.exists():
        return None
    return f"Feast venv not found at {FEAST_PYTHON.parent.parent}; run benchmarks/setup_feast.sh first"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def redis_server() -> Iterator[str]:
    """A private redis-server on a free loopback port, without persistence; stopped on exit."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not on PATH; install it or skip the redis backend")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="bench-redis-")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
            "--protected-mode",
            "yes",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import redis

        client = redis.Redis(host="127.0.0.1", port=port)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"redis-server on port {port} did not start")
        client.close()
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def flush_private_redis(url: str) -> None:
    """Empty the private benchmark server between runs (never used on a shared server)."""
    import redis

    host, port = url.rsplit(":", 1)
    client = redis.Redis(host=host, port=int(port))
    client.flushdb()
    client.close()


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[fmt(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    sep = "  ".join("-" * w for w in widths)
    body = [
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in cells
    ]
    return "\n".join([line, sep, *body])


def ratio(value: float | None, base: float | None) -> float | None:
    if value is None or base is None or base <= 0:
        return None
    return round(value / base, 2)
