"""On-demand view runs through a feature store's public API (Potluck or Feast; the APIs are the same).

    python odfv_runner.py --lib potluck|feast --repo DIR --result OUT.json --modes python,pandas \\
        materialize --start ISO --end ISO
    python odfv_runner.py ... online --start ISO --end ISO --entities E.json --calls-1 N --calls-100 M
    python odfv_runner.py ... historical --entity E.parquet --out R.parquet [--odfv MODE]

The repository's `features.py` defines the workload's views plus one on-demand view per mode
(`odfv_<mode>`, see benchmarks/odfv_bench.py); it is imported as the module `features`, the
repository file on-demand functions are found in. `online` times, call by call in turns, the plain
12-feature read and the same read plus each mode's on-demand output, on the same entity rows.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Phases, load_module, percentiles, run_main

ODFV_OUTPUT = "amount_ratio"
REQUEST_FIELD = "amount"


def expected_ratio(amount: float | None, avg: float | None, ticket: float | None) -> float | None:
    """The on-demand output by hand: amount / (1 + |amount_avg_30d|) + merchant_avg_ticket / 100."""
    if amount is None or avg is None or ticket is None:
        return None
    return amount / (1.0 + abs(avg)) + ticket / 100.0


def open_store(lib_name: str, repo: Path, modes: list[str], phases: Phases) -> Any:
    with phases.time("import"):
        lib = importlib.import_module(lib_name)
    with phases.time("apply"):
        sys.path.insert(0, str(repo))
        defs = load_module(repo / "features.py", name="features")
        kinds = (lib.Entity, lib.FeatureView, lib.FeatureService)
        objects = [v for v in vars(defs).values() if isinstance(v, kinds)]
        objects += [getattr(defs, f"odfv_{m}") for m in modes]
        store = lib.FeatureStore(repo_path=str(repo))
        store.apply(objects)
    return store


def entity_rows(pairs: list[list[int]], amounts: list[float], with_amount: bool) -> list[dict[str, Any]]:
    return [
        {"user_id": u, "merchant_id": m, **({REQUEST_FIELD: a} if with_amount else {})}
        for (u, m), a in zip(pairs, amounts, strict=True)
    ]


def check_outputs(plain: dict[str, Any], odfv: dict[str, Any], amounts: list[float]) -> dict[str, int]:
    """Cells of the on-demand output that differ from the formula applied to the plain read's values."""
    got = odfv[ODFV_OUTPUT]
    want = [
        expected_ratio(a, avg, t)
        for a, avg, t in zip(amounts, plain["amount_avg_30d"], plain["merchant_avg_ticket"], strict=True)
    ]
    bad = abs(len(got) - len(want))  # a missing or extra row counts as a mismatch
    for value, w in zip(got, want, strict=False):
        g = None if isinstance(value, float) and math.isnan(value) else value
        if g is None or w is None:
            bad += (g is None) != (w is None)
        else:
            bad += not math.isclose(g, w, rel_tol=1e-9, abs_tol=1e-12)
    same_rest = all(odfv[k] == v for k, v in plain.items())
    return {
        "cells": len(want),
        "values_returned": len(got),
        "mismatches": bad,
        "nulls": sum(g is None for g in got),
        "rest_equal": int(same_rest),
    }


def online(store: Any, lib: str, args: argparse.Namespace, phases: Phases, result: dict[str, Any]) -> None:
    import time

    start, end = datetime.fromisoformat(args.start), datetime.fromisoformat(args.end)
    with phases.time("materialize"):
        store.materialize(start, end)
    refs: list[str] = json.loads(args.features)
    pairs: list[list[int]] = json.loads(Path(args.entities).read_text())
    amounts = [round(10.0 + (i * 7919 % 50_000) / 100.0, 2) for i in range(len(pairs))]
    plain_rows = entity_rows(pairs, amounts, args.plain_with_amount)
    odfv_rows = entity_rows(pairs, amounts, True)
    variants = {"plain": refs, **{m: [*refs, f"odfv_{m}:{ODFV_OUTPUT}"] for m in args.mode_list}}

    def read(variant: str, lo: int, n: int) -> dict[str, Any]:
        rows = (plain_rows if variant == "plain" else odfv_rows)[lo : lo + n]
        return dict(store.get_online_features(features=variants[variant], entity_rows=rows).to_dict())

    checks = {}
    dump_n = min(1000, len(pairs))
    plain_dump = read("plain", 0, dump_n)
    dump: dict[str, Any] = {"plain": plain_dump}
    for m in args.mode_list:
        answer = read(m, 0, dump_n)
        dump[m] = answer[ODFV_OUTPUT]
        checks[m] = check_outputs(plain_dump, answer, amounts[:dump_n])
    result["checks"] = checks
    Path(args.dump).write_text(json.dumps(dump, default=str))
    clock, cpu = time.perf_counter, time.process_time
    latency: dict[str, Any] = {}
    cpu_latency: dict[str, Any] = {}
    for size, calls in ((1, args.calls_1), (100, args.calls_100)):
        if calls <= 0:
            continue
        samples: dict[str, list[float]] = {v: [] for v in variants}
        cpu_samples: dict[str, list[float]] = {v: [] for v in variants}
        for i in range(calls + args.warmup):
            lo = (i * size) % max(1, len(pairs) - size)
            for variant in variants:  # in turns, on the same entity rows
                c0, t0 = cpu(), clock()
                read(variant, lo, size)
                took, used = clock() - t0, cpu() - c0
                if i >= args.warmup:
                    samples[variant].append(took)
                    cpu_samples[variant].append(used)
        latency[str(size)] = {v: percentiles(s) for v, s in samples.items()}
        cpu_latency[str(size)] = {v: percentiles(s) for v, s in cpu_samples.items()}
    result["latency"] = latency
    result["cpu_latency"] = cpu_latency  # this process's CPU time per call: what other processes do not change
    result["function_alone_us"] = function_alone(args.mode_list)


def function_alone(modes: list[str], calls: int = 5000) -> dict[str, float]:
    """Median microseconds of each mode's function called directly on one row of its input shape."""
    import time

    import pandas as pd
    import pyarrow as pa

    features = sys.modules["features"]
    row = {"amount": 12.5, "amount_avg_30d": 3.0, "merchant_avg_ticket": 4.0}
    row |= {"user_stats__amount_avg_30d": 3.0, "merchant_stats__merchant_avg_ticket": 4.0}
    shapes = {
        "python": {k: [v] for k, v in row.items()},
        "singleton": row,
        "pandas": pd.DataFrame({k: [v] for k, v in row.items()}),
        "arrow": pa.table({k: [v] for k, v in row.items()}),
    }
    out = {}
    for mode in modes:
        view = getattr(features, f"odfv_{mode}")
        fn = view.udf
        arg = shapes[mode]
        samples = []
        for _ in range(calls):
            t0 = time.perf_counter()
            fn(arg)
            samples.append(time.perf_counter() - t0)
        samples.sort()
        out[mode] = round(samples[len(samples) // 2] * 1e6, 2)
    return out


def historical(store: Any, lib: str, args: argparse.Namespace, phases: Phases, result: dict[str, Any]) -> None:
    refs: list[str] = json.loads(args.features)
    if args.odfv:
        refs = [*refs, f"odfv_{args.odfv}:{ODFV_OUTPUT}"]
    import pyarrow.parquet as pq

    with phases.time("total"):
        if lib == "feast":
            import pandas as pd

            entity_df: Any = pd.read_parquet(args.entity)
            table = store.get_historical_features(entity_df=entity_df, features=refs).to_arrow()
            pq.write_table(table, args.out)
        else:
            store.get_historical_features(entity_df=str(args.entity), features=refs).to_parquet(str(args.out))
    result["rows"] = pq.ParquetFile(args.out).metadata.num_rows
    result["seconds"] = phases.seconds["total"]
    if args.odfv:
        result["checks"] = check_historical(Path(args.out))


def check_historical(path: Path) -> dict[str, int]:
    """The on-demand column of every output row against the formula over the same row's inputs."""
    import pyarrow.parquet as pq

    t = pq.read_table(path, columns=[REQUEST_FIELD, "amount_avg_30d", "merchant_avg_ticket", ODFV_OUTPUT])
    bad = 0
    for a, avg, tk, got in zip(*(t.column(i).to_pylist() for i in range(4)), strict=True):
        want = expected_ratio(a, avg, tk)
        if got is None or want is None:
            bad += (got is None) != (want is None)
        else:
            bad += not math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12)
    return {"cells": t.num_rows, "mismatches": bad}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--lib", choices=["potluck", "feast"], required=True)
    p.add_argument("--repo", type=Path, required=True)
    p.add_argument("--result", type=Path, required=True)
    p.add_argument("--features", required=True, help="JSON list of the plain read's feature references")
    p.add_argument("--modes", required=True, help="comma list of the on-demand views to apply (odfv_<mode>)")
    sub = p.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("historical")
    h.add_argument("--entity", type=Path, required=True)
    h.add_argument("--out", type=Path, required=True)
    h.add_argument("--odfv", help="mode of the on-demand view to add (none: the plain retrieval)")
    for name in ("materialize", "online"):
        s = sub.add_parser(name)
        s.add_argument("--start", required=True)
        s.add_argument("--end", required=True)
        if name == "online":
            s.add_argument("--entities", type=Path, required=True)
            s.add_argument("--dump", type=Path, required=True)
            s.add_argument("--calls-1", type=int, default=2000)
            s.add_argument("--calls-100", type=int, default=200)
            s.add_argument("--warmup", type=int, default=20)
            s.add_argument("--plain-with-amount", action="store_true", help="send the request field in plain reads")
    args = p.parse_args()
    args.mode_list = [m for m in args.modes.split(",") if m]
    warnings.simplefilter("ignore")

    def body(result: dict[str, Any]) -> None:
        phases = Phases()
        result["phases"] = phases.seconds
        store = open_store(args.lib, args.repo, args.mode_list, phases)
        if args.cmd == "historical":
            historical(store, args.lib, args, phases, result)
        elif args.cmd == "materialize":
            start, end = datetime.fromisoformat(args.start), datetime.fromisoformat(args.end)
            with phases.time("materialize"):
                store.materialize(start, end)
        else:
            online(store, args.lib, args, phases, result)

    return run_main(args.result, body)


if __name__ == "__main__":
    sys.exit(main())
