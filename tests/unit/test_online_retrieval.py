"""get_online_features and materialize_view over a real SQLite online store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from potluck.definitions.errors import RetrievalError
from potluck.definitions.field import Field
from potluck.materialize.local import materialize_view
from potluck.online.factory import create_online_store
from potluck.online.protocol import OnlineView
from potluck.online.sqlite import SqliteOnlineStore
from potluck.repo.config import RepoConfig, SqliteOnlineStoreConfig
from potluck.retrieval.online import FieldStatus, OnlineSelection, get_online_features
from potluck.types import Float64, Int64, String

T0 = datetime(2024, 1, 1, tzinfo=UTC)
USERS = OnlineView(
    "p",
    "users",
    ("user_id",),
    (Field(name="user_id", dtype=Int64),),
    (Field(name="age", dtype=Int64), Field(name="name", dtype=String)),
    timedelta(days=1),
)
SHOPS = OnlineView(
    "p",
    "shops",
    ("shop",),
    (Field(name="shop", dtype=String),),
    (Field(name="rating", dtype=Float64),),
    timedelta(0),
)


def _table(rows: dict[str, list[Any]]) -> pa.Table:
    n = len(next(iter(rows.values())))
    return pa.table({**rows, "event_timestamp": pa.array([T0] * n, pa.timestamp("us", tz="UTC"))})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteOnlineStore]:
    s = SqliteOnlineStore(SqliteOnlineStoreConfig(), path=tmp_path / "online.db")
    s.create([USERS, SHOPS])
    s.write(USERS, _table({"user_id": [1, 2], "age": [30, 40], "name": ["ann", None]}))
    s.write(SHOPS, _table({"shop": ["a"], "rating": [4.5]}))
    yield s
    s.close()


SELECTIONS = [
    OnlineSelection(USERS, ("name", "age"), ("users__name", "users__age")),
    OnlineSelection(SHOPS, ("rating",), ("rating",)),
]


def test_list_of_dicts_and_dict_of_lists_give_the_same_response(store: SqliteOnlineStore) -> None:
    rows = [{"user_id": 2, "shop": "a"}, {"user_id": 9, "shop": "b"}, {"user_id": 2, "shop": "a"}]
    a = get_online_features(store, SELECTIONS, rows, now=T0)
    b = get_online_features(store, SELECTIONS, {"user_id": [2, 9, 2], "shop": ["a", "b", "a"]}, now=T0)
    expected = {
        "user_id": [2, 9, 2],
        "shop": ["a", "b", "a"],
        "users__name": [None, None, None],
        "users__age": [40, None, 40],
        "rating": [4.5, None, 4.5],
    }
    assert a.to_dict() == b.to_dict() == expected
    assert a.feature_names == list(expected)
    assert a.statuses["users__age"] == [FieldStatus.PRESENT, FieldStatus.NOT_FOUND, FieldStatus.PRESENT]


def test_duplicate_entities_are_read_once(store: SqliteOnlineStore, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    original = store.read

    def spy(requests: Any) -> Any:
        seen.extend(len(r.keys) for r in requests)
        return original(requests)

    monkeypatch.setattr(store, "read", spy)
    response = get_online_features(store, SELECTIONS[:1], {"user_id": [1, 1, 2, 1]}, now=T0)
    assert seen == [2]
    assert response.to_dict()["users__age"] == [30, 30, 40, 30]


def test_stale_rows_are_outside_max_age(store: SqliteOnlineStore) -> None:
    response = get_online_features(store, SELECTIONS, {"user_id": [1], "shop": ["a"]}, now=T0 + timedelta(days=2))
    assert response.statuses["users__age"] == [FieldStatus.OUTSIDE_MAX_AGE]
    assert response.to_dict()["users__age"] == [None]
    assert response.statuses["rating"] == [FieldStatus.PRESENT]  # no ttl on shops
    with_ts = response.to_dict(include_event_timestamps=True)
    assert with_ts["rating__ts"] == [int(T0.timestamp())]


def test_arrow_and_pandas_outputs(store: SqliteOnlineStore) -> None:
    response = get_online_features(store, SELECTIONS, {"user_id": [1, 5], "shop": ["a", "a"]}, now=T0)
    table = response.to_arrow()
    assert table.schema.field("users__age").type == pa.int64()
    assert table.column("users__name").to_pylist() == ["ann", None]
    assert response.to_df()["rating"].tolist() == [4.5, 4.5]


def test_missing_join_key_names_the_key_and_view(store: SqliteOnlineStore) -> None:
    with pytest.raises(RetrievalError, match="feature view 'shops' needs the join key 'shop'"):
        get_online_features(store, SELECTIONS, [{"user_id": 1}])


def test_wrong_key_type_is_a_retrieval_error(store: SqliteOnlineStore) -> None:
    with pytest.raises(RetrievalError, match=r"'users'.*'user_id' is declared Int64.*'1' \(str\)"):
        get_online_features(store, SELECTIONS[:1], [{"user_id": "1"}])


def test_unequal_columns_and_unknown_features_are_errors(store: SqliteOnlineStore) -> None:
    with pytest.raises(RetrievalError, match="same length"):
        get_online_features(store, SELECTIONS, {"user_id": [1, 2], "shop": ["a"]})
    with pytest.raises(RetrievalError, match="Did you mean 'age'"):
        OnlineSelection(USERS, ("agee",), ("agee",))


def test_materialize_view_writes_in_bounded_batches(tmp_path: Path) -> None:
    store = SqliteOnlineStore(SqliteOnlineStoreConfig(), path=tmp_path / "m.db")
    sizes: list[int] = []
    original = store.write

    def spy(view: OnlineView, rows: pa.Table) -> int:
        sizes.append(rows.num_rows)
        return original(view, rows)

    store.write = spy  # type: ignore[method-assign]
    batches = [
        _table({"user_id": list(range(s, s + n)), "age": list(range(n)), "name": ["x"] * n}).to_batches()[0]
        for s, n in ((0, 7), (7, 3), (10, 12))
    ]
    progress: list[int] = []
    written = materialize_view(iter(batches), store, USERS, batch_rows=5, on_progress=progress.append)
    assert written == 22
    assert sizes == [5, 5, 5, 5, 2] == progress
    response = get_online_features(store, [SELECTIONS[0]], {"user_id": [0, 21, 22]}, now=T0)
    assert response.to_dict()["users__age"] == [0, 11, None]
    store.close()


def test_factory_resolves_a_relative_sqlite_path(tmp_path: Path) -> None:
    config = RepoConfig(project="p", repo_path=tmp_path, online_store={"type": "sqlite", "path": "data/o.db"})
    store = create_online_store(config)
    assert isinstance(store, SqliteOnlineStore)
    assert store.path == str(tmp_path / "data" / "o.db")
    store.close()
