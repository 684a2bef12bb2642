"""Parquet entity inputs scanned in place, the output timestamp conversion, and the default memory limit."""

from __future__ import annotations

import tempfile
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pit_reference import reference_join
from test_pit_cases import T0, _entity, _source, _users, _view
from test_pit_property import _entity_table, _write_views, scenarios

from offline_engines import Engine
from potluck.definitions.errors import RetrievalError
from potluck.offline import duckdb_store
from potluck.offline.duckdb_store import DuckDBOfflineStore, default_memory_limit, parse_size
from potluck.offline.protocol import SourceTable
from potluck.offline.sql import query

# -- Parquet entity files, scanned in place -------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.integers(min_value=1, max_value=3), st.booleans())
def test_parquet_entity_files_match_reference(scenario: dict[str, Any], n_files: int, prune: bool) -> None:
    """Entity rows spread over several files of a directory: one output row per input row, in
    file-name order then row order, each equal to the brute-force reference."""
    ratio = query._PRUNE_RATIO
    query._PRUNE_RATIO = 0 if prune else 2**62
    try:
        with tempfile.TemporaryDirectory() as tmp, DuckDBOfflineStore() as store:
            root = Path(tmp)
            views, refs = _write_views(root, scenario)
            table = _entity_table(scenario)
            folder = root / "entity"
            folder.mkdir()
            size = -(-table.num_rows // n_files)
            for i in range(n_files):
                # Names sort in file order; an empty trailing file is allowed.
                pq.write_table(table.slice(i * size, size), folder / f"part-{i:02d}.parquet")
            job = store.get_historical_features(
                str(folder), views, availability_time=scenario["availability"], strategy=scenario["strategy"]
            )
            assert "read_parquet" in job.to_sql().split("__potluck_v0")[0]  # scanned in place
            got = job.to_arrow().to_pylist()
    finally:
        query._PRUNE_RATIO = ratio
    assert got == reference_join(scenario["entity"], "event_timestamp", refs, scenario["availability"])


@pytest.mark.parametrize("shadowing", ["file_row_number", "file_index"])
def test_entity_file_with_a_position_column_is_copied_and_keeps_its_values(
    store: Engine, tmp_path: Path, shadowing: str
) -> None:
    """A real column named like a Parquet position column hides that column: such a file is copied
    and numbered instead, its column passes through unchanged and the order is still the input's."""
    view = _view(_users(tmp_path, [(1, T0, T0, 10), (2, T0, T0, 20)]))
    entity = pa.table({"user_id": [2, 1, 3, 2], "event_timestamp": [T0] * 4, shadowing: [9, 9, 0, 5]})
    pq.write_table(entity, tmp_path / "entity.parquet")
    job = store.get_historical_features(str(tmp_path / "entity.parquet"), [view])
    assert "read_parquet" not in job.to_sql().split("__potluck_v0")[0]
    out = job.to_arrow()
    assert out.column(shadowing).to_pylist() == [9, 9, 0, 5]
    assert out.column("user_id").to_pylist() == [2, 1, 3, 2]
    assert out.column("score").to_pylist() == [20, 10, None, 20]


def test_unreadable_entity_file_is_a_retrieval_error(store: Engine, tmp_path: Path) -> None:
    bad = tmp_path / "entity.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(RetrievalError, match="entity_df could not be read"):
        store.get_historical_features(str(bad), [_view(_users(tmp_path, [(1, T0, T0, 10)]))])


# -- the entity timestamp in the output ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["TIMESTAMP", "TIMESTAMPTZ"])
def test_output_timestamp_equals_the_input_instant_at_the_extremes(store: Engine, tmp_path: Path, kind: str) -> None:
    """The entity timestamp comes back as the same instant, zoned UTC, including infinities,
    the first and last representable microseconds and instants before 1970."""
    values = [
        "infinity",
        "-infinity",
        "0001-01-01 00:00:00",
        "9999-12-31 23:59:59.999999",
        "1969-12-31 23:59:59.999999",
        "2024-01-01 00:00:00",
    ]
    rows = " UNION ALL ".join(
        f"SELECT {i} AS user_id, '{v}'::{kind} AS event_timestamp, {i} AS n" for i, v in enumerate(values)
    )
    entity = f"SELECT * FROM ({rows}) AS r ORDER BY n"
    out = store.get_historical_features(entity, [_view(_users(tmp_path, [(5, T0, T0, 1)]))]).to_arrow()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    expected = con.sql(f"SELECT CAST(event_timestamp AS TIMESTAMPTZ) AS t FROM ({entity})").to_arrow_table()
    assert out.schema.field("event_timestamp").type == pa.timestamp("us", tz="UTC")
    assert out.column("event_timestamp").cast(pa.int64()).to_pylist() == (
        expected.column("t").cast(pa.int64()).to_pylist()
    )
    assert out.column("score").to_pylist() == [None, None, None, None, None, 1]


# -- the default memory limit ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("18.8 GiB", int(18.8 * 2**30)),
        ("953.6 MiB", int(953.6 * 2**20)),
        ("1.0 GB", 10**9),
        ("1000.0 MB", 10**9),
        ("512 bytes", 512),
        ("2048B", 2048),
        ("3 KiB", 3072),
        ("lots", None),
        ("", None),
    ],
)
def test_parse_size(text: str, size: int | None) -> None:
    assert parse_size(text) == size


def test_default_memory_limit_is_half_of_duckdb_default_with_a_floor() -> None:
    assert default_memory_limit("16.0 GiB") == "8192MiB"
    assert default_memory_limit("1.5 GiB") == f"{10**9 // 2**20}MiB"  # the 1GB floor
    assert default_memory_limit("512.0 MiB") == "512MiB"  # never above DuckDB's own default
    assert default_memory_limit("unreadable") == duckdb_store.DEFAULT_MEMORY_FLOOR


def test_unset_memory_limit_uses_the_default(tmp_path: Path) -> None:
    from potluck.repo.config import DuckDBOfflineStoreConfig

    plain = duckdb.connect()
    duckdb_default = str(plain.execute("SELECT current_setting('memory_limit')").fetchone()[0])  # type: ignore[index]
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{default_memory_limit(duckdb_default)}'")
    expected = con.execute("SELECT current_setting('memory_limit')").fetchone()
    with DuckDBOfflineStore(DuckDBOfflineStoreConfig(temp_directory=str(tmp_path / "spill"))) as s:
        assert s._con.execute("SELECT current_setting('memory_limit')").fetchone() == expected


# -- de-duplication by position (two scans of a Parquet source) ------------------------------------


def _created_ties_source(tmp_path: Path, kind: str) -> SourceTable:
    """Rows of user 1 at T0 whose created timestamps are null, infinite or finite, in an order
    where the winner by the documented rule is neither the first nor the last row stored."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    rows = [
        ("NULL", 1),
        ("'infinity'", 2),  # the greatest created timestamp: wins at T0
        ("'-infinity'", 3),
        ("'2024-01-01 00:00:00'", 4),
        ("NULL", 5),
        ("'-infinity'", 6),
        ("'-infinity'", 7),  # at T0 - 1h: ties with the null below, stored before it
        ("NULL", 8),  # at T0 - 1h: the last stored of the tie, wins there
        ("'1999-01-01'", 9),  # at T0 - 2h: any created timestamp beats a null one stored later
        ("NULL", 10),
    ]
    stamps = ["T0"] * 6 + ["T1"] * 2 + ["T2"] * 2
    at = {"T0": "'2024-01-01 00:00:00'", "T1": "'2023-12-31 23:00:00'", "T2": "'2023-12-31 22:00:00'"}
    values = ", ".join(
        f"(1, {at[s]}::{kind}, CAST({c} AS {kind}), {score})" for (c, score), s in zip(rows, stamps, strict=True)
    )
    path = tmp_path / "users.parquet"
    con.execute(
        f"COPY (SELECT * FROM (VALUES {values}) AS t(user_id, ts, created, score)) TO '{path}' (FORMAT parquet)"
    )
    return SourceTable("users", str(path), "parquet", "ts", "created", {"user_id": "user_id", "score": "score"})


@pytest.mark.parametrize("kind", ["TIMESTAMP", "TIMESTAMPTZ"])
def test_positional_dedup_orders_null_and_infinite_created_timestamps(store: Engine, tmp_path: Path, kind: str) -> None:
    """+infinity beats every created timestamp; null and -infinity sort first and tie, the
    row stored last winning the tie; both join strategies agree."""
    view = _view(_created_ties_source(tmp_path, kind))
    entity = _entity([(1, T0), (1, T0 - timedelta(hours=1)), (1, T0 - timedelta(hours=2)), (1, T0)])
    job = store.get_historical_features(entity, [view])
    assert "arg_max" in job.to_sql()  # one source file, no pruning: the two-scan path
    got = job.to_arrow().column("score").to_pylist()
    lateral = store.get_historical_features(entity, [view], strategy=query.Strategy.LATERAL)
    assert got == lateral.to_arrow().column("score").to_pylist()
    assert got == [2, 8, 9, 2]


def test_views_are_joined_narrowest_first_and_columns_keep_the_requested_order(store: Engine, tmp_path: Path) -> None:
    wide_source = _source(
        tmp_path,
        "wide",
        [{"user_id": 1, "ts": T0, "a": 1, "b": 2, "c": 3}, {"user_id": 2, "ts": T0, "a": 4, "b": 5, "c": 6}],
        created=False,
    )
    narrow_source = _source(tmp_path, "narrow", [{"user_id": 1, "ts": T0, "score": 7}], created=False)
    wide = _view(wide_source, features=("a", "b", "c"), name="wide")
    narrow = _view(narrow_source, name="narrow")
    job = store.get_historical_features(_entity([(2, T0), (1, T0)], label=[0, 1]), [wide, narrow])
    sql = job.to_sql()
    assert sql.index('AS "v1" ON') < sql.index('AS "v0" ON')
    out = job.to_arrow()
    assert out.column_names == ["user_id", "event_timestamp", "label", "a", "b", "c", "score"]
    assert out.to_pylist() == [
        {"user_id": 2, "event_timestamp": T0.replace(tzinfo=UTC), "label": 0, "a": 4, "b": 5, "c": 6, "score": None},
        {"user_id": 1, "event_timestamp": T0.replace(tzinfo=UTC), "label": 1, "a": 1, "b": 2, "c": 3, "score": 7},
    ]
