"""Load test of a running feature server: many concurrent keep-alive connections, loopback only.

Runs two scenarios, 1 entity and 100 entities per request, each for --duration seconds (or until
--max-requests), and reports requests/s, p50/p99/p999 latency, errors, and the server's resident
memory over time (found from the listening port on Linux, or given with --server-pid).

    potluck serve --port 6566 &
    python benchmarks/server_load.py --url http://127.0.0.1:6566 \\
        --features driver_hourly_stats:conv_rate,driver_hourly_stats:acc_rate \\
        --entity-key driver_id --entity-values 1001,1002,1003 --duration 20 --concurrency 16

The client is a minimal asyncio HTTP/1.1 client so that it, not the server, is never the
bottleneck on a small machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


def _request(host: str, port: int, path: str, body: bytes, api_key: str | None) -> bytes:
    headers = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: keep-alive",
    ]
    if api_key:
        headers.append(f"Authorization: Bearer {api_key}")
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        lname = name.strip().lower()
        if lname == "content-length":
            length = int(value.strip())
        elif lname == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if not chunked:
        return status, await reader.readexactly(length)
    parts = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return status, b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


async def _worker(host: str, port: int, payload: bytes, deadline: float, budget: list[int], stats: Stats) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while time.monotonic() < deadline and budget[0] > 0:
        budget[0] -= 1
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            assert reader is not None
            started = time.perf_counter()
            writer.write(payload)
            status, body = await _read_response(reader)
            elapsed = time.perf_counter() - started
            if status != 200:
                stats.error(f"http_{status}")
                continue
            if not body.startswith(b'{"metadata"'):
                stats.error("bad_body")
                continue
            stats.latencies.append(elapsed)
        except (OSError, asyncio.IncompleteReadError, ValueError) as err:
            stats.error(type(err).__name__)
            if writer is not None:
                writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


def _rss_mb(pids: list[int]) -> float | None:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return round(total / 1024, 1) if total else None


def _listening_pids(port: int) -> list[int]:
    """Processes with a socket listening on `port` (Linux /proc), e.g. every uvicorn worker."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(cols[9])
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    pids.append(int(entry.name))
                    break
        except OSError:
            continue
    return sorted(pids)


async def _sample_rss(pids: list[int], samples: list[tuple[float, float | None]], stop: asyncio.Event) -> None:
    started = time.monotonic()
    while not stop.is_set():
        samples.append((round(time.monotonic() - started, 1), _rss_mb(pids)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


async def _scenario(args: argparse.Namespace, host: str, port: int, rows: int, pids: list[int]) -> dict[str, Any]:
    values = [args.entity_values[i % len(args.entity_values)] for i in range(rows)]
    body = json.dumps({"features": args.features, "entities": {args.entity_key: values}}).encode()
    payload = _request(host, port, "/get-online-features", body, args.api_key)
    # warm up: one request per connection
    warm = Stats()
    await asyncio.gather(
        *[_worker(host, port, payload, time.monotonic() + 5, [1], warm) for _ in range(args.concurrency)]
    )
    if warm.errors:
        raise SystemExit(f"warm-up failed: {warm.errors}")
    stats = Stats()
    budget = [args.max_requests]
    samples: list[tuple[float, float | None]] = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample_rss(pids, samples, stop))
    started = time.monotonic()
    deadline = started + args.duration
    await asyncio.gather(*[_worker(host, port, payload, deadline, budget, stats) for _ in range(args.concurrency)])
    wall = time.monotonic() - started
    stop.set()
    await sampler
    lat = sorted(stats.latencies)
    ms = 1000.0
    return {
        "entities_per_request": rows,
        "concurrency": args.concurrency,
        "requests": len(lat),
        "errors": stats.errors,
        "seconds": round(wall, 2),
        "requests_per_second": round(len(lat) / wall, 1) if wall else 0.0,
        "p50_ms": round(_percentile(lat, 0.50) * ms, 3),
        "p99_ms": round(_percentile(lat, 0.99) * ms, 3),
        "p999_ms": round(_percentile(lat, 0.999) * ms, 3),
        "mean_ms": round(statistics.fmean(lat) * ms, 3) if lat else None,
        "max_ms": round(lat[-1] * ms, 3) if lat else None,
        "rss_mb_over_time": samples,
    }


def _parse_value(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:6566")
    parser.add_argument("--api-key", default=os.environ.get("POTLUCK_API_KEY"))
    parser.add_argument("--features", required=True, help="Comma-separated view:feature references.")
    parser.add_argument("--entity-key", required=True, help="The join key, e.g. driver_id.")
    parser.add_argument("--entity-values", default="1001,1002,1003,1004,1005", help="Comma-separated; cycled.")
    parser.add_argument("--duration", type=float, default=10.0, help="Seconds per scenario (at most 600).")
    parser.add_argument("--max-requests", type=int, default=1_000_000, help="Request cap per scenario.")
    parser.add_argument("--concurrency", type=int, default=8, help="Concurrent keep-alive connections.")
    parser.add_argument("--entities", default="1,100", help="Entity rows per request, one scenario each.")
    parser.add_argument("--server-pid", type=int, action="append", help="Server process(es) to sample RSS of.")
    parser.add_argument("--json", action="store_true", help="Print only the JSON report.")
    args = parser.parse_args(argv)
    args.features = [f for f in args.features.split(",") if f]
    args.entity_values = [_parse_value(v) for v in args.entity_values.split(",") if v]
    args.duration = min(args.duration, 600.0)
    parts = urlsplit(args.url)
    if parts.scheme != "http" or parts.hostname is None:
        parser.error("--url must be http://HOST:PORT")
    host, port = parts.hostname, parts.port or 80
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        parser.error("this load test only targets loopback addresses")
    pids = args.server_pid or _listening_pids(port)
    report: dict[str, Any] = {"url": args.url, "server_pids": pids, "scenarios": []}
    for rows in (int(n) for n in args.entities.split(",")):
        result = asyncio.run(_scenario(args, host, port, rows, pids))
        report["scenarios"].append(result)
        if not args.json:
            rss = [r for _, r in result["rss_mb_over_time"] if r is not None]
            print(
                f"{rows:>4} entities x{args.concurrency}: {result['requests_per_second']:>8.1f} req/s  "
                f"p50 {result['p50_ms']:.3f} ms  p99 {result['p99_ms']:.3f} ms  "
                f"errors {sum(result['errors'].values())}  "
                f"RSS {rss[0] if rss else '?'} -> {rss[-1] if rss else '?'} MB",
                file=sys.stderr,
            )
    print(json.dumps(report, indent=None if args.json else 2))
    failed = any(s["errors"] for s in report["scenarios"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
