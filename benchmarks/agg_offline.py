"""Training data for windowed aggregations: Potluck's DuckDB plan against hand-written exact DuckDB queries.

Usage: PYTHONPATH=src python benchmarks/agg_offline.py [events] [entity_rows] [--out results/agg_offline_X.json]

Data: `events` transactions (user, event time over 30 days, created time, amount with 2% nulls,
items), one user per 100 events; `entity_rows` entity rows at random times over the same month.
Features: count, sum and mean of `amount` over 1 hour, 1 day and 7 days (default hops: 5 minutes,
1 hour, 1 hour), by the sawtooth rule `floor(t / h) * h - W < event_ts <= t`.

Three runs, each in its own process (peak RSS is its own, see `_measure.py`), each writing its
result to Parquet with the same DuckDB settings (2 threads, 4 GB memory limit):
- `potluck`: `DuckDBOfflineStore.get_historical_features(...).to_parquet(...)`;
- `hand_join`: the query one writes by hand: join entity rows to the events of the same user inside
  the widest window, group per entity row, one FILTER per window;
- `hand_window`: the same plan as Potluck's, written by hand (events and entity rows in one
  ordered relation, a RANGE frame per window), for the practical floor.
The three results are compared value by value (counts and sums exactly, means to 1e-9).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
WINDOWS = [(3_600, 300), (86_400, 3_600), (604_800, 3_600)]  # (W, h) seconds
FUNCTIONS = ["count", "sum", "mean"]
SETTINGS = {"threads": 2, "memory_limit": "4GB"}


def generate(folder: Path, n_events: int, n_entity: int, seed: int = 7) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    n_users = max(n_events // 100, 1)
    base = int(np.datetime64("2024-01-01T00:00:00", "us").astype(np.int64))
    month = 30 * 86_400 * 1_000_000
    ts_type = pa.timestamp("us", tz="UTC")
    (folder / "events").mkdir(parents=True)
    chunk = 2_000_000
    for part, start in enumerate(range(0, n_events, chunk)):
        n = min(chunk, n_events - start)
        event = base + rng.integers(0, month, n)
        amount = np.round(rng.gamma(2.0, 40.0, n), 2)
        pq.write_table(
            pa.table(
                {
                    "user_id": pa.array(rng.integers(0, n_users, n)),
                    "ts": pa.array(event, ts_type),
                    "created": pa.array(event + rng.integers(0, 600_000_000, n), ts_type),
                    "amount": pa.array(amount, mask=rng.random(n) < 0.02),
                    "items": pa.array(rng.integers(1, 10, n)),
                }
            ),
            folder / "events" / f"part-{part:03d}.parquet",
        )
    pq.write_table(
        pa.table(
            {
                "user_id": pa.array(rng.integers(0, n_users, n_entity)),
                "event_timestamp": pa.array(base + rng.integers(0, month, n_entity), ts_type),
                "label": pa.array(rng.integers(0, 2, n_entity)),
            }
        ),
        folder / "entity.parquet",
    )


def _names() -> list[str]:
    return [f"{fn}_amount_{w}s" for w, _ in WINDOWS for fn in FUNCTIONS]


def run_potluck(folder: Path, out: Path) -> None:
    from potluck.definitions.field import Field
    from potluck.offline.duckdb_store import DuckDBOfflineStore
    from potluck.offline.protocol import SourceTable, ViewQuery, WindowedFeature
    from potluck.repo.config import DuckDBOfflineStoreConfig
    from potluck.types import Float64, Int64

    amount = Field(name="amount", dtype=Float64)
    features, aggs = [], []
    for w, h in WINDOWS:
        for fn in FUNCTIONS:
            features.append(Field(name=f"{fn}_amount_{w}s", dtype=Int64 if fn == "count" else Float64))
            aggs.append(WindowedFeature(amount, fn, w * 1_000_000, h * 1_000_000))
    view = ViewQuery(
        view_name="tx",
        source=SourceTable(
            name="tx",
            path=str(folder / "events"),
            file_format="parquet",
            timestamp_column="ts",
            created_timestamp_column="created",
            columns={"user_id": "user_id", "amount": "amount"},
        ),
        join_keys=("user_id",),
        features=tuple(features),
        output_names=tuple(f.name for f in features),
        ttl=timedelta(0),
        aggregations=tuple(aggs),
    )
    store = DuckDBOfflineStore(DuckDBOfflineStoreConfig(**SETTINGS))  # type: ignore[arg-type]
    store.get_historical_features(str(folder / "entity.parquet"), [view]).to_parquet(str(out))
    store.close()


def _lower(t: str, w: int, h: int) -> str:
    return f"({t} - ((({t} % {h}) + {h}) % {h}) - {w})"


def hand_join_sql(folder: Path) -> str:
    cols = []
    for w, h in WINDOWS:
        inside = f"s.us > {_lower('e.us', w * 1_000_000, h * 1_000_000)}"
        cols.append(f"count(s.amount) FILTER (WHERE {inside}) AS count_amount_{w}s")
        cols.append(f"sum(s.amount) FILTER (WHERE {inside}) AS sum_amount_{w}s")
        cols.append(f"avg(s.amount) FILTER (WHERE {inside}) AS mean_amount_{w}s")
    widest = max(w + h for w, h in WINDOWS) * 1_000_000
    return f"""
    WITH e AS (SELECT *, epoch_us(event_timestamp) AS us, row_number() OVER () AS rn
               FROM read_parquet('{folder / "entity.parquet"}')),
         s AS (SELECT user_id, epoch_us(ts) AS us, amount FROM read_parquet('{folder / "events" / "*.parquet"}')),
         f AS (SELECT user_id, min(us) AS first FROM s GROUP BY user_id),
         a AS (SELECT e.rn, {", ".join(cols)} FROM e JOIN s ON s.user_id = e.user_id AND s.us <= e.us
               AND s.us > e.us - {widest} GROUP BY e.rn)
    SELECT e.user_id, e.event_timestamp, e.label,
           {", ".join(f"CASE WHEN f.first <= e.us THEN {'COALESCE(a.' + n + ', 0)' if n.startswith('count') else 'a.' + n} END AS {n}" for n in _names())}
    FROM e LEFT JOIN a ON a.rn = e.rn LEFT JOIN f ON f.user_id = e.user_id ORDER BY e.rn
    """


def hand_window_sql(folder: Path) -> str:
    offsets = ", ".join(
        f"CASE WHEN rn IS NULL THEN 0 ELSE (((us % {h * 1_000_000}) + {h * 1_000_000}) % {h * 1_000_000}) "
        f"+ {w * 1_000_000 - 1} END AS off{i}"
        for i, (w, h) in enumerate(WINDOWS)
    )
    calls = []
    for i, (w, _) in enumerate(WINDOWS):
        frame = f"(PARTITION BY user_id ORDER BY us RANGE BETWEEN off{i} PRECEDING AND CURRENT ROW)"
        for fn, sql in (("count", "count"), ("sum", "sum"), ("mean", "avg")):
            calls.append(f"{sql}(amount) OVER {frame} AS {fn}_amount_{w}s")
    return f"""
    WITH e AS (SELECT *, epoch_us(event_timestamp) AS us, row_number() OVER () AS rn
               FROM read_parquet('{folder / "entity.parquet"}')),
         s AS (SELECT user_id, epoch_us(ts) AS us, amount FROM read_parquet('{folder / "events" / "*.parquet"}')),
         f AS (SELECT user_id, min(us) AS first FROM s GROUP BY user_id),
         u AS (SELECT *, {offsets} FROM (SELECT user_id, us, amount, NULL::BIGINT AS rn FROM s
               UNION ALL SELECT user_id, us, NULL, rn FROM e)),
         a AS (SELECT rn, {", ".join(calls)} FROM u QUALIFY rn IS NOT NULL)
    SELECT e.user_id, e.event_timestamp, e.label,
           {", ".join(f"CASE WHEN f.first <= e.us THEN a.{n} END AS {n}" for n in _names())}
    FROM e LEFT JOIN a ON a.rn = e.rn LEFT JOIN f ON f.user_id = e.user_id ORDER BY e.rn
    """


def run_hand(folder: Path, out: Path, which: str) -> None:
    import duckdb

    con = duckdb.connect(config={k: str(v) for k, v in SETTINGS.items()})
    con.execute("SET TimeZone = 'UTC'")
    sql = hand_join_sql(folder) if which == "hand_join" else hand_window_sql(folder)
    con.execute(f"COPY ({sql}) TO '{out}' (FORMAT parquet)")
    con.close()


def compare(a: Path, b: Path) -> int:
    """Rows (by position) where any feature differs beyond rounding."""
    import duckdb

    con = duckdb.connect()
    diffs = " OR ".join(
        f"NOT (x.{n} IS NOT DISTINCT FROM y.{n} OR abs(x.{n} - y.{n}) <= 1e-9 * greatest(abs(x.{n}), abs(y.{n})))"
        for n in _names()
    )
    row = con.execute(
        f"SELECT count(*) FROM (SELECT *, row_number() OVER () AS r FROM read_parquet('{a}')) x "
        f"JOIN (SELECT *, row_number() OVER () AS r FROM read_parquet('{b}')) y ON x.r = y.r WHERE {diffs}"
    ).fetchone()
    return int(row[0]) if row else -1


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if args and args[0] in ("potluck", "hand_join", "hand_window"):
        which, folder, out = args[0], Path(args[1]), Path(args[2])
        import duckdb  # noqa: F401  (imports are not timed)

        if which == "potluck":
            import potluck.offline.duckdb_store  # noqa: F401
        start = time.perf_counter()
        if which == "potluck":
            run_potluck(folder, out)
        else:
            run_hand(folder, out, which)
        (out.with_suffix(".time")).write_text(str(time.perf_counter() - start))
        return 0
    n_events = int(args[0]) if args else 10_000_000
    n_entity = int(args[1]) if len(args) > 1 else 1_000_000
    out_flag = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--out=")), None)
    result_path = Path(out_flag) if out_flag else HERE / "results" / f"agg_offline_e{n_entity}_f{n_events}.json"
    results: dict[str, object] = {"events": n_events, "entity_rows": n_entity, "windows": WINDOWS, **SETTINGS}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        generate(folder, n_events, n_entity)
        results["generate_s"] = round(time.perf_counter() - start, 1)
        env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
        for which in ("potluck", "hand_join", "hand_window"):
            out = folder / f"{which}.parquet"
            measure = folder / f"{which}.measure.json"
            subprocess.run(
                [sys.executable, str(HERE / "_measure.py"), str(measure), "--", sys.executable, __file__, which,
                 str(folder), str(out)],
                check=True,
                env=env,
            )  # fmt: skip
            usage = json.loads(measure.read_text())
            results[which] = {
                "seconds": round(float(out.with_suffix(".time").read_text()), 2),
                "peak_rss_mb": round(usage["maxrss_kb"] / 1024),
                "cpu_s": round(usage["cpu_s"], 1),
            }
            print(which, results[which], flush=True)
        results["mismatching_rows_vs_hand_join"] = compare(folder / "potluck.parquet", folder / "hand_join.parquet")
        results["mismatching_rows_vs_hand_window"] = compare(folder / "potluck.parquet", folder / "hand_window.parquet")
    p, j, w = (results[k]["seconds"] for k in ("potluck", "hand_join", "hand_window"))  # type: ignore[index]
    results["ratio_vs_hand_join"] = round(p / j, 2)
    results["ratio_vs_hand_window"] = round(p / w, 2)
    result_path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
