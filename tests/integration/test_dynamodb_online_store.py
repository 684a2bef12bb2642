"""The DynamoDB online store beyond the shared contract, against a real moto server.

Tables follow apply and teardown; reads stay within DynamoDB's batch limits and ask again for
unprocessed keys; conditional writes keep the newest row under concurrent threads; rows DynamoDB
would refuse are refused before anything is written; the config section takes Feast's keys.
"""

from __future__ import annotations

import random
import threading
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dynamodb_support import (  # noqa: F401  (moto_server: the session fixture)
    DUMMY_CREDENTIALS,
    REGION,
    build_dynamodb_store,
    client,
    drop_tables,
    dynamodb_spec,
    moto_server,
    table_names,
)
from potluck import FeatureStore
from potluck.definitions.errors import ConfigError, ConfigKeyWarning, RetrievalError
from potluck.definitions.field import Field
from potluck.online.dynamodb import MAX_ITEM_BYTES
from potluck.online.protocol import OnlineView, ReadRequest
from potluck.repo.config import config_from_dict
from potluck.types import Bytes, Int64, String

T0 = datetime(2024, 5, 1, tzinfo=UTC)
STAMP = pa.timestamp("us", tz="UTC")


@pytest.fixture
def spec(moto_server: str) -> Iterator[dict[str, Any]]:  # noqa: F811
    made = dynamodb_spec(moto_server)
    yield made
    drop_tables(made)


def _view(name: str = "users", features: tuple[Field, ...] = (Field(name="v", dtype=Int64),)) -> OnlineView:
    return OnlineView("proj", name, ("user_id",), (Field(name="user_id", dtype=Int64),), features, timedelta(0))


def _rows(ids: list[int], values: list[Any], events: list[datetime], created: list[datetime | None]) -> pa.Table:
    return pa.table(
        {
            "user_id": pa.array(ids, pa.int64()),
            "v": pa.array(values, pa.int64()),
            "event_timestamp": pa.array(events, STAMP),
            "created_timestamp": pa.array(created, STAMP),
        }
    )


def _values(store: Any, view: OnlineView, ids: list[int]) -> list[Any]:
    (result,) = store.read([ReadRequest(view, [view.key_encoder.encode((i,)) for i in ids])])
    return [None if r is None else r[0] for r in result.rows]


# ---------------------------------------------------------------- reads within the limits


@pytest.mark.parametrize("batch_size", [100, 7])
def test_reads_larger_than_a_batch_are_split_within_the_limit(spec: dict[str, Any], batch_size: int) -> None:
    # moto refuses a BatchGetItem of more than 100 keys or with a key twice: a read of 250 distinct
    # keys, repeated and mixed with absent ones, only succeeds when split into distinct batches.
    store = build_dynamodb_store({**spec, "batch_size": batch_size})
    users, other = _view("users"), _view("other")
    ids = list(range(250))
    store.write(users, _rows(ids, [i * 2 for i in ids], [T0] * 250, [None] * 250))
    store.write(other, _rows(ids[:10], ids[:10], [T0] * 10, [None] * 10))
    wanted = [*ids, *range(240, 260), 3, 3]
    first, second = store.read(
        [
            ReadRequest(users, [users.key_encoder.encode((i,)) for i in wanted]),
            ReadRequest(other, [other.key_encoder.encode((i,)) for i in (9, 10)]),
        ]
    )
    assert [None if r is None else r[0] for r in first.rows] == [i * 2 if i < 250 else None for i in wanted]
    assert [None if r is None else r[0] for r in second.rows] == [9, None]
    store.close()


def test_unprocessed_keys_are_asked_for_again(spec: dict[str, Any]) -> None:
    view = _view("big", (Field(name="blob", dtype=Bytes),))
    store = build_dynamodb_store(spec)
    size = 250_000  # 100 of these make a response over BatchGetItem's 16 MB
    blobs = [bytes([i]) * size for i in range(100)]
    table = pa.table(
        {
            "user_id": pa.array(range(100), pa.int64()),
            "blob": pa.array(blobs, pa.binary()),
            "event_timestamp": pa.array([T0] * 100, STAMP),
        }
    )
    assert store.write(view, table) == 100
    keys = [view.key_encoder.encode((i,)) for i in range(100)]
    # The emulator does leave keys unprocessed for such a batch ...
    raw = client(spec["endpoint_url"]).batch_get_item(
        RequestItems={store.table(view): {"Keys": [{"entity_key": {"B": k}} for k in keys]}}
    )
    assert raw["UnprocessedKeys"]
    # ... and the store asks again until it has them all.
    (result,) = store.read([ReadRequest(view, keys)])
    assert [None if r is None else r[0] for r in result.rows] == blobs
    store.close()


# ---------------------------------------------------------------- conditional writes


def test_newest_wins_under_concurrent_threads(spec: dict[str, Any]) -> None:
    view = _view("threads")
    shared = build_dynamodb_store(spec)
    shared.create([view])
    rng = random.Random(11)
    versions = [
        (k, v, T0 + timedelta(seconds=v // 3), None if v % 3 == 0 else T0 + timedelta(seconds=v % 3))
        for k in range(30)
        for v in range(12)
    ]
    # The reference: per key, the version with the largest (event, created), a null created the oldest.
    expected = {}
    for k, v, e, c in versions:
        rank = (e, c or datetime.min.replace(tzinfo=UTC))
        if k not in expected or rank >= expected[k][0]:
            expected[k] = (rank, v)
    errors: list[BaseException] = []

    def writer(seed: int, store: Any) -> None:
        mine = list(versions)
        random.Random(seed).shuffle(mine)
        try:
            for start in range(0, len(mine), 40):
                part = mine[start : start + 40]
                store.write(view, _rows(*(list(col) for col in zip(*part, strict=True))))
        except BaseException as err:
            errors.append(err)

    own = [build_dynamodb_store(spec) for _ in range(2)]
    stores = [shared, shared, *own]  # threads sharing a store, and stores of their own
    threads = [threading.Thread(target=writer, args=(rng.random(), s)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _values(shared, view, list(range(30))) == [expected[k][1] for k in range(30)]
    for s in {id(s): s for s in stores}.values():
        s.close()


def test_rows_dynamodb_would_refuse_are_refused_before_any_write(spec: dict[str, Any]) -> None:
    view = _view("limits", (Field(name="blob", dtype=Bytes),))
    store = build_dynamodb_store(spec)
    table = pa.table(
        {
            "user_id": pa.array([1, 2], pa.int64()),
            "blob": pa.array([b"ok", b"x" * MAX_ITEM_BYTES], pa.binary()),
            "event_timestamp": pa.array([T0, T0], STAMP),
        }
    )
    with pytest.raises(RetrievalError, match=r"'limits'.*\{'user_id': 2\}.*item limit of 400 KB"):
        store.write(view, table)
    assert _values(store, view, [1, 2]) == [None, None]
    named = OnlineView("proj", "names", ("name",), (Field(name="name", dtype=String),), (), timedelta(0))
    long_key = pa.table({"name": ["n" * 3000], "event_timestamp": pa.array([T0], STAMP)})
    with pytest.raises(RetrievalError, match="partition key limit of 2048 bytes"):
        store.write(named, long_key)
    store.close()


# ---------------------------------------------------------------- tables follow apply and teardown

FEATURES = """\
from potluck import Entity, FeatureView, Field, FileSource, ValueType
from potluck.types import Float64

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
source = FileSource(name="driver_source", path="data/driver.parquet", timestamp_field="ts")
{views}
"""
VIEW = 'FeatureView(name="{name}", entities=[driver], schema=[Field(name="conv_rate", dtype=Float64)], source=source)'


def _write_repo(root: Path, spec: dict[str, Any], views: list[str]) -> None:
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "feature_store.yaml").write_text(
        "project: dyn\nregistry: data/registry.db\nprovider: local\nonline_store:\n  type: dynamodb\n"
        f"  region: {REGION}\n  endpoint_url: {spec['endpoint_url']}\n"
        f'  table_name_template: "{spec["table_name_template"]}"\n  consistent_reads: true\n'
        "  tags: {team: features}\n"
    )
    body = "\n".join(f"{v} = {VIEW.format(name=v)}" for v in views)
    (root / "features.py").write_text(FEATURES.format(views=body))
    pq.write_table(
        pa.table(
            {
                "driver_id": pa.array([1, 2], pa.int64()),
                "ts": pa.array([T0, T0 + timedelta(hours=1)], STAMP),
                "conv_rate": [0.1, 0.2],
            }
        ),
        root / "data" / "driver.parquet",
    )


def test_tables_are_created_on_apply_and_dropped_on_delete_and_teardown(
    spec: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in DUMMY_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    prefix = spec["table_name_template"].split(".", 1)[0] + ".dyn."
    root = tmp_path / "repo"
    _write_repo(root, spec, ["stats", "extra"])
    store = FeatureStore(repo_path=root)
    store.apply()
    created = sorted(table_names(spec["endpoint_url"], prefix))
    assert [name.rsplit(".g", 1)[0] for name in created] == [prefix + "extra", prefix + "stats"]
    arn = client(spec["endpoint_url"]).describe_table(TableName=created[0])["Table"]["TableArn"]
    assert client(spec["endpoint_url"]).list_tags_of_resource(ResourceArn=arn)["Tags"] == [
        {"Key": "team", "Value": "features"}
    ]
    store.materialize(T0 - timedelta(days=1), T0 + timedelta(days=1))
    response = store.get_online_features(["stats:conv_rate"], [{"driver_id": 1}, {"driver_id": 2}, {"driver_id": 3}])
    assert response.to_dict()["conv_rate"] == [0.1, 0.2, None]

    _write_repo(root, spec, ["stats"])  # `extra` deleted: its table goes
    store.apply(allow_breaking=True)
    assert [n.rsplit(".g", 1)[0] for n in table_names(spec["endpoint_url"], prefix)] == [prefix + "stats"]

    store.teardown()
    assert table_names(spec["endpoint_url"], prefix) == []
    store.close()


# ---------------------------------------------------------------- the config section


def _config(section: dict[str, Any]) -> Any:
    return config_from_dict({"project": "p", "online_store": {"type": "dynamodb", **section}}, Path("."))


def test_config_takes_feasts_keys_and_checks_the_template() -> None:
    config = _config({"region": "eu-west-1", "batch_size": 50, "consistent_reads": True, "max_read_workers": 4})
    assert (config.online_store.region, config.online_store.batch_size) == ("eu-west-1", 50)
    with pytest.warns(ConfigKeyWarning, match="session_based_auth"):
        _config({"region": "eu-west-1", "session_based_auth": True})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _config({"region": "eu-west-1", "warmup_connections": False})  # asks for what is done anyway
    feast = config_from_dict(
        {
            "project": "p",
            "online_store": {"type": "feast.infra.online_stores.dynamodb.DynamoDBOnlineStore", "region": "x"},
        },
        Path("."),
    )
    assert feast.online_store.type == "dynamodb"
    with pytest.raises(ConfigError, match=r"batch_size.*less than or equal to 100"):
        _config({"region": "eu-west-1", "batch_size": 101})
    with pytest.raises(ConfigError, match=r"table_name_template.*must contain \{table_name\}"):
        _config({"region": "eu-west-1", "table_name_template": "{project}.all"})
    with pytest.raises(ConfigError, match=r"table_name_template.*only \{project\} and \{table_name\}, not view"):
        _config({"region": "eu-west-1", "table_name_template": "{project}.{view}.{table_name}"})
    with pytest.raises(ConfigError, match=r"missing required key 'online_store.region'"):
        _config({})


def test_a_template_giving_a_name_dynamodb_refuses_is_named(spec: dict[str, Any]) -> None:
    store = build_dynamodb_store({**spec, "table_name_template": "x {table_name}"})
    with pytest.raises(ConfigError, match=r"'x \{table_name\}' gives the table name 'x users'.*'users'"):
        store.create([_view()])
    store.close()
