"""On-demand views stored at write time: outputs written with every write, served like a regular view."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from integration_support import _drop_postgres_schema, _require, online_yaml

from odfv_stored_support import FEATURES, REQUEST_VIEW, build, combo, push_worker, rows, score, weight_of
from potluck import FeatureStore
from potluck.definitions.errors import PotluckWarning, RepositoryError, RetrievalError, TransformError
from potluck.retrieval.online import FieldStatus
from potluck.server import ServerSettings, create_app
from potluck.server.store_backend import StoreBackend
from potluck.transforms.runner import RequestDataMissingError
from tests_support import serve

START, END = datetime(2023, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)
T1 = datetime(2024, 6, 1, tzinfo=UTC)
OUTPUTS = ["stored_score:score", "stored_combo:combo"]
_ids = itertools.count(7_000, 7)  # multiples of 7: drivers with an `extra` row too
SQLITE = "online_store:\n  type: sqlite\n  path: data/online.db\n"


@pytest.fixture(
    scope="module",
    params=[
        "sqlite",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ],
)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeatureStore]:
    kind = str(request.param)
    _require(kind)
    root = build(tmp_path_factory.mktemp(f"stored_{kind}"), online_yaml(kind, f"stored_{uuid.uuid4().hex[:8]}"))
    store = FeatureStore(repo_path=root)
    store.apply()
    store.materialize(START, END, ["extra"])  # extra's rows online: stored_combo reads them
    yield store
    try:
        store.teardown()
    finally:
        store.close()
        if kind == "postgres":
            _drop_postgres_schema(root)


def _ids_for(n: int) -> list[int]:
    return [next(_ids) for _ in range(n)]


def _online(store: FeatureStore, ids: list[int], refs: list[str] = OUTPUTS) -> Any:
    return store.get_online_features(refs, [{"driver_id": i} for i in ids])


def _offline(store: FeatureStore, ids: list[int], at: datetime, refs: list[str] = OUTPUTS) -> dict[str, list[Any]]:
    entity = pa.table(
        {
            "driver_id": pa.array(ids, pa.int64()),
            "event_timestamp": pa.array([at] * len(ids), pa.timestamp("us", "UTC")),
        }
    )
    table = store.get_historical_features(entity, refs).to_arrow()
    return {name: table.column(name).to_pylist() for name in table.column_names}


def test_push_then_read_equals_training_data_at_the_push_time(store: FeatureStore) -> None:
    ids = _ids_for(3)
    store.push("stats_push", rows(ids, [T1] * 3, [0.5, None, 2.0], [3, 4, None]), to="online_and_offline")
    response = _online(store, ids)
    served = response.to_dict()
    trained = _offline(store, ids, T1)
    assert served["score"] == trained["score"] == [score(0.5, 3), score(None, 4), score(2.0, None)]
    assert (
        served["combo"]
        == trained["combo"]
        == [combo(c, weight_of(i)) for c, i in zip([0.5, None, 2.0], ids, strict=False)]
    )
    assert response.statuses["score"] == [FieldStatus.PRESENT] * 3
    assert response.event_timestamps["combo"] == [T1] * 3  # the inputs' event time, not the read time
    # an older push loses in both tables; a newer one wins in both
    store.push("stats_push", rows(ids[:1], [T1 - timedelta(days=1)], [9.0], [9]))
    assert _online(store, ids[:1], ["stats:conv", *OUTPUTS]).to_dict()["score"] == [score(0.5, 3)]
    store.push("stats_push", rows(ids[:1], [T1 + timedelta(days=1)], [9.0], [9]))
    got = _online(store, ids[:1], ["stats:conv", *OUTPUTS]).to_dict()
    assert (got["conv"], got["score"], got["combo"]) == ([9.0], [score(9.0, 9)], [combo(9.0, weight_of(ids[0]))])


def test_one_request_mixes_regular_stored_and_read_time_views(store: FeatureStore) -> None:
    ids = _ids_for(2)
    store.push("stats_push", rows(ids, [T1] * 2, [0.5, None], [3, 4]), to="online_and_offline")
    refs = ["extra:weight", "stored_score:score", "read_time_sum:summed", "stats:conv", "stored_combo:combo"]
    response = _online(store, ids, refs)
    served = response.to_dict()
    trained = _offline(store, ids, T1, refs)
    weights = [weight_of(i) for i in ids]
    assert served["weight"] == trained["weight"] == weights
    assert served["conv"] == trained["conv"] == [0.5, None]
    assert served["score"] == trained["score"] == [score(0.5, 3), score(None, 4)]
    assert served["combo"] == trained["combo"] == [combo(0.5, weights[0]), combo(None, weights[1])]
    assert served["summed"] == trained["summed"] == [0.5 + weights[0], None]
    assert served["driver_id"] == ids
    assert response.statuses["summed"] == [FieldStatus.PRESENT, FieldStatus.NULL_VALUE]


def test_a_key_never_written_is_not_found_and_reads_need_no_request_data(store: FeatureStore) -> None:
    response = _online(store, [next(_ids) + 1])  # not a multiple of 7: no extra row either
    assert response.to_dict()["score"] == [None]
    assert response.statuses["score"] == [FieldStatus.NOT_FOUND]
    assert response.statuses["combo"] == [FieldStatus.NOT_FOUND]


def test_materialize_then_read_equals_training_data_at_the_end(store: FeatureStore) -> None:
    ids = _ids_for(3)
    part = pa.table(
        {
            "driver_id": pa.array(ids + ids, pa.int64()),
            "ts": pa.array([T1] * 3 + [T1 + timedelta(hours=1)] * 3, pa.timestamp("us", tz="UTC")),
            "conv": pa.array([1.0, 2.0, 3.0, 4.0, None, 6.0], pa.float64()),
            "trips": pa.array([1, 2, 3, None, 5, 6], pa.int64()),
        }
    )
    pq.write_table(part, store.repo_path / "data" / "live" / f"part-{uuid.uuid4().hex}.parquet")
    store.materialize(START, END, ["stored_score"])  # an on-demand view by name: its source views
    served = _online(store, ids).to_dict()
    trained = _offline(store, ids, END)
    assert served["score"] == trained["score"] == [score(4.0, None), score(None, 5), score(6.0, 6)]
    assert served["combo"] == trained["combo"]


def test_direct_write_of_the_on_demand_view_runs_its_function(store: FeatureStore) -> None:
    ids = _ids_for(2)
    written = store.write_to_online_store(
        "stored_score", {"driver_id": ids, "event_timestamp": [T1, T1], "conv": [1.5, None], "stats__trips": [2, 1]}
    )
    assert written == 2
    got = _online(store, ids, ["stats:conv", "stored_score:score"])
    assert got.to_dict()["score"] == [score(1.5, 2), None]
    assert got.statuses["conv"] == [FieldStatus.NOT_FOUND] * 2  # the source view is not written
    with pytest.raises(
        RetrievalError, match=r"write to on-demand feature view 'stored_score': missing column\(s\) 'trips'"
    ):
        store.write_to_online_store("stored_score", {"driver_id": ids, "event_timestamp": [T1, T1], "conv": [1.0, 2.0]})


@pytest.mark.parametrize("bad", [{"trips": [-1]}, {"conv": [-1.0]}], ids=["one_source", "two_sources"])
def test_a_failing_function_writes_nothing(store: FeatureStore, bad: dict[str, list[Any]]) -> None:
    ids = _ids_for(1)
    batch = {**rows(ids, [T1], [1.0], [1]), **bad}
    with pytest.raises(TransformError, match="its function raised ValueError"):
        store.push("stats_push", batch, to="online_and_offline")
    got = _online(store, ids, ["stats:conv", *OUTPUTS])
    assert got.statuses["conv"] == got.statuses["score"] == [FieldStatus.NOT_FOUND]
    assert got.to_dict()["combo"] == [combo(None, weight_of(ids[0]))]  # as materializing `extra` left it
    assert _offline(store, ids, END, ["stats:conv"])["conv"] == [None]  # nor offline


_events = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.integers(0, 50),
        st.floats(-1e6, 1e6, allow_nan=False).filter(lambda c: c != -1.0),
        st.integers(0, 99),
    ),  # -1: the failing input
    min_size=1,
    max_size=12,
)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=_events)
def test_pushes_in_any_order_leave_the_newest_row_in_both_tables(
    store: FeatureStore, events: list[tuple[int, int, float, int]]
) -> None:
    ids = _ids_for(3)
    newest: dict[int, tuple[int, float, int]] = {}
    for slot, minute, conv, trips in events:
        when = T1 + timedelta(minutes=minute)
        store.push("stats_push", rows([ids[slot]], [when], [conv], [trips]))
        if slot not in newest or minute >= newest[slot][0]:  # equal event times: the later push (newer created)
            newest[slot] = (minute, conv, trips)
    got = _online(store, ids, ["stats:conv", *OUTPUTS]).to_dict()
    for slot, (minute, conv, trips) in newest.items():
        assert got["conv"][slot] == conv
        assert got["score"][slot] == score(conv, trips), (minute, events)
        assert got["combo"][slot] == combo(conv, weight_of(ids[slot]))


def _writers(root: Path, ids: list[int], processes: int = 4, per: int = 6) -> dict[int, tuple[float, int]]:
    """Each process pushes `per` batches touching every key; returns the newest (conv, trips) per key."""
    plans = []
    newest: dict[int, tuple[int, float, int]] = {}
    for p in range(processes):
        batches = []
        for b in range(per):
            minutes = [(b * processes + p) * 7 % 97 + 97 * b for _ in ids]  # distinct per (process, batch)
            conv = [float(p * 1000 + b * 10 + k) for k in range(len(ids))]
            trips = [p + b for _ in ids]
            batches.append(rows(ids, [T1 + timedelta(minutes=m) for m in minutes], conv, trips))
            for i, m, c, t in zip(ids, minutes, conv, trips, strict=True):
                if i not in newest or m > newest[i][0]:
                    newest[i] = (m, c, t)
        plans.append(batches)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=push_worker, args=(str(root), plan)) for plan in plans]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    return {i: (c, t) for i, (_, c, t) in newest.items()}


def test_four_processes_pushing_the_same_keys_leave_the_newest_in_both_tables(store: FeatureStore) -> None:
    ids = _ids_for(5)
    newest = _writers(store.repo_path, ids)
    got = _online(store, ids, ["stats:conv", *OUTPUTS]).to_dict()
    assert got["conv"] == [newest[i][0] for i in ids]
    assert got["score"] == [score(*newest[i]) for i in ids]
    assert got["combo"] == [combo(newest[i][0], weight_of(i)) for i in ids]


_CHILD = """
import json, sys
from datetime import datetime
from odfv_stored_support import push_worker

batches = json.loads(open(sys.argv[2]).read())
for b in batches:
    b["ts"] = [datetime.fromisoformat(t) for t in b["ts"]]
push_worker(sys.argv[1], batches)
"""


def test_a_push_killed_midway_and_retried_converges(store: FeatureStore, tmp_path: Path) -> None:
    ids = _ids_for(300)
    stamps = [T1 + timedelta(days=10, minutes=n) for n in range(30)]
    batches = [rows(ids, [stamps[n]] * len(ids), [float(n)] * len(ids), [n] * len(ids)) for n in range(30)]
    plan = tmp_path / "batches.json"
    plan.write_text(json.dumps([{**b, "ts": [t.isoformat() for t in b["ts"]]} for b in batches]))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(store.repo_path), str(plan)], stdout=subprocess.PIPE, env=env, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "pushed"  # then killed while later batches are being written
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    child.stdout.close()
    store.push("stats_push", batches[-1])  # the retry of the last batch
    got = _online(store, ids, ["stats:conv", *OUTPUTS]).to_dict()
    assert got["conv"] == [29.0] * len(ids)
    assert got["score"] == [score(29.0, 29)] * len(ids)
    assert got["combo"] == [combo(29.0, weight_of(i)) for i in ids]


# -- request fields, apply and plan (SQLite) -------------------------------------------------------
@pytest.fixture
def request_store(tmp_path: Path) -> Iterator[FeatureStore]:
    store = FeatureStore(repo_path=build(tmp_path, SQLITE, FEATURES + REQUEST_VIEW))
    store.apply()
    yield store
    store.close()


def test_request_fields_come_from_the_written_rows(request_store: FeatureStore) -> None:
    store = request_store
    with pytest.raises(RequestDataMissingError, match=r"'stored_bonus' needs request field\(s\) 'bonus'"):
        store.push("stats_push", rows([7], [T1], [1.0], [1]))
    assert _online(store, [7], ["stats:conv"]).statuses["conv"] == [FieldStatus.NOT_FOUND]  # nothing written
    store.push("stats_push", {**rows([7, 14], [T1, T1], [1.0, 2.0], [1, 2]), "bonus": [0.5, 0.25]})
    assert _online(store, [7, 14], ["stored_bonus:boosted"]).to_dict()["boosted"] == [1.5, 2.25]  # no request data


def test_materialize_skips_views_that_need_request_fields_with_a_warning(request_store: FeatureStore) -> None:
    store = request_store
    pq.write_table(
        pa.table({"driver_id": [21], "ts": pa.array([T1], pa.timestamp("us", "UTC")), "conv": [3.0], "trips": [1]}),
        store.repo_path / "data" / "live" / "part.parquet",
    )
    with pytest.warns(PotluckWarning, match="'stored_bonus' is not updated, it needs request field"):
        store.materialize(START, END, ["stats"])
    got = _online(store, [21], ["stats:conv", "stored_score:score", "stored_bonus:boosted"])
    assert got.to_dict()["score"] == [score(3.0, 1)]
    assert got.statuses["boosted"] == [FieldStatus.NOT_FOUND]
    with pytest.raises(RequestDataMissingError, match="on-demand feature view 'stored_bonus' needs request field"):
        store.materialize(START, END, ["stored_bonus"])


def test_a_push_without_the_request_field_is_a_422_over_http(request_store: FeatureStore) -> None:
    app = create_app(StoreBackend(request_store), ServerSettings(auth="off"))
    with serve(app) as url:
        body = {
            "push_source_name": "stats_push",
            "df": {"driver_id": [7], "ts": ["2024-06-01T00:00:00Z"], "conv": [1.0], "trips": [1]},
        }
        reply = httpx.post(f"{url}/push", json=body)
        assert reply.status_code == 422
        assert "'bonus'" in reply.json()["error"]["message"]
        direct = {
            "feature_view_name": "stored_bonus",
            "df": {"driver_id": [7], "event_timestamp": ["2024-06-01T00:00:00Z"], "conv": [1.0]},
        }
        reply = httpx.post(f"{url}/write-to-online-store", json=direct)
        assert reply.status_code == 422
        assert "'bonus'" in reply.json()["error"]["message"]
        direct["df"]["bonus"] = [2.0]
        assert httpx.post(f"{url}/write-to-online-store", json=direct).status_code == 200
    assert _online(request_store, [7], ["stored_bonus:boosted"]).to_dict()["boosted"] == [3.0]


def test_toggling_the_flag_is_a_breaking_change_and_gives_a_fresh_table(tmp_path: Path) -> None:
    root = build(tmp_path, SQLITE)
    store = FeatureStore(repo_path=root)
    store.apply()
    store.push("stats_push", rows([7], [T1], [1.0], [1]))
    assert _online(store, [7], ["stored_score:score"]).to_dict()["score"] == [3.0]
    off = FEATURES.replace(
        'mode="python",\n    write_to_online_store=True', 'mode="python",\n    write_to_online_store=False'
    )
    (root / "features.py").write_text(off)
    plan = store.plan()
    assert any("write_to_online_store" in reason for reason in plan.breaking)
    store.apply()
    assert _online(store, [7], ["stored_score:score"]).to_dict()["score"] == [3.0]  # computed at read time now
    (root / "features.py").write_text(FEATURES)
    store.apply()
    response = _online(store, [7], ["stored_score:score"])
    assert response.statuses["score"] == [FieldStatus.NOT_FOUND]  # a new, empty table until written again
    spec = store.get_on_demand_feature_view("stored_score").to_spec()
    assert spec["write_to_online_store"] is True
    assert [f["name"] for f in spec["entity_columns"]] == ["driver_id"]
    store.teardown()
    store.close()


_OTHER = """
rider = Entity(name="rider", join_keys=["rider_id"], value_type=ValueType.INT64)
other = FeatureView(
    name="other", entities=[rider], schema=[Field(name="w", dtype=Float64)],
    source=PushSource(name="other_push", batch_source=FileSource(name="other_batch", path="data/other", timestamp_field="ts")),
)
"""


def test_apply_refuses_stored_views_without_one_online_key(tmp_path: Path) -> None:
    mixed = FEATURES.replace('sources=[stats[["conv"]], extra]', 'sources=[stats[["conv"]], other]')
    mixed = mixed.replace("\n\n@on_demand_feature_view", _OTHER + "\n\n@on_demand_feature_view", 1)
    store = FeatureStore(repo_path=build(tmp_path / "keys", SQLITE, mixed))
    with pytest.raises(
        RepositoryError,
        match="'stored_combo': write_to_online_store=True needs source feature views "
        "with the same join keys, but 'stats' has",
    ):
        store.apply()
    store.close()
    offline_only = FEATURES.replace("source=live,\n)", "source=live, online=False,\n)")
    assert offline_only != FEATURES
    store = FeatureStore(repo_path=build(tmp_path / "online", SQLITE, offline_only))
    with pytest.raises(
        RepositoryError, match="write_to_online_store=True needs its source feature view 'stats' online"
    ):
        store.apply()
    store.close()
