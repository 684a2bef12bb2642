"""The same work done by hand on the raw backends: the practical lower bound for each benchmark.

    python raw_runner.py --data DIR --result OUT.json historical --out R.parquet
    python raw_runner.py --data DIR --result OUT.json materialize --backend sqlite|redis --start ISO --end ISO ...
    python raw_runner.py --data DIR --result OUT.json online --backend sqlite|redis ... --entities E.json --dump D.json

historical: one DuckDB query: ASOF LEFT JOINs of the entity rows with each view (deduplicated on
(key, event_timestamp) keeping the latest created_timestamp), ttl applied as an inclusive lower bound,
output in input order. materialize: DuckDB picks the latest row per entity inside [start, end]; rows go
to SQLite with executemany in one transaction, or to Redis as one hash per entity in pipelines.
online: SQLite SELECT by primary key per view; Redis one pipeline of HMGETs for all keys.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from _common import Phases, percentiles, run_main, time_calls  # noqa: E402
from generate import MERCHANT_FEATURES, MERCHANT_TTL, ONLINE_USER_FEATURES, USER_FEATURES, USER_TTL  # noqa: E402

VIEWS = {
    "user_stats": ("user_id", USER_FEATURES, USER_TTL),
    "merchant_stats": ("merchant_id", MERCHANT_FEATURES, MERCHANT_TTL),
}
REDIS_PREFIX = "bench_raw"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _deduped(view: str, data: Path) -> str:
    key, feats, _ = VIEWS[view]
    cols = ", ".join(_q(n) for n, _ in feats)
    # Among rows sharing (key, event_timestamp) keep the latest created_timestamp.
    return (
        f"SELECT {_q(key)}, event_timestamp AS __ts, {cols} "
        f"FROM read_parquet({_lit(str(data / f'{view}.parquet'))}) "
        f"QUALIFY row_number() OVER (PARTITION BY {_q(key)}, event_timestamp "
        f"ORDER BY created_timestamp DESC) = 1"
    )


def historical_sql(data: Path, entity: Path, out: Path) -> str:
    u_key, u_feats, u_ttl = VIEWS["user_stats"]
    m_key, m_feats, m_ttl = VIEWS["merchant_stats"]

    def guarded(alias: str, feats: list[tuple[str, str]], ttl_s: int, ts_col: str) -> str:
        bound = f"e.event_timestamp - INTERVAL {ttl_s} SECOND"
        return ", ".join(f"CASE WHEN {ts_col} >= {bound} THEN {alias}.{_q(n)} END AS {_q(n)}" for n, _ in feats)

    return f"""
COPY (
  WITH u AS ({_deduped("user_stats", data)}),
       m AS ({_deduped("merchant_stats", data)}),
       e0 AS (SELECT * FROM read_parquet({_lit(str(entity))}, file_row_number = true)),
       e1 AS (
         SELECT e0.*, u.__ts AS __u_ts, {", ".join(f"u.{_q(n)}" for n, _ in u_feats)}
         FROM e0 ASOF LEFT JOIN u ON e0.{_q(u_key)} = u.{_q(u_key)} AND e0.event_timestamp >= u.__ts
       )
  SELECT e.* EXCLUDE (file_row_number, __u_ts, {", ".join(_q(n) for n, _ in u_feats)}),
         {guarded("e", u_feats, int(u_ttl.total_seconds()), "e.__u_ts")},
         {guarded("m", m_feats, int(m_ttl.total_seconds()), "m.__ts")}
  FROM e1 AS e ASOF LEFT JOIN m ON e.{_q(m_key)} = m.{_q(m_key)} AND e.event_timestamp >= m.__ts
  ORDER BY e.file_row_number
) TO {_lit(str(out))} (FORMAT parquet)
"""


def historical(args: argparse.Namespace, phases: Phases, result: dict[str, Any]) -> None:
    import duckdb

    con = duckdb.connect()
    with phases.time("total"):
        con.execute(historical_sql(args.data, args.entity, args.out))
    result["rows"] = con.execute(f"SELECT count(*) FROM read_parquet({_lit(str(args.out))})").fetchone()[0]
    result["seconds"] = phases.seconds["total"]


def latest_rows_sql(view: str, data: Path, start: str, end: str) -> str:
    key, feats, _ = VIEWS[view]
    cols = ", ".join(_q(n) for n, _ in feats)
    return (
        f"SELECT {_q(key)}, {cols}, epoch_us(event_timestamp) AS event_ts, epoch_us(created_timestamp) AS created_ts "
        f"FROM read_parquet({_lit(str(data / f'{view}.parquet'))}) "
        f"WHERE event_timestamp BETWEEN {_lit(start)}::TIMESTAMPTZ AND {_lit(end)}::TIMESTAMPTZ "
        f"QUALIFY row_number() OVER (PARTITION BY {_q(key)} ORDER BY event_timestamp DESC, created_timestamp DESC) = 1"
    )


def _batches(con: Any, sql: str) -> Any:
    rel = con.sql(sql)
    return iter(rel.to_arrow_reader(100_000) if hasattr(rel, "to_arrow_reader") else rel.record_batch(100_000))


def materialize_sqlite(args: argparse.Namespace, con: Any) -> int:
    db = sqlite3.connect(args.sqlite_path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    written = 0
    for view, (key, feats, _) in VIEWS.items():
        names = [key, *(n for n, _ in feats), "event_ts", "created_ts"]
        db.execute(f"DROP TABLE IF EXISTS {_q(view)}")
        db.execute(
            f"CREATE TABLE {_q(view)} ({_q(key)} INTEGER PRIMARY KEY, " + ", ".join(_q(n) for n in names[1:]) + ")"
        )
        insert = f"INSERT OR REPLACE INTO {_q(view)} VALUES ({', '.join('?' * len(names))})"
        db.execute("BEGIN")
        for batch in _batches(con, latest_rows_sql(view, args.data, args.start, args.end)):
            db.executemany(insert, zip(*(c.to_pylist() for c in batch.columns), strict=True))
            written += batch.num_rows
        db.execute("COMMIT")
    db.close()
    return written


def _redis(url: str) -> Any:
    import importlib.util

    import redis

    if importlib.util.find_spec("hiredis") is None:
        print("note: hiredis is not installed; redis-py parses replies in pure Python", file=sys.stderr)

    host, port = url.rsplit(":", 1)
    return redis.Redis(host=host, port=int(port))


def materialize_redis(args: argparse.Namespace, con: Any) -> int:
    import pyarrow as pa

    r = _redis(args.redis)
    written = 0
    for view, (_key, feats, _) in VIEWS.items():
        names = [n for n, _ in feats] + ["event_ts", "created_ts"]
        prefix = f"{REDIS_PREFIX}:{view}:"
        for batch in _batches(con, latest_rows_sql(view, args.data, args.start, args.end)):
            pipe = r.pipeline(transaction=False)
            # Values go over the wire as text; Arrow formats them in bulk, far cheaper than per value.
            cols = [c.cast(pa.string()).to_pylist() for c in batch.columns]
            for i, key in enumerate(cols[0]):
                mapping = {n: cols[j + 1][i] for j, n in enumerate(names) if cols[j + 1][i] is not None}
                pipe.hset(prefix + key, mapping=mapping)
            pipe.execute()
            written += batch.num_rows
    r.close()
    return written


def _preload(backend: str) -> None:
    """Import drivers before the timed section, as the feature-store runners do."""
    import pyarrow.compute  # noqa: F401

    if backend == "redis":
        import redis  # noqa: F401


def materialize(args: argparse.Namespace, phases: Phases, result: dict[str, Any]) -> None:
    import duckdb

    _preload(args.backend)
    con = duckdb.connect()
    with phases.time("materialize"):
        written = materialize_sqlite(args, con) if args.backend == "sqlite" else materialize_redis(args, con)
    result["entities_written"] = written
    result["seconds"] = phases.seconds["materialize"]


def _decode(kind: str, raw: bytes | None) -> Any:
    if raw is None:
        return None
    if kind == "Int64":
        return int(raw)
    if kind.startswith("Float"):
        return float(raw)
    return raw.decode()


def online_reader(args: argparse.Namespace) -> Any:
    u_key, u_all, _ = VIEWS["user_stats"]
    m_key, m_feats, _ = VIEWS["merchant_stats"]
    u_feats = [(n, k) for n, k in u_all if n in ONLINE_USER_FEATURES]
    plan = [("user_stats", u_key, u_feats, 0), ("merchant_stats", m_key, m_feats, 1)]
    out_names = [u_key, m_key] + [n for n, _ in u_feats] + [n for n, _ in m_feats]

    if args.backend == "sqlite":
        db = sqlite3.connect(args.sqlite_path, check_same_thread=False)

        def read(pairs: list[list[int]]) -> dict[str, list[Any]]:
            out: dict[str, list[Any]] = {u_key: [p[0] for p in pairs], m_key: [p[1] for p in pairs]}
            for view, key, feats, pos in plan:
                ids = list(dict.fromkeys(p[pos] for p in pairs))
                cols = ", ".join(_q(n) for n, _ in feats)
                sql = (
                    f"SELECT {_q(key)}, {cols} FROM {_q(view)} WHERE {_q(key)} = ?"
                    if len(ids) == 1
                    else f"SELECT {_q(key)}, {cols} FROM {_q(view)} WHERE {_q(key)} IN ({','.join('?' * len(ids))})"
                )
                found = {row[0]: row[1:] for row in db.execute(sql, ids)}
                empty = (None,) * len(feats)
                vals = [found.get(p[pos], empty) for p in pairs]
                for j, (n, _) in enumerate(feats):
                    out[n] = [v[j] for v in vals]
            return out

        return read, out_names

    r = _redis(args.redis)

    def read_redis(pairs: list[list[int]]) -> dict[str, list[Any]]:
        pipe = r.pipeline(transaction=False)
        for p in pairs:
            for view, _key, feats, pos in plan:
                pipe.hmget(f"{REDIS_PREFIX}:{view}:{p[pos]}", [n for n, _ in feats])
        replies = pipe.execute()
        out: dict[str, list[Any]] = {u_key: [p[0] for p in pairs], m_key: [p[1] for p in pairs]}
        for _, _, feats, _ in plan:
            for n, _ in feats:
                out[n] = []
        for i in range(len(pairs)):
            for v, (_, _, feats, _) in enumerate(plan):
                reply = replies[2 * i + v]
                for j, (n, kind) in enumerate(feats):
                    out[n].append(_decode(kind, reply[j]))
        return out

    return read_redis, out_names


def online(args: argparse.Namespace, phases: Phases, result: dict[str, Any]) -> None:
    import duckdb

    _preload(args.backend)
    with phases.time("materialize"):
        result["entities_written"] = (
            materialize_sqlite(args, duckdb.connect())
            if args.backend == "sqlite"
            else materialize_redis(args, duckdb.connect())
        )
    pairs: list[list[int]] = json.loads(Path(args.entities).read_text())
    read, _ = online_reader(args)
    Path(args.dump).write_text(json.dumps(read(pairs[: args.dump_rows]), default=str))
    latency: dict[str, Any] = {}
    for size, calls in ((1, args.calls_1), (100, args.calls_100), (1000, args.calls_1000)):
        if calls <= 0:
            continue
        batches = [pairs[(i * size) % len(pairs) :][:size] for i in range(calls + 5)]
        batches = [b if len(b) == size else pairs[:size] for b in batches]
        it = iter(batches)
        latency[str(size)] = percentiles(time_calls(lambda it=it: read(next(it)), calls, warmup=5))
    result["latency"] = latency


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, required=True, help="dataset folder from generate.py")
    p.add_argument("--result", type=Path, required=True)
    sub = p.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("historical")
    h.add_argument("--entity", type=Path, required=True)
    h.add_argument("--out", type=Path, required=True)
    for name in ("materialize", "online"):
        s = sub.add_parser(name)
        s.add_argument("--backend", choices=["sqlite", "redis"], required=True)
        s.add_argument("--sqlite-path", default="online_raw.db")
        s.add_argument("--redis", default="127.0.0.1:6379", help="host:port of a server this run may write to")
        s.add_argument("--start", required=True)
        s.add_argument("--end", required=True)
        if name == "online":
            s.add_argument("--entities", type=Path, required=True)
            s.add_argument("--dump", type=Path, required=True)
            s.add_argument("--dump-rows", type=int, default=1000)
            s.add_argument("--calls-1", type=int, default=2000)
            s.add_argument("--calls-100", type=int, default=200)
            s.add_argument("--calls-1000", type=int, default=30)
    args = p.parse_args()

    def body(result: dict[str, Any]) -> None:
        phases = Phases()
        result["phases"] = phases.seconds
        if args.cmd == "historical":
            historical(args, phases, result)
        elif args.cmd == "materialize":
            materialize(args, phases, result)
        else:
            online(args, phases, result)

    return run_main(args.result, body)


if __name__ == "__main__":
    sys.exit(main())
