"""One test per rule of DESIGN.md section 2 (point-in-time join), per input type and per error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from offline_engines import Engine, require_files
from potluck.definitions.errors import RetrievalError
from potluck.definitions.field import Field
from potluck.offline.duckdb_store import DuckDBOfflineStore
from potluck.offline.protocol import SourceTable, ViewQuery
from potluck.types import Float64, Int64, String

T0 = datetime(2024, 1, 1)
H = timedelta(hours=1)


def _source(tmp_path: Path, name: str, rows: list[dict[str, Any]], created: bool = True, **kw: Any) -> SourceTable:
    path = tmp_path / f"{name}.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    columns = {c: c for c in rows[0] if c not in {"ts", "created"}} if rows else {}
    return SourceTable(name, str(path), "parquet", "ts", "created" if created else "", columns | kw)


def _view(
    source: SourceTable,
    *,
    keys: tuple[str, ...] = ("user_id",),
    features: tuple[str, ...] = ("score",),
    ttl: timedelta = timedelta(0),
    name: str = "users",
    full: bool = False,
    dtype: Any = Int64,
) -> ViewQuery:
    return ViewQuery(
        name,
        source,
        keys,
        tuple(Field(name=f, dtype=dtype) for f in features),
        tuple(f"{name}__{f}" if full else f for f in features),
        ttl,
    )


def _users(tmp_path: Path, rows: list[tuple[int, datetime, datetime | None, int | None]]) -> SourceTable:
    return _source(
        tmp_path,
        "users",
        [{"user_id": u, "ts": t, "created": c, "score": s} for u, t, c, s in rows],
    )


def _entity(rows: list[tuple[Any, datetime]], **extra: list[Any]) -> pa.Table:
    data: dict[str, Any] = {"user_id": [r[0] for r in rows], "event_timestamp": [r[1] for r in rows]}
    return pa.table(data | extra)


def _scores(store: Engine, entity: Any, views: list[ViewQuery], **kw: Any) -> list[Any]:
    return store.get_historical_features(entity, views, **kw).to_arrow().column("score").to_pylist()


# -- semantics --------------------------------------------------------------------------------


def test_ttl_bounds_are_inclusive_at_both_ends(store: Engine, tmp_path: Path) -> None:
    view = _view(_users(tmp_path, [(1, T0, T0, 10)]), ttl=2 * H)
    entity = _entity(
        [
            (1, T0 - timedelta(microseconds=1)),
            (1, T0),
            (1, T0 + 2 * H),
            (1, T0 + 2 * H + timedelta(microseconds=1)),
        ]
    )
    assert _scores(store, entity, [view]) == [None, 10, 10, None]


def test_zero_ttl_is_unbounded(store: Engine, tmp_path: Path) -> None:
    view = _view(_users(tmp_path, [(1, T0, T0, 10)]), ttl=timedelta(0))
    assert _scores(store, _entity([(1, T0 + timedelta(days=3650))]), [view]) == [10]


def test_latest_event_then_latest_created_wins(store: Engine, tmp_path: Path) -> None:
    rows = [
        (1, T0 + H, T0 + H, 1),
        (1, T0 + H, T0 + 3 * H, 2),
        (1, T0 + H, T0 + 2 * H, 3),
        (1, T0, T0 + 9 * H, 4),
    ]
    view = _view(_users(tmp_path, rows))
    assert _scores(store, _entity([(1, T0 + 5 * H), (1, T0 + timedelta(minutes=30))]), [view]) == [2, 4]


def test_remaining_tie_goes_to_the_last_stored_row(store: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "dir"
    folder.mkdir()
    for i, score in enumerate([5, 6]):
        pq.write_table(
            pa.Table.from_pylist(
                [
                    {"user_id": 1, "ts": T0, "created": T0, "score": score},
                    {"user_id": 1, "ts": T0, "created": T0, "score": score * 10},
                ]
            ),
            folder / f"part-{i}.parquet",
        )
    source = SourceTable("users", str(folder), "parquet", "ts", "created", {"user_id": "user_id", "score": "score"})
    for _ in range(3):  # stable across runs
        assert _scores(store, _entity([(1, T0)]), [_view(source)]) == [60]


def test_null_created_loses_to_any_created(store: Engine, tmp_path: Path) -> None:
    view = _view(_users(tmp_path, [(1, T0, T0, 1), (1, T0, None, 2)]))
    assert _scores(store, _entity([(1, T0)]), [view]) == [1]


def test_one_row_per_input_row_in_order_with_duplicates_and_nulls(store: Engine, tmp_path: Path) -> None:
    view = _view(_users(tmp_path, [(1, T0, T0, 10), (2, T0, T0, 20)]))
    entity = _entity([(2, T0), (9, T0), (1, T0), (2, T0), (None, T0), (1, T0 - H), (2, T0)], label=list(range(7)))
    out = store.get_historical_features(entity, [view]).to_arrow()
    assert out.column("label").to_pylist() == list(range(7))
    assert out.column("score").to_pylist() == [20, None, 10, 20, None, None, 20]


def test_labels_pass_through_and_column_order(store: Engine, tmp_path: Path) -> None:
    view = _view(_users(tmp_path, [(1, T0, T0, 10)]))
    entity = pa.table({"label": ["a", None], "user_id": [1, 1], "event_timestamp": [T0, T0], "w": [0.5, 1.5]})
    out = store.get_historical_features(entity, [view]).to_arrow()
    assert out.column_names == ["label", "user_id", "event_timestamp", "w", "score"]
    assert out.column("label").to_pylist() == ["a", None]
    assert out.column("w").to_pylist() == [0.5, 1.5]


def test_full_feature_names(store: Engine, tmp_path: Path) -> None:
    view = _view(_users(tmp_path, [(1, T0, T0, 10)]), full=True)
    out = store.get_historical_features(_entity([(1, T0)]), [view]).to_arrow()
    assert out.column("users__score").to_pylist() == [10]


def test_name_collision_between_views_names_both(store: Engine, tmp_path: Path) -> None:
    source = _users(tmp_path, [(1, T0, T0, 10)])
    with pytest.raises(RetrievalError, match=r"'score'.*'other'.*'users'"):
        store.get_historical_features(_entity([(1, T0)]), [_view(source), _view(source, name="other")])


def test_name_collision_with_entity_column(store: Engine, tmp_path: Path) -> None:
    source = _users(tmp_path, [(1, T0, T0, 10)])
    with pytest.raises(RetrievalError, match=r"'score'.*entity_df"):
        store.get_historical_features(_entity([(1, T0)], score=[1]), [_view(source)])


def test_several_views_over_different_entities_and_composite_keys(store: Engine, tmp_path: Path) -> None:
    users = _view(_users(tmp_path, [(1, T0, T0, 10), (2, T0, T0, 20)]))
    pairs = _source(
        tmp_path,
        "pairs",
        [
            {"user_id": 1, "merchant_id": "m1", "ts": T0, "amount": 1.5},
            {"user_id": 1, "merchant_id": "m2", "ts": T0, "amount": 2.5},
            {"user_id": 2, "merchant_id": "m1", "ts": T0 + H, "amount": 3.5},
        ],
        created=False,
    )
    pair_view = _view(pairs, keys=("user_id", "merchant_id"), features=("amount",), name="pairs", dtype=Float64)
    entity = pa.table(
        {
            "user_id": [1, 1, 2, 2],
            "merchant_id": ["m2", "m1", "m1", "m2"],
            "event_timestamp": [T0, T0, T0, T0 + H],
        }
    )
    out = store.get_historical_features(entity, [users, pair_view]).to_arrow()
    assert out.column("score").to_pylist() == [10, 10, 20, 20]
    assert out.column("amount").to_pylist() == [2.5, 1.5, None, None]


def test_field_mapping_and_declared_types(store: Engine, tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    pq.write_table(pa.table({"uid": pa.array([1], pa.int32()), "t": [T0], "raw": pa.array([7], pa.int32())}), path)
    source = SourceTable("m", str(path), "parquet", "t", "", {"user_id": "uid", "score": "raw"})
    out = store.get_historical_features(_entity([(1, T0)]), [_view(source)]).to_arrow()
    assert out.schema.field("score").type == pa.int64()
    assert out.column("score").to_pylist() == [7]


def test_availability_time_requires_created_before_entity_time(store: Engine, tmp_path: Path) -> None:
    view = _view(_users(tmp_path, [(1, T0, T0 + H, 1), (1, T0 + H, T0 + 5 * H, 2)]))
    entity = _entity([(1, T0 + 2 * H), (1, T0 + H), (1, T0 + timedelta(minutes=30)), (1, T0 + 5 * H)])
    assert _scores(store, entity, [view]) == [2, 2, 1, 2]
    assert _scores(store, entity, [view], availability_time=True) == [1, 1, None, 2]


# -- timestamps -------------------------------------------------------------------------------


def test_timestamp_column_inferred_when_not_named_event_timestamp(store: Engine, tmp_path: Path) -> None:
    view = _view(_users(tmp_path, [(1, T0, T0, 10)]))
    out = store.get_historical_features(pa.table({"user_id": [1], "when": [T0]}), [view]).to_arrow()
    assert out.column("score").to_pylist() == [10]
    assert out.schema.field("when").type == pa.timestamp("us", tz="UTC")


def test_no_timestamp_column_is_an_error(store: Engine, tmp_path: Path) -> None:
    view = _view(_users(tmp_path, [(1, T0, T0, 10)]))
    with pytest.raises(RetrievalError, match=r"no event-timestamp column.*'user_id'"):
        store.get_historical_features(pa.table({"user_id": [1]}), [view])


def test_several_timestamp_columns_is_an_error_naming_them(store: Engine, tmp_path: Path) -> None:
    view = _view(_users(tmp_path, [(1, T0, T0, 10)]))
    with pytest.raises(RetrievalError, match=r"several timestamp columns \('a', 'b'\)"):
        store.get_historical_features(pa.table({"user_id": [1], "a": [T0], "b": [T0]}), [view])


def test_time_zones_are_normalised_to_utc(store: Engine, tmp_path: Path) -> None:
    # Source in +02:00 (tz-aware), entity in naive UTC and in New York time.
    path = tmp_path / "tz.parquet"
    plus2 = timezone(timedelta(hours=2))
    pq.write_table(
        pa.table(
            {
                "user_id": [1],
                "ts": pa.array([T0.replace(tzinfo=UTC).astimezone(plus2)], pa.timestamp("us", tz="+02:00")),
                "score": [5],
            }
        ),
        path,
    )
    view = _view(SourceTable("tz", str(path), "parquet", "ts", "", {"user_id": "user_id", "score": "score"}))
    naive = _entity([(1, T0 - timedelta(microseconds=1)), (1, T0)])
    assert _scores(store, naive, [view]) == [None, 5]
    ny = pd.DataFrame(
        {
            "user_id": [1, 1],
            "event_timestamp": pd.to_datetime(["2023-12-31 18:59:59", "2023-12-31 19:00:00"]).tz_localize(
                "America/New_York"
            ),
        }
    )
    out = store.get_historical_features(ny, [view]).to_arrow()
    assert out.column("score").to_pylist() == [None, 5]
    assert out.column("event_timestamp").to_pylist() == [
        T0.replace(tzinfo=UTC) - timedelta(seconds=1),
        T0.replace(tzinfo=UTC),
    ]


def test_nanosecond_entity_timestamps(store: Engine, tmp_path: Path) -> None:
    view = _view(_users(tmp_path, [(1, T0, T0, 10)]))
    entity = pd.DataFrame(
        {
            "user_id": [1, 1],
            "event_timestamp": pd.to_datetime([T0, T0 - timedelta(microseconds=1)]).astype("datetime64[ns]"),
        }
    )
    assert str(entity["event_timestamp"].dtype) == "datetime64[ns]"
    assert _scores(store, entity, [view]) == [10, None]


# -- entity_df input types --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["pandas", "polars", "arrow", "parquet_file", "parquet_path", "parquet_dir", "sql"])
def test_entity_df_input_types(store: Engine, tmp_path: Path, kind: str) -> None:
    view = _view(_users(tmp_path, [(1, T0, T0, 10), (2, T0, T0, 20)]))
    table = _entity([(2, T0), (1, T0), (3, T0), (2, T0)], label=[0, 1, 2, 3])
    entity: Any
    if kind == "pandas":
        entity = table.to_pandas()
    elif kind == "polars":
        entity = pl.from_arrow(table)
    elif kind == "arrow":
        entity = table
    elif kind == "parquet_dir":
        (tmp_path / "ent").mkdir()
        pq.write_table(table.slice(0, 2), tmp_path / "ent" / "a.parquet")
        pq.write_table(table.slice(2), tmp_path / "ent" / "b.parquet")
        entity = str(tmp_path / "ent")
    else:
        pq.write_table(table, tmp_path / "entity.parquet")
        entity = {
            "parquet_file": str(tmp_path / "entity.parquet"),
            "parquet_path": tmp_path / "entity.parquet",
            "sql": f"SELECT * FROM {store.relation_of(table, tmp_path)} ORDER BY label",
        }[kind]
    out = store.get_historical_features(entity, [view]).to_arrow()
    assert out.column("label").to_pylist() == [0, 1, 2, 3]
    assert out.column("score").to_pylist() == [20, 10, None, 20]


# -- bad input --------------------------------------------------------------------------------


def test_missing_join_key_names_key_and_view(store: Engine, tmp_path: Path) -> None:
    view = _view(_users(tmp_path, [(1, T0, T0, 10)]))
    with pytest.raises(RetrievalError, match=r"join key column\(s\) 'user_id' needed by feature view 'users'"):
        store.get_historical_features(pa.table({"uid": [1], "event_timestamp": [T0]}), [view])


def test_wrong_key_type(store: Engine, tmp_path: Path) -> None:
    view = _view(_users(tmp_path, [(1, T0, T0, 10)]))
    with pytest.raises(RetrievalError, match=r"join key 'user_id'.*(VARCHAR|TEXT) in entity_df but BIGINT"):
        store.get_historical_features(_entity([("1", T0)]), [view])


def test_integer_keys_of_other_widths_match(store: Engine, tmp_path: Path) -> None:
    view = _view(_users(tmp_path, [(1, T0, T0, 10)]))
    entity = pa.table({"user_id": pa.array([1], pa.int32()), "event_timestamp": [T0]})
    assert _scores(store, entity, [view]) == [10]


def test_empty_entity_df(store: Engine, tmp_path: Path) -> None:
    view = _view(_users(tmp_path, [(1, T0, T0, 10)]))
    with pytest.raises(RetrievalError, match="entity_df is empty"):
        store.get_historical_features(_entity([(1, T0)]).slice(0, 0), [view])
    with pytest.raises(RetrievalError, match="entity_df is empty"):
        store.get_historical_features(
            "SELECT 1 AS user_id, TIMESTAMP '2024-01-01' AS event_timestamp WHERE false", [view]
        )


def test_missing_source_file(store: Engine, tmp_path: Path) -> None:
    require_files(store)
    source = SourceTable("gone", str(tmp_path / "gone.parquet"), "parquet", "ts", "", {})
    with pytest.raises(RetrievalError, match=r"view 'users'.*'gone'.*gone.parquet' does not exist"):
        store.get_historical_features(_entity([(1, T0)]), [_view(source)])


def test_source_lacking_a_declared_column(store: Engine, tmp_path: Path) -> None:
    source = _users(tmp_path, [(1, T0, T0, 10)])
    view = _view(source, features=("score", "age"))
    with pytest.raises(RetrievalError, match=r"no column 'age'.*feature 'age' of feature view 'users'"):
        store.get_historical_features(_entity([(1, T0)]), [view])


@pytest.mark.parametrize("column", ["file_index", "file_row_number"])
def test_source_column_named_like_a_row_position_is_an_error(store: Engine, tmp_path: Path, column: str) -> None:
    require_files(store)
    # DuckDB reports a Parquet row's position under these names; a stored column would hide it.
    source = _source(tmp_path, "users", [{"user_id": 1, "ts": T0, "created": T0, "score": 10, column: 7}])
    with pytest.raises(RetrievalError, match=rf"users.parquet\) has a column named '{column}'.*rename"):
        store.get_historical_features(_entity([(1, T0)]), [_view(source)])
    with pytest.raises(RetrievalError, match=rf"has a column named '{column}'"):
        list(store.latest_rows(_view(source), None, T0 + H, 100))


def test_bad_entity_df_type(store: Engine, tmp_path: Path) -> None:
    view = _view(_users(tmp_path, [(1, T0, T0, 10)]))
    with pytest.raises(RetrievalError, match="entity_df must be"):
        store.get_historical_features([{"user_id": 1}], [view])


def test_reserved_entity_column(store: Engine, tmp_path: Path) -> None:
    view = _view(_users(tmp_path, [(1, T0, T0, 10)]))
    with pytest.raises(RetrievalError, match="reserved prefix"):
        store.get_historical_features(_entity([(1, T0)], __potluck_row=[1]), [view])


# -- outputs ----------------------------------------------------------------------------------


def test_outputs_agree(store: Engine, tmp_path: Path) -> None:
    view = _view(_users(tmp_path, [(u, T0 + i * H, T0, i) for i in range(5) for u in range(50)]))
    entity = _entity([(u % 60, T0 + (u % 7) * H) for u in range(300)], label=list(range(300)))
    job = store.get_historical_features(entity, [view])
    table = job.to_arrow()
    assert table.num_rows == 300
    job.to_parquet(tmp_path / "out.parquet")
    assert pq.read_table(tmp_path / "out.parquet").equals(table)
    assert pa.Table.from_batches(list(job.to_arrow_batches(batch_rows=64))).equals(table)
    frame = job.to_df()
    assert list(frame["label"]) == list(range(300))
    if store.name == "duckdb":
        assert "ASOF LEFT JOIN" in job.to_sql()
    job.close()


def test_names_with_quotes_and_spaces(store: Engine, tmp_path: Path) -> None:
    path = tmp_path / "odd.parquet"
    pq.write_table(pa.table({'user "id"': [1], "ts": [T0], "select": [3]}), path)
    source = SourceTable("odd", str(path), "parquet", "ts", "", {'user "id"': 'user "id"', "score": "select"})
    view = _view(source, keys=('user "id"',))
    entity = pa.table({'user "id"': [1], "event time": [T0]})
    assert _scores(store, entity, [view]) == [3]


# -- sources, schema, append, latest rows -----------------------------------------------------


def test_csv_source(store: Engine, tmp_path: Path) -> None:
    require_files(store)
    path = tmp_path / "users.csv"
    path.write_text("user_id,ts,score\n1,2024-01-01 00:00:00,5\n1,2024-01-01 00:00:00,6\n2,2024-01-01 01:00:00,7\n")
    source = SourceTable("csv", str(path), "csv", "ts", "", {"user_id": "user_id", "score": "score"})
    assert _scores(store, _entity([(1, T0), (2, T0 + H), (2, T0)]), [_view(source)]) == [6, 7, None]
    assert store.source_schema(source).names == ["user_id", "ts", "score"]


def test_directory_source_recursive(store: Engine, tmp_path: Path) -> None:
    require_files(store)
    (tmp_path / "d" / "day=2").mkdir(parents=True)
    pq.write_table(pa.table({"user_id": [1], "ts": [T0], "score": [1]}), tmp_path / "d" / "a.parquet")
    pq.write_table(pa.table({"user_id": [1], "ts": [T0 + H], "score": [2]}), tmp_path / "d" / "day=2" / "b.parquet")
    source = SourceTable("d", str(tmp_path / "d"), "parquet", "ts", "", {"user_id": "user_id", "score": "score"})
    assert _scores(store, _entity([(1, T0), (1, T0 + H)]), [_view(source)]) == [1, 2]


def test_source_schema_is_read_from_metadata(store: Engine, tmp_path: Path) -> None:
    source = _users(tmp_path, [(1, T0, T0, 10)])
    schema = store.source_schema(source)
    assert schema.field("user_id").type == pa.int64()
    assert schema.field("ts").type == pa.timestamp("us")


def test_append_to_directory_and_file(store: Engine, tmp_path: Path) -> None:
    require_files(store)
    rows = pa.table({"user_id": [1], "ts": [T0], "score": [1]})
    later = pa.table({"score": [2], "user_id": [1], "ts": [T0]})  # same timestamps, other column order
    for target in (tmp_path / "dir", tmp_path / "single.parquet"):
        source = SourceTable("s", str(target), "parquet", "ts", "", {"user_id": "user_id", "score": "score"})
        store.append(source, rows)
        store.append(source, later)
        assert _scores(store, _entity([(1, T0)]), [_view(source)]) == [2]  # the appended row wins the tie
    assert len(list((tmp_path / "dir").glob("*.parquet"))) == 2
    assert not list(tmp_path.rglob("*.tmp"))


def test_latest_rows(store: Engine, tmp_path: Path) -> None:
    rows = [(u, T0 + i * H, T0 + (5 - i) * H if i else None, u * 10 + i) for u in range(5) for i in range(4)]
    view = _view(_users(tmp_path, rows), features=("score",))
    batches = list(store.latest_rows(view, T0 + H, (T0 + 2 * H).replace(tzinfo=UTC), batch_rows=2))
    assert sum(b.num_rows for b in batches) == 5
    assert all(0 < b.num_rows <= 2 for b in batches)  # bounded batches; their split is DuckDB's choice
    table = pa.Table.from_batches(batches).sort_by("user_id")
    assert table.column_names == ["user_id", "score", "event_timestamp", "created_timestamp"]
    assert table.schema.field("event_timestamp").type == pa.timestamp("us", tz="UTC")
    assert table.column("score").to_pylist() == [u * 10 + 2 for u in range(5)]
    assert table.column("created_timestamp").to_pylist() == [(T0 + 3 * H).replace(tzinfo=UTC)] * 5


def test_latest_rows_without_created_column(store: Engine, tmp_path: Path) -> None:
    source = _source(tmp_path, "nc", [{"user_id": 1, "ts": T0, "score": 1}], created=False)
    table = pa.Table.from_batches(list(store.latest_rows(_view(source), None, T0, batch_rows=10)))
    assert table.column("created_timestamp").to_pylist() == [None]
    assert table.column("score").to_pylist() == [1]


def test_config_is_honoured(tmp_path: Path) -> None:
    from potluck.repo.config import DuckDBOfflineStoreConfig

    config = DuckDBOfflineStoreConfig(memory_limit="1GB", temp_directory=str(tmp_path / "spill"), threads=1)
    with DuckDBOfflineStore(config) as s:
        settings = dict(
            s._con.execute(
                "SELECT name, value FROM duckdb_settings() WHERE name IN ('threads', 'temp_directory', 'memory_limit')"
            ).fetchall()
        )
    assert settings["threads"] == "1"
    assert settings["temp_directory"].endswith("spill")
    assert settings["memory_limit"].startswith(("953.6 MiB", "1.0 GB", "1000.0 MB"))


def test_string_dtype_feature(store: Engine, tmp_path: Path) -> None:
    source = _source(tmp_path, "s", [{"user_id": 1, "ts": T0, "name": "ann"}], created=False)
    out = store.get_historical_features(
        _entity([(1, T0)]), [_view(source, features=("name",), dtype=String)]
    ).to_arrow()
    assert out.column("name").to_pylist() == ["ann"]
