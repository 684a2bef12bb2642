"""Feast's push path (`FeatureStore.push(..., to=PushMode.ONLINE)`) over the stream benchmark's events.

    python feast_push_runner.py --repo DIR --events EVENTS.parquet --batch-size 5000 --result OUT.json

The repository folder gets `features.py` (an entity, a PushSource and a FeatureView on it) and is applied
first (not timed); `feature_store.yaml` is written by the caller (the online store under test).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Phases, load_module, run_main

FEATURES_PY = """\
from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource, PushSource, ValueType
from feast.types import Float64

rider = Entity(name="rider", join_keys=["rider_id"], value_type=ValueType.INT64)
log = FileSource(name="rides_log", path="{events}", timestamp_field="event_timestamp")
rides_push = PushSource(name="rides_push", batch_source=log)
rider_fare = FeatureView(
    name="rider_fare", entities=[rider], ttl=timedelta(0), schema=[Field(name="fare", dtype=Float64)],
    source=rides_push,
)
"""


def body(args: argparse.Namespace, result: dict[str, Any]) -> None:
    phases = Phases()
    with phases.time("import"):
        import feast
        import pandas as pd
        from feast.data_source import PushMode
    repo = Path(args.repo)
    (repo / "features.py").write_text(FEATURES_PY.replace("{events}", str(Path(args.events).resolve())))
    with phases.time("apply"):
        defs = load_module(repo / "features.py")
        store = feast.FeatureStore(repo_path=str(repo))
        store.apply([defs.rider, defs.rides_push, defs.rider_fare])
    events = pd.read_parquet(args.events)
    if args.limit:
        events = events.head(args.limit)
    batches = [events.iloc[i : i + args.batch_size] for i in range(0, len(events), args.batch_size)]
    t0 = time.perf_counter()
    for batch in batches:
        store.push("rides_push", batch, to=PushMode.ONLINE)
    seconds = time.perf_counter() - t0
    result.update(
        events=len(events), batch_size=args.batch_size, push_s=round(seconds, 3), events_per_s=len(events) / seconds
    )
    result["phases"] = phases.seconds


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repo", required=True)
    parser.add_argument("--events", required=True)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--result", required=True)
    args = parser.parse_args()
    return run_main(Path(args.result), lambda result: body(args, result))


if __name__ == "__main__":
    sys.exit(main())
