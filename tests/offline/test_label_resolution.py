"""Label views' conflict policies in the point-in-time join, against the brute-force reference."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from label_reference import resolve
from pit_reference import utc_naive

from offline_engines import Engine
from potluck.definitions.field import Field
from potluck.offline.protocol import LabelRule, SourceTable, ViewQuery
from potluck.offline.sql import Strategy, query
from potluck.types import Int64, String

T0 = datetime(2024, 1, 1)
POLICIES = ("last_write_wins", "labeler_priority", "majority_vote")
LABELERS = ("alice", "bob", "carol", "dave")

instants = st.integers(min_value=0, max_value=5).map(lambda h: T0 + timedelta(hours=h))


@st.composite
def label_rows(draw: st.DrawFn, with_created: bool) -> list[dict[str, Any]]:
    rows = []
    for _ in range(draw(st.integers(min_value=0, max_value=16))):
        row: dict[str, Any] = {
            "sk": draw(st.integers(min_value=0, max_value=1)),
            "ts": draw(instants),
            "who": draw(st.one_of(st.none(), st.sampled_from(LABELERS))),
            "x": draw(st.one_of(st.none(), st.integers(min_value=0, max_value=2))),
            "y": draw(st.one_of(st.none(), st.sampled_from(["good", "bad"]))),
        }
        if with_created:
            row["created"] = draw(st.one_of(st.none(), instants))
        rows.append(row)
    return rows


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    with_created = draw(st.booleans())
    rows = draw(label_rows(with_created))
    entity = []
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        # Half hours and exact ttl edges; null keys and duplicates arise too.
        at = T0 + timedelta(minutes=30 * draw(st.integers(min_value=-1, max_value=12)))
        entity.append({"k": draw(st.one_of(st.integers(min_value=0, max_value=2), st.none())), "event_timestamp": at})
    if draw(st.booleans()):
        entity.append(dict(entity[0]))
    return {
        "rows": rows,
        "split": draw(st.integers(min_value=0, max_value=len(rows))),
        "with_created": with_created,
        "entity": entity,
        "ttl": timedelta(hours=draw(st.sampled_from([0, 1, 2]))),
        "policy": draw(st.sampled_from(POLICIES)),
        "priorities": tuple(draw(st.lists(st.sampled_from(LABELERS[:3]), unique=True, min_size=1))),
        "features": draw(st.sampled_from([("x", "y", "who"), ("who", "y"), ("x",)])),
        "availability": draw(st.booleans()),
        "strategy": draw(st.sampled_from([None, Strategy.LATERAL, Strategy.WINDOW, Strategy.RANGE, Strategy.RUNNING])),
        "prune": draw(st.booleans()),
        "source_zoned": draw(st.booleans()),  # source times stored zoned (UTC) or naive
    }


_TYPES = {"x": Int64, "y": String, "who": String}


def _query(root: Path, scenario: dict[str, Any], name: str = "labels") -> ViewQuery:
    stamp = pa.timestamp("us", tz="UTC") if scenario.get("source_zoned") else pa.timestamp("us")
    columns = [("sk", pa.int64()), ("ts", stamp)] + ([("created", stamp)] if scenario["with_created"] else [])
    columns += [("who", pa.string()), ("x", pa.int64()), ("y", pa.string())]
    schema = pa.schema(columns)
    folder = root / name
    folder.mkdir()
    rows = scenario["rows"]
    for i, part in enumerate([rows[: scenario["split"]], rows[scenario["split"] :]]):
        pq.write_table(pa.Table.from_pylist(part, schema=schema), folder / f"part-{i}.parquet")
    mapping = {"k": "sk", "fx": "x", "fy": "y", "fwho": "who"}
    source = SourceTable(name, str(folder), "parquet", "ts", "created" if scenario["with_created"] else "", mapping)
    features = tuple(Field(name=f"f{c}", dtype=_TYPES[c]) for c in scenario["features"])
    policy = scenario["policy"]
    rule = None
    if policy != "last_write_wins":
        priorities = scenario["priorities"] if policy == "labeler_priority" else ()
        rule = LabelRule(policy, "fwho", priorities)
    return ViewQuery(
        name, source, ("k",), features, tuple(f"{name}__f{c}" for c in scenario["features"]), scenario["ttl"], rule
    )


def _expected(scenario: dict[str, Any], name: str = "labels") -> list[dict[str, Any]]:
    out = []
    for entity in scenario["entity"]:
        resolved = resolve(
            scenario["rows"],
            key_columns=("sk",),
            keys=(entity["k"],),
            at=utc_naive(entity["event_timestamp"]),
            ttl=scenario["ttl"],
            policy=scenario["policy"],
            labeler="who",
            priorities=scenario["priorities"],
            features=scenario["features"],
            availability=scenario["availability"],
            created_column="created" if scenario["with_created"] else "",
        )
        row = {"k": entity["k"], "event_timestamp": entity["event_timestamp"].replace(tzinfo=UTC)}
        row |= {f"{name}__f{c}": resolved[c] for c in scenario["features"]}
        out.append(row)
    return out


def test_policies_match_reference(store: Engine) -> None:
    @settings(max_examples=store.examples(120), deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(scenarios())
    def check(scenario: dict[str, Any]) -> None:
        ratio = query._PRUNE_RATIO
        query._PRUNE_RATIO = 0 if scenario["prune"] else 2**62
        try:
            with tempfile.TemporaryDirectory() as tmp:
                view = _query(Path(tmp), scenario)
                entity = pa.Table.from_pylist(
                    scenario["entity"], schema=pa.schema([("k", pa.int64()), ("event_timestamp", pa.timestamp("us"))])
                )
                job = store.get_historical_features(
                    entity,
                    [view],
                    availability_time=scenario["availability"],
                    strategy=store.strategy(scenario["strategy"]),
                )
                assert job.to_arrow().to_pylist() == _expected(scenario), repr(scenario)
        finally:
            query._PRUNE_RATIO = ratio

    check()


def _fixed(
    store: Engine, policy: str, rows: list[dict[str, Any]], at: datetime, priorities: tuple[str, ...] = ()
) -> dict[str, Any]:
    scenario = {
        "rows": [{"sk": 1, "x": None, "y": None, "who": None} | r for r in rows],
        "split": len(rows),
        "with_created": any("created" in r for r in rows),
        "entity": [{"k": 1, "event_timestamp": at}],
        "ttl": timedelta(0),
        "policy": policy,
        "priorities": priorities,
        "features": ("x", "y", "who"),
        "availability": False,
        "strategy": None,
        "prune": False,
    }
    if scenario["with_created"]:
        for r in scenario["rows"]:
            r.setdefault("created", None)
    with tempfile.TemporaryDirectory() as tmp:
        entity = pa.Table.from_pylist(scenario["entity"])
        view = _query(Path(tmp), scenario)
        # every join strategy gives the same resolution (None, the engine's default, is one of them)
        for strategy in [s for s in store.strategies if s is not None]:
            got = store.get_historical_features(entity, [view], strategy=strategy).to_arrow().to_pylist()
            assert got == _expected(scenario), strategy
    return {k.removeprefix("labels__f"): v for k, v in got[0].items() if k.startswith("labels__")}


@pytest.mark.parametrize("newest_first", [True, False])
def test_majority_tie_goes_to_the_newest_vote(store: Engine, newest_first: bool) -> None:
    votes = [
        {"ts": T0 + timedelta(hours=2), "who": "alice", "x": 1, "y": "good"},
        {"ts": T0 + timedelta(hours=1), "who": "bob", "x": 2, "y": "bad"},
        {"ts": T0 + timedelta(hours=1), "who": "carol", "x": 2, "y": None},
        {"ts": T0 + timedelta(hours=3), "who": "dave", "x": 1, "y": "bad"},
    ]
    rows = votes if newest_first else votes[::-1]
    got = _fixed(store, "majority_vote", rows, T0 + timedelta(hours=5))
    # x: 1 (alice, dave) against 2 (bob, carol); dave's vote is the newest. y: good 1, bad 2.
    assert got == {"x": 1, "y": "bad", "who": None}
    # Before dave voted: x is 2 by two votes to one; y ties good (alice) against bad (bob), alice's is newer.
    assert _fixed(store, "majority_vote", rows, T0 + timedelta(hours=2)) == {"x": 2, "y": "good", "who": None}


def test_majority_counts_each_labelers_newest_vote_once(store: Engine) -> None:
    rows = [
        {"ts": T0, "who": "alice", "x": 2},
        {"ts": T0 + timedelta(hours=1), "who": "alice", "x": 2},
        {"ts": T0 + timedelta(hours=2), "who": "alice", "x": 1},  # alice changed her mind: one vote, for 1
        {"ts": T0, "who": "bob", "x": 2},
        {"ts": T0, "who": "carol", "x": 1},
    ]
    assert _fixed(store, "majority_vote", rows, T0 + timedelta(hours=3))["x"] == 1
    assert _fixed(store, "majority_vote", rows, T0 + timedelta(hours=1))["x"] == 2


def test_priority_prefers_the_ranked_labeler_over_newer_labels(store: Engine) -> None:
    rows = [
        {"ts": T0, "who": "expert", "x": 1},
        {"ts": T0 + timedelta(hours=1), "who": "crowd", "x": 2},
        {"ts": T0 + timedelta(hours=2), "who": "bot", "x": 0},
        {"ts": T0 + timedelta(hours=3), "who": None, "x": 5},
    ]
    at = T0 + timedelta(hours=4)
    assert _fixed(store, "labeler_priority", rows, at, ("expert", "crowd"))["x"] == 1
    assert _fixed(store, "labeler_priority", rows, at, ("crowd", "expert"))["x"] == 2
    # Only unlisted labelers (bot, the null one) have labels before the expert's: the newest of them.
    assert _fixed(store, "labeler_priority", rows[2:], at, ("expert",)) == {"x": 5, "y": None, "who": None}
