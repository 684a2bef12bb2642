"""Render time of every web UI page, server-side, over HTTP to `potluck ui` on 127.0.0.1.

    .venv/bin/python benchmarks/ui_bench.py [--requests 30] [--views 500] [--name ui_render]

Two repositories: the demo (tests/ui/ui_support.py: `potluck init`'s demo with one object of every
kind and monitoring data) and a generated one with `--views` feature views (one source each, 50
entities, one service per ten views, a baseline and a monitor run over the first views). For each
address: N sequential requests after one warm-up; the time is from sending the request to the last byte
of the answer (p50/p95/max). Target: every page under 200 ms on the demo. Results go to
benchmarks/results/NAME.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "ui"))
sys.path.insert(0, str(ROOT / "tests"))

from ui_support import (  # noqa: E402
    DRIFTED_VIEW,
    ENTITIES,
    FEATURE_SERVICES,
    FEATURE_VIEWS,
    SAVED_DATASET,
    build_demo,
    potluck,
)

TARGET_MS = 200.0
ENTITY_COUNT = 50
VIEWS_PER_SERVICE = 10
FEATURES_PER_VIEW = 6
ROWS_PER_SOURCE_FILE = 2000
SOURCE_FILES = 10  # the generated views read these files, each through a source of its own
MONITORED_VIEWS = 20


def generated_features_py(views: int) -> str:
    lines = [
        "from datetime import timedelta",
        "",
        "from potluck import Entity, FeatureService, FeatureView, Field, FileSource, ValueType",
        "from potluck.types import Float64, Int64, String",
        "",
    ]
    for e in range(ENTITY_COUNT):
        lines.append(f'entity_{e} = Entity(name="entity_{e}", join_keys=["key_{e % 5}"], value_type=ValueType.INT64)')
    for v in range(views):
        fields = ", ".join(
            f'Field(name="f{f}", dtype={"String" if f == 0 else "Int64" if f == 1 else "Float64"})'
            for f in range(FEATURES_PER_VIEW)
        )
        lines += [
            f'source_{v} = FileSource(name="source_{v}", path="data/part_{v % SOURCE_FILES}.parquet", '
            f'timestamp_field="event_timestamp")',
            f'view_{v} = FeatureView(name="view_{v}", entities=[entity_{v % ENTITY_COUNT}], ttl=timedelta(days=7), '
            f'schema=[{fields}], source=source_{v}, owner="team{v % 7}@example.com", tags={{"team": "t{v % 7}"}}, '
            f'description="Generated view {v}")',
        ]
    for s in range(views // VIEWS_PER_SERVICE):
        members = ", ".join(f"view_{v}" for v in range(s * VIEWS_PER_SERVICE, (s + 1) * VIEWS_PER_SERVICE))
        lines.append(f'service_{s} = FeatureService(name="service_{s}", features=[{members}])')
    return "\n".join(lines) + "\n"


def build_generated(root: Path, views: int) -> Path:
    """A repository of `views` feature views, applied, its first views materialized, profiled and checked."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(1)
    (root / "data").mkdir(parents=True)
    (root / "feature_store.yaml").write_text(
        "project: generated\nregistry: data/registry.db\nonline_store:\n  path: data/online.db\n"
    )
    (root / "features.py").write_text(generated_features_py(views))
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    n = ROWS_PER_SOURCE_FILE
    for i in range(SOURCE_FILES):
        columns: dict[str, Any] = {f"key_{k}": pa.array(rng.integers(1, 500, n), pa.int64()) for k in range(5)}
        columns["event_timestamp"] = pa.array(
            [now - timedelta(days=14) + timedelta(seconds=int(s)) for s in rng.integers(0, 14 * 86400, n)],
            pa.timestamp("us", tz="UTC"),
        )
        columns["f0"] = rng.choice(["a", "b", "c", "d"], n)
        columns["f1"] = pa.array(rng.poisson(4, n), pa.int64())
        for f in range(2, FEATURES_PER_VIEW):
            columns[f"f{f}"] = rng.normal(10 + i, 2, n)
        pq.write_table(pa.table(columns), root / "data" / f"part_{i}.parquet")
    potluck(root, "apply")
    monitored = [f"view_{v}" for v in range(min(MONITORED_VIEWS, views))]
    view_args = [a for v in monitored for a in ("--view", v)]
    start, middle = now - timedelta(days=14), now - timedelta(days=7)
    materialized = [a for v in monitored for a in ("--views", v)]
    potluck(root, "materialize", start.isoformat(), now.isoformat(), *materialized, "--no-progress")
    potluck(root, "monitor", "baseline", "--name", "first_week", *view_args,
            "--start", start.isoformat(), "--end", middle.isoformat())  # fmt: skip
    potluck(root, "monitor", "run", "--no-alerts", "--start", middle.isoformat(), "--end", now.isoformat())
    return root


def demo_addresses() -> list[str]:
    pages = ["/", "/entities", "/data-sources", "/feature-views", "/feature-services", "/saved-datasets", "/lineage"]
    pages += [f"/entities/{e}" for e in ENTITIES]
    pages += [f"/feature-views/{v}" for v in FEATURE_VIEWS]
    pages += [f"/feature-services/{s}" for s in FEATURE_SERVICES]
    pages += ["/data-sources/user_stats_source", "/data-sources/txn_request", f"/saved-datasets/{SAVED_DATASET}"]
    pages += ["/search?q=amount"]
    api = ["/api/overview", "/api/feature-views", f"/api/feature-views/{DRIFTED_VIEW}", "/api/lineage"]
    api += ["/api/search?q=amount"]
    return pages + api


def generated_addresses(views: int) -> list[str]:
    pages = ["/", "/entities", "/data-sources", "/feature-views", "/feature-services", "/saved-datasets", "/lineage"]
    pages += ["/entities/entity_0", "/data-sources/source_0", "/feature-views/view_0", f"/feature-views/view_{views - 1}"]
    pages += ["/feature-services/service_0", "/search?q=view_1"]
    api = ["/api/overview", "/api/feature-views", "/api/feature-views/view_0", "/api/lineage", "/api/search?q=view_1"]
    return pages + api


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class UiProcess:
    """`potluck ui` of a repository on a free loopback port, in its own process."""

    def __init__(self, repo: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        potluck_bin = Path(sys.executable).parent / "potluck"
        self.proc = subprocess.Popen(
            [str(potluck_bin), "-c", str(repo), "ui", "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def __enter__(self) -> UiProcess:
        import httpx

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"potluck ui exited with {self.proc.returncode}: {self.proc.stderr.read()}")  # type: ignore[union-attr]
            try:
                httpx.get(self.url + "/api/overview", timeout=5)
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("potluck ui did not start within 60 s")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def measure(url: str, addresses: list[str], requests: int) -> dict[str, Any]:
    import httpx

    results: dict[str, Any] = {}
    with httpx.Client(base_url=url, timeout=60) as http:
        for address in addresses:
            first = http.get(address)  # warm-up: caches, templates, the registry snapshot
            times = []
            for _ in range(requests):
                started = time.perf_counter()
                response = http.get(address)
                response.read()
                times.append((time.perf_counter() - started) * 1000)
                if response.status_code != first.status_code:
                    raise RuntimeError(f"{address}: {first.status_code}, then {response.status_code}")
            times.sort()
            results[address] = {
                "status": first.status_code,
                "bytes": len(first.content),
                "first_ms": round(first.elapsed.total_seconds() * 1000, 2),
                "p50_ms": round(statistics.median(times), 2),
                "p95_ms": round(times[min(len(times) - 1, round(0.95 * (len(times) - 1)))], 2),
                "max_ms": round(times[-1], 2),
            }
            print(f"  {address:45s} {results[address]['status']} p50 {results[address]['p50_ms']:8.2f} ms  "
                  f"p95 {results[address]['p95_ms']:8.2f} ms  max {results[address]['max_ms']:8.2f} ms")  # fmt: skip
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30, help="timed requests per address")
    parser.add_argument("--views", type=int, default=500, help="feature views of the generated repository")
    parser.add_argument("--name", default="ui_render")
    args = parser.parse_args()
    load_before = os.getloadavg()
    repos: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        print("building the demo repository")
        demo = build_demo(Path(tmp) / "demo")
        print(f"building a repository of {args.views} feature views")
        started = time.perf_counter()
        generated = build_generated(Path(tmp) / "generated", args.views)
        build_s = time.perf_counter() - started
        for label, repo, addresses in (
            ("demo", demo, demo_addresses()),
            (f"generated_{args.views}_views", generated, generated_addresses(args.views)),
        ):
            print(label)
            with UiProcess(repo) as ui:
                repos[label] = {"pages": measure(ui.url, addresses, args.requests)}
        repos[f"generated_{args.views}_views"]["build_and_apply_s"] = round(build_s, 1)
    demo_pages = repos["demo"]["pages"]
    over = sorted(a for a, r in demo_pages.items() if r["p95_ms"] > TARGET_MS)
    result = {
        "benchmark": "ui_render",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_1m_before": round(load_before[0], 2),
            "load_avg_1m_after": round(os.getloadavg()[0], 2),
        },
        "requests_per_address": args.requests,
        "target_ms": TARGET_MS,
        "demo_over_target_p95": over,
        "repositories": repos,
    }
    out = ROOT / "benchmarks" / "results" / f"{args.name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}; demo pages over {TARGET_MS:.0f} ms (p95): {over or 'none'}")


if __name__ == "__main__":
    main()
