"""The grouped latest-row query returns exactly the rows of the window query, for every timestamp kind."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from potluck.definitions import Field
from potluck.definitions.types import Float64, Int64, String
from potluck.offline.duckdb_store import DuckDBOfflineStore, _arrow_table
from potluck.offline.protocol import SourceTable, ViewQuery
from potluck.offline.sql import DUCKDB, latest_rows_sql

T0 = datetime(2024, 1, 1)
STAMPS = {
    "zoned": pa.timestamp("us", tz="UTC"),
    "zoned_other": pa.timestamp("us", tz="Europe/Paris"),
    "naive": pa.timestamp("us"),
    "nanos": pa.timestamp("ns", tz="UTC"),
}


def _rows(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(400):
        ts = T0 + timedelta(hours=rng.randrange(12))  # few distinct times: many ties
        created = None if rng.random() < 0.3 else T0 + timedelta(hours=rng.randrange(3))
        rows.append(
            {
                "user_id": rng.randrange(30),
                "region": rng.choice(["a", "b"]),
                "ts": ts,
                "created": created,
                "score": rng.random(),
                "label": rng.choice(["x", "y", None]),
                "n": rng.randrange(1000),
            }
        )
    return rows


def _write(tmp_path: Path, rows: list[dict[str, Any]], stamp: pa.DataType, fmt: str) -> SourceTable:
    schema = pa.schema(
        [
            ("user_id", pa.int64()),
            ("region", pa.string()),
            ("ts", stamp),
            ("created", stamp),
            ("score", pa.float64()),
            ("label", pa.string()),
            ("n", pa.int64()),
        ]
    )
    zone = getattr(stamp, "tz", None)
    fixed = [
        r | {c: None if r[c] is None else (r[c].replace(tzinfo=UTC) if zone else r[c]) for c in ("ts", "created")}
        for r in rows
    ]
    table = pa.Table.from_pylist(fixed, schema=schema)
    path = tmp_path / f"src.{fmt}"
    if fmt == "csv":
        pcsv.write_csv(table, path)
    else:
        pq.write_table(table, path)
    columns = {c: c for c in ("user_id", "region", "score", "label", "n")}
    return SourceTable("s", str(path), fmt, "ts", "created", columns)


def _view(source: SourceTable, keys: tuple[str, ...]) -> ViewQuery:
    features = (Field(name="score", dtype=Float64), Field(name="label", dtype=String), Field(name="n", dtype=Int64))
    names = tuple(f.name for f in features)
    return ViewQuery("users", source, keys, features, names, timedelta(0))


def _window_rows(store: DuckDBOfflineStore, view: ViewQuery, start: datetime | None, end: datetime) -> list[Any]:
    cursor = store._cursor()
    try:
        source = store._source_input(cursor, view, None)
        query = latest_rows_sql(DUCKDB, view, source, start, end)
        return _arrow_table(cursor.sql(query.text, params=list(query.params))).to_pylist()
    finally:
        cursor.close()


# CSV timestamps are typed by inference when read back, so one kind covers the CSV path.
CASES = [(kind, "parquet") for kind in sorted(STAMPS)] + [("zoned", "csv")]


@pytest.mark.parametrize(("kind", "fmt"), CASES)
@pytest.mark.parametrize("keys", [("user_id",), ("user_id", "region")])
def test_grouped_equals_window(tmp_path: Path, kind: str, fmt: str, keys: tuple[str, ...]) -> None:
    source = _write(tmp_path, _rows(len(kind) + len(keys)), STAMPS[kind], fmt)
    view = _view(source, keys)
    with DuckDBOfflineStore() as store:
        for start, end in ((None, T0 + timedelta(hours=20)), (T0 + timedelta(hours=3), T0 + timedelta(hours=7))):
            got = [r for b in store.latest_rows(view, start, end, batch_rows=7) for r in b.to_pylist()]
            expected = _window_rows(store, view, start, end)

            def order(r: dict[str, Any]) -> tuple[Any, ...]:
                return tuple(r[k] for k in keys)

            assert got, "the scenario should select rows"
            assert sorted(got, key=order) == sorted(expected, key=order)
