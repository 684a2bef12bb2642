"""Joins larger than the memory limit (DuckDB spills) and sources whose directory holds no file yet."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from offline_engines import Engine, require_files
from potluck.definitions.errors import RetrievalError
from potluck.definitions.field import Field
from potluck.offline.duckdb_store import DuckDBOfflineStore
from potluck.offline.protocol import SourceTable, ViewQuery
from potluck.offline.sql import Strategy
from potluck.repo.config import DuckDBOfflineStoreConfig
from potluck.types import Float64, Int64, String

T0 = datetime(2024, 1, 1)
TINY_LIMIT_BYTES = 64 * 1024 * 1024  # about the smallest DuckDB runs this join in


def _big_source(path: Path, rows: int, users: int) -> SourceTable:
    rng = np.random.default_rng(7)
    seconds = rng.integers(0, 30 * 86_400, rows)
    # A third of the rows share (user, second) with another row, so the tie-break is exercised.
    seconds[rows // 3 :: 3] = seconds[rows // 3 - 1 : -1 : 3][: len(seconds[rows // 3 :: 3])]
    user = rng.integers(0, users, rows)
    user[rows // 3 :: 3] = user[rows // 3 - 1 : -1 : 3][: len(user[rows // 3 :: 3])]
    table = pa.table(
        {
            "user_id": user,
            "ts": pa.array(np.datetime64("2024-01-01") + seconds.astype("timedelta64[s]")).cast(pa.timestamp("us")),
            "created": pa.array(
                np.datetime64("2024-01-01") + (seconds + rng.integers(0, 3, rows)).astype("timedelta64[s]")
            ).cast(pa.timestamp("us")),
            "score": rng.integers(-1000, 1000, rows),
            "note": pa.array([f"note-{i:08d}-{'x' * 80}" for i in range(rows)]),
        }
    )
    pq.write_table(table, path, row_group_size=50_000)
    assert table.nbytes > TINY_LIMIT_BYTES  # the data does not fit in the limit
    return SourceTable(
        "big", str(path), "parquet", "ts", "created", {"user_id": "user_id", "score": "score", "note": "note"}
    )


def test_join_larger_than_the_memory_limit_spills_and_equals_the_unlimited_run(tmp_path: Path) -> None:
    source = _big_source(tmp_path / "big.parquet", rows=600_000, users=40_000)
    view = ViewQuery(
        "big",
        source,
        ("user_id",),
        (Field(name="score", dtype=Int64), Field(name="note", dtype=String)),
        ("score", "note"),
        timedelta(days=2),
    )
    rng = np.random.default_rng(3)
    n = 100_000
    entity = pa.table(
        {
            "user_id": rng.integers(0, 42_000, n),
            "event_timestamp": pa.array(
                np.datetime64("2024-01-01") + rng.integers(-86_400, 31 * 86_400, n).astype("timedelta64[s]")
            ).cast(pa.timestamp("us")),
        }
    )
    spill = tmp_path / "spill"
    tiny = DuckDBOfflineStoreConfig(
        memory_limit=f"{TINY_LIMIT_BYTES // (1024 * 1024)}MB", temp_directory=str(spill), threads=2
    )
    with DuckDBOfflineStore(tiny) as small, DuckDBOfflineStore(DuckDBOfflineStoreConfig(memory_limit="4GB")) as big:
        limited = small.get_historical_features(entity, [view]).to_arrow()
        unlimited = big.get_historical_features(entity, [view]).to_arrow()
        out = tmp_path / "limited.parquet"
        small.get_historical_features(entity, [view]).to_parquet(out)
        assert spill.is_dir()  # DuckDB creates its temporary directory only when it spills
    assert limited.num_rows == n
    assert limited.equals(unlimited)
    assert pq.read_table(out).equals(unlimited)
    assert limited.column("score").null_count < n  # the join found rows, it is not trivially empty


# -- sources without files ----------------------------------------------------------------------


def _empty_dir_view(tmp_path: Path, *, created: bool = True) -> ViewQuery:
    folder = tmp_path / "pushed"
    folder.mkdir()
    source = SourceTable(
        "pushed",
        str(folder),
        "parquet",
        "ts",
        "created" if created else "",
        {"user_id": "uid", "score": "s", "name": "n"},
    )
    return ViewQuery(
        "pushed",
        source,
        ("user_id",),
        (Field(name="score", dtype=Float64), Field(name="name", dtype=String)),
        ("score", "name"),
        timedelta(hours=1),
    )


@pytest.mark.parametrize("strategy", [None, Strategy.LATERAL])
@pytest.mark.parametrize("availability_time", [False, True])
def test_empty_directory_source_gives_nulls(
    store: Engine, tmp_path: Path, strategy: Strategy | None, availability_time: bool
) -> None:
    require_files(store)  # a folder that holds no file yet
    view = _empty_dir_view(tmp_path)
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"user_id": [1], "ts": pa.array([T0], pa.timestamp("us")), "x": [5]}), other)
    other_view = ViewQuery(
        "other",
        SourceTable("other", str(other), "parquet", "ts", "", {"user_id": "user_id", "x": "x"}),
        ("user_id",),
        (Field(name="x", dtype=Int64),),
        ("x",),
        timedelta(0),
    )
    entity = pa.table({"user_id": pa.array([1, 2], pa.int32()), "event_timestamp": [T0, T0 + timedelta(hours=1)]})
    out = store.get_historical_features(
        entity, [view, other_view], availability_time=availability_time, strategy=strategy
    ).to_arrow()
    assert out.column("score").to_pylist() == [None, None]
    assert out.column("name").to_pylist() == [None, None]
    assert out.schema.field("score").type == pa.float64()
    assert out.schema.field("name").type == pa.string()
    assert out.column("x").to_pylist() == [5, None]
    assert out.column("user_id").to_pylist() == [1, 2]


def test_empty_directory_source_has_no_latest_rows(store: Engine, tmp_path: Path) -> None:
    require_files(store)  # a folder that holds no file yet
    view = _empty_dir_view(tmp_path, created=False)
    assert list(store.latest_rows(view, None, T0, batch_rows=10)) == []
    assert list(store.latest_rows(view, T0 - timedelta(days=1), T0, batch_rows=10)) == []


def test_missing_file_and_empty_glob_stay_errors(store: Engine, tmp_path: Path) -> None:
    entity = pa.table({"user_id": [1], "event_timestamp": [T0]})
    for path, message in ((tmp_path / "nope.parquet", "does not exist"), (tmp_path / "*.parquet", "no file matches")):
        view = ViewQuery(
            "v",
            SourceTable("v", str(path), "parquet", "ts", "", {"user_id": "user_id", "x": "x"}),
            ("user_id",),
            (Field(name="x", dtype=Int64),),
            ("x",),
            timedelta(0),
        )
        with pytest.raises(RetrievalError, match=message):
            store.get_historical_features(entity, [view])


def test_csv_tie_break_follows_file_order_when_pruned(store: Engine, tmp_path: Path) -> None:
    # CSV row positions are numbered before the source is pruned or filtered (a join reorders rows).
    path = tmp_path / "ties.csv"
    lines = ["user_id,ts,score"] + [f"{i % 7},2024-01-01 00:00:00,{i}" for i in range(20_000)]
    path.write_text("\n".join(lines) + "\n")
    view = ViewQuery(
        "ties",
        SourceTable("ties", str(path), "csv", "ts", "", {"user_id": "user_id", "score": "score"}),
        ("user_id",),
        (Field(name="score", dtype=Int64),),
        ("score",),
        timedelta(hours=1),
    )
    entity = pa.table({"user_id": list(range(7)), "event_timestamp": [T0] * 7})
    out = store.get_historical_features(entity, [view]).to_arrow()
    assert out.column("score").to_pylist() == [19_999 - ((19_999 - u) % 7) for u in range(7)]
