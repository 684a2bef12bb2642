"""Training data on PostgreSQL: Potluck's PostgreSQL offline store vs Feast 0.67's vs a hand-written query.

Usage: python benchmarks/offline_postgres.py [--entity-rows 1000000] [--user-rows 10000000]
           [--tools potluck,feast,raw] [--timeout 1800] [--name NAME]

Data: the workload of `generate.py` (user_stats with 10 features, merchant_stats with 4, created-time
ties, nulls, entity rows before, inside and beyond the ttls, duplicates), loaded once with COPY into
tables `user_stats` and `merchant_stats` of a database of its own on the PostgreSQL server at
$PGHOST:$PGPORT (default 127.0.0.1:5432, user $PGUSER or postgres), kept for later runs.

Three runs, each in its own process (peak RSS is the client's; the server's memory is not counted),
each reading the entity dataframe from Parquet and writing the training data to Parquet:
- `potluck`: `FeatureStore.get_historical_features(...).to_parquet(...)` on PostgreSQLSource tables;
- `feast`: Feast 0.67's PostgreSQL offline store on the same tables (`.to_df()`, then Parquet);
- `raw`: the query one writes by hand: the entity rows uploaded with COPY into a temporary table,
  then per view a range join on key and ttl window and `DISTINCT ON` the entity row, latest event
  then latest created time first; read through a server-side cursor.
Results are compared value by value against Potluck's (sorted by `row_id`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

HOST = os.environ.get("PGHOST", "127.0.0.1")
PORT = int(os.environ.get("PGPORT", "5432"))
USER = os.environ.get("PGUSER", "postgres")

FEAST_SOURCE = "from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import PostgreSQLSource"
POTLUCK_SOURCE = "from potluck import PostgreSQLSource"


def _conninfo(database: str) -> str:
    return f"host={HOST} port={PORT} user={USER} dbname={database}"


def _database(spec_name: str) -> str:
    import hashlib

    return "potluck_bench_" + hashlib.sha1(spec_name.encode()).hexdigest()[:12]


def load(data: Path, database: str) -> float:
    """Create the database and load the feature tables once; the seconds it took (0 if present)."""
    import psycopg
    import pyarrow.parquet as pq

    from potluck.offline import postgres_arrow

    with psycopg.connect(_conninfo("postgres"), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
            with psycopg.connect(_conninfo(database)) as db:
                if db.execute("SELECT to_regclass('bench_loaded')").fetchone() != (None,):
                    return 0.0
            conn.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')
    t0 = time.perf_counter()
    with psycopg.connect(_conninfo(database), autocommit=True) as conn, conn.cursor() as cursor:
        for name in ("user_stats", "merchant_stats"):
            postgres_arrow.create_table(cursor, name, pq.read_table(data / f"{name}.parquet"), temporary=False)
            cursor.execute(f"ANALYZE {name}")
        cursor.execute("CREATE TABLE bench_loaded (at timestamptz DEFAULT now())")
    return time.perf_counter() - t0


def write_repo(dest: Path, tool: str, database: str) -> Path:
    """The benchmark's feature repository for `tool`, its sources PostgreSQLSource tables."""
    from generate import write_repo as write_file_repo

    write_file_repo(dest, tool, dest)
    features = (dest / "features.py").read_text()
    for name in ("user_stats", "merchant_stats"):
        start = features.index(f"{name}_source = FileSource(")
        end = features.index("\n)\n", start) + 3
        block = (
            f"{name}_source = PostgreSQLSource(\n    name={name + '_source'!r},\n    table={name!r},\n"
            '    timestamp_field="event_timestamp",\n    created_timestamp_column="created_timestamp",\n)\n'
        )
        features = features[:start] + block + features[end:]
    features = features.replace(
        "\nuser = Entity(", "\n" + (FEAST_SOURCE if tool == "feast" else POTLUCK_SOURCE) + "\n\nuser = Entity(", 1
    )
    (dest / "features.py").write_text(features)
    password = "\n  password: unused\n  sslmode: disable" if tool == "feast" else ""
    offline = (
        f"offline_store:\n  type: postgres\n  host: {HOST}\n  port: {PORT}\n  database: {database}\n"
        f"  db_schema: public\n  user: {USER}{password}\n"
    )
    config = (dest / "feature_store.yaml").read_text().replace("offline_store:\n  type: duckdb\n", offline)
    (dest / "feature_store.yaml").write_text(config)
    return dest


# -- the runs (each in its own process) -----------------------------------------------------------


def run_store(tool: str, repo: Path, entity: Path, out: Path) -> dict[str, Any]:
    import pandas as pd

    t0 = time.perf_counter()
    if tool == "feast":
        from feast import FeatureStore
    else:
        from potluck import FeatureStore  # type: ignore[no-redef]
    store = FeatureStore(repo_path=str(repo))
    refs = [f"user_stats:{n}" for n, _ in _features("user")] + [f"merchant_stats:{n}" for n, _ in _features("merchant")]
    entity_df = pd.read_parquet(entity)
    t1 = time.perf_counter()
    job = store.get_historical_features(entity_df=entity_df, features=refs)
    if tool == "feast":
        job.to_df().to_parquet(out)
    else:
        job.to_parquet(str(out))
    t2 = time.perf_counter()
    return {"ok": True, "setup_s": round(t1 - t0, 3), "time_s": round(t2 - t1, 3)}


def _features(view: str) -> list[tuple[str, str]]:
    from generate import MERCHANT_FEATURES, USER_FEATURES

    return USER_FEATURES if view == "user" else MERCHANT_FEATURES


def run_raw(database: str, entity: Path, out: Path) -> dict[str, Any]:
    """The hand-written query: COPY the entity rows in, one DISTINCT ON range join per view."""
    import io

    import psycopg
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    from generate import MERCHANT_TTL, USER_TTL

    t0 = time.perf_counter()
    table = pq.read_table(entity)
    conn = psycopg.connect(_conninfo(database) + " options='-c TimeZone=UTC'", autocommit=True)
    conn.execute(
        "CREATE TEMP TABLE entity (row_id bigint, user_id bigint, merchant_id bigint, "
        "event_timestamp timestamptz, label bigint)"
    )
    sink = io.BytesIO()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False))
    with conn.cursor().copy("COPY entity FROM STDIN (FORMAT csv)") as copy:
        copy.write(sink.getvalue())
    conn.execute("ANALYZE entity")

    def view(name: str, key: str, features: list[tuple[str, str]], ttl_s: int) -> str:
        cols = ", ".join(f"f.{n}" for n, _ in features)
        return (
            f"{name} AS (SELECT DISTINCT ON (e.row_id) e.row_id, {cols} FROM entity e JOIN {name} f "
            f"ON f.{key} = e.{key} AND f.event_timestamp <= e.event_timestamp "
            f"AND f.event_timestamp >= e.event_timestamp - interval '{ttl_s} seconds' "
            "ORDER BY e.row_id, f.event_timestamp DESC, f.created_timestamp DESC)"
        )

    users, merchants = _features("user"), _features("merchant")
    query = (
        "WITH "
        + view("user_stats", "user_id", users, int(USER_TTL.total_seconds()))
        + ", "
        + view("merchant_stats", "merchant_id", merchants, int(MERCHANT_TTL.total_seconds()))
        + " SELECT e.row_id, e.user_id, e.merchant_id, e.event_timestamp, e.label, "
        + ", ".join(f"u.{n}" for n, _ in users)
        + ", "
        + ", ".join(f"m.{n}" for n, _ in merchants)
        + " FROM entity e LEFT JOIN user_stats u ON u.row_id = e.row_id "
        "LEFT JOIN merchant_stats m ON m.row_id = e.row_id ORDER BY e.row_id"
    )
    writer = None
    with conn.transaction(), conn.cursor(name="raw", binary=True) as cursor:
        cursor.execute(query)
        while rows := cursor.fetchmany(100_000):
            names = [d.name for d in cursor.description or []]
            batch = pa.table(dict(zip(names, map(list, zip(*rows, strict=True)), strict=True)))
            if writer is None:
                writer = pq.ParquetWriter(out, batch.schema)
            writer.write_table(batch.cast(writer.schema))
    if writer is not None:
        writer.close()
    conn.close()
    return {"ok": True, "setup_s": 0.0, "time_s": round(time.perf_counter() - t0, 3)}


def child(argv: list[str]) -> None:
    tool, repo_or_db, entity, out, result = argv
    try:
        if tool == "raw":
            data = run_raw(repo_or_db, Path(entity), Path(out))
        else:
            data = run_store(tool, Path(repo_or_db), Path(entity), Path(out))
    except Exception as err:  # reported in the result table
        data = {"ok": False, "error": f"{type(err).__name__}: {str(err)[:600]}"}
    Path(result).write_text(json.dumps(data))


# -- comparison and report --------------------------------------------------------------------------


def compare(reference: Path, other: Path) -> dict[str, Any]:
    """Values that differ from Potluck's, per feature column, matched by row_id."""
    import pyarrow.parquet as pq

    ref = pq.read_table(reference).to_pandas().sort_values("row_id").reset_index(drop=True)
    got = pq.read_table(other).to_pandas().sort_values("row_id").reset_index(drop=True)
    if len(ref) != len(got):
        return {"rows": len(got), "expected_rows": len(ref), "exact": False}
    names = [n for n, _ in _features("user")] + [n for n, _ in _features("merchant")]
    wrong = {}
    for name in names:
        a, b = ref[name], got[name]
        differs = ~((a == b) | (a.isna() & b.isna()))
        if int(differs.sum()):
            wrong[name] = int(differs.sum())
    return {"rows": len(got), "exact": not wrong, "differing_values": wrong}


def main() -> None:
    from _harness import feast_env, feast_missing, fmt, potluck_env, ratio, run_child, table
    from generate import Spec, ensure_dataset

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--entity-rows", type=int, default=1_000_000)
    p.add_argument("--user-rows", type=int, default=10_000_000)
    p.add_argument("--tools", default="potluck,feast,raw")
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--name", default=None)
    a = p.parse_args()
    merchant_rows = max(1, a.user_rows // 10)
    spec = Spec(a.entity_rows, a.user_rows, merchant_rows, max(1, a.user_rows // 10), max(1, merchant_rows // 20))
    data = ensure_dataset(spec, HERE / "data")
    database = _database(spec.name)
    loaded = load(data, database)
    print(f"data {data.name}; database {database}" + (f" (loaded in {loaded:.1f} s)" if loaded else ""), flush=True)
    runs = data / "runs_postgres"
    runs.mkdir(exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    for tool in a.tools.split(","):
        if tool == "feast" and feast_missing():
            results[tool] = {"ok": False, "error": feast_missing()}
            continue
        out = runs / f"{tool}.parquet"
        out.unlink(missing_ok=True)
        target = database if tool == "raw" else str(write_repo(runs / f"repo_{tool}", tool, database))
        if tool != "raw":
            python = str(HERE / ".venv-feast" / "bin" / "python") if tool == "feast" else sys.executable
            env = feast_env() if tool == "feast" else potluck_env()
            apply = "feast apply" if tool == "feast" else "potluck apply"
            cli = Path(python).with_name(apply.split(maxsplit=1)[0])
            import subprocess

            subprocess.run([str(cli), "apply"], cwd=target, env=env, check=True, capture_output=True)
        else:
            python, env = sys.executable, potluck_env()
        argv = [
            python,
            __file__,
            "--child",
            tool,
            target,
            str(data / "entity_df.parquet"),
            str(out),
            str(runs / f"{tool}.json"),
        ]
        results[tool] = run_child(
            argv, env=env, cwd=runs, log=runs / f"{tool}.log", result=runs / f"{tool}.json", timeout_s=a.timeout
        )
        print(tool, json.dumps(results[tool]), flush=True)
    reference = runs / "potluck.parquet"
    for tool, r in results.items():
        if r.get("ok") and tool != "potluck" and reference.exists():
            r["check"] = compare(reference, runs / f"{tool}.parquet")
    raw_t = results.get("raw", {}).get("time_s")
    feast_t = results.get("feast", {}).get("time_s")
    rows = []
    for tool, r in results.items():
        rows.append(
            [
                tool,
                fmt(r.get("time_s")),
                fmt(r.get("peak_rss_mb"), 0),
                fmt(r.get("cpu_s")),
                fmt(ratio(r.get("time_s"), feast_t)),
                fmt(ratio(r.get("time_s"), raw_t)),
                "reference" if tool == "potluck" else json.dumps(r.get("check", r.get("error", ""))),
            ]
        )
    print(table(["tool", "time s", "peak RSS MB", "CPU s", "x feast", "x raw", "vs potluck"], rows))
    name = a.name or f"offline_postgres_e{a.entity_rows}_u{a.user_rows}"
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / f"{name}.json").write_text(
        json.dumps({"spec": spec.name, "load_s": loaded, "results": results}, indent=2)
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
    else:
        main()
