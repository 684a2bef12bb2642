"""What the stream worker's metrics cost per batch of 5,000 events (the hooks one batch calls).

    python benchmarks/stream_metrics_bench.py [--batch 5000] [--repeat 2000]

Compared with a loop over prometheus_client's `Histogram.observe` for the latencies, the way a
per-event metric would be kept. Prints JSON: microseconds per batch and per event, and the share of
one core the metrics take at 50k events/s.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def per_batch(func: object, repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        func()  # type: ignore[operator]
    return (time.perf_counter() - started) / repeat * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    from prometheus_client import CollectorRegistry, Histogram

    from potluck.streaming.stream_metrics import LATENCY_BUCKETS, StreamMetrics

    latencies = np.random.default_rng(1).exponential(0.2, args.batch)
    as_list = latencies.tolist()
    metrics = StreamMetrics()

    def hooks() -> None:  # what the worker calls for one batch of one source feeding one view
        metrics.consumed("clicks", "clicks:0", args.batch)
        metrics.written("user_clicks", args.batch)
        metrics.latency("user_clicks", latencies)
        metrics.batch("clicks", args.batch, 0.05)
        metrics.committed("clicks", {"clicks:0": 1}, {"clicks:0": 0})

    histogram = Histogram("x_seconds", "x", buckets=LATENCY_BUCKETS, registry=CollectorRegistry())

    def observe_loop() -> None:
        for value in as_list:
            histogram.observe(value)

    results = {
        "batch": args.batch,
        "hooks_us_per_batch": per_batch(hooks, args.repeat),
        "latency_array_us_per_batch": per_batch(lambda: metrics.latency("v", latencies), args.repeat),
        "latency_list_us_per_batch": per_batch(lambda: metrics.latency("v", as_list), args.repeat),
        "observe_loop_us_per_batch": per_batch(observe_loop, max(1, args.repeat // 100)),
    }
    results["hooks_ns_per_event"] = results["hooks_us_per_batch"] * 1000 / args.batch
    results["core_share_at_50k_events_s"] = results["hooks_us_per_batch"] * 1e-6 * 50_000 / args.batch
    results["scrape_ms"] = per_batch(metrics.render, 200) / 1000
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in results.items()}, indent=2))


if __name__ == "__main__":
    main()
