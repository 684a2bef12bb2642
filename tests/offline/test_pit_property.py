"""Every offline engine against the brute-force reference on random data (each join strategy it has)."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pit_reference import RefView, reference_join, reference_latest

from offline_engines import Engine
from potluck.definitions.field import Field
from potluck.offline.protocol import SourceTable, ViewQuery
from potluck.offline.sql import Strategy, query
from potluck.types import Float64, Int64

T0 = datetime(2024, 1, 1)
PLUS_TWO = timezone(timedelta(hours=2))

# Few distinct instants so that equal event and created timestamps are common.
instants = st.integers(min_value=0, max_value=6).map(lambda h: T0 + timedelta(hours=h))
maybe_instant = st.one_of(st.none(), instants)
keys = st.integers(min_value=0, max_value=2)
values = st.one_of(st.none(), st.integers(min_value=-5, max_value=5))


@st.composite
def source_rows(draw: st.DrawFn, n_keys: int, with_created: bool) -> list[dict[str, Any]]:
    rows = []
    for _ in range(draw(st.integers(min_value=0, max_value=14))):
        row: dict[str, Any] = {f"sk{i}": draw(st.one_of(keys, st.just(None)) if i else keys) for i in range(n_keys)}
        row["ts"] = draw(instants)
        if with_created:
            row["created"] = draw(maybe_instant)
        row["x"] = draw(values)
        row["y"] = draw(st.one_of(st.none(), st.floats(min_value=-1, max_value=1, allow_nan=False)))
        rows.append(row)
    return rows


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    n_views = draw(st.integers(min_value=1, max_value=2))
    views = []
    for v in range(n_views):
        n_keys = draw(st.integers(min_value=1, max_value=2))
        with_created = draw(st.booleans())
        ttl_hours = draw(st.sampled_from([0, 1, 2]))
        rows = draw(source_rows(n_keys, with_created))
        split = draw(st.integers(min_value=0, max_value=len(rows)))  # rows over two files
        views.append(
            {
                "name": f"view{v}",
                "keys": tuple(f"k{i}" if v == 0 or i else f"k{i}_v{v}" for i in range(n_keys)),
                "with_created": with_created,
                "ttl": timedelta(hours=ttl_hours),
                "rows": rows,
                "split": split,
            }
        )
    all_keys = sorted({k for view in views for k in view["keys"]})
    tz = draw(st.sampled_from([None, UTC, PLUS_TWO]))
    entity = []
    for _ in range(draw(st.integers(min_value=1, max_value=10))):
        # Entity instants include half hours and exact ttl edges; duplicates arise naturally.
        at = T0 + timedelta(minutes=30 * draw(st.integers(min_value=-1, max_value=16)))
        row: dict[str, Any] = {k: draw(st.one_of(keys, st.just(None))) for k in all_keys}
        row["event_timestamp"] = at if tz is None else at.replace(tzinfo=UTC).astimezone(tz)
        row["label"] = draw(st.integers(min_value=-(2**62), max_value=2**62))
        entity.append(row)
    if draw(st.booleans()) and entity:
        entity.append(dict(entity[0]))
    return {
        "views": views,
        "entity": entity,
        "tz": tz,
        "availability": draw(st.booleans()),
        "strategy": draw(st.sampled_from([None, Strategy.LATERAL, Strategy.WINDOW, Strategy.RANGE, Strategy.RUNNING])),
        "source_zoned": draw(st.booleans()),  # source timestamps stored zoned (UTC) or naive
        "prune": draw(st.booleans()),  # sources pruned to the entity keys and times, or read whole
    }


def _write_views(root: Path, scenario: dict[str, Any]) -> tuple[list[ViewQuery], list[RefView]]:
    queries, refs = [], []
    for spec in scenario["views"]:
        n_keys = len(spec["keys"])
        columns = [f"sk{i}" for i in range(n_keys)] + ["ts"] + (["created"] if spec["with_created"] else [])
        stamp = pa.timestamp("us", tz="UTC") if scenario.get("source_zoned") else pa.timestamp("us")
        schema = pa.schema(
            [(f"sk{i}", pa.int64()) for i in range(n_keys)]
            + [("ts", stamp)]
            + ([("created", stamp)] if spec["with_created"] else [])
            + [("x", pa.int64()), ("y", pa.float64())]
        )
        folder = root / spec["name"]
        folder.mkdir()
        rows = [{c: r[c] for c in [*columns, "x", "y"]} for r in spec["rows"]]
        parts = [rows[: spec["split"]], rows[spec["split"] :]]
        for i, part in enumerate(parts):
            pq.write_table(pa.Table.from_pylist(part, schema=schema), folder / f"part-{i}.parquet")
        mapping = {k: f"sk{i}" for i, k in enumerate(spec["keys"])} | {"fx": "x", "fy": "y"}
        source = SourceTable(
            spec["name"], str(folder), "parquet", "ts", "created" if spec["with_created"] else "", mapping
        )
        outputs = (f"{spec['name']}__fx", f"{spec['name']}__fy")
        queries.append(
            ViewQuery(
                spec["name"],
                source,
                spec["keys"],
                (Field(name="fx", dtype=Int64), Field(name="fy", dtype=Float64)),
                outputs,
                spec["ttl"],
            )
        )
        refs.append(
            RefView(
                join_keys=spec["keys"],
                key_columns=tuple(f"sk{i}" for i in range(n_keys)),
                features=("x", "y"),
                output_names=outputs,
                ttl=spec["ttl"],
                rows=rows,
                created_column="created" if spec["with_created"] else "",
            )
        )
    return queries, refs


def _entity_table(scenario: dict[str, Any]) -> pa.Table:
    tz = scenario["tz"]
    ts_type = pa.timestamp("us") if tz is None else pa.timestamp("us", tz="Etc/GMT-2" if tz is PLUS_TWO else "UTC")
    names = list(scenario["entity"][0])
    fields = [pa.field(n, ts_type if n == "event_timestamp" else pa.int64()) for n in names]
    return pa.Table.from_pylist(scenario["entity"], schema=pa.schema(fields))


def test_join_matches_reference(store: Engine) -> None:
    @settings(max_examples=store.examples(120), deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(scenarios())
    def check(scenario: dict[str, Any]) -> None:
        ratio = query._PRUNE_RATIO
        query._PRUNE_RATIO = 0 if scenario["prune"] else 2**62
        try:
            _check_join(store, scenario)
        finally:
            query._PRUNE_RATIO = ratio

    check()


def _check_join(store: Engine, scenario: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        queries, refs = _write_views(Path(tmp), scenario)
        job = store.get_historical_features(
            _entity_table(scenario),
            queries,
            availability_time=scenario["availability"],
            strategy=store.strategy(scenario["strategy"]),
        )
        got = job.to_arrow().to_pylist()
        expected = reference_join(scenario["entity"], "event_timestamp", refs, scenario["availability"])
        assert got == expected


def test_latest_rows_match_reference(store: Engine) -> None:
    @settings(max_examples=store.examples(60), deadline=None)
    @given(scenarios(), st.sampled_from([None, 1, 3]), st.integers(min_value=2, max_value=7))
    def check(scenario: dict[str, Any], start_h: int | None, end_h: int) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            queries, refs = _write_views(Path(tmp), scenario)
            view, ref = queries[0], refs[0]
            start = None if start_h is None else T0 + timedelta(hours=start_h)
            end = T0 + timedelta(hours=end_h)
            batches = list(store.latest_rows(view, start, end, batch_rows=2))
            assert all(b.num_rows <= 2 for b in batches)
            got = [r for b in batches for r in b.to_pylist()]
            expected = []
            for row in reference_latest(ref, start, end):
                out = {k: row[c] for k, c in zip(view.join_keys, ref.key_columns, strict=True)}
                out |= {"fx": row["x"], "fy": row["y"], "event_timestamp": row["ts"].replace(tzinfo=UTC)}
                created = row.get("created")
                out["created_timestamp"] = None if created is None else created.replace(tzinfo=UTC)
                expected.append(out)

            def order(r: dict[str, Any]) -> tuple[Any, ...]:
                return tuple(r[k] for k in view.join_keys)

            assert sorted(got, key=order) == sorted(expected, key=order)

    check()


@pytest.mark.parametrize("strategy", [None, Strategy.LATERAL, Strategy.WINDOW, Strategy.RANGE, Strategy.RUNNING])
def test_strategies_agree_on_a_fixed_case(store: Engine, tmp_path: Path, strategy: Strategy | None) -> None:
    rows = [
        {"sk0": 1, "ts": T0, "x": 1, "y": 0.5},
        {"sk0": 1, "ts": T0, "x": 2, "y": None},
    ]
    scenario = {
        "views": [
            {
                "name": "v",
                "keys": ("k0",),
                "with_created": False,
                "ttl": timedelta(0),
                "rows": rows,
                "split": 1,
            }
        ],
        "entity": [{"k0": 1, "event_timestamp": T0, "label": 7}],
        "tz": None,
    }
    queries, refs = _write_views(tmp_path, scenario)
    got = (
        store.get_historical_features(_entity_table(scenario), queries, strategy=store.strategy(strategy))
        .to_arrow()
        .to_pylist()
    )
    assert got == reference_join(scenario["entity"], "event_timestamp", refs)
    assert got[0]["v__fx"] == 2  # the later file wins the remaining tie
