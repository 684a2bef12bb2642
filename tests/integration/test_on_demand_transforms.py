"""On-demand views computed by one runner: the same values in training data and serving, and the errors."""

from __future__ import annotations

import asyncio
import itertools
import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from integration_support import _drop_postgres_schema, _require, online_yaml

from odfv_support import BASE_ROWS, FEATURES, MODES, build, write_stats
from potluck import FeatureStore
from potluck.definitions.errors import TransformCodeError, TransformError
from potluck.retrieval.online import FieldStatus
from potluck.server import ServerSettings, create_app
from potluck.server.store_backend import StoreBackend
from potluck.transforms.runner import RequestDataMissingError
from tests_support import serve

START, END = datetime(2023, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)
AS_OF = datetime(2024, 6, 1, tzinfo=UTC)
_ids = itertools.count(1000)


@pytest.fixture(
    scope="module",
    params=[
        "sqlite",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ],
)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeatureStore]:
    """A repository on each online store, applied and materialized once for the module's tests."""
    kind = str(request.param)
    _require(kind)
    root = build(tmp_path_factory.mktemp(f"odfv_{kind}"), online=online_yaml(kind, f"odfv_{uuid.uuid4().hex[:8]}"))
    store = FeatureStore(repo_path=root)
    store.apply()
    store.materialize(START, END)
    yield store
    try:
        store.teardown()
    finally:
        store.close()
        if kind == "postgres":
            _drop_postgres_schema(root)


def _entity_table(ids: list[int], bonus: list[float | None]) -> pa.Table:
    return pa.table(
        {
            "driver_id": pa.array(ids, pa.int64()),
            "event_timestamp": pa.array([AS_OF] * len(ids), pa.timestamp("us", tz="UTC")),
            "bonus": pa.array(bonus, pa.float64()),
        }
    )


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b and type(a) is type(b))


floats = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([1e308, -1e308, 5e-324, -0.0]),
)
rows = st.lists(
    st.tuples(floats, st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), st.one_of(st.none(), st.text(max_size=8)), floats),
    min_size=1,
    max_size=6,
)  # fmt: skip


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=rows, full=st.booleans(), missing_entity=st.booleans())
@pytest.mark.parametrize("mode", list(MODES))
def test_training_data_and_serving_give_identical_on_demand_values(
    store: FeatureStore, mode: str, data: list[tuple[Any, Any, Any, Any]], full: bool, missing_entity: bool
) -> None:
    ids = [next(_ids) for _ in data]
    generated = [(i, conv, trips, city) for i, (conv, trips, city, _) in zip(ids, data, strict=True)]
    write_stats(store.repo_path, [*BASE_ROWS, *generated])  # the other tests read the base rows
    store.materialize(START, END)
    if missing_entity:
        ids = [*ids, next(_ids)]  # an entity with no rows: its inputs are null in both paths
        data = [*data, (None, None, None, 1.5)]
    bonus = [b for *_, b in data]
    view = MODES[mode]
    refs = [f"{view}:score", f"{view}:label", "stats:trips"]
    offline = store.get_historical_features(_entity_table(ids, bonus), refs, full_feature_names=full).to_arrow()
    entity_rows = [{"driver_id": i, "bonus": b} for i, b in zip(ids, bonus, strict=True)]
    online = store.get_online_features(refs, entity_rows, full_feature_names=full).to_dict()
    # regular views first, then on-demand outputs
    names = ["stats__trips", f"{view}__score", f"{view}__label"] if full else ["trips", "score", "label"]
    assert list(online) == ["driver_id", *names]
    assert offline.column_names == ["driver_id", "event_timestamp", "bonus", *names]
    for name in names:
        served, trained = online[name], offline.column(name).to_pylist()
        assert all(_same(a, b) for a, b in zip(served, trained, strict=True)), (name, served, trained)


def test_online_statuses_follow_the_inputs_and_times_are_epoch_zero(store: FeatureStore) -> None:
    rows = [{"driver_id": 1, "bonus": 1.0}, {"driver_id": 2, "bonus": 1.0}, {"driver_id": 999_999, "bonus": 1.0}]
    response = store.get_online_features(["scored_python:score"], rows)
    assert response.to_dict()["score"] == [2.0, None, None]
    assert response.statuses["score"] == [FieldStatus.PRESENT, FieldStatus.NULL_VALUE, FieldStatus.NOT_FOUND]
    assert response.event_timestamps["score"] == [datetime(1970, 1, 1, tzinfo=UTC)] * 3
    assert response.to_dict(include_event_timestamps=True)["score__ts"] == [0, 0, 0]
    assert "bonus" not in response.to_dict()  # request data is never an output


def test_the_async_sdk_and_feature_services_serve_them(store: FeatureStore) -> None:
    rows = [{"driver_id": 1, "bonus": 0.25}]
    response = asyncio.run(store.get_online_features_async("scored", rows, full_feature_names=True))
    assert response.to_dict() == {"driver_id": [1], "stats__trips": [3], "scored_arrow__score": [1.25]}
    table = store.get_historical_features(_entity_table([1], [0.25]), store.get_feature_service("scored")).to_arrow()
    assert table.column("score").to_pylist() == [1.25]


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("regular", [["conv", "city", "trips"], ["city"], ["trips"]])
def test_training_data_joins_a_view_once_and_gives_what_separate_reads_give(
    store: FeatureStore, mode: str, regular: list[str]
) -> None:
    """Inputs a regular selection also asks for, or of a view it reads, come from that one join."""
    ids, bonus = [1, 2, 3, 999_999], [0.25, 1.0, None, 2.0]
    view = MODES[mode]
    outputs = [f"{view}:score", f"{view}:label"]
    plain = [f"stats:{f}" for f in regular]
    together = store.get_historical_features(_entity_table(ids, bonus), [*plain, *outputs]).to_arrow()
    alone = store.get_historical_features(_entity_table(ids, bonus), outputs).to_arrow()
    features = store.get_historical_features(_entity_table(ids, bonus), plain).to_arrow()
    assert together.column_names == ["driver_id", "event_timestamp", "bonus", *regular, "score", "label"]
    for name in regular:
        assert together.column(name).to_pylist() == features.column(name).to_pylist()
    for name in ("score", "label"):
        a, b = together.column(name).to_pylist(), alone.column(name).to_pylist()
        assert all(_same(x, y) for x, y in zip(a, b, strict=True)), (name, a, b)
    expected = {1: (0.5 * 2 + 0.25, "a"), 2: (None, None), 3: (None, ""), 999_999: (None, None)}
    if mode != "pandas":  # pandas gives NaN for a null input; the other modes null
        assert list(zip(together.column("score").to_pylist(), together.column("label").to_pylist(), strict=True)) == [
            expected[i] for i in ids
        ]


def test_training_data_is_transformed_in_bounded_batches(store: FeatureStore) -> None:
    ids = [1, 2, 3] * 5
    job = store.get_historical_features(_entity_table(ids, [1.0] * len(ids)), ["scored_arrow:score"])
    batches = list(job.to_arrow_batches(4))
    assert max(b.num_rows for b in batches) <= 4
    assert sum(b.num_rows for b in batches) == len(ids)
    assert job.to_arrow().column("score").to_pylist().count(2.0) == 5


def test_missing_request_data_is_an_error_naming_the_field(store: FeatureStore) -> None:
    with pytest.raises(RequestDataMissingError, match=r"'scored_pandas' needs request field\(s\) 'bonus'.*entity rows"):
        store.get_online_features(["scored_pandas:score"], [{"driver_id": 1}])
    frame = _entity_table([1], [1.0]).drop_columns(["bonus"])
    with pytest.raises(RequestDataMissingError, match=r"'bonus'.*entity dataframe"):
        store.get_historical_features(frame, ["scored_pandas:score"]).to_arrow()


def test_the_http_server_serves_them_by_features_and_by_service(store: FeatureStore) -> None:
    app = create_app(StoreBackend(store), ServerSettings(auth="off"))
    with serve(app) as url:
        body = {
            "features": ["scored_single:score", "scored_single:label"],
            "entities": {"driver_id": [1], "bonus": [2]},
        }
        reply = httpx.post(f"{url}/get-online-features", json=body, timeout=30)
        assert reply.status_code == 200, reply.text
        answer = reply.json()
        assert answer["metadata"]["feature_names"] == ["driver_id", "score", "label"]
        assert [r["values"] for r in answer["results"]] == [[1], [3.0], ["a"]]
        assert answer["results"][1]["statuses"] == ["PRESENT"]
        body = {"feature_service": "scored", "entities": {"driver_id": [1], "bonus": [0.5]}}
        reply = httpx.post(f"{url}/get-online-features", json=body, timeout=30)
        assert reply.status_code == 200, reply.text
        assert [r["values"] for r in reply.json()["results"]] == [[1], [3], [1.5]]
        body = {"features": ["scored_python:score"], "entities": {"driver_id": [1]}}
        reply = httpx.post(f"{url}/get-online-features", json=body, timeout=30)
        assert reply.status_code == 422
        assert "'bonus'" in reply.json()["error"]["message"]


BROKEN = {
    "missing": ('return {"score": score, "label": list(inputs["stats__city"])}', 'return {"score": score}',
                r"'scored_python': output column 'label' \(String\) is missing"),
    "type": ('return {"score": score, "label": list(inputs["stats__city"])}',
             'return {"score": ["x"] * len(score), "label": list(inputs["stats__city"])}',
             r"'scored_python': output column 'score' does not fit its declared type Float64"),
    "length": ('return {"score": score, "label": list(inputs["stats__city"])}',
               'return {"score": score + [1.0], "label": list(inputs["stats__city"])}',
               r"output column 'score' has 2 values for 1 input rows"),
    "raises": ('return {"score": score, "label": list(inputs["stats__city"])}', 'raise ValueError("boom")',
               r"'scored_python': its function raised ValueError: boom"),
    "shape": ('return {"score": score, "label": list(inputs["stats__city"])}', "return [score]",
              r"'scored_python' \(mode 'python'\) must return a dict of lists"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BROKEN))
def test_outputs_that_do_not_fit_the_schema_are_errors_naming_view_column_and_type(tmp_path: Path, case: str) -> None:
    old, new, message = BROKEN[case]
    assert old in FEATURES
    root = build(tmp_path, FEATURES.replace(old, new))
    store = FeatureStore(repo_path=root)
    store.apply()
    store.materialize(START, END)
    with pytest.raises(TransformError, match=message):
        store.get_online_features(["scored_python:score"], [{"driver_id": 1, "bonus": 1.0}])
    with pytest.raises(TransformError, match=message):
        store.get_historical_features(_entity_table([1], [1.0]), ["scored_python:score"]).to_arrow()
    store.close()


def test_code_that_differs_from_the_registry_is_refused_until_applied(tmp_path: Path) -> None:
    root = build(tmp_path)
    store = FeatureStore(repo_path=root)
    store.apply()
    store.materialize(START, END)
    (root / "features.py").write_text(FEATURES.replace("c * 2 + b", "c * 3 + b"))
    fresh = FeatureStore(repo_path=root)  # another process: imports the repository's current code
    message = r"'scored_python': its function 'scored_python' in features.py differs from the registered one"
    with pytest.raises(TransformCodeError, match=message):
        fresh.get_online_features(["scored_python:score"], [{"driver_id": 1, "bonus": 1.0}])
    with pytest.raises(TransformCodeError, match=message):
        fresh.get_historical_features(_entity_table([1], [1.0]), ["scored_python:score"])
    assert fresh.get_online_features(["scored_arrow:score"], [{"driver_id": 1, "bonus": 1.0}]).to_dict()["score"] == [
        2.0
    ]
    fresh.apply()
    assert fresh.get_online_features(["scored_python:score"], [{"driver_id": 1, "bonus": 1.0}]).to_dict()["score"] == [
        2.5
    ]
    (root / "features.py").unlink()
    gone = FeatureStore(repo_path=root)
    with pytest.raises(TransformCodeError, match=r"lives in features.py, which is not in the feature repository"):
        gone.get_online_features(["scored_arrow:score"], [{"driver_id": 1, "bonus": 1.0}])
    for s in (store, fresh, gone):
        s.close()


def test_outputs_alone_keep_the_join_keys_declared_type_in_arrow(tmp_path: Path) -> None:
    root = build(tmp_path, FEATURES.replace("ValueType.INT64", "ValueType.STRING"))
    table = pa.table(
        {
            "driver_id": ["d1"],
            "ts": pa.array([AS_OF], pa.timestamp("us", tz="UTC")),
            "conv": [0.5],
            "trips": pa.array([1], pa.int64()),
            "city": ["a"],
        }
    )
    pa.parquet.write_table(table, root / "data" / "stats.parquet")
    store = FeatureStore(repo_path=root)
    store.apply()
    store.materialize(START, END)
    served = store.get_online_features(["scored_arrow:score"], [{"driver_id": "d1", "bonus": 1.0}]).to_arrow()
    assert served.schema.field("driver_id").type == pa.string()
    assert served.column("score").to_pylist() == [2.0]
    store.close()


def test_the_async_path_runs_functions_off_the_event_loop(tmp_path: Path) -> None:
    """User code of unknown cost must not hold up a server's event loop (health checks, other reads)."""
    guard = (
        "    import asyncio\n"
        "    try:\n"
        "        asyncio.get_running_loop()\n"
        "    except RuntimeError:\n"
        "        pass\n"
        "    else:\n"
        "        raise ValueError('called on the event loop')\n"
    )
    head = "def scored_python(inputs: dict) -> dict:\n"
    assert head in FEATURES
    root = build(tmp_path, FEATURES.replace(head, head + guard))
    store = FeatureStore(repo_path=root)
    store.apply()
    store.materialize(START, END)
    rows = [{"driver_id": 1, "bonus": 0.5}]
    response = asyncio.run(store.get_online_features_async(["scored_python:score"], rows))
    assert response.to_dict()["score"] == store.get_online_features(["scored_python:score"], rows).to_dict()["score"]
    store.close()


GATED = """

import threading

GATE = threading.Event()
ENTERED = threading.Event()


@on_demand_feature_view(sources=[stats[["conv"]]], schema=[Field(name="gated", dtype=Float64)], mode="python")
def gated(inputs: dict) -> dict:
    ENTERED.set()
    GATE.wait(60)
    return {"gated": list(inputs["conv"])}
"""


def test_a_blocked_function_does_not_hold_up_other_reads_on_sqlite(tmp_path: Path) -> None:
    """SQLite reads of concurrent requests share one thread; on-demand functions must not run on it."""
    root = build(tmp_path, FEATURES + GATED)
    store = FeatureStore(repo_path=root)
    store.apply()
    store.materialize(START, END)
    backend = StoreBackend(store)
    udfs = store._online_selections(["gated:gated"], False)[1]
    assert udfs is not None
    namespace = udfs[1][0].__globals__  # the repository file's module, as the server imported it
    gate, entered = namespace["GATE"], namespace["ENTERED"]
    entities = {"driver_id": [1]}

    async def main() -> tuple[Any, bool, Any]:
        blocked = asyncio.create_task(backend.get_online_features(["gated:gated"], None, entities, False))
        assert await asyncio.to_thread(entered.wait, 60)  # the function now holds its thread
        safety = asyncio.get_running_loop().call_later(30, gate.set)  # a failing run ends instead of hanging
        try:
            plain = await backend.get_online_features(["stats:conv"], None, entities, False)
        finally:
            still_blocked = not gate.is_set() and not blocked.done()
            gate.set()
            safety.cancel()
        return plain, still_blocked, await blocked

    try:
        plain, still_blocked, gated = asyncio.run(main())
    finally:
        gate.set()
        store.close()
    assert still_blocked, "the plain read waited for the blocked on-demand function"
    assert dict(zip(plain.feature_names, plain.values, strict=True))["conv"] == [0.5]
    assert dict(zip(gated.feature_names, gated.values, strict=True))["gated"] == [0.5]
