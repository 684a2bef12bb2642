"""Helpers shared by the runner scripts. Standard library only: runners execute in different venvs."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class Phases:
    """Named wall-clock phases of one run, in seconds."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def time(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - t0, 4)


def percentiles(samples_s: list[float]) -> dict[str, float]:
    """p50/p90/p99/mean/min/max in milliseconds (nearest-rank percentiles)."""
    xs = sorted(samples_s)
    n = len(xs)

    def rank(p: float) -> float:
        return xs[min(n - 1, max(0, math.ceil(p / 100 * n) - 1))] * 1e3

    return {
        "calls": n,
        "p50_ms": round(rank(50), 4),
        "p90_ms": round(rank(90), 4),
        "p99_ms": round(rank(99), 4),
        "mean_ms": round(sum(xs) / n * 1e3, 4),
        "min_ms": round(xs[0] * 1e3, 4),
        "max_ms": round(xs[-1] * 1e3, 4),
    }


def time_calls(fn: Callable[[], Any], calls: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    clock = time.perf_counter
    for _ in range(calls):
        t0 = clock()
        fn()
        out.append(clock() - t0)
    return out


def load_module(path: Path, name: str = "bench_features") -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def write_result(path: Path, result: dict[str, Any]) -> None:
    path.write_text(json.dumps(result, indent=2, default=str))


def run_main(result_path: Path, body: Callable[[dict[str, Any]], None]) -> int:
    """Run `body(result)` and write `result` as JSON; on failure record a one-line error and the traceback."""
    result: dict[str, Any] = {"ok": False}
    try:
        body(result)
        result["ok"] = True
        return_code = 0
    except BaseException as exc:
        result["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        result["traceback"] = traceback.format_exc()[-4000:]
        traceback.print_exc()
        return_code = 1
    write_result(result_path, result)
    return return_code
