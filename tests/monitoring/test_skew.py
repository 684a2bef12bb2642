"""Training-serving skew: planted faults on real stores are found, counted exactly and named.

Each test builds a repository, serves every user once through the real server (which logs every
read), plants a fault and checks the report against what was planted.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from skew_support import FEATURES_PY, REMAPPED, USERS, prepare, serve_and_log, write_repo, write_training

from potluck import FeatureStore
from potluck.monitoring.consistency import (
    ONLINE_ONLY,
    REDEFINED_SINCE_BUILT,
    STALE,
    TTL,
    same,
)
from potluck.monitoring.skew import FEATURE_KEYS, REPORT_KEYS
from tests_support import REDIS_HOST, REDIS_PORT, require_server, run_cli

PLANTED = 120  # users whose live score is pushed online only: 30%


def _by_name(report: dict[str, object]) -> dict[str, dict[str, object]]:
    features = report["features"]
    assert isinstance(features, list)
    return {f"{f['view']}:{f['feature']}": f for f in features}


def _plant_online_push(store: FeatureStore) -> dict[int, float]:
    """An online-only push of a new score for the first PLANTED users; returns user -> pushed score."""
    rng = np.random.default_rng(3)
    users = list(range(1, PLANTED + 1))
    scores = (rng.normal(0.5, 0.1, PLANTED) + 2.0).tolist()
    when = datetime.now(UTC) - timedelta(minutes=5)
    store.push("live_push", {"user_id": users, "event_timestamp": [when] * PLANTED, "score": scores}, to="online")
    return dict(zip(users, scores, strict=True))


def _expected_abs_error(root: Path, pushed: dict[int, float]) -> float:
    offline = pq.read_table(root / "data" / "live" / "part-0.parquet").to_pydict()
    batch = dict(zip(offline["user_id"], offline["score"], strict=True))
    return sum(abs(pushed.get(u, batch[u]) - batch[u]) for u in range(1, USERS + 1)) / USERS


def test_online_push_and_stale_ttl_rows_are_found_and_named(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo")
    store = prepare(root)
    training = write_training(store, tmp_path / "training.parquet")
    pushed = _plant_online_push(store)
    # `short`: newer offline rows for every other user, never materialized; the online rows are past the ttl
    fresh = [u for u in range(1, USERS + 1) if u % 2 == 0]
    pq.write_table(
        pa.table(
            {
                "user_id": pa.array(fresh, pa.int64()),
                "event_timestamp": pa.array(
                    [datetime.now(UTC) - timedelta(minutes=30)] * len(fresh), pa.timestamp("us", tz="UTC")
                ),
                "level": [float(u) for u in fresh],
            }
        ),
        root / "data" / "short" / "part-1.parquet",
    )
    serve_and_log(root)
    report = store.skew_report("scored", str(training)).to_dict()
    assert report["rows_compared"] == USERS
    assert report["rows_logged"] == USERS
    found = _by_name(dict(report))

    live = found["live:score"]
    assert live["mismatch_rate"] == pytest.approx(PLANTED / USERS)
    assert live["match_rate"] == pytest.approx(1 - PLANTED / USERS)
    assert live["missing_online_rate"] == 0
    assert live["missing_offline_rate"] == 0
    assert live["mean_abs_error"] == pytest.approx(_expected_abs_error(root, pushed), rel=1e-9)
    assert live["skew"] is True
    assert "mismatch_rate" in live["rules_fired"]
    assert live["causes"] == [ONLINE_ONLY]
    examples = live["examples"]
    assert isinstance(examples, list)
    assert 0 < len(examples) <= 3
    for e in examples:
        user = e["keys"]["user_id"]
        assert e["kind"] == "mismatch"
        assert e["served"] == pytest.approx(pushed[user])

    short = found["short:level"]
    assert short["missing_online_rate"] == pytest.approx(len(fresh) / USERS)
    assert short["match_rate"] == pytest.approx(1 - len(fresh) / USERS)  # the others: null on both sides
    assert short["mismatch_rate"] == 0
    assert short["missing_offline_rate"] == 0
    assert set(short["causes"]) == {STALE, TTL}
    for e in short["examples"]:
        assert e["served_status"] == "OUTSIDE_MAX_AGE"
        assert e["offline"] == float(e["keys"]["user_id"])

    for name in ("stats:amount", "stats:count"):
        assert found[name]["match_rate"] == 1.0, name
        assert found[name]["causes"] == [], name
        assert found[name]["skew"] is False, found[name]
    assert report["skew"] is True
    store.close()


def test_clean_service_reports_no_skew_and_the_json_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_repo(tmp_path / "repo")
    store = prepare(root)
    training = write_training(store, tmp_path / "training.parquet")
    serve_and_log(root)
    store.close()
    textfile = tmp_path / "skew.prom"
    code, out, err = run_cli(
        capsys, "-c", str(root), "skew", "--feature-service", "scored", "--training", str(training),
        "--textfile", str(textfile), "-o", "json",
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(out)  # exactly one object
    assert tuple(report) == REPORT_KEYS
    assert report["skew"] is False
    assert report["rows_compared"] == USERS
    for f in report["features"]:
        assert tuple(f) == FEATURE_KEYS
        assert f["skew"] is False, f
        assert f["rules_fired"] == [], f
        assert f["causes"] == [], f
        assert f["match_rate"] == 1.0
        assert f["mismatch_rate"] == 0.0
    found = _by_name(report)
    amount = found["stats:amount"]
    assert amount["ks_statistic"] is not None
    assert amount["psi"] is not None
    assert amount["mean_abs_error"] == 0.0
    assert found["short:level"]["null_rate_serving"] == 1.0  # expired when served: null, as offline
    assert found["short:level"]["psi"] is None  # no served value to compare
    text = textfile.read_text()
    assert 'potluck_feature_skew{feature="amount",feature_service="scored",view="stats"} 0.0' in text
    assert 'potluck_feature_skew_mismatch_rate{feature="score",feature_service="scored",view="live"} 0.0' in text

    # the table on a terminal-less stdout, and a usage error exits 2
    code, out, _ = run_cli(capsys, "-c", str(root), "skew", "-s", "scored", "-t", str(training))
    assert code == 0
    assert "no skew" in out
    assert "stats" in out
    code, _, err = run_cli(capsys, "-c", str(root), "skew", "-s", "nope", "-t", str(training))
    assert code == 2
    assert "nope" in err


def test_definition_changed_since_the_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from potluck.saved_dataset import SavedDatasetFileStorage

    root = write_repo(tmp_path / "repo")
    store = prepare(root)
    training = write_training(store, tmp_path / "training.parquet")
    job = store.get_historical_features(
        pq.read_table(training, columns=["user_id", "event_timestamp"]),
        store.get_feature_service("scored"),
        full_feature_names=True,
    )
    store.create_saved_dataset(
        from_=job, name="scored_training", storage=SavedDatasetFileStorage(path="data/saved/scored.parquet")
    )
    store.close()
    # `amount` now reads a column holding three times the value: the training data predates it
    (root / "features.py").write_text(FEATURES_PY.format(mapping=REMAPPED))
    store = prepare(root)
    changed_at = datetime.now(UTC)
    serve_and_log(root)
    for given in ("scored_training", str(training)):  # a saved dataset (registry version), a file (its time)
        code, out, err = run_cli(
            capsys,
            "-c",
            str(root),
            "skew",
            "-s",
            "scored",
            "-t",
            given,
            "--start",
            changed_at.isoformat(),
            "-o",
            "json",
        )
        assert code == 1, err
        found = _by_name(json.loads(out))
        amount = found["stats:amount"]
        assert REDEFINED_SINCE_BUILT in amount["causes"], given
        assert amount["skew"] is True
        assert {"ks", "psi"} <= set(amount["rules_fired"])
        assert amount["match_rate"] == 1.0  # served and offline agree on the new definition
        assert REDEFINED_SINCE_BUILT in found["stats:count"]["causes"]
        assert REDEFINED_SINCE_BUILT not in found["live:score"]["causes"]
    store.close()


@pytest.mark.redis
def test_online_push_on_redis(tmp_path: Path) -> None:
    require_server("Redis", REDIS_HOST, REDIS_PORT)
    root = write_repo(tmp_path / "repo", kind="redis")
    store = prepare(root)
    training = write_training(store, tmp_path / "training.parquet")
    pushed = _plant_online_push(store)
    serve_and_log(root)
    report = store.skew_report("scored", training, sample=USERS // 2, seed=9)
    live = next(f for f in report.features if f.view == "live")
    assert live.consistency is not None
    assert live.consistency.compared == USERS // 2
    # the sample is seeded: the planted share of exactly the users drawn
    rows = report.to_dict()["features"]
    drawn = _drawn_users(store, USERS // 2, 9)
    expected = sum(1 for u in drawn if u in pushed) / len(drawn)
    assert live.consistency.rate("mismatch") == pytest.approx(expected)
    assert ONLINE_ONLY in live.causes
    assert live.skew
    assert all(r["view"] != "stats" or r["match_rate"] == 1.0 for r in rows)
    store.teardown()
    store.close()


def _drawn_users(store: FeatureStore, rows: int, seed: int) -> list[int]:
    from potluck.monitoring.served_log import served_log

    log = served_log(store, "scored")
    cursor = store._offline.engine_cursor()
    try:
        table = log.sample(cursor, log.relation(None, None), rows, seed)
    finally:
        cursor.close()
    return [int(u) for u in table.column("user_id").to_pylist()]


def test_float_tolerance_is_relative_and_absolute() -> None:
    assert same(1.0, 1.0 + 5e-7, 1e-6, 1e-9)
    assert not same(1.0, 1.0 + 5e-6, 1e-6, 1e-9)
    assert same(0.0, 5e-10, 1e-6, 1e-9)
    assert not same(0.0, 5e-9, 1e-6, 1e-9)
    assert same(float("nan"), float("nan"), 1e-6, 1e-9)
    assert not same(1.0, None, 1e-6, 1e-9)
    assert same([1.0, None], [1.0, None], 1e-6, 1e-9)
    assert not same([1.0], [1.0, 2.0], 1e-6, 1e-9)
    assert same(3, 3, 0, 0)
    assert not same("a", "b", 0, 0)
