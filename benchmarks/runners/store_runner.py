"""One benchmark run through a feature store's public API: Potluck or Feast (the APIs are the same).

    python store_runner.py --lib potluck|feast --repo DIR --result OUT.json historical --entity E.parquet --out R.parquet
    python store_runner.py --lib ... materialize --start ISO --end ISO [--entities E.json --dump D.json]
    python store_runner.py --lib ... online --start ISO --end ISO --entities E.json --dump D.json

The repository folder holds `features.py` and `feature_store.yaml`; the runner applies its objects first
(not timed). Results go to --result as JSON; the parent measures peak RSS of this process.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Phases, load_module, percentiles, run_main, time_calls


def open_store(lib_name: str, repo: Path, phases: Phases) -> tuple[Any, Any]:
    with phases.time("import"):
        try:
            lib = importlib.import_module(lib_name)
            store_cls = lib.FeatureStore
        except Exception as exc:
            if lib_name == "potluck":
                raise RuntimeError(
                    f"Potluck's FeatureStore cannot be imported yet ({type(exc).__name__}: {exc}); "
                    "the potluck side of this benchmark needs potluck.store.FeatureStore"
                ) from exc
            raise
    with phases.time("apply"):
        defs = load_module(repo / "features.py")
        kinds = (lib.Entity, lib.FeatureView, lib.FeatureService)
        objects = [v for v in vars(defs).values() if isinstance(v, kinds)]
        store = store_cls(repo_path=str(repo))
        store.apply(objects)
    return lib, store


def historical(lib_name: str, store: Any, args: argparse.Namespace, phases: Phases, result: dict[str, Any]) -> None:
    refs: list[str] = json.loads(args.features)
    with phases.time("total"):
        if lib_name == "feast":
            import pandas as pd
            import pyarrow.parquet as pq

            with phases.time("read_entity_df"):
                entity_df: Any = pd.read_parquet(args.entity)
            with phases.time("retrieve"):
                table = store.get_historical_features(entity_df=entity_df, features=refs).to_arrow()
            with phases.time("write"):
                pq.write_table(table, args.out)
            rows = table.num_rows
        else:
            with phases.time("retrieve_and_write"):
                job = store.get_historical_features(entity_df=str(args.entity), features=refs)
                job.to_parquet(str(args.out))
            import pyarrow.parquet as pq

            rows = pq.ParquetFile(args.out).metadata.num_rows
    result["rows"] = rows
    result["seconds"] = phases.seconds["total"]


def materialize(store: Any, args: argparse.Namespace, phases: Phases, result: dict[str, Any]) -> None:
    start, end = datetime.fromisoformat(args.start), datetime.fromisoformat(args.end)
    with phases.time("materialize"):
        store.materialize(start, end)
    result["seconds"] = phases.seconds["materialize"]
    if args.entities is not None:  # not timed: the online values of sampled keys, for the exactness check
        refs: list[str] = json.loads(args.features)
        pairs: list[list[int]] = json.loads(Path(args.entities).read_text())
        rows = [{"user_id": u, "merchant_id": m} for u, m in pairs]
        with phases.time("check_read"):
            dump = dict(store.get_online_features(features=refs, entity_rows=rows).to_dict())
        Path(args.dump).write_text(json.dumps(dump, default=str))


def online(store: Any, args: argparse.Namespace, phases: Phases, result: dict[str, Any]) -> None:
    start, end = datetime.fromisoformat(args.start), datetime.fromisoformat(args.end)
    with phases.time("materialize"):
        store.materialize(start, end)
    refs: list[str] = json.loads(args.features)
    pairs: list[list[int]] = json.loads(Path(args.entities).read_text())
    rows = [{"user_id": u, "merchant_id": m} for u, m in pairs]

    def read(batch: list[dict[str, int]]) -> dict[str, Any]:
        return dict(store.get_online_features(features=refs, entity_rows=batch).to_dict())

    dump = read(rows[: args.dump_rows])
    Path(args.dump).write_text(json.dumps(dump, default=str))
    latency: dict[str, Any] = {}
    for size, calls in ((1, args.calls_1), (100, args.calls_100), (1000, args.calls_1000)):
        if calls <= 0:
            continue
        batches = [rows[(i * size) % len(rows) :][:size] for i in range(calls + 5)]
        batches = [b if len(b) == size else rows[:size] for b in batches]
        it = iter(batches)
        latency[str(size)] = percentiles(time_calls(lambda it=it: read(next(it)), calls, warmup=5))
    result["latency"] = latency


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--lib", choices=["potluck", "feast"], required=True)
    p.add_argument("--repo", type=Path, required=True)
    p.add_argument("--result", type=Path, required=True)
    p.add_argument("--features", required=True, help="JSON list of feature references")
    sub = p.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("historical")
    h.add_argument("--entity", type=Path, required=True)
    h.add_argument("--out", type=Path, required=True)
    for name in ("materialize", "online"):
        s = sub.add_parser(name)
        s.add_argument("--start", required=True)
        s.add_argument("--end", required=True)
        # `materialize`: optional, the online values of these keys are dumped after the timed call.
        s.add_argument("--entities", type=Path, required=name == "online")
        s.add_argument("--dump", type=Path, required=name == "online")
        if name == "online":
            s.add_argument("--dump-rows", type=int, default=1000)
            s.add_argument("--calls-1", type=int, default=2000)
            s.add_argument("--calls-100", type=int, default=200)
            s.add_argument("--calls-1000", type=int, default=30)
    args = p.parse_args()
    warnings.simplefilter("ignore")

    def body(result: dict[str, Any]) -> None:
        phases = Phases()
        result["phases"] = phases.seconds
        _, store = open_store(args.lib, args.repo, phases)
        if args.cmd == "historical":
            historical(args.lib, store, args, phases, result)
        elif args.cmd == "materialize":
            materialize(store, args, phases, result)
        else:
            online(store, args, phases, result)

    return run_main(args.result, body)


if __name__ == "__main__":
    sys.exit(main())
